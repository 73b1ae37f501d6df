// Package mounttree builds a container's mounts outside the container with
// the new mount API and attaches them by file descriptor.
//
// Open makes each mount as a detached mount fd in the calling process:
// fsopen/fsconfig/fsmount for filesystems, open_tree(OPEN_TREE_CLONE) for
// binds, with per-mount attributes and propagation set by mount_setattr.
// Filesystems whose superblock belongs to a namespace of the *calling
// thread* (sysfs: net, mqueue: ipc, cgroup2: cgroup) are created on a thread
// that joined the container's namespace; proc is tied to the container's pid
// namespace with fsconfig(FSCONFIG_SET_FD, "pidns") where the kernel has it.
//
// Attach then moves such an fd onto a target resolved (and created) from the
// container's root fd with pathrs, inside the root, with move_mount: no path
// string is ever re-resolved between the check and the mount
// (CVE-2021-30465). Attach runs in the mount namespace the mount goes into:
// in the container's init, or on a thread that joined a running container's
// mount namespace; root must be opened there.
//
// The mount fds are process-wide and can be passed between threads and, over
// SCM_RIGHTS, between processes. All fds are close-on-exec.
package mounttree

import (
	"errors"
	"fmt"
	"path"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/containerfd/containerfd/libcontainerfd/idmap"
	"github.com/containerfd/containerfd/libcontainerfd/kernfeat"
	"github.com/containerfd/containerfd/libcontainerfd/nsenter"
	"github.com/containerfd/containerfd/libcontainerfd/pathrs"
)

// Mount describes one mount of the container's tree.
type Mount struct {
	// Type is "bind", or a filesystem type for fsopen(2): "tmpfs", "proc",
	// "sysfs", "devpts", "mqueue", "cgroup2", or any other.
	Type string
	// Source is the host path for a bind (symlinks followed, in the
	// caller's mount namespace), else the source name mountinfo shows
	// ("tmpfs"); it may be empty.
	Source string
	// Target is the path inside the container root.
	Target string
	// Recursive makes a bind an rbind (AT_RECURSIVE) and applies
	// Propagation, RecAttr and RecClearAttr to every mount of the tree.
	Recursive bool
	// Attr holds MOUNT_ATTR_RDONLY, NOSUID, NODEV, NOEXEC, NOSYMFOLLOW,
	// NODIRATIME and one of the atime settings MOUNT_ATTR_RELATIME (0, the
	// default), NOATIME or STRICTATIME.
	//
	// A new filesystem gets exactly these. A bind starts from the source
	// mount's attributes: the flags in Attr are added, those in ClearAttr
	// removed, and the atime setting becomes the one in Attr (changed only
	// when it differs, so a locked but equal setting is no error). On an
	// rbind they go on the top mount only, as mount(8) and runc do with
	// "ro": the mounts below keep their own.
	Attr uint64
	// ClearAttr holds MOUNT_ATTR_* flags to remove from a bind (OCI "rw",
	// "suid", "dev", "exec", "symfollow", "diratime"). Unused for new
	// filesystems, which start with none.
	ClearAttr uint64
	// RecAttr and RecClearAttr are flags (no atime setting) to set and
	// remove on every mount of an rbind's tree, after Attr and ClearAttr
	// (OCI "rro", "rnosuid", "rrw", …). RecAtime puts Attr's atime
	// setting on every mount of the tree too ("rnoatime", …). On a plain
	// bind they mean the same as Attr and ClearAttr; unused for new
	// filesystems.
	RecAttr, RecClearAttr uint64
	RecAtime              bool
	// KeepAtime leaves a bind's atime setting (with nodiratime) as the
	// source has it, whatever Attr says: what runc and mount(8) do when no
	// atime option is given.
	KeepAtime bool
	// Exact gives a bind's top mount the flags in Attr and no others: the
	// source's ro, nosuid, nodev, noexec and nosymfollow that Attr lacks
	// are removed, as runc's MS_BIND|MS_REMOUNT with the config's flags
	// does when a bind names any flag.
	Exact bool
	// Locked makes a bind as runc makes it for a container with a user
	// namespace, inside it, where the kernel locks the source's ro,
	// nosuid, nodev, noexec and atime settings: those the source has stay
	// (even with Exact), and ClearAttr or an atime setting that would
	// change one is an error.
	Locked bool
	// Data are filesystem options for fsconfig(2): "key=value" is passed
	// as FSCONFIG_SET_STRING, a bare "key" as FSCONFIG_SET_FLAG ("mode=755",
	// "size=65536k", "newinstance", "ptmxmode=0666", "gid=5", "ro"). Ids in
	// options are read in the runtime's user namespace. Unused for binds.
	Data []string
	// Propagation is 0 or one of unix.MS_PRIVATE, MS_SLAVE, MS_SHARED,
	// MS_UNBINDABLE, applied with mount_setattr (to the whole tree if
	// Recursive) by Open on the detached mount and again by Attach once
	// attached (attaching below a shared mount would otherwise make it
	// shared).
	Propagation int
	// PropagationFirst is a propagation applied before Propagation: a
	// bind that leaves its source's peer group (MS_SLAVE or MS_PRIVATE)
	// and then becomes MS_SHARED has a peer group of its own, and with
	// MS_SLAVE ("shared:N master:M") still gets the host's mounts.
	PropagationFirst int
	// IDMap makes a bind an idmapped mount (MOUNT_ATTR_IDMAP): the owners
	// of its files are seen through a user namespace's mapping, the one
	// UIDMappings and GIDMappings describe (the caller makes it and passes
	// it in Namespaces.User) or else the container's own. RecursiveIDMap
	// maps every mount of an rbind's tree.
	IDMap, RecursiveIDMap    bool
	UIDMappings, GIDMappings idmap.Map
	// CopyUp (OCI option "tmpcopyup", a runc/crun extension) asks the
	// caller to fill a new tmpfs with a copy of what the directory at
	// Target holds before attaching it (libcontainerfd does, with fscopy.CopyUp);
	// mounttree itself does nothing with it.
	CopyUp bool
}

// Namespaces are nsfs fds (as opened O_RDONLY from /proc/<pid>/ns/<type>) of
// the container's namespaces that Open needs; -1 means the caller's own.
// Net, IPC and Cgroup are joined with setns(2) (a pidfd works too); PID is
// handed to proc's "pidns" option, which takes only an nsfs fd that is not
// O_PATH.
type Namespaces struct {
	Net    int // for sysfs
	IPC    int // for mqueue
	Cgroup int // for cgroup2
	PID    int // for proc
	User   int // for an idmapped bind: the user namespace whose mapping it takes
}

// OwnNamespaces returns Namespaces that name the caller's own namespaces.
func OwnNamespaces() Namespaces { return Namespaces{Net: -1, IPC: -1, Cgroup: -1, PID: -1, User: -1} }

// ErrProcNeedsPidns is returned (wrapped) by Open for proc when ns.PID is
// set but the kernel cannot mount proc for another pid namespace
// (ProcPidns). The caller then mounts proc from a process inside the
// pid namespace, calling Open with ns.PID = -1 there.
var ErrProcNeedsPidns = errors.New("kernel cannot mount proc for another pid namespace; mount it from inside that pid namespace")

// attrFlags are the MOUNT_ATTR_* flags (besides the atime setting) Mount.Attr
// and ClearAttr may hold.
const attrFlags = unix.MOUNT_ATTR_RDONLY | unix.MOUNT_ATTR_NOSUID | unix.MOUNT_ATTR_NODEV |
	unix.MOUNT_ATTR_NOEXEC | unix.MOUNT_ATTR_NODIRATIME | unix.MOUNT_ATTR_NOSYMFOLLOW

// Open builds m as a detached mount and returns its fd (O_CLOEXEC). ns
// names the container's namespaces that sysfs, mqueue, cgroup2 and proc
// belong to. Errors name the mount and the step, e.g.
// "mount proc on /proc: fsconfig pidns: ...".
func Open(m Mount, ns Namespaces) (int, error) {
	what := describe("mount", m)
	if err := checkAttr(m); err != nil {
		return -1, fmt.Errorf("%s: %w", what, err)
	}
	if m.Type == "bind" {
		if m.Source == "" {
			return -1, fmt.Errorf("%s: bind without a source: %w", what, unix.EINVAL)
		}
		fd, err := openBind(unix.AT_FDCWD, m.Source, 0, m, what)
		if err == nil && m.IDMap {
			if err = SetIDMap(fd, m, ns.User); err != nil {
				unix.Close(fd)
				return -1, fmt.Errorf("%s: %w", what, err)
			}
		}
		return fd, err
	}

	var join []nsenter.Namespace
	switch m.Type {
	case "":
		return -1, fmt.Errorf("%s: no filesystem type: %w", what, unix.EINVAL)
	case "sysfs":
		join = nsToJoin(ns.Net, unix.CLONE_NEWNET)
	case "mqueue":
		join = nsToJoin(ns.IPC, unix.CLONE_NEWIPC)
	case "cgroup2":
		join = nsToJoin(ns.Cgroup, unix.CLONE_NEWCGROUP)
	case "proc":
		if ns.PID >= 0 && !ProcPidns.Available() {
			return -1, fmt.Errorf("%s: fsconfig pidns: %w", what, ErrProcNeedsPidns)
		}
	}
	var (
		fd  = -1
		err error
	)
	if join == nil {
		fd, err = newFS(m, ns)
	} else {
		err = nsenter.Do(join, func() error {
			fd, err = newFS(m, ns)
			return err
		})
	}
	if err != nil {
		return -1, fmt.Errorf("%s: %w", what, err)
	}
	return fd, nil
}

// OpenBindFD is Open for a bind whose source is already open as src (any
// fd, O_PATH is fine: a verified /dev/null, a pty peer from TIOCGPTPEER), so
// nothing about the source is looked up by path. m.Source is only used in
// errors.
func OpenBindFD(src int, m Mount) (int, error) {
	m.Type = "bind"
	what := describe("mount", m)
	if err := checkAttr(m); err != nil {
		return -1, fmt.Errorf("%s: %w", what, err)
	}
	return openBind(src, "", unix.AT_EMPTY_PATH, m, what)
}

// openBind clones the tree at dirfd/path (with flags such as AT_EMPTY_PATH)
// as a detached mount and applies m's attributes to it.
func openBind(dirfd int, path string, flags uint, m Mount, what string) (int, error) {
	flags |= unix.OPEN_TREE_CLONE | unix.OPEN_TREE_CLOEXEC
	if m.Recursive {
		flags |= unix.AT_RECURSIVE
	}
	fd, err := unix.OpenTree(dirfd, path, flags)
	if err != nil {
		return -1, fmt.Errorf("%s: open_tree: %w", what, err)
	}
	if err := setupBind(fd, m); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("%s: %w", what, err)
	}
	return fd, nil
}

// Attach mounts fd (from Open) on m.Target inside root: the target is
// resolved inside root with pathrs and created if missing (a directory, or
// an empty file when the mount is not of a directory), then the mount is
// moved onto the target's fd with move_mount(2) and m.Propagation applied
// again. proc and sysfs must go on a real directory: a symlink as the last
// component of their target is an error (CVE-2019-19921).
//
// Attach runs in the mount namespace that root belongs to; root may also be
// a detached mount (from Open), which builds a detached tree (Linux 6.15+).
// Afterwards fd refers to the attached mount: attaching it again would move
// it.
func Attach(root int, m Mount, fd int) error {
	what := describe("attach", m)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return fmt.Errorf("%s: stat mount: %w", what, err)
	}
	isDir := st.Mode&unix.S_IFMT == unix.S_IFDIR
	target, err := openTarget(root, m, isDir)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	defer unix.Close(target)

	err = unix.MoveMount(fd, "", target, "", unix.MOVE_MOUNT_F_EMPTY_PATH|unix.MOVE_MOUNT_T_EMPTY_PATH)
	if err != nil {
		return fmt.Errorf("%s: move_mount: %w", what, err)
	}
	if m.Propagation != 0 {
		err := setPropagation(fd, m)
		// In a detached tree mount_setattr refuses the (now not detached,
		// not ours) mount; Open already set the propagation when the
		// kernel takes it on detached mounts.
		if err != nil && !(errors.Is(err, unix.EINVAL) && DetachedPropagation.Available()) {
			return fmt.Errorf("%s: %w", what, err)
		}
	}
	return nil
}

// describe names a mount for errors: "mount tmpfs on /dev", "attach bind
// /etc/hosts on /etc/hosts".
func describe(op string, m Mount) string {
	typ := m.Type
	if typ == "" {
		typ = "(no type)"
	}
	if typ == "bind" {
		if m.Recursive {
			typ = "rbind"
		}
		return fmt.Sprintf("%s %s %s on %s", op, typ, m.Source, m.Target)
	}
	return fmt.Sprintf("%s %s on %s", op, typ, m.Target)
}

func nsToJoin(fd, typ int) []nsenter.Namespace {
	if fd < 0 {
		return nil
	}
	return []nsenter.Namespace{{FD: fd, Type: typ}}
}

func checkAttr(m Mount) error {
	if bad := m.Attr &^ (attrFlags | unix.MOUNT_ATTR__ATIME); bad != 0 {
		return fmt.Errorf("unsupported mount attributes %#x: %w", bad, unix.EINVAL)
	}
	switch m.Attr & unix.MOUNT_ATTR__ATIME {
	case unix.MOUNT_ATTR_RELATIME, unix.MOUNT_ATTR_NOATIME, unix.MOUNT_ATTR_STRICTATIME:
	default:
		return fmt.Errorf("bad atime setting %#x: %w", m.Attr&unix.MOUNT_ATTR__ATIME, unix.EINVAL)
	}
	if bad := m.ClearAttr &^ attrFlags; bad != 0 {
		return fmt.Errorf("unsupported attributes to clear %#x: %w", bad, unix.EINVAL)
	}
	if both := m.Attr & m.ClearAttr; both != 0 {
		return fmt.Errorf("attributes %#x both set and cleared: %w", both, unix.EINVAL)
	}
	if bad := (m.RecAttr | m.RecClearAttr) &^ attrFlags; bad != 0 {
		return fmt.Errorf("unsupported recursive attributes %#x: %w", bad, unix.EINVAL)
	}
	if both := m.RecAttr & m.RecClearAttr; both != 0 {
		return fmt.Errorf("recursive attributes %#x both set and cleared: %w", both, unix.EINVAL)
	}
	for _, p := range []int{m.Propagation, m.PropagationFirst} {
		switch p {
		case 0, unix.MS_PRIVATE, unix.MS_SLAVE, unix.MS_SHARED, unix.MS_UNBINDABLE:
		default:
			return fmt.Errorf("bad propagation %#x: %w", p, unix.EINVAL)
		}
	}
	return nil
}

// lockable are the flags the kernel locks on a mount copied into a mount
// namespace of a less privileged user namespace (with the atime setting).
const lockable = unix.MOUNT_ATTR_RDONLY | unix.MOUNT_ATTR_NOSUID | unix.MOUNT_ATTR_NODEV |
	unix.MOUNT_ATTR_NOEXEC | unix.MOUNT_ATTR_NODIRATIME

// stNosymfollow is statfs(2)'s ST_NOSYMFOLLOW (Linux 5.10).
const stNosymfollow = 0x2000

// sourceAttr reads a mount's flags and atime setting from its statfs flags.
func sourceAttr(sfs *unix.Statfs_t) (flags, atime uint64) {
	for _, f := range []struct {
		st   int64
		attr uint64
	}{
		{unix.ST_RDONLY, unix.MOUNT_ATTR_RDONLY}, {unix.ST_NOSUID, unix.MOUNT_ATTR_NOSUID},
		{unix.ST_NODEV, unix.MOUNT_ATTR_NODEV}, {unix.ST_NOEXEC, unix.MOUNT_ATTR_NOEXEC},
		{unix.ST_NODIRATIME, unix.MOUNT_ATTR_NODIRATIME}, {stNosymfollow, unix.MOUNT_ATTR_NOSYMFOLLOW},
	} {
		if int64(sfs.Flags)&f.st != 0 {
			flags |= f.attr
		}
	}
	atime = unix.MOUNT_ATTR_STRICTATIME
	switch {
	case sfs.Flags&unix.ST_NOATIME != 0:
		atime = unix.MOUNT_ATTR_NOATIME
	case sfs.Flags&unix.ST_RELATIME != 0:
		atime = unix.MOUNT_ATTR_RELATIME
	}
	return flags, atime
}

// setupBind applies m's attributes and propagation to the detached bind
// fd: Attr and ClearAttr to the top mount, then RecAttr and RecClearAttr
// to the tree.
func setupBind(fd int, m Mount) error {
	var sfs unix.Statfs_t
	if err := unix.Fstatfs(fd, &sfs); err != nil {
		return fmt.Errorf("statfs: %w", err)
	}
	src, have := sourceAttr(&sfs)
	set, clr := m.Attr&attrFlags, m.ClearAttr
	if m.Exact {
		clr |= (attrFlags &^ unix.MOUNT_ATTR_NODIRATIME) &^ set
	}
	want := m.Attr & unix.MOUNT_ATTR__ATIME
	if m.KeepAtime {
		want = have
		clr &^= unix.MOUNT_ATTR_NODIRATIME
	}
	if m.Locked {
		if bad := m.ClearAttr & src & lockable; bad != 0 {
			return fmt.Errorf("cannot clear %s, locked on the source for a container with a user namespace: %w",
				attrString(unix.MountAttr{Attr_set: bad}), unix.EPERM)
		}
		if want != have {
			return fmt.Errorf("cannot change the atime setting, locked on the source for a container with a user namespace: %w", unix.EPERM)
		}
		set |= src & lockable
		clr &^= src & lockable
	}
	top := unix.MountAttr{Attr_set: set, Attr_clr: clr}
	rec := unix.MountAttr{Attr_set: m.RecAttr, Attr_clr: m.RecClearAttr}
	// MOUNT_ATTR_RELATIME is 0: the atime setting is changed by clearing
	// the whole _ATIME field and setting the new value.
	if want != have {
		top.Attr_clr |= unix.MOUNT_ATTR__ATIME
		top.Attr_set |= want
	}
	if m.RecAtime && m.Recursive {
		rec.Attr_clr |= unix.MOUNT_ATTR__ATIME
		rec.Attr_set |= want
	}
	if top.Attr_set != 0 || top.Attr_clr != 0 {
		if err := unix.MountSetattr(fd, "", unix.AT_EMPTY_PATH, &top); err != nil {
			return fmt.Errorf("mount_setattr %s: %w", attrString(top), err)
		}
	}
	if rec.Attr_set != 0 || rec.Attr_clr != 0 {
		if err := unix.MountSetattr(fd, "", setattrFlags(m), &rec); err != nil {
			return fmt.Errorf("mount_setattr %s: %w", attrString(rec), err)
		}
	}
	return setDetachedPropagation(fd, m)
}

// SetIDMap makes the detached bind fd (from OpenBindFD) an idmapped mount
// of userns, recursively if m.RecursiveIDMap.
func SetIDMap(fd int, m Mount, userns int) error {
	if userns < 0 {
		return errors.New("idmapped mount: no user namespace to take the mapping from")
	}
	flags := uint(unix.AT_EMPTY_PATH)
	if m.RecursiveIDMap {
		flags |= unix.AT_RECURSIVE
	}
	attr := &unix.MountAttr{Attr_set: unix.MOUNT_ATTR_IDMAP, Userns_fd: uint64(userns)}
	if err := unix.MountSetattr(fd, "", flags, attr); err != nil {
		return fmt.Errorf("idmapped mount: mount_setattr: %w", err)
	}
	return nil
}

func setattrFlags(m Mount) uint {
	flags := uint(unix.AT_EMPTY_PATH)
	if m.Recursive {
		flags |= unix.AT_RECURSIVE
	}
	return flags
}

func setPropagation(fd int, m Mount) error {
	if m.PropagationFirst != 0 {
		if err := setPropagation(fd, Mount{Propagation: m.PropagationFirst, Recursive: m.Recursive}); err != nil {
			return err
		}
	}
	attr := unix.MountAttr{Propagation: uint64(m.Propagation)}
	if err := unix.MountSetattr(fd, "", setattrFlags(m), &attr); err != nil {
		return fmt.Errorf("mount_setattr %s: %w", propagationName(m.Propagation), err)
	}
	return nil
}

// setDetachedPropagation applies m.Propagation to a detached mount, unless
// the kernel only takes it once attached (then Attach does it).
func setDetachedPropagation(fd int, m Mount) error {
	if m.Propagation == 0 || !DetachedPropagation.Available() {
		return nil
	}
	return setPropagation(fd, m)
}

// DetachedPropagation is mount_setattr(2) changing the propagation of a
// detached mount, which Open then does; without it, Attach does once the
// mount is attached.
var DetachedPropagation = kernfeat.Register("detached-propagation",
	"mount_setattr(2) sets the propagation of a detached mount; without it, it is set once the mount is attached",
	func() bool {
		fs, err := unix.Fsopen("tmpfs", unix.FSOPEN_CLOEXEC)
		if err != nil {
			return false
		}
		defer unix.Close(fs)
		if unix.FsconfigCreate(fs) != nil {
			return false
		}
		fd, err := unix.Fsmount(fs, unix.FSMOUNT_CLOEXEC, 0)
		if err != nil {
			return false
		}
		defer unix.Close(fd)
		return unix.MountSetattr(fd, "", unix.AT_EMPTY_PATH, &unix.MountAttr{Propagation: unix.MS_PRIVATE}) == nil
	})

// ProcPidns is mounting proc for another pid namespace with
// fsconfig(FSCONFIG_SET_FD, "pidns", nsfd) (Linux 6.18), probed with our
// own pid namespace. Without it, Open of proc for another pid namespace
// fails with ErrProcNeedsPidns.
var ProcPidns = kernfeat.Register("proc-pidns",
	"proc is mounted for the container's pid namespace from outside (Linux 6.18); without it, init mounts /proc from inside",
	func() bool {
		fs, err := unix.Fsopen("proc", unix.FSOPEN_CLOEXEC)
		if err != nil {
			return false
		}
		defer unix.Close(fs)
		ns, err := unix.Open("/proc/self/ns/pid", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			return false
		}
		defer unix.Close(ns)
		return unix.FsconfigSetFd(fs, "pidns", ns) == nil
	})

// newFS creates a filesystem with fsopen/fsconfig/fsmount and returns the
// detached mount. It runs on the thread that is in the namespaces the
// superblock is tied to.
func newFS(m Mount, ns Namespaces) (int, error) {
	fs, err := unix.Fsopen(m.Type, unix.FSOPEN_CLOEXEC)
	if err != nil {
		return -1, fmt.Errorf("fsopen: %w", err)
	}
	defer unix.Close(fs)

	if m.Source != "" {
		if err := unix.FsconfigSetString(fs, "source", m.Source); err != nil {
			return -1, fsError(fs, "fsconfig source", err)
		}
	}
	data := m.Data
	switch m.Type {
	case "devpts":
		// A private instance with a usable ptmx: the kernel default
		// ptmxmode is 000.
		if !hasOption(data, "newinstance") {
			data = append([]string{"newinstance"}, data...)
		}
		if !hasOption(data, "ptmxmode") {
			data = append(data, "ptmxmode=0666")
		}
	case "proc":
		if ns.PID >= 0 {
			if err := unix.FsconfigSetFd(fs, "pidns", ns.PID); err != nil {
				return -1, fsError(fs, "fsconfig pidns", err)
			}
		}
	}
	for _, opt := range data {
		key, value, isString := strings.Cut(opt, "=")
		if key == "" {
			return -1, fmt.Errorf("fsconfig %q: empty option name: %w", opt, unix.EINVAL)
		}
		if isString {
			err = unix.FsconfigSetString(fs, key, value)
		} else {
			err = unix.FsconfigSetFlag(fs, key)
		}
		if err != nil {
			return -1, fsError(fs, "fsconfig "+opt, err)
		}
	}
	if err := unix.FsconfigCreate(fs); err != nil {
		return -1, fsError(fs, "fsconfig create", err)
	}
	fd, err := unix.Fsmount(fs, unix.FSMOUNT_CLOEXEC, int(m.Attr))
	if err != nil {
		return -1, fsError(fs, "fsmount "+attrString(unix.MountAttr{Attr_set: m.Attr}), err)
	}
	if err := setDetachedPropagation(fd, m); err != nil {
		unix.Close(fd)
		return -1, err
	}
	return fd, nil
}

func hasOption(data []string, key string) bool {
	for _, opt := range data {
		if k, _, _ := strings.Cut(opt, "="); k == key {
			return true
		}
	}
	return false
}

// fsError wraps err from step on the filesystem context fs with the
// messages the kernel logged there ("tmpfs: Unknown parameter 'x'").
func fsError(fs int, step string, err error) error {
	if msg := fsLog(fs); msg != "" {
		return fmt.Errorf("%s: %w (%s)", step, err, msg)
	}
	return fmt.Errorf("%s: %w", step, err)
}

// fsLog drains the message log of a filesystem context fd.
func fsLog(fs int) string {
	var msgs []string
	buf := make([]byte, 1024)
	for {
		n, err := unix.Read(fs, buf)
		if err != nil || n <= 0 {
			break
		}
		msg := strings.TrimSpace(string(buf[:n]))
		// Each message starts with its level: "e ", "w " or "i ".
		if len(msg) > 2 && msg[1] == ' ' {
			msg = msg[2:]
		}
		msgs = append(msgs, msg)
	}
	return strings.Join(msgs, "; ")
}

// openTarget resolves (creating if missing) the target of m inside root and
// returns an fd of it.
func openTarget(root int, m Mount, isDir bool) (int, error) {
	switch {
	case m.Type == "proc" || m.Type == "sysfs":
		return openRealDir(root, m.Target)
	case isDir:
		return pathrs.MkdirAllInRoot(root, m.Target, 0o755)
	default:
		return pathrs.CreateFileInRoot(root, m.Target, 0o644)
	}
}

// openRealDir opens (creating if missing) target as a directory whose last
// component is not a symlink: the parents are resolved inside root like any
// target, but the last component must be a directory itself.
func openRealDir(root int, target string) (int, error) {
	clean := path.Clean("/" + target)
	dir, base := path.Split(clean)
	if base == "" {
		return -1, fmt.Errorf("target %s: must not be the root: %w", target, unix.EINVAL)
	}
	parent, err := pathrs.MkdirAllInRoot(root, dir, 0o755)
	if err != nil {
		return -1, err
	}
	defer unix.Close(parent)
	if err := unix.Mkdirat(parent, base, 0o755); err != nil && err != unix.EEXIST {
		return -1, fmt.Errorf("mkdir %s in root: %w", clean, err)
	}
	fd, err := unix.Openat2(parent, base, &unix.OpenHow{
		Flags:   unix.O_PATH | unix.O_DIRECTORY | unix.O_CLOEXEC,
		Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS,
	})
	if errors.Is(err, unix.ELOOP) {
		// runc's words, which callers match, then ours.
		return -1, fmt.Errorf("target %s must be mounted on ordinary directory: it is a symlink: %w", clean, err)
	}
	if err != nil {
		return -1, fmt.Errorf("open %s in root: %w", clean, err)
	}
	return fd, nil
}

var attrNames = []struct {
	bit  uint64
	name string
}{
	{unix.MOUNT_ATTR_RDONLY, "ro"},
	{unix.MOUNT_ATTR_NOSUID, "nosuid"},
	{unix.MOUNT_ATTR_NODEV, "nodev"},
	{unix.MOUNT_ATTR_NOEXEC, "noexec"},
	{unix.MOUNT_ATTR_NODIRATIME, "nodiratime"},
	{unix.MOUNT_ATTR_NOSYMFOLLOW, "nosymfollow"},
}

// attrString shows mount_setattr arguments as mount options:
// "nosuid,noatime,-ro".
func attrString(a unix.MountAttr) string {
	var s []string
	for _, n := range attrNames {
		if a.Attr_set&n.bit != 0 {
			s = append(s, n.name)
		}
	}
	if a.Attr_clr&unix.MOUNT_ATTR__ATIME != 0 || a.Attr_set&unix.MOUNT_ATTR__ATIME != 0 {
		switch a.Attr_set & unix.MOUNT_ATTR__ATIME {
		case unix.MOUNT_ATTR_NOATIME:
			s = append(s, "noatime")
		case unix.MOUNT_ATTR_STRICTATIME:
			s = append(s, "strictatime")
		default:
			s = append(s, "relatime")
		}
	}
	for _, n := range attrNames {
		if a.Attr_clr&n.bit != 0 {
			s = append(s, "-"+n.name)
		}
	}
	if len(s) == 0 {
		return "(none)"
	}
	return strings.Join(s, ",")
}

func propagationName(p int) string {
	switch p {
	case unix.MS_PRIVATE:
		return "private"
	case unix.MS_SLAVE:
		return "slave"
	case unix.MS_SHARED:
		return "shared"
	case unix.MS_UNBINDABLE:
		return "unbindable"
	}
	return fmt.Sprintf("propagation(%#x)", p)
}
