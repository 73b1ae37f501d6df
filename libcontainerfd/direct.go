package libcontainerfd

import (
	"errors"
	"fmt"
	"path/filepath"
	"slices"

	"github.com/containerfd/containerfd/internal/stopat"
	"github.com/containerfd/containerfd/libcontainerfd/caps"
	"github.com/containerfd/containerfd/libcontainerfd/cgroups"
	"github.com/containerfd/containerfd/libcontainerfd/internal/spawn"
	"github.com/containerfd/containerfd/libcontainerfd/kernfeat"
	"github.com/containerfd/containerfd/libcontainerfd/mounttree"
	"github.com/containerfd/containerfd/libcontainerfd/nsenter"
	"github.com/containerfd/containerfd/libcontainerfd/pathrs"
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
func (c *Container) startsDirect(pc *processConfig) (bool, error) {
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
	if marked || kernfeat.Disabled(kernfeat.DirectExec) || pc.AppArmorProfile != "" || pc.SELinuxLabel != "" {
		return false, nil
	}
	if _, err := spawn.TrampolineFD(); err != nil {
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
func (c *Container) mayPtraceHost(pc *processConfig) bool {
	if c.st.Namespaces&unix.CLONE_NEWUSER != 0 {
		return false
	}
	return pc.Capabilities == nil || slices.Contains(pc.Capabilities.Bounding, "CAP_SYS_PTRACE")
}

// spawnProc is pc for a child that execs path itself, with tty (or -1) as
// its terminal.
func (pc *processConfig) spawnProc(path string, tty int) (*spawn.Proc, error) {
	sp := &spawn.Proc{
		Path: path, Umask: 0o022, Cwd: pc.Cwd, TTY: tty,
		Scheduler: pc.Scheduler, IOPriority: pc.IOPriority, Personality: pc.Personality,
		Groups: pc.Groups, UID: pc.UID, GID: pc.GID,
		NoNewPrivs: pc.NNP, CloseFrom: pc.Files,
	}
	if pc.Umask != nil {
		sp.Umask = int(*pc.Umask)
	}
	if mp := pc.MemoryPolicy; mp != nil {
		sp.MemPolicy = &spawn.MemPolicy{Mode: mp.Mode}
		if mp.Nodes != "" {
			nodes, err := ParseNodeList(mp.Nodes)
			if err != nil {
				return nil, fmt.Errorf("memory policy nodes %q: %w", mp.Nodes, err)
			}
			sp.MemPolicy.Nodes = nodes
		}
	}
	if pc.Seccomp != nil {
		sp.Seccomp, sp.SeccompFlags = pc.Seccomp.Program, pc.Seccomp.Flags
	}
	if pc.Capabilities != nil {
		cs, err := caps.Parse(pc.Capabilities)
		if err != nil {
			return nil, err
		}
		drop, err := cs.Dropped()
		if err != nil {
			return nil, err
		}
		for _, c := range drop {
			sp.BoundingDrop = append(sp.BoundingDrop, uintptr(c))
		}
		data := cs.Data()
		sp.Caps = &data
		for _, c := range cs.Ambient.Caps() {
			sp.Ambient = append(sp.Ambient, uintptr(c))
		}
	}
	if pc.FinalCPUs != "" {
		set, err := ParseCPUList(pc.FinalCPUs)
		if err != nil {
			return nil, fmt.Errorf("cpu affinity %q: %w", pc.FinalCPUs, err)
		}
		sp.Affinity = set
	}
	return sp, nil
}

// execDirect starts p in the container without a stage: lookPath and the
// pty are done here, through root, and the child does the rest (Exec has
// filled in attr's namespaces and cgroup).
func (c *Container) execDirect(p *Process, pc *processConfig, root int, attr spawn.Attr) (err error) {
	path, err := lookPath(pc, func(name string) error { return executableIn(root, name) })
	if err != nil {
		return err
	}
	tty := -1
	if pc.Terminal {
		master, peer, err := newPtyIn(root, pc.ConsoleSize)
		if err != nil {
			return err
		}
		defer unix.Close(peer)
		defer func() {
			if err != nil {
				unix.Close(master)
			} else {
				p.Console = newFile(master, "pty master")
			}
		}()
		tty = peer
	}
	if attr.Proc, err = pc.spawnProc(path, tty); err != nil {
		return err
	}
	done, err := c.directAttr(&attr, p, pc)
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
		return childError(err, pc.stepWords(path))
	}
	p.Pid, p.Pidfd = proc.Pid, proc.Pidfd
	return nil
}

// directAttr fills in attr what a direct child of the container starts
// with: p's fds, every v1 cgroup of the container to join (it has no Go
// runtime to keep out of the memory cgroup), its program's argv and env,
// and how it becomes root of the container's user namespace. done closes
// what it opened, once the child is started.
func (c *Container) directAttr(attr *spawn.Attr, p *Process, pc *processConfig) (done func(), err error) {
	files, closeFiles, err := processFiles(p)
	if err != nil {
		return closeFiles, err
	}
	var tasks []int
	done = func() {
		closeFiles()
		closeFDs(tasks)
	}
	if tasks, _, err = c.cgroup.v1Tasks(cgroups.KeyUnified); err != nil {
		return done, fmt.Errorf("join cgroup: %w", err)
	}
	attr.CgroupTasks = tasks
	attr.Argv, attr.Env, attr.Files = pc.Args, pc.Env, files
	attr.RootInUserns = c.st.Namespaces&unix.CLONE_NEWUSER != 0
	attr.Unprivileged = c.st.Rootless && unix.Geteuid() != 0
	return done, nil
}

// stepError is a failed step of a process's start, worded with what the
// step was to do: the same words, and the same *spawn.ChildError beneath
// (errors.As, errors.Is with its errno), whether a direct child or a stage
// took the step.
type stepError struct {
	msg string
	ce  *spawn.ChildError
}

func (e *stepError) Error() string { return e.msg }
func (e *stepError) Unwrap() error { return e.ce }

// stepWords is what a failed step is worded with: the process's program
// and what its steps were to set.
type stepWords struct {
	Path   string   `json:"path"`
	Cwd    string   `json:"cwd,omitempty"`
	UID    uint32   `json:"uid"`
	GID    uint32   `json:"gid"`
	Groups []uint32 `json:"groups,omitempty"`
}

func (pc *processConfig) stepWords(path string) stepWords {
	return stepWords{Path: path, Cwd: pc.Cwd, UID: pc.UID, GID: pc.GID, Groups: pc.Groups}
}

// childError words a failed step (spawn.ChildError) with w; other errors
// are returned as they are.
func childError(err error, w stepWords) error {
	var ce *spawn.ChildError
	if !errors.As(err, &ce) {
		return err
	}
	cwd := w.Cwd
	if cwd == "" {
		cwd = "/"
	}
	var msg string
	switch ce.Step {
	case spawn.StepCwd:
		msg = fmt.Sprintf("chdir to cwd %q: %v", cwd, ce.Err)
	case spawn.StepCwdOutside:
		msg = fmt.Sprintf("cwd %q is outside the container root: %v", cwd, ce.Err)
	case spawn.StepGroups:
		msg = fmt.Sprintf("setgroups %v: %v", w.Groups, ce.Err)
	case spawn.StepGID:
		msg = fmt.Sprintf("setgid %d: %v", w.GID, ce.Err)
	case spawn.StepUID:
		msg = fmt.Sprintf("setuid %d: %v", w.UID, ce.Err)
	case spawn.StepExecve:
		msg = fmt.Sprintf("exec %s: %v", w.Path, ce.Err)
	default:
		msg = ce.Error()
	}
	return &stepError{msg: msg, ce: ce}
}

// executableIn is executable for a path resolved inside root.
func executableIn(root int, name string) error {
	fd, err := pathrs.OpenInRoot(root, name, unix.O_PATH, 0)
	if err != nil {
		if errors.Is(err, unix.ENOENT) {
			return unix.ENOENT
		}
		return err
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return err
	}
	return executableMode(st.Mode)
}

// canInitDirect reports whether init can be started directly: the runtime
// then builds the root from a thread in init's mount namespace
// (buildDirect) and init is the spawned child, held at a spawn.Gate until
// start. What the stage is still needed for: a rootless runtime (init
// builds its own mounts), chroot instead of pivot_root (it changes only
// the caller's root), an empty root filled after create (the program is
// looked up at start), and more than one proc where the kernel cannot make
// one for another pid namespace. Where proc must be made inside, the one
// to make is returned. The error is startsDirect's.
func (c *Container) canInitDirect(pc *processConfig) (*mounttree.Mount, bool, error) {
	cfg := c.cfg
	if direct, err := c.startsDirect(pc); err != nil || !direct || cfg.buildInside() || cfg.NoPivot || cfg.EmptyRoot {
		return nil, false, err
	}
	if cfg.Flags&NewEmptyFS == 0 || c.st.Namespaces&unix.CLONE_NEWPID == 0 || mounttree.ProcPidnsSupported() {
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
func (c *Container) startDirectInit(p *Process, pc *processConfig, attr spawn.Attr, proc *mounttree.Mount) (*stage, error) {
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
	if attr.Proc, err = pc.spawnProc("", -1); err != nil {
		unix.Close(sp[0])
		return nil, err
	}
	// The order is what Start sends (sendJSON "start").
	attr.Gate = &spawn.Gate{Sock: sp[1], Listener: listener, Order: []byte(`"start"`), Comm: stageInit}
	if proc != nil {
		attr.Gate.Mount = &spawn.NewMount{Type: proc.Type, Source: proc.Source, Options: proc.Data, Attr: proc.Attr}
	}
	done, err := c.directAttr(&attr, p, pc)
	defer done()
	if err != nil {
		unix.Close(sp[0])
		return nil, err
	}
	return c.spawnStage(&attr, sp[0])
}

// buildDirect does for a direct init what the init stage does for itself,
// on one thread: it brings lo up and makes the mounts in init's network,
// IPC and cgroup namespaces (planInit), then joins its mount and UTS
// namespaces and its root, attaches the tree and pivots into it (which
// moves init's root along), sets the hostname, looks up the program and
// makes the pty. Then it lets init go on, with the program's path and the
// pty's peer.
func (c *Container) buildDirect(sock, pid int, p *Process, pc *processConfig, proc *mounttree.Mount) error {
	root, err := unix.Open(fmt.Sprintf("/proc/%d/root", pid), unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open init's root: %w", err)
	}
	defer unix.Close(root)
	var (
		path         string
		master, peer = -1, -1
		fds          []int
	)
	defer func() { closeFDs(fds) }()
	build := func() error {
		if c.cfg.newNS(unix.CLONE_NEWNET) {
			if err := loopbackUpHere(); err != nil {
				return err
			}
		}
		ic, planned, err := c.planInit(pid, pc, true)
		fds = planned
		if err != nil {
			return err
		}
		if proc != nil {
			fd, err := recvMount(sock)
			if err != nil {
				return fmt.Errorf("receive proc from init: %w", err)
			}
			// In the queue's order: the root, then each mount made here.
			at := 1
			for i := range ic.Mounts {
				if ic.Inside[i] {
					ic.Inside[i] = false
					fds = slices.Insert(fds, at, fd)
					fd = -1
					break
				}
				at++
			}
			if fd >= 0 {
				unix.Close(fd)
			}
		}
		var join int
		if ic.NewEmptyFS {
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
		if ic.NewEmptyFS {
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
			q := fdQueue(fds)
			fds = nil
			err := setupRoot(&ic, &q, beforePivot)
			q.close()
			if err != nil {
				return err
			}
		}
		if err := setNames(&ic); err != nil {
			return err
		}
		if path, err = lookPath(pc, executable); err != nil {
			return err
		}
		if pc.Terminal {
			if master, peer, err = newPty("/", pc.ConsoleSize); err != nil {
				return err
			}
			return mountConsole(peer)
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
		var oob []byte
		if peer >= 0 {
			oob = unix.UnixRights(peer)
		}
		if err = unix.Sendmsg(sock, []byte(path), oob, nil, 0); err != nil {
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
		p.Console = newFile(master, "pty master")
	}
	// Start words a step init fails at as the stage would.
	w := pc.stepWords(path)
	c.st.InitStep = &w
	return nil
}

// recvMount receives the detached mount a gated child sends (spawn.Gate).
func recvMount(sock int) (int, error) {
	oob := make([]byte, unix.CmsgSpace(4))
	for {
		n, oobn, _, _, err := unix.Recvmsg(sock, make([]byte, 1), oob, unix.MSG_CMSG_CLOEXEC)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return -1, err
		}
		if n == 0 && oobn == 0 {
			return -1, errEOF
		}
		return parseFD(oob[:oobn])
	}
}
