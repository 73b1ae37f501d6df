package rootfs

import (
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/containerfd/containerfd/internal/mountinfo"
	"github.com/containerfd/containerfd/libcontainerfd/internal/fscopy"
	"github.com/containerfd/containerfd/libcontainerfd/mounttree"
	"github.com/containerfd/containerfd/libcontainerfd/pathrs"
	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// MountConsole binds the pty peer, by fd, onto /dev/console. Whatever the
// image left at /dev/console that is not a plain file (a symlink to a
// procfs file, say: the CVE-2025-52565 setup) is replaced by one, so the
// bind cannot land anywhere else.
func MountConsole(peer int) error {
	root, err := unix.Open("/", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open root: %w", err)
	}
	defer unix.Close(root)
	if err := consoleMountpoint(root); err != nil {
		return err
	}
	m := mounttree.Mount{Type: "bind", Source: "pty", Target: "/dev/console"}
	fd, err := mounttree.OpenBindFD(peer, m)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	return mounttree.Attach(root, m, fd)
}

// consoleMountpoint makes /dev/console in root a plain file, if it is not
// one already, replacing what else is there.
func consoleMountpoint(root int) error {
	dev, err := pathrs.MkdirAllInRoot(root, "/dev", 0o755)
	if err != nil {
		return fmt.Errorf("/dev/console: %w", err)
	}
	defer unix.Close(dev)
	var st unix.Stat_t
	err = unix.Fstatat(dev, "console", &st, unix.AT_SYMLINK_NOFOLLOW)
	switch {
	case err == nil && st.Mode&unix.S_IFMT == unix.S_IFREG:
		return nil
	case err == nil:
		if err := unix.Unlinkat(dev, "console", 0); err != nil {
			return fmt.Errorf("/dev/console: remove what the image put there: %w", err)
		}
	}
	f, err := unix.Openat(dev, "console", unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_WRONLY|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return fmt.Errorf("/dev/console: %w", err)
	}
	unix.Close(f)
	return nil
}

// Setup attaches p's trees, f, to the caller's root and pivots into it;
// what f does not hold (-1) it opens itself first. beforePivot, if set,
// runs with every mount attached, right before. It takes f's fds.
func Setup(p *Plan, f *FDs, beforePivot func() error) error {
	// Nothing done in this mount namespace may reach the host's.
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("make / private: %w", err)
	}
	if err := prepare(p, f); err != nil {
		return err
	}
	root, onSlash, err := attachRoot(p, take(&f.Root))
	if err != nil {
		return err
	}
	defer unix.Close(root)
	if err := unix.Fchdir(root); err != nil {
		return fmt.Errorf("enter root: %w", err)
	}
	if err := build(p, f, root); err != nil {
		return err
	}
	if beforePivot != nil {
		if err := beforePivot(); err != nil {
			return err
		}
	}
	if p.NoPivot {
		if err := hideProcSys(root); err != nil {
			return err
		}
		// On / (as runc moves it there): a chroot below the namespace's
		// root would be one the kernel refuses a user namespace to.
		if !onSlash {
			if err := unix.MoveMount(root, "", unix.AT_FDCWD, "/", unix.MOVE_MOUNT_F_EMPTY_PATH); err != nil {
				return fmt.Errorf("move root onto /: %w", err)
			}
		}
		if err := unix.Fchdir(root); err != nil {
			return fmt.Errorf("enter root: %w", err)
		}
		if err := unix.Chroot("."); err != nil {
			return fmt.Errorf("chroot into root: %w", err)
		}
	} else {
		if err := unix.PivotRoot(".", "."); err != nil {
			return fmt.Errorf("pivot_root: %w", err)
		}
		if err := unix.Unmount(".", unix.MNT_DETACH); err != nil {
			return fmt.Errorf("detach old root: %w", err)
		}
	}
	// rootfsPropagation goes on once the root is the root, as runc applies
	// it: pivot_root refuses a shared new root (EINVAL), which rshared (a
	// Kubernetes Bidirectional volume) would make it before.
	if err := applyPropagation(p, root); err != nil {
		return err
	}
	if err := unix.Chdir("/"); err != nil {
		return fmt.Errorf("chdir /: %w", err)
	}
	return nil
}

// attachRoot attaches the tree, p's root, in the caller's mount namespace
// and returns its root: on the rootfs's own path where the root is a bind
// of a directory here, as runc mounts it there (createRuntime hooks that
// enter the namespace, such as GPU hooks, bind files into the rootfs by its
// host path), else (a tmpfs root) stacked on /.
func attachRoot(p *Plan, tree int) (root int, onSlash bool, err error) {
	if p.Root.Type == "bind" && filepath.IsAbs(p.Root.Source) {
		at, err := unix.Open(p.Root.Source, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err == nil {
			err = unix.MoveMount(tree, "", at, "", unix.MOVE_MOUNT_F_EMPTY_PATH|unix.MOVE_MOUNT_T_EMPTY_PATH)
			unix.Close(at)
			if err != nil {
				unix.Close(tree)
				return -1, false, fmt.Errorf("attach root on %s: move_mount: %w", p.Root.Source, err)
			}
			return tree, false, nil // the attached mount's root now
		}
	}
	// Stack the tree on /, then step onto it: ".." from / crosses into the
	// mount on top.
	err = unix.MoveMount(tree, "", unix.AT_FDCWD, "/", unix.MOVE_MOUNT_F_EMPTY_PATH)
	unix.Close(tree)
	if err != nil {
		return -1, false, fmt.Errorf("attach root: move_mount: %w", err)
	}
	if root, err = unix.Open("/..", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0); err != nil {
		return -1, false, fmt.Errorf("open root: %w", err)
	}
	return root, true, nil
}

// SetupAt is Setup for a container without a mount namespace of its own,
// as runc runs one: p's tree is attached on at, the rootfs's path in the
// caller's mount namespace, which is the container's, and built there; the
// caller's root stays, for init to chroot into the tree. It returns the
// tree's root, and on error detaches what it attached. It takes f's fds
// and needs a thread of its own filesystem information (it sets the
// umask).
func SetupAt(p *Plan, f *FDs, at string) (root int, err error) {
	if err := prepare(p, f); err != nil {
		return -1, err
	}
	root = take(&f.Root)
	defer func() {
		if err != nil {
			unix.Close(root)
		}
	}()
	target, err := unix.Open(at, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("attach root on %s: %w", at, err)
	}
	err = unix.MoveMount(root, "", target, "", unix.MOVE_MOUNT_F_EMPTY_PATH|unix.MOVE_MOUNT_T_EMPTY_PATH)
	unix.Close(target)
	if err != nil {
		return -1, fmt.Errorf("attach root on %s: move_mount: %w", at, err)
	}
	// The fd is the attached tree's root from here on.
	defer func() {
		if err != nil {
			Detach(root)
		}
	}()
	if err := build(p, f, root); err != nil {
		return -1, err
	}
	if err := applyPropagation(p, root); err != nil {
		return -1, err
	}
	return root, nil
}

// Detach lazily unmounts the tree whose root fd is root (SetupAt's), with
// everything mounted below it.
func Detach(root int) error {
	if err := unix.Unmount("/proc/self/fd/"+strconv.Itoa(root), unix.MNT_DETACH); err != nil {
		return fmt.Errorf("detach the container's root: %w", err)
	}
	return nil
}

// prepare readies what build needs before anything is attached: the
// trees a rootless executor opens itself, and the root's.
func prepare(p *Plan, f *FDs) error {
	if p.Inside {
		if err := openInside(p, f); err != nil {
			return err
		}
	}
	if f.Root < 0 {
		return errors.New("receive root tree: expected an fd")
	}
	return nil
}

func closeFD(fd int) {
	if fd >= 0 {
		unix.Close(fd)
	}
}

// applyPropagation sets rootfsPropagation on the tree at root, once it is
// in place.
func applyPropagation(p *Plan, root int) error {
	if p.Propagation == 0 || p.Propagation == unix.MS_PRIVATE {
		return nil
	}
	attr := &unix.MountAttr{Propagation: uint64(p.Propagation)}
	if err := unix.MountSetattr(root, "", unix.AT_EMPTY_PATH|unix.AT_RECURSIVE, attr); err != nil {
		return fmt.Errorf("set root propagation: %w", err)
	}
	return nil
}

// build makes the attached tree at root what p says: its mounts, devices,
// links, cwd, read-only and masked paths, in runc's order.
func build(p *Plan, f *FDs, root int) (err error) {
	// Modes are the config's, not reduced by our umask.
	unix.Umask(0)
	// The tree is a clone of the rootfs (and of the mounts below it), and
	// a clone of a shared mount joins its peer group: dockerd, for one,
	// makes its data root rshared, so the rootfs it mounts there is shared.
	// pivot_root refuses a shared new root (EINVAL), and mounts made in the
	// container would propagate out. Leave the host's peer groups before
	// anything is mounted: a slave of the host's mounts (as runc does), or
	// private with rootfsPropagation private; applyPropagation applies
	// rootfsPropagation at the end.
	prop := StartPropagation(p.Propagation)
	if err := unix.MountSetattr(root, "", unix.AT_EMPTY_PATH|unix.AT_RECURSIVE, &unix.MountAttr{Propagation: uint64(prop)}); err != nil {
		return fmt.Errorf("make root %s: %w", map[int]string{unix.MS_PRIVATE: "private", unix.MS_SLAVE: "a slave"}[prop], err)
	}

	// Read-only tmpfs mounts and /dev, made writable until /dev's nodes
	// and links are in place, as runc remounts them.
	type later struct {
		fd     int
		target string
	}
	var readonlyLater []later
	defer func() {
		for _, l := range readonlyLater {
			unix.Close(l.fd)
		}
	}()
	for i, m := range p.Mounts {
		fd := take(&f.Mounts[i])
		switch {
		case m.InRoot:
			// fd, if any, is the user namespace of an idmapped one.
			fd, err = bindInRoot(root, m.Mount, fd)
		case fd >= 0:
		case m.Inside:
			fd, err = mounttree.Open(m.Mount, mounttree.OwnNamespaces())
		default:
			err = errors.New("expected an fd")
		}
		if err != nil {
			return fmt.Errorf("mount %s on %s: %w", m.Type, m.Target, err)
		}
		if err := asRunc(root, m.Mount, fd); err != nil {
			unix.Close(fd)
			return fmt.Errorf("mount %s on %s: %w", m.Type, m.Target, err)
		}
		if lateReadonly(m.Mount) {
			dup, err := unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 0)
			if err != nil {
				unix.Close(fd)
				return fmt.Errorf("mount %s on %s: %w", m.Type, m.Target, err)
			}
			readonlyLater = append(readonlyLater, later{dup, m.Target})
		}
		if m.CopyUp {
			if err := fscopy.CopyUp(root, m.Target, fd); err != nil {
				unix.Close(fd)
				return fmt.Errorf("mount %s on %s: %w", m.Type, m.Target, err)
			}
		}
		err = mounttree.Attach(root, m.Mount, fd)
		unix.Close(fd)
		if err != nil {
			return err
		}
	}
	for _, d := range p.Devices {
		if p.Inside {
			break // bound, among the mounts
		}
		if err := mknod(root, d); err != nil {
			return err
		}
	}
	for _, l := range p.Links {
		if err := symlink(root, l, p.Owner); err != nil {
			return err
		}
	}
	if p.Cwd != "" {
		fd, err := pathrs.MkdirAllInRoot(root, p.Cwd, 0o755)
		if err != nil {
			return fmt.Errorf("process.cwd: %w", err)
		}
		unix.Close(fd)
	}
	if p.Console {
		if err := consoleMountpoint(root); err != nil {
			return err
		}
	}
	for _, l := range readonlyLater {
		if err := unix.MountSetattr(l.fd, "", unix.AT_EMPTY_PATH, &unix.MountAttr{Attr_set: unix.MOUNT_ATTR_RDONLY}); err != nil {
			return fmt.Errorf("make the mount on %s read-only: %w", l.target, err)
		}
	}
	// runc's order: the read-only paths, then the masked ones; each mount
	// is made as it is attached, so that mountinfo lists them so.
	for _, path := range p.Readonly {
		if err := readonly(root, path); err != nil {
			return err
		}
	}
	if err := mask(root, p.Masked, p.Owner); err != nil {
		return err
	}
	if p.RootReadonly {
		attr := &unix.MountAttr{Attr_set: unix.MOUNT_ATTR_RDONLY}
		if err := unix.MountSetattr(root, "", unix.AT_EMPTY_PATH, attr); err != nil {
			return fmt.Errorf("make root read-only: %w", err)
		}
	}
	return nil
}

// hideProcSys detaches, before a chroot (no pivot_root), every whole proc
// and sysfs mount outside root, or covers it with a tmpfs where it cannot:
// the mount namespace keeps what is outside the chroot, and the kernel lets
// a process that makes a user namespace mount a fresh, unmasked proc or
// sysfs wherever one is fully visible in its mount namespace (runc's
// no_pivot.bats; runc hides them the same way).
func hideProcSys(root int) error {
	rootPath, err := os.Readlink("/proc/self/fd/" + strconv.Itoa(root))
	if err != nil {
		return fmt.Errorf("no pivot: the root's path: %w", err)
	}
	es, err := mountinfo.Read("/proc/self/mountinfo")
	if err != nil {
		return fmt.Errorf("no pivot: %w", err)
	}
	// The last made first: a mount on top of another goes before it.
	for i := len(es) - 1; i >= 0; i-- {
		e := es[i]
		if e.Root != "/" || (e.FSType != "proc" && e.FSType != "sysfs") ||
			e.Mountpoint == rootPath || strings.HasPrefix(e.Mountpoint, rootPath+"/") {
			continue
		}
		err := unix.Unmount(e.Mountpoint, unix.MNT_DETACH)
		switch {
		case err == nil, errors.Is(err, unix.ENOENT): // gone with a parent
		case errors.Is(err, unix.EINVAL), errors.Is(err, unix.EPERM):
			if err := unix.Mount("tmpfs", e.Mountpoint, "tmpfs", unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
				return fmt.Errorf("no pivot: cover %s %s: %w", e.FSType, e.Mountpoint, err)
			}
		default:
			return fmt.Errorf("no pivot: detach %s %s: %w", e.FSType, e.Mountpoint, err)
		}
	}
	return nil
}

// lateReadonly tells a read-only mount that runc mounts writable and makes
// read-only once the root is built: a tmpfs (whose mode is set after
// mounting), /dev (which takes nodes, links and mounts).
func lateReadonly(m mounttree.Mount) bool {
	return m.Attr&unix.MOUNT_ATTR_RDONLY != 0 && (m.Type == "tmpfs" || path.Clean(m.Target) == "/dev")
}

// asRunc makes the detached mount fd, about to go on m.Target, what runc
// mounts there: writable if lateReadonly, and a tmpfs without a mode=
// option takes the mode of the directory it covers.
func asRunc(root int, m mounttree.Mount, fd int) error {
	if lateReadonly(m) {
		if err := unix.MountSetattr(fd, "", unix.AT_EMPTY_PATH, &unix.MountAttr{Attr_clr: unix.MOUNT_ATTR_RDONLY}); err != nil {
			return fmt.Errorf("keep writable until the root is built: %w", err)
		}
	}
	if m.Type != "tmpfs" || slices.ContainsFunc(m.Data, func(o string) bool { return strings.HasPrefix(o, "mode=") }) {
		return nil
	}
	target, err := pathrs.OpenInRoot(root, m.Target, unix.O_PATH|unix.O_DIRECTORY, 0)
	if err != nil {
		return nil // made by Attach, as runc leaves the tmpfs default
	}
	var st unix.Stat_t
	err = unix.Fstat(target, &st)
	unix.Close(target)
	if err != nil {
		return fmt.Errorf("stat %s: %w", m.Target, err)
	}
	dir, err := unix.Openat(fd, ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open the tmpfs: %w", err)
	}
	defer unix.Close(dir)
	if err := unix.Fchmod(dir, st.Mode&0o7777); err != nil {
		return fmt.Errorf("take the mode of %s: %w", m.Target, err)
	}
	return nil
}

// bindInRoot opens a bind of m.Source, a path inside root resolved there
// (symlinks included), as the mounts attached so far make it; an idmapped
// one takes the mapping of userns, which it closes.
func bindInRoot(root int, m mounttree.Mount, userns int) (int, error) {
	if userns >= 0 {
		defer unix.Close(userns)
	}
	src, err := pathrs.OpenInRoot(root, m.Source, unix.O_PATH, 0)
	if err != nil {
		return -1, fmt.Errorf("open source %s in the container's root: %w", m.Source, err)
	}
	defer unix.Close(src)
	fd, err := mounttree.OpenBindFD(src, m)
	if err != nil || !m.IDMap {
		return fd, err
	}
	if err := mounttree.SetIDMap(fd, m, userns); err != nil {
		unix.Close(fd)
		return -1, err
	}
	return fd, nil
}

// mknod creates a device node inside root, as the config describes it. An
// existing node is left as it is.
func mknod(root int, d specs.LinuxDevice) error {
	var typ uint32
	switch d.Type {
	case "c", "u":
		typ = unix.S_IFCHR
	case "b":
		typ = unix.S_IFBLK
	case "p":
		typ = unix.S_IFIFO
	default:
		return fmt.Errorf("device %s: unknown type %q", d.Path, d.Type)
	}
	mode := uint32(0o666)
	if d.FileMode != nil {
		mode = uint32(*d.FileMode) & 0o7777
	}
	dir, err := pathrs.MkdirAllInRoot(root, path.Dir(d.Path), 0o755)
	if err != nil {
		return fmt.Errorf("device %s: %w", d.Path, err)
	}
	defer unix.Close(dir)
	name := path.Base(d.Path)
	err = unix.Mknodat(dir, name, typ|mode, int(unix.Mkdev(uint32(d.Major), uint32(d.Minor))))
	if err == unix.EEXIST {
		return nil
	}
	if err != nil {
		return fmt.Errorf("device %s: mknod: %w", d.Path, err)
	}
	uid, gid := -1, -1
	if d.UID != nil {
		uid = int(*d.UID)
	}
	if d.GID != nil {
		gid = int(*d.GID)
	}
	if err := unix.Fchownat(dir, name, uid, gid, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("device %s: chown: %w", d.Path, err)
	}
	return nil
}

// symlink makes l inside root, owned by owner if set; one already there is
// left as it is.
func symlink(root int, l Link, owner *Owner) error {
	dir, err := pathrs.MkdirAllInRoot(root, path.Dir(l.Path), 0o755)
	if err != nil {
		return fmt.Errorf("symlink %s: %w", l.Path, err)
	}
	defer unix.Close(dir)
	name := path.Base(l.Path)
	err = unix.Symlinkat(l.Target, dir, name)
	if err == unix.EEXIST {
		return nil
	}
	if err != nil {
		return fmt.Errorf("symlink %s -> %s: %w", l.Path, l.Target, err)
	}
	if owner != nil {
		if err := unix.Fchownat(dir, name, owner.UID, owner.GID, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return fmt.Errorf("symlink %s: chown to the container's root: %w", l.Path, err)
		}
	}
	return nil
}

// mask hides paths as runc does: a directory under a read-only tmpfs of
// one block and one inode (any write fails with EROFS), made for the first
// directory and bound on every later one; anything else under a bind of
// the container's own /dev/null, checked (openDevNull). A path listed
// twice is masked once, a missing one is skipped. The tmpfs is owner's, if
// set.
func mask(root int, paths []string, owner *Owner) error {
	if len(paths) == 0 {
		return nil
	}
	null, err := openDevNull(root)
	if err != nil {
		return err
	}
	defer unix.Close(null)
	dirMask := -1 // the first directory's tmpfs, once attached
	defer func() {
		if dirMask >= 0 {
			unix.Close(dirMask)
		}
	}()
	seen := map[string]bool{}
	for _, p := range paths {
		if p = path.Clean(p); seen[p] {
			continue
		}
		seen[p] = true
		fd, err := pathrs.OpenInRoot(root, p, unix.O_PATH|unix.O_NOFOLLOW, 0)
		if err != nil && isNotExist(err) {
			continue
		}
		if err != nil {
			return fmt.Errorf("mask %s: %w", p, err)
		}
		var st unix.Stat_t
		err = unix.Fstat(fd, &st)
		unix.Close(fd)
		if err != nil {
			return fmt.Errorf("mask %s: %w", p, err)
		}
		isDir := st.Mode&unix.S_IFMT == unix.S_IFDIR
		// Plain binds, as runc's: the flags and atime of their source.
		m := mounttree.Mount{Type: "bind", Source: "/dev/null", Target: p, KeepAtime: true}
		switch {
		case !isDir:
			fd, err = mounttree.OpenBindFD(null, m)
		case dirMask >= 0:
			m.Source = "tmpfs"
			fd, err = mounttree.OpenBindFD(dirMask, m)
		default:
			m = mounttree.Mount{Type: "tmpfs", Source: "tmpfs", Target: p, Attr: unix.MOUNT_ATTR_RDONLY,
				Data: []string{"ro", "nr_blocks=1", "nr_inodes=1"}}
			if owner != nil {
				m.Data = append(m.Data, "uid="+strconv.Itoa(owner.UID), "gid="+strconv.Itoa(owner.GID))
			}
			fd, err = mounttree.Open(m, mounttree.OwnNamespaces())
		}
		if err != nil {
			return fmt.Errorf("mask %s: %w", p, err)
		}
		if err := mounttree.Attach(root, m, fd); err != nil {
			unix.Close(fd)
			return fmt.Errorf("mask %s: %w", p, err)
		}
		if isDir && dirMask < 0 {
			dirMask = fd
		} else {
			unix.Close(fd)
		}
	}
	return nil
}

// openDevNull opens (O_PATH) the container's /dev/null, which masks files
// as runc's does (a bind of it has the flags and file system of the
// container's /dev), checked to be the null device: the image, or a
// process of another container sharing the rootfs, may have put anything
// there, such as a link to a file of /proc (CVE-2025-31133). The checked
// fd is what is bound.
func openDevNull(root int) (int, error) {
	fd, err := pathrs.OpenInRoot(root, "/dev/null", unix.O_PATH, 0)
	if err != nil {
		return -1, fmt.Errorf("mask paths: open the container's /dev/null: %w", err)
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("mask paths: /dev/null: %w", err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFCHR || unix.Major(st.Rdev) != 1 || unix.Minor(st.Rdev) != 3 {
		unix.Close(fd)
		return -1, fmt.Errorf("mask paths: the container's /dev/null is not the null device")
	}
	return fd, nil
}

// readonly makes p a read-only bind of itself. A missing path is skipped.
func readonly(root int, p string) error {
	fd, err := pathrs.OpenInRoot(root, p, unix.O_PATH|unix.O_NOFOLLOW, 0)
	if err != nil && isNotExist(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("make %s read-only: %w", p, err)
	}
	defer unix.Close(fd)
	m := mounttree.Mount{Type: "bind", Source: p, Target: p, Recursive: true, Attr: unix.MOUNT_ATTR_RDONLY, KeepAtime: true}
	bfd, err := mounttree.OpenBindFD(fd, m)
	if err != nil {
		return err
	}
	defer unix.Close(bfd)
	return mounttree.Attach(root, m, bfd)
}

func isNotExist(err error) bool { return errors.Is(err, unix.ENOENT) }
