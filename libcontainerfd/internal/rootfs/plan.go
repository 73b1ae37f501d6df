// Package rootfs builds a container's root file system from a Plan: the
// mounts are opened as detached trees (package mounttree) wherever the
// plan's executor can open them, their fds travel indexed by the plan, and
// one executor, Setup, attaches them under init's root and pivots into it,
// whether it runs in init's stage, on a runtime thread that joined init's
// mount namespace, or in a rootless init that opens every mount itself.
//
// It also finds what the process needs in that root: its program
// (LookPath) and its terminal (NewPty, MountConsole).
package rootfs

import (
	"errors"
	"fmt"
	"path"

	"github.com/containerfd/containerfd/libcontainerfd/mounttree"
	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// Plan is a container's root file system: what to mount, in order, and
// what to make, mask and make read-only once it is mounted.
type Plan struct {
	// Root is mounted first: a bind of the rootfs, or a tmpfs.
	Root   mounttree.Mount `json:"root"`
	Mounts []Mount         `json:"mounts,omitempty"`
	// Devices are made with mknod, unless Inside (they are binds among
	// the Mounts then, and named here for errors).
	Devices []specs.LinuxDevice `json:"devices,omitempty"`
	Links   []Link              `json:"links,omitempty"`
	// Cwd, init's working directory, is made (mode 0755, owned by the
	// executor) where it is missing, as runc does: before the masks and
	// the read-only root, once every mount is in place.
	Cwd string `json:"cwd,omitempty"`
	// Console: the process has a terminal. /dev/console's mount point is
	// made while /dev is writable, for MountConsole to bind onto after a
	// read-only /dev is made so, as runc makes it.
	Console      bool     `json:"console,omitempty"`
	Masked       []string `json:"masked,omitempty"`
	Readonly     []string `json:"readonly,omitempty"`
	RootReadonly bool     `json:"rootReadonly,omitempty"`
	// Propagation is rootfsPropagation (MS_SHARED, MS_SLAVE, ...; 0:
	// private).
	Propagation int  `json:"propagation,omitempty"`
	NoPivot     bool `json:"noPivot,omitempty"`
	// Owner, with a user namespace, is the container's root as the host
	// sees it: what the runtime makes (the roots of devpts and mqueue,
	// devpts' ptmx, links, mask tmpfs) is given to it, as runc's init
	// makes them inside the user namespace. Not sent to a stage, which
	// runs inside it: what it makes is the container root's already.
	Owner *Owner `json:"-"`
	// Inside: the executor opens the root and every mount itself, from
	// inside the container's user namespace (a rootless runtime cannot
	// build mounts; see libcontainerfd's rootless.go), before anything
	// is attached, while host paths resolve as they do for the caller.
	Inside bool `json:"inside,omitempty"`
}

// Owner is a uid and gid as the host sees them.
type Owner struct{ UID, GID int }

// Mount is a mount of the plan.
type Mount struct {
	mounttree.Mount
	// Inside: opened by the executor in its own namespaces (proc where
	// the kernel cannot make one for another pid namespace).
	Inside bool `json:"inside,omitempty"`
	// InRoot: a bind whose Source is a path inside the container's root (a
	// config's source under root.path, which runc binds from the tree the
	// mounts before it made): the executor resolves it in the root, by
	// fd, as it attaches it. An idmapped one's fd is the user namespace
	// whose mapping it takes, which the runtime opens.
	InRoot bool `json:"inRoot,omitempty"`
}

// sent tells whether the runtime opens an fd for m and sends it: its tree,
// or the user namespace of an idmapped InRoot bind.
func (m Mount) sent() bool { return !m.Inside && (!m.InRoot || m.IDMap) }

// IDMapOutside has the runtime open every idmapped bind, InRoot ones
// from the rootfs before anything is mounted: for an executor that cannot
// make idmapped mounts (a stage inside the container's user namespace).
func (p *Plan) IDMapOutside() {
	for i := range p.Mounts {
		if m := &p.Mounts[i]; m.InRoot && m.IDMap {
			m.Source, m.InRoot = path.Join(p.Root.Source, m.Source), false
		}
	}
}

// Link is a symlink to make inside the root.
type Link struct {
	Path   string `json:"path"`
	Target string `json:"target"`
}

// FDs are the open trees of a Plan, indexed by it: Root, Mounts[i] for
// Plan.Mounts[i]. An fd of -1 is for the executor to open.
type FDs struct {
	Root   int
	Mounts []int
}

// NoFDs is an FDs of p with none open.
func NoFDs(p *Plan) *FDs {
	f := &FDs{Root: -1, Mounts: make([]int, len(p.Mounts))}
	for i := range f.Mounts {
		f.Mounts[i] = -1
	}
	return f
}

// List is the open fds in the plan's order, to send.
func (f *FDs) List() []int {
	var l []int
	for _, fd := range append([]int{f.Root}, f.Mounts...) {
		if fd >= 0 {
			l = append(l, fd)
		}
	}
	return l
}

// Sent is how many fds List gives for p as Open leaves them: the plan says
// which are opened where.
func Sent(p *Plan) int {
	if p.Inside {
		return 0
	}
	n := 1
	for _, m := range p.Mounts {
		if m.sent() {
			n++
		}
	}
	return n
}

// Place puts fds, received in List's order, back where p indexes them.
// It takes fds whatever it returns.
func Place(p *Plan, fds []int) (*FDs, error) {
	f := NoFDs(p)
	if len(fds) != Sent(p) {
		for _, fd := range fds {
			unix.Close(fd)
		}
		return nil, fmt.Errorf("expected %d fds for the root's plan, got %d", Sent(p), len(fds))
	}
	if p.Inside {
		return f, nil
	}
	next := func() int { fd := fds[0]; fds = fds[1:]; return fd }
	f.Root = next()
	for i, m := range p.Mounts {
		if m.sent() {
			f.Mounts[i] = next()
		}
	}
	return f, nil
}

// Close closes the fds not taken.
func (f *FDs) Close() {
	for _, fd := range append([]int{f.Root}, f.Mounts...) {
		if fd >= 0 {
			unix.Close(fd)
		}
	}
	f.Root, f.Mounts = -1, nil
}

// take hands over *fd to the caller.
func take(fd *int) int {
	v := *fd
	*fd = -1
	return v
}

// Open opens p's trees in the namespaces ns (init's, that filesystems are
// tied to): the root and each mount, in the plan's order (the order in
// which mountinfo lists them from Linux 6.8 on). A proc
// the kernel cannot make for init's pid namespace is marked Inside and
// left to the executor. userns, if set, gives the user namespace of an
// idmapped mount with a mapping of its own.
func Open(p *Plan, ns mounttree.Namespaces, userns func(m mounttree.Mount) (int, error)) (_ *FDs, err error) {
	f := NoFDs(p)
	defer func() {
		if err != nil {
			f.Close()
		}
	}()
	if f.Root, err = mounttree.Open(p.Root, ns); err != nil {
		return nil, fmt.Errorf("root %s: %w", p.Root.Source, err)
	}
	for i := range p.Mounts {
		m := &p.Mounts[i]
		if m.InRoot && m.IDMap {
			if f.Mounts[i], err = inRootUserns(m.Mount, ns, userns); err != nil {
				f.Mounts[i] = -1
				return nil, fmt.Errorf("mount on %s: %w", m.Target, err)
			}
			continue
		}
		if m.InRoot {
			continue
		}
		mns := ns
		if m.IDMap && len(m.UIDMappings) > 0 && userns != nil {
			// A mapping of the mount's own, not the container's.
			var u int
			if u, err = userns(m.Mount); err != nil {
				return nil, fmt.Errorf("mount on %s: %w", m.Target, err)
			}
			mns.User = u
			f.Mounts[i], err = mounttree.Open(m.Mount, mns)
			unix.Close(u)
		} else {
			f.Mounts[i], err = mounttree.Open(m.Mount, mns)
		}
		if errors.Is(err, mounttree.ErrProcNeedsPidns) {
			m.Inside, f.Mounts[i] = true, -1
			continue
		}
		if err != nil {
			f.Mounts[i] = -1
			return nil, err
		}
		if err := chownRoot(f.Mounts[i], m.Mount, p.Owner); err != nil {
			return nil, err
		}
	}
	return f, nil
}

// inRootUserns opens the user namespace an idmapped InRoot bind takes its
// mapping from: one of its own mapping, or the container's (ns.User).
func inRootUserns(m mounttree.Mount, ns mounttree.Namespaces, userns func(m mounttree.Mount) (int, error)) (int, error) {
	if len(m.UIDMappings) > 0 && userns != nil {
		return userns(m)
	}
	if ns.User < 0 {
		return -1, errors.New("idmapped mount: no user namespace to take the mapping from")
	}
	return unix.FcntlInt(uintptr(ns.User), unix.F_DUPFD_CLOEXEC, 0)
}

// openInside opens, in a rootless init, what a privileged runtime would
// have sent (Plan.Inside): the root and each mount. It runs before anything is attached, while host paths still
// resolve as they do for the caller: init is root only in the container's
// user namespace, so a bind reaches what the caller could reach, no more.
func openInside(p *Plan, f *FDs) error {
	own := mounttree.OwnNamespaces()
	devices := map[string]bool{}
	for _, d := range p.Devices {
		devices[d.Path] = true
	}
	var err error
	if f.Root, err = mounttree.Open(p.Root, own); err != nil {
		f.Root = -1
		return fmt.Errorf("root %s: %w", p.Root.Source, err)
	}
	for i, m := range p.Mounts {
		if m.InRoot {
			continue
		}
		fd, err := mounttree.Open(m.Mount, own)
		if err != nil && m.Type == "sysfs" && errors.Is(err, unix.EPERM) {
			// sysfs needs a network namespace of the container's own;
			// without one it is the host's, bound read-only (as runc's
			// spec --rootless writes it).
			const hidden = unix.MOUNT_ATTR_RDONLY | unix.MOUNT_ATTR_NOSUID | unix.MOUNT_ATTR_NODEV | unix.MOUNT_ATTR_NOEXEC
			b := mounttree.Mount{Type: "bind", Source: "/sys", Target: m.Target, Recursive: true,
				Attr: m.Attr | hidden, RecAttr: hidden}
			fd, err = mounttree.Open(b, own)
		}
		if err != nil && m.Type == "bind" && devices[m.Target] {
			return fmt.Errorf("device %s: mknod needs CAP_MKNOD in the initial user namespace, so the host's node is bound instead, and that failed: %w", m.Target, err)
		}
		if err != nil {
			return rootlessMountError(m.Mount, err)
		}
		f.Mounts[i] = fd
	}
	return nil
}

// chownRoot gives owner the root of a devpts or mqueue made here, outside
// the container's user namespace: they take the maker's ids and have no
// option to say others (tmpfs has uid= and gid=), so they would belong to
// the overflow id inside. devpts' ptmx too.
func chownRoot(fd int, m mounttree.Mount, owner *Owner) error {
	if owner == nil || (m.Type != "devpts" && m.Type != "mqueue") {
		return nil
	}
	if err := unix.Fchownat(fd, "", owner.UID, owner.GID, unix.AT_EMPTY_PATH); err != nil {
		return fmt.Errorf("mount %s on %s: chown to the container's root: %w", m.Type, m.Target, err)
	}
	if m.Type == "devpts" {
		if err := unix.Fchownat(fd, "ptmx", owner.UID, owner.GID, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return fmt.Errorf("mount devpts on %s: chown ptmx to the container's root: %w", m.Target, err)
		}
	}
	return nil
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

// StartPropagation is what the root and the binds are made before anything
// is mounted on them: a slave of the host's mounts, as runc makes them
// (rslave unless rootfsPropagation says otherwise), or private when
// rootfsPropagation asks for private or unbindable. rootfsPropagation
// itself is applied once the root is the root.
func StartPropagation(rootPropagation int) int {
	if rootPropagation == unix.MS_PRIVATE || rootPropagation == unix.MS_UNBINDABLE {
		return unix.MS_PRIVATE
	}
	return unix.MS_SLAVE
}
