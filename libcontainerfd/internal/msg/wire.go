package msg

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/containerfd/containerfd/libcontainerfd/internal/spawn"
	"golang.org/x/sys/unix"
)

// The wire: SOCK_SEQPACKET sockets, one JSON value per message, with at
// most one fd attached (SCM_RIGHTS), but for the fds of a mount tree, which
// go many to a message (SendFDs).

const maxMsg = 1 << 20

var ErrEOF = errors.New("peer closed the connection")

// Send writes v as one message, with fd attached unless it is -1.
func Send(sock int, v any, fd int) error {
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

// Recv reads one message into v and returns the fd attached to it, or -1.
// It returns ErrEOF when the peer closed the socket (for a stage: it exec'd
// or died).
func Recv(sock int, v any) (int, error) {
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
			return -1, ErrEOF
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

func SendJSON(sock int, v any) error { return Send(sock, v, -1) }

func RecvJSON(sock int, v any) error {
	fd, err := Recv(sock, v)
	if fd >= 0 {
		unix.Close(fd)
	}
	return err
}

func SendFD(sock, fd int) error { return Send(sock, struct{}{}, fd) }

func RecvFD(sock int) (int, error) {
	var v struct{}
	fd, err := Recv(sock, &v)
	if err == nil && fd < 0 {
		return -1, errors.New("expected an fd")
	}
	return fd, err
}

// maxFDs is how many fds one message may carry (the kernel's SCM_MAX_FD).
const maxFDs = 253

// SendFDs sends fds, in order, in as few messages as the kernel allows: a
// message per fd cost init a wake-up and two recvmsg each (~20 for runc's
// default mounts). The receiver, RecvFDs, must know len(fds).
func SendFDs(sock int, fds []int) error {
	for len(fds) > 0 {
		n := min(len(fds), maxFDs)
		if err := unix.Sendmsg(sock, []byte("{}"), unix.UnixRights(fds[:n]...), nil, 0); err != nil {
			return err
		}
		fds = fds[n:]
	}
	return nil
}

// RecvFDs receives the n fds that SendFDs sent.
func RecvFDs(sock, n int) ([]int, error) {
	fds := make([]int, 0, n)
	b := make([]byte, 2)
	for len(fds) < n {
		want := min(n-len(fds), maxFDs)
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
		fds = append(fds, got...)
		if err == nil && (len(got) != want || flags&unix.MSG_CTRUNC != 0) {
			err = fmt.Errorf("expected %d fds, got %d", want, len(got))
		}
		if err != nil {
			for _, fd := range fds {
				unix.Close(fd)
			}
			return nil, err
		}
	}
	return fds, nil
}

// RecvMount receives the detached mount a gated child sends
// (spawn.Gate.Mount): one byte with the fd attached.
func RecvMount(sock int) (int, error) {
	oob := make([]byte, unix.CmsgSpace(4))
	for {
		n, oobn, _, _, err := unix.Recvmsg(sock, make([]byte, 1), oob, unix.MSG_CMSG_CLOEXEC)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return -1, err
		}
		if n == 0 && oobn == 0 {
			return -1, ErrEOF
		}
		return parseFD(oob[:oobn])
	}
}

// SendGo lets a gated init go on: the program's path, an entry to add to
// its environment (if not ""), and the pty peer that becomes its terminal
// (-1: none) attached.
func SendGo(sock int, path, env string, peer int) error {
	if len(path) >= unix.PathMax || len(env) >= unix.PathMax {
		return fmt.Errorf("program %q or environment entry %q: %w", path, env, unix.ENAMETOOLONG)
	}
	if strings.IndexByte(path+env, 0) >= 0 {
		return fmt.Errorf("program %q or environment entry %q: has a NUL: %w", path, env, unix.EINVAL)
	}
	b := []byte(path)
	if env != "" {
		b = append(append(b, 0), env...)
	}
	var oob []byte
	if peer >= 0 {
		oob = unix.UnixRights(peer)
	}
	return unix.Sendmsg(sock, b, oob, nil, 0)
}

// ReadStepRecord waits for a direct child past its gate to exec, which
// closes conn, or to report the step that failed (spawn.StepRecord).
func ReadStepRecord(conn int) error {
	b := make([]byte, spawn.StepRecord+1)
	for {
		n, err := unix.Read(conn, b)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return err
		}
		if n == 0 {
			return nil
		}
		return spawn.ParseStepRecord(b[:n])
	}
}
