package integration

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/containerfd/containerfd/internal/testutil"
	"github.com/containerfd/containerfd/libcontainerfd/registry"
	"golang.org/x/sys/unix"
)

// listed is one container of list --all --format json.
type listed struct {
	ID         string            `json:"id"`
	Pid        int               `json:"pid"`
	Status     string            `json:"status"`
	Bundle     string            `json:"bundle"`
	Owner      string            `json:"owner"`
	Root       string            `json:"root"`
	Cgroup     map[string]string `json:"cgroup"`
	Namespaces map[string]uint64 `json:"namespaces"`
	HolderPid  int               `json:"holderPid"`
}

// listAll runs list --all --format json plus args and returns the
// containers by id.
func (e *env) listAll(args ...string) map[string]listed {
	e.t.Helper()
	out := e.ok(append([]string{"list", "--all", "--format", "json"}, args...)...)
	var all []listed
	if err := json.Unmarshal([]byte(out), &all); err != nil {
		e.t.Fatalf("list --all --format json: %q: %v", out, err)
	}
	m := map[string]listed{}
	for _, l := range all {
		m[l.ID] = l
	}
	return m
}

// runDetached runs a detached container, returning init's pid.
func (e *env) runDetached() int {
	e.t.Helper()
	pf := filepath.Join(e.t.TempDir(), "pid")
	e.ok("run", "-d", "--pid-file", pf, "-b", e.bundle, e.id)
	return readPid(e.t, pf)
}

func readPid(t *testing.T, pf string) int {
	t.Helper()
	b, err := os.ReadFile(pf)
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	return pid
}

func nsInode(t *testing.T, pid int, ns string) uint64 {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Stat(fmt.Sprintf("/proc/%d/ns/%s", pid, ns), &st); err != nil {
		t.Fatal(err)
	}
	return st.Ino
}

// userRunDir makes the user's XDG_RUNTIME_DIR visible where root's list
// --all looks for users' registries, /run/user/<uid>, as pam_systemd would
// have made it: a link to the test's one.
func userRunDir(t *testing.T, u *rootlessUser) {
	t.Helper()
	if _, err := os.Stat("/run/user"); os.IsNotExist(err) {
		if err := os.Mkdir("/run/user", 0o755); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.Remove("/run/user") })
	}
	link := filepath.Join("/run/user", strconv.Itoa(u.UID))
	if err := os.Symlink(u.XDG, link); err != nil {
		t.Fatalf("making the user's run dir: %v", err)
	}
	t.Cleanup(func() { os.Remove(link) })
}

// TestListAll: list --all shows the containers of two --root dirs and a
// rootless user's, in a table and in JSON: root, state, init, cgroup,
// namespaces and owner; list without --all still shows one root.
func TestListAll(t *testing.T) {
	// Each env's leak check runs after its own delete: the other's
	// container must be there before it starts.
	a := newEnv(t, "sleep", "100")
	pa := a.runDetached()
	b := newEnv(t, "sleep", "100")
	pb := b.runDetached()

	u := newRootlessUser(t)
	userRunDir(t, u)
	uid := testutil.ID(t)
	dir := u.bundle(uid, nil, "sleep", "100")
	u.ok(dir, "run", "-d", uid)
	var ust struct{ Pid int }
	if err := json.Unmarshal([]byte(u.ok(dir, "state", uid)), &ust); err != nil {
		t.Fatal(err)
	}
	pu := ust.Pid

	all := a.listAll()
	for _, w := range []struct {
		e    *env
		pid  int
		root string
	}{{a, pa, a.root}, {b, pb, b.root}} {
		l, ok := all[w.e.id]
		if !ok {
			t.Fatalf("list --all does not show %s of root %s: %v", w.e.id, w.root, all)
		}
		if l.Root != w.root || l.Pid != w.pid || l.Status != "running" || l.Bundle != w.e.bundle || l.Owner != "root" {
			t.Errorf("list --all: %+v, want root %s, pid %d, running, bundle %s, owner root", l, w.root, w.pid, w.e.bundle)
		}
		if !strings.HasSuffix(l.Cgroup["unified"], w.e.cgroup) && !strings.HasSuffix(l.Cgroup["memory"], w.e.cgroup) {
			t.Errorf("list --all: cgroup %v, want %s", l.Cgroup, w.e.cgroup)
		}
		if l.Namespaces["pid"] != nsInode(t, w.pid, "pid") || l.Namespaces["mnt"] != nsInode(t, w.pid, "mnt") {
			t.Errorf("list --all: namespaces %v, want init's", l.Namespaces)
		}
	}
	l, ok := all[uid]
	switch {
	case !ok:
		t.Errorf("list --all as root does not show the rootless user's %s: %v", uid, all)
	case l.Status != "running" || l.Pid != pu || l.Root != filepath.Join(u.XDG, "containerfd") || l.Namespaces["user"] != nsInode(t, pu, "user"):
		t.Errorf("list --all: the user's container %+v, want running, pid %d, root %s", l, pu, filepath.Join(u.XDG, "containerfd"))
	}
	// Without a cgroup of its own, its processes are found by their pid
	// namespace.
	if got := a.listAll("--pid", strconv.Itoa(pu)); len(got) != 1 || got[uid].ID != uid {
		t.Errorf("list --all --pid %d (the user's init): %v", pu, got)
	}
	// The user sees its own only.
	if out := u.ok(dir, "list", "--all", "-q"); out != uid+"\n" {
		t.Errorf("list --all -q as the user: %q, want only %s", out, uid)
	}

	table := a.ok("list", "--all")
	if !strings.HasPrefix(table, "ID ") || !strings.Contains(strings.SplitN(table, "\n", 2)[0], "ROOT") {
		t.Errorf("list --all: header %q", strings.SplitN(table, "\n", 2)[0])
	}
	for _, w := range []struct{ id, root, pid string }{{a.id, a.root, strconv.Itoa(pa)}, {b.id, b.root, strconv.Itoa(pb)}, {uid, filepath.Join(u.XDG, "containerfd"), strconv.Itoa(pu)}} {
		found := false
		for _, line := range strings.Split(table, "\n") {
			if f := strings.Fields(line); len(f) > 4 && f[0] == w.id {
				found = true
				if f[1] != w.root || f[2] != w.pid || f[3] != "running" {
					t.Errorf("list --all: row %q, want root %s, pid %s, running", line, w.root, w.pid)
				}
			}
		}
		if !found {
			t.Errorf("list --all: no row for %s:\n%s", w.id, table)
		}
	}
	if out := a.ok("list", "-q"); out != a.id+"\n" {
		t.Errorf("list -q of one root: %q, want %s only", out, a.id)
	}
	u.ok(dir, "delete", "--force", uid)
	if _, ok := a.listAll()[uid]; ok {
		t.Errorf("list --all still shows %s after delete", uid)
	}
}

// TestListAllLookup: a pid, of init or of a process exec'd into the
// container, and a cgroup, as /proc/PID/cgroup names it or as a directory,
// find their container; a pid or cgroup of none is an error.
func TestListAllLookup(t *testing.T) {
	e := newEnv(t, "sleep", "100")
	init := e.runDetached()
	pf := filepath.Join(t.TempDir(), "exec.pid")
	e.ok("exec", "--detach", "--pid-file", pf, e.id, "sleep", "100")
	child := readPid(t, pf)
	for _, pid := range []int{init, child} {
		got := e.listAll("--pid", strconv.Itoa(pid))
		if l, ok := got[e.id]; !ok || len(got) != 1 || l.Pid != init || l.Root != e.root {
			t.Errorf("list --all --pid %d: %v, want %s (init %d)", pid, got, e.id, init)
		}
	}
	if out := e.ok("list", "--pid", strconv.Itoa(child), "-q"); out != e.id+"\n" {
		t.Errorf("list --pid %d -q: %q", child, out)
	}
	dirs := []string{e.cgroup}
	for _, d := range e.listAll()[e.id].Cgroup {
		dirs = append(dirs, d)
	}
	for _, cg := range dirs {
		if got := e.listAll("--cgroup", cg); len(got) != 1 || got[e.id].ID != e.id {
			t.Errorf("list --all --cgroup %s: %v, want %s", cg, got, e.id)
		}
	}
	if r := e.cfd("list", "--all", "--pid", strconv.Itoa(os.Getpid())); r.code == 0 || !strings.Contains(r.stderr, "no container") {
		t.Errorf("list --all --pid of the test process: %v, want no container", r)
	}
	if r := e.cfd("list", "--all", "--cgroup", e.cgroup+"-none"); r.code == 0 || !strings.Contains(r.stderr, "no container") {
		t.Errorf("list --all --cgroup of no container: %v", r)
	}
}

// TestListAllRootRemoved: the --root directory removed under a running
// container and a stopped one: list --all shows both gone, not running (the
// running one's init still there, so that it can be found), and delete
// --force still kills and removes what is left, entry and all.
func TestListAllRootRemoved(t *testing.T) {
	e := newEnv(t, "sleep", "100")
	init := e.runDetached()
	stopped := newEnv(t, "true")
	stopped.root = e.root
	stopped.ok("create", "-b", stopped.bundle, stopped.id)
	stopped.ok("start", stopped.id)
	waitStatus(t, stopped, "stopped")

	if err := os.RemoveAll(e.root); err != nil {
		t.Fatal(err)
	}
	all := e.listAll()
	if l := all[e.id]; l.Status != "gone" || l.Pid != init {
		t.Errorf("list --all after rm -rf of its root: %+v, want gone, init %d", l, init)
	}
	if l := all[stopped.id]; l.Status != "gone" || l.Pid != 0 {
		t.Errorf("list --all after rm -rf of a stopped one's root: %+v, want gone, pid 0", l)
	}
	if got := e.listAll("--pid", strconv.Itoa(init)); got[e.id].Status != "gone" {
		t.Errorf("list --all --pid %d: %v", init, got)
	}
	e.ok("delete", "--force", e.id)
	e.ok("delete", "--force", stopped.id)
	all = e.listAll()
	for _, id := range []string{e.id, stopped.id} {
		if l, ok := all[id]; ok {
			t.Errorf("list --all after delete --force: %+v", l)
		}
	}
	if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", init)); err == nil && !strings.Contains(string(b), ") Z ") {
		t.Errorf("init %d runs after delete --force: %s", init, b)
	}
	for _, d := range cgroupDirsOf(t, e.cgroup) {
		if _, err := os.Stat(d); err == nil {
			t.Errorf("cgroup %s left after delete --force", d)
		}
	}
	os.Mkdir(e.root, 0o700) // for the state dir's own check
}

// TestListAllCreateKilled: a create killed halfway, before and after init
// is started, leaves an entry that is not shown running, and delete
// --force removes it (NoLeaks checks the host-wide list).
func TestListAllCreateKilled(t *testing.T) {
	for _, step := range []string{"create:registered", "forkinit:spawned", "forkinit:created"} {
		t.Run(strings.ReplaceAll(step, ":", "-"), func(t *testing.T) {
			e := newEnv(t, "sleep", "100")
			e.killedAt(step, "create", "-b", e.bundle, e.id)
			l, ok := e.listAll()[e.id]
			if !ok || l.Status == "running" || l.Status == "created" {
				t.Errorf("list --all after create killed at %s: %+v (listed %v), want creating or stopped", step, l, ok)
			}
			e.ok("delete", "--force", e.id)
			if l, ok := e.listAll()[e.id]; ok {
				t.Errorf("list --all after delete --force: %+v", l)
			}
		})
	}
}

// TestListAllCreateFails: a create that fails halfway leaves no entry
// (NoLeaks checks), and neither does delete.
func TestListAllCreateFails(t *testing.T) {
	e := newEnv(t, "sleep", "100")
	s := e.spec()
	s.Linux.Sysctl = map[string]string{"net.no.such.sysctl": "1"}
	e.writeSpec(s)
	// It fails in ForkInit, init started: after the entry was written.
	if r := e.cfd("create", "-b", e.bundle, e.id); r.code == 0 || !strings.Contains(r.stderr, "sysctl net.no.such.sysctl") {
		t.Fatalf("create with a sysctl that does not exist: %v", r)
	}
	if _, ok := e.listAll()[e.id]; ok {
		t.Errorf("list --all shows the container whose create failed")
	}
}

// TestListAllHolder: a kill-on-close container shows its holder (the
// caller of create, here the test) and since when it is held; another
// shows none.
func TestListAllHolder(t *testing.T) {
	e := newEnv(t, "sleep", "100")
	e.ok("create", "--kill-on-close", "-b", e.bundle, e.id)
	l := e.listAll()[e.id]
	if l.HolderPid != os.Getpid() || l.Status != "created" {
		t.Errorf("list --all of a kill-on-close container: %+v, want held by %d (the test), created", l, os.Getpid())
	}
	if c, ok := e.listAll("--pid", strconv.Itoa(l.Pid))[e.id]; !ok || c.HolderPid != os.Getpid() {
		t.Errorf("list --all --pid: %+v", c)
	}
	e.ok("delete", "--force", e.id)
	f := newEnv(t, "sleep", "100")
	f.runDetached()
	if l := f.listAll()[f.id]; l.HolderPid != 0 {
		t.Errorf("list --all of a container without kill-on-close: holder %d", l.HolderPid)
	}
}

// TestListAllForgedEntry: an entry in a user's registry that names root's
// container, directly, through a state dir other than <root>/<id>, or
// through a link of the user's to root's state dir, is not listed: a
// user's registry speaks only for what the user owns.
func TestListAllForgedEntry(t *testing.T) {
	e := newEnv(t, "sleep", "100")
	init := e.runDetached()
	u := newRootlessUser(t)
	userRunDir(t, u)
	dir := filepath.Join(u.XDG, registry.UserDirName)
	own := filepath.Join(u.XDG, "mine")
	// The forger knows all: the real entry's times and init.
	real, err := registry.Read(filepath.Join(registry.RootDir, registry.Name(e.root, e.id)))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []*registry.Entry{
		{ID: e.id, Root: e.root, Dir: filepath.Join(e.root, e.id), Owner: u.UID, Created: real.Created, Init: real.Init},
		{ID: "forged-" + e.id, Root: e.root, Dir: filepath.Join(own, e.id), Owner: u.UID, Created: real.Created, Init: real.Init},
		{ID: "link-" + e.id, Root: own, Dir: filepath.Join(own, "link-"+e.id), Owner: u.UID, Created: real.Created, Init: real.Init},
	} {
		if err := registry.Write(dir, f); err != nil {
			t.Fatal(err)
		}
		u.Own(t, dir, 0o700)
		u.Own(t, f.Path, 0o600)
		t.Cleanup(func() { os.Remove(f.Path) })
	}
	// The user's own state dir, a link to root's container's.
	if err := os.Mkdir(own, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(e.root, e.id), filepath.Join(own, "link-"+e.id)); err != nil {
		t.Fatal(err)
	}
	if err := os.Lchown(filepath.Join(own, "link-"+e.id), u.UID, u.GID); err != nil {
		t.Fatal(err)
	}
	u.Own(t, own, 0o700)
	t.Cleanup(func() { os.RemoveAll(own) })
	all := e.listAll()
	if l, ok := all["link-"+e.id]; ok {
		t.Errorf("list --all shows an entry whose state dir links to root's container: %+v", l)
	}
	if l := all[e.id]; l.Owner != "root" || l.Pid != init {
		t.Errorf("list --all: %+v, want root's container", l)
	}
	if l, ok := all["forged-"+e.id]; ok {
		t.Errorf("list --all shows a forged entry: %+v", l)
	}
	if n := strings.Count(e.ok("list", "--all", "-q"), e.id+"\n"); n != 1 {
		t.Errorf("list --all lists %s %d times", e.id, n)
	}
}
