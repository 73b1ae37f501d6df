package libcontainerfd

import (
	"errors"
	"fmt"
	"time"

	"golang.org/x/sys/unix"
)

// Wait blocks until the last process of the container is gone — not only
// init: a process init left behind keeps the container alive.
func (c *Container) Wait() error { return c.waitEmpty(-1) }

// PollFD returns an fd that polls POLLHUP once the container's last process
// is gone, as the proposed container fd did. The caller closes it.
func (c *Container) PollFD() (int, error) {
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		return -1, fmt.Errorf("container %s: poll fd: %w", c.id, err)
	}
	go func() {
		c.waitEmpty(-1)
		unix.Close(p[1])
	}()
	return p[0], nil
}

var errTimeout = errors.New("timed out")

// waitEmpty waits for the cgroup to empty: by cgroup.events where there is
// one, else by looking at its processes every few milliseconds. A negative
// timeout waits for ever.
func (c *Container) waitEmpty(timeout time.Duration) error {
	if c.st.NoCgroup {
		return c.waitInit(timeout)
	}
	if c.cg == nil {
		return nil // no cgroup, no process
	}
	deadline := time.Now().Add(timeout)
	efd, err := c.cg.EventsFD()
	if err == nil {
		defer unix.Close(efd)
	}
	for {
		pop, err := c.cg.Populated()
		if err != nil {
			return fmt.Errorf("container %s: wait: %w", c.id, err)
		}
		if !pop {
			return nil
		}
		ms := 10
		if timeout >= 0 {
			left := time.Until(deadline)
			if left <= 0 {
				return fmt.Errorf("container %s: wait for processes to exit: %w", c.id, errTimeout)
			}
			ms = min(int(left/time.Millisecond)+1, 1000)
		}
		if efd >= 0 {
			if timeout < 0 {
				ms = -1
			}
			unix.Poll([]unix.PollFd{{Fd: int32(efd), Events: unix.POLLPRI}}, ms)
		} else {
			time.Sleep(time.Duration(min(ms, 10)) * time.Millisecond)
		}
	}
}
