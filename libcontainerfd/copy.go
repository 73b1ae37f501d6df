package libcontainerfd

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/containerfd/containerfd/libcontainerfd/idmap"
)

// CopyOut copies src, a path in the running container, to dst, a path on
// the host, as `docker cp` does; CopyIn copies the other way. The rules for
// both:
//
//   - src is resolved from the container's root (CopyOut) with openat2(2)
//     RESOLVE_IN_ROOT|RESOLVE_NO_MAGICLINKS: "..", absolute paths and
//     symlinks on the way cannot leave the root. Its last component is not
//     followed: a symlink is copied as a symlink. A trailing "/" (or a last
//     component "." or "..") names the directory itself.
//   - If dst is an existing directory (symlinks followed, inside the root for
//     the container side), src is copied into it under its own name; with
//     src ending in "/." (or naming "/") its contents are copied into dst.
//     Otherwise src is copied to dst as a new name, whose parent directory
//     must exist. An existing non-directory at dst is replaced (the new entry
//     is written under a temporary name beside it and renamed over it, so a
//     symlink there is replaced, never written through); a directory is
//     never copied over a non-directory. dst ending in "/" must be a
//     directory unless src is one (it is then created).
//   - Directories are copied recursively. Every entry below the top is
//     opened relative to its parent's fd with O_NOFOLLOW and
//     RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS, on both sides, so a symlink swapped
//     into the container while the copy runs makes it fail, never follow.
//     Directories that already exist are merged into and keep their owner
//     and mode.
//   - Regular files, directories, symlinks and fifos are copied with their
//     owner, mode (setuid, setgid and sticky bits too) and access and
//     modification times; sockets are skipped. Device nodes are copied into
//     a container but refused when copying out. Hard links are not kept
//     (each name gets its own copy), nor extended attributes.
//
// Owners are the numeric ids as the container sees them. Without a user
// namespace those are the ids on disk, copied unchanged. In a container with
// a user namespace of its own, CopyIn maps each id through the container's
// /proc/<pid>/uid_map and gid_map (a file the host's uid 0 owns becomes one
// the container's root owns; an id with no mapping is an error naming the
// file), and CopyOut maps the ids on disk back (host 100000 in a container
// mapped 0:100000:65536 gives uid 0 on the host; an id the container cannot
// see becomes the overflow id, 65534, as the container sees it). CopyOut from
// such a container also clears the setuid and setgid bits of non-directories,
// so a container can never hand the host a setuid binary of a host user.
func (c *Container) CopyOut(src, dst string) error {
	ctr, err := c.copySide()
	if err != nil {
		return err
	}
	defer unix.Close(ctr.root)
	cp := &copier{
		src: ctr, dst: hostSide(),
		ids: func(uid, gid uint32) (uint32, uint32, error) {
			u, ok := ctr.uids.ToContainer(uid)
			if !ok {
				u = ctr.overflowUID
			}
			g, ok := ctr.gids.ToContainer(gid)
			if !ok {
				g = ctr.overflowGID
			}
			return u, g, nil
		},
		clearSetid: ctr.userns,
		noDevices:  true,
	}
	if err := cp.run(src, dst); err != nil {
		return fmt.Errorf("cp: %w", err)
	}
	return nil
}

// CopyIn copies src, a path on the host, to dst, a path in the running
// container. See CopyOut for the rules.
func (c *Container) CopyIn(src, dst string) error {
	ctr, err := c.copySide()
	if err != nil {
		return err
	}
	defer unix.Close(ctr.root)
	cp := &copier{
		src: hostSide(), dst: ctr,
		ids: func(uid, gid uint32) (uint32, uint32, error) {
			u, ok := ctr.uids.ToHost(uid)
			if !ok {
				return 0, 0, fmt.Errorf("uid %d has no mapping in the container's user namespace: %w", uid, unix.EOVERFLOW)
			}
			g, ok := ctr.gids.ToHost(gid)
			if !ok {
				return 0, 0, fmt.Errorf("gid %d has no mapping in the container's user namespace: %w", gid, unix.EOVERFLOW)
			}
			return u, g, nil
		},
	}
	if err := cp.run(src, dst); err != nil {
		return fmt.Errorf("cp: %w", err)
	}
	return nil
}

// side is one end of a copy: where its paths resolve from, and how.
type side struct {
	root    int    // dirfd the top-level paths resolve from
	resolve uint64 // openat2 resolve flags for them
	prefix  string // "container ID:" or "host "

	// Container side only.
	uids, gids               idmap.Map
	overflowUID, overflowGID uint32
	userns                   bool
}

// hostSide resolves plain host paths, relative ones from the working
// directory.
func hostSide() *side { return &side{root: unix.AT_FDCWD, prefix: "host "} }

// copySide opens the container's root and reads its id maps, checking that
// init (whose /proc entries they come from) was not replaced meanwhile.
func (c *Container) copySide() (*side, error) {
	root, err := c.openRoot()
	if err != nil {
		return nil, err
	}
	s := &side{
		root:    root,
		resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS,
		prefix:  "container " + c.id + ":",
	}
	fail := func(err error) (*side, error) {
		unix.Close(root)
		return nil, fmt.Errorf("container %s: cp: %w", c.id, err)
	}
	proc := "/proc/" + strconv.Itoa(c.st.Init.Pid)
	if s.uids, err = idmap.Read(proc + "/uid_map"); err != nil {
		return fail(err)
	}
	if s.gids, err = idmap.Read(proc + "/gid_map"); err != nil {
		return fail(err)
	}
	var mine, theirs unix.Stat_t
	if err := unix.Stat("/proc/self/ns/user", &mine); err != nil {
		return fail(err)
	}
	if err := unix.Stat(proc+"/ns/user", &theirs); err != nil {
		return fail(err)
	}
	s.userns = mine.Dev != theirs.Dev || mine.Ino != theirs.Ino
	s.overflowUID = idmap.OverflowUID()
	s.overflowGID = idmap.OverflowGID()
	if !c.initAlive() {
		return fail(ErrNotRunning)
	}
	return s, nil
}

func (s *side) open(path string, flags int) (int, error) {
	return openat2(s.root, path, &unix.OpenHow{
		Flags:   uint64(flags) | unix.O_CLOEXEC,
		Resolve: s.resolve,
	})
}

// openat2 retries on EAGAIN (a rename anywhere on the system makes
// RESOLVE_IN_ROOT lookups fail safe) and EINTR.
func openat2(dirfd int, path string, how *unix.OpenHow) (int, error) {
	for i := 0; ; i++ {
		fd, err := unix.Openat2(dirfd, path, how)
		if (err == unix.EAGAIN || err == unix.EINTR) && i < 32 {
			continue
		}
		return fd, err
	}
}

// beneath opens entries relative to a directory fd: one component, no
// symlink anywhere, never above the directory.
const beneath = unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS

type devIno struct{ dev, ino uint64 }

// copier copies one tree from src to dst.
type copier struct {
	src, dst   *side
	ids        func(uid, gid uint32) (uint32, uint32, error)
	clearSetid bool // clear setuid/setgid on non-directories
	noDevices  bool // refuse device nodes

	made map[devIno]bool // directories created, never copied into themselves
}

func (cp *copier) run(src, dst string) error {
	cp.made = map[devIno]bool{}
	if src == "" {
		return fmt.Errorf("%s: empty path: %w", strings.TrimSpace(cp.src.prefix), unix.ENOENT)
	}
	if dst == "" {
		return fmt.Errorf("%s: empty path: %w", strings.TrimSpace(cp.dst.prefix), unix.ENOENT)
	}

	// The source: a directory fd and the entry in it, not followed.
	srcName, base := ".", ""
	contents := src == "." || strings.HasSuffix(src, "/.")
	trimmed := strings.TrimRight(src, "/")
	dir, last := splitLast(trimmed)
	var srcDir int
	var err error
	if trimmed != src || last == "" || last == "." || last == ".." {
		// The path names a directory itself: follow all of it.
		srcDir, err = cp.src.open(src, unix.O_PATH|unix.O_DIRECTORY)
		if last != "." && last != ".." {
			base = last
		}
	} else {
		srcDir, err = cp.src.open(dir, unix.O_PATH|unix.O_DIRECTORY)
		srcName, base = last, last
	}
	if err != nil {
		return fmt.Errorf("%s%s: %w", cp.src.prefix, src, err)
	}
	defer unix.Close(srcDir)
	var st unix.Stat_t
	if err := unix.Fstatat(srcDir, srcName, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("%s%s: %w", cp.src.prefix, src, err)
	}
	isDir := st.Mode&unix.S_IFMT == unix.S_IFDIR
	if !isDir && contents {
		return fmt.Errorf("%s%s: not a directory: %w", cp.src.prefix, src, unix.ENOTDIR)
	}
	merge := contents || base == ""

	// The destination: an existing directory to copy into, or a new name.
	srcDisp := cp.src.prefix + src
	dstDisp := cp.dst.prefix + dst
	trailing := strings.HasSuffix(dst, "/")
	fd, err := cp.dst.open(dst, unix.O_PATH)
	switch {
	case err == nil:
		var dstSt unix.Stat_t
		if err := unix.Fstat(fd, &dstSt); err != nil {
			unix.Close(fd)
			return fmt.Errorf("%s: %w", dstDisp, err)
		}
		if dstSt.Mode&unix.S_IFMT == unix.S_IFDIR {
			defer unix.Close(fd)
			if merge {
				if !isDir {
					return fmt.Errorf("%s: cannot copy %s over a directory: %w", dstDisp, srcDisp, unix.EISDIR)
				}
				in, err := openat2(srcDir, srcName, &unix.OpenHow{
					Flags: unix.O_RDONLY | unix.O_DIRECTORY | unix.O_NOFOLLOW | unix.O_CLOEXEC, Resolve: beneath})
				if err != nil {
					return fmt.Errorf("%s: %w", srcDisp, err)
				}
				cp.made[devIno{dstSt.Dev, dstSt.Ino}] = true
				return cp.children(in, fd, srcDisp, dstDisp)
			}
			return cp.entry(srcDir, srcName, &st, srcDisp, fd, base, joinDisp(dstDisp, base))
		}
		unix.Close(fd)
		if isDir {
			return fmt.Errorf("%s: not a directory, cannot copy the directory %s over it: %w", dstDisp, srcDisp, unix.ENOTDIR)
		}
		if trailing {
			return fmt.Errorf("%s: not a directory: %w", dstDisp, unix.ENOTDIR)
		}
	case errors.Is(err, unix.ENOENT):
		if trailing && !isDir {
			return fmt.Errorf("%s: no such directory: %w", dstDisp, err)
		}
	default:
		return fmt.Errorf("%s: %w", dstDisp, err)
	}
	pdir, name := splitLast(strings.TrimRight(dst, "/"))
	if name == "" || name == "." || name == ".." {
		return fmt.Errorf("%s: %w", dstDisp, unix.ENOENT)
	}
	parent, err := cp.dst.open(pdir, unix.O_PATH|unix.O_DIRECTORY)
	if err != nil {
		return fmt.Errorf("%s: parent directory: %w", dstDisp, err)
	}
	defer unix.Close(parent)
	return cp.entry(srcDir, srcName, &st, srcDisp, parent, name, dstDisp)
}

// splitLast splits p at its last "/": "a/b" is "a/", "b"; "b" is ".", "b";
// "/b" is "/", "b".
func splitLast(p string) (string, string) {
	i := strings.LastIndex(p, "/")
	if i < 0 {
		return ".", p
	}
	return p[:i+1], p[i+1:]
}

func joinDisp(dir, name string) string {
	if name == "" {
		return dir
	}
	return strings.TrimRight(dir, "/") + "/" + name
}

// entry copies srcName in srcDir (st is its lstat) to dstName in dstDir.
func (cp *copier) entry(srcDir int, srcName string, st *unix.Stat_t, srcDisp string, dstDir int, dstName, dstDisp string) error {
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFREG:
		return cp.file(srcDir, srcName, srcDisp, dstDir, dstName, dstDisp)
	case unix.S_IFDIR:
		return cp.dir(srcDir, srcName, srcDisp, dstDir, dstName, dstDisp)
	case unix.S_IFLNK:
		return cp.symlink(srcDir, srcName, st, srcDisp, dstDir, dstName, dstDisp)
	case unix.S_IFSOCK:
		return nil
	case unix.S_IFCHR, unix.S_IFBLK:
		if cp.noDevices {
			return fmt.Errorf("%s: a device node; not copied out of a container: %w", srcDisp, unix.EPERM)
		}
		fallthrough
	case unix.S_IFIFO:
		return cp.replace(dstDir, dstName, dstDisp, st, func(tmp string) error {
			return unix.Mknodat(dstDir, tmp, st.Mode&unix.S_IFMT|0o600, int(st.Rdev))
		})
	default:
		return fmt.Errorf("%s: unknown file type %#o", srcDisp, st.Mode&unix.S_IFMT)
	}
}

// owner maps st's owner and mode for the destination.
func (cp *copier) owner(st *unix.Stat_t, disp string) (uid, gid, mode uint32, err error) {
	uid, gid, err = cp.ids(st.Uid, st.Gid)
	if err != nil {
		return 0, 0, 0, fmt.Errorf("%s: %w", disp, err)
	}
	mode = st.Mode & 0o7777
	if cp.clearSetid && st.Mode&unix.S_IFMT != unix.S_IFDIR {
		mode &^= unix.S_ISUID | unix.S_ISGID
	}
	return uid, gid, mode, nil
}

// replace makes a new entry with mk under a temporary name in dstDir, sets
// its owner, mode and times from st, and renames it over dstName.
func (cp *copier) replace(dstDir int, dstName, dstDisp string, st *unix.Stat_t, mk func(tmp string) error) error {
	uid, gid, mode, err := cp.owner(st, dstDisp)
	if err != nil {
		return err
	}
	var tmp string
	for i := 0; ; i++ {
		tmp = ".cfdcp-" + randHex(8)
		err = mk(tmp)
		if err != unix.EEXIST || i > maxCreateRetries {
			break
		}
	}
	if err != nil {
		return fmt.Errorf("%s: create: %w", dstDisp, err)
	}
	err = func() error {
		if st.Mode&unix.S_IFMT == unix.S_IFLNK {
			if err := unix.Fchownat(dstDir, tmp, int(uid), int(gid), unix.AT_SYMLINK_NOFOLLOW); err != nil {
				return fmt.Errorf("chown: %w", err)
			}
			return unix.UtimesNanoAt(dstDir, tmp, []unix.Timespec{st.Atim, st.Mtim}, unix.AT_SYMLINK_NOFOLLOW)
		}
		fd, err := openat2(dstDir, tmp, &unix.OpenHow{
			Flags: unix.O_PATH | unix.O_NOFOLLOW | unix.O_CLOEXEC, Resolve: beneath})
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		return cp.setAttrs(fd, uid, gid, mode, st)
	}()
	if err == nil {
		err = unix.Renameat(dstDir, tmp, dstDir, dstName)
	}
	if err != nil {
		unix.Unlinkat(dstDir, tmp, 0)
		return fmt.Errorf("%s: %w", dstDisp, err)
	}
	return nil
}

// setAttrs sets owner, then mode (chown clears setuid), then times, on fd
// (O_PATH is enough: every call goes through AT_EMPTY_PATH or /proc).
func (cp *copier) setAttrs(fd int, uid, gid, mode uint32, st *unix.Stat_t) error {
	if err := unix.Fchownat(fd, "", int(uid), int(gid), unix.AT_EMPTY_PATH); err != nil {
		return fmt.Errorf("chown: %w", err)
	}
	// fchmod(2) refuses O_PATH fds; chmod through our own fd's proc link.
	if err := unix.Chmod("/proc/self/fd/"+strconv.Itoa(fd), mode); err != nil {
		return fmt.Errorf("chmod: %w", err)
	}
	if err := unix.UtimesNanoAt(fd, "", []unix.Timespec{st.Atim, st.Mtim}, unix.AT_EMPTY_PATH); err != nil {
		return fmt.Errorf("set times: %w", err)
	}
	return nil
}

const maxCreateRetries = 16

func (cp *copier) file(srcDir int, srcName, srcDisp string, dstDir int, dstName, dstDisp string) error {
	in, err := openat2(srcDir, srcName, &unix.OpenHow{
		Flags:   unix.O_RDONLY | unix.O_NOFOLLOW | unix.O_NONBLOCK | unix.O_NOCTTY | unix.O_CLOEXEC,
		Resolve: beneath,
	})
	if err != nil {
		return fmt.Errorf("%s: open: %w", srcDisp, err)
	}
	inf := os.NewFile(uintptr(in), srcDisp)
	defer inf.Close()
	var st unix.Stat_t
	if err := unix.Fstat(in, &st); err != nil {
		return fmt.Errorf("%s: %w", srcDisp, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return fmt.Errorf("%s: changed while being copied: %w", srcDisp, unix.EAGAIN)
	}
	return cp.replace(dstDir, dstName, dstDisp, &st, func(tmp string) error {
		out, err := openat2(dstDir, tmp, &unix.OpenHow{
			Flags: unix.O_CREAT | unix.O_EXCL | unix.O_WRONLY | unix.O_NOFOLLOW | unix.O_CLOEXEC,
			Mode:  0o600, Resolve: beneath,
		})
		if err != nil {
			return err
		}
		outf := os.NewFile(uintptr(out), dstDisp)
		_, err = io.Copy(outf, inf) // copy_file_range where it can
		if cerr := outf.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			unix.Unlinkat(dstDir, tmp, 0)
			return fmt.Errorf("copying %s: %w", srcDisp, err)
		}
		return nil
	})
}

func (cp *copier) symlink(srcDir int, srcName string, st *unix.Stat_t, srcDisp string, dstDir int, dstName, dstDisp string) error {
	buf := make([]byte, 256)
	var target string
	for {
		n, err := unix.Readlinkat(srcDir, srcName, buf)
		if err != nil {
			return fmt.Errorf("%s: readlink: %w", srcDisp, err)
		}
		if n < len(buf) {
			target = string(buf[:n])
			break
		}
		if len(buf) >= unix.PathMax {
			return fmt.Errorf("%s: readlink: %w", srcDisp, unix.ENAMETOOLONG)
		}
		buf = make([]byte, 2*len(buf))
	}
	return cp.replace(dstDir, dstName, dstDisp, st, func(tmp string) error {
		return unix.Symlinkat(target, dstDir, tmp)
	})
}

func (cp *copier) dir(srcDir int, srcName, srcDisp string, dstDir int, dstName, dstDisp string) error {
	in, err := openat2(srcDir, srcName, &unix.OpenHow{
		Flags: unix.O_RDONLY | unix.O_DIRECTORY | unix.O_NOFOLLOW | unix.O_CLOEXEC, Resolve: beneath})
	if err != nil {
		return fmt.Errorf("%s: open: %w", srcDisp, err)
	}
	var st unix.Stat_t
	if err := unix.Fstat(in, &st); err != nil {
		unix.Close(in)
		return fmt.Errorf("%s: %w", srcDisp, err)
	}
	if cp.made[devIno{st.Dev, st.Ino}] {
		// The copy itself, met again inside its source.
		unix.Close(in)
		return nil
	}
	uid, gid, mode, err := cp.owner(&st, dstDisp)
	if err != nil {
		unix.Close(in)
		return err
	}
	created := true
	if err := unix.Mkdirat(dstDir, dstName, 0o700); err == unix.EEXIST {
		created = false
	} else if err != nil {
		unix.Close(in)
		return fmt.Errorf("%s: mkdir: %w", dstDisp, err)
	}
	out, err := openat2(dstDir, dstName, &unix.OpenHow{
		Flags: unix.O_PATH | unix.O_DIRECTORY | unix.O_NOFOLLOW | unix.O_CLOEXEC, Resolve: beneath})
	if err != nil {
		unix.Close(in)
		if errors.Is(err, unix.ENOTDIR) || errors.Is(err, unix.ELOOP) {
			return fmt.Errorf("%s: exists and is not a directory: %w", dstDisp, unix.ENOTDIR)
		}
		return fmt.Errorf("%s: open: %w", dstDisp, err)
	}
	defer unix.Close(out)
	var ost unix.Stat_t
	if err := unix.Fstat(out, &ost); err != nil {
		unix.Close(in)
		return fmt.Errorf("%s: %w", dstDisp, err)
	}
	cp.made[devIno{ost.Dev, ost.Ino}] = true
	if err := cp.children(in, out, srcDisp, dstDisp); err != nil {
		return err
	}
	if created {
		if err := cp.setAttrs(out, uid, gid, mode, &st); err != nil {
			return fmt.Errorf("%s: %w", dstDisp, err)
		}
	}
	return nil
}

// children copies what the directory in holds (and closes in) into out.
func (cp *copier) children(in, out int, srcDisp, dstDisp string) error {
	f := os.NewFile(uintptr(in), srcDisp)
	defer f.Close()
	for {
		names, err := f.Readdirnames(256)
		for _, name := range names {
			var st unix.Stat_t
			if err := unix.Fstatat(in, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
				if errors.Is(err, unix.ENOENT) {
					continue // gone meanwhile
				}
				return fmt.Errorf("%s: %w", joinDisp(srcDisp, name), err)
			}
			if err := cp.entry(in, name, &st, joinDisp(srcDisp, name), out, name, joinDisp(dstDisp, name)); err != nil {
				return err
			}
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%s: read directory: %w", srcDisp, err)
		}
	}
}
