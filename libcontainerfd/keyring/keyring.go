// Package keyring gives each container a session keyring of its own, so a
// container never sees the keys of the runtime or of another container.
//
// The keyring is created on the thread that spawns the container's first
// process and is inherited through the clone. The runtime links it into root's
// user keyring so it survives while no process holds it (between create and
// start, after the last process exits) until Remove.
package keyring

import (
	"errors"
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
// thread, opens it to its owner for joining, and links it into the user
// keyring to keep it alive.
func Create(name string) (int, error) {
	id, err := Join(name)
	if err != nil {
		return 0, err
	}
	if err := unix.KeyctlSetperm(id, keyPerm); err != nil {
		return 0, fmt.Errorf("keyring: set permissions of %q: %w", name, err)
	}
	if _, err := unix.KeyctlInt(unix.KEYCTL_LINK, id, unix.KEY_SPEC_USER_KEYRING, 0, 0); err != nil {
		return 0, fmt.Errorf("keyring: link %q into the user keyring: %w", name, err)
	}
	return id, nil
}

// Remove unlinks the keyring from the user keyring and invalidates it, so
// the kernel collects it even where a process still holds it.
func Remove(id int) error {
	var errs []error
	if _, err := unix.KeyctlInt(unix.KEYCTL_UNLINK, id, unix.KEY_SPEC_USER_KEYRING, 0, 0); err != nil && err != unix.ENOENT && err != unix.ENOKEY {
		errs = append(errs, fmt.Errorf("keyring: unlink %d: %w", id, err))
	}
	if _, err := unix.KeyctlInt(unix.KEYCTL_INVALIDATE, id, 0, 0, 0); err != nil && err != unix.ENOKEY && err != unix.EKEYREVOKED {
		errs = append(errs, fmt.Errorf("keyring: invalidate %d: %w", id, err))
	}
	return errors.Join(errs...)
}

// Find returns the serial of the keyring called name that is linked into the
// user keyring, or an error if there is none.
func Find(name string) (int, error) {
	id, err := unix.KeyctlSearch(unix.KEY_SPEC_USER_KEYRING, "keyring", name, 0)
	if err != nil {
		return 0, fmt.Errorf("keyring: find %q: %w", name, err)
	}
	return id, nil
}
