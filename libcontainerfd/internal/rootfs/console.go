package rootfs

import (
	"fmt"

	"github.com/containerfd/containerfd/libcontainerfd/pathrs"
	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// NewPty opens a new pty on the container's devpts, /dev/ptmx resolved
// inside rootPath (the stage's root). The peer is opened from the master
// with TIOCGPTPEER, never by a /dev/pts path a container could swap for a
// symlink (CVE-2025-52565). clearONLCR turns the terminal's "\n" to
// "\r\n" translation off, for a caller that copies the output to a
// terminal of its own, which translates again: runc does so where it
// copies, and leaves the pty it hands to a console socket as it is.
func NewPty(rootPath string, size *specs.Box, clearONLCR bool) (master, peer int, err error) {
	root, err := unix.Open(rootPath, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, -1, fmt.Errorf("open root: %w", err)
	}
	defer unix.Close(root)
	return NewPtyIn(root, size, clearONLCR)
}

// NewPtyIn is NewPty for the root open as root.
func NewPtyIn(root int, size *specs.Box, clearONLCR bool) (master, peer int, err error) {
	master, err = pathrs.OpenInRoot(root, "/dev/ptmx", unix.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		return -1, -1, fmt.Errorf("open pty: %w", err)
	}
	defer func() {
		if err != nil {
			unix.Close(master)
		}
	}()
	if err := unix.IoctlSetPointerInt(master, unix.TIOCSPTLCK, 0); err != nil {
		return -1, -1, fmt.Errorf("unlock pty: %w", err)
	}
	// TIOCGPTPEER takes the peer's open flags as its argument.
	r, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(master), unix.TIOCGPTPEER, unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC)
	if errno != 0 {
		return -1, -1, fmt.Errorf("open pty peer: %w", errno)
	}
	peer = int(r)
	if clearONLCR {
		t, err := unix.IoctlGetTermios(master, unix.TCGETS)
		if err == nil {
			t.Oflag &^= unix.ONLCR
			err = unix.IoctlSetTermios(master, unix.TCSETS, t)
		}
		if err != nil {
			unix.Close(peer)
			return -1, -1, fmt.Errorf("clear the pty's ONLCR: %w", err)
		}
	}
	if size != nil {
		ws := &unix.Winsize{Row: uint16(size.Height), Col: uint16(size.Width)}
		if err := unix.IoctlSetWinsize(master, unix.TIOCSWINSZ, ws); err != nil {
			unix.Close(peer)
			return -1, -1, fmt.Errorf("set console size: %w", err)
		}
	}
	return master, peer, nil
}
