// Package keyring gives each container a session keyring of its own, so a
// container never sees the keys of the runtime or of another container.
//
// The keyring is created on the thread that spawns the container's first
// process and is inherited through the clone; the container's processes
// keep it alive. It is linked into no keyring of the host: root's user
// keyring, the obvious anchor, is reachable from every process running as
// root, and a root container without a user namespace would possess every
// other container's keys through it. The runtime reaches a container's
// keyring by joining it by name (unguessable: it carries 128 random bits)
// on a throwaway thread, and checks the serial it gets.
package keyring

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// keyPerm gives a possessor everything and the owner only search, which lets
// the runtime find the keyring by name to join it for exec and invalidate it.
// Without view, a container sharing root's uid cannot even list another
// container's keyring in /proc/keys.
const keyPerm = keyPosAll | keyUsrSearch

// Permission bits from <linux/keyctl.h>, which x/sys/unix does not carry.
const (
	keyPosAll    = 0x3f000000
	keyUsrSearch = 0x00080000
)

// Join makes the calling thread's session keyring the keyring called name,
// creating it if it does not exist, and returns its serial. The caller must be
// on a locked OS thread that will not run other goroutines (see nsenter).
func Join(name string) (int, error) {
	id, err := unix.KeyctlJoinSessionKeyring(name)
	if err != nil {
		return 0, fmt.Errorf("keyring: join session keyring %q: %w", name, err)
	}
	return id, nil
}

// Create makes a new session keyring called name on the calling (locked)
// thread and opens it to its owner for joining.
func Create(name string) (int, error) {
	id, err := Join(name)
	if err != nil {
		return 0, err
	}
	if err := unix.KeyctlSetperm(id, keyPerm); err != nil {
		return 0, fmt.Errorf("keyring: set permissions of %q: %w", name, err)
	}
	return id, nil
}

// Remove invalidates the keyring, so the kernel collects it even where a
// process still holds it. A keyring already gone is no error.
func Remove(id int) error {
	if _, err := unix.KeyctlInt(unix.KEYCTL_INVALIDATE, id, 0, 0, 0); err != nil && err != unix.ENOKEY && err != unix.EKEYREVOKED {
		return fmt.Errorf("keyring: invalidate %d: %w", id, err)
	}
	return nil
}
