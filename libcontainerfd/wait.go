package libcontainerfd

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// Wait blocks until the last process of the container is gone — not only
// init: a process init left behind keeps the container alive.
func (c *Container) Wait() error { return c.cgroup.wait(-1) }

// PollFD returns an fd that polls POLLHUP once the container's last process
// is gone, as the proposed container fd did. The caller closes it.
func (c *Container) PollFD() (int, error) {
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		return -1, fmt.Errorf("container %s: poll fd: %w", c.id, err)
	}
	go func() {
		c.cgroup.wait(-1)
		unix.Close(p[1])
	}()
	return p[0], nil
}
