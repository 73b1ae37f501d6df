package clients

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/containerfd/containerfd/internal/testutil"
	"golang.org/x/sys/unix"
)

// The rootless podman suite: Debian's podman 4.3 and conmon run by a user
// of the test's own (testutil.User: subordinate ranges, XDG_RUNTIME_DIR),
// with the runtime under test as its OCI runtime. Rootless podman runs the
// runtime inside its own user namespace, as root there, without --root:
// the runtime keeps its state under the user's XDG_RUNTIME_DIR, so no
// mount namespace of the test's is needed. Storage is vfs (no
// fuse-overlayfs needed), no network, cgroupfs manager: on this host's
// cgroup v1 rootless podman runs containers without cgroups, and the
// runtime without one.

// rootlessPodman is a podman of the test user's.
type rootlessPodman struct {
	u   *testutil.User
	dir string
	env []string
}

// stateRoot is where the runtime keeps its state when podman runs it:
// $XDG_RUNTIME_DIR/<name> (containerfd, runc and crun alike).
func (p *rootlessPodman) stateRoot() string {
	return filepath.Join(p.u.XDG, filepath.Base(runtimeBin))
}

func (p *rootlessPodman) cmd(args ...string) command {
	a := append([]string{"setpriv", "--reuid=" + strconv.Itoa(p.u.UID), "--regid=" + strconv.Itoa(p.u.GID),
		"--clear-groups", "--", "podman"}, args...)
	return command{args: a, env: p.env}
}

func (p *rootlessPodman) run(t *testing.T, args ...string) result {
	t.Helper()
	return run(t, p.cmd(args...))
}

func (p *rootlessPodman) must(t *testing.T, args ...string) string {
	t.Helper()
	return mustRun(t, p.cmd(args...)).stdout
}

// startRootlessPodman makes the user, podman's configuration in a
// directory of the user's, and loads the busybox image. Cleanups remove
// every container, stop podman's pause process (which holds its user
// namespace between commands), and check that the runtime left no state.
func startRootlessPodman(t *testing.T) *rootlessPodman {
	t.Helper()
	requireTools(t, "podman", "conmon", "setpriv", "newuidmap", "newgidmap")
	u := testutil.NewUser(t)
	dir, err := os.MkdirTemp("", "cfdpmrl-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	u.Own(t, dir, 0o755)
	p := &rootlessPodman{u: u, dir: dir}
	conf := `[containers]
default_ulimits = ["nofile=1024:1024"]
log_driver = "k8s-file"

` + podmanRuntimeConf(filepath.Base(runtimeBin), runtimeBin,
		"cgroup_manager = \"cgroupfs\"\nevents_logger = \"file\"\nlock_type = \"file\"\n")
	storage := fmt.Sprintf(`[storage]
driver = "vfs"
graphroot = %q
runroot = %q
`, filepath.Join(dir, "storage"), filepath.Join(u.XDG, "runroot"))
	for name, text := range map[string]string{"containers.conf": conf, "storage.conf": storage, "registries.conf": ""} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("rootless podman containers.conf:\n%s\nstorage.conf:\n%s", conf, storage)
	p.env = append(u.Env(), "HOME="+dir,
		"CONTAINERS_CONF="+filepath.Join(dir, "containers.conf"),
		"CONTAINERS_STORAGE_CONF="+filepath.Join(dir, "storage.conf"),
		"CONTAINERS_REGISTRIES_CONF="+filepath.Join(dir, "registries.conf"))

	t.Cleanup(func() {
		if out := run(t, p.cmd("ps", "--all", "--quiet")).stdout; strings.TrimSpace(out) != "" {
			t.Errorf("podman containers left after the test:\n%s", out)
			run(t, p.cmd("rm", "--force", "--all", "--time", "0"))
		}
		// podman's pause process, as `podman system migrate` stops it.
		if b, err := os.ReadFile(filepath.Join(u.XDG, "libpod", "tmp", "pause.pid")); err == nil {
			if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && pid > 1 {
				unix.Kill(pid, unix.SIGKILL)
			}
		}
		checkEmptyTree(t, "the runtime's default root under the user's XDG_RUNTIME_DIR", p.stateRoot())
	})

	tarball := buildImage(t, image{name: podmanImage, cmd: []string{"sh"}})
	mine := filepath.Join(dir, "image.tar")
	b, err := os.ReadFile(tarball)
	if err == nil {
		err = os.WriteFile(mine, b, 0o644)
	}
	if err != nil {
		t.Fatal(err)
	}
	p.must(t, "load", "--input", mine)
	if out := p.must(t, "info", "--format", "{{.Host.OCIRuntime.Path}} {{.Host.Security.Rootless}}"); strings.TrimSpace(out) != runtimeBin+" true" {
		t.Fatalf("podman info: runtime and rootless %q, want %s true", out, runtimeBin)
	}
	return p
}

// TestPodmanRootless runs podman's ordinary workflows as a user who is not
// root: run, exec, stop, rm.
func TestPodmanRootless(t *testing.T) {
	testutil.NoLeaks(t)
	testutil.RequireRoot(t)
	p := startRootlessPodman(t)
	u := p.u

	t.Run("RunRm", func(t *testing.T) {
		r := p.run(t, "run", "--rm", "--network", "none", podmanImage, "sh", "-c", `echo "hello from pid $$ as $(id -u)"; head -1 /proc/self/uid_map`)
		want := fmt.Sprintf("hello from pid 1 as 0\n         0 %10d          1\n", u.UID)
		if r.code != 0 || r.stdout != want {
			t.Errorf("podman run --rm: %v; want %q", r, want)
		}
		if r := p.run(t, "run", "--rm", "--network", "none", podmanImage, "sh", "-c", "exit 7"); r.code != 7 {
			t.Errorf("podman run --rm of a process exiting 7: %v", r)
		}
	})

	t.Run("Volume", func(t *testing.T) {
		data := t.TempDir()
		testutil.Path(t, data)
		u.Own(t, data, 0o755)
		p.must(t, "run", "--rm", "--network", "none", "-v", data+":/data", podmanImage, "touch", "/data/made-inside")
		var st unix.Stat_t
		if err := unix.Stat(filepath.Join(data, "made-inside"), &st); err != nil {
			t.Fatal(err)
		}
		if int(st.Uid) != u.UID || int(st.Gid) != u.GID {
			t.Errorf("a file the container's root made: owner %d:%d on the host, want the user's %d:%d", st.Uid, st.Gid, u.UID, u.GID)
		}
	})

	t.Run("RunExecStopRm", func(t *testing.T) {
		name := testutil.ID(t)
		t.Cleanup(func() { run(t, p.cmd("rm", "--force", "--time", "0", name)) })
		id := strings.TrimSpace(p.must(t, "run", "--detach", "--name", name, "--network", "none", podmanImage,
			"sh", "-c", `trap "exit 3" TERM; echo ready; while :; do sleep 0.1 & wait; done`))
		if !waitFor(10*time.Second, func() bool {
			return strings.TrimSpace(p.must(t, "inspect", "--format", "{{.State.Status}}", name)) == "running"
		}) {
			t.Fatalf("container %s not running", name)
		}
		// The runtime keeps it under the user's XDG_RUNTIME_DIR.
		if _, err := os.Stat(filepath.Join(p.stateRoot(), id, "state.json")); err != nil {
			t.Errorf("the runtime's state of %s: %v", name, err)
		}
		r := p.run(t, "exec", name, "sh", "-c", `echo "exec sees $(cat /proc/1/cmdline | tr '\0' ' ')"; exit 5`)
		if r.code != 5 || !strings.HasPrefix(r.stdout, "exec sees sh -c trap") {
			t.Errorf("podman exec: %v; want exit 5 and the container's pid 1 seen from inside", r)
		}
		r = p.run(t, "exec", "--user", "65534", "--workdir", "/tmp", name, "sh", "-c", `echo "$(id -u) $(pwd)"`)
		if r.code != 0 || r.stdout != "65534 /tmp\n" {
			t.Errorf("podman exec -u 65534 -w /tmp: %v", r)
		}
		if out := p.must(t, "top", name, "args"); !strings.Contains(out, "sh -c trap") {
			t.Errorf("podman top: %q", out)
		}
		p.must(t, "stop", "--time", "10", name)
		if code := strings.TrimSpace(p.must(t, "inspect", "--format", "{{.State.Status}} {{.State.ExitCode}}", name)); code != "exited 3" {
			t.Errorf("after podman stop: %q, want exited 3 (init's SIGTERM trap)", code)
		}
		p.must(t, "rm", name)
		if out := p.must(t, "ps", "--all", "--quiet"); strings.TrimSpace(out) != "" {
			t.Errorf("podman ps -a after rm: %q", out)
		}
		if _, err := os.Stat(filepath.Join(p.stateRoot(), id)); !os.IsNotExist(err) {
			t.Errorf("the runtime's state of %s after rm: %v", name, err)
		}
	})
}
