package integration

import (
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/containerfd/containerfd/internal/mountinfo"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// What make test-diff (hack/difftest.sh) found differing from runc 1.5.1,
// each checked here the way its probe saw it.

// mountsInside runs the container's process `cat /proc/self/mountinfo`
// (e's bundle, run in the foreground) and parses what it printed.
func mountsInside(t *testing.T, e *env) []mountinfo.Entry {
	t.Helper()
	r := e.cfd("run", "-b", e.bundle, e.id)
	if r.code != 0 {
		t.Fatalf("run: %v", r)
	}
	es, err := mountinfo.Parse([]byte(r.stdout), "mountinfo inside")
	if err != nil {
		t.Fatal(err)
	}
	return es
}

// A masked file is a bind of the container's own /dev/null, as runc's
// maskPaths makes it after pivot_root: mountinfo shows the container's
// /dev (its tmpfs and flags) as its source, not the host's devtmpfs.
func TestMaskedFileBindsContainersDevNull(t *testing.T) {
	e := newEnv(t, "cat", "/proc/self/mountinfo")
	s := e.spec()
	if err := os.WriteFile(filepath.Join(s.Root.Path, "etc", "masked"), []byte("secret"), 0o644); err != nil {
		t.Fatal(err)
	}
	s.Linux.MaskedPaths = []string{"/etc/masked"}
	e.writeSpec(s)
	es := mountsInside(t, e)
	at := func(p string) mountinfo.Entry {
		i := slices.IndexFunc(es, func(m mountinfo.Entry) bool { return m.Mountpoint == p })
		if i < 0 {
			t.Fatalf("no mount on %s inside", p)
		}
		return es[i]
	}
	dev, masked := at("/dev"), at("/etc/masked")
	if masked.Dev != dev.Dev || masked.Root != "/null" || masked.FSType != dev.FSType || masked.Options != dev.Options {
		t.Errorf("masked file: %s\nwant a bind of /null of the container's /dev: %s", masked.Line, dev.Line)
	}
}

// In a user namespace the default devices are binds of the host's nodes:
// plain binds in runc's order (null, random, full, tty, zero, urandom),
// with the host node's mount flags, as runc's MS_BIND leaves them (no
// nosuid or noexec added).
func TestUsernsDeviceBinds(t *testing.T) {
	e := newEnv(t, "cat", "/proc/self/mountinfo")
	e.inUserns()
	host, err := mountinfo.Read("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	var hostDev mountinfo.Entry // the host's mount that holds /dev/null
	for _, m := range host {
		if m.Mountpoint == "/dev" || (m.Mountpoint == "/" && hostDev.Mountpoint == "") {
			hostDev = m
		}
	}
	var got, want []string
	for _, d := range []string{"null", "random", "full", "tty", "zero", "urandom"} {
		want = append(want, "/dev/"+d+" "+hostDev.Options)
	}
	for _, m := range mountsInside(t, e) {
		if strings.HasPrefix(m.Mountpoint, "/dev/") && m.Root == "/"+path.Base(m.Mountpoint) && m.FSType == hostDev.FSType {
			got = append(got, m.Mountpoint+" "+m.Options)
		}
	}
	if !slices.Equal(got, want) {
		t.Errorf("device binds inside:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// v1 hierarchies (a v1 or hybrid host) are bound under /sys/fs/cgroup in
// the order the host's mount table lists them, as runc binds them.
func TestCgroupV1HierarchiesInMountOrder(t *testing.T) {
	host, err := mountinfo.Read("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, m := range host {
		if m.FSType == "cgroup" && path.Dir(m.Mountpoint) == "/sys/fs/cgroup" && !slices.Contains(want, m.Mountpoint) {
			want = append(want, m.Mountpoint)
		}
	}
	if len(want) < 2 {
		t.Skip("needs a host with cgroup v1 hierarchies mounted under /sys/fs/cgroup")
	}
	e := newEnv(t, "cat", "/proc/self/mountinfo")
	var got []string
	for _, m := range mountsInside(t, e) {
		if m.FSType == "cgroup" {
			got = append(got, m.Mountpoint)
		}
	}
	if !slices.Equal(got, want) {
		t.Errorf("v1 hierarchies inside, in mountinfo's order:\n%s\nwant the host's order\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// With a cgroup namespace, the container's cgroup is its root in every
// hierarchy: /proc/self/cgroup says "/" throughout, v1 ones too (init
// makes the namespace once it is in them, as runc's does), on both start
// paths.
func TestCgroupnsRootIsContainersCgroup(t *testing.T) {
	eachStartPath(t, func(t *testing.T) {
		e := newEnv(t, "cat", "/proc/self/cgroup")
		s := e.spec()
		if !slices.ContainsFunc(s.Linux.Namespaces, func(ns specs.LinuxNamespace) bool { return ns.Type == specs.CgroupNamespace }) {
			s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.CgroupNamespace})
			e.writeSpec(s)
		}
		r := e.cfd("run", "-b", e.bundle, e.id)
		if r.code != 0 || r.stdout == "" {
			t.Fatalf("run: %v", r)
		}
		for _, l := range strings.Split(strings.TrimSpace(r.stdout), "\n") {
			if !strings.HasSuffix(l, ":/") {
				t.Errorf("/proc/self/cgroup inside a cgroup namespace:\n%s\nwant every hierarchy at /", r.stdout)
				break
			}
		}
	})
}

// `run` in the foreground gives the process pipes for its stdio and copies
// them, as runc does (never the caller's own files: a terminal among them
// would take TIOCSTI); the process's user can open them again as
// /dev/stdout. `run --detach` leaves the process the caller's stdio.
func TestRunStdioPipes(t *testing.T) {
	eachStartPath(t, func(t *testing.T) {
		e := newEnv(t, "sh", "-c", `for fd in 0 1 2; do readlink /proc/self/fd/$fd; done | cut -d: -f1
cat
echo to-stdout >/dev/stdout
echo to-stderr >/dev/stderr`)
		s := e.spec()
		s.Process.User = specs.User{UID: 1000, GID: 1000}
		e.writeSpec(s)
		r := e.cfdIn([]byte("from-stdin\n"), "run", "-b", e.bundle, e.id)
		if want := "pipe\npipe\npipe\nfrom-stdin\nto-stdout\n"; r.code != 0 || r.stdout != want || r.stderr != "to-stderr\n" {
			t.Errorf("run in the foreground: %v, want stdout %q, stderr %q", r, want, "to-stderr\n")
		}

		d := newEnv(t, "readlink", "/proc/self/fd/1")
		out := d.tempFile()
		cmd := exec.Command(binary, "--root", d.root, "run", "-d", "-b", d.bundle, d.id)
		var stderr strings.Builder
		cmd.Stdout, cmd.Stderr = out, &stderr
		if err := cmd.Run(); err != nil {
			t.Fatalf("run -d: %v: %s", err, stderr.String())
		}
		for range 250 {
			if b, _ := os.ReadFile(out.Name()); len(b) > 0 {
				if got := strings.TrimSpace(string(b)); got != out.Name() {
					t.Errorf("run -d: the process's stdout is %q, want the caller's file %s", got, out.Name())
				}
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
		t.Errorf("run -d: the process wrote nothing to the caller's stdout")
	})
}
