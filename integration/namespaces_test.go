package integration

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/containerfd/containerfd/internal/testutil"
	"github.com/containerfd/containerfd/libcontainerfd/nsenter"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// withoutNS is nss without the namespace of type typ.
func withoutNS(nss []specs.LinuxNamespace, typ specs.LinuxNamespaceType) []specs.LinuxNamespace {
	var out []specs.LinuxNamespace
	for _, n := range nss {
		if n.Type != typ {
			out = append(out, n)
		}
	}
	return out
}

// A config without a mount namespace runs, as with runc: the container
// shares the runtime's mount namespace, its mounts are made on the rootfs
// there (the host sees them while it exists) and init is chrooted into it;
// delete takes them away. The createRuntime hook runs once.
func TestNoMountNamespace(t *testing.T) {
	eachStartPath(t, func(t *testing.T) {
		e := newEnv(t, "sh", "-c", "readlink /proc/self/ns/mnt; test -x /bin/busybox && test -e /proc/self/status && echo in-root; exec sleep 1000")
		hookDir := t.TempDir()
		hookLog := filepath.Join(hookDir, "log")
		s := e.spec()
		s.Linux.Namespaces = withoutNS(s.Linux.Namespaces, specs.MountNamespace)
		s.Linux.MaskedPaths, s.Linux.ReadonlyPaths = nil, nil
		s.Hooks = &specs.Hooks{CreateRuntime: []specs.Hook{logHook(t, hookDir, hookLog, "createRuntime")}}
		e.writeSpec(s)
		rootfs := s.Root.Path

		e.ok("create", "--bundle", e.bundle, e.id)
		if _, err := os.Stat(filepath.Join(rootfs, "proc/1/status")); err != nil {
			t.Errorf("the container's proc is not on its rootfs in the runtime's mount namespace: %v", err)
		}
		e.ok("start", e.id)
		r := e.cfd("exec", e.id, "sh", "-c", "readlink /proc/self/ns/mnt; ls /bin/busybox")
		host, err := os.Readlink("/proc/self/ns/mnt")
		if err != nil {
			t.Fatal(err)
		}
		if r.code != 0 || r.stdout != host+"\n/bin/busybox\n" {
			t.Errorf("exec: %v, want the mount namespace %s and the rootfs as root", r, host)
		}
		pid := int(e.state()["pid"].(float64))
		if root, err := os.Readlink("/proc/" + strconv.Itoa(pid) + "/root"); err != nil || root != rootfs {
			t.Errorf("init's root is %q (%v), want %s", root, err, rootfs)
		}
		e.ok("delete", "--force", e.id)
		if _, err := os.Stat(filepath.Join(rootfs, "proc/1")); err == nil {
			t.Errorf("proc still on the rootfs after delete")
		}
		if b, err := os.ReadFile(hookLog); err != nil || strings.Count(string(b), "createRuntime ") != 1 {
			t.Errorf("createRuntime hook log %q (%v), want one run", b, err)
		}
	})
}

// run's output of a container without a mount namespace: the runtime's
// mount namespace, and the rootfs as its root.
func TestNoMountNamespaceRun(t *testing.T) {
	eachStartPath(t, func(t *testing.T) {
		e := newEnv(t, "sh", "-c", "readlink /proc/self/ns/mnt; test -x /bin/busybox && test -e /proc/self/status && echo in-root")
		e.edit(func(s *specs.Spec) {
			s.Linux.Namespaces = withoutNS(s.Linux.Namespaces, specs.MountNamespace)
			s.Linux.MaskedPaths, s.Linux.ReadonlyPaths = nil, nil
		})
		host, err := os.Readlink("/proc/self/ns/mnt")
		if err != nil {
			t.Fatal(err)
		}
		if got := e.ok("run", "--bundle", e.bundle, e.id); got != host+"\nin-root\n" {
			t.Errorf("run printed %q, want %q", got, host+"\nin-root\n")
		}
	})
}

// masked or read-only paths without a mount namespace are refused, as runc
// refuses them, and nothing is left.
func TestNoMountNamespaceMasked(t *testing.T) {
	e := newEnv(t, "true")
	e.edit(func(s *specs.Spec) { s.Linux.Namespaces = withoutNS(s.Linux.Namespaces, specs.MountNamespace) })
	r := e.cfd("run", "--bundle", e.bundle, e.id)
	if r.code == 0 || !strings.Contains(r.stderr, `linux.maskedPaths: set without a \"mount\" namespace`) {
		t.Errorf("run: %v", r)
	}
}

// sleeperInMountNS starts a process in a mount namespace of its own
// (busybox's sleep from the test rootfs) and returns its pid; it is killed
// at cleanup.
func sleeperInMountNS(t *testing.T, rootfs string) int {
	t.Helper()
	cmd := exec.Command(filepath.Join(rootfs, "bin/busybox"), "sleep", "1000")
	cmd.SysProcAttr = &syscall.SysProcAttr{Unshareflags: syscall.CLONE_NEWNS}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	return cmd.Process.Pid
}

// A mount namespace given by path is joined, as runc joins it: the root is
// built there and made its root, and the mounts' sources are resolved
// there (a tmpfs only that namespace has is bound), while the runtime's
// mount namespace sees none of it.
func TestJoinMountNamespace(t *testing.T) {
	eachStartPath(t, func(t *testing.T) {
		e := newEnv(t, "sh", "-c", "readlink /proc/self/ns/mnt; cat /mnt/only-there; exec sleep 1000")
		s := e.spec()
		pid := sleeperInMountNS(t, s.Root.Path)
		nsPath := "/proc/" + strconv.Itoa(pid) + "/ns/mnt"
		want, err := os.Readlink(nsPath)
		if err != nil {
			t.Fatal(err)
		}
		// A tmpfs with a file, in the joined namespace only.
		dir := t.TempDir()
		ns, err := unix.Open(nsPath, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		err = nsenter.Do([]nsenter.Namespace{{FD: ns, Type: unix.CLONE_NEWNS}}, func() error {
			if err := unix.Mount("tmpfs", dir, "tmpfs", 0, ""); err != nil {
				return err
			}
			return os.WriteFile(filepath.Join(dir, "only-there"), []byte("joined\n"), 0o644)
		})
		unix.Close(ns)
		if err != nil {
			t.Fatal(err)
		}
		for i, n := range s.Linux.Namespaces {
			if n.Type == specs.MountNamespace {
				s.Linux.Namespaces[i].Path = nsPath
			}
		}
		s.Mounts = append(s.Mounts, specs.Mount{Destination: "/mnt", Type: "bind", Source: dir, Options: []string{"bind"}})
		e.writeSpec(s)

		e.ok("create", "--bundle", e.bundle, e.id)
		e.ok("start", e.id)
		r := e.cfd("exec", e.id, "sh", "-c", "readlink /proc/self/ns/mnt; cat /mnt/only-there")
		if r.code != 0 || r.stdout != want+"\njoined\n" {
			t.Errorf("exec: %v, want the mount namespace %s and the tmpfs only it has", r, want)
		}
		if _, err := os.Stat(filepath.Join(s.Root.Path, "proc/1")); err == nil {
			t.Errorf("the container's proc shows in the runtime's mount namespace")
		}
		e.ok("delete", "--force", e.id)
	})
}

// A relative mount destination is taken as relative to /, with a warning,
// as runc takes it (config.md keeps it for old tools).
func TestRelativeMountDestination(t *testing.T) {
	eachStartPath(t, func(t *testing.T) {
		e := newEnv(t, "sh", "-c", "grep -c ' /tmp/rel tmpfs ' /proc/self/mounts")
		e.edit(func(s *specs.Spec) {
			s.Mounts = append(s.Mounts, specs.Mount{Destination: "tmp/rel", Type: "tmpfs", Source: "tmpfs"})
		})
		r := e.cfd("run", "--bundle", e.bundle, e.id)
		if r.code != 0 || r.stdout != "1\n" {
			t.Errorf("run: %v, want the tmpfs on /tmp/rel", r)
		}
		if !strings.Contains(r.stderr, "level=warning") || !strings.Contains(r.stderr, `destination \"tmp/rel\": not absolute, taken as relative to /`) {
			t.Errorf("no warning about the relative destination: %q", r.stderr)
		}
	})
}

// `containerfd spec` lists a cgroup namespace only on a pure cgroup v2
// host, as `runc spec` does: runc's tests (delete.bats) add one to it on a
// v1 or hybrid host, which would else be listed twice.
func TestSpecAddCgroupNamespace(t *testing.T) {
	var st unix.Statfs_t
	if err := unix.Statfs("/sys/fs/cgroup", &st); err != nil {
		t.Fatal(err)
	}
	if st.Type == unix.CGROUP2_SUPER_MAGIC {
		t.Skip("a pure cgroup v2 host: runc's spec lists the cgroup namespace here, and adding it lists it twice for runc too")
	}
	e := newEnv(t)
	os.Remove(filepath.Join(e.bundle, "config.json"))
	e.ok("spec", "--bundle", e.bundle)
	s := e.spec()
	s.Root.Path = testutil.Rootfs(t)
	s.Process.Terminal, s.Process.Args = false, []string{"readlink", "/proc/self/ns/cgroup"}
	s.Linux.CgroupsPath = e.cgroup
	s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.CgroupNamespace})
	e.writeSpec(s)
	host, err := os.Readlink("/proc/self/ns/cgroup")
	if err != nil {
		t.Fatal(err)
	}
	if r := e.cfd("run", "--bundle", e.bundle, e.id); r.code != 0 || !strings.HasPrefix(r.stdout, "cgroup:[") || r.stdout == host+"\n" {
		t.Errorf("run with the cgroup namespace added: %v, want one of its own", r)
	}
}

// A container that joins a user namespace and a network namespace that
// user namespace does not own starts, as with runc (its issue 4390): the
// network namespace is joined before the user namespace, while the
// runtime may.
func TestJoinNetnsOfAnotherUserns(t *testing.T) {
	eachStartPath(t, func(t *testing.T) {
		target := newEnv(t, "sleep", "1000")
		target.inUserns()
		target.ok("run", "-d", "--bundle", target.bundle, target.id)
		pid := int(target.state()["pid"].(float64))
		userns := "/proc/" + strconv.Itoa(pid) + "/ns/user"

		cmd := exec.Command(filepath.Join(target.spec().Root.Path, "bin/busybox"), "sleep", "1000")
		cmd.SysProcAttr = &syscall.SysProcAttr{Unshareflags: syscall.CLONE_NEWNET}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			cmd.Process.Kill()
			cmd.Wait()
		})
		netns := "/proc/" + strconv.Itoa(cmd.Process.Pid) + "/ns/net"

		e := newEnv(t, "sleep", "1000")
		s := e.spec()
		s.Root.Path = target.spec().Root.Path
		for i, n := range s.Linux.Namespaces {
			if n.Type == specs.NetworkNamespace {
				s.Linux.Namespaces[i].Path = netns
			}
		}
		s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.UserNamespace, Path: userns})
		// sysfs needs the network namespace's owner: bind the host's.
		for i, m := range s.Mounts {
			if m.Type == "sysfs" {
				s.Mounts[i] = specs.Mount{Destination: m.Destination, Type: "bind", Source: "/sys", Options: []string{"rbind"}}
			}
		}
		e.writeSpec(s)
		e.ok("run", "-d", "--bundle", e.bundle, e.id)
		want := map[string]string{"user": userns, "net": netns}
		for ns, path := range want {
			link, err := os.Readlink(path)
			if err != nil {
				t.Fatal(err)
			}
			if got := e.ok("exec", e.id, "readlink", "/proc/self/ns/"+ns); got != link+"\n" {
				t.Errorf("%s namespace %q, want %s", ns, got, link)
			}
		}
		e.ok("delete", "--force", e.id)
		target.ok("delete", "--force", target.id)
	})
}

// A new time namespace's offsets are set with a new user namespace too,
// as runc sets them.
func TestTimeOffsetsUserns(t *testing.T) {
	if _, err := os.Stat("/proc/self/timens_offsets"); err != nil {
		t.Skip("no time namespaces: ", err)
	}
	eachStartPath(t, func(t *testing.T) {
		e := newEnv(t, "cat", "/proc/self/timens_offsets")
		e.inUserns()
		e.edit(func(s *specs.Spec) {
			s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.TimeNamespace})
			s.Linux.TimeOffsets = map[string]specs.LinuxTimeOffset{
				"monotonic": {Secs: 7881, Nanosecs: 2718281},
				"boottime":  {Secs: 1337, Nanosecs: 3141519},
			}
		})
		r := e.cfd("run", "--bundle", e.bundle, e.id)
		if r.code != 0 || !strings.Contains(strings.Join(strings.Fields(r.stdout), " "), "monotonic 7881 2718281 boottime 1337 3141519") {
			t.Errorf("run: %v", r)
		}
	})
}
