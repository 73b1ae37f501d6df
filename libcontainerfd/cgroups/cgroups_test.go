package cgroups

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/containerfd/containerfd/libcontainerfd/kernfeat"
)

func TestMain(m *testing.M) {
	if os.Getenv(devProbeEnv) != "" {
		os.Exit(devProbeMain())
	}
	// Processes orphaned in a test (children of a killed shell) come back
	// to us, so that the tests reap them instead of leaving zombies to pid 1.
	if os.Geteuid() == 0 {
		if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
			fmt.Fprintln(os.Stderr, "PR_SET_CHILD_SUBREAPER:", err)
			os.Exit(1)
		}
	}
	os.Exit(m.Run())
}

// ---- pure logic ----

func TestSplitPath(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string
		rel  bool
		bad  bool
	}{
		{in: "/a", want: []string{"a"}},
		{in: "/a/b/", want: []string{"a", "b"}},
		{in: "//a/./b", want: []string{"a", "b"}},
		{in: "a/b", want: []string{"a", "b"}, rel: true},
		{in: "./a", want: []string{"a"}, rel: true},
		{in: "a//b/", want: []string{"a", "b"}, rel: true},
		{in: "", bad: true},
		{in: ".", bad: true},
		{in: "./", bad: true},
		{in: "/", bad: true},
		{in: "/a/../b", bad: true},
		{in: "a/../b", bad: true},
		{in: "..", bad: true},
	} {
		got, rel, err := splitPath(tc.in)
		if tc.bad {
			if err == nil {
				t.Errorf("splitPath(%q) = %v, want an error", tc.in, got)
			} else if !strings.Contains(err.Error(), fmt.Sprintf("%q", tc.in)) {
				t.Errorf("splitPath(%q) error %q does not name the path", tc.in, err)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, tc.want) || rel != tc.rel {
			t.Errorf("splitPath(%q) = %v, %v, %v; want %v, %v", tc.in, got, rel, err, tc.want, tc.rel)
		}
	}
}

func TestParseEvents(t *testing.T) {
	ev := parseEvents("populated 1\nfrozen 0\n")
	if !ev.Populated || ev.Frozen {
		t.Errorf("got %+v", ev)
	}
	ev = parseEvents("populated 0\nfrozen 1\n")
	if ev.Populated || !ev.Frozen {
		t.Errorf("got %+v", ev)
	}
}

func TestModeString(t *testing.T) {
	for m, s := range map[Mode]string{V1: "v1", V2: "v2", Hybrid: "hybrid", 0: "Mode(0)"} {
		if m.String() != s {
			t.Errorf("Mode(%d).String() = %q, want %q", int(m), m.String(), s)
		}
	}
}

// TestDetectFixtures runs detection on made-up mount tables: pure v2, a
// hybrid with co-mounted controllers, a shadowed mount, a duplicate mount of
// one hierarchy and an escaped mount point, and v1 alone.
func TestDetectFixtures(t *testing.T) {
	const pureV2 = `25 1 0:23 / /sys rw,nosuid - sysfs sysfs rw
30 25 0:26 / /sys/fs/cgroup rw,nosuid shared:4 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot
`
	// Pure v2 with a named v1 hierarchy beside it, for old guests: still
	// pure v2, as the mount table says, whatever this machine has.
	const pureV2Named = pureV2 + `41 25 0:50 / /run/cgroup-named rw - cgroup cgroup rw,name=elogind
`
	const hybrid = `31 23 0:28 / /sys/fs/cgroup rw - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw shared:9 - cgroup cgroup rw,cpu,cpuacct
33 31 0:30 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory
34 31 0:31 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,xattr,release_agent=/x,name=systemd
35 31 0:32 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw,nsdelegate
36 31 0:30 /sub /mnt/mem rw - cgroup cgroup rw,memory
37 31 0:33 / /mnt/x rw - cgroup cgroup rw,pids
38 31 0:40 / /mnt/x rw - tmpfs tmpfs rw
39 31 0:41 / /mnt/with\040space rw - cgroup cgroup rw,devices
`
	const v1only = `31 23 0:28 / /sys/fs/cgroup rw - tmpfs tmpfs rw,mode=755
33 31 0:30 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory
34 31 0:34 / /sys/fs/cgroup/freezer rw - cgroup cgroup rw,freezer
`
	// In the table's order (runc binds them so in a container).
	v1want := []hierarchy{
		{mount: "/sys/fs/cgroup/cpu,cpuacct", root: "/", keys: []string{"cpu", "cpuacct"}},
		{mount: "/sys/fs/cgroup/memory", root: "/", keys: []string{"memory"}},
		{mount: "/sys/fs/cgroup/systemd", root: "/", keys: []string{"name=systemd"}},
		{mount: "/mnt/with space", root: "/", keys: []string{"devices"}},
	}
	for _, tc := range []struct {
		name, table, env string
		mode             Mode
		v2               string
		v1               []hierarchy
		bad              bool
	}{
		{name: "pure v2", table: pureV2, mode: V2, v2: "/sys/fs/cgroup"},
		{name: "pure v2 and a named v1", table: pureV2Named, mode: V2, v2: "/sys/fs/cgroup"},
		{name: "hybrid", table: hybrid, mode: Hybrid, v2: "/sys/fs/cgroup/unified", v1: v1want},
		{name: "hybrid forced v2", table: hybrid, env: "v2", mode: V2, v2: "/sys/fs/cgroup/unified"},
		{name: "hybrid forced v1", table: hybrid, env: "v1", mode: V1, v1: v1want},
		{name: "v1", table: v1only, mode: V1, v1: []hierarchy{
			{mount: "/sys/fs/cgroup/memory", root: "/", keys: []string{"memory"}},
			{mount: "/sys/fs/cgroup/freezer", root: "/", keys: []string{"freezer"}},
		}},
		{name: "v1 forced v2", table: v1only, env: "v2", bad: true},
		{name: "v1 forced hybrid", table: v1only, env: "hybrid", bad: true},
		{name: "v2 forced v1", table: pureV2, env: "v1", bad: true},
		{name: "bad env", table: pureV2, env: "v3", bad: true},
		{name: "none", table: "25 1 0:23 / /sys rw - sysfs sysfs rw\n", bad: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := filepath.Join(t.TempDir(), "mountinfo")
			if err := os.WriteFile(f, []byte(tc.table), 0o644); err != nil {
				t.Fatal(err)
			}
			old := mountinfoPath
			mountinfoPath = f
			t.Cleanup(func() { mountinfoPath = old })
			t.Setenv(EnvMode, tc.env)
			l, err := detect()
			if tc.bad {
				if err == nil {
					t.Fatalf("detect() = %+v, want an error", l)
				}
				t.Logf("error (as expected): %v", err)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if l.mode != tc.mode {
				t.Errorf("mode %v, want %v", l.mode, tc.mode)
			}
			var v2 string
			if l.v2 != nil {
				v2 = l.v2.mount
			}
			if v2 != tc.v2 {
				t.Errorf("v2 mount %q, want %q", v2, tc.v2)
			}
			if len(l.v1) != 0 || len(tc.v1) != 0 {
				if !reflect.DeepEqual(l.v1, tc.v1) {
					t.Errorf("v1 hierarchies\n got %+v\nwant %+v", l.v1, tc.v1)
				}
			}
		})
	}
}

// ---- helpers for the tests on real cgroups ----

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: makes real cgroups")
	}
}

// forEachMode runs fn once per mode this host can provide, forced through
// EnvMode.
func forEachMode(t *testing.T, fn func(t *testing.T, mode Mode)) {
	requireRoot(t)
	for _, m := range []Mode{V2, Hybrid, V1} {
		t.Run(m.String(), func(t *testing.T) {
			t.Setenv(EnvMode, m.String())
			if _, err := DetectMode(); err != nil {
				t.Skipf("cgroup mode %v not available on this host: %v", m, err)
			}
			fn(t, m)
		})
	}
}

// allMounts returns the mount point of every cgroup hierarchy on the host,
// whatever the mode, to check that tests leave nothing anywhere.
func allMounts(t *testing.T) []string {
	t.Helper()
	v2, v1, err := cgroupMounts()
	if err != nil {
		t.Fatal(err)
	}
	var ms []string
	for _, h := range append(v2, v1...) {
		ms = append(ms, h.mount)
	}
	return ms
}

// testParent returns a fresh absolute cgroup path for the test to put its
// cgroups under. At cleanup, after the test's own cleanups, it kills any
// process left there, removes it from every hierarchy, reaps orphans, and
// fails the test if anything is left.
func testParent(t *testing.T) string {
	t.Helper()
	return testParentNamed(t, "cg")
}

// testParentNamed is testParent with "/cfdtest-<kind>-<random>".
func testParentNamed(t *testing.T, kind string) string {
	t.Helper()
	b := make([]byte, 6)
	rand.Read(b)
	parent := "/cfdtest-" + kind + "-" + hex.EncodeToString(b)
	mounts := allMounts(t)
	t.Cleanup(func() {
		for _, m := range mounts {
			dir := filepath.Join(m, parent)
			var pids []int
			if err := walkProcs(dir, false, &pids); err == nil && len(pids) > 0 {
				t.Errorf("processes %v left in %s", pids, dir)
				for _, p := range pids {
					unix.Kill(p, unix.SIGKILL)
				}
			}
			if err := removeTree(dir, time.Now().Add(5*time.Second)); err != nil {
				t.Errorf("cleanup: %v", err)
			}
		}
		reapOrphans()
		for _, m := range mounts {
			if _, err := os.Lstat(filepath.Join(m, parent)); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("left behind: %s (%v)", filepath.Join(m, parent), err)
			}
		}
	})
	return parent
}

// reapOrphans reaps exited children that are not ours by exec (orphans
// re-parented to this subreaper). Call only when every exec.Cmd has been
// waited for.
func reapOrphans() {
	for {
		var ws unix.WaitStatus
		pid, err := unix.Wait4(-1, &ws, unix.WNOHANG|unix.WALL, nil)
		if err == unix.EINTR {
			continue
		}
		if pid <= 0 || err != nil {
			return
		}
	}
}

func create(t *testing.T, path string) *Cgroup {
	t.Helper()
	c, err := Create(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// startIn starts cmd in c: cloned into the cgroup2 directory and entered
// into the v1 ones where there is cgroup2, else entered everywhere after it
// started. Cleanup kills and waits for it.
func startIn(t *testing.T, c *Cgroup, cmd *exec.Cmd) {
	t.Helper()
	if fd := c.CloneFD(); fd >= 0 {
		cmd.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: fd}
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	var err error
	if c.CloneFD() >= 0 {
		err = c.EnterV1(cmd.Process.Pid)
	} else {
		err = c.Enter(cmd.Process.Pid)
	}
	if err != nil {
		t.Fatal(err)
	}
}

// start runs a command in c (startIn). Like a container's init, it waits
// (on a line on stdin) until it is in every hierarchy before it runs the
// command, so that nothing it forks can end up in some hierarchies only.
func start(t *testing.T, c *Cgroup, name string, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command("/bin/sh", append([]string{"-c", `read _ && exec "$@"`, "gate", name}, args...)...)
	gate, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	startIn(t, c, cmd)
	if _, err := gate.Write([]byte("go\n")); err != nil {
		t.Fatal(err)
	}
	gate.Close()
	return cmd
}

func startSleep(t *testing.T, c *Cgroup) *exec.Cmd {
	t.Helper()
	return start(t, c, "sleep", "1000")
}

// checkMember checks in /proc/<pid>/cgroup that pid is in cgroup path in
// every hierarchy of c.
func checkMember(t *testing.T, c *Cgroup, pid int, path string) {
	t.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{} // Paths key -> cgroup path
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		f := strings.SplitN(line, ":", 3)
		if len(f) != 3 {
			continue
		}
		if f[0] == "0" && f[1] == "" {
			got[KeyUnified] = f[2]
			continue
		}
		for _, k := range strings.Split(f[1], ",") {
			got[k] = f[2]
		}
	}
	for k := range c.Paths() {
		if got[k] != path {
			t.Errorf("process %d: %s cgroup %q, want %q\n%s", pid, k, got[k], path, data)
		}
	}
}

// cpuTicks returns the CPU time pid has used, in clock ticks.
func cpuTicks(t *testing.T, pid int) int {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	// f[0] is the state (field 3); utime and stime are fields 14 and 15.
	u, _ := strconv.Atoi(f[11])
	k, _ := strconv.Atoi(f[12])
	return u + k
}

// voluntarySwitches is voluntary_ctxt_switches of /proc/<pid>/status.
func voluntarySwitches(t *testing.T, pid int) int {
	t.Helper()
	return procStatus(t, strconv.Itoa(pid), "voluntary_ctxt_switches")
}

// procStatus is the number field of /proc/<pid>/status ("self" for pid).
func procStatus(t *testing.T, pid, field string) int {
	t.Helper()
	b, err := os.ReadFile("/proc/" + pid + "/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			n, err := strconv.Atoi(strings.TrimSpace(v))
			if err != nil {
				t.Fatalf("/proc/%s/status: %q: %v", pid, line, err)
			}
			return n
		}
	}
	t.Fatalf("/proc/%s/status has no %s", pid, field)
	return 0
}

// gone reports whether pid has exited (no such process, or a zombie).
func gone(pid int) bool {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	return procState(string(data)) == "Z"
}

// procState returns the state letter of a /proc/<pid>/stat line.
func procState(stat string) string {
	i := strings.LastIndexByte(stat, ')')
	if i < 0 || i+3 > len(stat) {
		return "?"
	}
	return stat[i+2 : i+3]
}

// waitEmpty waits until c has no process and returns how long it took: by
// polling cgroup.events for POLLPRI where there is cgroup2, else by polling
// the process list.
func waitEmpty(t *testing.T, c *Cgroup, since time.Time) time.Duration {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	if fd, err := c.EventsFD(); err == nil {
		defer unix.Close(fd)
		for {
			ev, err := ReadEvents(fd)
			if err != nil {
				t.Fatal(err)
			}
			if !ev.Populated {
				return time.Since(since)
			}
			left := time.Until(deadline)
			if left <= 0 {
				pids, _ := c.Pids()
				t.Fatalf("still populated after 5s: %v", pids)
			}
			unix.Poll([]unix.PollFd{{Fd: int32(fd), Events: unix.POLLPRI}}, int(left/time.Millisecond)+1)
		}
	}
	for {
		pids, err := c.Pids()
		if err != nil {
			t.Fatal(err)
		}
		if len(pids) == 0 {
			return time.Since(since)
		}
		if time.Now().After(deadline) {
			t.Fatalf("processes %v still in the cgroup after 5s", pids)
		}
		time.Sleep(time.Millisecond)
	}
}

// mkChild makes a child cgroup name in every directory of c, as a container
// with cgroupns might, and returns their paths.
func mkChild(t *testing.T, c *Cgroup, name string) Paths {
	t.Helper()
	p := Paths{}
	for k, d := range c.Paths() {
		dir := filepath.Join(d, name)
		if err := os.Mkdir(dir, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
			t.Fatal(err)
		}
		if k == "cpuset" {
			if err := copyCpuset(filepath.Dir(d), d, dir); err != nil {
				t.Fatal(err)
			}
		}
		p[k] = dir
	}
	return p
}

// ---- tests on real cgroups ----

// TestDetectModeHost checks the detected mode against the host's
// /sys/fs/cgroup, and that EnvMode forces it.
func TestDetectModeHost(t *testing.T) {
	t.Setenv(EnvMode, "")
	m, err := DetectMode()
	if err != nil {
		t.Fatal(err)
	}
	var st unix.Statfs_t
	if err := unix.Statfs("/sys/fs/cgroup", &st); err != nil {
		t.Fatal(err)
	}
	if st.Type == unix.CGROUP2_SUPER_MAGIC && m != V2 {
		t.Errorf("cgroup2 at /sys/fs/cgroup but mode %v", m)
	}
	if st.Type != unix.CGROUP2_SUPER_MAGIC && m == V2 {
		t.Logf("mode v2 with cgroup2 mounted elsewhere than /sys/fs/cgroup")
	}
	t.Logf("detected mode: %v", m)
	for _, want := range []Mode{V1, V2, Hybrid} {
		t.Setenv(EnvMode, want.String())
		got, err := DetectMode()
		if err != nil {
			t.Logf("%s=%v: %v", EnvMode, want, err)
			continue
		}
		if got != want {
			t.Errorf("%s=%v: DetectMode() = %v", EnvMode, want, got)
		}
	}
}

// TestCreateOpen: Create makes the cgroup in each hierarchy of the mode (and
// only those), Paths survive JSON, Open rebuilds an equal Cgroup (whatever
// mode the environment now forces), Destroy removes it, and Open then fails
// with fs.ErrNotExist.
func TestCreateOpen(t *testing.T) {
	forEachMode(t, func(t *testing.T, mode Mode) {
		parent := testParent(t)
		path := parent + "/ctr-a"
		c := create(t, path)
		if c.Mode() != mode {
			t.Errorf("Mode() = %v, want %v", c.Mode(), mode)
		}
		p := c.Paths()
		_, hasV2 := p[KeyUnified]
		if hasV2 != (mode != V1) {
			t.Errorf("mode %v: paths %v", mode, p)
		}
		if (len(p) > 1) != (mode != V2) {
			t.Errorf("mode %v: paths %v", mode, p)
		}
		if (c.CloneFD() >= 0) != (mode != V1) {
			t.Errorf("mode %v: CloneFD() = %d", mode, c.CloneFD())
		}
		l, err := detect()
		if err != nil {
			t.Fatal(err)
		}
		for _, h := range l.all() {
			for _, k := range h.keys {
				if p[k] != filepath.Join(h.mount, path) {
					t.Errorf("paths[%q] = %q, want %q", k, p[k], filepath.Join(h.mount, path))
				}
			}
			if st, err := os.Stat(filepath.Join(h.mount, path)); err != nil || !st.IsDir() {
				t.Errorf("not made: %v", err)
			}
		}
		// Not in the hierarchies the mode does not use.
		used := map[string]bool{}
		for _, d := range p {
			used[d] = true
		}
		for _, m := range allMounts(t) {
			dir := filepath.Join(m, path)
			if _, err := os.Stat(dir); err == nil && !used[dir] {
				t.Errorf("mode %v made %s", mode, dir)
			}
		}

		js, err := json.Marshal(p)
		if err != nil {
			t.Fatal(err)
		}
		var p2 Paths
		if err := json.Unmarshal(js, &p2); err != nil {
			t.Fatal(err)
		}
		t.Setenv(EnvMode, "") // Open must not depend on the environment
		c2, err := Open(p2)
		if err != nil {
			t.Fatal(err)
		}
		defer c2.Close()
		if !reflect.DeepEqual(c2.Paths(), p) || c2.Mode() != mode || (c2.CloneFD() >= 0) != (mode != V1) {
			t.Errorf("Open: mode %v paths %v fd %d; want %v %v", c2.Mode(), c2.Paths(), c2.CloneFD(), mode, p)
		}
		pid := startSleep(t, c2).Process.Pid
		checkMember(t, c, pid, path)

		if _, err := Open(Paths{"memory": "relative/dir"}); err == nil {
			t.Error("Open accepted a relative path")
		}
		if _, err := Open(Paths{KeyUnified: t.TempDir()}); err == nil {
			t.Error("Open accepted a directory that is not on cgroup2")
		}

		if err := c.Kill(); err != nil {
			t.Fatal(err)
		}
		waitEmpty(t, c, time.Now())
		if err := c2.Destroy(); err != nil {
			t.Fatal(err)
		}
		for _, d := range p {
			if _, err := os.Stat(d); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("after Destroy: %s: %v", d, err)
			}
		}
		if _, err := Open(p); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("Open after Destroy: %v, want fs.ErrNotExist", err)
		}
		if err := c.Close(); err != nil || c.CloneFD() != -1 {
			t.Errorf("Close: %v, fd %d", err, c.CloneFD())
		}
	})
}

// TestCreateDuplicate: a second Create of the same path, whose cgroup holds
// a process, fails with ErrInUse naming the path (runc: "container's cgroup
// is not empty"), and leaves the first cgroup and its process alone.
func TestCreateDuplicate(t *testing.T) {
	forEachMode(t, func(t *testing.T, mode Mode) {
		path := testParent(t) + "/ctr"
		c := create(t, path)
		pid := startSleep(t, c).Process.Pid
		c2, err := Create(path)
		if err == nil {
			c2.Close()
			t.Fatal("second Create succeeded")
		}
		if !errors.Is(err, ErrInUse) || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "container's cgroup is not empty") {
			t.Errorf("error %q: want ErrInUse naming %s", err, path)
		}
		t.Logf("error: %v", err)
		for _, d := range c.Paths() {
			if _, err := os.Stat(d); err != nil {
				t.Errorf("first cgroup damaged: %v", err)
			}
		}
		if pids, err := c.Pids(); err != nil || !reflect.DeepEqual(pids, []int{pid}) {
			t.Errorf("Pids() = %v, %v; want [%d]", pids, err, pid)
		}
		checkMember(t, c, pid, path)
	})
}

// TestCreateFailure: a Create that fails part way removes what it made (new
// parents included) and nothing else: a bad name deep in the path, and a
// leaf that already exists in one hierarchy only, made by "someone else",
// frozen there.
func TestCreateFailure(t *testing.T) {
	forEachMode(t, func(t *testing.T, mode Mode) {
		mounts := allMounts(t)
		t.Run("bad name", func(t *testing.T) {
			parent := testParent(t)
			// cgroupfs refuses a name with a newline (EINVAL), after the
			// parents were made.
			c, err := Create(parent + "/mid/bad\nname")
			if err == nil {
				c.Close()
				t.Fatal("Create succeeded")
			}
			t.Logf("error: %v", err)
			for _, m := range mounts {
				if _, err := os.Stat(filepath.Join(m, parent)); !errors.Is(err, fs.ErrNotExist) {
					t.Errorf("left behind: %s", filepath.Join(m, parent))
				}
			}
		})
		for _, h := range freezeHierarchies(t) {
			t.Run("frozen in "+h.mount, func(t *testing.T) {
				parent := testParent(t)
				theirs := filepath.Join(h.mount, parent, "ctr")
				if err := os.MkdirAll(theirs, 0o755); err != nil {
					t.Fatal(err)
				}
				file, val := "freezer.state", "FROZEN"
				if h.v2 {
					file, val = "cgroup.freeze", "1"
				}
				if err := writeFile(theirs, file, val); err != nil {
					t.Fatal(err)
				}
				c, err := Create(parent + "/ctr")
				if err == nil {
					c.Close()
					t.Fatal("Create succeeded")
				}
				if !errors.Is(err, ErrInUse) || !strings.Contains(err.Error(), theirs) || !strings.Contains(err.Error(), "unexpectedly frozen") {
					t.Errorf("error %q: want ErrInUse naming %s", err, theirs)
				}
				if _, err := os.Stat(theirs); err != nil {
					t.Errorf("removed a cgroup it did not make: %v", err)
				}
				for _, m := range mounts {
					if m == h.mount {
						continue
					}
					if _, err := os.Stat(filepath.Join(m, parent)); !errors.Is(err, fs.ErrNotExist) {
						t.Errorf("left behind: %s", filepath.Join(m, parent))
					}
				}
				writeFile(theirs, file, map[bool]string{true: "0", false: "THAWED"}[h.v2])
			})
		}
	})
}

// freezeHierarchies returns the hierarchies of the mode that can freeze: the
// cgroup2 one, and the v1 freezer.
func freezeHierarchies(t *testing.T) []hierarchy {
	t.Helper()
	l, err := detect()
	if err != nil {
		t.Fatal(err)
	}
	var hs []hierarchy
	for _, h := range l.all() {
		if h.v2 || hasKey(h.keys, "freezer") {
			hs = append(hs, h)
		}
	}
	return hs
}

// TestCreateExisting: a leaf that already exists, empty and not frozen, in
// one hierarchy (or all of them) is taken as it is, as runc takes it:
// Existed names it, processes join it, and removing the cgroup less what
// existed leaves it and removes the rest.
func TestCreateExisting(t *testing.T) {
	forEachMode(t, func(t *testing.T, mode Mode) {
		l, err := detect()
		if err != nil {
			t.Fatal(err)
		}
		hs := l.all()
		cases := map[string][]hierarchy{"all": hs, "first": hs[:1], "last": hs[len(hs)-1:]}
		for name, pre := range cases {
			t.Run(name, func(t *testing.T) {
				parent := testParent(t)
				var theirs []string
				for _, h := range pre {
					d := filepath.Join(h.mount, parent, "ctr")
					if err := os.MkdirAll(d, 0o755); err != nil {
						t.Fatal(err)
					}
					theirs = append(theirs, d)
				}
				c := create(t, parent+"/ctr")
				got := c.Existed()
				slices.Sort(got)
				slices.Sort(theirs)
				if !slices.Equal(got, slices.Compact(theirs)) {
					t.Errorf("Existed() = %v, want %v", got, theirs)
				}
				pid := startSleep(t, c).Process.Pid
				checkMember(t, c, pid, parent+"/ctr")
				if err := c.Kill(); err != nil {
					t.Fatal(err)
				}
				waitEmpty(t, c, time.Now())
				if err := Remove(c.Paths().Without(c.Existed())); err != nil {
					t.Fatal(err)
				}
				for _, d := range c.Paths().dirs() {
					_, err := os.Stat(d)
					if slices.Contains(theirs, d) && err != nil {
						t.Errorf("removed %s, which it did not make: %v", d, err)
					}
					if !slices.Contains(theirs, d) && !errors.Is(err, fs.ErrNotExist) {
						t.Errorf("left %s, which it made", d)
					}
				}
			})
		}
	})
}

// TestPids: Pids lists every process in the cgroup, including one in a child
// cgroup (and, in V1 mode, one in a single v1 hierarchy), sorted;
// /proc/<pid>/cgroup agrees on membership; Kill reaches them all.
func TestPids(t *testing.T) {
	forEachMode(t, func(t *testing.T, mode Mode) {
		path := testParent(t) + "/ctr"
		c := create(t, path)
		if pids, err := c.Pids(); err != nil || len(pids) != 0 {
			t.Fatalf("empty cgroup: Pids() = %v, %v", pids, err)
		}
		want := []int{startSleep(t, c).Process.Pid, startSleep(t, c).Process.Pid}
		for _, pid := range want {
			checkMember(t, c, pid, path)
		}
		child := mkChild(t, c, "nested")
		sub, err := Open(child)
		if err != nil {
			t.Fatal(err)
		}
		defer sub.Close()
		third := startSleep(t, sub).Process.Pid
		checkMember(t, sub, third, path+"/nested")
		want = append(want, third)
		if mode == V1 {
			// A process in only one v1 hierarchy (say, forked while its parent
			// was being moved in) still counts, and Kill reaches it.
			cmd := exec.Command("sleep", "1000")
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
			v1 := c.Paths().v1Dirs()
			if err := enter(v1[len(v1)-1], cmd.Process.Pid); err != nil {
				t.Fatal(err)
			}
			want = append(want, cmd.Process.Pid)
		}
		sort.Ints(want)
		got, err := c.Pids()
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("Pids() = %v, %v; want %v", got, err, want)
		}
		if err := c.Kill(); err != nil {
			t.Fatal(err)
		}
		waitEmpty(t, c, time.Now())
		for _, pid := range want {
			for deadline := time.Now().Add(time.Second); !gone(pid); time.Sleep(time.Millisecond) {
				if time.Now().After(deadline) {
					t.Fatalf("process %d survived Kill", pid)
				}
			}
		}
	})
}

// TestPopulatedEvents: Populated follows the processes; with cgroup2,
// cgroup.events from EventsFD says populated 1 and poll(POLLPRI) wakes up
// with populated 0 after the process is killed (not by the cgroup); in V1
// mode EventsFD is unsupported.
func TestPopulatedEvents(t *testing.T) {
	forEachMode(t, func(t *testing.T, mode Mode) {
		c := create(t, testParent(t)+"/ctr")
		if pop, err := c.Populated(); err != nil || pop {
			t.Fatalf("empty: Populated() = %v, %v", pop, err)
		}
		cmd := startSleep(t, c)
		if pop, err := c.Populated(); err != nil || !pop {
			t.Fatalf("with a process: Populated() = %v, %v", pop, err)
		}
		fd, err := c.EventsFD()
		if mode == V1 {
			if !errors.Is(err, errors.ErrUnsupported) {
				t.Errorf("V1 EventsFD: %v, want errors.ErrUnsupported", err)
			}
			if _, err := c.Events(); !errors.Is(err, errors.ErrUnsupported) {
				t.Errorf("V1 Events: %v, want errors.ErrUnsupported", err)
			}
			t0 := time.Now()
			cmd.Process.Kill()
			t.Logf("v1: process list empty %v after SIGKILL", waitEmpty(t, c, t0))
			if pop, err := c.Populated(); err != nil || pop {
				t.Errorf("after kill: Populated() = %v, %v", pop, err)
			}
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		defer unix.Close(fd)
		if flags, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err != nil || flags&unix.FD_CLOEXEC == 0 {
			t.Errorf("EventsFD not close-on-exec: %v %v", flags, err)
		}
		ev, err := ReadEvents(fd)
		if err != nil || !ev.Populated || ev.Frozen {
			t.Fatalf("ReadEvents = %+v, %v; want populated", ev, err)
		}
		// Nothing changes: poll times out.
		if n, _ := unix.Poll([]unix.PollFd{{Fd: int32(fd), Events: unix.POLLPRI}}, 50); n != 0 {
			t.Errorf("poll reported a change with nothing changed")
		}
		t0 := time.Now()
		cmd.Process.Kill() // not reaped yet: a zombie does not populate
		fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLPRI}}
		n, err := unix.Poll(fds, 5000)
		for err == unix.EINTR { // a signal to the Go runtime, not the event
			n, err = unix.Poll(fds, 5000)
		}
		if err != nil || n != 1 || fds[0].Revents&unix.POLLPRI == 0 {
			t.Fatalf("poll: n=%d revents=%#x err=%v", n, fds[0].Revents, err)
		}
		ev, err = ReadEvents(fd)
		if err != nil || ev.Populated {
			t.Fatalf("after wake-up: %+v, %v", ev, err)
		}
		t.Logf("%v: populated 0 %v after SIGKILL of the only process", mode, time.Since(t0))
		if pop, err := c.Populated(); err != nil || pop {
			t.Errorf("after kill: Populated() = %v, %v", pop, err)
		}
	})
}

// TestKill: Kill reaches every process, including a shell that keeps forking
// (children, orphaned grandchildren, one in a child cgroup), through
// cgroup.kill and through the freeze-and-kill fallback (CONTAINERFD_DISABLE=
// cgroup-kill), and leaves the cgroup thawed.
func TestKill(t *testing.T) {
	forEachMode(t, func(t *testing.T, mode Mode) {
		for _, tc := range []struct {
			how    string
			frozen bool
		}{{"cgroup.kill", false}, {"freeze-and-kill", false}, {"cgroup.kill", true}, {"freeze-and-kill", true}} {
			how := tc.how
			name := how
			if tc.frozen {
				name += "/frozen"
			}
			t.Run(name, func(t *testing.T) {
				if how == "cgroup.kill" {
					if mode == V1 {
						t.Skip("v1 mode has no cgroup.kill; Kill always freezes and kills there")
					}
					t.Setenv(kernfeat.EnvDisable, "")
				} else {
					t.Setenv(kernfeat.EnvDisable, CgroupKill.Name())
				}
				testKill(t, mode, how, tc.frozen)
			})
		}
	})
}

func testKill(t *testing.T, mode Mode, how string, frozen bool) {
	c := create(t, testParent(t)+"/ctr")
	if how == "cgroup.kill" {
		if _, err := os.Stat(filepath.Join(c.Paths()[KeyUnified], "cgroup.kill")); err != nil {
			t.Skipf("kernel lacks cgroup.kill (Linux 5.14): %v", err)
		}
	}
	var cmds []*exec.Cmd
	cmds = append(cmds, startSleep(t, c))
	// A shell with a background child, an orphaned grandchild, and a loop
	// that keeps forking.
	cmds = append(cmds, start(t, c, "/bin/sh", "-c",
		"sleep 1000 & (sleep 1000 &); while :; do sleep 1000 & sleep 0.01; done"))
	sub, err := Open(mkChild(t, c, "nested"))
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	cmds = append(cmds, startSleep(t, sub))
	deadline := time.Now().Add(5 * time.Second)
	var seen []int
	for len(seen) < 10 {
		if time.Now().After(deadline) {
			t.Fatalf("processes did not appear: %v", seen)
		}
		time.Sleep(5 * time.Millisecond)
		if seen, err = c.Pids(); err != nil {
			t.Fatal(err)
		}
	}
	if frozen {
		// A paused container is killed too (delete --force, kill --all).
		if err := c.Freeze(); err != nil {
			t.Fatal(err)
		}
		if seen, err = c.Pids(); err != nil {
			t.Fatal(err)
		}
	}
	t0 := time.Now()
	if err := c.Kill(); err != nil {
		t.Fatal(err)
	}
	tKill := time.Since(t0)
	took := waitEmpty(t, c, t0)
	t.Logf("%v %s (frozen %v): %d processes, Kill returned in %v, empty after %v", mode, how, frozen, len(seen), tKill, took)
	for _, cmd := range cmds {
		cmd.Wait()
	}
	reapOrphans()
	for _, pid := range seen {
		if !gone(pid) {
			t.Errorf("process %d survived", pid)
		}
	}
	if (mode != V1 || c.Paths()["freezer"] != "") && (how != "cgroup.kill" || !frozen) {
		if fr, err := c.Frozen(); err != nil || fr {
			t.Errorf("after Kill: Frozen() = %v, %v", fr, err)
		}
	}
	if err := c.Kill(); err != nil {
		t.Errorf("Kill of an empty cgroup: %v", err)
	}
	if err := c.Destroy(); err != nil {
		t.Fatal(err)
	}
}

// TestFreezeThaw: Freeze stops a busy process (a counter stops advancing,
// also in a child cgroup) and reports Frozen; Thaw lets it run again; both
// are idempotent; an empty cgroup freezes at once.
func TestFreezeThaw(t *testing.T) {
	forEachMode(t, func(t *testing.T, mode Mode) {
		c := create(t, testParent(t)+"/ctr")
		if fr, err := c.Frozen(); err != nil || fr {
			t.Fatalf("new cgroup: Frozen() = %v, %v", fr, err)
		}
		if err := c.Freeze(); err != nil {
			t.Fatalf("empty cgroup: %v", err)
		}
		if err := c.Thaw(); err != nil {
			t.Fatal(err)
		}
		// Busy loops: CPU time (utime+stime in /proc/<pid>/stat) is the
		// counter that must stop while frozen.
		pid1 := start(t, c, "/bin/sh", "-c", "while :; do :; done").Process.Pid
		sub, err := Open(mkChild(t, c, "nested"))
		if err != nil {
			t.Fatal(err)
		}
		defer sub.Close()
		pid2 := start(t, sub, "/bin/sh", "-c", "while :; do :; done").Process.Pid
		read1 := func() int { return cpuTicks(t, pid1) }
		read2 := func() int { return cpuTicks(t, pid2) }
		// Let both get going.
		for deadline := time.Now().Add(5 * time.Second); read1() < 2 || read2() < 2; {
			if time.Now().After(deadline) {
				t.Fatal("counters do not count")
			}
			time.Sleep(10 * time.Millisecond)
		}

		sw1, sw2 := voluntarySwitches(t, pid1), voluntarySwitches(t, pid2)
		t0 := time.Now()
		if err := c.Freeze(); err != nil {
			t.Fatal(err)
		}
		t.Logf("%v: Freeze took %v", mode, time.Since(t0))
		// A frozen task counts as frozen (and shows state S) just before
		// it switches out, and its CPU time is added at the switch: a
		// moment on hardware, milliseconds in an emulated VM. The busy
		// loops make no syscalls, so their first voluntary switch is that
		// one; wait for it before reading the counters.
		for deadline := time.Now().Add(time.Second); voluntarySwitches(t, pid1) == sw1 || voluntarySwitches(t, pid2) == sw2; {
			if time.Now().After(deadline) {
				t.Errorf("frozen processes did not switch out within 1s")
				break
			}
			time.Sleep(time.Millisecond)
		}
		if fr, err := c.Frozen(); err != nil || !fr {
			t.Errorf("after Freeze: Frozen() = %v, %v", fr, err)
		}
		// Every freezer there is holds it: in Hybrid mode both.
		if d, ok := c.Paths()["freezer"]; ok {
			if s, err := readFile(d, "freezer.state"); err != nil || s != "FROZEN\n" {
				t.Errorf("after Freeze: %s/freezer.state = %q, %v", d, s, err)
			}
		}
		if d, ok := c.Paths()[KeyUnified]; ok {
			if s, err := readFile(d, "cgroup.freeze"); err != nil || s != "1\n" {
				t.Errorf("after Freeze: %s/cgroup.freeze = %q, %v", d, s, err)
			}
		}
		if err := c.Freeze(); err != nil {
			t.Errorf("second Freeze: %v", err)
		}
		for _, pid := range []int{pid1, pid2} {
			st, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
			t.Logf("frozen process %d state %s", pid, procState(string(st)))
		}
		a1, b1 := read1(), read2()
		time.Sleep(200 * time.Millisecond)
		for _, pid := range []int{pid1, pid2} {
			st, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
			t.Logf("200ms later: process %d state %s", pid, procState(string(st)))
		}
		if a2, b2 := read1(), read2(); a2 != a1 || b2 != b1 {
			t.Errorf("counters moved while frozen: %d->%d, %d->%d", a1, a2, b1, b2)
		}
		if err := c.Thaw(); err != nil {
			t.Fatal(err)
		}
		if fr, err := c.Frozen(); err != nil || fr {
			t.Errorf("after Thaw: Frozen() = %v, %v", fr, err)
		}
		if err := c.Thaw(); err != nil {
			t.Errorf("second Thaw: %v", err)
		}
		for deadline := time.Now().Add(5 * time.Second); read1() <= a1 || read2() <= b1; {
			if time.Now().After(deadline) {
				t.Fatal("counters do not move after Thaw")
			}
			time.Sleep(10 * time.Millisecond)
		}
	})
}

// TestDestroy: Destroy removes child cgroups too, is idempotent, retries
// while a just-killed process leaves, fails (naming the directory) while a
// process lives, and Remove finishes a cgroup that is partly gone.
func TestDestroy(t *testing.T) {
	forEachMode(t, func(t *testing.T, mode Mode) {
		parent := testParent(t)
		t.Run("children", func(t *testing.T) {
			c := create(t, parent+"/a")
			mkChild(t, c, "x")
			mkChild(t, c, "x/y")
			if err := c.Destroy(); err != nil {
				t.Fatal(err)
			}
			for _, d := range c.Paths() {
				if _, err := os.Stat(d); !errors.Is(err, fs.ErrNotExist) {
					t.Errorf("left: %s", d)
				}
			}
			if err := c.Destroy(); err != nil {
				t.Errorf("second Destroy: %v", err)
			}
		})
		t.Run("busy", func(t *testing.T) {
			c := create(t, parent+"/b")
			startSleep(t, c)
			old := destroyTimeout
			destroyTimeout = 100 * time.Millisecond
			err := c.Destroy()
			destroyTimeout = old
			if !errors.Is(err, unix.EBUSY) || !strings.Contains(err.Error(), parent+"/b") {
				t.Errorf("Destroy with a live process: %v, want EBUSY naming the cgroup", err)
			}
			t.Logf("error: %v", err)
			// Kill and destroy at once: Destroy waits for the process to leave.
			if err := c.Kill(); err != nil {
				t.Fatal(err)
			}
			t0 := time.Now()
			if err := c.Destroy(); err != nil {
				t.Fatal(err)
			}
			t.Logf("%v: Destroy right after Kill took %v", mode, time.Since(t0))
		})
		t.Run("partial", func(t *testing.T) {
			c := create(t, parent+"/c")
			p := c.Paths()
			ds := p.dirs()
			if err := unix.Rmdir(ds[0]); err != nil {
				t.Fatal(err)
			}
			if err := Remove(p); err != nil {
				t.Fatal(err)
			}
			for _, d := range ds {
				if _, err := os.Stat(d); !errors.Is(err, fs.ErrNotExist) {
					t.Errorf("left: %s", d)
				}
			}
		})
		t.Run("not cgroupfs", func(t *testing.T) {
			d := t.TempDir()
			if err := Remove(Paths{"memory": d}); err == nil {
				t.Error("Remove accepted a directory not on cgroupfs")
			}
			if _, err := os.Stat(d); err != nil {
				t.Error(err)
			}
		})
	})
}

// TestEnableControllers: in V2 and Hybrid modes, Create enables the
// available controllers in each cgroup2 ancestor it makes, not in the leaf.
func TestEnableControllers(t *testing.T) {
	requireRoot(t)
	for _, m := range []Mode{V2, Hybrid} {
		t.Run(m.String(), func(t *testing.T) {
			t.Setenv(EnvMode, m.String())
			l, err := detect()
			if err != nil {
				t.Skipf("no %v mode here: %v", m, err)
			}
			root, err := readFile(l.v2.mount, "cgroup.subtree_control")
			if err != nil {
				t.Fatal(err)
			}
			if strings.TrimSpace(root) == "" {
				t.Skipf("the cgroup2 root %s delegates no controllers (empty cgroup.subtree_control); enabling some there would change the host", l.v2.mount)
			}
			parent := testParent(t)
			c := create(t, parent+"/mid/ctr")
			for _, p := range []string{parent, parent + "/mid"} {
				dir := filepath.Join(l.v2.mount, p)
				avail, _ := readFile(dir, "cgroup.controllers")
				on, _ := readFile(dir, "cgroup.subtree_control")
				if strings.Join(strings.Fields(avail), " ") != strings.Join(strings.Fields(on), " ") {
					t.Errorf("%s: controllers %q, enabled %q", dir, avail, on)
				}
			}
			if on, _ := readFile(c.Paths()[KeyUnified], "cgroup.subtree_control"); strings.TrimSpace(on) != "" {
				t.Errorf("leaf has controllers enabled: %q", on)
			}
			startSleep(t, c)
		})
	}
}

// TestCreateUnderFreshCpusetParent: a v1 cpuset parent another runtime has
// just made, with no cpus or mems yet, gets them from Create too, so the
// child's own copy is not refused (EACCES: a child must be a subset of its
// parent). Found by concurrent creates under one new parent.
func TestCreateUnderFreshCpusetParent(t *testing.T) {
	forEachMode(t, func(t *testing.T, mode Mode) {
		if mode == V2 {
			t.Skip("no v1 cpuset hierarchy in this mode")
		}
		_, v1, err := cgroupMounts()
		if err != nil {
			t.Fatal(err)
		}
		var cpuset string
		for _, h := range v1 {
			if hasKey(h.keys, "cpuset") {
				cpuset = h.mount
			}
		}
		if cpuset == "" {
			t.Skip("no v1 cpuset hierarchy")
		}
		parent := testParent(t)
		// As another runtime leaves it between its mkdir and its copy.
		if err := os.MkdirAll(filepath.Join(cpuset, parent, "fresh"), 0o755); err != nil {
			t.Fatal(err)
		}
		if b, _ := os.ReadFile(filepath.Join(cpuset, parent, "fresh", "cpuset.cpus")); strings.TrimSpace(string(b)) != "" {
			t.Fatalf("a new cpuset has cpus %q", b)
		}
		c := create(t, parent+"/fresh/ctr")
		pid := startSleep(t, c).Process.Pid
		checkMember(t, c, pid, parent+"/fresh/ctr")
	})
}
