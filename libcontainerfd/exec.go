package libcontainerfd

import (
	"fmt"
	"strconv"

	"github.com/containerfd/containerfd/libcontainerfd/internal/spawn"
	"github.com/containerfd/containerfd/libcontainerfd/keyring"
	"github.com/containerfd/containerfd/libcontainerfd/selfexe"
	"golang.org/x/sys/unix"
)

// Exec starts p in the running container: in every namespace of its init
// (the user namespace too), its cgroup, its root and its keyring.
func (c *Container) Exec(p *Process) (err error) {
	if !c.initAlive() {
		return fmt.Errorf("container %s: exec: %w", c.id, ErrNotRunning)
	}
	exe, err := selfexe.FD()
	if err != nil {
		return fmt.Errorf("container %s: exec: %w", c.id, err)
	}
	root, err := c.openRoot()
	if err != nil {
		return err
	}
	defer unix.Close(root)
	sp, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("container %s: exec: socketpair: %w", c.id, err)
	}
	sock := sp[0]
	defer unix.Close(sock)
	files, closeFiles, err := processFiles(p)
	defer closeFiles()
	if err != nil {
		unix.Close(sp[1])
		return fmt.Errorf("container %s: exec: %w", c.id, err)
	}
	files = append(files, sp[1])
	attr := &spawn.Attr{
		ExecFD:   exe,
		Argv:     []string{stageExec, strconv.Itoa(len(files) - 1)},
		Files:    files,
		Join:     []spawn.Namespace{{FD: c.initPidfd, Flags: c.st.Namespaces}},
		CgroupFD: c.cg.CloneFD(),
		// The stage runs as root of the container's user namespace.
		RootInUserns: c.st.Namespaces&unix.CLONE_NEWUSER != 0,
	}
	if c.st.Keyring != "" {
		attr.OnThread = func() error {
			_, err := keyring.Join(c.st.Keyring)
			return err
		}
	}
	proc, err := spawn.Start(attr)
	unix.Close(sp[1])
	if err != nil {
		return fmt.Errorf("container %s: exec: %w", c.id, err)
	}
	defer func() {
		if err != nil {
			unix.PidfdSendSignal(proc.Pidfd, unix.SIGKILL, nil, 0)
			var ws unix.WaitStatus
			unix.Wait4(proc.Pid, &ws, 0, nil)
			unix.Close(proc.Pidfd)
		}
	}()
	if err := c.cg.EnterV1(proc.Pid); err != nil {
		return fmt.Errorf("container %s: exec: join cgroup: %w", c.id, err)
	}
	if err := sendJSON(sock, newProcessConfig(p)); err != nil {
		return fmt.Errorf("container %s: exec: send config: %w", c.id, err)
	}
	if err := sendFD(sock, root); err != nil {
		return fmt.Errorf("container %s: exec: send root: %w", c.id, err)
	}
	var reply stageReply
	if err := recvJSON(sock, &reply); err != nil && err != errEOF {
		return fmt.Errorf("container %s: exec: %w", c.id, err)
	}
	if reply.Error != "" {
		return fmt.Errorf("container %s: exec: %s", c.id, reply.Error)
	}
	p.Pid, p.Pidfd = proc.Pid, proc.Pidfd
	return nil
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
func ExitCode(ws unix.WaitStatus) int {
	if ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ws.ExitStatus()
}
