package hooks

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"syscall"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

const (
	// outputTail is how much of the end of a hook's stdout and of its
	// stderr is kept for the error.
	outputTail = 4 << 10
	// waitDelay bounds how long a hook's stdout/stderr/stdin pipes are
	// waited for once it has exited (or been killed): a process the hook
	// left behind may hold them open. A hook that exited 0 still succeeds.
	waitDelay = time.Second
)

// marshalState encodes the state exactly as specs.State defines it
// (ociVersion, id, status, pid, bundle, annotations).
func marshalState(s *specs.State) ([]byte, error) { return json.Marshal(s) }

// runOne runs hook i of kind and returns nil or an *Error.
func runOne(kind Kind, i int, h *specs.Hook, state []byte, bundle string, prepare Prepare) error {
	fail := func(err error) error { return &Error{Kind: kind, Index: i, Path: h.Path, Err: err} }

	// config.md: "path MUST be absolute"; "If set, timeout MUST be greater
	// than zero."
	if !filepath.IsAbs(h.Path) {
		return fail(errors.New("path must be absolute"))
	}
	timeout := 0
	if h.Timeout != nil {
		if *h.Timeout <= 0 {
			return fail(fmt.Errorf("timeout must be greater than zero, not %d", *h.Timeout))
		}
		timeout = *h.Timeout
	}

	ctx, cancel := context.Background(), context.CancelFunc(func() {})
	if timeout > 0 {
		ctx, cancel = context.WithTimeout(ctx, time.Duration(timeout)*time.Second)
	}
	defer cancel()

	var stdout, stderr tail
	cmd := exec.CommandContext(ctx, h.Path)
	// argv exactly as configured: Args[0] is argv[0] (execv semantics).
	cmd.Args = slices.Clone(h.Args)
	if len(cmd.Args) == 0 {
		cmd.Args = []string{h.Path}
	}
	// The environment exactly as configured; a nil Env would make os/exec
	// pass ours.
	cmd.Env = append([]string{}, h.Env...)
	cmd.Dir = workDir(bundle)
	cmd.Stdin = bytes.NewReader(state) // closed once written
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return killGroup(cmd.Process) }
	cmd.WaitDelay = waitDelay

	if prepare != nil {
		if err := prepare(cmd); err != nil {
			return fail(fmt.Errorf("prepare: %w", err))
		}
		if cmd.SysProcAttr == nil {
			cmd.SysProcAttr = &syscall.SysProcAttr{}
		}
		if !cmd.SysProcAttr.Setsid { // a new session is a new group too
			cmd.SysProcAttr.Setpgid, cmd.SysProcAttr.Pgid = true, 0
		}
	}

	// os/exec passes the child every fd that is not close-on-exec. Ours all
	// are, but fds inherited from whoever started the runtime may not be
	// (conmon's --preserve-fds, a careless parent): mark every fd above 2
	// close-on-exec so that the hook gets 0-2 only. Nothing of the runtime
	// relies on implicit inheritance (docs/design.md §4: children get
	// their fds explicitly), so this process-wide change is harmless.
	if err := unix.CloseRange(3, ^uint(0), unix.CLOSE_RANGE_CLOEXEC); err != nil {
		return fail(fmt.Errorf("mark fds close-on-exec: %w", err))
	}

	err := cmd.Run()
	ps := cmd.ProcessState
	if errors.Is(err, exec.ErrWaitDelay) && ps != nil && ps.Success() {
		// Exited 0 but left something holding its output pipes open.
		err = nil
	}
	if err == nil {
		return nil
	}
	if ctx.Err() != nil && ps != nil && (!ps.Exited() || ps.Success()) {
		err = &timeoutError{seconds: timeout}
	}
	return &Error{Kind: kind, Index: i, Path: h.Path, Err: err, Stdout: stdout.bytes(), Stderr: stderr.bytes()}
}

// killGroup kills the hook's process group, and the hook itself in case it
// left its group.
func killGroup(p *os.Process) error {
	gerr := syscall.Kill(-p.Pid, syscall.SIGKILL)
	perr := p.Kill()
	if gerr == nil {
		return nil
	}
	return perr // os.ErrProcessDone when it had exited already
}

// workDir is the hook's working directory: the bundle, as with runc (which
// chdirs into it), when it is a directory; else the runtime's own.
func workDir(bundle string) string {
	if !filepath.IsAbs(bundle) {
		return ""
	}
	if fi, err := os.Stat(bundle); err != nil || !fi.IsDir() {
		return ""
	}
	return bundle
}

// tail is an io.Writer that keeps the last outputTail bytes written to it.
type tail struct {
	b   []byte
	cut bool
}

func (t *tail) Write(p []byte) (int, error) {
	n := len(p)
	if len(p) >= outputTail {
		t.b = append(t.b[:0], p[len(p)-outputTail:]...)
		t.cut = true
		return n, nil
	}
	if over := len(t.b) + len(p) - outputTail; over > 0 {
		t.b = append(t.b[:0], t.b[over:]...)
		t.cut = true
	}
	t.b = append(t.b, p...)
	return n, nil
}

// bytes returns what was kept, marked with a leading "..." if more was
// written.
func (t *tail) bytes() []byte {
	if len(t.b) == 0 {
		return nil
	}
	if t.cut {
		return append([]byte("..."), t.b...)
	}
	return slices.Clone(t.b)
}
