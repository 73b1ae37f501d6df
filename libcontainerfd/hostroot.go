package libcontainerfd

import (
	"errors"
	"fmt"

	"github.com/containerfd/containerfd/libcontainerfd/internal/rootfs"
	"github.com/containerfd/containerfd/libcontainerfd/nsenter"
	"golang.org/x/sys/unix"
)

// A container without a mount namespace of its own shares the runtime's,
// as runc runs it: its tree is built on the rootfs there (rootfs.SetupAt),
// where everyone in that namespace sees it, and init chroots into it. runc
// leaves the mounts behind; we record the tree's mount and detach it when
// the container is destroyed.

// hostRoot is such a tree in the state: where it was attached and the id
// of its mount, so that what destroy detaches is ours and nothing that
// replaced it.
type hostRoot struct {
	Path    string `json:"path"`
	MountID uint64 `json:"mountId"`
}

// setupHostRoot builds p's tree, from f, on the rootfs in the runtime's
// mount namespace, which init shares, records it and runs BeforePivot with
// it built (init's chroot is the step pivot_root would be). It returns the
// tree's root for init to chroot into; on error the tree is detached.
func (c *Container) setupHostRoot(pid int, p *rootfs.Plan, f *rootfs.FDs) (root int, err error) {
	err = nsenter.Do(nil, func() error {
		// The executor sets the umask: not the rest of the runtime's.
		if err := unix.Unshare(unix.CLONE_FS); err != nil {
			return fmt.Errorf("unshare filesystem info: %w", err)
		}
		root, err = rootfs.SetupAt(p, f, c.cfg.Rootfs)
		return err
	})
	if err != nil {
		return -1, fmt.Errorf("container %s: %w", c.id, err)
	}
	defer func() {
		if err != nil {
			c.st.HostRoot = nil
			rootfs.Detach(root)
			unix.Close(root)
		}
	}()
	id, err := mountID(root)
	if err != nil {
		return -1, fmt.Errorf("container %s: root: %w", c.id, err)
	}
	c.st.HostRoot = &hostRoot{Path: c.cfg.Rootfs, MountID: id}
	if err := c.Save(); err != nil {
		return -1, err
	}
	if c.cfg.BeforePivot != nil {
		if err := c.cfg.BeforePivot(pid); err != nil {
			return -1, err
		}
	}
	return root, nil
}

// detach unmounts the tree if it is still the mount on its path.
func (h *hostRoot) detach() error {
	fd, err := unix.Open(h.Path, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if errors.Is(err, unix.ENOENT) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("detach the root on %s: %w", h.Path, err)
	}
	defer unix.Close(fd)
	if id, err := mountID(fd); err != nil || id != h.MountID {
		return err // gone, or someone else's now
	}
	return rootfs.Detach(fd)
}

// mountID is the id of the mount fd is on: the unique one where the kernel
// has it (6.8), else the one that may be reused.
func mountID(fd int) (uint64, error) {
	var stx unix.Statx_t
	if err := unix.Statx(fd, "", unix.AT_EMPTY_PATH, unix.STATX_MNT_ID_UNIQUE, &stx); err != nil {
		return 0, fmt.Errorf("statx: %w", err)
	}
	if stx.Mask&(unix.STATX_MNT_ID_UNIQUE|unix.STATX_MNT_ID) == 0 {
		return 0, errors.New("statx: no mount id")
	}
	return stx.Mnt_id, nil
}
