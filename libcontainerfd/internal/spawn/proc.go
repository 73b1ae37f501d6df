package spawn

import (
	"fmt"
	"slices"
	"strings"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Proc is a process identity the child takes on itself, after its fds are
// in place, before it execs Path, without a second Go runtime between the
// clone and the program; or that a Go stage takes on through the same code
// (Steps). The steps run in the order of the fields; unset ones are
// skipped.
type Proc struct {
	// Path is execve'd (with Attr.Argv and Attr.Env), resolved in the
	// child's root and cwd; Attr.ExecFD is not used.
	Path string
	// Umask is set; Cwd is changed to, and getcwd must then name a
	// directory under the root: a cwd reached through a leaked fd lies
	// outside it (CVE-2024-21626).
	Umask int
	Cwd   string
	// The process leads a session and process group of its own (setsid),
	// as runc's do. TTY, when not -1, becomes the session's controlling
	// terminal (TIOCSCTTY) and fds 0-2 (dup3). Like the Files, it must be
	// O_CLOEXEC. Then fds 0-2 become UID's (their group stays), as runc
	// makes them, so that the process can open /dev/stdout and use its
	// terminal: all but /dev/null, what UID owns already, and what the
	// process's user namespace cannot chown (EPERM) or is read-only
	// (EROFS).
	TTY int
	// Scheduler (sched_setattr), IOPriority (ioprio_set), MemPolicy
	// (set_mempolicy) and Personality are set before credentials change.
	Scheduler   *unix.SchedAttr
	IOPriority  *int
	MemPolicy   *MemPolicy
	Personality *uint
	// CloseFrom marks every fd from it up close-on-exec: before the
	// seccomp filter, which may answer close_range (Linux 5.9) with
	// ENOSYS when its profile is older.
	CloseFrom int
	// Affinity is the CPU set the program runs on; AllCPUs, when Affinity
	// is nil, makes it every CPU the process's cpuset allows, so that the
	// caller's own pinning does not reach it.
	Affinity *unix.CPUSet
	AllCPUs  bool
	// Seccomp is loaded before the capabilities are dropped, or with
	// NoNewPrivs last of all, right before the exec. Only Steps can hand
	// on a notify listener: a spawned child refuses to make one.
	Seccomp      []unix.SockFilter
	SeccompFlags uint
	// BoundingDrop are capabilities to drop from the bounding set; then
	// PR_SET_KEEPCAPS keeps the permitted set across the change of uid.
	BoundingDrop []uintptr
	// Groups, GID and UID are set with setgroups, setresgid, setresuid. An
	// empty Groups that the kernel refuses (EPERM, a user namespace that
	// denies setgroups) is no error.
	Groups   []uint32
	UID, GID uint32
	// Caps, when set, are the effective, permitted and inheritable sets
	// (capset, version 3); the ambient set becomes Ambient and
	// PR_SET_KEEPCAPS is cleared.
	Caps    *[2]unix.CapUserData
	Ambient []uintptr
	// NoNewPrivs sets PR_SET_NO_NEW_PRIVS.
	NoNewPrivs bool
}

// devNull is /dev/null's device number, whose owner stays.
var devNull = unix.Mkdev(1, 3)

// allCPUs is the mask of AllCPUs: 64Ki CPUs, more than any kernel's
// NR_CPUS. sched_setaffinity(2) keeps the bits of CPUs the kernel has and
// the process's cpuset allows, and remembers the rest should the cpuset
// grow.
var allCPUs = func() []byte {
	b := make([]byte, 64*1024/8)
	for i := range b {
		b[i] = 0xff
	}
	return b
}()

// MemPolicy is a set_mempolicy(2) mode and node mask.
type MemPolicy struct {
	Mode  int
	Nodes []uint64
}

// procChild is Proc as the forked child reads it: pointers and lengths
// ready for system calls.
type procChild struct {
	// tramp is the trampoline's fd; targv its argv: the report fd (the
	// child writes it into fdArg), the program's path, its argv.
	tramp       int
	targv       []uintptr
	fdArg       [12]byte
	path        *byte
	umask       int
	cwd         *byte
	cwdBuf      []byte
	tty         int
	sched       *unix.SchedAttr
	ioprio      *int
	mempolicy   *MemPolicy
	nodes       uintptr
	personality *uint
	prog        *unix.SockFprog
	progFlags   uintptr
	seccompLate bool
	// listener is the notify fd of a filter run loaded, when it paused
	// (see run).
	listener  int
	paused    bool
	drop      []uintptr
	groups    []uint32
	groupsPtr uintptr
	uid, gid  uintptr
	capHdr    *unix.CapUserHeader
	caps      *[2]unix.CapUserData
	ambient   []uintptr
	nnp       bool
	stat      unix.Stat_t // fstat's, for the stdio's owners
	closeFrom uintptr
	// affinity and affinityLen are sched_setaffinity's mask, or nil.
	affinity    unsafe.Pointer
	affinityLen uintptr
}

func newProcChild(p *Proc) (*procChild, error) {
	path, err := syscall.BytePtrFromString(p.Path)
	if err != nil {
		return nil, fmt.Errorf("spawn: path: %w", err)
	}
	cwd := p.Cwd
	if cwd == "" {
		cwd = "/"
	}
	cwdp, err := syscall.BytePtrFromString(cwd)
	if err != nil {
		return nil, fmt.Errorf("spawn: cwd: %w", err)
	}
	pc := &procChild{
		tramp: -1, listener: -1, path: path, umask: p.Umask, cwd: cwdp,
		cwdBuf: make([]byte, unix.PathMax), tty: p.TTY,
		sched: p.Scheduler, ioprio: p.IOPriority, mempolicy: p.MemPolicy, personality: p.Personality,
		progFlags: uintptr(p.SeccompFlags), seccompLate: p.NoNewPrivs,
		drop: p.BoundingDrop, groups: p.Groups, uid: uintptr(p.UID), gid: uintptr(p.GID),
		caps: p.Caps, ambient: p.Ambient, nnp: p.NoNewPrivs,
		closeFrom: uintptr(p.CloseFrom),
	}
	switch {
	case p.Affinity != nil:
		pc.affinity, pc.affinityLen = unsafe.Pointer(p.Affinity), unsafe.Sizeof(*p.Affinity)
	case p.AllCPUs:
		pc.affinity, pc.affinityLen = unsafe.Pointer(&allCPUs[0]), uintptr(len(allCPUs))
	}
	if len(p.Seccomp) > 0 {
		pc.prog = &unix.SockFprog{Len: uint16(len(p.Seccomp)), Filter: &p.Seccomp[0]}
	}
	if len(p.Groups) > 0 {
		pc.groupsPtr = uintptr(unsafe.Pointer(&p.Groups[0]))
	}
	if p.MemPolicy != nil && len(p.MemPolicy.Nodes) > 0 {
		pc.nodes = uintptr(unsafe.Pointer(&p.MemPolicy.Nodes[0]))
	}
	if p.Caps != nil {
		pc.capHdr = &unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	}
	return pc, nil
}

// Gate holds a child with a Proc, once its fds are in place, until it is
// told to run: the way a container's init waits for create to finish and
// start to come. Start returns when the child has reached the gate; the
// child then
//
//   - receives one message on Sock: Proc.Path's value (which the caller
//     may only know once the child exists), optionally followed by a NUL
//     and one more entry of the program's environment (HOME, which the
//     caller reads from the root it builds), each under unix.PathMax
//     bytes; and with it, optionally, an fd (SCM_RIGHTS) that becomes
//     Proc.TTY;
//   - accepts one connection on Listener and reads Order from it;
//   - runs Proc's steps, reporting a failure on that connection as a
//     StepRecord; an exec closes it without a word.
//
// If Sock reaches end of file first (the caller died), the child exits.
type Gate struct {
	Sock     int
	Listener int
	Order    []byte
	// Comm, if set, is the child's name while it waits (PR_SET_NAME; the
	// kernel keeps 15 bytes), which /proc/<pid>/comm shows.
	Comm string
	// Mount, if set, is a filesystem the child makes before the gate, in
	// its own namespaces (procfs for its pid namespace, where the kernel
	// cannot make one for another), and sends as a detached mount over
	// Sock.
	Mount *NewMount
}

// NewMount is a filesystem to create with fsopen, fsconfig and fsmount.
type NewMount struct {
	Type   string
	Source string
	// Options are "key=value" (FSCONFIG_SET_STRING) or "key"
	// (FSCONFIG_SET_FLAG).
	Options []string
	// Attr is fsmount's MOUNT_ATTR_* flags.
	Attr uint64
}

// StepRecord is how a child past its Gate reports a failed step: 8 bytes,
// the step's number and the errno, native-endian.
const StepRecord = 8

// ParseStepRecord reads a StepRecord.
func ParseStepRecord(b []byte) error {
	if len(b) != StepRecord {
		return fmt.Errorf("spawn: child: report of %d bytes", len(b))
	}
	return recordError(b)
}

// gateChild is Gate as the forked child reads it.
type gateChild struct {
	sock, listener int
	comm           *byte
	order          []byte
	orderBuf       []byte
	// path receives the message: the path, [NUL, env entry]; envSlot is
	// the nil before the env's end that the entry takes.
	path    []byte
	envSlot *uintptr
	iov     unix.Iovec
	control []byte
	msg     unix.Msghdr
	// The mount: fsopen's type, fsconfig's commands, fsmount's attr.
	mountType *byte
	config    []fsconfigCmd
	attr      uintptr
	// sendMsg carries the mount fd; its control data is filled in by the
	// child.
	sendIov     unix.Iovec
	sendControl []byte
	sendMsg     unix.Msghdr
	one         [1]byte
	// fdOff is where an SCM_RIGHTS message holds its first fd; ttyLen the
	// control length of a message that carries one.
	fdOff  int
	ttyLen uint64
	// closeRanges are the fds to close at the gate: all but the
	// process's files and the gate's own. The child holds copies of every
	// fd its parent had at the fork (a flock held through the state
	// directory's fd, the other end of Sock) for as long as it waits.
	closeRanges [][2]uintptr
	// sigs are the signals that end a waiting Go program (SIGTERM and its
	// kind), blocked at the gate and read from a signalfd; oldMask is the
	// mask to restore; poll waits on the listener and the signalfd.
	sigs    unix.Sigset_t
	oldMask unix.Sigset_t
	poll    [2]unix.PollFd
}

// gateSignals end a child waiting at its gate, as they end a waiting Go
// program (ours, runc's init): with no handler of its own, a pid
// namespace's init would get none of them.
var gateSignals = []unix.Signal{unix.SIGHUP, unix.SIGINT, unix.SIGTERM, unix.SIGQUIT, unix.SIGILL,
	unix.SIGTRAP, unix.SIGABRT, unix.SIGSTKFLT, unix.SIGSYS}

// sigsetSize is the kernel's sigset_t in bytes: _NSIG (64) bits.
const sigsetSize = 8

// gateSignalExit is the status a child ended at its gate by one of
// gateSignals exits with: a Go program's when such a signal cannot kill it.
const gateSignalExit = 2

// setCloseRanges computes closeRanges: everything from files up but keep.
func (gc *gateChild) setCloseRanges(files int, keep ...int) {
	slices.Sort(keep)
	lo := files
	for _, k := range keep {
		if k > lo {
			gc.closeRanges = append(gc.closeRanges, [2]uintptr{uintptr(lo), uintptr(k - 1)})
		}
		lo = k + 1
	}
	gc.closeRanges = append(gc.closeRanges, [2]uintptr{uintptr(lo), ^uintptr(0)})
}

type fsconfigCmd struct {
	cmd        uintptr
	key, value *byte
}

func newGateChild(g *Gate) (*gateChild, error) {
	gc := &gateChild{
		sock: g.Sock, listener: g.Listener, order: g.Order,
		orderBuf: make([]byte, len(g.Order)+1),
		path:     make([]byte, 2*unix.PathMax+1),
		control:  make([]byte, unix.CmsgSpace(4)),
		fdOff:    unix.CmsgLen(0),
		ttyLen:   uint64(unix.CmsgLen(4)),
	}
	if g.Comm != "" {
		var err error
		if gc.comm, err = syscall.BytePtrFromString(g.Comm); err != nil {
			return nil, fmt.Errorf("spawn: comm: %w", err)
		}
	}
	for _, sig := range gateSignals {
		gc.sigs.Val[(sig-1)/64] |= 1 << ((sig - 1) % 64)
	}
	gc.poll[0] = unix.PollFd{Fd: int32(g.Listener), Events: unix.POLLIN}
	gc.poll[1] = unix.PollFd{Fd: -1, Events: unix.POLLIN}
	gc.iov.Base = &gc.path[0]
	gc.iov.SetLen(len(gc.path) - 1) // room for the NUL
	gc.msg.Iov = &gc.iov
	gc.msg.SetIovlen(1)
	gc.msg.Control = &gc.control[0]
	gc.msg.SetControllen(len(gc.control))
	if m := g.Mount; m != nil {
		var err error
		if gc.mountType, err = syscall.BytePtrFromString(m.Type); err != nil {
			return nil, fmt.Errorf("spawn: mount type: %w", err)
		}
		opts := m.Options
		if m.Source != "" {
			opts = append([]string{"source=" + m.Source}, opts...)
		}
		for _, opt := range opts {
			key, value, isString := strings.Cut(opt, "=")
			cmd := fsconfigCmd{cmd: unix.FSCONFIG_SET_FLAG}
			if cmd.key, err = syscall.BytePtrFromString(key); err != nil || key == "" {
				return nil, fmt.Errorf("spawn: mount option %q: %w", opt, unix.EINVAL)
			}
			if isString {
				cmd.cmd = unix.FSCONFIG_SET_STRING
				if cmd.value, err = syscall.BytePtrFromString(value); err != nil {
					return nil, fmt.Errorf("spawn: mount option %q: %w", opt, err)
				}
			}
			gc.config = append(gc.config, cmd)
		}
		gc.attr = uintptr(m.Attr)
		gc.sendControl = unix.UnixRights(0) // the fd is the child's to fill in
		gc.sendIov.Base = &gc.one[0]
		gc.sendIov.SetLen(1)
		gc.sendMsg.Iov = &gc.sendIov
		gc.sendMsg.SetIovlen(1)
		gc.sendMsg.Control = &gc.sendControl[0]
		gc.sendMsg.SetControllen(len(gc.sendControl))
	}
	return gc, nil
}
