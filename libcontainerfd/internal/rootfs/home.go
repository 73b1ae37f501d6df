package rootfs

import (
	"bufio"
	"os"
	"strconv"
	"strings"

	"github.com/containerfd/containerfd/libcontainerfd/pathrs"
	"golang.org/x/sys/unix"
)

// defaultHome is HOME for a user /etc/passwd does not name, as runc sets it.
const defaultHome = "/"

// Home is the home directory of uid: the first entry for it in the
// container's /etc/passwd, resolved inside root (the file and every link on
// the way stay in it), or "/" where there is none.
func Home(root int, uid uint32) string {
	fd, err := pathrs.OpenInRoot(root, "/etc/passwd", unix.O_RDONLY|unix.O_NOCTTY|unix.O_NONBLOCK, 0)
	if err != nil {
		return defaultHome
	}
	f := os.NewFile(uintptr(fd), "/etc/passwd")
	defer f.Close()
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFREG {
		return defaultHome // a FIFO or a device would not end
	}
	want := strconv.FormatUint(uint64(uid), 10)
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// name:password:uid:gid:gecos:home:shell
		fields := strings.Split(sc.Text(), ":")
		if len(fields) >= 6 && fields[2] == want {
			return fields[5]
		}
	}
	return defaultHome
}

// WithHome is env with HOME added, when env has none (NeedsHome), from
// uid's entry in root's /etc/passwd (Home), as runc does.
func WithHome(env []string, root int, uid uint32) []string {
	env, needs := NeedsHome(env)
	if !needs {
		return env
	}
	return append(env, "HOME="+Home(root, uid))
}

// NeedsHome reports whether env takes HOME from /etc/passwd: it has none,
// or an empty one, which it returns env without. A nil env needs none:
// runc leaves a process that has no environment without one.
func NeedsHome(env []string) (rest []string, needs bool) {
	if env == nil {
		return nil, false
	}
	rest = make([]string, 0, len(env)+1)
	for _, kv := range env {
		switch {
		case kv == "HOME=":
			continue
		case strings.HasPrefix(kv, "HOME="):
			return env, false
		}
		rest = append(rest, kv)
	}
	return rest, true
}
