// Package pathrs resolves paths inside a container's root from a file
// descriptor of that root, so that no path, symlink or ".." can reach
// anything outside it, and no check-then-use race can redirect an operation.
//
// Lookups use openat2(2) with RESOLVE_IN_ROOT: the kernel treats the root fd
// as "/" for "..", absolute paths and symlink targets alike. Creating missing
// directories walks the path one component at a time from held directory fds
// (never by re-resolving a string), follows symlinks itself inside the root,
// and opens each directory it creates with RESOLVE_NO_SYMLINKS|RESOLVE_BENEATH
// from its parent, so a symlink swapped in after mkdirat(2) makes the call
// fail instead of being followed (CVE-2021-30465, CVE-2024-45310).
//
// Every fd returned is O_CLOEXEC. Paths are relative to the root; a leading
// "/" is allowed and means the same.
package pathrs

import (
	"errors"
	"fmt"
	"strings"

	"golang.org/x/sys/unix"
)

// maxSymlinks is the kernel's limit on symlinks followed in one lookup.
const maxSymlinks = 40

// maxRetries bounds retries of openat2 calls that fail with EAGAIN (a
// concurrent rename anywhere on the system makes RESOLVE_IN_ROOT lookups
// fail safe) and of create races.
const maxRetries = 32

// testHookAfterMkdir, when set (by tests), runs between mkdirat(2) and the
// open of the directory just created.
var testHookAfterMkdir func(dirfd int, name string)

// OpenInRoot opens path inside root with openat2(2) and
// RESOLVE_IN_ROOT|RESOLVE_NO_MAGICLINKS: "..", absolute paths and symlinks,
// chained or not, all resolve inside root. flags are open(2) flags; O_CLOEXEC
// is always added. mode is used only with O_CREAT or O_TMPFILE.
func OpenInRoot(root int, path string, flags int, mode uint32) (int, error) {
	how := unix.OpenHow{
		Flags:   uint64(flags) | unix.O_CLOEXEC,
		Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS,
	}
	if flags&unix.O_CREAT != 0 || flags&unix.O_TMPFILE == unix.O_TMPFILE {
		how.Mode = uint64(mode)
	}
	fd, err := Openat2(root, path, &how)
	if err != nil {
		return -1, fmt.Errorf("open %s in root: %w", path, err)
	}
	return fd, nil
}

// MkdirAllInRoot makes sure path is a directory inside root, creating each
// missing component with mkdirat(2) (mode, less the umask) relative to its
// parent's fd, and returns an O_PATH|O_DIRECTORY fd of it.
//
// Existing components are resolved inside root: symlinks (also dangling ones,
// whose targets are then created) and ".." are followed but never leave it.
// Symlinks on procfs (magic links) are refused. A component that exists and
// is not a directory is an error that names it and matches unix.ENOTDIR.
func MkdirAllInRoot(root int, path string, mode uint32) (int, error) {
	fd, err := walk(root, path, mode, false)
	if err != nil {
		return -1, fmt.Errorf("mkdir %s in root: %w", path, err)
	}
	return fd, nil
}

// CreateFileInRoot makes sure path is a file inside root: it creates the
// parent directories as MkdirAllInRoot does (mode 0755), then an empty regular file with
// mode (less the umask) unless something that is not a directory is already
// there (an existing file is left as it is, not truncated). It returns an
// O_PATH fd of the file. A symlink as the last component is followed inside
// root, as for the parent directories.
func CreateFileInRoot(root int, path string, mode uint32) (int, error) {
	fd, err := walk(root, path, mode, true)
	if err != nil {
		return -1, fmt.Errorf("create %s in root: %w", path, err)
	}
	return fd, nil
}

// Openat2 is openat2(2), retried on EAGAIN (see maxRetries) and EINTR.
func Openat2(dirfd int, path string, how *unix.OpenHow) (int, error) {
	for i := 0; ; i++ {
		fd, err := unix.Openat2(dirfd, path, how)
		if (err == unix.EAGAIN || err == unix.EINTR) && i < maxRetries {
			continue
		}
		return fd, err
	}
}

// walk resolves path inside root one component at a time, creating missing
// directories; with file set, the last component is created as an empty
// regular file instead and may be any non-directory.
func walk(root int, path string, mode uint32, file bool) (int, error) {
	if path == "" {
		return -1, unix.ENOENT
	}
	// Fast path: everything already there.
	if fd, ok := lookupFast(root, path, file); ok {
		return fd, nil
	}

	w := walker{root: root}
	defer w.closeAll()
	remaining := splitPath(path)
	if file {
		// The last component of the path as written must name something:
		// "a/..", "a/." or "/" cannot be files.
		last := ""
		if len(remaining) > 0 {
			last = remaining[len(remaining)-1]
		}
		if last == "" || last == "." || last == ".." {
			return -1, fmt.Errorf("%q does not name a file: %w", path, unix.EISDIR)
		}
	}
	links := 0
	retries := 0
	for len(remaining) > 0 {
		comp := remaining[0]
		remaining = remaining[1:]
		switch comp {
		case "", ".":
			continue
		case "..":
			w.pop()
			continue
		}
		last := len(remaining) == 0
		name := w.name(comp)

		fd, err := Openat2(w.cur(), comp, &unix.OpenHow{
			Flags:   unix.O_PATH | unix.O_NOFOLLOW | unix.O_CLOEXEC,
			Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS,
		})
		if errors.Is(err, unix.ENOENT) {
			if last && file {
				fd, err := createFile(w.cur(), comp, name, mode)
				if errors.Is(err, unix.EEXIST) {
					// Lost a race with another creator: look again.
					if retries++; retries > maxRetries {
						return -1, fmt.Errorf("%s: keeps changing: %w", name, unix.EAGAIN)
					}
					remaining = append([]string{comp}, remaining...)
					continue
				}
				return fd, err
			}
			dirMode := mode
			if file {
				// The file's mode is the file's; its parents are plain
				// directories.
				dirMode = 0o755
			}
			fd, err := mkdir(w.cur(), comp, name, dirMode)
			if err != nil {
				return -1, err
			}
			w.push(fd, comp)
			continue
		}
		if err != nil {
			return -1, fmt.Errorf("open %s: %w", name, err)
		}

		var st unix.Stat_t
		if err := unix.Fstat(fd, &st); err != nil {
			unix.Close(fd)
			return -1, fmt.Errorf("stat %s: %w", name, err)
		}
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFDIR:
			w.push(fd, comp)
		case unix.S_IFLNK:
			target, err := readSymlink(fd, name)
			unix.Close(fd)
			if err != nil {
				return -1, err
			}
			if links++; links > maxSymlinks {
				return -1, fmt.Errorf("%s: too many levels of symbolic links: %w", name, unix.ELOOP)
			}
			if strings.HasPrefix(target, "/") {
				w.reset()
			}
			remaining = append(splitPath(target), remaining...)
		default:
			if last && file {
				return fd, nil
			}
			unix.Close(fd)
			return -1, fmt.Errorf("%s exists and is not a directory: %w", name, unix.ENOTDIR)
		}
	}
	if file {
		// The path ended in a directory (for instance a symlink to one).
		return -1, fmt.Errorf("%s: %w", w.name(""), unix.EISDIR)
	}
	return w.take()
}

// lookupFast resolves path with a single openat2(2) RESOLVE_IN_ROOT call.
// It reports false when that does not give the final answer (something is
// missing, or is of the wrong type), leaving the work to the walk.
func lookupFast(root int, path string, file bool) (int, bool) {
	flags := uint64(unix.O_PATH | unix.O_CLOEXEC)
	if !file {
		flags |= unix.O_DIRECTORY
	}
	fd, err := Openat2(root, path, &unix.OpenHow{
		Flags:   flags,
		Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS,
	})
	if err != nil {
		return -1, false
	}
	if file {
		var st unix.Stat_t
		if unix.Fstat(fd, &st) != nil || st.Mode&unix.S_IFMT == unix.S_IFDIR {
			unix.Close(fd)
			return -1, false
		}
	}
	return fd, true
}

// mkdir creates comp in dirfd and opens it without following symlinks, so a
// symlink swapped in after mkdirat(2) fails the call.
func mkdir(dirfd int, comp, name string, mode uint32) (int, error) {
	err := unix.Mkdirat(dirfd, comp, mode)
	if err != nil && err != unix.EEXIST {
		return -1, fmt.Errorf("mkdirat %s: %w", name, err)
	}
	if testHookAfterMkdir != nil {
		testHookAfterMkdir(dirfd, comp)
	}
	fd, err := Openat2(dirfd, comp, &unix.OpenHow{
		// No O_NOFOLLOW: a symlink here fails with ELOOP.
		Flags:   unix.O_PATH | unix.O_DIRECTORY | unix.O_CLOEXEC,
		Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS,
	})
	if err != nil {
		return -1, fmt.Errorf("open new directory %s: %w", name, err)
	}
	return fd, nil
}

// createFile creates comp in dirfd as an empty regular file (O_EXCL: it
// fails with EEXIST if anything is there) and returns an O_PATH fd of it,
// checked to be the inode just created.
func createFile(dirfd int, comp, name string, mode uint32) (int, error) {
	wfd, err := Openat2(dirfd, comp, &unix.OpenHow{
		Flags: unix.O_CREAT | unix.O_EXCL | unix.O_WRONLY | unix.O_NOFOLLOW |
			unix.O_NOCTTY | unix.O_NONBLOCK | unix.O_CLOEXEC,
		Mode:    uint64(mode),
		Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS,
	})
	if err == unix.EEXIST {
		return -1, err
	}
	if err != nil {
		return -1, fmt.Errorf("create %s: %w", name, err)
	}
	defer unix.Close(wfd)
	fd, err := Openat2(dirfd, comp, &unix.OpenHow{
		Flags:   unix.O_PATH | unix.O_NOFOLLOW | unix.O_CLOEXEC,
		Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS,
	})
	if err != nil {
		return -1, fmt.Errorf("open new file %s: %w", name, err)
	}
	var a, b unix.Stat_t
	if err := unix.Fstat(wfd, &a); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("stat new file %s: %w", name, err)
	}
	if err := unix.Fstat(fd, &b); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("stat new file %s: %w", name, err)
	}
	if a.Dev != b.Dev || a.Ino != b.Ino {
		unix.Close(fd)
		return -1, fmt.Errorf("new file %s was replaced while being created: %w", name, unix.EAGAIN)
	}
	return fd, nil
}

// readSymlink reads the target of the symlink open (O_PATH|O_NOFOLLOW) as fd.
// Symlinks on procfs are refused: their targets (/proc/self, fd links) say
// nothing about the container's root.
func readSymlink(fd int, name string) (string, error) {
	var sfs unix.Statfs_t
	if err := unix.Fstatfs(fd, &sfs); err != nil {
		return "", fmt.Errorf("statfs %s: %w", name, err)
	}
	if sfs.Type == unix.PROC_SUPER_MAGIC {
		return "", fmt.Errorf("%s: will not follow a symlink on procfs: %w", name, unix.ELOOP)
	}
	buf := make([]byte, 256)
	for {
		n, err := unix.Readlinkat(fd, "", buf)
		if err != nil {
			return "", fmt.Errorf("readlink %s: %w", name, err)
		}
		if n < len(buf) {
			if n == 0 {
				return "", fmt.Errorf("readlink %s: empty symlink: %w", name, unix.ENOENT)
			}
			return string(buf[:n]), nil
		}
		if len(buf) >= unix.PathMax {
			return "", fmt.Errorf("readlink %s: %w", name, unix.ENAMETOOLONG)
		}
		buf = make([]byte, 2*len(buf))
	}
}

// splitPath splits a path into its components; empty ones are kept as ""
// and skipped by the walk.
func splitPath(p string) []string {
	return strings.Split(p, "/")
}

// walker holds the directories from root to the current position of a walk,
// as fds, so ".." goes back to the directory it came from and never above
// root.
type walker struct {
	root  int
	fds   []int
	names []string
}

func (w *walker) cur() int {
	if len(w.fds) == 0 {
		return w.root
	}
	return w.fds[len(w.fds)-1]
}

// name is the path of comp below the current position, relative to root,
// as errors show it.
func (w *walker) name(comp string) string {
	parts := append(append([]string(nil), w.names...), comp)
	s := strings.Join(parts, "/")
	s = strings.TrimSuffix(s, "/")
	if s == "" {
		return "/"
	}
	return s
}

func (w *walker) push(fd int, name string) {
	w.fds = append(w.fds, fd)
	w.names = append(w.names, name)
}

func (w *walker) pop() {
	if n := len(w.fds); n > 0 {
		unix.Close(w.fds[n-1])
		w.fds = w.fds[:n-1]
		w.names = w.names[:n-1]
	}
}

func (w *walker) reset() {
	for len(w.fds) > 0 {
		w.pop()
	}
}

func (w *walker) closeAll() { w.reset() }

// take returns an O_PATH|O_DIRECTORY fd of the current position, which the
// walker no longer owns.
func (w *walker) take() (int, error) {
	if n := len(w.fds); n > 0 {
		fd := w.fds[n-1]
		w.fds = w.fds[:n-1]
		w.names = w.names[:n-1]
		return fd, nil
	}
	fd, err := Openat2(w.root, ".", &unix.OpenHow{
		Flags:   unix.O_PATH | unix.O_DIRECTORY | unix.O_CLOEXEC,
		Resolve: unix.RESOLVE_BENEATH,
	})
	if err != nil {
		return -1, fmt.Errorf("open root: %w", err)
	}
	return fd, nil
}
