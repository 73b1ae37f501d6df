package main

import (
	"fmt"
	"io"
	"os"
	"sync"

	cfd "github.com/containerfd/containerfd/libcontainerfd"
)

// stdioPipes are the stdio of the process that `run` waits for, as runc
// gives it: pipes, which we copy from our stdin and to our stdout and
// stderr. The process never holds the caller's own files: a terminal
// among them would let it type into the caller's shell (TIOCSTI), and
// what it sees (a pipe, not a terminal or a file) does not depend on how
// the caller was started. `create` and `run --detach` leave the process
// the caller's stdio, as runc does.
type stdioPipes struct {
	child []*os.File // the process's ends, ours to close once it has them
	out   sync.WaitGroup
}

// give makes p's stdio pipes owned by uid and gid on the host (the
// container's root, as runc's: the process's user takes them over as it
// starts, so that it can open them again as /dev/stdout) and starts
// copying.
func (s *stdioPipes) give(p *cfd.Process, uid, gid int) error {
	var fs [6]*os.File // in r, in w, out r, out w, err r, err w
	for i := 0; i < len(fs); i += 2 {
		r, w, err := os.Pipe()
		if err != nil {
			for _, f := range fs[:i] {
				f.Close()
			}
			return fmt.Errorf("stdio pipes: %w", err)
		}
		fs[i], fs[i+1] = r, w
	}
	s.child = []*os.File{fs[0], fs[3], fs[5]}
	for _, f := range s.child {
		if err := f.Chown(uid, gid); err != nil {
			for _, f := range fs {
				f.Close()
			}
			s.child = nil
			return fmt.Errorf("stdio pipes: give them to the container's root: %w", err)
		}
	}
	p.Stdin, p.Stdout, p.Stderr = fs[0], fs[3], fs[5]
	go func() {
		io.Copy(fs[1], os.Stdin)
		fs[1].Close()
	}()
	s.out.Add(2)
	for _, c := range []struct {
		to   *os.File
		from *os.File
	}{{os.Stdout, fs[2]}, {os.Stderr, fs[4]}} {
		go func() {
			defer s.out.Done()
			io.Copy(c.to, c.from)
			c.from.Close()
		}()
	}
	return nil
}

// started closes our copies of the process's ends, so that its output
// ends when it (and whatever it left holding them) is gone.
func (s *stdioPipes) started() {
	for _, f := range s.child {
		f.Close()
	}
	s.child = nil
}

// wait waits until the process's output is copied out: all of it, as runc
// does, once the process and the rest of the container are gone.
func (s *stdioPipes) wait() { s.out.Wait() }
