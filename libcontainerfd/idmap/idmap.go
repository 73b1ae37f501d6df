// Package idmap handles the id maps of user namespaces: the ranges the
// runtime-spec gives (linux.uidMappings, a mount's uidMappings), their text
// in /proc/<pid>/uid_map and gid_map, lookups both ways, and writing them
// for a caller without privilege.
package idmap

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"

	"github.com/opencontainers/runtime-spec/specs-go"

	"github.com/containerfd/containerfd/libcontainerfd/internal/procfs"
)

// Map is a uid or gid map. Each range, the runtime-spec's own type, maps
// Size ids from ContainerID on inside the namespace to the ids from HostID
// on outside it.
type Map []specs.LinuxIDMapping

// String is the map as /proc/<pid>/uid_map takes it: a line per range.
func (m Map) String() string {
	var sb strings.Builder
	for _, r := range m {
		fmt.Fprintf(&sb, "%d %d %d\n", r.ContainerID, r.HostID, r.Size)
	}
	return sb.String()
}

// ToHost maps an id inside the namespace to the id outside; false if no
// range holds it.
func (m Map) ToHost(id uint32) (uint32, bool) {
	for _, r := range m {
		if id >= r.ContainerID && id-r.ContainerID < r.Size {
			return r.HostID + (id - r.ContainerID), true
		}
	}
	return 0, false
}

// ToContainer maps an id outside the namespace to the id inside; false if
// no range holds it.
func (m Map) ToContainer(id uint32) (uint32, bool) {
	for _, r := range m {
		if id >= r.HostID && id-r.HostID < r.Size {
			return r.ContainerID + (id - r.HostID), true
		}
	}
	return 0, false
}

// Read reads /proc/<pid>/uid_map or gid_map. Its ids outside are those of
// the reader's user namespace.
func Read(path string) (Map, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var m Map
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) != 3 {
			return nil, fmt.Errorf("%s: bad line %q", path, sc.Text())
		}
		var v [3]uint32
		for i, s := range fs {
			n, err := strconv.ParseUint(s, 10, 32)
			if err != nil {
				return nil, fmt.Errorf("%s: bad line %q", path, sc.Text())
			}
			v[i] = uint32(n)
		}
		m = append(m, specs.LinuxIDMapping{ContainerID: v[0], HostID: v[1], Size: v[2]})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return m, nil
}

// OverflowUID and OverflowGID are the ids a user namespace shows for an
// id it does not map (/proc/sys/kernel/overflowuid, overflowgid; 65534
// when unreadable).
func OverflowUID() uint32 { return overflow("/proc/sys/kernel/overflowuid") }
func OverflowGID() uint32 { return overflow("/proc/sys/kernel/overflowgid") }

func overflow(path string) uint32 {
	b, err := os.ReadFile(path)
	if err == nil {
		if n, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 32); err == nil {
			return uint32(n)
		}
	}
	return 65534
}

// WriteUnprivileged writes the maps of the process pid, a child in a new
// user namespace, as a caller without privilege must: a single mapping of
// the caller's own id directly (with setgroups denied, as the kernel wants
// of an unprivileged writer of gid_map), anything more with the setuid
// helpers newuidmap and newgidmap (Debian's uidmap package), which check
// the ranges against /etc/subuid and /etc/subgid.
func WriteUnprivileged(pid int, uids, gids Map) error {
	self := func(m Map, id int) bool {
		return len(m) == 1 && m[0].Size == 1 && int(m[0].HostID) == id
	}
	proc := "/proc/" + strconv.Itoa(pid)
	if self(uids, os.Geteuid()) {
		if err := procfs.WriteFile(proc+"/uid_map", []byte(uids.String())); err != nil {
			return fmt.Errorf("rootless: uid map: %w", err)
		}
	} else if err := helper("newuidmap", pid, uids); err != nil {
		return err
	}
	if self(gids, os.Getegid()) {
		if err := procfs.WriteFile(proc+"/setgroups", []byte("deny")); err != nil {
			return fmt.Errorf("rootless: gid map: %w", err)
		}
		if err := procfs.WriteFile(proc+"/gid_map", []byte(gids.String())); err != nil {
			return fmt.Errorf("rootless: gid map: %w", err)
		}
		return nil
	}
	return helper("newgidmap", pid, gids)
}

// helper runs newuidmap or newgidmap: name pid (inside outside count)...
func helper(name string, pid int, m Map) error {
	path, err := exec.LookPath(name)
	if err != nil {
		return fmt.Errorf("rootless: mapping more than the caller's own id needs %s (Debian: apt-get install uidmap) and a range in /etc/sub%cid: %w", name, name[3], err)
	}
	args := []string{strconv.Itoa(pid)}
	for _, r := range m {
		args = append(args, strconv.FormatUint(uint64(r.ContainerID), 10), strconv.FormatUint(uint64(r.HostID), 10), strconv.FormatUint(uint64(r.Size), 10))
	}
	out, err := exec.Command(path, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("rootless: %s %v: %w: %s", name, args, err, strings.TrimRight(string(out), "\n "))
	}
	return nil
}

// InUserNS reports whether we are in a user namespace other than the
// initial one, whose uid_map maps every id to itself.
func InUserNS() bool {
	b, err := os.ReadFile("/proc/self/uid_map")
	if err != nil {
		return false
	}
	f := strings.Fields(string(b))
	return !(len(f) == 3 && f[0] == "0" && f[1] == "0" && f[2] == "4294967295")
}
