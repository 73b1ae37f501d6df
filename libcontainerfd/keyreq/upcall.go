package keyreq

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/containerfd/containerfd/libcontainerfd/keyring"
	"golang.org/x/sys/unix"
)

// MaxPayload is the most a handler may answer: the kernel's limit for
// KEYCTL_INSTANTIATE.
const MaxPayload = 1<<20 - 1

// negativeTimeout is how long a rejected key would stay in a keyring: it is
// unlinked at once, and expires soon after in a keyring we did not know of.
const negativeTimeout = 1

// Upcall answers the key request the kernel handed to request-key, which
// ran `containerfd key-upcall %o %k %u %g %T %P %S`: args are those seven.
// A request from a registered container's session keyring goes to its
// handler; any other goes to the host's own request-key rules, without
// ours. It returns the exit status the kernel should see.
func Upcall(args []string) (int, error) {
	if len(args) != 7 {
		return 1, fmt.Errorf("key-upcall: want 7 arguments (op key uid gid thread-keyring process-keyring session-keyring), got %d", len(args))
	}
	var n [6]int
	for i, a := range args[1:] {
		v, err := strconv.Atoi(a)
		if err != nil {
			return 1, fmt.Errorf("key-upcall: argument %d: %w", i+2, err)
		}
		n[i] = v
	}
	key, session := n[0], n[5]
	e, err := Lookup(session)
	if err != nil {
		// Perhaps a container's: never the host's answer then. The
		// kernel makes the key negative and the requester gets ENOKEY.
		return 1, err
	}
	if e == nil || args[0] != "create" {
		return fallback(args)
	}
	// Authority is a property of the thread's credentials: every key
	// call below must come from this thread, and the thread must not
	// serve another goroutine afterwards.
	runtime.LockOSThread()
	if _, err := unix.KeyctlInt(unix.KEYCTL_ASSUME_AUTHORITY, key, 0, 0, 0); err != nil {
		return 1, fmt.Errorf("key-upcall: assume authority over key %d: %w", key, err)
	}
	// With authority we search as the requester, who possesses its
	// session keyring: its description tells a live container's keyring
	// from a serial reused since.
	if ring, err := keyring.Describe(session); err != nil || ring.Type != "keyring" || ring.Description != e.Keyring {
		unix.KeyctlInt(unix.KEYCTL_ASSUME_AUTHORITY, 0, 0, 0, 0)
		return fallback(args)
	}
	r := request{key: key, rings: n[3:], entry: e}
	if err := r.answer(); err != nil {
		return 1, err
	}
	return 0, nil
}

// request is one key request from a registered container.
type request struct {
	key   int
	rings []int // the requester's thread, process and session keyrings (0: none)
	entry *Entry
}

// answer runs the handler and instantiates the key with what it printed,
// or rejects the key with the error the handler named.
func (r *request) answer() error {
	k, err := keyring.Describe(r.key)
	if err != nil {
		return r.reject(unix.EKEYREJECTED, err)
	}
	callout, err := readCallout()
	if err != nil {
		return r.reject(unix.EKEYREJECTED, err)
	}
	payload, errno, err := r.run(k, callout)
	if err != nil {
		return r.reject(errno, err)
	}
	// As keys added from outside: only a possessor (the container's
	// processes) may see or use it, not every process of its uid.
	if err := unix.KeyctlSetperm(r.key, keyring.PermPossessor); err != nil {
		return r.reject(unix.EKEYREJECTED, fmt.Errorf("key-upcall: set permissions of key %d: %w", r.key, err))
	}
	if _, err := unix.KeyctlBuffer(unix.KEYCTL_INSTANTIATE, r.key, payload, r.rings[2]); err != nil {
		errno := unix.EKEYREJECTED
		errors.As(err, &errno)
		return r.reject(errno, fmt.Errorf("key-upcall: instantiate %s key %q with %d bytes: %w", k.Type, k.Description, len(payload), err))
	}
	return nil
}

// readCallout reads the callout data of the request we hold authority for.
func readCallout() (string, error) {
	buf := make([]byte, 4096)
	for {
		n, err := unix.KeyctlBuffer(unix.KEYCTL_READ, unix.KEY_SPEC_REQKEY_AUTH_KEY, buf, 0)
		if err != nil {
			return "", fmt.Errorf("key-upcall: read callout data: %w", err)
		}
		if n <= len(buf) {
			return string(buf[:n]), nil
		}
		buf = make([]byte, n)
	}
}

// reject fails the request with errno, which the requester's request_key
// returns, and leaves no key behind: the kernel would keep a negative key
// in the requester's keyring for the timeout, answering the same request
// with the error meanwhile. It is unlinked from the requester's own
// keyrings first, where request_key puts it unless told otherwise.
func (r *request) reject(errno syscall.Errno, cause error) error {
	for _, ring := range r.rings {
		if ring != 0 {
			unix.KeyctlInt(unix.KEYCTL_UNLINK, r.key, ring, 0, 0)
		}
	}
	if _, err := unix.KeyctlInt(unix.KEYCTL_REJECT, r.key, negativeTimeout, int(errno), 0); err != nil {
		return errors.Join(cause, fmt.Errorf("key-upcall: reject key %d: %w", r.key, err))
	}
	return cause
}

// run runs the container's handler outside the container: argv type,
// description, callout data and container id, the same in the environment,
// stdin /dev/null, under the entry's timeout. It returns what the handler
// printed, or the errno to reject with: the one the handler named first on
// its stderr's last line (EACCES), ETIMEDOUT on a timeout, else
// EKEYREJECTED.
func (r *request) run(k keyring.Key, callout string) ([]byte, syscall.Errno, error) {
	e := r.entry
	timeout := e.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, e.Handler, k.Type, k.Description, callout, e.ID)
	cmd.Env = []string{
		"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
		"CONTAINERFD_KEY_TYPE=" + k.Type,
		"CONTAINERFD_KEY_DESCRIPTION=" + k.Description,
		"CONTAINERFD_KEY_CALLOUT=" + callout,
		"CONTAINERFD_ID=" + e.ID,
		"CONTAINERFD_ROOT=" + e.Root,
	}
	cmd.Dir = "/"
	// Its own process group, so that a timeout kills what it started too.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return unix.Kill(-cmd.Process.Pid, unix.SIGKILL) }
	cmd.WaitDelay = time.Second
	var stdout, stderr limited
	stdout.max, stderr.max = MaxPayload, 4096
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	what := fmt.Sprintf("key-upcall: container %s: handler %s for %s key %q", e.ID, e.Handler, k.Type, k.Description)
	switch {
	case ctx.Err() != nil:
		return nil, unix.ETIMEDOUT, fmt.Errorf("%s: timed out after %v", what, timeout)
	case err != nil:
		return nil, deniedWith(stderr.Bytes()), fmt.Errorf("%s: %w: %s", what, err, strings.TrimSpace(stderr.String()))
	case stdout.over:
		return nil, unix.EKEYREJECTED, fmt.Errorf("%s: answered more than %d bytes", what, MaxPayload)
	}
	return stdout.Bytes(), 0, nil
}

// deniedWith returns the errno a handler's stderr names: the first word of
// its last line, if it is an errno's name (EACCES), else EKEYREJECTED.
func deniedWith(stderr []byte) syscall.Errno {
	lines := strings.Split(strings.TrimSpace(string(stderr)), "\n")
	w := strings.Fields(lines[len(lines)-1])
	if len(w) > 0 {
		name := strings.TrimRight(w[0], ":")
		for e := syscall.Errno(1); e < 256; e++ {
			if unix.ErrnoName(e) == name {
				return e
			}
		}
	}
	return unix.EKEYREJECTED
}

// limited keeps the first max bytes written to it and notes more.
type limited struct {
	bytes.Buffer
	max  int
	over bool
}

func (l *limited) Write(p []byte) (int, error) {
	if room := l.max - l.Len(); len(p) > room {
		l.over = true
		p = p[:max(room, 0)]
	}
	l.Buffer.Write(p)
	return len(p), nil
}

// fallback answers a request from outside every registered container as if
// containerfd were not installed: the host's /sbin/request-key with the
// same arguments, reading the host's rules without the lines that run
// key-upcall (any containerfd's), from a private copy (request-key -l reads
// ./request-key.conf and ./request-key.d; it skips symlinks in the latter).
func fallback(args []string) (int, error) {
	dir, err := os.MkdirTemp("", "containerfd-key-upcall-")
	if err != nil {
		return 1, fmt.Errorf("key-upcall: %w", err)
	}
	defer os.RemoveAll(dir)
	if err := copyRules(dir); err != nil {
		return 1, fmt.Errorf("key-upcall: %w", err)
	}
	cmd := exec.Command(RequestKey, append([]string{"-l"}, args...)...)
	cmd.Dir = dir
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	err = cmd.Run()
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		return max(exit.ExitCode(), 1), nil
	}
	if err != nil {
		return 1, fmt.Errorf("key-upcall: %w", err)
	}
	return 0, nil
}

// copyRules copies the host's request-key rules into dir, as request-key -l
// reads them from its working directory, leaving out every file that runs
// key-upcall.
func copyRules(dir string) error {
	d := filepath.Join(dir, "request-key.d")
	if err := os.Mkdir(d, 0o700); err != nil {
		return err
	}
	if err := copyFile(ConfFile, filepath.Join(dir, "request-key.conf")); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	files, err := confFiles()
	if err != nil {
		return err
	}
	for _, f := range files {
		if ourBinary(f) != "" {
			continue
		}
		if err := copyFile(f, filepath.Join(d, filepath.Base(f))); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	return nil
}

func copyFile(from, to string) error {
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	_, err = io.Copy(out, in)
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	return err
}
