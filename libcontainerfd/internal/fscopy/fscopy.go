// Package fscopy copies trees of files between directory fds, for
// Container.CopyIn and CopyOut (`containerfd cp`) and for the "tmpcopyup"
// mount option. One walk serves both; Rules hold what they differ in.
//
// Every entry below the top is opened relative to its parent's fd with
// O_NOFOLLOW and RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS, so a symlink swapped
// in while the copy runs makes it fail, never follow; symlinks are copied
// as symlinks. A new non-directory is made under a temporary name beside
// its destination and renamed over it, so what was there (a symlink too)
// is replaced, never written through. A directory that exists is merged
// into and keeps its owner and mode; a new one gets its owner and mode
// after its contents. Owner goes before mode (chown clears setuid). Hard
// links are not kept (each name gets its own copy), nor extended
// attributes; an entry gone between the directory read and its copy is
// passed over.
package fscopy

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/containerfd/containerfd/libcontainerfd/internal/randhex"
	"github.com/containerfd/containerfd/libcontainerfd/pathrs"
)

// Rules say what a copy keeps, maps and refuses.
type Rules struct {
	// IDs maps an entry's owner to the copy's; nil keeps it.
	IDs func(uid, gid uint32) (uint32, uint32, error)
	// ClearSetid clears the setuid and setgid bits of non-directories.
	ClearSetid bool
	// NoDevices refuses device nodes; otherwise they are copied.
	NoDevices bool
	// Sockets copies sockets as nodes; otherwise they are passed over.
	Sockets bool
	// Times copies access and modification times.
	Times bool
}

// Side is one end of a Copy: the directory fd its paths resolve from, and
// how.
type Side struct {
	Root    int    // unix.AT_FDCWD for plain paths
	Resolve uint64 // openat2(2) RESOLVE_* flags for the paths
	Prefix  string // names the side in errors: "container ID:", "host "
}

// Host resolves plain host paths, relative ones from the working directory.
func Host() Side { return Side{Root: unix.AT_FDCWD, Prefix: "host "} }

func (s Side) open(path string, flags int) (int, error) {
	return pathrs.Openat2(s.Root, path, &unix.OpenHow{
		Flags:   uint64(flags) | unix.O_CLOEXEC,
		Resolve: s.Resolve,
	})
}

// Copy copies srcPath on src to dstPath on dst, as `docker cp` does (the
// path rules are Container.CopyOut's): the last component of srcPath is
// not followed, and a trailing "/" (or a last component "." or "..")
// names the directory itself. If dstPath is an existing directory,
// srcPath is copied into it under its own name; with srcPath ending in
// "/." (or naming "/") its contents are copied into it. Otherwise srcPath
// is copied to dstPath as a new name, whose parent directory must exist.
// A directory is never copied over a non-directory; dstPath ending in "/"
// must be a directory unless srcPath is one (it is then created).
func Copy(src Side, srcPath string, dst Side, dstPath string, r Rules) error {
	cp := &copier{Rules: r, made: map[devIno]bool{}}
	return cp.run(src, srcPath, dst, dstPath)
}

// CopyUp fills mnt, a new detached tmpfs, with a copy of what the directory
// at target inside root holds, before the tmpfs is attached there: the OCI
// mount option "tmpcopyup" (a runc/crun extension; podman puts it on the
// tmpfs mounts of --read-only and --tmpfs, so that /tmp, /run, … keep the
// image's contents). Nothing is copied when target does not exist yet.
//
// target is resolved inside root with pathrs. Regular files, directories,
// symlinks, device nodes, fifos and sockets are copied with their owner and
// mode (setuid and setgid bits too); times are not. The tmpfs must be
// writable (a read-only tmpfs with tmpcopyup fails with EROFS).
func CopyUp(root int, target string, mnt int) error {
	src, err := pathrs.OpenInRoot(root, target, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if errors.Is(err, unix.ENOENT) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("tmpcopyup %s: %w", target, err)
	}
	cp := &copier{Rules: Rules{Sockets: true}, made: map[devIno]bool{}}
	if err := cp.children(src, mnt, target, target); err != nil {
		return fmt.Errorf("tmpcopyup %s: %w", target, err)
	}
	return nil
}

// beneath opens entries relative to a directory fd: one component, no
// symlink anywhere, never above the directory.
const beneath = unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS

type devIno struct{ dev, ino uint64 }

// copier copies one tree.
type copier struct {
	Rules
	made map[devIno]bool // directories created, never copied into themselves
}

func (cp *copier) run(srcSide Side, src string, dstSide Side, dst string) error {
	if src == "" {
		return fmt.Errorf("%s: empty path: %w", strings.TrimSpace(srcSide.Prefix), unix.ENOENT)
	}
	if dst == "" {
		return fmt.Errorf("%s: empty path: %w", strings.TrimSpace(dstSide.Prefix), unix.ENOENT)
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
		srcDir, err = srcSide.open(src, unix.O_PATH|unix.O_DIRECTORY)
		if last != "." && last != ".." {
			base = last
		}
	} else {
		srcDir, err = srcSide.open(dir, unix.O_PATH|unix.O_DIRECTORY)
		srcName, base = last, last
	}
	if err != nil {
		return fmt.Errorf("%s%s: %w", srcSide.Prefix, src, err)
	}
	defer unix.Close(srcDir)
	var st unix.Stat_t
	if err := unix.Fstatat(srcDir, srcName, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("%s%s: %w", srcSide.Prefix, src, err)
	}
	isDir := st.Mode&unix.S_IFMT == unix.S_IFDIR
	if !isDir && contents {
		return fmt.Errorf("%s%s: not a directory: %w", srcSide.Prefix, src, unix.ENOTDIR)
	}
	merge := contents || base == ""

	// The destination: an existing directory to copy into, or a new name.
	srcDisp := srcSide.Prefix + src
	dstDisp := dstSide.Prefix + dst
	trailing := strings.HasSuffix(dst, "/")
	fd, err := dstSide.open(dst, unix.O_PATH)
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
				in, err := pathrs.Openat2(srcDir, srcName, &unix.OpenHow{
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
	parent, err := dstSide.open(pdir, unix.O_PATH|unix.O_DIRECTORY)
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
		if !cp.Sockets {
			return nil
		}
		return cp.node(st, dstDir, dstName, dstDisp)
	case unix.S_IFCHR, unix.S_IFBLK:
		if cp.NoDevices {
			return fmt.Errorf("%s: a device node; not copied out of a container: %w", srcDisp, unix.EPERM)
		}
		fallthrough
	case unix.S_IFIFO:
		return cp.node(st, dstDir, dstName, dstDisp)
	default:
		return fmt.Errorf("%s: unknown file type %#o", srcDisp, st.Mode&unix.S_IFMT)
	}
}

// node copies a device node, fifo or socket.
func (cp *copier) node(st *unix.Stat_t, dstDir int, dstName, dstDisp string) error {
	return cp.replace(dstDir, dstName, dstDisp, st, func(tmp string) error {
		return unix.Mknodat(dstDir, tmp, st.Mode&unix.S_IFMT|0o600, int(st.Rdev))
	})
}

// owner maps st's owner and mode for the destination.
func (cp *copier) owner(st *unix.Stat_t, disp string) (uid, gid, mode uint32, err error) {
	uid, gid = st.Uid, st.Gid
	if cp.IDs != nil {
		if uid, gid, err = cp.IDs(uid, gid); err != nil {
			return 0, 0, 0, fmt.Errorf("%s: %w", disp, err)
		}
	}
	mode = st.Mode & 0o7777
	if cp.ClearSetid && st.Mode&unix.S_IFMT != unix.S_IFDIR {
		mode &^= unix.S_ISUID | unix.S_ISGID
	}
	return uid, gid, mode, nil
}

// replace makes a new entry with mk under a temporary name in dstDir, sets
// its owner, mode and times (as the rules say) from st, and renames it
// over dstName.
func (cp *copier) replace(dstDir int, dstName, dstDisp string, st *unix.Stat_t, mk func(tmp string) error) error {
	uid, gid, mode, err := cp.owner(st, dstDisp)
	if err != nil {
		return err
	}
	var tmp string
	for i := 0; ; i++ {
		tmp = ".cfdcp-" + randhex.String(8)
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
			if !cp.Times {
				return nil
			}
			return unix.UtimesNanoAt(dstDir, tmp, []unix.Timespec{st.Atim, st.Mtim}, unix.AT_SYMLINK_NOFOLLOW)
		}
		fd, err := pathrs.Openat2(dstDir, tmp, &unix.OpenHow{
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

// setAttrs sets owner, then mode (chown clears setuid), then times if the
// rules keep them, on fd (O_PATH is enough: every call goes through
// AT_EMPTY_PATH or /proc).
func (cp *copier) setAttrs(fd int, uid, gid, mode uint32, st *unix.Stat_t) error {
	if err := unix.Fchownat(fd, "", int(uid), int(gid), unix.AT_EMPTY_PATH); err != nil {
		return fmt.Errorf("chown: %w", err)
	}
	// fchmod(2) refuses O_PATH fds; chmod through our own fd's proc link.
	if err := unix.Chmod("/proc/self/fd/"+strconv.Itoa(fd), mode); err != nil {
		return fmt.Errorf("chmod: %w", err)
	}
	if !cp.Times {
		return nil
	}
	if err := unix.UtimesNanoAt(fd, "", []unix.Timespec{st.Atim, st.Mtim}, unix.AT_EMPTY_PATH); err != nil {
		return fmt.Errorf("set times: %w", err)
	}
	return nil
}

const maxCreateRetries = 16

func (cp *copier) file(srcDir int, srcName, srcDisp string, dstDir int, dstName, dstDisp string) error {
	in, err := pathrs.Openat2(srcDir, srcName, &unix.OpenHow{
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
		out, err := pathrs.Openat2(dstDir, tmp, &unix.OpenHow{
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
	in, err := pathrs.Openat2(srcDir, srcName, &unix.OpenHow{
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
	out, err := pathrs.Openat2(dstDir, dstName, &unix.OpenHow{
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
