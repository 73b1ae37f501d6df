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

	stage = stageSetns
	for i = 0; i < len(c.join); i++ {
		_, _, err1 = syscall.RawSyscall(unix.SYS_SETNS, uintptr(c.join[i].FD), uintptr(c.join[i].Flags), 0)
		if err1 != 0 {
			goto fail
		}
	}

	if c.setRoot {
		stage = stageSetid
		_, _, err1 = syscall.RawSyscall(unix.SYS_SETRESGID, 0, 0, 0)
		if err1 != 0 {
			goto fail
		}
		_, _, err1 = syscall.RawSyscall(unix.SYS_SETRESUID, 0, 0, 0)
		if err1 != 0 {
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

	stage = stageExec
	if c.keepFD {
		syscall.RawSyscall(unix.SYS_FCNTL, uintptr(c.execFD), unix.F_SETFD, 0)
	}
	_, _, err1 = syscall.RawSyscall6(unix.SYS_EXECVEAT, uintptr(c.execFD), uintptr(unsafe.Pointer(c.path)),
		uintptr(unsafe.Pointer(c.argv)), uintptr(unsafe.Pointer(c.envv)), unix.AT_EMPTY_PATH, 0)

fail:
	*(*uint32)(unsafe.Pointer(&b[0])) = stage
	*(*uint32)(unsafe.Pointer(&b[4])) = uint32(err1)
	syscall.RawSyscall(unix.SYS_WRITE, uintptr(c.errW), uintptr(unsafe.Pointer(&b[0])), 8)
	for {
		syscall.RawSyscall(unix.SYS_EXIT_GROUP, 127, 0, 0)
	}
}
