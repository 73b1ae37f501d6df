// Command nnp prints its effective uid, as Kubernetes' nonewprivs test image
// does: installed setuid root, it shows whether the exec raised the
// privileges of a non-root caller (no_new_privs off) or not (on). It is built
// static (CGO_ENABLED=0): critest's image has no libc.
package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Printf("Effective uid: %d\n", os.Geteuid())
}
