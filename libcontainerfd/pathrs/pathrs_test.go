package pathrs

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/containerfd/containerfd/internal/testutil"
	"golang.org/x/sys/unix"
)

// fixture is a root directory and a directory outside it, both temporary.
type fixture struct {
	root    string // the container root, as a host path
	rootfd  int
	outside string // a host directory outside root, as an absolute path
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{root: t.TempDir(), outside: t.TempDir()}
	fd, err := unix.Open(f.root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.rootfd = fd
	t.Cleanup(func() { unix.Close(fd) })
	return f
}

// inRoot is the host path of p inside the root.
func (f *fixture) inRoot(p string) string { return filepath.Join(f.root, p) }

func (f *fixture) symlink(t *testing.T, target, name string) {
	t.Helper()
	p := f.inRoot(name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(target, p); err != nil {
		t.Fatal(err)
	}
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

func readFd(t *testing.T, fd int) string {
	t.Helper()
	f := os.NewFile(uintptr(fd), "x")
	defer f.Close()
	b := make([]byte, 100)
	n, _ := f.Read(b)
	return string(b[:n])
}

// fdPath is where fd points, from the host's view.
func fdPath(t *testing.T, fd int) string {
	t.Helper()
	p, err := os.Readlink("/proc/self/fd/" + itoa(fd))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func itoa(i int) string {
	if i == 0 {
		return "0"
	}
	var b []byte
	for ; i > 0; i /= 10 {
		b = append([]byte{byte('0' + i%10)}, b...)
	}
	return string(b)
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

func checkOPath(t *testing.T, fd int) {
	t.Helper()
	fl, err := unix.FcntlInt(uintptr(fd), unix.F_GETFL, 0)
	if err != nil {
		t.Fatal(err)
	}
	if fl&unix.O_PATH == 0 {
		t.Errorf("fd %d is not O_PATH (flags %#o)", fd, fl)
	}
}

// escapePaths are ways to name outside/secret from inside the root: each must
// resolve to root/<outside>/secret instead.
func escapePaths(f *fixture, t *testing.T) map[string]string {
	rel := strings.Repeat("../", 20) + strings.TrimPrefix(f.outside, "/")
	f.symlink(t, f.outside, "abs")
	f.symlink(t, rel, "rel")
	f.symlink(t, "c2/..//c3", "c1") // chained: c1 -> c2 -> ..., then c3 -> outside
	f.symlink(t, "/sub/deeper", "c2")
	f.symlink(t, "../../../"+rel, "sub/c3")
	f.symlink(t, f.outside+"/secret", "final")
	f.symlink(t, "../../../"+rel+"/secret", "sub/final")
	if err := os.MkdirAll(f.inRoot("sub/deeper"), 0o755); err != nil {
		t.Fatal(err)
	}
	return map[string]string{
		"dotdot":           "../../../../../../../../" + f.outside + "/secret",
		"absolute":         f.outside + "/secret",
		"abs symlink":      "abs/secret",
		"rel symlink":      "rel/secret",
		"chained symlinks": "c1/secret",
		"final symlink":    "final",
		"final rel link":   "sub/final",
		"dotdot in dir":    "sub/deeper/../../../../../" + f.outside + "/secret",
	}
}

func TestOpenInRootEscapes(t *testing.T) {
	f := newFixture(t)
	writeFile(t, filepath.Join(f.outside, "secret"), "outside")
	paths := escapePaths(f, t)

	// Nothing at root/<outside>/secret yet: every lookup fails.
	for name, p := range paths {
		fd, err := OpenInRoot(f.rootfd, p, unix.O_RDONLY, 0)
		if err == nil {
			t.Errorf("%s: %q opened %s, want ENOENT", name, p, fdPath(t, fd))
			unix.Close(fd)
		} else if !errors.Is(err, unix.ENOENT) {
			t.Errorf("%s: %q: %v, want ENOENT", name, p, err)
		}
	}
	// With a decoy inside the root, every lookup reaches the decoy.
	writeFile(t, f.inRoot(f.outside+"/secret"), "inside")
	for name, p := range paths {
		fd, err := OpenInRoot(f.rootfd, p, unix.O_RDONLY, 0)
		if err != nil {
			t.Errorf("%s: %q: %v", name, p, err)
			continue
		}
		checkCloexec(t, fd)
		if got := readFd(t, fd); got != "inside" {
			t.Errorf("%s: %q read %q, want %q", name, p, got, "inside")
		}
	}
	// O_CREAT through an escaping symlink creates inside.
	fd, err := OpenInRoot(f.rootfd, "abs/created", unix.O_CREAT|unix.O_WRONLY, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	unix.Close(fd)
	if _, err := os.Stat(filepath.Join(f.outside, "created")); err == nil {
		t.Error("O_CREAT through abs symlink created a file outside the root")
	}
	if st, err := os.Stat(f.inRoot(f.outside + "/created")); err != nil {
		t.Error(err)
	} else if st.Mode().Perm() != 0o600 {
		t.Errorf("created with mode %v, want 0600", st.Mode().Perm())
	}
	// Errors name the path.
	_, err = OpenInRoot(f.rootfd, "no/such", unix.O_RDONLY, 0)
	if err == nil || !strings.Contains(err.Error(), "open no/such in root") {
		t.Errorf("error %v does not name the operation and path", err)
	}
}

func TestMkdirAllInRoot(t *testing.T) {
	f := newFixture(t)
	if err := os.MkdirAll(f.inRoot("real/b"), 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, f.inRoot("real/file"), "x")
	f.symlink(t, "real", "rel")           // relative, inside
	f.symlink(t, "/real/b", "abslink")    // absolute, inside
	f.symlink(t, f.outside, "evil")       // absolute, pointing outside
	f.symlink(t, "../../../..", "up")     // relative, above the root
	f.symlink(t, "missing/deeper", "dng") // dangling
	f.symlink(t, "loop2", "loop1")
	f.symlink(t, "loop1", "loop2")

	cases := []struct {
		path string
		want string // where the dir must be, relative to the root
	}{
		{"new/a/b", "new/a/b"},
		{"/real/b", "real/b"},
		{"rel/c/d", "real/c/d"},
		{"abslink/e", "real/b/e"},
		{"evil/x/y", f.outside + "/x/y"},
		{"up/top", "top"},
		{"up/" + f.outside + "/z", f.outside + "/z"},
		{"dng/n", "missing/deeper/n"},
		{"new/../../../dd/./e//f", "dd/e/f"},
		{"new/q/../../r", "r"},
		{"rel", "real"},
		{"/", "."},
	}
	for _, c := range cases {
		fd, err := MkdirAllInRoot(f.rootfd, c.path, 0o755)
		if err != nil {
			t.Errorf("MkdirAllInRoot(%q): %v", c.path, err)
			continue
		}
		checkCloexec(t, fd)
		checkOPath(t, fd)
		want := filepath.Clean(f.inRoot(c.want))
		if got := fdPath(t, fd); got != want {
			t.Errorf("MkdirAllInRoot(%q) = %s, want %s", c.path, got, want)
		}
		unix.Close(fd)
		if st, err := os.Lstat(want); err != nil || !st.IsDir() {
			t.Errorf("MkdirAllInRoot(%q): %s is not a directory: %v", c.path, want, err)
		}
	}
	if ents, _ := os.ReadDir(f.outside); len(ents) != 0 {
		t.Errorf("something was created outside the root: %v", ents)
	}

	// A component that is not a directory is named in the error.
	_, err := MkdirAllInRoot(f.rootfd, "rel/file/sub", 0o755)
	if !errors.Is(err, unix.ENOTDIR) {
		t.Errorf("through a file: %v, want ENOTDIR", err)
	} else if !strings.Contains(err.Error(), "mkdir rel/file/sub in root: real/file exists and is not a directory") {
		t.Errorf("error does not name the component: %v", err)
	}
	_, err = MkdirAllInRoot(f.rootfd, "real/file", 0o755)
	if !errors.Is(err, unix.ENOTDIR) {
		t.Errorf("onto a file: %v, want ENOTDIR", err)
	}
	_, err = MkdirAllInRoot(f.rootfd, "loop1/x", 0o755)
	if !errors.Is(err, unix.ELOOP) {
		t.Errorf("symlink loop: %v, want ELOOP", err)
	}
	// Long paths do not run out of anything.
	long := strings.Repeat("d/", 100)
	fd, err := MkdirAllInRoot(f.rootfd, long, 0o755)
	if err != nil {
		t.Fatalf("100 levels: %v", err)
	}
	unix.Close(fd)
}

// A symlink swapped in for a directory right after mkdirat makes the call
// fail; nothing is created outside the root.
func TestMkdirAllSwappedSymlink(t *testing.T) {
	f := newFixture(t)
	testHookAfterMkdir = func(dirfd int, name string) {
		if name != "victim" {
			return
		}
		if err := unix.Unlinkat(dirfd, name, unix.AT_REMOVEDIR); err != nil {
			t.Error(err)
		}
		if err := unix.Symlinkat(f.outside, dirfd, name); err != nil {
			t.Error(err)
		}
	}
	defer func() { testHookAfterMkdir = nil }()
	_, err := MkdirAllInRoot(f.rootfd, "a/victim/b/c", 0o755)
	if !errors.Is(err, unix.ELOOP) {
		t.Errorf("got %v, want ELOOP", err)
	}
	_, err = CreateFileInRoot(f.rootfd, "x/victim/file", 0o644)
	if !errors.Is(err, unix.ELOOP) {
		t.Errorf("got %v, want ELOOP", err)
	}
	if ents, _ := os.ReadDir(f.outside); len(ents) != 0 {
		t.Errorf("something was created outside the root: %v", ents)
	}
}

// Racing a directory against a symlink to the outside (renameat2
// RENAME_EXCHANGE) never gets anything created outside the root.
func TestMkdirAllRace(t *testing.T) {
	f := newFixture(t)
	if err := os.Mkdir(f.inRoot("d"), 0o755); err != nil {
		t.Fatal(err)
	}
	f.symlink(t, f.outside, "s")
	stop := testutil.SwapRace(t, f.root, "d", "s")
	var ok, failed int
	for i := 0; i < 2000; i++ {
		p := "d/x" + itoa(i%7) + "/y"
		if fd, err := MkdirAllInRoot(f.rootfd, p, 0o755); err != nil {
			failed++
		} else {
			ok++
			if got := fdPath(t, fd); !strings.HasPrefix(got, f.root+"/") {
				t.Errorf("MkdirAllInRoot(%q) = %s, outside the root", p, got)
			}
			unix.Close(fd)
		}
		if fd, err := CreateFileInRoot(f.rootfd, p+"/f", 0o644); err == nil {
			if got := fdPath(t, fd); !strings.HasPrefix(got, f.root+"/") {
				t.Errorf("CreateFileInRoot(%q) = %s, outside the root", p, got)
			}
			unix.Close(fd)
		}
	}
	stop()
	t.Logf("%d lookups succeeded, %d failed", ok, failed)
	if ents, _ := os.ReadDir(f.outside); len(ents) != 0 {
		t.Errorf("something was created outside the root: %v", ents)
	}
}

func TestCreateFileInRoot(t *testing.T) {
	f := newFixture(t)
	f.symlink(t, f.outside+"/target", "etc/link")
	writeFile(t, f.inRoot("existing"), "keep me")
	if err := os.MkdirAll(f.inRoot("adir"), 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, f.inRoot("notdir"), "")

	fd, err := CreateFileInRoot(f.rootfd, "/etc/hostname", 0o644)
	if err != nil {
		t.Fatal(err)
	}
	checkCloexec(t, fd)
	checkOPath(t, fd)
	if got, want := fdPath(t, fd), f.inRoot("etc/hostname"); got != want {
		t.Errorf("got %s, want %s", got, want)
	}
	unix.Close(fd)
	if st, err := os.Lstat(f.inRoot("etc/hostname")); err != nil || !st.Mode().IsRegular() || st.Size() != 0 {
		t.Errorf("etc/hostname: %v %v", st, err)
	}

	// An existing file is fine and not truncated.
	fd, err = CreateFileInRoot(f.rootfd, "existing", 0o644)
	if err != nil {
		t.Fatal(err)
	}
	unix.Close(fd)
	if b, _ := os.ReadFile(f.inRoot("existing")); string(b) != "keep me" {
		t.Errorf("existing file now holds %q", b)
	}

	// A final symlink pointing outside lands inside; so do escaping parents.
	for _, p := range []string{"etc/link", "../../../" + f.outside + "/other"} {
		fd, err = CreateFileInRoot(f.rootfd, p, 0o644)
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		if got := fdPath(t, fd); !strings.HasPrefix(got, f.inRoot(f.outside)+"/") {
			t.Errorf("%s: created %s, want under %s", p, got, f.inRoot(f.outside))
		}
		unix.Close(fd)
	}
	if ents, _ := os.ReadDir(f.outside); len(ents) != 0 {
		t.Errorf("something was created outside the root: %v", ents)
	}

	for _, p := range []string{"adir", "adir/..", "/", "adir/."} {
		if _, err := CreateFileInRoot(f.rootfd, p, 0o644); !errors.Is(err, unix.EISDIR) {
			t.Errorf("CreateFileInRoot(%q): %v, want EISDIR", p, err)
		}
	}
	if _, err := CreateFileInRoot(f.rootfd, "notdir/x", 0o644); !errors.Is(err, unix.ENOTDIR) {
		t.Errorf("through a file: %v, want ENOTDIR", err)
	} else if !strings.Contains(err.Error(), "create notdir/x in root: notdir exists") {
		t.Errorf("error does not name the component: %v", err)
	}
}

// The parents CreateFileInRoot makes are directories one can enter, whatever
// the file's own mode.
func TestCreateFileParentsMode(t *testing.T) {
	dir := t.TempDir()
	root, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(root)
	old := unix.Umask(0)
	defer unix.Umask(old)
	fd, err := CreateFileInRoot(root, "/a/b/file", 0o600)
	if err != nil {
		t.Fatal(err)
	}
	unix.Close(fd)
	for p, want := range map[string]uint32{"a": 0o755, "a/b": 0o755, "a/b/file": 0o600} {
		var st unix.Stat_t
		if err := unix.Lstat(dir+"/"+p, &st); err != nil {
			t.Fatal(err)
		}
		if st.Mode&0o7777 != want {
			t.Errorf("%s: mode %o, want %o", p, st.Mode&0o7777, want)
		}
	}
}
