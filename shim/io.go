package shim

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/containerd/fifo"
	cfd "github.com/containerfd/containerfd/libcontainerfd"
	"golang.org/x/sys/unix"
)

// stdio is a process's IO as containerd asks for it: fifo paths, or a
// stdout of "binary://…" (a logging program) or "file://…"; empty streams
// are /dev/null.
type stdio struct {
	stdin, stdout, stderr string
	terminal              bool
}

// outputDrain bounds how long deleting a process waits for its output to be
// copied out: a process it left behind may hold the pipe open.
const outputDrain = 2 * time.Second

// loggerStop bounds how long a logging program has to flush after SIGTERM.
const loggerStop = 12 * time.Second

// processIO connects a process to its stdio, as runc's shim does: pipes the
// shim copies to and from the fifos (or a file, or a logging program), or a
// terminal whose master the shim copies the same way.
type processIO struct {
	child   []*os.File     // the process's ends, ours to close once it has them
	stdin   io.WriteCloser // where stdin goes: the pipe or the pty
	stdinMu sync.Mutex
	src     io.ReadCloser // the stdin fifo
	console *os.File
	out     sync.WaitGroup // the output copies
	closers []io.Closer    // what Close closes after the copies
	logger  *exec.Cmd
}

// newIO makes the pipes of a process without a terminal, owned by uid and
// gid (the container's root on the host, so that the process can reopen
// them as /dev/stdout), gives p their ends and starts the copies. With a
// terminal nothing is made until the pty's master comes back (console).
func newIO(ctx context.Context, id, ns string, s stdio, uid, gid int, p *cfd.Process) (_ *processIO, err error) {
	pio := &processIO{}
	defer func() {
		if err != nil {
			pio.Close()
		}
	}()
	if s.terminal {
		return pio, pio.openStdin(s.stdin)
	}
	null := func() (*os.File, error) {
		f, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
		if err == nil {
			pio.child = append(pio.child, f)
		}
		return f, err
	}
	pipe := func() (r, w *os.File, err error) {
		if r, w, err = os.Pipe(); err != nil {
			return nil, nil, fmt.Errorf("stdio pipes: %w", err)
		}
		return r, w, nil
	}
	// stdin
	if s.stdin == "" {
		if p.Stdin, err = null(); err != nil {
			return nil, err
		}
	} else {
		r, w, err := pipe()
		if err != nil {
			return nil, err
		}
		pio.child = append(pio.child, r)
		pio.stdin = w
		p.Stdin = r
		if err := pio.openStdin(s.stdin); err != nil {
			return nil, err
		}
	}
	// stdout and stderr: where each goes
	var dst [2]func() (io.WriteCloser, error)
	u, err := url.Parse(s.stdout)
	if err != nil {
		return nil, fmt.Errorf("stdout %q: %w", s.stdout, err)
	}
	var ends [2]*os.File // our read ends
	switch u.Scheme {
	case "", "fifo":
		for i, path := range []string{s.stdout, s.stderr} {
			if path != "" {
				dst[i] = func() (io.WriteCloser, error) { return openFifoWriter(ctx, path) }
			}
		}
	case "file":
		if err := os.MkdirAll(filepath.Dir(u.Path), 0o755); err != nil {
			return nil, fmt.Errorf("stdout %s: %w", s.stdout, err)
		}
		for i := range dst {
			dst[i] = func() (io.WriteCloser, error) {
				return os.OpenFile(u.Path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
			}
		}
	case "binary":
	default:
		return nil, fmt.Errorf("stdout %q: unknown scheme %s (want fifo, file or binary)", s.stdout, u.Scheme)
	}
	files := []**os.File{&p.Stdout, &p.Stderr}
	for i := range 2 {
		if dst[i] == nil && u.Scheme != "binary" {
			if *files[i], err = null(); err != nil {
				return nil, err
			}
			continue
		}
		r, w, err := pipe()
		if err != nil {
			return nil, err
		}
		pio.child = append(pio.child, w)
		*files[i] = w
		ends[i] = r
		pio.closers = append(pio.closers, r)
	}
	if u.Scheme == "binary" {
		if err := pio.startLogger(u, id, ns, ends); err != nil {
			return nil, err
		}
	} else {
		for i := range 2 {
			if dst[i] == nil {
				continue
			}
			w, err := dst[i]()
			if err != nil {
				return nil, fmt.Errorf("stdio: %w", err)
			}
			pio.copyOut(w, ends[i])
		}
	}
	for _, f := range pio.child {
		if err := f.Chown(uid, gid); err != nil && !errors.Is(err, os.ErrInvalid) {
			return nil, fmt.Errorf("stdio: give it to the container's root: %w", err)
		}
	}
	return pio, nil
}

// openFifoWriter opens a stdout or stderr fifo for writing, and for reading
// too, as runc's shim does: writes then never fail for want of a reader
// (ctr may not have opened its end yet, or may be gone).
func openFifoWriter(ctx context.Context, path string) (io.WriteCloser, error) {
	w, err := fifo.OpenFifo(ctx, path, syscall.O_WRONLY, 0)
	if err != nil {
		return nil, fmt.Errorf("open fifo %s: %w", path, err)
	}
	r, err := fifo.OpenFifo(ctx, path, syscall.O_RDONLY, 0)
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("open fifo %s: %w", path, err)
	}
	return bothCloser{w, r}, nil
}

type bothCloser struct {
	io.WriteCloser
	r io.Closer
}

func (b bothCloser) Close() error { return errors.Join(b.WriteCloser.Close(), b.r.Close()) }

// openStdin starts copying the stdin fifo to the process; at its end the
// process's stdin is closed.
func (pio *processIO) openStdin(path string) error {
	if path == "" {
		return nil
	}
	f, err := fifo.OpenFifo(context.Background(), path, syscall.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return fmt.Errorf("open stdin fifo %s: %w", path, err)
	}
	pio.src = f
	return nil
}

func (pio *processIO) copyStdin() {
	pio.stdinMu.Lock()
	dst, src := pio.stdin, pio.src
	pio.stdinMu.Unlock()
	if src == nil || dst == nil {
		return
	}
	go func() {
		io.Copy(dst, src)
		pio.closeStdin()
	}()
}

func (pio *processIO) copyOut(w io.WriteCloser, r io.Reader) {
	pio.out.Add(1)
	go func() {
		defer pio.out.Done()
		io.Copy(w, r)
		w.Close()
	}()
}

// startLogger runs a logging program (binary://path?arg=value) with the
// output pipes' read ends as its fds 3 and 4 and a pipe it closes (or
// writes to) when it is ready as fd 5, as containerd defines it.
func (pio *processIO) startLogger(u *url.URL, id, ns string, ends [2]*os.File) error {
	var args []string
	for k, vs := range u.Query() {
		args = append(args, k)
		if len(vs) > 0 {
			args = append(args, vs[0])
		}
	}
	r, w, err := os.Pipe()
	if err != nil {
		return err
	}
	defer r.Close()
	cmd := exec.Command(u.Path, args...)
	cmd.Env = []string{"CONTAINER_ID=" + id, "CONTAINER_NAMESPACE=" + ns}
	cmd.ExtraFiles = []*os.File{ends[0], ends[1], w}
	err = cmd.Start()
	w.Close()
	if err != nil {
		return fmt.Errorf("logging binary %s: %w", u.Path, err)
	}
	pio.logger = cmd
	if _, err := r.Read(make([]byte, 1)); err != nil && err != io.EOF {
		return fmt.Errorf("logging binary %s: %w", u.Path, err)
	}
	return nil
}

// started closes our copies of the process's ends, so that its output
// ends when it (and whatever it left holding them) is gone, and starts
// copying stdin.
func (pio *processIO) started() {
	for _, f := range pio.child {
		f.Close()
	}
	pio.child = nil
	pio.copyStdin()
}

// attachConsole copies the pty's master to stdout and from stdin.
func (pio *processIO) attachConsole(ctx context.Context, master *os.File, stdout string) error {
	// A non-blocking copy, for Go's poller: closing it ends the copies.
	fd, err := unix.FcntlInt(master.Fd(), unix.F_DUPFD_CLOEXEC, 3)
	master.Close()
	if err != nil {
		return fmt.Errorf("console: %w", err)
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return fmt.Errorf("console: %w", err)
	}
	pio.console = os.NewFile(uintptr(fd), "pty master")
	pio.closers = append(pio.closers, pio.console)
	pio.stdin = nopCloser{pio.console}
	if stdout != "" {
		w, err := openFifoWriter(ctx, stdout)
		if err != nil {
			return err
		}
		// The copy ends with EIO once the process, which holds the pty's
		// peer, is gone.
		pio.copyOut(w, pio.console)
	}
	pio.copyStdin()
	return nil
}

type nopCloser struct{ io.Writer }

func (nopCloser) Close() error { return nil }

// closeStdin closes the process's stdin (containerd's CloseIO): the pipe,
// or for a terminal the stdin fifo's copy.
func (pio *processIO) closeStdin() {
	pio.stdinMu.Lock()
	defer pio.stdinMu.Unlock()
	if pio.src != nil {
		pio.src.Close()
		pio.src = nil
	}
	if pio.stdin != nil {
		pio.stdin.Close()
		pio.stdin = nil
	}
}

// Close waits (a while) for the output to be copied out and closes
// everything; a logging program gets SIGTERM, then SIGKILL.
func (pio *processIO) Close() {
	// The ends of a process that never got them (its create or start
	// failed): the copies from them end once they are closed.
	for _, f := range pio.child {
		f.Close()
	}
	pio.child = nil
	done := make(chan struct{})
	go func() {
		pio.out.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(outputDrain):
	}
	pio.closeStdin()
	for _, c := range pio.closers {
		c.Close()
	}
	if pio.logger != nil {
		pio.logger.Process.Signal(unix.SIGTERM)
		exited := make(chan struct{})
		go func() {
			pio.logger.Wait()
			close(exited)
		}()
		select {
		case <-exited:
		case <-time.After(loggerStop):
			pio.logger.Process.Kill()
			<-exited
		}
	}
}
