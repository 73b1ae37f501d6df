package clients

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/containerfd/containerfd/internal/testutil"
)

// The Docker suite: Debian's docker.io engine (dockerd 20.10), started by
// the test with its own data root, exec root, socket, containerd (dockerd
// starts one of its own: there is no containerd socket in its private /run)
// and cgroup parent, no iptables and no bridge, and the runtime under test
// added as the runtime "containerfd" by a daemon.json.

// dockerRuntime is the runtime's name in daemon.json: `docker run
// --runtime containerfd`. It stays the same when $CFD_CLIENT_RUNTIME names
// another binary ("runc" is Docker's own runtime's name).
const dockerRuntime = "containerfd"

// dockerDaemonJSON is the daemon.json that adds the runtime at binary as
// "containerfd". docs/clients.md shows it with containerfd's installed
// path; TestClientsDocPodmanDocker checks that it is this one.
func dockerDaemonJSON(binary string) string {
	return fmt.Sprintf(`{
  "runtimes": {
    %q: {
      "path": %q
    }
  }
}
`, dockerRuntime, binary)
}

// dockerd is a dockerd of the test's own.
type dockerd struct {
	dir    string
	sock   string
	cli    string   // the docker CLI
	env    []string // DOCKER_CONFIG
	cgroup string   // --cgroup-parent: /cfdtest-<random>
	d      *daemon
}

// dockerCLI is Debian's docker CLI (a newer one elsewhere in $PATH may
// need a newer API than dockerd 20.10's).
func dockerCLI(t *testing.T) string {
	if _, err := os.Stat("/usr/bin/docker"); err == nil {
		return "/usr/bin/docker"
	}
	requireTools(t, "docker")
	p, _ := exec.LookPath("docker")
	return p
}

// startDockerd starts dockerd in a mount namespace of its own (a private
// tmpfs on /run and on /etc/docker, which it writes) and loads the busybox
// image. Cleanups check that nothing is left: no container, no process of
// its (containerd, shims), no mount, no cgroup, an empty runtime root.
func startDockerd(t *testing.T) *dockerd {
	t.Helper()
	requireTools(t, "dockerd", "containerd", "containerd-shim-runc-v2")
	dir, err := os.MkdirTemp("", "cfddk-") // short: socket paths are limited
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	k := &dockerd{dir: dir, sock: filepath.Join(dir, "docker.sock"), cli: dockerCLI(t),
		env: []string{"DOCKER_CONFIG=" + filepath.Join(dir, "cli")}}
	k.cgroup = path.Dir(testutil.CgroupPath(t))
	conf := dockerDaemonJSON(runtimeBin)
	confPath := filepath.Join(dir, "daemon.json")
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("dockerd daemon.json:\n%s", conf)
	execRoot := filepath.Join(dir, "exec")
	// After dockerd is gone: the runtime's state is empty.
	t.Cleanup(func() { checkEmptyTree(t, "runtime root", k.runtimeRoot()) })
	hostDockerUntouched(t)
	k.d = startDaemon(t, daemonOpts{
		name: "dockerd",
		args: []string{"dockerd",
			"--config-file", confPath,
			"--data-root", filepath.Join(dir, "data"),
			"--exec-root", execRoot,
			"--pidfile", filepath.Join(dir, "docker.pid"),
			"-H", "unix://" + k.sock,
			"--iptables=false", "--ip6tables=false", "--ip-forward=false", "--ip-masq=false",
			"--bridge=none", "--userland-proxy=false",
			"--cgroup-parent", k.cgroup,
			"--exec-opt", "native.cgroupdriver=cgroupfs",
			"--storage-driver", "overlay2",
		},
		log:         filepath.Join(dir, "dockerd.log"),
		marker:      dir,
		privateDirs: []string{"/etc/docker"},
		ready: func() bool {
			c := exec.Command(k.cli, "-H", "unix://"+k.sock, "version")
			c.Env = append(os.Environ(), k.env...)
			return c.Run() == nil
		},
	})
	// Before dockerd stops: no container left.
	t.Cleanup(func() {
		if out := run(t, k.cmd("ps", "--all", "--quiet")).stdout; strings.TrimSpace(out) != "" {
			t.Errorf("docker containers left after the test:\n%s", out)
			run(t, k.cmd(append([]string{"rm", "--force"}, strings.Fields(out)...)...))
		}
	})
	mustRun(t, k.cmd("load", "--input", buildImage(t, image{name: podmanImage, cmd: []string{"sh"}})))
	if out := mustRun(t, k.cmd("images", "--format", "{{.Repository}}:{{.Tag}}")).stdout; !hasLine(out, "busybox:cfd") && !hasLine(out, podmanImage) {
		t.Fatalf("docker images does not list %s after docker load:\n%s", podmanImage, out)
	}
	if out := mustRun(t, k.cmd("info", "--format", "{{json .Runtimes}}")).stdout; !strings.Contains(out, runtimeBin) {
		t.Errorf("docker info does not list the runtime %s: %s", runtimeBin, out)
	}
	return k
}

// runtimeRoot is the runtime's --root for Docker's containers: dockerd
// 20.10 gives every runtime <exec-root>/runtime-runc (the shim adds the
// containerd namespace, /moby).
func (k *dockerd) runtimeRoot() string {
	return filepath.Join(k.dir, "exec", "runtime-runc")
}

func (k *dockerd) cmd(args ...string) command {
	return command{args: append([]string{k.cli, "-H", "unix://" + k.sock}, args...), env: k.env}
}

func (k *dockerd) run(t *testing.T, args ...string) result {
	t.Helper()
	return run(t, k.cmd(args...))
}

func (k *dockerd) must(t *testing.T, args ...string) string {
	t.Helper()
	return mustRun(t, k.cmd(args...)).stdout
}

// runArgs is `docker run --runtime containerfd --network none`, then opts,
// the image and args.
func (k *dockerd) runArgs(opts []string, args ...string) []string {
	a := append([]string{"run", "--runtime", dockerRuntime, "--network", "none"}, opts...)
	return append(append(a, podmanImage), args...)
}

// inspect returns a field of `docker inspect` of a container.
func (k *dockerd) inspect(t *testing.T, name, field string) string {
	t.Helper()
	return strings.TrimSpace(k.must(t, "inspect", "--format", "{{"+field+"}}", name))
}

// runtimeState is the runtime's own `state` of a container, from its root.
func (k *dockerd) runtimeState(t *testing.T, id string) (status string, r result) {
	t.Helper()
	r = run(t, command{args: []string{runtimeBin, "--root", filepath.Join(k.runtimeRoot(), "moby"), "state", id}})
	var st struct{ Status string }
	if r.code == 0 {
		if err := json.Unmarshal([]byte(r.stdout), &st); err != nil {
			t.Errorf("runtime state %s: %v", id, err)
		}
	}
	return st.Status, r
}

// hostDockerUntouched checks, after the test, that the host has no
// /run/docker or /etc/docker/key.json that it did not have before.
func hostDockerUntouched(t *testing.T) {
	existed := map[string]bool{}
	paths := []string{"/run/docker", "/etc/docker/key.json", "/run/containerd/containerd.sock"}
	for _, p := range paths {
		_, err := os.Lstat(p)
		existed[p] = err == nil
	}
	t.Cleanup(func() {
		for _, p := range paths {
			if _, err := os.Lstat(p); err == nil && !existed[p] {
				t.Errorf("the test created %s on the host", p)
			}
		}
	})
}

func TestDocker(t *testing.T) {
	testutil.NoLeaks(t)
	testutil.RequireRoot(t)
	requireTools(t, "dockerd", "containerd", "containerd-shim-runc-v2")
	start := time.Now()
	k := startDockerd(t)
	t.Logf("dockerd ready with the image in %v; runtime %s as %q; %s; CLI %s", time.Since(start).Round(time.Millisecond), runtimeBin, dockerRuntime,
		firstLine(mustRun(t, command{args: []string{"dockerd", "--version"}}).stdout), k.cli)
	defer func() { t.Logf("TestDocker took %v", time.Since(start).Round(time.Millisecond)) }()

	t.Run("RunAttached", func(t *testing.T) {
		name := testutil.ID(t)
		r := k.run(t, k.runArgs([]string{"--rm", "--name", name}, "sh", "-c", `echo "hello from pid $$"; echo "to stderr" >&2`)...)
		if r.code != 0 || r.stdout != "hello from pid 1\n" || r.stderr != "to stderr\n" {
			t.Errorf("docker run --rm: %v; want exit 0, the output on stdout and stderr", r)
		}
		if r := k.run(t, k.runArgs([]string{"--rm"}, "sh", "-c", "exit 7")...); r.code != 7 {
			t.Errorf("docker run --rm of a process exiting 7: %v", r)
		}
		// stdin, attached.
		r = run(t, command{args: k.cmd(k.runArgs([]string{"--rm", "--interactive"}, "sed", "s/^/got: /")...).args,
			env: k.env, stdin: "line one\nline two\n"})
		if r.code != 0 || r.stdout != "got: line one\ngot: line two\n" {
			t.Errorf("docker run -i with stdin: %v", r)
		}
		if hasLine(k.must(t, "ps", "--all", "--format", "{{.Names}}"), name) {
			t.Errorf("container %s still listed after run --rm", name)
		}
		// A command that does not exist: exit 127, which Docker gives only
		// when the runtime's error names the program and says "executable
		// file not found" or "no such file or directory".
		for _, prog := range []string{"no-such-program", "/no/such-program"} {
			r := k.run(t, k.runArgs([]string{"--rm"}, prog)...)
			if r.code != 127 || !strings.Contains(r.stderr, prog) {
				t.Errorf("docker run of %s: %v; want exit 127 and an error naming it", prog, r)
			}
		}
	})

	t.Run("Detached", func(t *testing.T) {
		name := testutil.ID(t)
		t.Cleanup(func() { run(t, k.cmd("rm", "--force", name)) })
		id := strings.TrimSpace(k.must(t, k.runArgs([]string{"--detach", "--name", name}, "sh", "-c", podmanCounter)...))
		if !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(id) {
			t.Fatalf("docker run -d printed %q, want the container id", id)
		}
		if st := k.inspect(t, name, ".State.Status"); st != "running" {
			t.Fatalf("after docker run -d: status %q, want running", st)
		}
		if rt := k.inspect(t, name, ".HostConfig.Runtime"); rt != dockerRuntime {
			t.Errorf("docker inspect: runtime %q, want %q", rt, dockerRuntime)
		}
		// The runtime itself has the container, running.
		if st, r := k.runtimeState(t, id); st != "running" {
			t.Errorf("the runtime's state of the container: %v; want status running", r)
		}
		var pid int
		fmt.Sscan(k.inspect(t, name, ".State.Pid"), &pid)
		if pid <= 0 {
			t.Fatalf("docker inspect: State.Pid %d", pid)
		}
		cg := k.cgroup + "/" + id
		checkCgroupOf(t, pid, cg)
		if !waitFor(5*time.Second, func() bool { return readInRootOf(pid, "/tmp/count") != "" }) {
			t.Errorf("the container does not count")
		}

		// exec: output and exit code.
		r := k.run(t, "exec", name, "sh", "-c", `echo "exec sees $(cat /proc/1/cmdline | tr '\0' ' ')"; exit 5`)
		if r.code != 5 || !strings.HasPrefix(r.stdout, "exec sees sh -c trap") {
			t.Errorf("docker exec: %v; want exit 5 and the container's pid 1 seen from inside", r)
		}
		// exec with stdin, a user and a directory.
		r = run(t, command{args: k.cmd("exec", "--interactive", "--user", "65534", "--workdir", "/tmp", name, "sh", "-c", `read l; echo "$l $(id -u) $(pwd)"`).args,
			env: k.env, stdin: "typed\n"})
		if r.code != 0 || r.stdout != "typed 65534 /tmp\n" {
			t.Errorf("docker exec -i -u 65534 -w /tmp: %v", r)
		}
		// exec of a program that does not exist: dockerd 20.10 gives
		// exit 126 for any exec that fails to start, and shows the
		// runtime's error, which names the program.
		for _, prog := range []string{"no-such-program", "/no/such-program"} {
			r := k.run(t, "exec", name, prog)
			out := strings.ToLower(r.output())
			if r.code != 126 || !strings.Contains(out, prog) ||
				!(strings.Contains(out, "executable file not found") || strings.Contains(out, "no such file or directory")) {
				t.Errorf("docker exec %s: %v; want exit 126 and the runtime's error naming it as not found", prog, r)
			}
		}
		if out := k.must(t, "logs", name); out != "counting\n" {
			t.Errorf("docker logs: %q, want %q", out, "counting\n")
		}

		// stop: SIGTERM, which init handles by exiting 3.
		k.must(t, "stop", "--time", "10", name)
		if st := k.inspect(t, name, ".State.Status"); st != "exited" {
			t.Errorf("after docker stop: status %q, want exited", st)
		}
		if code := k.inspect(t, name, ".State.ExitCode"); code != "3" {
			t.Errorf("after docker stop: exit code %s, want 3 (init's SIGTERM trap)", code)
		}
		if readCmdline(pid) != "" {
			t.Errorf("after docker stop: init (pid %d) still there", pid)
		}

		// rm: gone from Docker, from the runtime and from the cgroups.
		k.must(t, "rm", name)
		if hasLine(k.must(t, "ps", "--all", "--format", "{{.Names}}"), name) {
			t.Errorf("container %s still listed after docker rm", name)
		}
		if _, r := k.runtimeState(t, id); r.code == 0 || !strings.Contains(r.output(), "does not exist") {
			t.Errorf("the runtime's state of a removed container: %v; want an error saying it does not exist", r)
		}
		checkCgroupGone(t, cg)
	})

	t.Run("Memory", func(t *testing.T) {
		name := testutil.ID(t)
		t.Cleanup(func() { run(t, k.cmd("rm", "--force", name)) })
		id := strings.TrimSpace(k.must(t, k.runArgs([]string{"--detach", "--name", name, "--memory", "64m"}, "sleep", "1000")...))
		var pid int
		fmt.Sscan(k.inspect(t, name, ".State.Pid"), &pid)
		cg := k.cgroup + "/" + id
		checkCgroupOf(t, pid, cg)
		if got := memoryLimitOf(t, cg); got != "67108864" {
			t.Errorf("docker run --memory 64m: the cgroup's memory limit is %q, want 67108864", got)
		}
		if got := k.inspect(t, name, ".HostConfig.Memory"); got != "67108864" {
			t.Errorf("docker inspect: HostConfig.Memory %s, want 67108864", got)
		}
		// rm --force of a running container.
		k.must(t, "rm", "--force", name)
		if readCmdline(pid) != "" {
			t.Errorf("after docker rm -f: init (pid %d) still there", pid)
		}
		checkCgroupGone(t, cg)
	})
}

// TestClientsDocPodmanDocker checks that clientsDoc's podman and Docker
// sections show the configurations these suites use, with containerfd's
// installed path: the containers.conf part of TestPodman and the
// daemon.json of TestDocker.
func TestClientsDocPodmanDocker(t *testing.T) {
	doc := readClientsDoc(t)
	for _, c := range []struct{ section, lang, want string }{
		{"## podman", "toml", podmanRuntimeConf("containerfd", installedBinary, "")},
		{"## Docker", "json", dockerDaemonJSON(installedBinary)},
	} {
		if got := codeBlock(t, docSection(t, doc, c.section), c.lang); got != c.want {
			t.Errorf("%s %s: the ```%s block is\n%s\nwant (what the test runs)\n%s", clientsDoc, c.section, c.lang, got, c.want)
		}
	}
	var v map[string]any
	if err := json.Unmarshal([]byte(dockerDaemonJSON(installedBinary)), &v); err != nil {
		t.Errorf("daemon.json: %v", err)
	}
}
