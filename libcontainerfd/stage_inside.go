package libcontainerfd

import (
	"errors"
	"fmt"
	"strings"

	"github.com/containerfd/containerfd/libcontainerfd/internal/procfs"
	"github.com/containerfd/containerfd/libcontainerfd/mounttree"
	"golang.org/x/sys/unix"
)

// setupInside does, in init, what a rootless runtime cannot do from
// outside (rootless.go): bring lo up and write the sysctls, in the
// container's namespaces, which init is in.
func setupInside(cfg *initConfig) error {
	if cfg.LoopbackUp {
		if err := loopbackUpHere(); err != nil {
			return err
		}
	}
	for key, val := range cfg.Sysctl {
		// /proc/sys shows the namespaces of the process that opens it.
		path := "/proc/sys/" + strings.ReplaceAll(key, ".", "/")
		if err := procfs.WriteFile(path, []byte(val)); err != nil {
			return fmt.Errorf("sysctl %s=%s: %w", key, val, err)
		}
	}
	return nil
}

// loopbackUpHere brings up lo in the calling thread's network namespace.
func loopbackUpHere() error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("lo: %w", err)
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return err
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return fmt.Errorf("lo: %w", err)
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	if err := unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr); err != nil {
		return fmt.Errorf("bring lo up: %w", err)
	}
	return nil
}

// openInside opens, in init, the mounts a privileged runtime would have
// sent, in the order setupRoot takes them: the root, each mount, a
// /dev/null per masked path. It runs before anything is attached, while
// host paths still resolve as they do for the caller: init is root only in
// the container's user namespace, so a bind reaches what the caller could
// reach, no more.
func openInside(cfg *initConfig) (fds []int, err error) {
	defer func() {
		if err != nil {
			for _, fd := range fds {
				unix.Close(fd)
			}
			fds = nil
		}
	}()
	own := mounttree.OwnNamespaces()
	devices := map[string]bool{}
	for _, d := range cfg.Devices {
		devices[d.Path] = true
	}
	fd, err := mounttree.Open(cfg.RootMount, own)
	if err != nil {
		return nil, fmt.Errorf("root %s: %w", cfg.RootMount.Source, err)
	}
	fds = append(fds, fd)
	for _, m := range cfg.Mounts {
		fd, err := mounttree.Open(m, own)
		if err != nil && m.Type == "sysfs" && errors.Is(err, unix.EPERM) {
			// sysfs needs a network namespace of the container's own;
			// without one it is the host's, bound read-only (as runc's
			// spec --rootless writes it).
			b := mounttree.Mount{Type: "bind", Source: "/sys", Target: m.Target, Recursive: true,
				Attr: m.Attr | unix.MOUNT_ATTR_RDONLY | unix.MOUNT_ATTR_NOSUID | unix.MOUNT_ATTR_NODEV | unix.MOUNT_ATTR_NOEXEC}
			fd, err = mounttree.Open(b, own)
		}
		if err != nil && m.Type == "bind" && devices[m.Target] {
			return nil, fmt.Errorf("device %s: mknod needs CAP_MKNOD in the initial user namespace, so the host's node is bound instead, and that failed: %w", m.Target, err)
		}
		if err != nil {
			return nil, rootlessMountError(m, err)
		}
		fds = append(fds, fd)
	}
	for range cfg.MaskedPaths {
		fd, err := devNull()
		if err != nil {
			return nil, fmt.Errorf("mask paths: %w", err)
		}
		fds = append(fds, fd)
	}
	return fds, nil
}

// rootlessMountError says why a mount is refused to a rootless container
// where the kernel's EPERM would not.
func rootlessMountError(m mounttree.Mount, err error) error {
	if !errors.Is(err, unix.EPERM) {
		return err
	}
	switch m.Type {
	case "proc":
		return fmt.Errorf("%w (rootless: proc needs a pid namespace of the container's own, linux.namespaces: pid)", err)
	case "mqueue":
		return fmt.Errorf("%w (rootless: mqueue needs an ipc namespace of the container's own, linux.namespaces: ipc)", err)
	case "bind":
		return err
	}
	return fmt.Errorf("%w (rootless: a %s file system can only be mounted by a user namespace the kernel lets mount it, and only for namespaces it owns)", err, m.Type)
}
