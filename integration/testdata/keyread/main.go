// Command keyread prints the payload of the key of type TYPE (default
// "user") called DESCRIPTION that its session keyring holds: busybox has no
// keyctl(1), so the keyring tests copy this into a container.
//
//	keyread DESCRIPTION [TYPE]
package main

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

func main() {
	if len(os.Args) < 2 || len(os.Args) > 3 {
		fmt.Fprintln(os.Stderr, "usage: keyread DESCRIPTION [TYPE]")
		os.Exit(2)
	}
	typ := "user"
	if len(os.Args) == 3 {
		typ = os.Args[2]
	}
	id, err := unix.KeyctlSearch(unix.KEY_SPEC_SESSION_KEYRING, typ, os.Args[1], 0)
	if err != nil {
		fmt.Fprintf(os.Stderr, "keyread: search %s key %q: %v\n", typ, os.Args[1], err)
		os.Exit(1)
	}
	buf := make([]byte, 32768)
	n, err := unix.KeyctlBuffer(unix.KEYCTL_READ, id, buf, 0)
	if err != nil {
		fmt.Fprintf(os.Stderr, "keyread: read key %d: %v\n", id, err)
		os.Exit(1)
	}
	os.Stdout.Write(buf[:n])
}
