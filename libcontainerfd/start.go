package libcontainerfd

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/containerfd/containerfd/libcontainerfd/internal/msg"
	"github.com/containerfd/containerfd/libcontainerfd/internal/spawn"

	"github.com/containerfd/containerfd/internal/stopat"
	"golang.org/x/sys/unix"
)

// listenStart makes the socket Start connects to, in the state directory.
// Paths are reached through /proc/self/fd so their length never matters.
func (c *Container) listenStart() (int, error) {
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("container %s: start socket: %w", c.id, err)
	}
	path := fmt.Sprintf("/proc/self/fd/%d/%s", c.lockFD, startSocket)
	if err := unix.Bind(fd, &unix.SockaddrUnix{Name: path}); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("container %s: bind start socket: %w", c.id, err)
	}
	if err := unix.Listen(fd, 1); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("container %s: listen on start socket: %w", c.id, err)
	}
	return fd, nil
}

// ExecFailed reports whether err, from Start or Exec, is the process's
// program failing to execute once all else was set up, and gives the reason
// as runc's init prints it on the process's stderr ("exec /run.sh: no such
// file or directory").
func ExecFailed(err error) (string, bool) {
	var se *msg.StepError
	if errors.As(err, &se) && se.Step() == spawn.StepExecve {
		return se.Error(), true
	}
	return "", false
}

// Start lets init exec its process. It returns the exec's error, if any.
func (c *Container) Start() error {
	if err := c.Lock(); err != nil {
		return err
	}
	defer c.Unlock()
	if c.st.Started {
		return fmt.Errorf("container %s: %w", c.id, ErrAlreadyStart)
	}
	if !c.initAlive() {
		return fmt.Errorf("container %s: start: %w", c.id, ErrNotRunning)
	}
	path := filepath.Join(c.dir, startSocket)
	pfd, err := unix.Open(path, unix.O_PATH|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("container %s: start: %w", c.id, err)
	}
	defer unix.Close(pfd)
	conn, err := unix.Socket(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("container %s: start: %w", c.id, err)
	}
	defer unix.Close(conn)
	if err := unix.Connect(conn, &unix.SockaddrUnix{Name: fmt.Sprintf("/proc/self/fd/%d", pfd)}); err != nil {
		return fmt.Errorf("container %s: start: connect to init: %w", c.id, err)
	}
	if err := msg.SendJSON(conn, msg.StartOrder); err != nil {
		return fmt.Errorf("container %s: start: %w", c.id, err)
	}
	if c.st.DirectInit {
		err = msg.ReadStepRecord(conn)
		if w := c.st.InitStep; w != nil {
			err = msg.ChildError(err, *w)
		}
	} else {
		on := msg.Events{Seccomp: func(fd int) error { return c.handOnNotify(fd, c.st.Init.Pid) }}
		err = msg.ReadReplies(conn, false, on)
	}
	if err != nil {
		return fmt.Errorf("container %s: start: %w", c.id, err)
	}
	os.Remove(path)
	stopat.Point("start:started")
	c.st.Started = true
	return c.Save()
}
