package rootfs

import (
	"errors"
	"fmt"
	"io"
	"os"

	"golang.org/x/sys/unix"

	"github.com/containerfd/containerfd/libcontainerfd/pathrs"
)

// copyUp fills mnt, a new detached tmpfs, with a copy of what the directory
// at target inside root holds, before the tmpfs is attached there: the OCI
// mount option "tmpcopyup" (a runc/crun extension; podman puts it on the
// tmpfs mounts of --read-only and --tmpfs, so that /tmp, /run, … keep the
// image's contents). Nothing is copied when target does not exist yet.
//
// Every path is resolved from fds: target inside root with pathrs, and each
// entry relative to its parent's fd, never following a symlink (symlinks are
// copied as symlinks). Regular files, directories, symlinks, device nodes,
// fifos and sockets are copied with their owner and mode (setuid and setgid
// bits too); times and extended attributes are not. The tmpfs must be
// writable (a read-only tmpfs with tmpcopyup fails with EROFS).
func copyUp(root int, target string, mnt int) error {
	src, err := pathrs.OpenInRoot(root, target, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if errors.Is(err, unix.ENOENT) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("tmpcopyup %s: %w", target, err)
	}
	defer unix.Close(src)
	if err := copyDir(src, mnt, target); err != nil {
		return fmt.Errorf("tmpcopyup %s: %w", target, err)
	}
	return nil
}

// copyDir copies the entries of the directory src into the directory dst;
// at names src in errors.
func copyDir(src, dst int, at string) error {
	dup, err := unix.Dup(src)
	if err != nil {
		return err
	}
	// Readdirnames on a dup: closing d must not close src, and src's
	// offset is not used by anything else.
	d := os.NewFile(uintptr(dup), at)
	names, err := d.Readdirnames(-1)
	d.Close()
	if err != nil {
		return fmt.Errorf("read %s: %w", at, err)
	}
	for _, name := range names {
		if err := copyEntry(src, dst, name, at+"/"+name); err != nil {
			return err
		}
	}
	return nil
}

// copyEntry copies src/name to dst/name; path names it in errors.
func copyEntry(src, dst int, name, path string) error {
	var st unix.Stat_t
	if err := unix.Fstatat(src, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("stat %s: %w", path, err)
	}
	mode := st.Mode & 0o7777
	uid, gid := int(st.Uid), int(st.Gid)
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		if err := unix.Mkdirat(dst, name, 0o700); err != nil {
			return fmt.Errorf("mkdir %s: %w", path, err)
		}
		in, err := unix.Openat(src, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("open %s: %w", path, err)
		}
		defer unix.Close(in)
		out, err := unix.Openat(dst, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("open the copy of %s: %w", path, err)
		}
		defer unix.Close(out)
		if err := copyDir(in, out, path); err != nil {
			return err
		}
		return setOwnerMode(out, uid, gid, mode, path)
	case unix.S_IFREG:
		// O_NONBLOCK: should the entry have become a fifo since the
		// stat, the open must not hang; it must still be a regular file.
		in, err := unix.Openat(src, name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("open %s: %w", path, err)
		}
		inf := os.NewFile(uintptr(in), path)
		defer inf.Close()
		var ist unix.Stat_t
		if err := unix.Fstat(in, &ist); err != nil || ist.Mode&unix.S_IFMT != unix.S_IFREG {
			return fmt.Errorf("open %s: no longer a regular file (%v)", path, err)
		}
		out, err := unix.Openat(dst, name, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
		if err != nil {
			return fmt.Errorf("create the copy of %s: %w", path, err)
		}
		outf := os.NewFile(uintptr(out), path)
		defer outf.Close()
		if _, err := io.Copy(outf, inf); err != nil {
			return fmt.Errorf("copy %s: %w", path, err)
		}
		return setOwnerMode(out, uid, gid, mode, path)
	case unix.S_IFLNK:
		buf := make([]byte, unix.PathMax)
		n, err := unix.Readlinkat(src, name, buf)
		if err != nil {
			return fmt.Errorf("readlink %s: %w", path, err)
		}
		if err := unix.Symlinkat(string(buf[:n]), dst, name); err != nil {
			return fmt.Errorf("symlink %s: %w", path, err)
		}
		if err := unix.Fchownat(dst, name, uid, gid, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return fmt.Errorf("chown the copy of %s: %w", path, err)
		}
		return nil
	default: // devices, fifos, sockets
		if err := unix.Mknodat(dst, name, st.Mode&unix.S_IFMT|mode, int(st.Rdev)); err != nil {
			return fmt.Errorf("mknod %s: %w", path, err)
		}
		if err := unix.Fchownat(dst, name, uid, gid, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return fmt.Errorf("chown the copy of %s: %w", path, err)
		}
		// chown clears setuid/setgid; the mode goes last.
		if err := unix.Fchmodat(dst, name, mode, 0); err != nil {
			return fmt.Errorf("chmod the copy of %s: %w", path, err)
		}
		return nil
	}
}

// setOwnerMode gives the copy fd its owner, then its mode (chown clears
// setuid and setgid).
func setOwnerMode(fd, uid, gid int, mode uint32, path string) error {
	if err := unix.Fchown(fd, uid, gid); err != nil {
		return fmt.Errorf("chown the copy of %s: %w", path, err)
	}
	if err := unix.Fchmod(fd, mode); err != nil {
		return fmt.Errorf("chmod the copy of %s: %w", path, err)
	}
	return nil
}
