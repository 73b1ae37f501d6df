// Package spawn starts a process with clone3 from a thread of its own: into a
// cgroup, with new namespaces, joined to another process's namespaces — a user
// namespace included — and with a pidfd, then execveat(2)s an fd.
//
// Go's os/exec cannot join namespaces, and a multithreaded process cannot
// join a user namespace at all. The forked child here is single-threaded and
// runs only raw system calls until it execs, the way syscall.forkExec does,
// so the binary stays free of cgo.
package spawn

import (
	"fmt"
	"runtime"
	"syscall"
	"unsafe"

	"github.com/containerfd/containerfd/libcontainerfd/internal/procfs"
	"github.com/containerfd/containerfd/libcontainerfd/nsenter"
	"golang.org/x/sys/unix"
)

// Attr says how to start the process.
type Attr struct {
	// ExecFD is the program to run (an O_PATH fd is enough); it is run with
	// execveat(ExecFD, "", Argv, Env, AT_EMPTY_PATH).
	ExecFD int
	// ExecFDOpen leaves ExecFD open across the exec, so that a script run
	// by fd can be read by its interpreter through /dev/fd/N.
	ExecFDOpen bool
	Argv       []string
	Env        []string
	// Files become the child's fds 0, 1, 2, …; -1 closes that number.
	// Every other fd must be O_CLOEXEC.
	Files []int

	// Cloneflags are the CLONE_NEW* flags of the namespaces to create.
	Cloneflags uint64
	// UIDMap and GIDMap are written to the child's uid_map and gid_map
	// (the kernel's text format) before it runs, with CLONE_NEWUSER.
	UIDMap, GIDMap string
	// WriteIDMaps, if set, writes the child's id maps instead (with
	// newuidmap and newgidmap, say, for a caller without CAP_SETUID).
	WriteIDMaps func(pid int) error

	// TimeOffsets, with CLONE_NEWTIME, are written to the new time
	// namespace's timens_offsets ("monotonic 86400 0\n…") before any process
	// enters it.
	TimeOffsets string

	// Join lists namespaces to join. A pid namespace is joined by this
	// thread before the clone, so the child is born in it; the rest are
	// joined by the child, the user namespace's last but for those that
	// need it.
	Join []Namespace

	// CgroupFD, when not -1, is a cgroup2 directory to start the child in
	// (CLONE_INTO_CGROUP).
	CgroupFD int
	// CgroupTasks are fds open for writing on the "tasks" files of cgroup
	// v1 directories: the child moves itself into each first thing, by
	// writing "0" (its one thread). A pid written to cgroup.procs by
	// another process takes the kernel's global threadgroup lock, which
	// waits for an RCU grace period (~10 ms at HZ=250); a thread moving
	// itself does not.
	CgroupTasks []int

	// RootFD, with UseRootFD, becomes the child's root directory (fchdir and
	// chroot) after it joined its namespaces.
	RootFD    int
	UseRootFD bool
	// CwdFD, with UseRootFD and when above 0, is the child's working
	// directory after the chroot (fchdir), as a hook's is the rootfs.
	CwdFD int

	// RootInUserns makes the child root (uid and gid 0) of the user
	// namespace it created or joined before it execs, so the exec keeps
	// the namespace's capabilities.
	RootInUserns bool

	// Unprivileged is for a caller without CAP_SYS_ADMIN in its own user
	// namespace, which cannot join a pid namespace itself: the child joins
	// it with the rest (after the user namespace, which lends it the
	// rights) and forks once more, so that the process that runs is born
	// in it.
	Unprivileged bool

	// Proc, if set, makes the child take on a process's identity itself
	// and execve Proc.Path, instead of execveat(ExecFD).
	Proc *Proc
	// Gate, with Proc, holds the child until it is told to run (see Gate).
	Gate *Gate

	// Prepare, if set, is called with the child's pid while the child
	// waits, before it joins its namespaces: for what is set on a process
	// from outside (rlimits, OOM score) before anything of it runs. (With
	// Unprivileged, or a new pid or time namespace joined through a user
	// namespace, the pid is that of the child that forks the process,
	// which inherits what was set.)
	Prepare func(pid int) error

	// OnThread, if set, runs on the spawning thread just before the clone:
	// for per-thread state the child should inherit, such as a session
	// keyring. The thread is discarded afterwards.
	OnThread func() error
}

// Namespace is a namespace to join: an nsfs fd or a pidfd, and the
// CLONE_NEW* flags to pass to setns(2) with it.
type Namespace struct {
	FD    int
	Flags int
}

// Process is a started child.
type Process struct {
	Pid   int
	Pidfd int // O_CLOEXEC pidfd, owned by the caller
}

// Wait reaps the process, which must be the caller's child, and closes
// its pidfd.
func (p *Process) Wait() (unix.WaitStatus, error) {
	ws, err := reap(p.Pid)
	unix.Close(p.Pidfd)
	return ws, err
}

// Kill kills the process and reaps it.
func (p *Process) Kill() {
	unix.PidfdSendSignal(p.Pidfd, unix.SIGKILL, nil, 0)
	p.Wait()
}

// reap waits for the child pid to exit.
func reap(pid int) (unix.WaitStatus, error) {
	var ws unix.WaitStatus
	for {
		_, err := unix.Wait4(pid, &ws, 0, nil)
		if err != unix.EINTR {
			return ws, err
		}
	}
}

type cloneArgs struct {
	flags      uint64
	pidfd      uint64
	childTID   uint64
	parentTID  uint64
	exitSignal uint64
	stack      uint64
	stackSize  uint64
	tls        uint64
	setTID     uint64
	setTIDSize uint64
	cgroup     uint64
}

// child is everything the forked child reads. It is built before the fork so
// that the child allocates nothing.
type child struct {
	syncR   int // -1, or the pipe to wait on for the id maps
	errW    int
	tasks   []int
	zero    *byte
	join    []Namespace
	joined  []bool // per join, joined before the user namespace
	execFD  int
	rootFD  int
	cwdFD   int
	keepFD  bool
	setRoot bool
	// unshare holds new namespaces made after joining a user namespace,
	// so that it owns them, or a cgroup namespace made after joining the
	// v1 cgroups; with a pid or time namespace the child forks once more
	// (clone2) for a grandchild born in them.
	unshare uint64
	clone2  *cloneArgs
	// offsets, when set, is written to offsetsPath after the unshare.
	offsets     []byte
	offsetsPath *byte
	files       []int
	nextFD      int
	path        *byte
	dot         *byte
	argv        **byte
	envv        **byte
	proc        *procChild
	gate        *gateChild
}

// Child failure stages, reported through the error pipe.
const (
	stageCgroup = iota + 1
	stageSync
	stageSetns
	stageSetid
	stageUnshare
	stageOffsets
	stageRoot
	stageFork
	stagePid // not a failure: the child's report of its child's pid
	stageFiles
	stageExec
	// Proc's steps.
	stageCwd
	stageCwdOutside
	stageSession
	stageTTY
	stageStdio
	stageSched
	stageIOPrio
	stageMemPolicy
	stagePersonality
	stageSeccomp
	stageBounding
	stageGroups
	stageGID
	stageUID
	stageCaps
	stageAmbient
	stageNNP
	stageCloseFDs
	stageAffinity
	stageExecve
	stageTrampoline
	// Gate's steps.
	stageMount
	stageMountSend
	stageGate // not a failure: the child reached its gate
	stageGateWait
	stageGateAccept
	stageGateOrder
	stageGateSignals
)

var stageNames = map[uint32]string{
	stageCgroup:  "join cgroup v1 hierarchies",
	stageSync:    "wait for id maps",
	stageSetns:   "join namespaces",
	stageSetid:   "become root of the user namespace",
	stageUnshare: "make namespaces in the joined user namespace",
	stageOffsets: "write time namespace offsets",
	stageRoot:    "change root",
	stageFork:    "fork into the new pid namespace",
	stageFiles:   "set up fds",
	stageExec:    "execveat",

	stageCwd:         StepCwd,
	stageCwdOutside:  StepCwdOutside,
	stageSession:     "setsid",
	stageTTY:         "set controlling terminal",
	stageStdio:       "chown stdio to the user",
	stageSched:       StepSched,
	stageIOPrio:      "set I/O priority",
	stageMemPolicy:   "set memory policy",
	stagePersonality: "set personality",
	stageSeccomp:     "load seccomp filter",
	stageBounding:    "drop from the bounding set",
	stageGroups:      StepGroups,
	stageGID:         StepGID,
	stageUID:         StepUID,
	stageCaps:        "set capabilities",
	stageAmbient:     "set ambient capabilities",
	stageNNP:         "set no_new_privs",
	stageCloseFDs:    "close fds",
	stageAffinity:    "set cpu affinity",
	stageExecve:      StepExecve,
	stageTrampoline:  "exec the trampoline",
	stageMount:       "make the mount",
	stageMountSend:   "send the mount",
	stageGateWait:    "wait to be told to run",
	stageGateAccept:  "accept the start connection",
	stageGateOrder:   "read the order to start",
	stageGateSignals: "watch for signals at the gate",
}

// Names of Proc's steps that callers word errors of (ChildError.Step).
const (
	StepCwd        = "chdir to cwd"
	StepCwdOutside = "cwd is outside the root"
	StepGroups     = "setgroups"
	StepGID        = "setgid"
	StepUID        = "setuid"
	StepExecve     = "execve"
	StepSched      = "set scheduler"
)

// ChildError is a step of the child that failed, with the kernel's error.
type ChildError struct {
	Step string
	Err  syscall.Errno
}

func (e *ChildError) Error() string { return "spawn: child: " + e.Step + ": " + e.Err.Error() }
func (e *ChildError) Unwrap() error { return e.Err }

// Start starts the child and returns once it has exec'd, or with the error
// of the step that failed (the child is then reaped).
func Start(a *Attr) (*Process, error) {
	argv, err := syscall.SlicePtrFromStrings(a.Argv)
	if err != nil {
		return nil, fmt.Errorf("spawn: argv: %w", err)
	}
	envv, err := syscall.SlicePtrFromStrings(a.Env)
	if err != nil {
		return nil, fmt.Errorf("spawn: env: %w", err)
	}
	if a.Gate != nil {
		envv = append(envv, nil) // room for the entry the gate may add
	}
	empty, dot, zero := []byte{0}, []byte{'.', 0}, []byte{'0'}

	var closers []int
	defer func() {
		for _, fd := range closers {
			unix.Close(fd)
		}
	}()
	// Keep our own fds above the ones being handed over so the child's dups
	// cannot clobber them.
	high := func(fd int) (int, error) {
		if fd < 0 || fd >= len(a.Files) {
			return fd, nil
		}
		nfd, err := unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, len(a.Files))
		if err != nil {
			return -1, fmt.Errorf("spawn: dup fd %d: %w", fd, err)
		}
		closers = append(closers, nfd)
		return nfd, nil
	}

	var errp [2]int
	if err := unix.Pipe2(errp[:], unix.O_CLOEXEC); err != nil {
		return nil, fmt.Errorf("spawn: error pipe: %w", err)
	}
	defer unix.Close(errp[0])
	errWClosed := false
	defer func() {
		if !errWClosed {
			unix.Close(errp[1])
		}
	}()
	syncp := [2]int{-1, -1}
	if a.Cloneflags&unix.CLONE_NEWUSER != 0 || a.Prepare != nil {
		if err := unix.Pipe2(syncp[:], unix.O_CLOEXEC); err != nil {
			return nil, fmt.Errorf("spawn: sync pipe: %w", err)
		}
		defer unix.Close(syncp[0])
		defer func() {
			if syncp[1] >= 0 {
				unix.Close(syncp[1])
			}
		}()
	}

	c := &child{
		syncR:   syncp[0],
		errW:    errp[1],
		tasks:   a.CgroupTasks, // used before any fd moves
		zero:    &zero[0],
		execFD:  a.ExecFD,
		setRoot: a.RootInUserns,
		keepFD:  a.ExecFDOpen,
		rootFD:  -1,
		cwdFD:   -1,
		files:   append([]int(nil), a.Files...),
		path:    &empty[0],
		dot:     &dot[0],
		argv:    &argv[0],
		envv:    &envv[0],
	}
	var pidns []int
	joinPid := false
	for _, ns := range a.Join {
		if ns.Flags&unix.CLONE_NEWPID != 0 {
			joinPid = true
			if !a.Unprivileged {
				pidns = append(pidns, ns.FD)
				ns.Flags &^= unix.CLONE_NEWPID
			}
		}
		if ns.Flags != 0 {
			c.join = append(c.join, ns)
		}
	}
	c.joined = make([]bool, len(c.join))
	if a.UseRootFD {
		c.rootFD = a.RootFD
		if a.CwdFD > 0 {
			c.cwdFD = a.CwdFD
		}
	}
	internal := []*int{&c.syncR, &c.errW, &c.execFD, &c.rootFD, &c.cwdFD}
	if a.Proc != nil {
		if a.Proc.SeccompFlags&unix.SECCOMP_FILTER_FLAG_NEW_LISTENER != 0 {
			return nil, fmt.Errorf("spawn: a seccomp notify listener needs a stage to hand it on: %w", unix.EINVAL)
		}
		if c.proc, err = newProcChild(a.Proc); err != nil {
			return nil, err
		}
		if c.proc.tramp, err = TrampolineFD(); err != nil {
			return nil, err
		}
		c.execFD = -1
		internal = append(internal, &c.proc.tty, &c.proc.tramp)
	}
	if a.Gate != nil {
		if a.Proc == nil {
			return nil, fmt.Errorf("spawn: a gate without a Proc: %w", unix.EINVAL)
		}
		if c.gate, err = newGateChild(a.Gate); err != nil {
			return nil, err
		}
		c.gate.envSlot = (*uintptr)(unsafe.Pointer(&envv[len(a.Env)]))
		internal = append(internal, &c.gate.sock, &c.gate.listener)
	}
	for i := range c.join {
		internal = append(internal, &c.join[i].FD)
	}

	c.nextFD = len(a.Files)
	for _, p := range internal {
		if *p, err = high(*p); err != nil {
			return nil, err
		}
		if *p >= c.nextFD {
			c.nextFD = *p + 1
		}
	}
	for _, fd := range a.Files {
		if fd >= c.nextFD {
			c.nextFD = fd + 1
		}
	}
	if c.gate != nil {
		c.gate.setCloseRanges(len(a.Files), c.errW, c.gate.sock, c.gate.listener, c.proc.tramp)
	}
	if c.proc != nil {
		// [report fd, path, argv..., nil]; argv ends in its own nil.
		c.proc.targv = make([]uintptr, 2, 2+len(argv))
		c.proc.targv[1] = uintptr(unsafe.Pointer(c.proc.path))
		if c.gate != nil {
			c.proc.targv[1] = uintptr(unsafe.Pointer(&c.gate.path[0]))
		}
		for _, p := range argv {
			c.proc.targv = append(c.proc.targv, uintptr(unsafe.Pointer(p)))
		}
	}

	// The kernel writes the pidfd through an address it gets as an integer,
	// from another goroutine: on our stack, the variable could move (a
	// garbage collection shrinks the stacks of waiting goroutines) and the
	// pidfd land in freed memory. The closure below keeps it on the heap,
	// where nothing moves.
	pidfd := new(int32)
	*pidfd = -1
	args := &cloneArgs{
		flags:      a.Cloneflags | unix.CLONE_PIDFD,
		pidfd:      uint64(uintptr(unsafe.Pointer(pidfd))),
		exitSignal: uint64(unix.SIGCHLD),
	}
	if a.CgroupFD >= 0 {
		args.flags |= unix.CLONE_INTO_CGROUP
		args.cgroup = uint64(a.CgroupFD)
	}
	// New namespaces made by the clone would belong to our user namespace,
	// and the joined one could not use them: make them after the join.
	if joinsUserns(a.Join) && a.Cloneflags != 0 {
		c.unshare = a.Cloneflags
	}
	// A cgroup namespace is rooted at the cgroups of the process that makes
	// it: made by the clone, before the child moved itself into its v1
	// cgroups (CgroupTasks), its root there would be ours. The child
	// makes it once it is in them, as runc's init does.
	if len(a.CgroupTasks) > 0 {
		c.unshare |= a.Cloneflags & unix.CLONE_NEWCGROUP
	}
	// A time namespace takes its offsets only before anyone enters it, and
	// clone3 would put the child in at once: unshare it, write them, and
	// fork the process that enters (with the pid namespace, so that the
	// child we report is not that namespace's init).
	offsetsPath := []byte("/proc/self/timens_offsets\x00")
	if a.TimeOffsets != "" && a.Cloneflags&unix.CLONE_NEWTIME != 0 {
		c.unshare |= a.Cloneflags & (unix.CLONE_NEWTIME | unix.CLONE_NEWPID)
		c.offsets = []byte(a.TimeOffsets)
		c.offsetsPath = &offsetsPath[0]
	}
	args.flags &^= c.unshare
	if c.unshare&(unix.CLONE_NEWPID|unix.CLONE_NEWTIME) != 0 || (joinPid && a.Unprivileged) {
		// The grandchild is our child too (CLONE_PARENT).
		c.clone2 = &cloneArgs{flags: unix.CLONE_PARENT}
	}

	type result struct {
		pid, pidfd int
		err        error
	}
	done := make(chan result, 1)
	// The thread may join a pid namespace or a keyring: throw it away.
	nsenter.Throwaway(func() {
		for _, fd := range pidns {
			if err := unix.Setns(fd, unix.CLONE_NEWPID); err != nil {
				done <- result{err: fmt.Errorf("spawn: join pid namespace: %w", err)}
				return
			}
		}
		if a.OnThread != nil {
			if err := a.OnThread(); err != nil {
				done <- result{err: err}
				return
			}
		}
		pid, errno := forkExec(args, c)
		if errno != 0 {
			done <- result{err: fmt.Errorf("spawn: clone3: %w", errno)}
			return
		}
		done <- result{pid: int(pid), pidfd: int(*pidfd)}
	})
	r := <-done
	runtime.KeepAlive(argv)
	runtime.KeepAlive(envv)
	runtime.KeepAlive(empty)
	runtime.KeepAlive(dot)
	runtime.KeepAlive(zero)
	runtime.KeepAlive(offsetsPath)
	runtime.KeepAlive(a.Proc)
	runtime.KeepAlive(a.Gate)
	runtime.KeepAlive(c)
	if r.err != nil {
		return nil, r.err
	}
	p := &Process{Pid: r.pid, Pidfd: r.pidfd}
	unix.Close(errp[1])
	errWClosed = true
	fail := func(err error) (*Process, error) {
		p.Kill()
		return nil, err
	}

	// The child waits before it joins or forks anything: with clone2,
	// p is still the child that forks.
	if syncp[1] >= 0 {
		if a.Cloneflags&unix.CLONE_NEWUSER != 0 {
			write := func(pid int) error { return writeIDMaps(pid, a.UIDMap, a.GIDMap) }
			if a.WriteIDMaps != nil {
				write = a.WriteIDMaps
			}
			if err := write(p.Pid); err != nil {
				return fail(err)
			}
		}
		if a.Prepare != nil {
			if err := a.Prepare(p.Pid); err != nil {
				return fail(err)
			}
		}
		if _, err := unix.Write(syncp[1], []byte{0}); err != nil {
			return fail(fmt.Errorf("spawn: release child: %w", err))
		}
		unix.Close(syncp[1])
		syncp[1] = -1
	}

	var report [8]byte
	n := 0
	if c.clone2 != nil {
		// The child reports its child's pid, then exits.
		var pending []byte
		if p, pending, err = grandchild(p, errp[0]); err != nil {
			return nil, err
		}
		n = copy(report[:], pending)
	}
	if n == 0 {
		if n, err = readFull(errp[0], report[:]); err != nil {
			return fail(fmt.Errorf("spawn: read child status: %w", err))
		}
	}
	if n == 0 {
		return p, nil // the exec closed the pipe
	}
	if stage, _ := record(report[:]); stage == stageGate && n == len(report) {
		return p, nil
	}
	return fail(recordError(report[:]))
}

func joinsUserns(nss []Namespace) bool {
	for _, ns := range nss {
		if ns.Flags&unix.CLONE_NEWUSER != 0 {
			return true
		}
	}
	return false
}

// grandchild reaps the child that forked the real one and returns the real
// one, which the child reported on the status pipe as (stagePid, pid). The
// real one may get its own report in first (its gate, or a failure): that
// is returned as pending, for the caller to read as the next report.
func grandchild(mid *Process, errR int) (p *Process, pending []byte, err error) {
	var pid = -1
	for pid < 0 {
		var report [8]byte
		n, rerr := readFull(errR, report[:])
		stage, val := record(report[:])
		switch {
		case rerr != nil:
			err = fmt.Errorf("spawn: read child status: %w", rerr)
		case n == len(report) && stage == stagePid:
			pid = int(val)
			continue
		case n == len(report) && pending == nil:
			pending = report[:]
			continue
		case pending != nil:
			// The child failed, and said so, before it forked.
			err = recordError(pending)
		}
		break
	}
	ws, _ := mid.Wait()
	if pid < 0 {
		if err == nil {
			err = fmt.Errorf("spawn: child exited (%v) before it forked", ws)
		}
		return nil, nil, err
	}
	pidfd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		// Our child (CLONE_PARENT), not yet reaped: the pid is still its.
		unix.Kill(pid, unix.SIGKILL)
		reap(pid)
		return nil, nil, fmt.Errorf("spawn: pidfd_open %d: %w", pid, err)
	}
	return &Process{Pid: pid, Pidfd: pidfd}, pending, nil
}

// record reads a child's report: its stage and a value (an errno, or a
// pid for stagePid), native-endian, as the child writes them.
func record(b []byte) (stage, val uint32) {
	return *(*uint32)(unsafe.Pointer(&b[0])), *(*uint32)(unsafe.Pointer(&b[4]))
}

// recordError is the ChildError a failure report says.
func recordError(b []byte) error {
	stage, errno := record(b)
	return &ChildError{Step: stageNames[stage], Err: syscall.Errno(errno)}
}

func readFull(fd int, b []byte) (int, error) {
	n := 0
	for n < len(b) {
		m, err := unix.Read(fd, b[n:])
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return n, err
		}
		if m == 0 {
			break
		}
		n += m
	}
	return n, nil
}

func writeIDMaps(pid int, uidMap, gidMap string) error {
	write := func(name, data string) error {
		if data == "" {
			return nil
		}
		path := fmt.Sprintf("/proc/%d/%s", pid, name)
		if err := procfs.WriteFile(path, []byte(data)); err != nil {
			return fmt.Errorf("spawn: %w", err)
		}
		return nil
	}
	if err := write("uid_map", uidMap); err != nil {
		return err
	}
	return write("gid_map", gidMap)
}

// ExitCode is a shell's view of a wait status: the exit code, or 128 plus
// the number of the signal that killed the process.
func ExitCode(ws unix.WaitStatus) int {
	if ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ws.ExitStatus()
}
