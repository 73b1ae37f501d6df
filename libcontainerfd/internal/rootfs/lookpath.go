package rootfs

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/containerfd/containerfd/libcontainerfd/pathrs"
	"golang.org/x/sys/unix"
)

// defaultPath is the search path when the process's environment has none.
const defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// LookPath finds the program args[0] inside the container root, with the
// process's own PATH from env and its cwd; executable checks a candidate
// (Executable in the caller's root, or ExecutableIn a root fd). Its errors
// use the words callers match on ("no such file or directory",
// "executable file not found in $PATH").
func LookPath(args, env []string, cwd string, executable func(string) error) (string, error) {
	if len(args) == 0 {
		return "", errors.New("process has no args")
	}
	name := args[0]
	if strings.Contains(name, "/") {
		if !filepath.IsAbs(name) {
			if cwd == "" {
				cwd = "/"
			}
			name = filepath.Join(cwd, name)
		}
		if err := executable(name); err != nil {
			return "", fmt.Errorf("exec %q: %w", args[0], err)
		}
		return name, nil
	}
	search := defaultPath
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "PATH="); ok {
			search = v
		}
	}
	for _, dir := range filepath.SplitList(search) {
		if dir == "" {
			dir = "."
		}
		p := filepath.Join(dir, name)
		if executable(p) == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("exec %q: executable file not found in $PATH", name)
}

// Executable checks that path, in the caller's root, is a program.
func Executable(path string) error {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return err
	}
	return executableMode(st.Mode)
}

// ExecutableIn is Executable for a path resolved inside root.
func ExecutableIn(root int, name string) error {
	fd, err := pathrs.OpenInRoot(root, name, unix.O_PATH, 0)
	if err != nil {
		if errors.Is(err, unix.ENOENT) {
			return unix.ENOENT
		}
		return err
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return err
	}
	return executableMode(st.Mode)
}

func executableMode(mode uint32) error {
	if mode&unix.S_IFMT == unix.S_IFDIR {
		return unix.EISDIR
	}
	if mode&0o111 == 0 {
		return unix.EACCES
	}
	return nil
}
