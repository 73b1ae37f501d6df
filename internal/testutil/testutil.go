// Package testutil holds the helpers every integration test uses. The tests
// run as root against the real kernel, so each helper also checks that the
// test cleaned up after itself and, where it did not, says what was left and
// removes it so the machine stays clean for the next test.
//
// A typical test:
//
//	func TestRun(t *testing.T) {
//		testutil.NoLeaks(t) // first: its check runs after every other cleanup
//		testutil.RequireRoot(t)
//		id, cg, root := testutil.ID(t), testutil.CgroupPath(t), testutil.StateDir(t)
//		rootfs := testutil.Rootfs(t)
//		...
//	}
//
// NoLeaks compares process-wide state (mounts, keys, child processes), so a
// test that calls it must not call t.Parallel. Tests in different packages,
// which `go test ./...` runs as concurrent processes, are serialized by a
// lock file that NoLeaks holds from its snapshot to its check.
package testutil

import (
	"bytes"
	"crypto/rand"
	"debug/elf"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/containerfd/containerfd/internal/mountinfo"
	"github.com/containerfd/containerfd/libcontainerfd/keyreq"
	"github.com/containerfd/containerfd/libcontainerfd/registry"
	"golang.org/x/sys/unix"
)

// RequireRoot skips the test unless it runs as root.
func RequireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
}

func randHex(nbytes int) string {
	b := make([]byte, nbytes)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand does not fail on Linux
	}
	return hex.EncodeToString(b)
}

var unsafeIDChars = regexp.MustCompile(`[^a-z0-9_.-]+`)

// maxIDName bounds the test-name part of an ID, so that an ID stays a valid
// hostname (at most 64 bytes) and a short file name.
const maxIDName = 32

// ID returns a container id unique to this call and safe as a file name and
// a hostname: "cfdtest-<short test name>-<12 random hex digits>".
func ID(t testing.TB) string {
	name := strings.ToLower(strings.TrimPrefix(t.Name(), "Test"))
	name = unsafeIDChars.ReplaceAllString(name, "-")
	if len(name) > maxIDName {
		name = name[:maxIDName]
	}
	name = strings.Trim(name, "-._")
	if name == "" {
		name = "test"
	}
	return "cfdtest-" + name + "-" + randHex(6)
}

// Cgroup paths given out by CgroupPath start with a parent of this form.
var cgroupParentRE = regexp.MustCompile(`^cfdtest-[0-9a-f]{12}$`)

// CgroupPath returns an absolute cgroup path "/cfdtest-<random>/<id>" unique
// to the test, for the container's cgroupsPath. The helper creates nothing.
// After the test it looks for the parent in every cgroup hierarchy mounted
// here (cgroup v1 controllers and cgroup2): a directory left below the parent
// fails the test. Then it removes the whole parent tree, depth first, killing
// any process still in it, so the machine stays clean. The parent itself is
// removed silently when empty: the runtime creates it like any missing
// ancestor and, like runc, need not remove it. Only cgroups under the parent
// are ever touched.
func CgroupPath(t testing.TB) string {
	t.Helper()
	parent := "cfdtest-" + randHex(6)
	path := "/" + parent + "/" + ID(t)
	t.Cleanup(func() {
		t.Helper()
		left, err := cgroupLeftovers(parent)
		if err != nil {
			t.Errorf("checking cgroups after the test: %v", err)
		}
		for _, d := range left {
			t.Errorf("cgroup %s left behind after the test; removing it", d)
		}
		if err := removeCgroupParent(parent); err != nil {
			t.Errorf("removing test cgroup /%s: %v", parent, err)
		}
		stray, err := RemoveStrayCgroupDirs(parent)
		for _, d := range stray {
			t.Errorf("%s left behind after the test, a directory where no cgroup hierarchy is mounted; removed it", d)
		}
		if err != nil {
			t.Errorf("removing stray directories of /%s: %v", parent, err)
		}
	})
	return path
}

// A cgroupMount is one mounted cgroup hierarchy.
type cgroupMount struct {
	Dir     string // mount point
	Version int    // 1 or 2
	Options string // super options: the v1 controllers
}

// cgroupMounts lists the cgroup hierarchies mounted at their root, one mount
// point each, from /proc/self/mountinfo.
func cgroupMounts() ([]cgroupMount, error) {
	mis, err := readMountinfo()
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	var ms []cgroupMount
	for _, m := range mis {
		var v int
		switch m.FSType {
		case "cgroup":
			v = 1
		case "cgroup2":
			v = 2
		default:
			continue
		}
		if m.Root != "/" || seen[m.Dev] {
			continue
		}
		seen[m.Dev] = true
		ms = append(ms, cgroupMount{Dir: m.Mountpoint, Version: v, Options: m.SuperOptions})
	}
	return ms, nil
}

// cgroupLeftovers lists the directories below /<parent> in every cgroup
// hierarchy, deepest first.
func cgroupLeftovers(parent string) ([]string, error) {
	if !cgroupParentRE.MatchString(parent) {
		return nil, fmt.Errorf("refusing to look at cgroup %q: not a test cgroup", parent)
	}
	ms, err := cgroupMounts()
	if err != nil {
		return nil, err
	}
	var left []string
	for _, m := range ms {
		dirs, err := dirsDepthFirst(filepath.Join(m.Dir, parent))
		if err != nil {
			return left, err
		}
		if len(dirs) > 0 {
			left = append(left, dirs[:len(dirs)-1]...) // all but the parent itself
		}
	}
	return left, nil
}

// dirsDepthFirst lists dir and the directories below it, children before
// their parents. A missing dir gives nothing.
func dirsDepthFirst(dir string) ([]string, error) {
	var dirs []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if d.IsDir() {
			dirs = append(dirs, p)
		}
		return nil
	})
	// WalkDir visits parents first; reverse for depth first.
	for i, j := 0, len(dirs)-1; i < j; i, j = i+1, j-1 {
		dirs[i], dirs[j] = dirs[j], dirs[i]
	}
	return dirs, err
}

// cgroupRoot is where the cgroup hierarchies are mounted.
const cgroupRoot = "/sys/fs/cgroup"

// RemoveStrayCgroupDirs removes /sys/fs/cgroup/*/<parent> where it is a
// plain directory, on the tmpfs where no hierarchy is mounted, and says
// which it removed. A program that takes the controllers the kernel lists
// in /proc/self/cgroup for mounted ones makes them there with mkdir -p (conmon
// does, for hugetlb, net_cls, net_prio and perf_event on this host): they
// are nobody's cgroups and would stay forever. Only test parents are
// touched.
func RemoveStrayCgroupDirs(parent string) ([]string, error) {
	if !cgroupParentRE.MatchString(parent) {
		return nil, fmt.Errorf("refusing to remove %q: not a test cgroup", parent)
	}
	dirs, err := filepath.Glob(filepath.Join(cgroupRoot, "*", parent))
	if err != nil {
		return nil, err
	}
	var removed []string
	var errs []error
	for _, d := range dirs {
		var st unix.Statfs_t
		if err := unix.Statfs(d, &st); err != nil {
			errs = append(errs, err)
			continue
		}
		if st.Type == unix.CGROUP_SUPER_MAGIC || st.Type == unix.CGROUP2_SUPER_MAGIC {
			continue
		}
		if err := os.RemoveAll(d); err != nil {
			errs = append(errs, err)
			continue
		}
		removed = append(removed, d)
	}
	return removed, errors.Join(errs...)
}

// removeCgroupParent removes /<parent> and everything below it from every
// cgroup hierarchy, killing the processes still inside.
func removeCgroupParent(parent string) error {
	if !cgroupParentRE.MatchString(parent) {
		return fmt.Errorf("refusing to remove cgroup %q: not a test cgroup", parent)
	}
	ms, err := cgroupMounts()
	if err != nil {
		return err
	}
	var errs []error
	for _, m := range ms {
		dirs, err := dirsDepthFirst(filepath.Join(m.Dir, parent))
		if err != nil {
			errs = append(errs, err)
		}
		for _, d := range dirs {
			if err := removeCgroup(d); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// removeCgroup empties one cgroup directory (whose children are gone) and
// removes it, waiting up to leakWait for killed processes to leave.
func removeCgroup(dir string) error {
	// A frozen v1 freezer cgroup holds SIGKILL until thawed; a frozen v2
	// cgroup does not, but thaw it anyway.
	_ = os.WriteFile(filepath.Join(dir, "freezer.state"), []byte("THAWED"), 0)
	_ = os.WriteFile(filepath.Join(dir, "cgroup.freeze"), []byte("0"), 0)
	if os.WriteFile(filepath.Join(dir, "cgroup.kill"), []byte("1"), 0) != nil {
		for _, pid := range cgroupPids(dir) {
			_ = unix.Kill(pid, unix.SIGKILL)
		}
	}
	deadline := time.Now().Add(leakWait)
	for {
		err := unix.Rmdir(dir)
		if err == nil || errors.Is(err, unix.ENOENT) {
			return nil
		}
		if !errors.Is(err, unix.EBUSY) || time.Now().After(deadline) {
			return fmt.Errorf("rmdir %s: %w (pids %v)", dir, err, cgroupPids(dir))
		}
		for _, pid := range cgroupPids(dir) {
			_ = unix.Kill(pid, unix.SIGKILL)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func cgroupPids(dir string) []int {
	data, _ := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
	var pids []int
	for _, f := range strings.Fields(string(data)) {
		if pid, err := strconv.Atoi(f); err == nil {
			pids = append(pids, pid)
		}
	}
	return pids
}

// StateDir returns a fresh, empty directory to use as the runtime's state
// root (its --root). After the test, anything left inside fails the test;
// mounts under it are detached, then it is removed. The path is short
// (/tmp/cfdstate-N) so that sockets inside stay under the 108-byte limit.
func StateDir(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "cfdstate-")
	if err != nil {
		t.Fatalf("making state dir: %v", err)
	}
	t.Cleanup(func() {
		t.Helper()
		left, err := dirLeftovers(dir)
		if err != nil {
			t.Errorf("checking state dir: %v", err)
		}
		if len(left) > 0 {
			t.Errorf("state dir %s not empty after the test:\n\t%s", dir, strings.Join(left, "\n\t"))
		}
		removeTree(t, dir)
	})
	return dir
}

// dirLeftovers lists what is inside dir, relative to it.
func dirLeftovers(dir string) ([]string, error) {
	var left []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p != dir {
			rel, _ := filepath.Rel(dir, p)
			left = append(left, rel)
		}
		return nil
	})
	return left, err
}

// removeTree removes a test's temporary directory. RemoveAll would descend
// into a mount left there, which may be a bind mount of a host directory, so
// any mount under dir fails the test and is detached first.
func removeTree(t testing.TB, dir string) {
	t.Helper()
	mis, err := readMountinfo()
	if err != nil {
		t.Errorf("not removing %s: %v", dir, err)
		return
	}
	var under []string
	for _, m := range mis {
		if m.Mountpoint == dir || strings.HasPrefix(m.Mountpoint, dir+"/") {
			under = append(under, m.Mountpoint)
		}
	}
	// Deepest first; a mount point stacked several times appears as often.
	sort.Sort(sort.Reverse(sort.StringSlice(under)))
	for _, mp := range under {
		t.Errorf("mount on %s left after the test; detaching it", mp)
		if err := unix.Unmount(mp, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) {
			t.Errorf("not removing %s: umount %s: %v", dir, mp, err)
			return
		}
	}
	if err := os.RemoveAll(dir); err != nil {
		t.Errorf("removing %s: %v", dir, err)
	}
}

// leakWait is how long the leak checks wait for processes to go away (killed
// processes take a moment to be reaped and to leave their cgroups).
var leakWait = 10 * time.Second

// NoLeaks snapshots process-wide state and registers a cleanup that fails the
// test if, after every other cleanup, there are
//
//	(a) new lines in /proc/self/mountinfo,
//	(b) new keys in /proc/keys named "containerfd…" or "cfdtest-…" (test ids),
//	(c) new children of the test process, alive or zombie,
//	(d) new processes whose /proc/<pid>/cgroup mentions "cfdtest-",
//	(e) new files in the key request table (keyreq.Dir).
//	(f) new entries in the host-wide list of containers (package registry).
//
// Call it first in the test so that its cleanup runs last. Tests that call it
// must not run in parallel with each other (see the package comment).
func NoLeaks(t testing.TB) {
	t.Helper()
	if err := lockLeakChecks(); err != nil {
		t.Fatalf("NoLeaks: %v", err)
	}
	before, err := takeSnapshot()
	if err != nil {
		unlockLeakChecks()
		t.Fatalf("NoLeaks: %v", err)
	}
	t.Cleanup(func() {
		t.Helper()
		defer unlockLeakChecks()
		if err := before.waitClean(leakWait); err != nil {
			t.Errorf("leaked by the test: %v", err)
		}
	})
}

// One lock file for every test binary on the machine: `go test ./...` runs
// packages as concurrent processes, and one package's containers would look
// like another's leaks. Within a process the lock is shared (counted), so a
// subtest may call NoLeaks inside a test that did.
var leakLock struct {
	sync.Mutex
	n int
	f *os.File
}

func lockLeakChecks() error {
	leakLock.Lock()
	defer leakLock.Unlock()
	if leakLock.n == 0 {
		name := filepath.Join(os.TempDir(), "containerfd-test.lock")
		f, err := os.OpenFile(name, os.O_RDONLY|os.O_CREATE, 0o666)
		if err != nil {
			return fmt.Errorf("opening lock: %w", err)
		}
		for {
			err = unix.Flock(int(f.Fd()), unix.LOCK_EX)
			if !errors.Is(err, unix.EINTR) {
				break
			}
		}
		if err != nil {
			f.Close()
			return fmt.Errorf("locking %s: %w", name, err)
		}
		leakLock.f = f
	}
	leakLock.n++
	return nil
}

func unlockLeakChecks() {
	leakLock.Lock()
	defer leakLock.Unlock()
	leakLock.n--
	if leakLock.n == 0 {
		leakLock.f.Close() // drops the flock
		leakLock.f = nil
	}
}

// A snapshot is the state NoLeaks compares against.
type snapshot struct {
	mounts    map[string]bool // mountinfo lines
	keys      map[string]bool // serials of every key in /proc/keys
	rootKeys  int             // keys root owns, from /proc/key-users
	processes map[procID]bool // every process
	keyreqs   map[string]bool // files in keyreq.Dir
	registry  map[string]bool // the host-wide list's entry files
}

// procID names a process across pid reuse.
type procID struct {
	pid   int
	start uint64 // start time in clock ticks after boot
}

type procInfo struct {
	procID
	ppid    int
	comm    string
	state   string
	cmdline string
	cgroup  string // /proc/<pid>/cgroup, lines joined with " "
}

func takeSnapshot() (*snapshot, error) {
	s := &snapshot{mounts: map[string]bool{}, keys: map[string]bool{}, processes: map[procID]bool{}, keyreqs: map[string]bool{}, registry: map[string]bool{}}
	lines, err := readLines("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	for _, l := range lines {
		s.mounts[l] = true
	}
	keys, err := readKeys()
	if err != nil {
		return nil, err
	}
	for _, k := range keys {
		s.keys[k.serial] = true
	}
	if s.rootKeys, err = rootKeyCount(); err != nil {
		return nil, err
	}
	procs, err := listProcesses()
	if err != nil {
		return nil, err
	}
	for _, p := range procs {
		s.processes[p.procID] = true
	}
	names, err := keyreqEntries()
	if err != nil {
		return nil, err
	}
	for _, n := range names {
		s.keyreqs[n] = true
	}
	for _, e := range registryEntries() {
		s.registry[e] = true
	}
	return s, nil
}

// keyreqEntries lists the key request table: one file per container with a
// key handler, and whatever a registration left half-written.
func keyreqEntries() ([]string, error) {
	des, err := os.ReadDir(keyreq.Dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	var names []string
	for _, de := range des {
		names = append(names, de.Name())
	}
	return names, err
}

// registryEntries lists the entry files of every registry on the host.
func registryEntries() []string {
	var out []string
	for dir := range registry.Dirs() {
		ents, _ := os.ReadDir(dir)
		for _, e := range ents {
			out = append(out, filepath.Join(dir, e.Name()))
		}
	}
	return out
}

// waitClean retries check until it passes or wait has passed.
func (s *snapshot) waitClean(wait time.Duration) error {
	deadline := time.Now().Add(wait)
	for {
		err := s.check()
		if err == nil || time.Now().After(deadline) {
			return err
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// check compares the state now with the snapshot.
func (s *snapshot) check() error {
	var msgs []string
	lines, err := readLines("/proc/self/mountinfo")
	if err != nil {
		return err
	}
	var newMounts []string
	for _, l := range lines {
		if !s.mounts[l] {
			newMounts = append(newMounts, l)
		}
	}
	if len(newMounts) > 0 {
		msgs = append(msgs, "new mounts in /proc/self/mountinfo:\n\t"+strings.Join(newMounts, "\n\t"))
	}

	keys, err := readKeys()
	if err != nil {
		return err
	}
	var newKeys []string
	for _, k := range keys {
		if !s.keys[k.serial] && (strings.HasPrefix(k.desc, "containerfd") || strings.HasPrefix(k.desc, "cfdtest-")) {
			newKeys = append(newKeys, k.line)
		}
	}
	if len(newKeys) > 0 {
		msgs = append(msgs, "new keys in /proc/keys:\n\t"+strings.Join(newKeys, "\n\t"))
	}
	// A container's keyring is hidden from non-possessors, so /proc/keys
	// may not show it: count what root owns as well.
	if n, err := rootKeyCount(); err != nil {
		return err
	} else if n > s.rootKeys {
		msgs = append(msgs, fmt.Sprintf("root owns %d keys, %d before (see /proc/key-users)", n, s.rootKeys))
	}

	procs, err := listProcesses()
	if err != nil {
		return err
	}
	self := os.Getpid()
	var children, inTestCgroups []string
	for _, p := range procs {
		if s.processes[p.procID] {
			continue
		}
		desc := fmt.Sprintf("pid %d (%s) state %s: %s", p.pid, p.comm, p.state, p.cmdline)
		if p.ppid == self {
			children = append(children, desc)
		}
		if strings.Contains(p.cgroup, "cfdtest-") {
			inTestCgroups = append(inTestCgroups, desc+"\n\t\tcgroups: "+p.cgroup)
		}
	}
	var entries []string
	for _, e := range registryEntries() {
		if !s.registry[e] {
			b, _ := os.ReadFile(e)
			entries = append(entries, e+": "+string(b))
		}
	}
	if len(entries) > 0 {
		msgs = append(msgs, "new entries in the host-wide list of containers:\n\t"+strings.Join(entries, "\n\t"))
	}
	if len(children) > 0 {
		msgs = append(msgs, fmt.Sprintf("new child processes of the test process (pid %d):\n\t%s", self, strings.Join(children, "\n\t")))
	}
	if len(inTestCgroups) > 0 {
		msgs = append(msgs, "new processes in cfdtest- cgroups:\n\t"+strings.Join(inTestCgroups, "\n\t"))
	}
	names, err := keyreqEntries()
	if err != nil {
		return err
	}
	var newEntries []string
	for _, n := range names {
		if !s.keyreqs[n] {
			newEntries = append(newEntries, n)
		}
	}
	if len(newEntries) > 0 {
		msgs = append(msgs, fmt.Sprintf("new entries in %s: %s", keyreq.Dir, strings.Join(newEntries, " ")))
	}
	if len(msgs) > 0 {
		return errors.New(strings.Join(msgs, "\n"))
	}
	return nil
}

type keyInfo struct {
	serial string
	desc   string // description and summary, e.g. "cfdtest-x-1234: empty"
	line   string
}

// readKeys reads /proc/keys: the keys this process may view. A kernel built
// without it gives none.
func readKeys() ([]keyInfo, error) {
	lines, err := readLines("/proc/keys")
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var keys []keyInfo
	for _, l := range lines {
		// serial flags usage timeout perm uid gid type description: summary
		f := strings.Fields(l)
		if len(f) < 9 {
			continue
		}
		keys = append(keys, keyInfo{serial: f[0], desc: strings.Join(f[8:], " "), line: l})
	}
	return keys, nil
}

// rootKeyCount reads how many keys uid 0 owns from /proc/key-users
// ("0:     9 8/8 3/1000000 40/25000000": usage, then nkeys/ninstantiated).
func rootKeyCount() (int, error) {
	lines, err := readLines("/proc/key-users")
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	for _, l := range lines {
		f := strings.Fields(l)
		if len(f) >= 3 && f[0] == "0:" {
			n, err := strconv.Atoi(strings.SplitN(f[2], "/", 2)[0])
			if err != nil {
				return 0, fmt.Errorf("/proc/key-users: %q: %w", l, err)
			}
			return n, nil
		}
	}
	return 0, nil
}

// listProcesses reads every process in /proc. Processes that exit while it
// reads are left out.
func listProcesses() ([]procInfo, error) {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil, err
	}
	var procs []procInfo
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		p, err := readProcess(pid)
		if err != nil {
			continue
		}
		procs = append(procs, p)
	}
	return procs, nil
}

func readProcess(pid int) (procInfo, error) {
	dir := "/proc/" + strconv.Itoa(pid)
	stat, err := os.ReadFile(dir + "/stat")
	if err != nil {
		return procInfo{}, err
	}
	p, err := parseStat(pid, string(stat))
	if err != nil {
		return procInfo{}, err
	}
	cmdline, _ := os.ReadFile(dir + "/cmdline")
	p.cmdline = strings.TrimSpace(string(bytes.ReplaceAll(cmdline, []byte{0}, []byte{' '})))
	if p.cmdline == "" {
		p.cmdline = "[" + p.comm + "]"
	}
	cg, _ := os.ReadFile(dir + "/cgroup")
	p.cgroup = strings.Join(strings.Fields(string(cg)), " ")
	return p, nil
}

// parseStat parses /proc/<pid>/stat: "pid (comm) state ppid ... starttime ...".
// comm may hold spaces and parentheses, so it ends at the last ')'.
func parseStat(pid int, stat string) (procInfo, error) {
	open, end := strings.IndexByte(stat, '('), strings.LastIndexByte(stat, ')')
	if open < 0 || end < open || end+2 > len(stat) {
		return procInfo{}, fmt.Errorf("pid %d: malformed stat %q", pid, stat)
	}
	f := strings.Fields(stat[end+2:]) // f[0] is field 3 (state)
	if len(f) < 20 {
		return procInfo{}, fmt.Errorf("pid %d: short stat %q", pid, stat)
	}
	ppid, err := strconv.Atoi(f[1])
	if err != nil {
		return procInfo{}, fmt.Errorf("pid %d: ppid: %w", pid, err)
	}
	start, err := strconv.ParseUint(f[19], 10, 64) // field 22
	if err != nil {
		return procInfo{}, fmt.Errorf("pid %d: starttime: %w", pid, err)
	}
	return procInfo{procID: procID{pid, start}, ppid: ppid, comm: stat[open+1 : end], state: f[0]}, nil
}

func readMountinfo() ([]mountinfo.Entry, error) { return mountinfo.Read("/proc/self/mountinfo") }

func readLines(name string) ([]string, error) {
	data, err := os.ReadFile(name)
	if err != nil {
		return nil, err
	}
	return strings.Split(strings.TrimSuffix(string(data), "\n"), "\n"), nil
}

// Rootfs returns a fresh busybox root filesystem for the test, which the
// test may change: its own copy of Debian's static busybox in /bin, a symlink
// per applet, /etc/passwd, /etc/group and empty /proc /sys /dev /tmp /root,
// as hack/mkrootfs.sh makes it. The binary is copied, not hard-linked, so a
// test that chowns or rewrites its rootfs cannot change another's. It is
// removed after the test. Without a static busybox the test is skipped.
func Rootfs(t testing.TB) string {
	t.Helper()
	bb := loadBusybox()
	if bb.skip != "" {
		t.Skip(bb.skip)
	}
	if bb.err != nil {
		t.Fatalf("Rootfs: %v", bb.err)
	}
	dir, err := os.MkdirTemp("", "cfdrootfs-")
	if err != nil {
		t.Fatalf("Rootfs: %v", err)
	}
	t.Cleanup(func() { removeTree(t, dir) })
	if err := buildRootfs(dir, bb); err != nil {
		t.Fatalf("Rootfs: %v", err)
	}
	return dir
}

// busybox is what every Rootfs call needs, found once per test binary.
type busybox struct {
	path    string
	applets []string // "bin/sh", "usr/bin/awk", ...
	skip    string   // why tests needing it are skipped
	err     error
}

var loadBusybox = sync.OnceValue(func() busybox {
	var candidates []string
	if p, err := exec.LookPath("busybox"); err == nil {
		candidates = append(candidates, p)
	}
	candidates = append(candidates, "/bin/busybox")
	var dynamic string
	for _, p := range candidates {
		static, err := isStatic(p)
		if err != nil {
			continue
		}
		if !static {
			dynamic = p
			continue
		}
		out, err := exec.Command(p, "--list-full").Output()
		if err != nil {
			return busybox{err: fmt.Errorf("%s --list-full: %w", p, err)}
		}
		bb := busybox{path: p}
		for _, a := range strings.Fields(string(out)) {
			if strings.Contains(a, "/") && a != "bin/busybox" { // not "linuxrc"
				bb.applets = append(bb.applets, a)
			}
		}
		return bb
	}
	if dynamic != "" {
		return busybox{skip: fmt.Sprintf("needs a static busybox: %s is dynamically linked (apt-get install busybox-static, or run hack/deps.sh)", dynamic)}
	}
	return busybox{skip: "needs busybox-static (apt-get install busybox-static, or run hack/deps.sh)"}
})

// isStatic reports whether the ELF file at path needs no program interpreter.
func isStatic(path string) (bool, error) {
	f, err := elf.Open(path)
	if err != nil {
		return false, err
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return false, nil
		}
	}
	return true, nil
}

// Kept in step with hack/mkrootfs.sh.
const (
	etcPasswd = "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"
	etcGroup  = "root:x:0:\nnogroup:x:65534:\n"
)

func buildRootfs(dir string, bb busybox) error {
	if err := os.Chmod(dir, 0o755); err != nil {
		return err
	}
	for _, d := range []struct {
		name string
		mode os.FileMode
	}{
		{"bin", 0o755}, {"sbin", 0o755}, {"usr", 0o755}, {"usr/bin", 0o755}, {"usr/sbin", 0o755},
		{"etc", 0o755}, {"proc", 0o555}, {"sys", 0o555}, {"dev", 0o755}, {"root", 0o700},
		{"tmp", os.ModeSticky | 0o777},
	} {
		p := filepath.Join(dir, d.name)
		if err := os.Mkdir(p, d.mode); err != nil {
			return err
		}
		if err := os.Chmod(p, d.mode); err != nil { // past the umask
			return err
		}
	}
	if err := copyFile(bb.path, filepath.Join(dir, "bin/busybox"), 0o755); err != nil {
		return err
	}
	for _, a := range bb.applets {
		if err := os.Symlink("/bin/busybox", filepath.Join(dir, a)); err != nil {
			return err
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "etc/passwd"), []byte(etcPasswd), 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "etc/group"), []byte(etcGroup), 0o644)
}

func copyFile(src, dst string, mode os.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil { // copy_file_range where it can
		out.Close()
		return fmt.Errorf("copying %s: %w", src, err)
	}
	if err := out.Chmod(mode); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// Children lists the children of pid (from /proc/PID/task/*/children), or
// with argv0 those whose argv[0] it is.
func Children(pid int, argv0 string) []int {
	var pids []int
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", pid))
	for _, t := range tasks {
		b, _ := os.ReadFile(t)
		for _, f := range strings.Fields(string(b)) {
			n, err := strconv.Atoi(f)
			if err != nil {
				continue
			}
			if argv0 != "" {
				cmd, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", n))
				if !strings.HasPrefix(string(cmd), argv0+"\x00") {
					continue
				}
			}
			pids = append(pids, n)
		}
	}
	return pids
}
