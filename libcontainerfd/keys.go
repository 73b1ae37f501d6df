package libcontainerfd

import (
	"errors"
	"fmt"

	"github.com/containerfd/containerfd/libcontainerfd/keyring"
	"github.com/containerfd/containerfd/libcontainerfd/nsenter"
	"golang.org/x/sys/unix"
)

// Key is one key in a container's keyring, as Keys lists it: its serial,
// type and description, never its payload.
type Key = keyring.Key

var (
	// ErrNoKeyring says that the container has no keyring of its own: it
	// was made with Config.NoNewKeyring and shares its creator's.
	ErrNoKeyring = errors.New("container has no keyring of its own")
	// ErrNoKey says that no key in the container's keyring has the serial
	// or description asked for.
	ErrNoKey = keyring.ErrNoKey
)

// AddKey puts a key into the container's own session keyring from outside,
// so that every process of the container (init, and what exec starts) finds
// it there without a file in its root: a "user" key, which they may read, or
// a "logon" key, which only the kernel reads (for filesystems and
// encryption). description names it ("service:name" for logon keys), payload
// holds 1 to 32767 bytes. A key of the same type and description is
// replaced. It returns the key's serial.
//
// The key's permissions let only a possessor of the keyring see, read,
// change or unlink it: the container's processes, not another container's.
// The container's keyring is linked into no keyring of the host's (see
// package keyring), so no host process and no other container possesses it.
// Keys may be added from create on, before the container's process runs,
// until the container is deleted, which removes them with the keyring.
func (c *Container) AddKey(keyType, description string, payload []byte) (serial int, err error) {
	if err := keyring.CheckKey(keyType, description, payload); err != nil {
		return 0, fmt.Errorf("container %s: %w", c.id, err)
	}
	if err := c.Lock(); err != nil {
		return 0, err
	}
	defer c.Unlock()
	err = c.inKeyring(func() (err error) {
		serial, err = keyring.Add(unix.KEY_SPEC_SESSION_KEYRING, keyType, description, payload)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("container %s: %w", c.id, err)
	}
	return serial, nil
}

// Keys lists the keys linked into the container's own keyring: those
// AddKey put there and those its processes linked into it.
func (c *Container) Keys() ([]Key, error) {
	var keys []Key
	err := c.inKeyring(func() (err error) {
		keys, err = keyring.List(unix.KEY_SPEC_SESSION_KEYRING)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("container %s: %w", c.id, err)
	}
	return keys, nil
}

// UnlinkKey removes a key from the container's own keyring: key is its
// serial in decimal or, failing that, its description (ambiguous if two keys
// of different types share it). The kernel frees the key once no process
// still holds it. If no key matches, the error wraps ErrNoKey.
func (c *Container) UnlinkKey(key string) error {
	if err := c.Lock(); err != nil {
		return err
	}
	defer c.Unlock()
	err := c.inKeyring(func() error {
		keys, err := keyring.List(unix.KEY_SPEC_SESSION_KEYRING)
		if err != nil {
			return err
		}
		k, err := keyring.Match(keys, key)
		if err != nil {
			return err
		}
		return keyring.Unlink(unix.KEY_SPEC_SESSION_KEYRING, k.Serial)
	})
	if err != nil {
		return fmt.Errorf("container %s: %w", c.id, err)
	}
	return nil
}

// inKeyring runs fn on a throwaway thread whose session keyring is the
// container's, which makes the thread a possessor of it. The runtime owns
// the keyring but, as owner, may only search it (see keyring.Create); its
// possessors may read, write and link.
func (c *Container) inKeyring(fn func() error) error {
	if c.st.Keyring == "" {
		return fmt.Errorf("keyring: %w: it was created with NoNewKeyring (--no-new-keyring)", ErrNoKeyring)
	}
	// Enter joins by name and checks the serial: where the container's
	// keyring is gone, joining makes a new one, which dies with the thread.
	serial := c.st.KeyringSerial
	if serial == 0 {
		return fmt.Errorf("keyring: %w: its init has not been started", ErrNoKeyring)
	}
	errc := make(chan error, 1)
	nsenter.Throwaway(func() {
		if err := keyring.Enter(c.st.Keyring, serial); err != nil {
			errc <- err
			return
		}
		errc <- fn()
	})
	return <-errc
}
