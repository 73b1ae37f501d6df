package msg

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"syscall"

	"github.com/containerfd/containerfd/libcontainerfd/caps"
	"github.com/containerfd/containerfd/libcontainerfd/internal/rootfs"
	"github.com/containerfd/containerfd/libcontainerfd/internal/spawn"
	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// The stages: our own binary, started with one of these as argv[0]
// (stage.Main dispatches on it).
const (
	// StageInit is init, started through the stage: argv[1] is its socket,
	// argv[2], if there, the v1 memory cgroup's tasks file to join once
	// the Go runtime has started. It reads Init and the plan's fds, builds
	// the root, answers Reply{Ready}, and waits on the start listener.
	StageInit = "containerfd-init"
	// StageExec is an exec'd process started through the stage: argv as
	// StageInit's. It reads Process and the root's fd.
	StageExec = "containerfd-exec"
	// StageWatch is the watcher of a KillOnClose container, outside it:
	// argv[1] is WatchHoldFD, argv[2] the cgroup paths as JSON, argv[3]
	// "events" (WatchWaitFD is the cgroup's cgroup.events) or "pidfd"
	// (init's pidfd).
	StageWatch = "containerfd-watch"
	// WatchGroup, as argv[1] of StageWatch, makes it the end of a group
	// watcher (libcontainerfd.Watcher): it reads WatchHoldFD, a pipe, to
	// its end, then kills the cgroups of the containers WatchListFD lists
	// (a WatchList). It is exec'd by spawn's waiter, which has read the
	// pipe to its end already, or, where there is no waiter, started so.
	WatchGroup = "group"
	// StageEnter runs a program of a hook in a container's namespaces:
	// argv: <init pid> <namespace flags> host|container <filter> <cwd>
	// <path> <argv...>, filter "-" or "FD:FLAGS", a seccomp program to load
	// in the program (in the file open as FD) and its
	// SECCOMP_FILTER_FLAG_*s; cwd "-" or, for a program found on the host,
	// the rootfs's path, its working directory.
	StageEnter = "containerfd-enter"
	// StageUserns holds a user namespace with an idmapped mount's mapping
	// while the runtime opens it; it leaves when UsernsHoldFD closes.
	StageUserns = "containerfd-userns"
)

// Watch is a container for a watcher to watch: its cgroup paths (JSON,
// "null" without a cgroup) and what WaitFD is, "events" (its cgroup.events)
// or "pidfd" (init's).
type Watch struct {
	Paths  json.RawMessage `json:"paths"`
	Kind   string          `json:"kind"`
	WaitFD int             `json:"-"`
}

// The fds a watcher and a user namespace holder are started with. A group
// watcher's are the waiter's (spawn.WaiterHoldFD, spawn.WaiterExecFD)
// and its list.
const (
	WatchHoldFD  = spawn.WaiterHoldFD
	WatchWaitFD  = 4
	WatchListFD  = 5
	UsernsHoldFD = 3
)

// A WatchList is a memfd that lists, as a JSON array, the cgroup paths of
// the containers a group watcher kills. Its holder rewrites it as
// containers come and go, and may be killed at any point of that: each
// list is written where it does not overlap the one before, and then the
// header, watchListHeader bytes written in one call, says where it is
// (offset, length), so the watcher reads a whole list, old or new.
type WatchList struct {
	fd      int
	at, len int64 // where the list the header names is
}

const watchListHeader = 16

// NewWatchList makes an empty list; Fd is its memfd, close-on-exec.
func NewWatchList() (*WatchList, error) {
	fd, err := unix.MemfdCreate("containerfd-watch-list", unix.MFD_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("watch list: memfd_create: %w", err)
	}
	l := &WatchList{fd: fd, at: watchListHeader}
	if err := l.Store(nil); err != nil {
		unix.Close(fd)
		return nil, err
	}
	return l, nil
}

// Fd is the list's memfd.
func (l *WatchList) Fd() int { return l.fd }

// Close closes the list's memfd.
func (l *WatchList) Close() error { return unix.Close(l.fd) }

// Store makes paths the list.
func (l *WatchList) Store(paths []json.RawMessage) error {
	if paths == nil {
		paths = []json.RawMessage{}
	}
	b, err := json.Marshal(paths)
	if err != nil {
		return err
	}
	at := int64(watchListHeader)
	if int64(len(b)) > l.at-at {
		at = l.at + l.len // no room before the current list: after it
	}
	if err := pwriteAll(l.fd, b, at); err != nil {
		return fmt.Errorf("watch list: %w", err)
	}
	var h [watchListHeader]byte
	binary.LittleEndian.PutUint64(h[0:], uint64(at))
	binary.LittleEndian.PutUint64(h[8:], uint64(len(b)))
	if err := pwriteAll(l.fd, h[:], 0); err != nil {
		return fmt.Errorf("watch list: %w", err)
	}
	l.at, l.len = at, int64(len(b))
	if at == watchListHeader {
		// What lay after it was the list before: no longer named.
		if err := unix.Ftruncate(l.fd, at+l.len); err != nil {
			return fmt.Errorf("watch list: truncate: %w", err)
		}
	}
	return nil
}

func pwriteAll(fd int, b []byte, off int64) error {
	for len(b) > 0 {
		n, err := unix.Pwrite(fd, b, off)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return err
		}
		b, off = b[n:], off+int64(n)
	}
	return nil
}

// ReadWatchList reads the list the header of the WatchList fd names.
func ReadWatchList(fd int) ([]json.RawMessage, error) {
	var h [watchListHeader]byte
	if n, err := unix.Pread(fd, h[:], 0); err != nil || n != len(h) {
		return nil, fmt.Errorf("watch list: header: %d bytes, %v", n, err)
	}
	at, n := binary.LittleEndian.Uint64(h[0:]), binary.LittleEndian.Uint64(h[8:])
	if n > 1<<30 {
		return nil, fmt.Errorf("watch list: length %d", n)
	}
	b := make([]byte, n)
	if got, err := unix.Pread(fd, b, int64(at)); err != nil || got != len(b) {
		return nil, fmt.Errorf("watch list: %d of %d bytes at %d, %v", got, n, at, err)
	}
	var paths []json.RawMessage
	if err := json.Unmarshal(b, &paths); err != nil {
		return nil, fmt.Errorf("watch list: %w", err)
	}
	return paths, nil
}

// Where a program of StageEnter is found.
const (
	PathOnHost      = "host"      // path resolves in the caller's mount namespace
	PathInContainer = "container" // path resolves in the container's root
)

// StartOrder is what start sends init on the start connection, as JSON:
// a stage's init reads it so, a direct one compares the bytes
// (spawn.Gate.Order).
const StartOrder = "start"

// Process is a process of the container as a stage receives it: what
// spawn.Proc needs, and what only the stage does (the LSM labels, the pty,
// the program's lookup).
type Process struct {
	Args         []string                 `json:"args"`
	Env          []string                 `json:"env"`
	Cwd          string                   `json:"cwd"`
	UID          uint32                   `json:"uid"`
	GID          uint32                   `json:"gid"`
	Groups       []uint32                 `json:"groups,omitempty"`
	Umask        *uint32                  `json:"umask,omitempty"`
	NNP          bool                     `json:"noNewPrivileges,omitempty"`
	Capabilities *specs.LinuxCapabilities `json:"capabilities,omitempty"`
	Terminal     bool                     `json:"terminal,omitempty"`
	ConsoleSize  *specs.Box               `json:"consoleSize,omitempty"`
	Scheduler    *unix.SchedAttr          `json:"scheduler,omitempty"`
	IOPriority   *int                     `json:"ioPriority,omitempty"`
	Personality  *uint                    `json:"personality,omitempty"`
	MemPolicy    *spawn.MemPolicy         `json:"memPolicy,omitempty"`
	// AppArmorProfile and SELinuxLabel are written through /proc before
	// any other step (package lsm): only the stage can.
	AppArmorProfile string `json:"apparmorProfile,omitempty"`
	SELinuxLabel    string `json:"selinuxLabel,omitempty"`
	// FinalCPUs is the cpu set the process runs on once it execs;
	// AllCPUs, without it, lets it run on every CPU its cpuset has.
	FinalCPUs *unix.CPUSet `json:"finalCPUs,omitempty"`
	AllCPUs   bool         `json:"allCPUs,omitempty"`
	// ClearONLCR: the pty does not turn "\n" into "\r\n" (see
	// rootfs.NewPtyIn).
	ClearONLCR bool `json:"clearONLCR,omitempty"`
	// Seccomp is the compiled filter to load before exec.
	Seccomp *Seccomp `json:"seccomp,omitempty"`
	// KeepNofile: the runtime set RLIMIT_NOFILE, which Go's exec would
	// otherwise put back to what the stage started with.
	KeepNofile bool `json:"keepNofile,omitempty"`
	// Files is how many fds from 0 the process keeps.
	Files int `json:"files"`
}

// Seccomp is a compiled seccomp filter on its way to a stage.
type Seccomp struct {
	Program []unix.SockFilter `json:"program"`
	Flags   uint              `json:"flags"`
}

// SpawnProc is p for a child that execs path itself, with tty (or -1) as
// its terminal: the identity steps (spawn.Proc) a direct child and the
// stage both take.
func (p *Process) SpawnProc(path string, tty int) (*spawn.Proc, error) {
	sp := &spawn.Proc{
		Path: path, Umask: 0o022, Cwd: p.Cwd, TTY: tty,
		Scheduler: p.Scheduler, IOPriority: p.IOPriority, Personality: p.Personality,
		MemPolicy: p.MemPolicy, Affinity: p.FinalCPUs, AllCPUs: p.AllCPUs,
		Groups: p.Groups, UID: p.UID, GID: p.GID,
		NoNewPrivs: p.NNP, CloseFrom: p.Files,
	}
	if p.Umask != nil {
		sp.Umask = int(*p.Umask)
	}
	if p.Seccomp != nil {
		sp.Seccomp, sp.SeccompFlags = p.Seccomp.Program, p.Seccomp.Flags
	}
	if p.Capabilities != nil {
		cs, err := caps.Parse(p.Capabilities)
		if err != nil {
			return nil, err
		}
		drop, data, ambient, err := cs.Raw()
		if err != nil {
			return nil, err
		}
		sp.BoundingDrop, sp.Caps, sp.Ambient = drop, &data, ambient
	}
	return sp, nil
}

// SetHome gives p's environment the HOME of its user, read from the
// container's root open as root (see rootfs.WithHome).
func (p *Process) SetHome(root int) {
	p.Env = rootfs.WithHome(p.Env, root, p.UID)
}

// LookPath finds p's program in the caller's root (see rootfs.LookPath).
func (p *Process) LookPath(executable func(string) error) (string, error) {
	return rootfs.LookPath(p.Args, p.Env, p.Cwd, executable)
}

// Init is what init's stage receives first; the fds follow (SendFDs): the
// start listener, then the root plan's (rootfs.FDs.List).
type Init struct {
	// Root is the plan of the container's root file system, with
	// NewEmptyFS; nil leaves init in the caller's.
	Root            *rootfs.Plan `json:"root,omitempty"`
	WaitBeforePivot bool         `json:"waitBeforePivot,omitempty"`
	// Chroot: the fd after the start listener is a root to chroot into,
	// which the runtime built (rootfs.SetupAt) for a container without a
	// mount namespace of its own.
	Chroot bool `json:"chroot,omitempty"`
	// LateLookup: the root is filled from outside after create, so the
	// program is looked up at start.
	LateLookup bool `json:"lateLookup,omitempty"`
	// LoopbackUp and Sysctl are for a rootless init to do itself, in its
	// namespaces: the runtime cannot join them.
	LoopbackUp bool              `json:"loopbackUp,omitempty"`
	Sysctl     map[string]string `json:"sysctl,omitempty"`
	Hostname   *string           `json:"hostname,omitempty"`
	Domainname *string           `json:"domainname,omitempty"`
	Process    Process           `json:"process"`
	// FDs is how many fds follow: the start listener and the plan's (or
	// the root, with Chroot).
	FDs int `json:"fds"`
}

// SetNames sets the hostname and domain name i gives, in the caller's UTS
// namespace.
func (i *Init) SetNames() error {
	if i.Hostname != nil {
		if err := unix.Sethostname([]byte(*i.Hostname)); err != nil {
			return fmt.Errorf("set hostname %q: %w", *i.Hostname, err)
		}
	}
	if i.Domainname != nil {
		if err := unix.Setdomainname([]byte(*i.Domainname)); err != nil {
			return fmt.Errorf("set domainname %q: %w", *i.Domainname, err)
		}
	}
	return nil
}

// Reply is what a stage says: an error, that it is ready (init,
// created), or, with an fd attached, the pty master it made (Console).
type Reply struct {
	Error   string `json:"error,omitempty"`
	Ready   bool   `json:"ready,omitempty"`
	Console bool   `json:"console,omitempty"`
	// Mounted: init has attached every mount and waits for "pivot"
	// before pivot_root (Init.WaitBeforePivot).
	Mounted bool `json:"mounted,omitempty"`
	// Seccomp: the attached fd is the seccomp notify listener of the
	// process; the stage waits for "ok" once it is handed on.
	Seccomp bool `json:"seccomp,omitempty"`
	// Step and Errno, with Error, are a failed step of the process's
	// start (a spawn.ChildError), for the runtime to return as a direct
	// child's.
	Step  string `json:"step,omitempty"`
	Errno int    `json:"errno,omitempty"`
}

// Fail replies err, then takes what is still queued so that closing the
// socket does not reset it before the runtime has read the error.
func Fail(sock int, err error) error {
	reply := Reply{Error: err.Error()}
	var ce *spawn.ChildError
	if errors.As(err, &ce) {
		reply.Step, reply.Errno = ce.Step, int(ce.Err)
	}
	if SendJSON(sock, reply) == nil {
		err = reported{err}
	}
	for {
		fd, rerr := Recv(sock, &struct{}{})
		if rerr != nil {
			break
		}
		if fd >= 0 {
			unix.Close(fd)
		}
	}
	return err
}

// reported is an error Fail delivered: the runtime has it to say.
type reported struct{ error }

func (r reported) Unwrap() error { return r.error }

// Reported reports whether err reached the runtime through Fail.
func Reported(err error) bool {
	var r reported
	return errors.As(err, &r)
}

// Events are what the reader of a stage's replies does when the stage
// reports something on the way.
type Events struct {
	Console func(*os.File)     // the pty master
	Mounted func() error       // init waits before pivot_root
	Seccomp func(fd int) error // the process's seccomp notify fd; closed after
}

// ReadReplies reads a stage's replies until ready, an error, or the
// stage's exit or exec (EOF). wantReady says which ends the wait: Ready
// (init) or EOF (exec, start).
func ReadReplies(sock int, wantReady bool, on Events) error {
	for {
		var r Reply
		fd, err := Recv(sock, &r)
		switch {
		case err == ErrEOF && !wantReady:
			return nil
		case err != nil:
			return err
		case r.Error != "":
			if fd >= 0 {
				unix.Close(fd)
			}
			if r.Step != "" {
				return &StepError{msg: r.Error, ce: &spawn.ChildError{Step: r.Step, Err: syscall.Errno(r.Errno)}}
			}
			return errors.New(r.Error)
		case r.Console && fd >= 0 && on.Console != nil:
			on.Console(os.NewFile(uintptr(fd), "pty master"))
		case r.Seccomp && fd >= 0 && on.Seccomp != nil:
			err := on.Seccomp(fd)
			unix.Close(fd)
			if err != nil {
				return err
			}
			if err := SendJSON(sock, "ok"); err != nil {
				return err
			}
		case fd >= 0:
			unix.Close(fd)
		case r.Mounted:
			if err := on.Mounted(); err != nil {
				return err
			}
			if err := SendJSON(sock, "pivot"); err != nil {
				return err
			}
		}
		if r.Ready && wantReady {
			return nil
		}
	}
}

// StepError is a failed step of a process's start, worded with what the
// step was to do: the same words, and the same *spawn.ChildError beneath
// (errors.As, errors.Is with its errno), whether a direct child or a stage
// took the step.
type StepError struct {
	msg string
	ce  *spawn.ChildError
}

func (e *StepError) Error() string { return e.msg }
func (e *StepError) Unwrap() error { return e.ce }

// Step is the step that failed (spawn.Step*).
func (e *StepError) Step() string { return e.ce.Step }

// StepWords is what a failed step is worded with: the process's program
// and what its steps were to set. A direct init's are kept in its state
// until start.
type StepWords struct {
	Path   string   `json:"path"`
	Cwd    string   `json:"cwd,omitempty"`
	UID    uint32   `json:"uid"`
	GID    uint32   `json:"gid"`
	Groups []uint32 `json:"groups,omitempty"`
	// Deadline: the scheduler step was to set SCHED_DEADLINE.
	Deadline bool `json:"deadline,omitempty"`
}

// StepWords are p's, for its program at path.
func (p *Process) StepWords(path string) StepWords {
	return StepWords{Path: path, Cwd: p.Cwd, UID: p.UID, GID: p.GID, Groups: p.Groups,
		Deadline: p.Scheduler != nil && p.Scheduler.Policy == unix.SCHED_DEADLINE}
}

// ChildError words a failed step (spawn.ChildError) with w; other errors
// are returned as they are.
func ChildError(err error, w StepWords) error {
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
	case spawn.StepSched:
		msg = ce.Error()
		if w.Deadline && ce.Err == unix.EPERM {
			// runc's words: the usual cause is a cpuset that leaves out
			// some of the machine's CPUs.
			msg += " (SCHED_DEADLINE needs every CPU of the system in the process's affinity, and CAP_SYS_NICE: " +
				"process scheduler can't be used together with AllowedCPUs)"
		}
	default:
		msg = ce.Error()
	}
	return &StepError{msg: msg, ce: ce}
}
