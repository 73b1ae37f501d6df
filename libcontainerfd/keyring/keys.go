package keyring

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Keys in a container's keyring are managed from outside on a thread that
// has joined it (Enter): the runtime owns the keyring but may only search
// it, while its possessor may do everything. Such a thread must be thrown
// away afterwards (nsenter.Throwaway), so that nothing else ever runs with
// the container's keyring as its session keyring.

// Key is one key linked into a keyring. It never carries the payload.
type Key struct {
	Serial      int    `json:"serial"`
	Type        string `json:"type"`        // "user", "logon", "keyring" …; empty if we may not view it
	Description string `json:"description"` // empty if we may not view it
}

// PermPossessor lets only a possessor of the key (a process of the
// container, or a thread that joined its keyring) view, read, change, find,
// link or set its attributes. add_key's default would also let any process
// of the owner's uid (root, in other containers too) see it in /proc/keys.
const PermPossessor = keyPosAll

// ErrNoKey says that no key in the keyring has the serial or description
// asked for.
var ErrNoKey = errors.New("no such key")

// MaxPayload is the largest payload of a "user" or "logon" key.
const MaxPayload = 32767

// Enter makes the calling thread's session keyring the existing keyring
// called name, whose serial must be serial, so that the thread possesses it
// and everything linked into it. If name now names another keyring (or,
// being gone, a new empty one that Join made), it fails: that keyring dies
// with the thread. The caller must be on a thread that is thrown away
// afterwards (nsenter.Throwaway).
func Enter(name string, serial int) error {
	id, err := Join(name)
	if err != nil {
		return err
	}
	if id != serial {
		return fmt.Errorf("keyring: %q is keyring %d, not %d: %w", name, id, serial, unix.ENOKEY)
	}
	return nil
}

// CheckKey tells whether keyType and description may make a key: only "user"
// and "logon" keys, with a description and, for "logon", a "service:name"
// description as the kernel requires; payload must hold 1 to MaxPayload
// bytes.
func CheckKey(keyType, description string, payload []byte) error {
	if description == "" {
		return fmt.Errorf("keyring: empty key description")
	}
	switch keyType {
	case "user":
	case "logon":
		if i := strings.IndexByte(description, ':'); i <= 0 {
			return fmt.Errorf("keyring: a logon key's description must be \"service:name\", not %q", description)
		}
	default:
		return fmt.Errorf("keyring: key type %q: want user or logon", keyType)
	}
	if len(payload) == 0 || len(payload) > MaxPayload {
		return fmt.Errorf("keyring: %s key %q: payload of %d bytes, want 1 to %d", keyType, description, len(payload), MaxPayload)
	}
	return nil
}

// Add makes a key of keyType ("user" or "logon") called description that
// holds payload, readable and changeable only by a possessor, and links it
// into keyring, displacing a key of the same type and description. It
// returns the new key's serial.
//
// The key is made in the calling thread's own thread keyring and given its
// permissions there before it is linked into keyring, so it never shows in
// keyring with add_key's default permissions. The caller must possess
// keyring (see Enter) and be on a thread that is thrown away afterwards.
func Add(keyring int, keyType, description string, payload []byte) (int, error) {
	if err := CheckKey(keyType, description, payload); err != nil {
		return 0, err
	}
	id, err := unix.AddKey(keyType, description, payload, unix.KEY_SPEC_THREAD_KEYRING)
	if err != nil {
		return 0, fmt.Errorf("keyring: add %s key %q: %w", keyType, description, err)
	}
	// The thread keyring (and so the key, if not linked below) dies with
	// the thread; unlinking it here only keeps the count low meanwhile.
	defer unix.KeyctlInt(unix.KEYCTL_UNLINK, id, unix.KEY_SPEC_THREAD_KEYRING, 0, 0)
	if err := unix.KeyctlSetperm(id, PermPossessor); err != nil {
		return 0, fmt.Errorf("keyring: set permissions of %s key %q: %w", keyType, description, err)
	}
	if _, err := unix.KeyctlInt(unix.KEYCTL_LINK, id, keyring, 0, 0); err != nil {
		return 0, fmt.Errorf("keyring: link %s key %q into keyring %d: %w", keyType, description, keyring, err)
	}
	return id, nil
}

// List returns the keys linked into keyring, in the keyring's order. A key
// the caller may not view is listed by serial only. The caller must be
// allowed to read keyring (a possessor may).
func List(keyring int) ([]Key, error) {
	var buf []byte
	for {
		n, err := unix.KeyctlBuffer(unix.KEYCTL_READ, keyring, buf, 0)
		if err != nil {
			return nil, fmt.Errorf("keyring: read keyring %d: %w", keyring, err)
		}
		if n <= len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, n) // grown since: try again
	}
	keys := make([]Key, 0, len(buf)/4)
	for i := 0; i+4 <= len(buf); i += 4 {
		serial := int(int32(uint32(buf[i]) | uint32(buf[i+1])<<8 | uint32(buf[i+2])<<16 | uint32(buf[i+3])<<24))
		k, err := Describe(serial)
		if errors.Is(err, unix.ENOKEY) || errors.Is(err, unix.EKEYREVOKED) || errors.Is(err, unix.EKEYEXPIRED) {
			continue // gone since the read
		}
		if err != nil {
			k = Key{Serial: serial}
		}
		keys = append(keys, k)
	}
	return keys, nil
}

// Describe returns the type and description of the key serial.
func Describe(serial int) (Key, error) {
	s, err := unix.KeyctlString(unix.KEYCTL_DESCRIBE, serial)
	if err != nil {
		return Key{}, fmt.Errorf("keyring: describe key %d: %w", serial, err)
	}
	// "type;uid;gid;perm;description": only the description may hold ';'.
	f := strings.SplitN(s, ";", 5)
	if len(f) != 5 {
		return Key{}, fmt.Errorf("keyring: describe key %d: unexpected %q", serial, s)
	}
	return Key{Serial: serial, Type: f[0], Description: f[4]}, nil
}

// Unlink removes the link to key from keyring. The key goes when nothing
// else links or holds it. The caller must be allowed to write keyring (a
// possessor may).
func Unlink(keyring, key int) error {
	if _, err := unix.KeyctlInt(unix.KEYCTL_UNLINK, key, keyring, 0, 0); err != nil {
		return fmt.Errorf("keyring: unlink key %d from keyring %d: %w", key, keyring, err)
	}
	return nil
}

// Match picks the key that key names among keys: the one whose serial it
// is, in decimal, or else the one whose description it is. Two keys with
// that description (of different types) are ambiguous.
func Match(keys []Key, key string) (Key, error) {
	if n, err := strconv.Atoi(key); err == nil {
		for _, k := range keys {
			if k.Serial == n {
				return k, nil
			}
		}
	}
	var found []Key
	for _, k := range keys {
		if k.Description == key && k.Type != "" {
			found = append(found, k)
		}
	}
	switch len(found) {
	case 0:
		return Key{}, fmt.Errorf("keyring: %q: %w", key, ErrNoKey)
	case 1:
		return found[0], nil
	}
	var s []string
	for _, k := range found {
		s = append(s, fmt.Sprintf("%d (%s)", k.Serial, k.Type))
	}
	return Key{}, fmt.Errorf("keyring: %d keys are called %q: %s; give a serial", len(found), key, strings.Join(s, ", "))
}
