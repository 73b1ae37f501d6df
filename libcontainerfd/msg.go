package libcontainerfd

import (
	"encoding/json"
	"errors"
	"fmt"
	"syscall"

	"github.com/containerfd/containerfd/libcontainerfd/internal/spawn"
	"golang.org/x/sys/unix"
)

// The runtime and its stages talk over SOCK_SEQPACKET sockets: one JSON value
// per message, with at most one fd attached (SCM_RIGHTS) — but for the fds
// of a mount tree, which go many to a message (sendFDs).

const maxMsg = 1 << 20

var errEOF = errors.New("peer closed the connection")

// send writes v as one message, with fd attached unless it is -1.
func send(sock int, v any, fd int) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	if len(b) > maxMsg {
		return fmt.Errorf("message of %d bytes is too large", len(b))
	}
	var oob []byte
	if fd >= 0 {
		oob = unix.UnixRights(fd)
	}
	return unix.Sendmsg(sock, b, oob, nil, 0)
}

// recv reads one message into v and returns the fd attached to it, or -1.
// It returns errEOF when the peer closed the socket (for a stage: it exec'd
// or died).
func recv(sock int, v any) (int, error) {
	// Peek at the size first: a buffer of maxMsg for every message costs
	// the stage hundreds of page faults (and its container the memory).
	var b []byte
	for {
		n, _, _, _, err := unix.Recvmsg(sock, nil, nil, unix.MSG_PEEK|unix.MSG_TRUNC)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return -1, err
		}
		if n > maxMsg {
			return -1, fmt.Errorf("message of %d bytes is too large", n)
		}
		b = make([]byte, max(n, 1))
		break
	}
	oob := make([]byte, unix.CmsgSpace(4))
	for {
		n, oobn, _, _, err := unix.Recvmsg(sock, b, oob, unix.MSG_CMSG_CLOEXEC)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return -1, err
		}
		fd, err := parseFD(oob[:oobn])
		if err != nil {
			return -1, err
		}
		if n == 0 && fd < 0 {
			return -1, errEOF
		}
		if err := json.Unmarshal(b[:n], v); err != nil {
			if fd >= 0 {
				unix.Close(fd)
			}
			return -1, err
		}
		return fd, nil
	}
}

func parseFD(oob []byte) (int, error) {
	if len(oob) == 0 {
		return -1, nil
	}
	fds, err := parseFDs(oob)
	if err != nil {
		return -1, err
	}
	if len(fds) != 1 {
		for _, fd := range fds {
			unix.Close(fd)
		}
		return -1, fmt.Errorf("expected one fd, got %d", len(fds))
	}
	return fds[0], nil
}

// parseFDs returns the fds of the SCM_RIGHTS messages in oob.
func parseFDs(oob []byte) ([]int, error) {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return nil, err
	}
	var fds []int
	for i := range msgs {
		got, err := unix.ParseUnixRights(&msgs[i])
		if err != nil {
			for _, fd := range fds {
				unix.Close(fd)
			}
			return nil, err
		}
		fds = append(fds, got...)
	}
	return fds, nil
}

func sendJSON(sock int, v any) error { return send(sock, v, -1) }

func recvJSON(sock int, v any) error {
	fd, err := recv(sock, v)
	if fd >= 0 {
		unix.Close(fd)
	}
	return err
}

func sendFD(sock, fd int) error { return send(sock, struct{}{}, fd) }

func recvFD(sock int) (int, error) {
	var v struct{}
	fd, err := recv(sock, &v)
	if err == nil && fd < 0 {
		return -1, errors.New("expected an fd")
	}
	return fd, err
}

// maxFDs is how many fds one message may carry (the kernel's SCM_MAX_FD).
const maxFDs = 253

// sendFDs sends fds, in order, in as few messages as the kernel allows: a
// message per fd cost init a wake-up and two recvmsg each (~20 for runc's
// default mounts). The receiver, recvFDs, must know len(fds).
func sendFDs(sock int, fds []int) error {
	for len(fds) > 0 {
		n := min(len(fds), maxFDs)
		if err := unix.Sendmsg(sock, []byte("{}"), unix.UnixRights(fds[:n]...), nil, 0); err != nil {
			return err
		}
		fds = fds[n:]
	}
	return nil
}

// fdQueue holds received fds for the caller to take in order.
type fdQueue []int

// recvFDs receives the n fds that sendFDs sent.
func recvFDs(sock, n int) (fdQueue, error) {
	q := make(fdQueue, 0, n)
	b := make([]byte, 2)
	for len(q) < n {
		want := min(n-len(q), maxFDs)
		oob := make([]byte, unix.CmsgSpace(4*want))
		var oobn, flags int
		var err error
		for {
			_, oobn, flags, _, err = unix.Recvmsg(sock, b, oob, unix.MSG_CMSG_CLOEXEC)
			if err != unix.EINTR {
				break
			}
		}
		if err == nil && oobn == 0 {
			err = fmt.Errorf("expected %d fds, got none", want)
		}
		var got []int
		if err == nil {
			got, err = parseFDs(oob[:oobn])
		}
		q = append(q, got...)
		if err == nil && (len(got) != want || flags&unix.MSG_CTRUNC != 0) {
			err = fmt.Errorf("expected %d fds, got %d", want, len(got))
		}
		if err != nil {
			q.close()
			return nil, err
		}
	}
	return q, nil
}

// next takes the next fd.
func (q *fdQueue) next() (int, error) {
	if len(*q) == 0 {
		return -1, errors.New("expected an fd")
	}
	fd := (*q)[0]
	*q = (*q)[1:]
	return fd, nil
}

// close closes the fds not taken.
func (q *fdQueue) close() {
	for _, fd := range *q {
		unix.Close(fd)
	}
	*q = nil
}

// stageReply is what a stage says: an error, that it is ready (init,
// created), or, with an fd attached, the pty master it made (Terminal).
type stageReply struct {
	Error   string `json:"error,omitempty"`
	Ready   bool   `json:"ready,omitempty"`
	Console bool   `json:"console,omitempty"`
	// Mounted: init has attached every mount and waits for a message
	// before pivot_root (Config.BeforePivot).
	Mounted bool `json:"mounted,omitempty"`
	// Seccomp: the attached fd is the seccomp notify listener of the
	// process; the stage waits for "ok" once it is handed on.
	Seccomp bool `json:"seccomp,omitempty"`
	// Step and Errno, with Error, are a failed step of the process's
	// start (a spawn.ChildError), for the runtime to return as a direct
	// child's.
	Step  string `json:"step,omitempty"`
	Errno int    `json:"errno,omitempty"`
}

// stageEvents are what a caller of readStage does when the stage reports
// something on the way.
type stageEvents struct {
	mounted func() error       // init waits before pivot_root
	seccomp func(fd int) error // the process's seccomp notify fd; closed after
}

// readStage reads stage replies until ready, an error, or the stage's exit
// or exec (EOF). A console fd is stored in p.Console. wantReady says which
// reply ends the wait: ready (init) or EOF (exec, start).
func readStage(sock int, p *Process, wantReady bool, on stageEvents) error {
	for {
		var r stageReply
		fd, err := recv(sock, &r)
		switch {
		case err == errEOF && !wantReady:
			return nil
		case err != nil:
			return err
		case r.Error != "":
			if fd >= 0 {
				unix.Close(fd)
			}
			if r.Step != "" {
				return &stepError{msg: r.Error, ce: &spawn.ChildError{Step: r.Step, Err: syscall.Errno(r.Errno)}}
			}
			return errors.New(r.Error)
		case r.Console && fd >= 0 && p != nil:
			p.Console = newFile(fd, "pty master")
		case r.Seccomp && fd >= 0 && on.seccomp != nil:
			err := on.seccomp(fd)
			unix.Close(fd)
			if err != nil {
				return err
			}
			if err := sendJSON(sock, "ok"); err != nil {
				return err
			}
		case fd >= 0:
			unix.Close(fd)
		case r.Mounted:
			if err := on.mounted(); err != nil {
				return err
			}
			if err := sendJSON(sock, "pivot"); err != nil {
				return err
			}
		}
		if r.Ready && wantReady {
			return nil
		}
	}
}
