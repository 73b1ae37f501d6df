// Command keyread prints the payload of the key of type TYPE (default
// "user") called DESCRIPTION that its session keyring holds: busybox has no
// keyctl(1), so the keyring tests copy this into a container. With
// -request CALLOUT it asks for the key with request_key(2) instead, which
// has the key made by an upcall when nobody holds it, and puts it into its
// session keyring.
//
//	keyread [-request CALLOUT] DESCRIPTION [TYPE]
package main

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

func main() {
	args := os.Args[1:]
	request, callout := false, ""
	if len(args) >= 2 && args[0] == "-request" {
		request, callout, args = true, args[1], args[2:]
	}
	if len(args) < 1 || len(args) > 2 {
		fmt.Fprintln(os.Stderr, "usage: keyread [-request CALLOUT] DESCRIPTION [TYPE]")
		os.Exit(2)
	}
	typ := "user"
	if len(args) == 2 {
		typ = args[1]
	}
	what, id, err := "search", 0, error(nil)
	if request {
		what = "request"
		id, err = unix.RequestKey(typ, args[0], callout, unix.KEY_SPEC_SESSION_KEYRING)
	} else {
		id, err = unix.KeyctlSearch(unix.KEY_SPEC_SESSION_KEYRING, typ, args[0], 0)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "keyread: %s %s key %q: %v\n", what, typ, args[0], err)
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
