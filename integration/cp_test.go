package integration

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// cpEnv runs a container (sleep) whose rootfs has its own /etc/passwd,
// symlinks to /etc (absolute and climbing), and a tree /data with a file
// of mode 0600 owned by 1000:1000 and a symlink.
func cpEnv(t *testing.T, userns bool) (*env, string) {
	e := newEnv(t, "sleep", "1000")
	s := e.spec()
	rootfs := s.Root.Path
	mustWrite(t, filepath.Join(rootfs, "etc/passwd"), "root:x:0:0:container passwd:/root:/bin/sh\n", 0o644)
	mustSymlink(t, "/etc", filepath.Join(rootfs, "etc-link"))
	mustSymlink(t, "../../../../etc", filepath.Join(rootfs, "rel-link"))
	mustWrite(t, filepath.Join(rootfs, "data/hello"), "hello from inside\n", 0o644)
	mustWrite(t, filepath.Join(rootfs, "data/sub/secret"), "secret\n", 0o600)
	mustSymlink(t, "../hello", filepath.Join(rootfs, "data/sub/link"))
	mustSymlink(t, "/etc/passwd", filepath.Join(rootfs, "data/abs-link"))
	base := 0
	if userns {
		s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.UserNamespace})
		s.Linux.UIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 65536}}
		s.Linux.GIDMappings = s.Linux.UIDMappings
		e.writeSpec(s)
		if err := chownTree(rootfs, 100000, 100000); err != nil {
			t.Fatal(err)
		}
		base = 100000
	}
	mustChown(t, filepath.Join(rootfs, "data/sub/secret"), base+1000, base+1000)
	e.ok("run", "-d", "-b", e.bundle, e.id)
	return e, rootfs
}

func mustWrite(t *testing.T, p, s string, mode os.FileMode) {
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

func mustSymlink(t *testing.T, target, p string) {
	t.Helper()
	if err := os.Symlink(target, p); err != nil {
		t.Fatal(err)
	}
}

func mustChown(t *testing.T, p string, uid, gid int) {
	t.Helper()
	if err := os.Lchown(p, uid, gid); err != nil {
		t.Fatal(err)
	}
}

func mustRead(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// checkEntry checks the owner and mode of p (not followed), and the
// contents of a file (unless want is "") or the target of a symlink.
func checkEntry(t *testing.T, p string, uid, gid uint32, mode os.FileMode, want string) {
	t.Helper()
	fi, err := os.Lstat(p)
	if err != nil {
		t.Error(err)
		return
	}
	st := fi.Sys().(*syscall.Stat_t)
	if st.Uid != uid || st.Gid != gid {
		t.Errorf("%s: owner %d:%d, want %d:%d", p, st.Uid, st.Gid, uid, gid)
	}
	if fi.Mode() != mode {
		t.Errorf("%s: mode %v, want %v", p, fi.Mode(), mode)
	}
	switch {
	case fi.Mode()&os.ModeSymlink != 0:
		if l, err := os.Readlink(p); err != nil || l != want {
			t.Errorf("%s: symlink to %q (%v), want %q", p, l, err, want)
		}
	case fi.Mode().IsRegular() && want != "":
		if s := mustRead(t, p); s != want {
			t.Errorf("%s: holds %q, want %q", p, s, want)
		}
	}
}

func TestCpOut(t *testing.T) {
	e, _ := cpEnv(t, false)
	host := t.TempDir()

	// A file to a new name, then into an existing directory.
	e.ok("cp", e.id+":/data/hello", filepath.Join(host, "hello.txt"))
	checkEntry(t, filepath.Join(host, "hello.txt"), 0, 0, 0o644, "hello from inside\n")
	e.ok("cp", e.id+":data/hello", host)
	checkEntry(t, filepath.Join(host, "hello"), 0, 0, 0o644, "hello from inside\n")

	// A tree to a new name; again, into it; a symlink on its own.
	e.ok("cp", e.id+":/data", filepath.Join(host, "tree"))
	e.ok("cp", e.id+":/data", filepath.Join(host, "tree"))
	for _, dir := range []string{"tree", "tree/data"} {
		d := filepath.Join(host, dir)
		checkEntry(t, d+"/hello", 0, 0, 0o644, "hello from inside\n")
		checkEntry(t, d+"/sub/secret", 1000, 1000, 0o600, "secret\n")
		checkEntry(t, d+"/sub/link", 0, 0, os.ModeSymlink|0o777, "../hello")
		checkEntry(t, d+"/abs-link", 0, 0, os.ModeSymlink|0o777, "/etc/passwd")
	}
	e.ok("cp", e.id+":/data/abs-link", filepath.Join(host, "link"))
	checkEntry(t, filepath.Join(host, "link"), 0, 0, os.ModeSymlink|0o777, "/etc/passwd")

	// The contents of a directory ("/."), into an existing one.
	flat := filepath.Join(host, "flat")
	if err := os.Mkdir(flat, 0o755); err != nil {
		t.Fatal(err)
	}
	e.ok("cp", e.id+":/data/.", flat)
	checkEntry(t, flat+"/sub/secret", 1000, 1000, 0o600, "secret\n")

	// Errors name the side and the path.
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{e.id + ":/nope", host + "/x"}, "container " + e.id + ":/nope"},
		{[]string{e.id + ":/data/hello", host + "/no/such/dir/x"}, "host " + host + "/no/such/dir/x"},
		{[]string{e.id + ":/data", host + "/hello"}, "host " + host + "/hello: not a directory"},
		{[]string{"no-such-ctr:/data", host + "/x"}, `does not exist`},
		{[]string{host, host + "/y"}, "one of the paths must be ID:PATH"},
	} {
		r := e.cfd(append([]string{"cp"}, c.args...)...)
		if r.code == 0 || !strings.Contains(r.stderr, c.want) {
			t.Errorf("cp %v: %v, want an error with %q", c.args, r, c.want)
		}
	}
}

func TestCpIn(t *testing.T) {
	e, rootfs := cpEnv(t, false)
	host := t.TempDir()
	src := filepath.Join(host, "src")
	mustWrite(t, src+"/a", "a\n", 0o644)
	mustWrite(t, src+"/deep/secret", "host secret\n", 0o600)
	mustChown(t, src+"/deep/secret", 1000, 1000)
	mustSymlink(t, "/etc/shadow", src+"/deep/link")
	if err := os.Chmod(src+"/deep", 0o750); err != nil {
		t.Fatal(err)
	}

	e.ok("cp", src, e.id+":/in")                 // a new name
	e.ok("cp", src, e.id+":/tmp")                // into a directory
	e.ok("cp", src+"/a", e.id+":/data/hello")    // over a file
	e.ok("cp", src+"/a", e.id+":/data/sub/link") // over a symlink: replaced, not written through
	for _, dir := range []string{"in", "tmp/src"} {
		d := filepath.Join(rootfs, dir)
		checkEntry(t, d+"/a", 0, 0, 0o644, "a\n")
		checkEntry(t, d+"/deep", 0, 0, os.ModeDir|0o750, "")
		checkEntry(t, d+"/deep/secret", 1000, 1000, 0o600, "host secret\n")
		checkEntry(t, d+"/deep/link", 0, 0, os.ModeSymlink|0o777, "/etc/shadow")
	}
	checkEntry(t, filepath.Join(rootfs, "data/hello"), 0, 0, 0o644, "a\n")
	checkEntry(t, filepath.Join(rootfs, "data/sub/link"), 0, 0, 0o644, "a\n")
	// Seen from inside the container.
	out := e.ok("exec", e.id, "sh", "-c", "stat -c '%u:%g %a' /in/deep/secret; readlink /in/deep/link")
	if out != "1000:1000 600\n/etc/shadow\n" {
		t.Errorf("inside: %q", out)
	}
	// The default capabilities have no CAP_DAC_OVERRIDE: only its owner
	// reads the file (through deep, 0750 root:root, as a member of group 0).
	if out := e.ok("exec", "--user", "1000:0", e.id, "cat", "/in/deep/secret"); out != "host secret\n" {
		t.Errorf("inside, as 1000: %q", out)
	}
}

func TestCpInErrors(t *testing.T) {
	e, _ := cpEnv(t, false)
	f := filepath.Join(t.TempDir(), "f")
	mustWrite(t, f, "x", 0o644)
	// A trailing "/" names a directory that must exist.
	for _, dst := range []string{"/data/hello/", "/no-such-dir/"} {
		r := e.cfd("cp", f, e.id+":"+dst)
		if r.code == 0 || !strings.Contains(r.stderr, "container "+e.id+":"+dst) {
			t.Errorf("cp %s %s: %v, want an error naming the container path", f, dst, r)
		}
	}
	r := e.cfd("cp", "/no/such/host/file", e.id+":/tmp")
	if r.code == 0 || !strings.Contains(r.stderr, "host /no/such/host/file") {
		t.Errorf("missing host source: %v", r)
	}
}

// Symlinks to /etc in the container, absolute or climbing with "..", lead
// to the container's /etc, for reading and writing; the host's is untouched.
func TestCpEscape(t *testing.T) {
	e, rootfs := cpEnv(t, false)
	hostPasswd := mustRead(t, "/etc/passwd")
	host := t.TempDir()
	in := filepath.Join(host, "in")
	mustWrite(t, in, "from the host\n", 0o644)
	name := "cfdcp-" + e.id
	t.Cleanup(func() {
		os.Remove("/etc/" + name)
		os.RemoveAll("/etc/in")
	})
	for _, link := range []string{"/etc-link", "/rel-link", "/rel-link/../../etc-link", "/data/../../etc-link"} {
		out := filepath.Join(host, "passwd")
		e.ok("cp", e.id+":"+link+"/passwd", out)
		if s := mustRead(t, out); s != "root:x:0:0:container passwd:/root:/bin/sh\n" {
			t.Errorf("cp %s/passwd read %q, want the container's", link, s)
		}
		e.ok("cp", in, e.id+":"+link+"/"+name)
		checkEntry(t, filepath.Join(rootfs, "etc", name), 0, 0, 0o644, "from the host\n")
		if _, err := os.Lstat("/etc/" + name); err == nil {
			t.Errorf("cp %s %s/%s wrote the host's /etc", in, link, name)
		}
		// The symlink as the destination directory.
		e.ok("cp", in, e.id+":"+link)
		checkEntry(t, filepath.Join(rootfs, "etc/in"), 0, 0, 0o644, "from the host\n")
		if _, err := os.Lstat("/etc/in"); err == nil {
			t.Errorf("cp %s %s wrote the host's /etc", in, link)
		}
		// A tree through the link.
		e.ok("cp", host, e.id+":"+link+"/tree-"+name)
		if _, err := os.Lstat(filepath.Join(rootfs, "etc/tree-"+name, "in")); err != nil {
			t.Errorf("tree through %s: %v", link, err)
		}
		if _, err := os.Lstat("/etc/tree-" + name); err == nil {
			os.RemoveAll("/etc/tree-" + name)
			t.Errorf("cp %s %s/tree wrote the host's /etc", host, link)
		}
		os.RemoveAll(filepath.Join(rootfs, "etc/tree-"+name))
	}
	if got := mustRead(t, "/etc/passwd"); got != hostPasswd {
		t.Error("host /etc/passwd changed")
	}
	// A symlink copied out stays a symlink, never read through.
	e.ok("cp", e.id+":/etc-link", filepath.Join(host, "etc-link"))
	checkEntry(t, filepath.Join(host, "etc-link"), 0, 0, os.ModeSymlink|0o777, "/etc")
}

// In a container with a user namespace (0 -> 100000, 65536 ids) owners are
// the container's: 1000 inside is 101000 on disk.
func TestCpUserns(t *testing.T) {
	e, rootfs := cpEnv(t, true)
	host := t.TempDir()

	e.ok("cp", e.id+":/data", filepath.Join(host, "out"))
	checkEntry(t, filepath.Join(host, "out/sub/secret"), 1000, 1000, 0o600, "secret\n")
	checkEntry(t, filepath.Join(host, "out/hello"), 0, 0, 0o644, "hello from inside\n")

	src := filepath.Join(host, "src")
	mustWrite(t, src+"/mine", "mine\n", 0o600)
	mustWrite(t, src+"/root", "root\n", 0o644)
	mustChown(t, src+"/mine", 1000, 1000)
	e.ok("cp", src, e.id+":/in")
	checkEntry(t, filepath.Join(rootfs, "in/mine"), 101000, 101000, 0o600, "mine\n")
	checkEntry(t, filepath.Join(rootfs, "in/root"), 100000, 100000, 0o644, "root\n")
	checkEntry(t, filepath.Join(rootfs, "in"), 100000, 100000, os.ModeDir|0o755, "")
	out := e.ok("exec", e.id, "stat", "-c", "%u:%g %n", "/in", "/in/mine", "/in/root")
	if out != "0:0 /in\n1000:1000 /in/mine\n0:0 /in/root\n" {
		t.Errorf("inside: %q", out)
	}

	// A setuid file made in the container comes out without setuid.
	e.ok("exec", e.id, "sh", "-c", "cp /bin/busybox /suid && chmod 4755 /suid")
	e.ok("cp", e.id+":/suid", filepath.Join(host, "suid"))
	checkEntry(t, filepath.Join(host, "suid"), 0, 0, 0o755, "")

	// An id the container has no mapping for cannot be copied in.
	mustChown(t, src+"/mine", 70000, 70000)
	if r := e.cfd("cp", src+"/mine", e.id+":/in/x"); r.code == 0 || !strings.Contains(r.stderr, "no mapping") {
		t.Errorf("unmapped owner: %v", r)
	}
}
