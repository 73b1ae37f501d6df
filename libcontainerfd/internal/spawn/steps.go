package spawn

import (
	"errors"
	"fmt"
	"runtime"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The identity steps of a Proc are written once, in run, for both the ways a
// container process takes them on: a spawned child (forkExec) and a Go stage
// (Steps), so the two cannot drift apart in order, semantics or errors.
//
// In the child, run executes between clone and exec of a multithreaded
// parent's copy, as syscall.forkExec's child code does: runtimeBeforeFork
// spoiled the stack guard, so it must not grow the stack (it is nosplit,
// with a small frame, and calls only nosplit raw system calls), must not
// allocate, and must not write pointers (no write barriers). It reads only
// memory prepared before the fork.

// run takes the steps on the calling thread, in Proc's order. It returns
// (stageExecve, 0) when the program is to be exec'd (which it leaves to
// the caller), or a failed step and its errno. A filter loaded with
// SECCOMP_FILTER_FLAG_NEW_LISTENER pauses it: it returns (stageSeccomp, 0)
// with the listener in p.listener, and the next call goes on after the
// filter. keep, if not -1, is an fd to leave open across the exec.
//
//go:nosplit
//go:norace
//go:nocheckptr
func (p *procChild) run(keep int) (stage uint32, err1 syscall.Errno) {
	var (
		r1 uintptr
		i  int
	)
	if p.paused {
		p.paused = false
		if p.seccompLate {
			goto exec
		}
		goto creds
	}

	syscall.RawSyscall(unix.SYS_UMASK, uintptr(p.umask), 0, 0)
	stage = stageCwd
	_, _, err1 = syscall.RawSyscall(unix.SYS_CHDIR, uintptr(unsafe.Pointer(p.cwd)), 0, 0)
	if err1 != 0 {
		return
	}
	stage = stageCwdOutside
	r1, _, err1 = syscall.RawSyscall(unix.SYS_GETCWD, uintptr(unsafe.Pointer(&p.cwdBuf[0])), uintptr(len(p.cwdBuf)), 0)
	if err1 != 0 {
		return
	}
	if r1 == 0 || p.cwdBuf[0] != '/' {
		return stage, syscall.ENOENT
	}
	stage = stageSession
	_, _, err1 = syscall.RawSyscall(unix.SYS_SETSID, 0, 0, 0)
	if err1 == syscall.EPERM {
		// Already a group leader: fine if it leads its session too.
		r1, _, _ = syscall.RawSyscall(unix.SYS_GETSID, 0, 0, 0)
		if pid, _, _ := syscall.RawSyscall(unix.SYS_GETPID, 0, 0, 0); r1 == pid {
			err1 = 0
		}
	}
	if err1 != 0 {
		return
	}
	if p.tty >= 0 {
		stage = stageTTY
		_, _, err1 = syscall.RawSyscall(unix.SYS_IOCTL, uintptr(p.tty), unix.TIOCSCTTY, 0)
		if err1 != 0 {
			return
		}
		for i = 0; i < 3; i++ {
			_, _, err1 = syscall.RawSyscall(unix.SYS_DUP3, uintptr(p.tty), uintptr(i), 0)
			if err1 != 0 {
				return
			}
		}
		if p.tty > 2 {
			syscall.RawSyscall(unix.SYS_CLOSE, uintptr(p.tty), 0, 0)
		}
	}
	stage = stageStdio
	for i = 0; i < 3; i++ {
		_, _, err1 = syscall.RawSyscall(unix.SYS_FSTAT, uintptr(i), uintptr(unsafe.Pointer(&p.stat)), 0)
		if err1 == syscall.EBADF {
			continue
		}
		if err1 != 0 {
			return
		}
		if uintptr(p.stat.Uid) == p.uid || (p.stat.Mode&unix.S_IFMT == unix.S_IFCHR && p.stat.Rdev == devNull) {
			continue
		}
		_, _, err1 = syscall.RawSyscall(unix.SYS_FCHOWN, uintptr(i), p.uid, ^uintptr(0))
		if err1 != 0 && err1 != syscall.EPERM && err1 != syscall.EROFS {
			return
		}
	}
	if p.sched != nil {
		stage = stageSched
		_, _, err1 = syscall.RawSyscall(unix.SYS_SCHED_SETATTR, 0, uintptr(unsafe.Pointer(p.sched)), 0)
		if err1 != 0 {
			return
		}
	}
	if p.ioprio != nil {
		stage = stageIOPrio
		_, _, err1 = syscall.RawSyscall(unix.SYS_IOPRIO_SET, 1, 0, uintptr(*p.ioprio)) // IOPRIO_WHO_PROCESS, self
		if err1 != 0 {
			return
		}
	}
	if p.mempolicy != nil {
		stage = stageMemPolicy
		_, _, err1 = syscall.RawSyscall(unix.SYS_SET_MEMPOLICY, uintptr(p.mempolicy.Mode), p.nodes, uintptr(len(p.mempolicy.Nodes)*64))
		if err1 != 0 {
			return
		}
	}
	if p.personality != nil {
		stage = stagePersonality
		_, _, err1 = syscall.RawSyscall(unix.SYS_PERSONALITY, uintptr(*p.personality), 0, 0)
		if err1 != 0 {
			return
		}
	}
	// Before any filter, which may not know close_range.
	stage = stageCloseFDs
	_, _, err1 = syscall.RawSyscall(unix.SYS_CLOSE_RANGE, p.closeFrom, ^uintptr(0), unix.CLOSE_RANGE_CLOEXEC)
	if err1 != 0 {
		return
	}
	if keep >= 0 {
		_, _, err1 = syscall.RawSyscall(unix.SYS_FCNTL, uintptr(keep), unix.F_SETFD, 0)
		if err1 != 0 {
			return
		}
	}
	if p.affinity != nil {
		stage = stageAffinity
		_, _, err1 = syscall.RawSyscall(unix.SYS_SCHED_SETAFFINITY, 0, p.affinityLen, uintptr(p.affinity))
		if err1 != 0 {
			return
		}
	}
	// Without no_new_privs, loading a filter needs CAP_SYS_ADMIN: before
	// the capabilities go.
	if p.prog != nil && !p.seccompLate {
		if stage, err1 = p.loadSeccomp(); err1 != 0 || p.paused {
			return
		}
	}

creds:
	if p.drop != nil {
		stage = stageBounding
		for i = 0; i < len(p.drop); i++ {
			_, _, err1 = syscall.RawSyscall6(unix.SYS_PRCTL, unix.PR_CAPBSET_DROP, p.drop[i], 0, 0, 0, 0)
			if err1 != 0 {
				return
			}
		}
	}
	if p.caps != nil {
		stage = stageBounding
		_, _, err1 = syscall.RawSyscall6(unix.SYS_PRCTL, unix.PR_SET_KEEPCAPS, 1, 0, 0, 0, 0)
		if err1 != 0 {
			return
		}
	}
	stage = stageGroups
	_, _, err1 = syscall.RawSyscall(unix.SYS_SETGROUPS, uintptr(len(p.groups)), p.groupsPtr, 0)
	if err1 != 0 && !(err1 == syscall.EPERM && len(p.groups) == 0) {
		return
	}
	stage = stageGID
	_, _, err1 = syscall.RawSyscall(unix.SYS_SETRESGID, p.gid, p.gid, p.gid)
	if err1 != 0 {
		return
	}
	stage = stageUID
	_, _, err1 = syscall.RawSyscall(unix.SYS_SETRESUID, p.uid, p.uid, p.uid)
	if err1 != 0 {
		return
	}
	if p.caps != nil {
		stage = stageCaps
		_, _, err1 = syscall.RawSyscall(unix.SYS_CAPSET, uintptr(unsafe.Pointer(p.capHdr)), uintptr(unsafe.Pointer(&p.caps[0])), 0)
		if err1 != 0 {
			return
		}
		stage = stageAmbient
		_, _, err1 = syscall.RawSyscall6(unix.SYS_PRCTL, unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0, 0)
		if err1 != 0 {
			return
		}
		for i = 0; i < len(p.ambient); i++ {
			_, _, err1 = syscall.RawSyscall6(unix.SYS_PRCTL, unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_RAISE, p.ambient[i], 0, 0, 0)
			if err1 != 0 {
				return
			}
		}
		_, _, err1 = syscall.RawSyscall6(unix.SYS_PRCTL, unix.PR_SET_KEEPCAPS, 0, 0, 0, 0, 0)
		if err1 != 0 {
			return
		}
	}
	if p.nnp {
		stage = stageNNP
		_, _, err1 = syscall.RawSyscall6(unix.SYS_PRCTL, unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0, 0)
		if err1 != 0 {
			return
		}
	}
	// With no_new_privs the filter needs no capability: last of all, so
	// that it judges nothing but the program.
	if p.prog != nil && p.seccompLate {
		if stage, err1 = p.loadSeccomp(); err1 != 0 || p.paused {
			return
		}
	}

exec:
	return stageExecve, 0
}

// becomeNSRoot makes a child that entered a new user namespace that
// namespace's root, before run: the same calls as run's, kept beside them
// so that one file makes every change of a container process's identity.
//
//go:nosplit
//go:norace
//go:nocheckptr
func becomeNSRoot() (err1 syscall.Errno) {
	_, _, err1 = syscall.RawSyscall(unix.SYS_SETRESGID, 0, 0, 0)
	if err1 != 0 {
		return
	}
	_, _, err1 = syscall.RawSyscall(unix.SYS_SETRESUID, 0, 0, 0)
	return
}

// loadSeccomp loads the filter for run, and pauses it if the filter made a
// notify listener.
//
//go:nosplit
//go:norace
//go:nocheckptr
func (p *procChild) loadSeccomp() (stage uint32, err1 syscall.Errno) {
	var r1 uintptr
	r1, _, err1 = syscall.RawSyscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, p.progFlags, uintptr(unsafe.Pointer(p.prog)))
	if err1 == 0 && p.progFlags&unix.SECCOMP_FILTER_FLAG_NEW_LISTENER != 0 {
		p.listener = int(r1)
		p.paused = true
	}
	return stageSeccomp, err1
}

// Steps is a Proc that a Go stage takes on itself, on its own thread,
// through the very steps a spawned child takes (run), with the same
// errors. Unlike a child, a stage can hand on a seccomp notify listener,
// and needs no trampoline: it runs from a read-only copy of the runtime.
type Steps struct {
	c    *procChild
	path string
}

// NewSteps prepares p for Run: everything run reads is made here.
func NewSteps(p *Proc) (*Steps, error) {
	c, err := newProcChild(p)
	if err != nil {
		return nil, err
	}
	return &Steps{c: c, path: p.Path}, nil
}

// Run takes the steps on the calling OS thread, which must be locked to the
// goroutine: credentials, capabilities, no_new_privs and the seccomp
// filter belong to the thread, and the thread that execs carries them into
// the program. Then it execs Path with argv and env (syscall.Exec, which
// lets Go's runtime stop its other threads and restore RLIMIT_NOFILE; see
// package rlimit). It returns a failed step as a *ChildError. A seccomp
// filter with a notify listener makes it return the listener with a nil
// error instead: the caller hands it on, closes it, and calls Run again,
// which goes on after the filter.
func (s *Steps) Run(argv, env []string) (listener int, err error) {
	stage, errno := s.c.run(-1)
	runtime.KeepAlive(s)
	if errno != 0 {
		return -1, &ChildError{Step: stageNames[stage], Err: errno}
	}
	if stage == stageSeccomp {
		return s.c.listener, nil
	}
	err = syscall.Exec(s.path, argv, env)
	if !errors.As(err, &errno) {
		return -1, fmt.Errorf("spawn: exec %s: %w", s.path, err)
	}
	return -1, &ChildError{Step: StepExecve, Err: errno}
}
