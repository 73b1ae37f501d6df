package integration

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// Tests that the container's mounts, seen from inside, are runc's: each
// was run against runc (Debian's 1.1.5, and runc 1.5's source read for
// what it does) with the same bundle.

// Kubernetes' mountPropagation: Bidirectional (what CSI node plugins use)
// reaches the runtime, through containerd's CRI, as a bind with "rshared"
// and rootfsPropagation "rshared". runc starts it, and a mount made on the
// host under the source shows inside, and one made inside shows on the host.
// containerfd made the root shared before pivot_root, which refuses a shared
// new root: "init: pivot_root: invalid argument".
func TestBidirectionalVolume(t *testing.T) {
	e := newEnv(t, "sleep", "100")
	src := sharedMount(t, t.TempDir())
	for _, d := range []string{"from-host", "from-inside"} {
		if err := os.Mkdir(filepath.Join(src, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	s := e.spec()
	s.Mounts = append(s.Mounts, specs.Mount{Destination: "/vol", Type: "bind", Source: src, Options: []string{"rbind", "rshared"}})
	s.Linux.RootfsPropagation = "rshared"
	c := s.Process.Capabilities // a CSI plugin mounts: it has CAP_SYS_ADMIN
	c.Bounding = append(c.Bounding, "CAP_SYS_ADMIN")
	c.Effective = append(c.Effective, "CAP_SYS_ADMIN")
	c.Permitted = append(c.Permitted, "CAP_SYS_ADMIN")
	e.writeSpec(s)
	if r := e.cfd("run", "-d", "-b", e.bundle, e.id); r.code != 0 {
		t.Fatalf("run with a Bidirectional volume: %v", r)
	}
	t.Cleanup(func() { unix.Unmount(filepath.Join(src, "from-host"), unix.MNT_DETACH) })
	if err := unix.Mount("tmpfs", filepath.Join(src, "from-host"), "tmpfs", 0, "size=1m"); err != nil {
		t.Fatal(err)
	}
	if out := e.ok("exec", e.id, "awk", "$5 == \"/vol/from-host\" { print $9 }", "/proc/self/mountinfo"); out != "tmpfs\n" {
		t.Errorf("a tmpfs mounted on the host under the volume's source: inside, /vol/from-host is %q, want the tmpfs", out)
	}
	e.ok("exec", e.id, "mount", "-t", "tmpfs", "tmpfs", "/vol/from-inside")
	t.Cleanup(func() { unix.Unmount(filepath.Join(src, "from-inside"), unix.MNT_DETACH) })
	var st unix.Statfs_t
	if err := unix.Statfs(filepath.Join(src, "from-inside"), &st); err != nil || st.Type != unix.TMPFS_MAGIC {
		t.Errorf("a tmpfs mounted inside on /vol/from-inside did not show on the host (statfs type %#x, %v)", st.Type, err)
	}
}

// mountsOf returns the mount points of /proc/self/mountinfo inside, in order.
func mountsOf(info string) []string {
	var out []string
	for _, l := range strings.Split(strings.TrimSpace(info), "\n") {
		if f := strings.Fields(l); len(f) > 4 {
			out = append(out, f[4])
		}
	}
	return out
}

// "ro" on a bind is not recursive in runc, nor with mount(8), nor in
// Kubernetes before recursiveReadOnly: a read-only bind whose source has a
// submount leaves the submount writable; "rro" makes it read-only too.
func TestReadonlyBindNotRecursive(t *testing.T) {
	e := newEnv(t, "sh", "-c", `touch /ro/sub/a && echo ro-sub-rw
touch /ro/top 2>/dev/null || echo ro-top-ro
touch /rro/sub/b 2>/dev/null || echo rro-sub-ro
touch /rro/top 2>/dev/null || echo rro-top-ro`)
	src := t.TempDir()
	sub := filepath.Join(src, "sub")
	if err := os.Mkdir(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("tmpfs", sub, "tmpfs", 0, "size=1m"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Unmount(sub, unix.MNT_DETACH) })
	s := e.spec()
	s.Mounts = append(s.Mounts,
		specs.Mount{Destination: "/ro", Type: "bind", Source: src, Options: []string{"rbind", "ro"}},
		specs.Mount{Destination: "/rro", Type: "bind", Source: src, Options: []string{"rbind", "rro"}})
	e.writeSpec(s)
	r := e.cfd("run", "-b", e.bundle, e.id)
	if want := "ro-sub-rw\nro-top-ro\nrro-sub-ro\nrro-top-ro\n"; r.code != 0 || r.stdout != want {
		t.Errorf("rbind ro and rro with a submount: %v, want stdout %q", r, want)
	}
}
