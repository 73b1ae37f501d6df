package mounttree

import (
	"fmt"
	mi "github.com/containerfd/containerfd/internal/mountinfo"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// Every test that mounts runs its body in a re-executed copy of the test
// binary with its own mount (and IPC) namespace, whose "/" is made rprivate
// first: nothing it mounts can reach the host's mount table, and everything
// goes away when it exits. The parent compares the host's mountinfo before
// and after.

const (
	// envChild holds the name of the test a re-executed child runs.
	envChild = "MOUNTTREE_TEST_CHILD"
	// envHelper selects a helper mode of the test binary (see TestMain).
	envHelper = "MOUNTTREE_TEST_HELPER"
	// marker is the source name of every filesystem the tests create, so a
	// leak into the host's mount table is recognisable.
	marker = "mounttree-test"
)

func TestMain(m *testing.M) {
	switch os.Getenv(envHelper) {
	case "":
		os.Exit(m.Run())
	case "proc-in-pidns":
		// The fallback when proc cannot be mounted from outside: a process
		// inside the pid namespace mounts it with its own namespaces.
		if err := procInPidns(os.Getenv("MOUNTTREE_TEST_ROOT")); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	default:
		fmt.Fprintln(os.Stderr, "unknown helper", os.Getenv(envHelper))
		os.Exit(2)
	}
}

func procInPidns(rootPath string) error {
	root, err := unix.Open(rootPath, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	m := Mount{Type: "proc", Source: marker, Target: "/proc", Attr: unix.MOUNT_ATTR_NOSUID | unix.MOUNT_ATTR_NODEV | unix.MOUNT_ATTR_NOEXEC}
	fd, err := Open(m, OwnNamespaces())
	if err != nil {
		return err
	}
	if err := Attach(root, m, fd); err != nil {
		return err
	}
	fmt.Printf("pids: %s\n", strings.Join(pids(filepath.Join(rootPath, "proc")), " "))
	return nil
}

// isolated reports whether the calling test's body is to run in this
// process. In the test process it re-executes the test in a child with new
// mount and IPC namespaces (with env added), relays its output, checks the
// host's mount table, and returns false. In that child it makes "/"
// rprivate and returns true.
func isolated(t *testing.T, env ...string) bool {
	t.Helper()
	if os.Getenv(envChild) == t.Name() {
		if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
			t.Fatalf("make / rprivate: %v", err)
		}
		return true
	}
	if os.Geteuid() != 0 {
		t.Skip("mounting needs root")
	}
	tmp := t.TempDir()
	before := readLines(t, "/proc/self/mountinfo")

	var run []string
	for _, part := range strings.Split(t.Name(), "/") {
		run = append(run, "^"+regexp.QuoteMeta(part)+"$")
	}
	cmd := exec.Command(os.Args[0], "-test.run="+strings.Join(run, "/"), "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), envChild+"="+t.Name(), "TMPDIR="+tmp)
	cmd.Env = append(cmd.Env, env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWNS | syscall.CLONE_NEWIPC}
	out, err := cmd.CombinedOutput()
	for _, line := range strings.Split(strings.TrimRight(string(out), "\n"), "\n") {
		// The child's own result lines would confuse the reader.
		if strings.HasPrefix(line, "=== RUN") || line == "PASS" || line == "FAIL" || strings.HasPrefix(line, "ok ") {
			continue
		}
		t.Log("child: " + line)
	}

	after := readLines(t, "/proc/self/mountinfo")
	for _, line := range after {
		if slices.Contains(before, line) {
			continue
		}
		if strings.Contains(line, tmp) || strings.Contains(line, marker) {
			t.Errorf("a mount leaked into the host's mount table: %s", line)
		} else {
			t.Logf("new host mount, not from this test (another process?): %s", line)
		}
	}
	if err != nil {
		t.Fatalf("test child: %v", err)
	}
	if m := regexp.MustCompile(`--- SKIP: \S+ \([^)]*\)\n\s*(.*)`).FindStringSubmatch(string(out)); m != nil {
		t.Skip("child skipped: " + m[1])
	}
	return false
}

func readLines(t *testing.T, p string) []string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimRight(string(b), "\n"), "\n")
}

// tempDir makes a directory under TMPDIR, which the parent test process
// removes once the child (and its mount namespace) is gone.
func tempDir(t *testing.T) string {
	t.Helper()
	d, err := os.MkdirTemp("", "mt")
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// openRoot opens dir as a root fd, in this process's mount namespace.
func openRoot(t *testing.T, dir string) int {
	t.Helper()
	fd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	return fd
}

// open calls Open, checks the fd is close-on-exec and closes it at the end.
func open(t *testing.T, m Mount, ns Namespaces) int {
	t.Helper()
	fd, err := Open(m, ns)
	if err != nil {
		t.Fatal(err)
	}
	checkCloexec(t, fd)
	t.Cleanup(func() { unix.Close(fd) })
	return fd
}

func attach(t *testing.T, root int, m Mount, fd int) {
	t.Helper()
	if err := Attach(root, m, fd); err != nil {
		t.Fatal(err)
	}
}

// openAttach is Open and Attach.
func openAttach(t *testing.T, root int, m Mount, ns Namespaces) {
	t.Helper()
	attach(t, root, m, open(t, m, ns))
}

func checkCloexec(t *testing.T, fd int) {
	t.Helper()
	fl, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0)
	if err != nil {
		t.Fatal(err)
	}
	if fl&unix.FD_CLOEXEC == 0 {
		t.Errorf("fd %d is not close-on-exec", fd)
	}
}

// mountEntry is one line of mountinfo.
type mountEntry struct {
	ID, Parent int
	Root       string
	MountPoint string
	Opts       []string // per-mount options
	Optional   []string // shared:N, master:N, unbindable
	FSType     string
	Source     string
	SuperOpts  []string
	Line       string
}

func mountinfo(t *testing.T) []mountEntry {
	t.Helper()
	es, err := mi.Read("/proc/thread-self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	ms := make([]mountEntry, len(es))
	for i, e := range es {
		id, _ := strconv.Atoi(e.ID)
		parent, _ := strconv.Atoi(e.Parent)
		ms[i] = mountEntry{ID: id, Parent: parent, Root: e.Root, MountPoint: e.Mountpoint,
			Opts: strings.Split(e.Options, ","), Optional: e.Optional, FSType: e.FSType, Source: e.Source,
			SuperOpts: strings.Split(e.SuperOptions, ","), Line: e.Line}
	}
	return ms
}

// mountAt returns the topmost mount on mountpoint, failing the test if there
// is none.
func mountAt(t *testing.T, mountpoint string) mountEntry {
	t.Helper()
	var found *mountEntry
	ms := mountinfo(t)
	for i := range ms {
		if ms[i].MountPoint == mountpoint {
			found = &ms[i]
		}
	}
	if found == nil {
		t.Fatalf("nothing mounted on %s", mountpoint)
	}
	return *found
}

func isMountPoint(t *testing.T, p string) bool {
	t.Helper()
	for _, m := range mountinfo(t) {
		if m.MountPoint == p {
			return true
		}
	}
	return false
}

// checkMount checks the topmost mount on mountpoint: its type, that it has
// (unless fstype is empty), every option in want and none in not (per-mount or superblock options).
func checkMount(t *testing.T, mountpoint, fstype string, want, not []string) mountEntry {
	t.Helper()
	m := mountAt(t, mountpoint)
	if fstype != "" && m.FSType != fstype {
		t.Errorf("%s: type %s, want %s (%s)", mountpoint, m.FSType, fstype, m.Line)
	}
	all := append(append([]string(nil), m.Opts...), m.SuperOpts...)
	for _, o := range want {
		if !slices.Contains(all, o) {
			t.Errorf("%s: option %s missing (%s)", mountpoint, o, m.Line)
		}
	}
	for _, o := range not {
		if slices.Contains(m.Opts, o) {
			t.Errorf("%s: unexpected option %s (%s)", mountpoint, o, m.Line)
		}
	}
	return m
}

// spawn starts `sleep` with cloneflags and stops it at the end of the test.
func spawn(t *testing.T, attr *syscall.SysProcAttr) int {
	t.Helper()
	cmd := exec.Command("sleep", "1000")
	cmd.SysProcAttr = attr
	if err := cmd.Start(); err != nil {
		t.Skipf("cannot start sleep in new namespaces: %v", err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	return cmd.Process.Pid
}

// nsFD opens /proc/<pid>/ns/<name>.
func nsFD(t *testing.T, pid int, name string) int {
	t.Helper()
	fd, err := unix.Open(fmt.Sprintf("/proc/%d/ns/%s", pid, name), unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	return fd
}

func readDir(t *testing.T, p string) []string {
	t.Helper()
	ents, err := os.ReadDir(p)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

// pids lists the numeric entries of a proc mount.
func pids(proc string) []string {
	ents, _ := os.ReadDir(proc)
	var ps []string
	for _, e := range ents {
		if _, err := strconv.Atoi(e.Name()); err == nil {
			ps = append(ps, e.Name())
		}
	}
	return ps
}

func writeFile(t *testing.T, p, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// mountTmpfs mounts a plain tmpfs on a host path of the test's namespace
// (test set-up, not the code under test).
func mountTmpfs(t *testing.T, p string, flags uintptr) {
	t.Helper()
	if err := os.MkdirAll(p, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount(marker, p, "tmpfs", flags, ""); err != nil {
		t.Fatal(err)
	}
}
