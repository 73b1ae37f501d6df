//go:build !amd64

package main

import "golang.org/x/sys/unix"

// int80 exists on amd64 only: elsewhere there is no i386 ABI to try.
func int80(nr, a1, a2 uintptr) uintptr {
	e := uintptr(unix.ENOSYS)
	return -e
}
