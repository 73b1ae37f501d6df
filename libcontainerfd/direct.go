package libcontainerfd

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"

	"github.com/containerfd/containerfd/libcontainerfd/internal/msg"
	"github.com/containerfd/containerfd/libcontainerfd/internal/rootfs"
	"github.com/containerfd/containerfd/libcontainerfd/internal/stage"

	"github.com/containerfd/containerfd/internal/stopat"
	"github.com/containerfd/containerfd/libcontainerfd/cgroups"
	"github.com/containerfd/containerfd/libcontainerfd/internal/spawn"
	"github.com/containerfd/containerfd/libcontainerfd/mounttree"
	"github.com/containerfd/containerfd/libcontainerfd/nsenter"
	"github.com/containerfd/containerfd/libcontainerfd/seccomp"
	"golang.org/x/sys/unix"
)

// A process is started directly when the spawned child can take on its
// identity with system calls alone (spawn.Proc): no Go stage runs between
// the clone and the program, which spares a Go runtime's start (~2 ms of
// CPU and ~1.5 MB charged to the container) per process. What needs the
// stage: an LSM label (written through a checked /proc, package lsm) and a
// seccomp notify listener (handed on over the stage's socket).
//
// Nor can a direct child be started where a process of the container may
// hold CAP_SYS_PTRACE in the host's user namespace: a direct child is a
// copy of the runtime until it execs, and such a process could open its
// /proc/<pid>/exe, the runtime's binary, and write to it once no runtime
// runs (CVE-2019-5736). The child is not dumpable, which keeps every other
// process out; the stage runs from a read-only bind of the binary. And the
// child's last exec goes through spawn's trampoline, a sealed memfd, so
// that a program that is a "#!/proc/self/exe" script runs the trampoline,
// not the runtime, as its interpreter; where no trampoline can be made, or
// the process's seccomp filter refuses its calls, the stage starts it.
//
// startsDirect decides it for a process about to start with pc, and
// records first (markPtraceHost) a process that may ptrace. Such a
// process may not join while a direct init waits at its gate.
func (c *Container) startsDirect(pc *msg.Process) (bool, error) {
	marked := c.ptraceHost()
	if c.mayPtraceHost(pc) {
		if !marked {
			if c.st.DirectInit && c.initWaiting() {
				return false, errors.New("a process that may hold CAP_SYS_PTRACE cannot join before start: init is a copy of the runtime until then (CVE-2019-5736)")
			}
			if err := c.markPtraceHost(); err != nil {
				return false, err
			}
		}
		return false, nil
	}
	if marked || c.st.AlwaysStage || pc.AppArmorProfile != "" || pc.SELinuxLabel != "" || !spawn.MemfdExec.Available() {
		return false, nil
	}
	return pc.Seccomp == nil || (pc.Seccomp.Flags&unix.SECCOMP_FILTER_FLAG_NEW_LISTENER == 0 && passesTrampoline(pc.Seccomp.Program)), nil
}

// passesTrampoline reports whether a filter lets a direct child's last
// calls through: it execs spawn's trampoline by fd, which marks the report
// fd close-on-exec, under the process's filter. A profile that refuses
// them (one older than execveat, say) starts the process through the
// stage, which execs the program itself.
func passesTrampoline(prog []unix.SockFilter) bool {
	return seccomp.Allows(prog, unix.SYS_EXECVEAT, 0, 0, 0, 0, unix.AT_EMPTY_PATH) &&
		seccomp.Allows(prog, unix.SYS_FCNTL, 0, unix.F_SETFD, 0) &&
		seccomp.Allows(prog, unix.SYS_FCNTL, 0, unix.F_SETFD, unix.FD_CLOEXEC)
}

// ptraceMarker, in the state directory, says that some process of the
// container may hold CAP_SYS_PTRACE in the host's user namespace.
const ptraceMarker = "ptrace-host"

func (c *Container) ptraceHost() bool {
	return unix.Access(filepath.Join(c.dir, ptraceMarker), unix.F_OK) == nil
}

// markPtraceHost records, before such a process starts, that it may
// ptrace: from then on nothing of the container starts directly.
func (c *Container) markPtraceHost() error {
	fd, err := unix.Open(filepath.Join(c.dir, ptraceMarker), unix.O_CREAT|unix.O_WRONLY|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return fmt.Errorf("container %s: record a process that may ptrace: %w", c.id, err)
	}
	unix.Close(fd)
	return nil
}

// mayPtraceHost reports whether a process started with pc, or any it
// starts, may hold CAP_SYS_PTRACE in the host's user namespace: there is
// no user namespace, and its bounding set has it (nil capabilities keep
// all of root's).
func (c *Container) mayPtraceHost(pc *msg.Process) bool {
	if c.st.Namespaces&unix.CLONE_NEWUSER != 0 {
		return false
	}
	return pc.Capabilities == nil || slices.Contains(pc.Capabilities.Bounding, "CAP_SYS_PTRACE")
}

// execDirect starts p in the container without a stage: the lookup and the
// pty are done here, through root, and the child does the rest (Exec has
// filled in attr's namespaces and cgroup).
func (c *Container) execDirect(p *Process, pc *msg.Process, root int, attr spawn.Attr, cg cgroupCase) (err error) {
	path, err := pc.LookPath(func(name string) error { return rootfs.ExecutableIn(root, name) })
	if err != nil {
		return err
	}
	tty := -1
	if pc.Terminal {
		master, peer, err := rootfs.NewPtyIn(root, pc.ConsoleSize, pc.ClearONLCR)
		if err != nil {
			return err
		}
		defer unix.Close(peer)
		defer func() {
			if err != nil {
				unix.Close(master)
			} else {
				p.Console = os.NewFile(uintptr(master), "pty master")
			}
		}()
		tty = peer
	}
	if attr.Proc, err = pc.SpawnProc(path, tty); err != nil {
		return err
	}
	done, err := c.directAttr(&attr, p, pc, cg)
	defer done()
	if err != nil {
		return err
	}
	attr.RootFD, attr.UseRootFD = root, true
	attr.Prepare = func(pid int) error {
		stopat.Point("exec:spawned")
		if err := c.enterRdt(pid); err != nil {
			return fmt.Errorf("join intelRdt group: %w", err)
		}
		return c.prepare(pid, p)
	}
	proc, err := spawn.Start(&attr)
	if err != nil {
		return msg.ChildError(err, pc.StepWords(path))
	}
	p.Pid, p.Pidfd = proc.Pid, proc.Pidfd
	return nil
}

// directAttr fills in attr what a direct child of the container starts
// with: p's fds, every v1 cgroup of cg to join (it has no Go
// runtime to keep out of the memory cgroup), its program's argv and env,
// and how it becomes root of the container's user namespace. done closes
// what it opened, once the child is started.
func (c *Container) directAttr(attr *spawn.Attr, p *Process, pc *msg.Process, cg cgroupCase) (done func(), err error) {
	files, closeFiles, err := processFiles(p)
	if err != nil {
		return closeFiles, err
	}
	var tasks []int
	done = func() {
		closeFiles()
		closeFDs(tasks)
	}
	if tasks, _, err = cg.v1Tasks(cgroups.KeyUnified); err != nil {
		return done, fmt.Errorf("join cgroup: %w", err)
	}
	attr.CgroupTasks = tasks
	attr.Argv, attr.Env, attr.Files = pc.Args, pc.Env, files
	attr.RootInUserns = c.st.Namespaces&unix.CLONE_NEWUSER != 0
	attr.Unprivileged = c.st.Rootless && unix.Geteuid() != 0
	return done, nil
}

// canInitDirect reports whether init can be started directly: the runtime
// then builds the root from a thread in init's mount namespace
// (buildDirect) and init is the spawned child, held at a spawn.Gate until
// start. What the stage is still needed for: a rootless runtime (init
// builds its own mounts), chroot instead of pivot_root (it changes only
// the caller's root: NoPivot, and a container without a mount namespace
// of its own), an empty root filled after create (the program is
// looked up at start), and more than one proc where the kernel cannot make
// one for another pid namespace. Where proc must be made inside, the one
// to make is returned. The error is startsDirect's.
func (c *Container) canInitDirect(pc *msg.Process) (*mounttree.Mount, bool, error) {
	cfg := c.cfg
	if direct, err := c.startsDirect(pc); err != nil || !direct || cfg.buildInside() || cfg.NoPivot || cfg.EmptyRoot || c.sharesMountNS() {
		return nil, false, err
	}
	if cfg.Flags&NewEmptyFS == 0 || c.st.Namespaces&unix.CLONE_NEWPID == 0 || mounttree.ProcPidns.Available() {
		return nil, true, nil
	}
	var proc *mounttree.Mount
	for i, m := range cfg.Mounts {
		if m.Type != "proc" {
			continue
		}
		if proc != nil || m.Propagation != 0 {
			return nil, false, nil
		}
		proc = &cfg.Mounts[i]
	}
	return proc, true, nil
}

// startDirectInit spawns init for canInitDirect: the child takes on p
// itself, once buildDirect has told it the program's path and start has
// connected to the start socket.
func (c *Container) startDirectInit(p *Process, pc *msg.Process, attr spawn.Attr, proc *mounttree.Mount) (*child, error) {
	listener, err := c.listenStart()
	if err != nil {
		return nil, err
	}
	defer unix.Close(listener)
	sp, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("socketpair: %w", err)
	}
	defer unix.Close(sp[1])
	if attr.Proc, err = pc.SpawnProc("", -1); err != nil {
		unix.Close(sp[0])
		return nil, err
	}
	// The order is what Start sends, as JSON.
	attr.Gate = &spawn.Gate{Sock: sp[1], Listener: listener, Order: []byte(strconv.Quote(msg.StartOrder)), Comm: msg.StageInit}
	if proc != nil {
		attr.Gate.Mount = &spawn.NewMount{Type: proc.Type, Source: proc.Source, Options: proc.Data, Attr: proc.Attr}
	}
	done, err := c.directAttr(&attr, p, pc, c.cgroup)
	defer done()
	if err != nil {
		unix.Close(sp[0])
		return nil, err
	}
	// HOME, if it is to be read from the root, comes through the gate.
	attr.Env, _ = rootfs.NeedsHome(pc.Env)
	return c.spawnStage(&attr, sp[0])
}

// buildDirect does for a direct init what the init stage does for itself,
// on one thread: it brings lo up and opens the root plan's trees in init's
// network, IPC and cgroup namespaces (openPlan), then joins its mount and
// UTS namespaces and its root, attaches the tree and pivots into it
// (rootfs.Setup, which moves init's root along), sets the hostname, looks
// up the program and makes the pty. Then it lets init go on, with the
// program's path and the pty's peer. proc, if init was to make it, is the
// plan's mount init sends.
func (c *Container) buildDirect(sock, pid int, p *Process, pc *msg.Process, proc *mounttree.Mount) error {
	root, err := unix.Open(fmt.Sprintf("/proc/%d/root", pid), unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open init's root: %w", err)
	}
	defer unix.Close(root)
	var (
		path, home   string
		master, peer = -1, -1
	)
	ic := c.initMessage(pc)
	build := func() error {
		if c.cfg.newNS(unix.CLONE_NEWNET) {
			if err := stage.LoopbackUp(); err != nil {
				return err
			}
		}
		var f *rootfs.FDs
		if ic.Root != nil {
			var err error
			if f, err = c.openPlan(pid, ic.Root, true); err != nil {
				return err
			}
			defer f.Close()
		}
		if proc != nil {
			fd, err := msg.RecvMount(sock)
			if err != nil {
				return fmt.Errorf("receive proc from init: %w", err)
			}
			if i := slices.IndexFunc(ic.Root.Mounts, func(m rootfs.Mount) bool { return m.Inside }); i >= 0 {
				f.Mounts[i] = fd
			} else {
				unix.Close(fd)
			}
		}
		var join int
		if ic.Root != nil {
			join |= unix.CLONE_NEWNS
			if err := unix.Unshare(unix.CLONE_FS); err != nil {
				return fmt.Errorf("unshare filesystem info: %w", err)
			}
		}
		if c.st.Namespaces&unix.CLONE_NEWUTS != 0 {
			join |= unix.CLONE_NEWUTS
		}
		if join != 0 {
			if err := unix.Setns(c.initPidfd, join); err != nil {
				return fmt.Errorf("join init's %s namespaces: %w", nsenter.TypeName(join), err)
			}
		}
		if ic.Root != nil {
			// setns put us at the namespace's root; init's may be a
			// mount above it.
			if err := unix.Fchdir(root); err != nil {
				return fmt.Errorf("enter init's root: %w", err)
			}
			if err := unix.Chroot("."); err != nil {
				return fmt.Errorf("enter init's root: %w", err)
			}
			var beforePivot func() error
			if hook := c.cfg.BeforePivot; hook != nil {
				// Not on this thread, which is in the container's
				// mount namespace and root: what the hook runs
				// would be too.
				beforePivot = func() error {
					done := make(chan error, 1)
					go func() { done <- hook(pid) }()
					return <-done
				}
			}
			if err := rootfs.Setup(ic.Root, f, beforePivot); err != nil {
				return err
			}
		}
		if err := ic.SetNames(); err != nil {
			return err
		}
		var err error
		if path, err = pc.LookPath(rootfs.Executable); err != nil {
			return err
		}
		if _, needs := rootfs.NeedsHome(pc.Env); needs {
			root, err := unix.Open("/", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
			if err != nil {
				return fmt.Errorf("open root: %w", err)
			}
			home = "HOME=" + rootfs.Home(root, pc.UID)
			unix.Close(root)
		}
		if pc.Terminal {
			if master, peer, err = rootfs.NewPty("/", pc.ConsoleSize, pc.ClearONLCR); err != nil {
				return err
			}
			return rootfs.MountConsole(peer)
		}
		return nil
	}
	var nss []nsenter.Namespace
	if join := c.planNamespaces(); join != 0 {
		nss = []nsenter.Namespace{{FD: c.initPidfd, Type: join}}
	}
	err = nsenter.Do(nss, build)
	if peer >= 0 {
		defer unix.Close(peer)
	}
	if err == nil {
		if err = msg.SendGo(sock, path, home, peer); err != nil {
			err = fmt.Errorf("let init go on: %w", err)
		}
	}
	if err != nil {
		if master >= 0 {
			unix.Close(master)
		}
		return err
	}
	if master >= 0 {
		p.Console = os.NewFile(uintptr(master), "pty master")
	}
	// Start words a step init fails at as the stage would.
	w := pc.StepWords(path)
	c.st.InitStep = &w
	return nil
}
