package libcontainerfd

import (
	"fmt"
	"os"

	"github.com/containerfd/containerfd/libcontainerfd/internal/msg"

	"strconv"

	"github.com/containerfd/containerfd/internal/stopat"

	"github.com/containerfd/containerfd/libcontainerfd/cgroups"
	"github.com/containerfd/containerfd/libcontainerfd/internal/spawn"
	"github.com/containerfd/containerfd/libcontainerfd/keyring"
	"github.com/containerfd/containerfd/libcontainerfd/selfexe"
	"golang.org/x/sys/unix"
)

// Exec starts p in the running container: in every namespace of its init
// (the user namespace too), its cgroup, its root and its keyring.
func (c *Container) Exec(p *Process) (err error) {
	if !c.initAlive() || c.cgroup.gone() {
		return fmt.Errorf("container %s: exec: %w", c.id, ErrNotRunning)
	}
	root, err := c.openRoot()
	if err != nil {
		return err
	}
	defer unix.Close(root)
	attr := spawn.Attr{Join: []spawn.Namespace{{FD: c.initPidfd, Flags: c.st.Namespaces}}}
	if c.st.Keyring != "" {
		attr.OnThread = func() error {
			_, err := keyring.Join(c.st.Keyring)
			return err
		}
	}
	cg := c.cgroup
	if p.SubCgroups != nil {
		// No fallback to init's cgroup here: the caller chose.
		if cg, err = c.cgroup.sub(p.SubCgroups); err != nil {
			return fmt.Errorf("container %s: exec: %w", c.id, err)
		}
		defer cg.close()
		attr.CgroupFD = cg.cloneFD()
	} else {
		cgfd, other, err := c.cgroup.joinFD(c.st.Init.Pid)
		if err != nil {
			return fmt.Errorf("container %s: exec: %w", c.id, err)
		}
		if other {
			defer unix.Close(cgfd)
		}
		attr.CgroupFD = cgfd
	}
	pc, err := c.processConfig(p)
	if err != nil {
		return err
	}
	pc.SetHome(root)
	direct, err := c.startsDirect(&pc)
	if err != nil {
		return fmt.Errorf("container %s: exec: %w", c.id, err)
	}
	if direct {
		if err := c.execDirect(p, &pc, root, attr, cg); err != nil {
			return fmt.Errorf("container %s: exec: %w", c.id, err)
		}
		return nil
	}
	s, err := c.startStage(msg.StageExec, p, attr, cg)
	if err != nil {
		return fmt.Errorf("container %s: exec: %w", c.id, err)
	}
	defer func() {
		if err != nil {
			s.kill()
		} else {
			unix.Close(s.sock)
		}
	}()
	stopat.Point("exec:spawned")
	if err := c.prepare(s.Pid, p); err != nil {
		return err
	}
	if err := msg.SendJSON(s.sock, pc); err != nil {
		return fmt.Errorf("container %s: exec: send config: %w", c.id, err)
	}
	if err := msg.SendFD(s.sock, root); err != nil {
		return fmt.Errorf("container %s: exec: send root: %w", c.id, err)
	}
	on := msg.Events{Console: p.setConsole, Seccomp: func(fd int) error { return c.handOnNotify(fd, s.Pid) }}
	if err := msg.ReadReplies(s.sock, false, on); err != nil {
		if p.Console != nil {
			p.Console.Close()
			p.Console = nil
		}
		return fmt.Errorf("container %s: exec: %w", c.id, err)
	}
	p.Pid, p.Pidfd = s.Pid, s.Pidfd
	return nil
}

// child is a process started in the container, a stage or a direct init,
// and the socket that gives it its orders.
type child struct {
	*spawn.Process
	sock int
}

// startStage starts our own binary as stage name in the cgroup2 directory
// attr.CgroupFD (and cg's v1 cgroups) with p's fds, plus what
// attr says (namespaces, keyring).
func (c *Container) startStage(name string, p *Process, attr spawn.Attr, cg cgroupCase) (*child, error) {
	exe, err := selfexe.FD()
	if err != nil {
		return nil, err
	}
	sp, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("socketpair: %w", err)
	}
	defer unix.Close(sp[1])
	files, closeFiles, err := processFiles(p)
	defer closeFiles()
	if err != nil {
		unix.Close(sp[0])
		return nil, err
	}
	// The stage joins a v1 memory cgroup only once its Go runtime has
	// started (argv[2]): that start is ours to pay for, and would need
	// most of a small limit (~1 MiB; the process itself may need less).
	// Not with a new cgroup namespace, which the raw child makes once it
	// is in every cgroup of the container, so that it is their root.
	late := "memory"
	if attr.Cloneflags&unix.CLONE_NEWCGROUP != 0 {
		late = cgroups.KeyUnified // none
	}
	tasks, memTasks, err := cg.v1Tasks(late)
	if err != nil {
		unix.Close(sp[0])
		return nil, fmt.Errorf("join cgroup: %w", err)
	}
	defer func() {
		for _, fd := range append(tasks, memTasks) {
			if fd >= 0 {
				unix.Close(fd)
			}
		}
	}()
	files = append(files, sp[1])
	attr.ExecFD = exe
	attr.Argv = []string{name, strconv.Itoa(len(files) - 1)}
	if memTasks >= 0 {
		files = append(files, memTasks)
		attr.Argv = append(attr.Argv, strconv.Itoa(len(files)-1))
	}
	attr.CgroupTasks = tasks
	// The stage does one thing at a time: one P spares it starting threads.
	// (Its environment is its own; the process gets the one it asked for.)
	attr.Env = []string{"GOMAXPROCS=1"}
	attr.Files = files
	// The stage runs as root of the container's user namespace.
	attr.RootInUserns = c.st.Namespaces&unix.CLONE_NEWUSER != 0
	attr.Unprivileged = c.st.Rootless && os.Geteuid() != 0
	return c.spawnStage(&attr, sp[0])
}

// spawnStage starts a stage (or a direct init) whose socket is sock, and
// puts it in the container's intelRdt group before it is given anything
// to run. sock is closed if it fails.
func (c *Container) spawnStage(attr *spawn.Attr, sock int) (*child, error) {
	proc, err := spawn.Start(attr)
	if err != nil {
		unix.Close(sock)
		return nil, err
	}
	s := &child{Process: proc, sock: sock}
	if err := c.enterRdt(proc.Pid); err != nil {
		s.kill()
		return nil, fmt.Errorf("join intelRdt group: %w", err)
	}
	return s, nil
}

// kill ends a stage that failed and reaps it.
func (s *child) kill() {
	s.Process.Kill()
	unix.Close(s.sock)
}

// Wait waits for the process, which must be a child of the caller, and
// returns its exit status. It closes p.Pidfd.
func (p *Process) Wait() (unix.WaitStatus, error) {
	var ws unix.WaitStatus
	for {
		_, err := unix.Wait4(p.Pid, &ws, 0, nil)
		if err == unix.EINTR {
			continue
		}
		if p.Pidfd >= 0 {
			unix.Close(p.Pidfd)
			p.Pidfd = -1
		}
		if err != nil {
			return ws, fmt.Errorf("wait for process %d: %w", p.Pid, err)
		}
		return ws, nil
	}
}

// ExitCode is a shell's view of a wait status: the exit code, or 128 plus
// the number of the signal that killed the process.
func ExitCode(ws unix.WaitStatus) int { return spawn.ExitCode(ws) }

// setConsole takes the pty master a stage sends.
func (p *Process) setConsole(f *os.File) { p.Console = f }

// Signal sends sig to the process through its pidfd.
func (p *Process) Signal(sig unix.Signal) error {
	if p.Pidfd < 0 {
		return fmt.Errorf("signal process %d: %w", p.Pid, ErrNotRunning)
	}
	if err := unix.PidfdSendSignal(p.Pidfd, sig, nil, 0); err != nil {
		return fmt.Errorf("signal process %d: %w", p.Pid, err)
	}
	return nil
}
