package spawn

import (
	"syscall"
	"unsafe"
	_ "unsafe" // go:linkname

	"golang.org/x/sys/unix"
)

// The runtime's fork hooks, as syscall.forkExec uses them: block signals and
// stop stack growth around the fork, and reset signal handling in the child.

//go:linkname runtimeBeforeFork syscall.runtime_BeforeFork
func runtimeBeforeFork()

//go:linkname runtimeAfterFork syscall.runtime_AfterFork
func runtimeAfterFork()

//go:linkname runtimeAfterForkInChild syscall.runtime_AfterForkInChild
func runtimeAfterForkInChild()

// atFDCWD is AT_FDCWD (-100) as a system call argument.
const atFDCWD = ^uintptr(99)

// forkExec clones the calling thread. In the parent it returns the child's
// pid. The child runs only raw system calls on memory prepared before the
// fork, and never returns: it execs or exits.
//
//go:noinline
//go:norace
//go:nocheckptr
func forkExec(args *cloneArgs, c *child) (pid uintptr, errno syscall.Errno) {
	var (
		r1    uintptr
		err1  syscall.Errno
		stage uint32
		i     int
		n     uint
		fd    int
		b     [8]byte
	)
	runtimeBeforeFork()
	r1, _, err1 = syscall.RawSyscall6(unix.SYS_CLONE3, uintptr(unsafe.Pointer(args)), unsafe.Sizeof(*args), 0, 0, 0, 0)
	if err1 != 0 || r1 != 0 {
		runtimeAfterFork()
		return r1, err1
	}

	// In the child.
	runtimeAfterForkInChild()

	stage = stageCgroup
	for i = 0; i < len(c.tasks); i++ {
		_, _, err1 = syscall.RawSyscall(unix.SYS_WRITE, uintptr(c.tasks[i]), uintptr(unsafe.Pointer(c.zero)), 1)
		if err1 != 0 {
			goto fail
		}
	}

	if c.syncR >= 0 {
		stage = stageSync
		r1, _, err1 = syscall.RawSyscall(unix.SYS_READ, uintptr(c.syncR), uintptr(unsafe.Pointer(&b[0])), 1)
		if err1 != 0 {
			goto fail
		}
		if r1 != 1 {
			err1 = syscall.EPIPE
			goto fail
		}
	}

	// A copy of the runtime stays visible in the container's pid namespace
	// until it execs (the gated init, for all of create to start): no one
	// there may open its /proc/<pid>/exe, the runtime's binary
	// (CVE-2019-5736), or its memory. The exec makes the program dumpable.
	if c.proc != nil {
		syscall.RawSyscall6(unix.SYS_PRCTL, unix.PR_SET_DUMPABLE, 0, 0, 0, 0, 0)
	}

	// As runc (and nsenter(1)) join them: every namespace but the user
	// namespace first, while we may (one not owned by that user namespace
	// could not be joined from inside it), then the user namespace, then
	// those that failed (an unprivileged caller gets the right only
	// there).
	stage = stageSetns
	for i = 0; i < len(c.join); i++ {
		if c.join[i].Flags&unix.CLONE_NEWUSER == 0 {
			_, _, err1 = syscall.RawSyscall(unix.SYS_SETNS, uintptr(c.join[i].FD), uintptr(c.join[i].Flags), 0)
			c.joined[i] = err1 == 0
		}
	}
	for i = 0; i < len(c.join); i++ {
		if c.join[i].Flags&unix.CLONE_NEWUSER != 0 {
			_, _, err1 = syscall.RawSyscall(unix.SYS_SETNS, uintptr(c.join[i].FD), uintptr(c.join[i].Flags), 0)
			if err1 != 0 {
				goto fail
			}
		}
	}
	for i = 0; i < len(c.join); i++ {
		if c.join[i].Flags&unix.CLONE_NEWUSER == 0 && !c.joined[i] {
			_, _, err1 = syscall.RawSyscall(unix.SYS_SETNS, uintptr(c.join[i].FD), uintptr(c.join[i].Flags), 0)
			if err1 != 0 {
				goto fail
			}
		}
	}

	if c.unshare != 0 {
		stage = stageUnshare
		_, _, err1 = syscall.RawSyscall(unix.SYS_UNSHARE, uintptr(c.unshare), 0, 0)
		if err1 != 0 {
			goto fail
		}
	}
	if c.offsetsPath != nil {
		stage = stageOffsets
		r1, _, err1 = syscall.RawSyscall6(unix.SYS_OPENAT, atFDCWD, uintptr(unsafe.Pointer(c.offsetsPath)),
			unix.O_WRONLY|unix.O_CLOEXEC, 0, 0, 0)
		if err1 != 0 {
			goto fail
		}
		fd = int(r1)
		_, _, err1 = syscall.RawSyscall(unix.SYS_WRITE, uintptr(fd), uintptr(unsafe.Pointer(&c.offsets[0])), uintptr(len(c.offsets)))
		syscall.RawSyscall(unix.SYS_CLOSE, uintptr(fd), 0, 0)
		if err1 != 0 {
			goto fail
		}
	}
	// Root of the user namespace only now: the time namespace's
	// offsets file, as the runtime's (a non-dumpable process's /proc
	// files are the host's root's), is not writable by its root.
	if c.setRoot {
		stage = stageSetid
		if err1 = becomeNSRoot(); err1 != 0 {
			goto fail
		}
	}

	if c.rootFD >= 0 {
		stage = stageRoot
		_, _, err1 = syscall.RawSyscall(unix.SYS_FCHDIR, uintptr(c.rootFD), 0, 0)
		if err1 != 0 {
			goto fail
		}
		_, _, err1 = syscall.RawSyscall(unix.SYS_CHROOT, uintptr(unsafe.Pointer(c.dot)), 0, 0)
		if err1 != 0 {
			goto fail
		}
		if c.cwdFD >= 0 {
			_, _, err1 = syscall.RawSyscall(unix.SYS_FCHDIR, uintptr(c.cwdFD), 0, 0)
			if err1 != 0 {
				goto fail
			}
		}
	}
	if c.clone2 != nil {
		stage = stageFork
		r1, _, err1 = syscall.RawSyscall6(unix.SYS_CLONE3, uintptr(unsafe.Pointer(c.clone2)), unsafe.Sizeof(*c.clone2), 0, 0, 0, 0)
		if err1 != 0 {
			goto fail
		}
		if r1 != 0 {
			stage = stagePid
			err1 = syscall.Errno(r1)
			*(*uint32)(unsafe.Pointer(&b[0])) = stage
			*(*uint32)(unsafe.Pointer(&b[4])) = uint32(err1)
			syscall.RawSyscall(unix.SYS_WRITE, uintptr(c.errW), uintptr(unsafe.Pointer(&b[0])), 8)
			for {
				syscall.RawSyscall(unix.SYS_EXIT_GROUP, 0, 0, 0)
			}
		}
	}

	// Move fds that the next pass would overwrite out of the way, then
	// put each in its place.
	stage = stageFiles
	for i = 0; i < len(c.files); i++ {
		if c.files[i] >= 0 && c.files[i] < i {
			_, _, err1 = syscall.RawSyscall(unix.SYS_DUP3, uintptr(c.files[i]), uintptr(c.nextFD), unix.O_CLOEXEC)
			if err1 != 0 {
				goto fail
			}
			c.files[i] = c.nextFD
			c.nextFD++
		}
	}
	for i = 0; i < len(c.files); i++ {
		fd = c.files[i]
		if fd == -1 {
			syscall.RawSyscall(unix.SYS_CLOSE, uintptr(i), 0, 0)
			continue
		}
		if fd == i {
			_, _, err1 = syscall.RawSyscall(unix.SYS_FCNTL, uintptr(fd), unix.F_SETFD, 0)
		} else {
			_, _, err1 = syscall.RawSyscall(unix.SYS_DUP3, uintptr(fd), uintptr(i), 0)
		}
		if err1 != 0 {
			goto fail
		}
	}

	if c.proc != nil {
		goto proc
	}
	stage = stageExec
	if c.keepFD {
		syscall.RawSyscall(unix.SYS_FCNTL, uintptr(c.execFD), unix.F_SETFD, 0)
	}
	_, _, err1 = syscall.RawSyscall6(unix.SYS_EXECVEAT, uintptr(c.execFD), uintptr(unsafe.Pointer(c.path)),
		uintptr(unsafe.Pointer(c.argv)), uintptr(unsafe.Pointer(c.envv)), unix.AT_EMPTY_PATH, 0)

	goto fail

proc:
	if c.gate != nil {
		for i = 0; i < len(c.gate.closeRanges); i++ {
			syscall.RawSyscall(unix.SYS_CLOSE_RANGE, c.gate.closeRanges[i][0], c.gate.closeRanges[i][1], 0)
		}
		if c.gate.comm != nil {
			syscall.RawSyscall6(unix.SYS_PRCTL, unix.PR_SET_NAME, uintptr(unsafe.Pointer(c.gate.comm)), 0, 0, 0, 0)
		}
		if c.gate.mountType != nil {
			stage = stageMount
			r1, _, err1 = syscall.RawSyscall(unix.SYS_FSOPEN, uintptr(unsafe.Pointer(c.gate.mountType)), unix.FSOPEN_CLOEXEC, 0)
			if err1 != 0 {
				goto fail
			}
			fd = int(r1)
			for i = 0; i < len(c.gate.config); i++ {
				_, _, err1 = syscall.RawSyscall6(unix.SYS_FSCONFIG, uintptr(fd), c.gate.config[i].cmd,
					uintptr(unsafe.Pointer(c.gate.config[i].key)), uintptr(unsafe.Pointer(c.gate.config[i].value)), 0, 0)
				if err1 != 0 {
					goto fail
				}
			}
			_, _, err1 = syscall.RawSyscall6(unix.SYS_FSCONFIG, uintptr(fd), unix.FSCONFIG_CMD_CREATE, 0, 0, 0, 0)
			if err1 != 0 {
				goto fail
			}
			r1, _, err1 = syscall.RawSyscall(unix.SYS_FSMOUNT, uintptr(fd), unix.FSMOUNT_CLOEXEC, c.gate.attr)
			if err1 != 0 {
				goto fail
			}
			syscall.RawSyscall(unix.SYS_CLOSE, uintptr(fd), 0, 0)
			fd = int(r1)
			*(*int32)(unsafe.Pointer(&c.gate.sendControl[c.gate.fdOff])) = int32(fd)
			stage = stageMountSend
			_, _, err1 = syscall.RawSyscall(unix.SYS_SENDMSG, uintptr(c.gate.sock), uintptr(unsafe.Pointer(&c.gate.sendMsg)), 0)
			if err1 != 0 {
				goto fail
			}
			syscall.RawSyscall(unix.SYS_CLOSE, uintptr(fd), 0, 0)
		}
		// Tell Start the gate is reached; from here on nobody reads errW.
		*(*uint32)(unsafe.Pointer(&b[0])) = stageGate
		*(*uint32)(unsafe.Pointer(&b[4])) = 0
		syscall.RawSyscall(unix.SYS_WRITE, uintptr(c.errW), uintptr(unsafe.Pointer(&b[0])), 8)
		syscall.RawSyscall(unix.SYS_CLOSE, uintptr(c.errW), 0, 0)
		c.errW = -1

		// See gateSignals. Blocked, they wait in the signalfd from here
		// until the accept below, which waits for whichever comes first.
		stage = stageGateSignals
		syscall.RawSyscall6(unix.SYS_RT_SIGPROCMASK, unix.SIG_BLOCK, uintptr(unsafe.Pointer(&c.gate.sigs)), uintptr(unsafe.Pointer(&c.gate.oldMask)), sigsetSize, 0, 0)
		r1, _, err1 = syscall.RawSyscall6(unix.SYS_SIGNALFD4, ^uintptr(0), uintptr(unsafe.Pointer(&c.gate.sigs)), sigsetSize, unix.SFD_CLOEXEC, 0, 0)
		if err1 != 0 {
			goto fail
		}
		c.gate.poll[1].Fd = int32(r1)

		stage = stageGateWait
		r1, _, err1 = syscall.RawSyscall(unix.SYS_RECVMSG, uintptr(c.gate.sock), uintptr(unsafe.Pointer(&c.gate.msg)), unix.MSG_CMSG_CLOEXEC)
		if err1 != 0 {
			goto fail
		}
		if r1 == 0 {
			for {
				syscall.RawSyscall(unix.SYS_EXIT_GROUP, 127, 0, 0)
			}
		}
		c.gate.path[r1] = 0 // the trampoline's argv[1]
		for i = 0; i < int(r1); i++ {
			if c.gate.path[i] == 0 {
				*c.gate.envSlot = uintptr(unsafe.Pointer(&c.gate.path[i+1]))
				break
			}
		}
		if c.gate.msg.Controllen >= c.gate.ttyLen {
			// Out of the process's files' range, as low as may be: the
			// runtime may have set a low RLIMIT_NOFILE by now.
			fd = int(*(*int32)(unsafe.Pointer(&c.gate.control[c.gate.fdOff])))
			r1, _, err1 = syscall.RawSyscall(unix.SYS_FCNTL, uintptr(fd), unix.F_DUPFD_CLOEXEC, uintptr(len(c.files)))
			syscall.RawSyscall(unix.SYS_CLOSE, uintptr(fd), 0, 0)
			if err1 != 0 {
				goto fail
			}
			c.proc.tty = int(r1)
			// While it waits for start, the pty is its stdio already,
			// as runc's init: nothing of the host's on 0-2.
			for i = 0; i < 3; i++ {
				_, _, err1 = syscall.RawSyscall(unix.SYS_DUP3, r1, uintptr(i), 0)
				if err1 != 0 {
					goto fail
				}
			}
		}
		syscall.RawSyscall(unix.SYS_CLOSE, uintptr(c.gate.sock), 0, 0)

		stage = stageGateAccept
		for {
			c.gate.poll[0].Revents, c.gate.poll[1].Revents = 0, 0
			_, _, err1 = syscall.RawSyscall6(unix.SYS_PPOLL, uintptr(unsafe.Pointer(&c.gate.poll[0])), 2, 0, 0, 0, 0)
			if err1 == syscall.EINTR {
				continue
			}
			if err1 != 0 {
				goto fail
			}
			if c.gate.poll[1].Revents != 0 {
				for {
					syscall.RawSyscall(unix.SYS_EXIT_GROUP, gateSignalExit, 0, 0)
				}
			}
			if c.gate.poll[0].Revents != 0 {
				break
			}
		}
		r1, _, err1 = syscall.RawSyscall6(unix.SYS_ACCEPT4, uintptr(c.gate.listener), 0, 0, unix.SOCK_CLOEXEC, 0, 0)
		if err1 != 0 {
			goto fail
		}
		syscall.RawSyscall(unix.SYS_CLOSE, uintptr(c.gate.poll[1].Fd), 0, 0)
		syscall.RawSyscall6(unix.SYS_RT_SIGPROCMASK, unix.SIG_SETMASK, uintptr(unsafe.Pointer(&c.gate.oldMask)), 0, sigsetSize, 0, 0)
		syscall.RawSyscall(unix.SYS_CLOSE, uintptr(c.gate.listener), 0, 0)
		c.errW = int(r1) // failures from here on go to whoever started us
		stage = stageGateOrder
		r1, _, err1 = syscall.RawSyscall(unix.SYS_READ, uintptr(c.errW), uintptr(unsafe.Pointer(&c.gate.orderBuf[0])), uintptr(len(c.gate.orderBuf)))
		if err1 != 0 {
			goto fail
		}
		if int(r1) != len(c.gate.order) {
			err1 = syscall.EPROTO
			goto fail
		}
		for i = 0; i < len(c.gate.order); i++ {
			if c.gate.orderBuf[i] != c.gate.order[i] {
				err1 = syscall.EPROTO
				goto fail
			}
		}
	}

	// The steps of Proc, in its order (see there), up to the exec. The
	// report fd stays open across the trampoline's exec: it reports a
	// failed execve of the program there, and closes it on success.
	stage, err1 = c.proc.run(c.errW)
	if err1 != 0 {
		goto fail
	}
	if stage != stageExecve {
		err1 = syscall.EINVAL // paused for a listener, which Start refuses
		goto fail
	}
	// The trampoline's argv[0]: the report fd in decimal.
	i = len(c.proc.fdArg) - 1
	c.proc.fdArg[i] = 0
	for n = uint(c.errW); ; n /= 10 {
		i--
		c.proc.fdArg[i] = byte('0' + n%10)
		if n < 10 {
			break
		}
	}
	c.proc.targv[0] = uintptr(unsafe.Pointer(&c.proc.fdArg[i]))
	stage = stageTrampoline
	_, _, err1 = syscall.RawSyscall6(unix.SYS_EXECVEAT, uintptr(c.proc.tramp), uintptr(unsafe.Pointer(c.path)),
		uintptr(unsafe.Pointer(&c.proc.targv[0])), uintptr(unsafe.Pointer(c.envv)), unix.AT_EMPTY_PATH, 0)

fail:
	*(*uint32)(unsafe.Pointer(&b[0])) = stage
	*(*uint32)(unsafe.Pointer(&b[4])) = uint32(err1)
	syscall.RawSyscall(unix.SYS_WRITE, uintptr(c.errW), uintptr(unsafe.Pointer(&b[0])), 8)
	for {
		syscall.RawSyscall(unix.SYS_EXIT_GROUP, 127, 0, 0)
	}
}
