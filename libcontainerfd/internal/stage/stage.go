// Package stage is the library's child side: the code that runs in the
// processes the runtime starts from its own binary. Each is recognised by
// its argv[0] (msg.StageInit and the rest) and reads its orders from the
// socket or fds its argv names; the messages are package msg's.
//
//   - init (msg.StageInit), started through the stage: builds the root from
//     the plan (package rootfs), waits for start, takes on the process's
//     identity (spawn.Steps) and execs it.
//   - an exec'd process (msg.StageExec), likewise, in a running container.
//   - the watcher of a KillOnClose container (msg.StageWatch), outside it.
//   - a hook's program in the container's namespaces (msg.StageEnter).
//   - the holder of an idmapped mount's user namespace (msg.StageUserns).
//
// A process started directly (spawn.Gate, spawn.Proc) runs none of this:
// its child side is package spawn's raw child.
package stage

import (
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"

	"github.com/containerfd/containerfd/libcontainerfd/internal/msg"
	"github.com/containerfd/containerfd/libcontainerfd/internal/rootfs"
	"github.com/containerfd/containerfd/libcontainerfd/internal/spawn"
	"github.com/containerfd/containerfd/libcontainerfd/lsm"
	"github.com/containerfd/containerfd/libcontainerfd/rlimit"
	"golang.org/x/sys/unix"
)

// Main runs the stage os.Args[0] names, and exits; it returns at once if
// the process is not a stage.
func Main() {
	if len(os.Args) < 2 {
		return
	}
	var run func() error
	switch os.Args[0] {
	case msg.StageInit:
		run = runInit
	case msg.StageExec:
		run = runExec
	case msg.StageWatch:
		run = runWatch
	case msg.StageEnter:
		run = runEnter
	case msg.StageUserns:
		run = runUserns
	default:
		return
	}
	// Credentials and capabilities are per thread: keep to one. A stage
	// lives for milliseconds (the watcher aside): no garbage collection.
	runtime.LockOSThread()
	if os.Args[0] != msg.StageWatch {
		debug.SetGCPercent(-1)
	}
	if err := run(); err != nil {
		// One the runtime has is its to say; the process's stderr (ours)
		// is the container's, not the place for it.
		if !msg.Reported(err) {
			fmt.Fprintf(os.Stderr, "containerfd: %s: %v\n", os.Args[0], err)
		}
		os.Exit(1)
	}
	os.Exit(0)
}

// begin takes up an init or exec stage's orders: its socket (argv[1]), the
// memory cgroup to join (joinLateCgroup), and the first message, into v.
func begin(v any) (sock int, err error) {
	sock, err = strconv.Atoi(os.Args[1])
	if err != nil {
		return -1, fmt.Errorf("bad socket fd %q", os.Args[1])
	}
	if err := joinLateCgroup(); err != nil {
		return -1, msg.Fail(sock, err)
	}
	if err := msg.RecvJSON(sock, v); err != nil {
		return -1, fmt.Errorf("read config: %w", err)
	}
	return sock, nil
}

// joinLateCgroup moves the calling thread into the cgroup whose tasks file
// is open as fd argv[2], if there is one. Called first thing from the main
// thread, the thread group leader: /proc/<pid>/cgroup then names the new
// cgroup (containerd's shim reads it after create), and memory is charged
// by the leader's cgroup, so the Go runtime's start stays the runtime's and
// everything from here on is the container's.
func joinLateCgroup() error {
	if len(os.Args) < 3 {
		return nil
	}
	fd, err := strconv.Atoi(os.Args[2])
	if err != nil {
		return fmt.Errorf("bad cgroup tasks fd %q", os.Args[2])
	}
	if _, err := unix.Write(fd, []byte("0")); err != nil {
		return fmt.Errorf("join memory cgroup: %w", err)
	}
	return nil
}

func runExec() error {
	var p msg.Process
	sock, err := begin(&p)
	if err != nil {
		return err
	}
	// Joining the mount namespace put us at its root; the container's root
	// may be a chroot below it (NoPivot), so take init's.
	root, err := msg.RecvFD(sock)
	if err != nil {
		return msg.Fail(sock, fmt.Errorf("receive root: %w", err))
	}
	if err := unix.Fchdir(root); err != nil {
		return msg.Fail(sock, fmt.Errorf("enter root: %w", err))
	}
	unix.Close(root)
	if err := unix.Chroot("."); err != nil {
		return msg.Fail(sock, fmt.Errorf("chroot into root: %w", err))
	}
	path, err := p.LookPath(rootfs.Executable)
	if err != nil {
		return msg.Fail(sock, err)
	}
	tty := -1
	if p.Terminal {
		master, peer, err := rootfs.NewPty("/", p.ConsoleSize, p.ClearONLCR)
		if err != nil {
			return msg.Fail(sock, err)
		}
		err = msg.Send(sock, msg.Reply{Console: true}, master)
		unix.Close(master)
		if err != nil {
			return msg.Fail(sock, fmt.Errorf("send pty master: %w", err))
		}
		tty = peer
	}
	return msg.Fail(sock, execProcess(&p, path, tty, sock))
}

// execProcess takes on the process's identity and execs it; it returns only
// on failure. tty, if not -1, becomes its stdio and controlling terminal;
// sock is the runtime, for a seccomp listener.
//
// The steps are a direct child's (spawn.Steps), in its order and with its
// errors. What only Go can do comes around them: the LSM labels, and
// handing on a notify listener when the filter makes one.
func execProcess(p *msg.Process, path string, tty, sock int) error {
	// The labels take effect at exec; writing them needs the capabilities
	// to clone /proc's mount (package lsm), and a seccomp profile could
	// forbid the syscalls: before every step.
	if p.AppArmorProfile != "" {
		if err := lsm.SetExec(lsm.AppArmor, p.AppArmorProfile); err != nil {
			return err
		}
	}
	if p.SELinuxLabel != "" {
		if err := lsm.SetExec(lsm.SELinux, p.SELinuxLabel); err != nil {
			return err
		}
	}
	if p.KeepNofile {
		if err := rlimit.KeepNofile(); err != nil {
			return err
		}
	}
	sp, err := p.SpawnProc(path, tty)
	if err != nil {
		return err
	}
	steps, err := spawn.NewSteps(sp)
	if err != nil {
		return err
	}
	for {
		listener, err := steps.Run(p.Args, p.Env)
		if err != nil {
			return msg.ChildError(err, p.StepWords(path))
		}
		err = handOnListener(sock, listener)
		unix.Close(listener)
		if err != nil {
			return err
		}
	}
}

// handOnListener sends the process's seccomp notify listener to the
// runtime over sock, and waits until the runtime has passed it on: from
// then on the process's calls may wait for it.
func handOnListener(sock, fd int) error {
	if err := msg.Send(sock, msg.Reply{Seccomp: true}, fd); err != nil {
		return fmt.Errorf("hand on seccomp listener: %w", err)
	}
	var ack string
	if err := msg.RecvJSON(sock, &ack); err != nil || ack != "ok" {
		return fmt.Errorf("hand on seccomp listener: %q %v", ack, err)
	}
	return nil
}
