package libcontainerfd

import (
	"fmt"
	"strconv"

	"github.com/containerfd/containerfd/libcontainerfd/internal/rootfs"
	"github.com/containerfd/containerfd/libcontainerfd/internal/stage"

	"github.com/containerfd/containerfd/libcontainerfd/mounttree"
	"github.com/containerfd/containerfd/libcontainerfd/nsenter"
	"github.com/containerfd/containerfd/libcontainerfd/pathrs"
	"golang.org/x/sys/unix"
)

// openRoot opens init's root directory: the container's /.
func (c *Container) openRoot() (int, error) {
	if c.initPidfd < 0 {
		return -1, fmt.Errorf("container %s: %w", c.id, ErrNotRunning)
	}
	path := fmt.Sprintf("/proc/%d/root", c.st.Init.Pid)
	fd, err := unix.Open(path, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("container %s: open root: %w", c.id, err)
	}
	// The pid may have been reused between the check and the open.
	if !c.initAlive() {
		unix.Close(fd)
		return -1, fmt.Errorf("container %s: open root: %w", c.id, ErrNotRunning)
	}
	return fd, nil
}

// Socket makes a socket in the container's network namespace from outside,
// as container_socket did. The fd is O_CLOEXEC and belongs to the caller.
func (c *Container) Socket(domain, typ, proto int) (int, error) {
	if c.initPidfd < 0 {
		return -1, fmt.Errorf("container %s: socket: %w", c.id, ErrNotRunning)
	}
	fd := -1
	err := nsenter.Do([]nsenter.Namespace{{FD: c.initPidfd, Type: unix.CLONE_NEWNET}}, func() error {
		var err error
		fd, err = unix.Socket(domain, typ|unix.SOCK_CLOEXEC, proto)
		return err
	})
	if err != nil {
		return -1, fmt.Errorf("container %s: socket: %w", c.id, err)
	}
	return fd, nil
}

// OpenAt opens path resolved from the container's root, as a *at() call
// with the container's fd would: "..", absolute paths and symlinks cannot
// leave the root. The fd is O_CLOEXEC and belongs to the caller.
func (c *Container) OpenAt(path string, flags int, mode uint32) (int, error) {
	root, err := c.openRoot()
	if err != nil {
		return -1, err
	}
	defer unix.Close(root)
	fd, err := pathrs.OpenInRoot(root, path, flags, mode)
	if err != nil {
		return -1, fmt.Errorf("container %s: %w", c.id, err)
	}
	return fd, nil
}

// Mount builds m outside the running container and attaches it inside.
func (c *Container) Mount(m mounttree.Mount) error {
	root, err := c.openRoot()
	if err != nil {
		return err
	}
	defer unix.Close(root)
	ns, closeNS, err := c.nsFDs(c.st.Init.Pid)
	if err != nil {
		return err
	}
	defer closeNS()
	fd, err := mounttree.Open(m, ns)
	if err != nil {
		return fmt.Errorf("container %s: %w", c.id, err)
	}
	defer unix.Close(fd)
	err = nsenter.Do([]nsenter.Namespace{{FD: c.initPidfd, Type: unix.CLONE_NEWNS}}, func() error {
		return mounttree.Attach(root, m, fd)
	})
	if err != nil {
		return fmt.Errorf("container %s: %w", c.id, err)
	}
	return nil
}

// loopbackUp brings up lo in the container's new network namespace, from
// outside, as runc and crun do: 127.0.0.1 works in a container without a
// network of its own.
func (c *Container) loopbackUp() error {
	err := nsenter.Do([]nsenter.Namespace{{FD: c.initPidfd, Type: unix.CLONE_NEWNET}}, stage.LoopbackUp)
	if err != nil {
		return fmt.Errorf("container %s: %w", c.id, err)
	}
	return nil
}

// Unmount detaches the mount at target, resolved inside the running
// container's root (symlinks cannot lead out of it), from outside.
func (c *Container) Unmount(target string) error {
	root, err := c.openRoot()
	if err != nil {
		return err
	}
	defer unix.Close(root)
	// umount2 takes a path: the fd's magic link in our own /proc, reached
	// from a directory opened before we join the container's namespace
	// (where /proc is the container's, which does not show us).
	fdDir, err := unix.Open("/proc/self/fd", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("container %s: unmount %s: %w", c.id, target, err)
	}
	defer unix.Close(fdDir)
	err = nsenter.Do([]nsenter.Namespace{{FD: c.initPidfd, Type: unix.CLONE_NEWNS}}, func() error {
		fd, err := pathrs.OpenInRoot(root, target, unix.O_PATH|unix.O_NOFOLLOW, 0)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		if err := unix.Fchdir(fdDir); err != nil {
			return err
		}
		// The fd names the mount the path reached; unmount that one.
		return unix.Unmount(strconv.Itoa(fd), unix.MNT_DETACH)
	})
	if err != nil {
		return fmt.Errorf("container %s: unmount %s: %w", c.id, target, err)
	}
	return nil
}

// ProcessEnv is the environment a process started in the container with
// env as uid gets: each variable once, at its last value, and HOME from
// the container's /etc/passwd where env sets none (or an empty one), as
// runc gives it. For a program run beside the process, such as a
// startContainer hook, which runc runs with the process's environment.
func (c *Container) ProcessEnv(env []string, uid uint32) ([]string, error) {
	root, err := c.openRoot()
	if err != nil {
		return nil, err
	}
	defer unix.Close(root)
	return rootfs.WithHome(dedupEnv(env), root, uid), nil
}
