package libcontainerfd

import (
	"encoding/json"
	"errors"
	"fmt"

	"golang.org/x/sys/unix"
)

// The runtime and its stages talk over SOCK_SEQPACKET socketpairs: one JSON
// value per message, fds one per message with SCM_RIGHTS.

const maxMsg = 1 << 20

func sendJSON(sock int, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	if len(b) > maxMsg {
		return fmt.Errorf("message of %d bytes is too large", len(b))
	}
	return unix.Sendmsg(sock, b, nil, nil, 0)
}

// recvJSON reads one message into v. It returns io.EOF-like errEOF when the
// peer closed the socket (for a stage: it exec'd or died).
func recvJSON(sock int, v any) error {
	b := make([]byte, maxMsg)
	for {
		n, _, _, _, err := unix.Recvmsg(sock, b, nil, 0)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return err
		}
		if n == 0 {
			return errEOF
		}
		return json.Unmarshal(b[:n], v)
	}
}

var errEOF = errors.New("peer closed the connection")

func sendFD(sock, fd int) error {
	return unix.Sendmsg(sock, []byte{0}, unix.UnixRights(fd), nil, 0)
}

func recvFD(sock int) (int, error) {
	oob := make([]byte, unix.CmsgSpace(4))
	b := make([]byte, 1)
	for {
		n, oobn, _, _, err := unix.Recvmsg(sock, b, oob, unix.MSG_CMSG_CLOEXEC)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return -1, err
		}
		if n == 0 && oobn == 0 {
			return -1, errEOF
		}
		msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
		if err != nil || len(msgs) != 1 {
			return -1, fmt.Errorf("expected one fd, got %d control messages: %v", len(msgs), err)
		}
		fds, err := unix.ParseUnixRights(&msgs[0])
		if err != nil || len(fds) != 1 {
			for _, fd := range fds {
				unix.Close(fd)
			}
			return -1, fmt.Errorf("expected one fd: %v", err)
		}
		return fds[0], nil
	}
}

// stageReply is what a stage answers: an empty Error means success.
type stageReply struct {
	Error string `json:"error,omitempty"`
}
