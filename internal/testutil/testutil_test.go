package testutil

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/containerfd/containerfd/libcontainerfd/registry"
	"golang.org/x/sys/unix"
)

// fakeTB records what a helper reports instead of failing the real test, and
// holds its cleanups until run is done.
type fakeTB struct {
	testing.TB // the real test, for anything not overridden
	name       string

	mu       sync.Mutex
	errs     []string
	skipped  string
	cleanups []func()
}

func newFake(t *testing.T) *fakeTB { return &fakeTB{TB: t, name: t.Name() + "/fake"} }

func (f *fakeTB) Helper()      {}
func (f *fakeTB) Name() string { return f.name }
func (f *fakeTB) Errorf(format string, args ...any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.errs = append(f.errs, fmt.Sprintf(format, args...))
}
func (f *fakeTB) Fatalf(format string, args ...any) {
	f.Errorf(format, args...)
	runtime.Goexit()
}
func (f *fakeTB) Skip(args ...any) {
	f.mu.Lock()
	f.skipped = fmt.Sprint(args...)
	f.mu.Unlock()
	runtime.Goexit()
}
func (f *fakeTB) Cleanup(fn func()) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.cleanups = append(f.cleanups, fn)
}

// do runs fn on its own goroutine, as Fatalf and Skip end the goroutine.
func (f *fakeTB) do(fn func()) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn()
	}()
	<-done
}

// finish runs the cleanups, last first, and returns what they reported.
func (f *fakeTB) finish() []string {
	for i := len(f.cleanups) - 1; i >= 0; i-- {
		f.do(f.cleanups[i])
	}
	f.cleanups = nil
	return f.errs
}

func shortLeakWait(t *testing.T) {
	old := leakWait
	leakWait = 300 * time.Millisecond
	t.Cleanup(func() { leakWait = old })
}

func wantReport(t *testing.T, errs []string, want ...string) {
	t.Helper()
	all := strings.Join(errs, "\n")
	if len(errs) == 0 {
		t.Fatalf("helper reported nothing; want a report mentioning %q", want)
	}
	for _, w := range want {
		if !strings.Contains(all, w) {
			t.Errorf("report does not mention %q:\n%s", w, all)
		}
	}
}

func wantNoReport(t *testing.T, errs []string) {
	t.Helper()
	if len(errs) > 0 {
		t.Errorf("helper reported a failure on a clean test:\n%s", strings.Join(errs, "\n"))
	}
}

func TestID(t *testing.T) {
	re := regexp.MustCompile(`^cfdtest-[a-z0-9][a-z0-9_.-]*-[0-9a-f]{12}$`)
	seen := map[string]bool{}
	for _, name := range []string{"TestSimple", "TestSub/with spaces/and:colons", "Test", "Test" + strings.Repeat("VeryLong", 20)} {
		f := newFake(t)
		f.name = name
		for range 3 {
			id := ID(f)
			if !re.MatchString(id) || len(id) > 64 {
				t.Errorf("ID for %q = %q: want %s, at most 64 bytes", name, id, re)
			}
			if seen[id] {
				t.Errorf("ID %q given twice", id)
			}
			seen[id] = true
		}
	}
	f := newFake(t)
	f.name = "TestLifecycle/kill"
	if id := ID(f); !strings.HasPrefix(id, "cfdtest-lifecycle-kill-") {
		t.Errorf("ID = %q, want the short test name in it", id)
	}
}

func TestNoLeaksClean(t *testing.T) {
	NoLeaks(t)
	f := newFake(t)
	f.do(func() { NoLeaks(f) })
	if err := exec.Command("true").Run(); err != nil { // a child that is waited for
		t.Fatal(err)
	}
	wantNoReport(t, f.finish())
}

func TestNoLeaksChildProcess(t *testing.T) {
	NoLeaks(t)
	shortLeakWait(t)
	f := newFake(t)
	f.do(func() { NoLeaks(f) })
	cmd := exec.Command("sleep", "60")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	errs := f.finish()
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	wantReport(t, errs, "new child processes", "pid "+strconv.Itoa(cmd.Process.Pid), "sleep 60")
}

func TestNoLeaksZombie(t *testing.T) {
	NoLeaks(t)
	shortLeakWait(t)
	f := newFake(t)
	f.do(func() { NoLeaks(f) })
	cmd := exec.Command("true")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Let it exit, but do not reap it.
	for i := 0; ; i++ {
		p, err := readProcess(cmd.Process.Pid)
		if err == nil && p.state == "Z" {
			break
		}
		if i > 200 {
			t.Fatalf("child %d did not become a zombie: %+v, %v", cmd.Process.Pid, p, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	errs := f.finish()
	_ = cmd.Wait()
	wantReport(t, errs, "new child processes", "pid "+strconv.Itoa(cmd.Process.Pid), "state Z")
}

func TestNoLeaksMount(t *testing.T) {
	RequireRoot(t)
	NoLeaks(t)
	shortLeakWait(t)
	f := newFake(t)
	f.do(func() { NoLeaks(f) })
	dir := t.TempDir()
	if err := unix.Mount("cfdtest", dir, "tmpfs", 0, "size=1m"); err != nil {
		t.Fatal(err)
	}
	errs := f.finish()
	if err := unix.Unmount(dir, 0); err != nil {
		t.Fatal(err)
	}
	wantReport(t, errs, "new mounts", dir)
}

func TestNoLeaksKey(t *testing.T) {
	// No outer NoLeaks: the locked thread's own process keyring lives until
	// the thread dies, after the test.
	shortLeakWait(t)
	// Keyrings belong to the thread's credentials: add and invalidate the key
	// on one thread, and let the thread (with its process keyring) die with
	// the test's goroutine, which never unlocks.
	runtime.LockOSThread()
	f := newFake(t)
	f.do(func() { NoLeaks(f) })
	desc := "containerfd-" + ID(t)
	id, err := unix.AddKey("keyring", desc, nil, unix.KEY_SPEC_PROCESS_KEYRING)
	if err != nil {
		t.Skipf("add_key: %v", err)
	}
	errs := f.finish()
	if _, err := unix.KeyctlInt(unix.KEYCTL_INVALIDATE, id, 0, 0, 0); err != nil {
		t.Fatalf("invalidating key %d: %v", id, err)
	}
	wantReport(t, errs, "new keys", desc)
	// The invalidated key goes away; the outer NoLeaks checks that.
}

// testCgroup2 returns a cgroup hierarchy to play in, or skips.
func testHierarchy(t *testing.T) cgroupMount {
	t.Helper()
	ms, err := cgroupMounts()
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range ms {
		if m.Version == 2 {
			return m
		}
	}
	if len(ms) == 0 {
		t.Skip("no cgroup hierarchy mounted")
	}
	return ms[0]
}

func TestNoLeaksCgroupProcess(t *testing.T) {
	RequireRoot(t)
	NoLeaks(t)
	shortLeakWait(t)
	h := testHierarchy(t)
	dir := filepath.Join(h.Dir, "cfdtest-"+randHex(6))
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := removeCgroup(dir); err != nil {
			t.Error(err)
		}
	}()

	f := newFake(t)
	f.do(func() { NoLeaks(f) })
	cmd := exec.Command("sleep", "60")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	defer cmd.Process.Kill()
	if err := os.WriteFile(filepath.Join(dir, "cgroup.procs"), []byte(strconv.Itoa(cmd.Process.Pid)), 0); err != nil {
		t.Fatal(err)
	}
	wantReport(t, f.finish(), "new processes in cfdtest- cgroups", filepath.Base(dir))
}

func TestCgroupPathLeftovers(t *testing.T) {
	RequireRoot(t)
	NoLeaks(t)
	shortLeakWait(t)
	ms, err := cgroupMounts()
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) == 0 {
		t.Skip("no cgroup hierarchy mounted")
	}

	f := newFake(t)
	path := CgroupPath(f)
	if !regexp.MustCompile(`^/cfdtest-[0-9a-f]{12}/cfdtest-[a-z0-9_.-]+-[0-9a-f]{12}$`).MatchString(path) {
		t.Fatalf("CgroupPath = %q", path)
	}
	// Leave the container's cgroup, with a process in it, in every hierarchy.
	for _, m := range ms {
		if err := os.MkdirAll(filepath.Join(m.Dir, path, "sub"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command("sleep", "60")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	leaf := filepath.Join(testHierarchy(t).Dir, path)
	if err := os.WriteFile(filepath.Join(leaf, "cgroup.procs"), []byte(strconv.Itoa(cmd.Process.Pid)), 0); err != nil {
		cmd.Process.Kill()
		t.Fatal(err)
	}
	errs := f.finish()
	_ = cmd.Wait() // killed by the cleanup, reaped here
	wantReport(t, errs, "left behind", leaf, filepath.Join(leaf, "sub"))
	if len(errs) != 2*len(ms) {
		t.Errorf("got %d reports, want 2 per hierarchy (%d):\n%s", len(errs), len(ms), strings.Join(errs, "\n"))
	}
	for _, m := range ms {
		parent := filepath.Join(m.Dir, filepath.Dir(path))
		if _, err := os.Stat(parent); !os.IsNotExist(err) {
			t.Errorf("%s still there after the cleanup (stat: %v)", parent, err)
		}
	}
	if !strings.Contains(cmd.ProcessState.String(), "killed") {
		t.Errorf("process in the leftover cgroup: %v, want killed", cmd.ProcessState)
	}
}

func TestCgroupPathClean(t *testing.T) {
	RequireRoot(t)
	NoLeaks(t)
	ms, err := cgroupMounts()
	if err != nil {
		t.Fatal(err)
	}
	f := newFake(t)
	path := CgroupPath(f)
	// The runtime made the container's cgroup and removed it again, leaving
	// the parent it had to create.
	for _, m := range ms {
		if err := os.MkdirAll(filepath.Join(m.Dir, path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Remove(filepath.Join(m.Dir, path)); err != nil {
			t.Fatal(err)
		}
	}
	wantNoReport(t, f.finish())
	for _, m := range ms {
		if _, err := os.Stat(filepath.Join(m.Dir, filepath.Dir(path))); !os.IsNotExist(err) {
			t.Errorf("empty parent not removed from %s (stat: %v)", m.Dir, err)
		}
	}
}

func TestCgroupRefusesOthers(t *testing.T) {
	for _, p := range []string{"", "..", "system.slice", "cfdtest-", "cfdtest-123/../..", "cfdtest-0123456789ab/x"} {
		if err := removeCgroupParent(p); err == nil {
			t.Errorf("removeCgroupParent(%q) did not refuse", p)
		}
		if _, err := cgroupLeftovers(p); err == nil {
			t.Errorf("cgroupLeftovers(%q) did not refuse", p)
		}
	}
}

func TestStateDir(t *testing.T) {
	NoLeaks(t)
	f := newFake(t)
	dir := StateDir(f)
	if err := os.MkdirAll(filepath.Join(dir, "ctr"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "ctr", "state.json"), []byte("{}"), 0o600); err != nil {
		t.Fatal(err)
	}
	wantReport(t, f.finish(), dir, "ctr/state.json")
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("state dir %s not removed (stat: %v)", dir, err)
	}

	f = newFake(t)
	dir = StateDir(f)
	wantNoReport(t, f.finish())
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("state dir %s not removed (stat: %v)", dir, err)
	}
}

func TestStateDirMountNotCrossed(t *testing.T) {
	RequireRoot(t)
	NoLeaks(t)
	host := t.TempDir()
	precious := filepath.Join(host, "precious")
	if err := os.WriteFile(precious, []byte("keep"), 0o644); err != nil {
		t.Fatal(err)
	}
	f := newFake(t)
	dir := StateDir(f)
	if err := os.Mkdir(filepath.Join(dir, "m"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount(host, filepath.Join(dir, "m"), "", unix.MS_BIND, ""); err != nil {
		t.Fatal(err)
	}
	wantReport(t, f.finish(), "mount on "+filepath.Join(dir, "m"))
	if _, err := os.Stat(precious); err != nil {
		t.Errorf("cleanup removed a file through a bind mount: %v", err)
	}
}

func TestRootfs(t *testing.T) {
	RequireRoot(t)
	NoLeaks(t)
	a, b := Rootfs(t), Rootfs(t)
	if a == b {
		t.Fatalf("Rootfs gave %s twice", a)
	}
	out, err := exec.Command("chroot", a, "/bin/sh", "-c", "echo ok; id -un; ls /usr/bin/awk; test -d /proc -a -d /sys -a -d /dev -a -d /tmp && echo dirs").CombinedOutput()
	if err != nil || string(out) != "ok\nroot\n/usr/bin/awk\ndirs\n" {
		t.Errorf("chroot %s: %v, output:\n%s", a, err, out)
	}
	if err := os.WriteFile(filepath.Join(a, "etc", "hostname"), []byte("a\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(b, "etc", "hostname")); !os.IsNotExist(err) {
		t.Errorf("a change to one rootfs shows in another (stat: %v)", err)
	}
	ia, _ := os.Stat(filepath.Join(a, "bin/busybox"))
	ib, _ := os.Stat(filepath.Join(b, "bin/busybox"))
	ih, _ := os.Stat(loadBusybox().path)
	if ia == nil || ib == nil || os.SameFile(ia, ib) || os.SameFile(ia, ih) {
		t.Errorf("busybox is shared between rootfs copies or with the host")
	}
	if st, err := os.Stat(filepath.Join(a, "tmp")); err != nil || st.Mode()&os.ModeSticky == 0 || st.Mode().Perm() != 0o777 {
		t.Errorf("/tmp mode: %v, %v", st.Mode(), err)
	}
}

func TestRootfsRemoved(t *testing.T) {
	NoLeaks(t)
	f := newFake(t)
	var dir string
	f.do(func() { dir = Rootfs(f) })
	if f.skipped != "" {
		if !strings.Contains(f.skipped, "busybox-static") {
			t.Errorf("skip message %q does not name busybox-static", f.skipped)
		}
		t.Skip(f.skipped)
	}
	if _, err := os.Stat(filepath.Join(dir, "bin/sh")); err != nil {
		t.Fatal(err)
	}
	wantNoReport(t, f.finish())
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("rootfs %s not removed (stat: %v)", dir, err)
	}
}

func TestIsStatic(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	// The test binary is dynamically linked only with cgo; just check it parses.
	if _, err := isStatic(self); err != nil {
		t.Errorf("isStatic(%s): %v", self, err)
	}
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("no sh")
	}
	// Debian's dash names its loader; busybox's sh (the VM of hack/vm.sh)
	// is static and names none, which leaves no dynamic program to check.
	if data, err := os.ReadFile(sh); err != nil {
		t.Fatal(err)
	} else if !bytes.Contains(data, []byte("/ld-linux")) {
		t.Logf("%s names no ld-linux loader: the dynamic case is not checked here", sh)
	} else if static, err := isStatic(sh); err != nil || static {
		t.Errorf("isStatic(%s) = %v, %v; want a dynamic /bin/sh (Debian's dash)", sh, static, err)
	}
	if bb := loadBusybox(); bb.path != "" {
		if static, err := isStatic(bb.path); err != nil || !static {
			t.Errorf("isStatic(%s) = %v, %v", bb.path, static, err)
		}
	}
}

func TestParseStat(t *testing.T) {
	p, err := parseStat(42, "42 (a) b (c)) Z 7 42 42 0 -1 4194564 0 0 0 0 0 0 0 0 20 0 1 0 123456 0 0")
	if err != nil {
		t.Fatal(err)
	}
	if p.comm != "a) b (c)" || p.state != "Z" || p.ppid != 7 || p.start != 123456 {
		t.Errorf("parseStat = %+v", p)
	}
}

// TestNoLeaksRegistry: an entry left in the host-wide list of containers
// fails the test.
func TestNoLeaksRegistry(t *testing.T) {
	RequireRoot(t)
	NoLeaks(t)
	shortLeakWait(t)
	f := newFake(t)
	f.do(func() { NoLeaks(f) })
	id := ID(t)
	e := &registry.Entry{ID: id, Root: "/nonexistent", Dir: "/nonexistent/" + id}
	if err := registry.Write(registry.Dir(), e); err != nil {
		t.Fatal(err)
	}
	errs := f.finish()
	if err := os.Remove(e.Path); err != nil {
		t.Fatal(err)
	}
	wantReport(t, errs, "new entries in the host-wide list", id)
}
