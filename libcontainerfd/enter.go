package libcontainerfd

import (
	"fmt"
	"os/exec"
	"strconv"

	"github.com/containerfd/containerfd/libcontainerfd/internal/msg"

	"github.com/containerfd/containerfd/libcontainerfd/selfexe"
)

// Where a program of Enter is found.
const (
	PathOnHost      = msg.PathOnHost      // path resolves in the caller's mount namespace
	PathInContainer = msg.PathInContainer // path resolves in the container's root
)

// Enter changes cmd (not yet started) to run in the namespaces of the
// container's init: cmd.Path is looked up where says, and the program has
// that root too (the container's, or the caller's); cmd.Args, Env and stdio
// are kept. The process is not in the container's cgroup. Our own binary
// runs it (msg.StageEnter): it joins the namespaces through a
// single-threaded child, as Exec does, and passes on the program's exit.
func (c *Container) Enter(cmd *exec.Cmd, where string) error {
	if c.initPidfd < 0 {
		return fmt.Errorf("container %s: enter: %w", c.id, ErrNotRunning)
	}
	if where != PathOnHost && where != PathInContainer {
		return fmt.Errorf("container %s: enter: bad path location %q", c.id, where)
	}
	exe, err := selfexe.FD()
	if err != nil {
		return fmt.Errorf("container %s: enter: %w", c.id, err)
	}
	args := cmd.Args
	if len(args) == 0 {
		args = []string{cmd.Path}
	}
	cmd.Args = append([]string{msg.StageEnter, strconv.Itoa(c.st.Init.Pid), strconv.Itoa(c.st.Namespaces), where, cmd.Path}, args...)
	cmd.Path = "/proc/self/fd/" + strconv.Itoa(exe)
	cmd.Err = nil
	return nil
}
