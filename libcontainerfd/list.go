package libcontainerfd

import (
	"cmp"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"syscall"
	"time"

	"github.com/containerfd/containerfd/libcontainerfd/cgroups"
	"github.com/containerfd/containerfd/libcontainerfd/internal/procid"
	"github.com/containerfd/containerfd/libcontainerfd/registry"
	"golang.org/x/sys/unix"
)

// Gone is the status of a container whose state directory was removed under
// it (its root deleted, say): it cannot be started, stopped or deleted by
// its root and id any more, but its processes (Listed.Pid) and cgroup may
// be left; DestroyLost removes them.
const Gone Status = "gone"

// Listed is one container of the host-wide list, as the registry, its
// state and the kernel say now.
type Listed struct {
	ID      string
	Root    string // the state root
	Owner   int    // uid of the creator
	Status  Status
	Pid     int // init, while it runs
	Created time.Time
	Cgroup  cgroups.Paths
	// Namespaces maps the name of each of init's namespaces (as in
	// /proc/<pid>/ns) to its inode, while init runs.
	Namespaces map[string]uint64
	// HolderPid is the KillOnClose holder, while it lives.
	HolderPid int
	Labels    map[string]string

	sharedPidNS bool
}

// ListAll lists every container on the host that the caller may see: root
// sees all, a user its own. Each registry entry is checked against the
// container's state and the kernel: a state directory removed makes it
// Gone, an init that exited or whose pid was reused Stopped. An entry that
// names nothing left (no state, no init, no cgroup) is removed.
func ListAll() ([]Listed, error) {
	es, err := registry.All()
	if err != nil {
		return nil, err
	}
	var out []Listed
	for _, e := range es {
		if l, ok := check(e); ok {
			out = append(out, l)
		}
	}
	slices.SortFunc(out, func(a, b Listed) int {
		return cmp.Or(cmp.Compare(a.Root, b.Root), cmp.Compare(a.ID, b.ID))
	})
	return out, nil
}

// check validates e, telling whether it is to be listed.
func check(e *registry.Entry) (Listed, bool) {
	l := Listed{ID: e.ID, Root: e.Root, Owner: e.Owner, Created: e.Created, Cgroup: e.Cgroup, sharedPidNS: e.SharedPidNS}
	if e.Dir != filepath.Join(e.Root, e.ID) {
		return l, false // not an entry we wrote
	}
	if fi, err := os.Lstat(e.Dir); err == nil && (!fi.IsDir() || int(fi.Sys().(*syscall.Stat_t).Uid) != e.Owner) {
		return l, false // not the owner's container (or a link to another's): the entry lies
	}
	c, err := Load(e.Root, e.ID)
	switch {
	case errors.Is(err, ErrNotExist):
		return checkLost(e)
	case err != nil:
		l.Status = "unknown"
		return l, true
	}
	defer c.Close()
	if !c.Created().Equal(e.Created) {
		return checkLost(e) // another container took the root and id
	}
	if l.Status, err = c.Status(); err != nil {
		l.Status = "unknown"
	}
	l.Cgroup, l.Labels, l.sharedPidNS = c.st.Cgroup, c.st.Labels, c.st.SharedPidNS
	if l.Status != Stopped && l.Status != Creating && c.initAlive() {
		l.Pid = c.st.Init.Pid
		l.Namespaces = namespaces(c.initPidfd, l.Pid)
	}
	l.HolderPid = alive(e.Holder)
	return l, true
}

// checkLost is check of an entry whose state is gone.
func checkLost(e *registry.Entry) (Listed, bool) {
	l := Listed{ID: e.ID, Root: e.Root, Owner: e.Owner, Created: e.Created, Cgroup: e.Cgroup, Status: Gone, sharedPidNS: e.SharedPidNS}
	if l.Pid = alive(e.Init); l.Pid != 0 {
		if fd, err := procid.Open(e.Init); err == nil {
			l.Namespaces = namespaces(fd, l.Pid)
			unix.Close(fd)
		}
	}
	l.HolderPid = alive(e.Holder)
	if l.Pid != 0 {
		return l, true
	}
	for _, d := range e.Cgroup {
		if _, err := os.Stat(d); err == nil && !slices.Contains(e.CgroupExisted, d) {
			return l, true // delete --force removes it
		}
	}
	// Nothing left: the entry of a container whose root went with it.
	registry.Remove(e.Path, e.Created)
	return l, false
}

// alive returns id's pid if that process still runs (not a zombie), else 0.
func alive(id procid.ID) int {
	if id.Pid == 0 {
		return 0
	}
	fd, err := procid.Open(id)
	if err != nil {
		return 0
	}
	defer unix.Close(fd)
	b, err := os.ReadFile("/proc/" + strconv.Itoa(id.Pid) + "/stat")
	if i := lastIndex(b, ')'); err != nil || i < 0 || i+2 >= len(b) || b[i+2] == 'Z' {
		return 0
	}
	return id.Pid
}

var nsNames = []string{"cgroup", "ipc", "mnt", "net", "pid", "time", "user", "uts"}

// namespaces reads the inodes of pid's namespaces, then checks with its
// pidfd that pid was still that process.
func namespaces(pidfd, pid int) map[string]uint64 {
	ns := map[string]uint64{}
	for _, n := range nsNames {
		var st unix.Stat_t
		if unix.Stat("/proc/"+strconv.Itoa(pid)+"/ns/"+n, &st) == nil {
			ns[n] = st.Ino
		}
	}
	if unix.PidfdSendSignal(pidfd, 0, nil, 0) != nil {
		return nil
	}
	return ns
}

// FindPid returns the container process pid belongs to, whichever process
// of it: the one whose cgroup holds pid's (or an ancestor of it), or, for a
// container without a cgroup, the one whose init's pid namespace is pid's.
func FindPid(pid int) (*Listed, error) {
	cg, err := cgroups.OfProcess(pid)
	if err != nil {
		return nil, err
	}
	var pidns unix.Stat_t
	if err := unix.Stat("/proc/"+strconv.Itoa(pid)+"/ns/pid", &pidns); err != nil {
		return nil, fmt.Errorf("process %d: %w", pid, err)
	}
	all, err := ListAll()
	if err != nil {
		return nil, err
	}
	if l := deepest(all, func(k, d string) bool { return cgroups.Paths{k: d}.Within(cg[k]) }); l != nil {
		return l, nil
	}
	for i, l := range all {
		if len(l.Cgroup) == 0 && !l.sharedPidNS && l.Namespaces["pid"] == pidns.Ino {
			return &all[i], nil
		}
	}
	return nil, fmt.Errorf("process %d: no container: %w", pid, ErrNotExist)
}

// FindCgroup returns the container whose cgroup is path or holds it: a
// directory of a cgroup mount, or a cgroup path as /proc/<pid>/cgroup and
// linux.cgroupsPath name it.
func FindCgroup(path string) (*Listed, error) {
	dirs := []string{filepath.Clean(path)}
	if p, err := cgroups.Resolve(path); err == nil {
		for _, d := range p {
			dirs = append(dirs, d)
		}
	} else if _, serr := os.Stat(path); errors.Is(serr, fs.ErrNotExist) {
		return nil, fmt.Errorf("cgroup %s: %w", path, err)
	}
	all, err := ListAll()
	if err != nil {
		return nil, err
	}
	if l := deepest(all, func(k, d string) bool { return slices.ContainsFunc(dirs, cgroups.Paths{k: d}.Within) }); l != nil {
		return l, nil
	}
	return nil, fmt.Errorf("cgroup %s: no container: %w", path, ErrNotExist)
}

// deepest returns the container one of whose cgroup directories holds is
// true of, the deepest such directory's where cgroups nest.
func deepest(all []Listed, holds func(key, dir string) bool) *Listed {
	var best *Listed
	depth := -1
	for i, l := range all {
		for k, d := range l.Cgroup {
			if len(d) > depth && holds(k, d) {
				best, depth = &all[i], len(d)
			}
		}
	}
	return best
}
