package libcontainerfd

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/containerfd/containerfd/internal/testutil"
	"github.com/containerfd/containerfd/libcontainerfd/idmap"
	"golang.org/x/sys/unix"
)

// fakeRoot is a container side whose root is a plain directory: the copier
// resolves it as it does a container's /proc/<pid>/root.
func fakeRoot(t *testing.T, dir string, m idmap.Map) *side {
	fd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	return &side{root: fd, resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS, prefix: "container test:",
		uids: m, gids: m, overflowUID: 65534, overflowGID: 65534}
}

func identity() idmap.Map { return idmap.Map{{ContainerID: 0, HostID: 0, Size: 1<<32 - 1}} }

func copyOut(ctr *side, src, dst string) error {
	cp := &copier{src: ctr, dst: hostSide(), noDevices: true,
		ids: func(u, g uint32) (uint32, uint32, error) {
			return toContainer(ctr.uids, u), toContainer(ctr.gids, g), nil
		}}
	return cp.run(src, dst)
}

func copyIn(ctr *side, src, dst string) error {
	cp := &copier{src: hostSide(), dst: ctr,
		ids: func(u, g uint32) (uint32, uint32, error) {
			uu, _ := ctr.uids.ToHost(u)
			gg, _ := ctr.gids.ToHost(g)
			return uu, gg, nil
		}}
	return cp.run(src, dst)
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
	ctr := fakeRoot(t, root, identity())
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
	ctr := fakeRoot(t, root, identity())
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
		if err := copyIn(ctr, hostFile, "/"+name+"/cfdcp-"+name); err != nil {
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
		if err := copyIn(ctr, hostFile, "/"+name); err != nil {
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
	if err := copyIn(ctr, host+"/merge/.", "/merge"); err == nil {
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
	ctr := fakeRoot(t, root, m)
	host := t.TempDir()
	write(t, filepath.Join(host, "d/f"), "x", 0o4755)
	if err := os.Chown(filepath.Join(host, "d/f"), 1000, 1000); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(host, "d/f"), 0o755|os.ModeSetuid); err != nil { // chown cleared it
		t.Fatal(err)
	}
	if err := copyIn(ctr, filepath.Join(host, "d"), "/d"); err != nil {
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
	cp := &copier{src: ctr, dst: hostSide(), noDevices: true, clearSetid: true,
		ids: func(u, g uint32) (uint32, uint32, error) {
			return toContainer(m, u), toContainer(m, g), nil
		}}
	if err := cp.run("/d/f", filepath.Join(host, "back")); err != nil {
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
	ctr := fakeRoot(t, root, identity())
	// Swap d/sub (a directory) and d/tmp (a symlink out) back and forth.
	os.Symlink(outside, filepath.Join(root, "d/tmp"))
	stop := testutil.SwapRace(t, root, "d/sub", "d/tmp")
	for i := 0; i < 300; i++ {
		copyIn(ctr, host+"/src/.", "/d")
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
