package libcontainerfd

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"unsafe"

	"github.com/containerfd/containerfd/libcontainerfd/internal/msg"
	"github.com/containerfd/containerfd/libcontainerfd/seccomp"
	"golang.org/x/sys/unix"

	"github.com/containerfd/containerfd/libcontainerfd/selfexe"
)

// Where a program of Enter is found.
const (
	PathOnHost      = msg.PathOnHost      // path resolves in the caller's mount namespace
	PathInContainer = msg.PathInContainer // path resolves in the container's root
)

// Enter changes cmd (not yet started) to run in the namespaces of the
// container's init: cmd.Path is looked up where says, and the program has
// init's root (the container's; or, found on the host, the root of init's
// mount namespace, and then the rootfs as its working directory, as runc
// runs a createContainer hook); cmd.Args, Env and stdio are kept. The process is not in the container's cgroup. Our own binary
// runs it (msg.StageEnter): it joins the namespaces through a
// single-threaded child, as Exec does, and passes on the program's exit.
func (c *Container) Enter(cmd *exec.Cmd, where string) error {
	return c.enter(cmd, where, false)
}

// EnterFiltered is Enter with the container's seccomp filter (if it has
// one) loaded in the program before it execs, as runc runs a startContainer
// hook: in init, its filter in place. Such a program is execed by path in
// the root it resolves in, through the exec trampoline, so it gets stdio
// alone; where there is no trampoline (see spawn.MemfdExec) it fails.
func (c *Container) EnterFiltered(cmd *exec.Cmd, where string) error {
	return c.enter(cmd, where, c.st.Seccomp != nil)
}

func (c *Container) enter(cmd *exec.Cmd, where string, filtered bool) error {
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
	filter := "-"
	if filtered {
		f, err := seccomp.Compile(c.st.Seccomp)
		if err != nil {
			return fmt.Errorf("container %s: enter: %w", c.id, err)
		}
		prog, err := filterFile(f.Program)
		if err != nil {
			return fmt.Errorf("container %s: enter: %w", c.id, err)
		}
		cmd.ExtraFiles = append(cmd.ExtraFiles, prog)
		// No listener: the agent has the process's. A notify rule then
		// answers ENOSYS, as the kernel does without one.
		flags := f.Flags &^ (unix.SECCOMP_FILTER_FLAG_NEW_LISTENER | unix.SECCOMP_FILTER_FLAG_TSYNC_ESRCH | unix.SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV)
		filter = fmt.Sprintf("%d:%d", 2+len(cmd.ExtraFiles), flags)
	}
	// A program found on the host (a createContainer hook) works in the
	// rootfs, as runc's init is there when it runs one.
	cwd := "-"
	if where == PathOnHost && c.cfg != nil && filepath.IsAbs(c.cfg.Rootfs) {
		cwd = c.cfg.Rootfs
	}
	args := cmd.Args
	if len(args) == 0 {
		args = []string{cmd.Path}
	}
	cmd.Args = append([]string{msg.StageEnter, strconv.Itoa(c.st.Init.Pid), strconv.Itoa(c.st.Namespaces), where, filter, cwd, cmd.Path}, args...)
	cmd.Path = "/proc/self/fd/" + strconv.Itoa(exe)
	cmd.Err = nil
	return nil
}

// filterFile is a memfd holding prog, for the enter stage to read; the
// runtime's copy lives as long as the command (a hook: the runtime exits
// soon after).
func filterFile(prog []unix.SockFilter) (*os.File, error) {
	fd, err := unix.MemfdCreate("containerfd-seccomp", unix.MFD_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("seccomp filter for the program: %w", err)
	}
	f := os.NewFile(uintptr(fd), "seccomp filter")
	b := unsafe.Slice((*byte)(unsafe.Pointer(&prog[0])), len(prog)*int(unsafe.Sizeof(prog[0])))
	if _, err := f.Write(b); err != nil {
		f.Close()
		return nil, fmt.Errorf("seccomp filter for the program: %w", err)
	}
	if _, err := f.Seek(0, 0); err != nil {
		f.Close()
		return nil, fmt.Errorf("seccomp filter for the program: %w", err)
	}
	return f, nil
}
