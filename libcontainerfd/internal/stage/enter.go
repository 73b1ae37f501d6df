package stage

import (
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"strconv"
	"strings"
	"unsafe"

	"github.com/containerfd/containerfd/libcontainerfd/internal/msg"
	"github.com/containerfd/containerfd/libcontainerfd/internal/spawn"
	"github.com/containerfd/containerfd/libcontainerfd/pathrs"
	"golang.org/x/sys/unix"
)

// runEnter runs a program in a container's namespaces on behalf of a
// caller that only has an exec.Cmd (OCI hooks): it joins them through a
// single-threaded child, as Exec does, and passes on the program's exit.
func runEnter() error {
	a := os.Args
	if len(a) < 8 {
		return errors.New("usage: containerfd-enter PID FLAGS host|container -|FILTERFD:FILTERFLAGS -|CWD PATH ARGV...")
	}
	pid, err1 := strconv.Atoi(a[1])
	flags, err2 := strconv.Atoi(a[2])
	if err := errors.Join(err1, err2); err != nil {
		return err
	}
	filter, err := readFilter(a[4])
	if err != nil {
		return err
	}
	cwd := a[5]
	a = append(a[:4:4], a[6:]...) // PATH ARGV... from a[4] on
	pidfd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return fmt.Errorf("pidfd_open %d: %w", pid, err)
	}
	// The program has init's root: the container's, or, before pivot_root
	// (a createContainer hook), the root of init's mount namespace, where
	// the host's files are, as a hook in runc's init sees them; and then
	// the rootfs as its working directory, as runc's init has it.
	var fd, root int
	cwdFD := -1
	if root, err = unix.Open(fmt.Sprintf("/proc/%d/root", pid), unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0); err != nil {
		return fmt.Errorf("open container root: %w", err)
	}
	if a[3] == msg.PathInContainer {
		if fd, err = pathrs.OpenInRoot(root, a[4], unix.O_PATH, 0); err != nil {
			return fmt.Errorf("%s in the container: %w", a[4], err)
		}
	} else {
		if fd, err = unix.Open(a[4], unix.O_PATH|unix.O_CLOEXEC, 0); err != nil {
			return fmt.Errorf("%s: %w", a[4], err)
		}
		if cwd != "-" {
			// Not there once init has pivoted: the program then
			// starts in the container's /.
			if cwdFD, err = pathrs.OpenInRoot(root, cwd, unix.O_PATH|unix.O_DIRECTORY, 0); err != nil {
				cwdFD = -1
			}
		}
	}
	// The pid named the container's init when fd and pidfd were opened.
	if err := unix.PidfdSendSignal(pidfd, 0, nil, 0); err != nil {
		return fmt.Errorf("container init %d: %w", pid, err)
	}
	attr := &spawn.Attr{
		ExecFD:       fd,
		ExecFDOpen:   isScript(fd),
		Argv:         a[5:],
		Env:          os.Environ(),
		Files:        []int{0, 1, 2},
		Join:         []spawn.Namespace{{FD: pidfd, Flags: flags}},
		RootFD:       root,
		UseRootFD:    true,
		CwdFD:        cwdFD,
		CgroupFD:     -1,
		RootInUserns: flags&unix.CLONE_NEWUSER != 0,
	}
	if filter != nil {
		// Execed by path in its root (runc's hooks are), through the
		// trampoline, with the container's filter loaded last.
		attr.Proc = &spawn.Proc{Path: a[4], Umask: 0o022, Cwd: "/", TTY: -1, CloseFrom: 3,
			Seccomp: filter.prog, SeccompFlags: filter.flags}
	}
	p, err := spawn.Start(attr)
	if err != nil {
		return fmt.Errorf("run %s in the container's namespaces: %w", a[4], err)
	}
	ws, _ := p.Wait()
	passOn(ws)
	return nil
}

// passOn ends the stage as the program ended: with its exit status, or
// killed by the same signal, so that the caller sees "signal: bad system
// call" for a hook its seccomp filter killed, as it would have had it run
// the hook itself. The signal's action is made the default first (Go
// handles most signals), and a core dump is not left behind.
func passOn(ws unix.WaitStatus) {
	if ws.Signaled() {
		runtime.LockOSThread()
		sig := ws.Signal()
		unix.Setrlimit(unix.RLIMIT_CORE, &unix.Rlimit{})
		var dfl [4]uint64 // the kernel's struct sigaction, zero: SIG_DFL
		unix.RawSyscall6(unix.SYS_RT_SIGACTION, uintptr(sig), uintptr(unsafe.Pointer(&dfl)), 0, 8, 0, 0)
		var set unix.Sigset_t
		set.Val[(sig-1)/64] |= 1 << ((sig - 1) % 64)
		unix.RawSyscall6(unix.SYS_RT_SIGPROCMASK, unix.SIG_UNBLOCK, uintptr(unsafe.Pointer(&set)), 0, 8, 0, 0)
		unix.Tgkill(unix.Getpid(), unix.Gettid(), sig)
	}
	os.Exit(spawn.ExitCode(ws))
}

// isScript reports whether the program open (O_PATH) as fd may be a script,
// whose interpreter the kernel hands /dev/fd/N: the fd must then stay open
// across the exec. A program that is not is run without it, as runc runs a
// hook by path: it gets stdio alone.
func isScript(fd int) bool {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFREG {
		return true // not for us to read (a FIFO would not answer); exec says
	}
	f, err := unix.Open(fmt.Sprintf("/proc/self/fd/%d", fd), unix.O_RDONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return true
	}
	defer unix.Close(f)
	var b [2]byte
	n, err := unix.Pread(f, b[:], 0)
	return err != nil || n < 2 || string(b[:]) == "#!"
}

type enterFilter struct {
	prog  []unix.SockFilter
	flags uint
}

// readFilter reads "FD:FLAGS", a seccomp program in the file open as FD
// (Container.EnterFiltered's), or "-" for none.
func readFilter(arg string) (*enterFilter, error) {
	if arg == "-" {
		return nil, nil
	}
	fdText, flagsText, _ := strings.Cut(arg, ":")
	fd, err1 := strconv.Atoi(fdText)
	flags, err2 := strconv.ParseUint(flagsText, 10, 32)
	if err := errors.Join(err1, err2); err != nil {
		return nil, fmt.Errorf("seccomp filter %q: %w", arg, err)
	}
	f := os.NewFile(uintptr(fd), "seccomp filter")
	defer f.Close()
	b, err := io.ReadAll(f)
	size := int(unsafe.Sizeof(unix.SockFilter{}))
	if err != nil || len(b) == 0 || len(b)%size != 0 {
		return nil, fmt.Errorf("seccomp filter: %d bytes, %v", len(b), err)
	}
	prog := make([]unix.SockFilter, len(b)/size)
	copy(unsafe.Slice((*byte)(unsafe.Pointer(&prog[0])), len(b)), b)
	return &enterFilter{prog: prog, flags: uint(flags)}, nil
}
