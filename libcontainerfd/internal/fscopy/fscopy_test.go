package fscopy

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/containerfd/containerfd/internal/testutil"
	"github.com/containerfd/containerfd/libcontainerfd/idmap"
	"golang.org/x/sys/unix"
)

// fakeRoot is a container side whose root is a plain directory: the copier
// resolves it as it does a container's /proc/<pid>/root.
func fakeRoot(t *testing.T, dir string) Side {
	fd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	return Side{Root: fd, Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS, Prefix: "container test:"}
}

var identity = idmap.Map{{ContainerID: 0, HostID: 0, Size: 1<<32 - 1}}

// outRules are CopyOut's rules for a container with the map m.
func outRules(m idmap.Map) Rules {
	return Rules{NoDevices: true, Times: true,
		IDs: func(u, g uint32) (uint32, uint32, error) {
			return toContainer(m, u), toContainer(m, g), nil
		}}
}

func copyOut(ctr Side, src, dst string) error {
	return Copy(ctr, src, Host(), dst, outRules(identity))
}

func copyIn(ctr Side, m idmap.Map, src, dst string) error {
	return Copy(Host(), src, ctr, dst, Rules{Times: true,
		IDs: func(u, g uint32) (uint32, uint32, error) {
			uu, _ := m.ToHost(u)
			gg, _ := m.ToHost(g)
			return uu, gg, nil
		}})
}

// toContainer maps id as CopyOut does, to the overflow id if unmapped.
func toContainer(m idmap.Map, id uint32) uint32 {
	if in, ok := m.ToContainer(id); ok {
		return in
	}
	return 65534
}

func write(t *testing.T, p, s string, mode os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(s), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil {
		t.Fatal(err)
	}
}

func read(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestCopyDocker(t *testing.T) {
	root := t.TempDir()
	write(t, filepath.Join(root, "d/f"), "f", 0o640)
	write(t, filepath.Join(root, "d/sub/g"), "g", 0o600)
	if err := os.Symlink("../../etc/x", filepath.Join(root, "d/l")); err != nil {
		t.Fatal(err)
	}
	ctr := fakeRoot(t, root)
	host := t.TempDir()

	// To a new name, then into an existing directory, then the contents.
	for _, c := range []struct{ src, dst, check string }{
		{"/d/f", host + "/new", host + "/new"},
		{"d/f", host, host + "/f"},
		{"/d", host + "/tree", host + "/tree/sub/g"},
		{"/d", host + "/tree", host + "/tree/d/sub/g"},
		{"/d/.", host + "/flat/", ""},
	} {
		if c.dst == host+"/flat/" {
			os.Mkdir(host+"/flat", 0o755)
		}
		if err := copyOut(ctr, c.src, c.dst); err != nil {
			t.Fatalf("copy %s %s: %v", c.src, c.dst, err)
		}
		if c.check != "" {
			if _, err := os.Stat(c.check); err != nil {
				t.Errorf("copy %s %s: %v", c.src, c.dst, err)
			}
		}
	}
	if s := read(t, host+"/flat/sub/g"); s != "g" {
		t.Errorf("contents copy: %q", s)
	}
	if l, err := os.Readlink(host + "/tree/l"); err != nil || l != "../../etc/x" {
		t.Errorf("symlink: %q %v", l, err)
	}
	if fi, err := os.Stat(host + "/tree/sub/g"); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("mode: %v %v", fi, err)
	}
	// A file over an existing file replaces it; a directory over a file fails.
	if err := copyOut(ctr, "/d/sub/g", host+"/new"); err != nil || read(t, host+"/new") != "g" {
		t.Errorf("replace: %v", err)
	}
	if err := copyOut(ctr, "/d", host+"/new"); err == nil {
		t.Error("directory over a file: no error")
	}
	if err := copyOut(ctr, "/nope", host+"/x"); err == nil {
		t.Error("missing source: no error")
	}
	if err := copyOut(ctr, "/d/f", host+"/nodir/x"); err == nil {
		t.Error("missing parent: no error")
	}
	if err := copyOut(ctr, "/d/f", host+"/nodir/"); err == nil {
		t.Error("missing directory with /: no error")
	}
}

func TestCopyEscape(t *testing.T) {
	root := t.TempDir()
	write(t, filepath.Join(root, "etc/passwd"), "inside\n", 0o644)
	for name, target := range map[string]string{"abs": "/etc", "rel": "../../../../../etc"} {
		if err := os.Symlink(target, filepath.Join(root, name)); err != nil {
			t.Fatal(err)
		}
	}
	ctr := fakeRoot(t, root)
	host := t.TempDir()
	hostFile := filepath.Join(host, "in")
	write(t, hostFile, "written\n", 0o644)
	for _, name := range []string{"abs", "rel"} {
		out := filepath.Join(host, name)
		if err := copyOut(ctr, "/"+name+"/passwd", out); err != nil {
			t.Fatal(err)
		}
		if s := read(t, out); s != "inside\n" {
			t.Errorf("%s: read %q, want the root's own", name, s)
		}
		if err := copyIn(ctr, identity, hostFile, "/"+name+"/cfdcp-"+name); err != nil {
			t.Fatal(err)
		}
		if s := read(t, filepath.Join(root, "etc/cfdcp-"+name)); s != "written\n" {
			t.Errorf("%s: wrote %q", name, s)
		}
		if _, err := os.Lstat("/etc/cfdcp-" + name); err == nil {
			os.Remove("/etc/cfdcp-" + name)
			t.Errorf("%s: wrote the host's /etc", name)
		}
		// Copying into the symlink itself as a directory lands in the root too.
		if err := copyIn(ctr, identity, hostFile, "/"+name); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(filepath.Join(root, "etc/in")); err != nil {
			t.Errorf("%s: into a symlinked directory: %v", name, err)
		}
	}
	// Merging into a tree never follows a symlink below its top.
	if err := os.MkdirAll(filepath.Join(root, "merge"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(root, "elsewhere"), 0o755); err != nil {
		t.Fatal(err)
	}
	mustSymlinkT(t, "../elsewhere", filepath.Join(root, "merge/sub"))
	write(t, filepath.Join(host, "merge/sub/f"), "f", 0o644)
	if err := copyIn(ctr, identity, host+"/merge/.", "/merge"); err == nil {
		t.Error("merging through a symlink: no error")
	}
	if _, err := os.Lstat(filepath.Join(root, "elsewhere/f")); err == nil {
		t.Error("merging followed a symlink")
	}
	// A symlink below the top of a tree is copied, never followed.
	if err := copyOut(ctr, "/", filepath.Join(host, "all")); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Lstat(filepath.Join(host, "all/abs")); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Errorf("symlink in tree: %v %v", fi, err)
	}
}

func TestCopyOwnersUserns(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root to chown")
	}
	root := t.TempDir()
	m := idmap.Map{{ContainerID: 0, HostID: 100000, Size: 65536}}
	ctr := fakeRoot(t, root)
	host := t.TempDir()
	write(t, filepath.Join(host, "d/f"), "x", 0o4755)
	if err := os.Chown(filepath.Join(host, "d/f"), 1000, 1000); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(host, "d/f"), 0o755|os.ModeSetuid); err != nil { // chown cleared it
		t.Fatal(err)
	}
	if err := copyIn(ctr, m, filepath.Join(host, "d"), "/d"); err != nil {
		t.Fatal(err)
	}
	var st unix.Stat_t
	if err := unix.Stat(filepath.Join(root, "d/f"), &st); err != nil {
		t.Fatal(err)
	}
	if st.Uid != 101000 || st.Gid != 101000 || st.Mode&0o7777 != 0o4755 {
		t.Errorf("copied in: %d:%d %#o, want 101000:101000 04755", st.Uid, st.Gid, st.Mode&0o7777)
	}
	if err := unix.Stat(filepath.Join(root, "d"), &st); err != nil || st.Uid != 100000 {
		t.Errorf("directory copied in: uid %d %v, want 100000", st.Uid, err)
	}
	// Back out: the container's ids, setuid cleared.
	r := outRules(m)
	r.ClearSetid = true
	if err := Copy(ctr, "/d/f", Host(), filepath.Join(host, "back"), r); err != nil {
		t.Fatal(err)
	}
	if err := unix.Stat(filepath.Join(host, "back"), &st); err != nil {
		t.Fatal(err)
	}
	if st.Uid != 1000 || st.Gid != 1000 || st.Mode&0o7777 != 0o755 {
		t.Errorf("copied out: %d:%d %#o, want 1000:1000 0755", st.Uid, st.Gid, st.Mode&0o7777)
	}
	if got := toContainer(m, 5); got != 65534 {
		t.Errorf("unmapped id: %d", got)
	}
}

func mustSymlinkT(t *testing.T, target, p string) {
	t.Helper()
	if err := os.Symlink(target, p); err != nil {
		t.Fatal(err)
	}
}

// A directory swapped for a symlink to a host directory while copies run
// makes them fail or land in the root, never in the host directory.
func TestCopyRace(t *testing.T) {
	root, outside, host := t.TempDir(), t.TempDir(), t.TempDir()
	write(t, filepath.Join(host, "src/sub/f"), "f", 0o644)
	write(t, filepath.Join(root, "d/sub/f"), "inside", 0o644)
	ctr := fakeRoot(t, root)
	// Swap d/sub (a directory) and d/tmp (a symlink out) back and forth.
	os.Symlink(outside, filepath.Join(root, "d/tmp"))
	stop := testutil.SwapRace(t, root, "d/sub", "d/tmp")
	for i := 0; i < 300; i++ {
		copyIn(ctr, identity, host+"/src/.", "/d")
		copyOut(ctr, "/d/sub/f", filepath.Join(host, "out"))
		copyOut(ctr, "/d", filepath.Join(host, "tree"))
		os.RemoveAll(filepath.Join(host, "tree"))
	}
	stop()
	if ents, _ := os.ReadDir(outside); len(ents) != 0 {
		t.Errorf("copy in wrote outside the root: %v", ents)
	}
	if b, err := os.ReadFile(filepath.Join(host, "out")); err == nil && string(b) != "inside" && string(b) != "f" {
		t.Errorf("copy out read %q", b)
	}
}

// CopyUp copies every kind of entry, sockets and devices too, with owner
// and mode (setuid kept) but not times.
func TestCopyUp(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root to chown and mknod")
	}
	root, mnt := t.TempDir(), t.TempDir()
	d := filepath.Join(root, "bin")
	write(t, filepath.Join(d, "sub/f"), "f", 0o644)
	write(t, filepath.Join(d, "suid"), "x", 0o755)
	if err := os.Chown(filepath.Join(d, "suid"), 1000, 1001); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(d, "suid"), 0o755|os.ModeSetuid); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(d, "sub"), 0o710); err != nil {
		t.Fatal(err)
	}
	mustSymlinkT(t, "sub/f", filepath.Join(d, "l"))
	if err := unix.Mkfifo(filepath.Join(d, "fifo"), 0o640); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mknod(filepath.Join(d, "null"), unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3))); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(d, "null"), 0o666); err != nil { // past the umask
		t.Fatal(err)
	}
	sock, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(sock)
	if err := unix.Bind(sock, &unix.SockaddrUnix{Name: filepath.Join(d, "sock")}); err != nil {
		t.Fatal(err)
	}
	old := time.Date(2001, 1, 1, 0, 0, 0, 0, time.UTC)
	if err := os.Chtimes(filepath.Join(d, "sub/f"), old, old); err != nil {
		t.Fatal(err)
	}
	rootfd := fakeRoot(t, root).Root
	mntfd := fakeRoot(t, mnt).Root
	if err := CopyUp(rootfd, "/bin", mntfd); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]uint32{
		"sub": unix.S_IFDIR | 0o710, "sub/f": unix.S_IFREG | 0o644, "suid": unix.S_IFREG | 0o4755,
		"l": unix.S_IFLNK, "fifo": unix.S_IFIFO | 0o640, "null": unix.S_IFCHR | 0o666, "sock": unix.S_IFSOCK,
	} {
		var st unix.Stat_t
		if err := unix.Lstat(filepath.Join(mnt, name), &st); err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		mask := uint32(unix.S_IFMT | 0o7777)
		if want == unix.S_IFLNK || want == unix.S_IFSOCK {
			mask = unix.S_IFMT
		}
		if st.Mode&mask != want {
			t.Errorf("%s: mode %#o, want %#o", name, st.Mode&mask, want)
		}
		if name == "suid" && (st.Uid != 1000 || st.Gid != 1001) {
			t.Errorf("suid: owner %d:%d, want 1000:1001", st.Uid, st.Gid)
		}
		if name == "null" && st.Rdev != unix.Mkdev(1, 3) {
			t.Errorf("null: rdev %#x", st.Rdev)
		}
	}
	if fi, err := os.Stat(filepath.Join(mnt, "sub/f")); err != nil || fi.ModTime().Equal(old) {
		t.Errorf("sub/f: times copied (%v, %v)", fi.ModTime(), err)
	}
	if l, err := os.Readlink(filepath.Join(mnt, "l")); err != nil || l != "sub/f" {
		t.Errorf("l: %q %v", l, err)
	}
	// A target that does not exist copies nothing.
	empty := t.TempDir()
	if err := CopyUp(rootfd, "/none", fakeRoot(t, empty).Root); err != nil {
		t.Fatal(err)
	}
	if ents, _ := os.ReadDir(empty); len(ents) != 0 {
		t.Errorf("copied for a missing target: %v", ents)
	}
}
