// Package keyreq routes key requests (request_key(2)) made inside a
// container to a handler its creator named, instead of the host's
// /sbin/request-key configuration.
//
// The kernel runs /sbin/request-key for a key nobody has, as root in the
// init namespaces, with the requester's session keyring serial among its
// arguments; a request-key.d entry (ConfLine) makes it run `containerfd
// key-upcall` for every request. A container with a handler is registered
// in a root-only table keyed by its session keyring's serial (Register);
// Upcall looks the requester's session keyring up there and runs the
// handler, or, for a request from anywhere else, hands it to the host's own
// rules.
package keyreq

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Dir holds one file per registered container, named by its session
// keyring's serial. Only root may read it: it names the keyrings. It is
// beside root's default --root (/run/containerfd), not in it, where
// "keyreq" is a container id like any other.
var Dir = "/run/containerfd-keyreq"

// RequestKey is the program the kernel runs; its path is built into the
// kernel.
const RequestKey = "/sbin/request-key"

// ConfDir is where request-key reads its extra rules; ConfFile is its main
// configuration.
var (
	ConfDir  = "/etc/request-key.d"
	ConfFile = "/etc/request-key.conf"
)

// Command is the containerfd command a request-key.d line runs.
const Command = "key-upcall"

// DefaultTimeout bounds a handler run when the caller gives none.
const DefaultTimeout = 10 * time.Second

// Entry is what the table holds for one container.
type Entry struct {
	ID   string `json:"id"`
	Root string `json:"root"`
	// Keyring is the description of the container's session keyring,
	// which carries 128 random bits: a serial reused by another keyring
	// after the container went does not match it.
	Keyring string        `json:"keyring"`
	Handler string        `json:"handler"`
	Timeout time.Duration `json:"timeout"`
}

// Validate checks a handler and its timeout as Register will use them.
func Validate(handler string, timeout time.Duration) error {
	if !filepath.IsAbs(handler) {
		return fmt.Errorf("key handler %q: must be an absolute path", handler)
	}
	fi, err := os.Stat(handler)
	if err != nil {
		return fmt.Errorf("key handler: %w", err)
	}
	if !fi.Mode().IsRegular() || fi.Mode()&0o111 == 0 {
		return fmt.Errorf("key handler %s: not an executable file", handler)
	}
	if timeout < 0 {
		return fmt.Errorf("key handler timeout %v: must not be negative", timeout)
	}
	return nil
}

// CheckHost tells whether key requests reach containerfd here: the kernel's
// /sbin/request-key, and a request-key.d entry that runs the key-upcall of
// a containerfd binary that exists.
func CheckHost() error {
	if _, err := os.Stat(RequestKey); err != nil {
		return fmt.Errorf("key requests: %s is missing: install keyutils", RequestKey)
	}
	files, err := confFiles()
	if err != nil {
		return fmt.Errorf("key requests: %w", err)
	}
	for _, f := range files {
		if bin := ourBinary(f); bin != "" {
			if _, err := os.Stat(bin); err == nil {
				return nil
			}
		}
	}
	return fmt.Errorf("key requests: no file in %s runs an existing containerfd's %q: run `make install` (it installs %s/containerfd.conf)", ConfDir, Command, ConfDir)
}

// confFiles lists the *.conf files of ConfDir.
func confFiles() ([]string, error) {
	files, err := filepath.Glob(filepath.Join(ConfDir, "*.conf"))
	if err != nil {
		return nil, err
	}
	return files, nil
}

// ourBinary returns the program of the first line of conf that runs
// key-upcall, or "" if none does.
func ourBinary(conf string) string {
	f, err := os.Open(conf)
	if err != nil {
		return ""
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		// op type description callout program args...
		w := strings.Fields(s.Text())
		if len(w) >= 6 && !strings.HasPrefix(w[0], "#") && w[5] == Command {
			return w[4]
		}
	}
	return ""
}

// Register records the container whose session keyring is serial, with
// description keyring, in the table. The file is written whole or not at
// all.
func Register(serial int, e Entry) error {
	if err := os.MkdirAll(Dir, 0o700); err != nil {
		return fmt.Errorf("key requests: %w", err)
	}
	if err := os.Chmod(Dir, 0o700); err != nil {
		return fmt.Errorf("key requests: %w", err)
	}
	b, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("key requests: %w", err)
	}
	name := filepath.Join(Dir, strconv.Itoa(serial))
	tmp, err := os.CreateTemp(Dir, ".tmp-")
	if err != nil {
		return fmt.Errorf("key requests: %w", err)
	}
	_, err = tmp.Write(b)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), name)
	}
	if err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("key requests: register keyring %d: %w", serial, err)
	}
	return nil
}

// Unregister removes the entry of the keyring serial. None is no error.
func Unregister(serial int) error {
	err := os.Remove(filepath.Join(Dir, strconv.Itoa(serial)))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("key requests: unregister keyring %d: %w", serial, err)
	}
	return nil
}

// Lookup returns the entry of the keyring serial, or nil if there is none.
func Lookup(serial int) (*Entry, error) {
	b, err := os.ReadFile(filepath.Join(Dir, strconv.Itoa(serial)))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("key requests: %w", err)
	}
	var e Entry
	if err := json.Unmarshal(b, &e); err != nil {
		return nil, fmt.Errorf("key requests: entry %d: %w", serial, err)
	}
	return &e, nil
}
