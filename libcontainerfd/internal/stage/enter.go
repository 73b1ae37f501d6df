package stage

import (
	"errors"
	"fmt"
	"os"
	"strconv"

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
	if len(a) < 6 {
		return errors.New("usage: containerfd-enter PID FLAGS host|container PATH ARGV...")
	}
	pid, err1 := strconv.Atoi(a[1])
	flags, err2 := strconv.Atoi(a[2])
	if err := errors.Join(err1, err2); err != nil {
		return err
	}
	pidfd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return fmt.Errorf("pidfd_open %d: %w", pid, err)
	}
	// The program sees the root its path resolves in: the container's, or
	// ours (as a hook in runc's container namespace sees the host's files).
	var fd, root int
	if a[3] == msg.PathInContainer {
		if root, err = unix.Open(fmt.Sprintf("/proc/%d/root", pid), unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0); err != nil {
			return fmt.Errorf("open container root: %w", err)
		}
		if fd, err = pathrs.OpenInRoot(root, a[4], unix.O_PATH, 0); err != nil {
			return fmt.Errorf("%s in the container: %w", a[4], err)
		}
	} else {
		if root, err = unix.Open("/", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0); err != nil {
			return fmt.Errorf("open root: %w", err)
		}
		if fd, err = unix.Open(a[4], unix.O_PATH|unix.O_CLOEXEC, 0); err != nil {
			return fmt.Errorf("%s: %w", a[4], err)
		}
	}
	// The pid named the container's init when fd and pidfd were opened.
	if err := unix.PidfdSendSignal(pidfd, 0, nil, 0); err != nil {
		return fmt.Errorf("container init %d: %w", pid, err)
	}
	p, err := spawn.Start(&spawn.Attr{
		ExecFD:       fd,
		ExecFDOpen:   isScript(fd),
		Argv:         a[5:],
		Env:          os.Environ(),
		Files:        []int{0, 1, 2},
		Join:         []spawn.Namespace{{FD: pidfd, Flags: flags}},
		RootFD:       root,
		UseRootFD:    true,
		CgroupFD:     -1,
		RootInUserns: flags&unix.CLONE_NEWUSER != 0,
	})
	if err != nil {
		return fmt.Errorf("run %s in the container's namespaces: %w", a[4], err)
	}
	ws, _ := p.Wait()
	os.Exit(spawn.ExitCode(ws))
	return nil
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
