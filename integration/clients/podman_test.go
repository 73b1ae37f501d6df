package clients

import (
	"fmt"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/containerfd/containerfd/internal/testutil"
	"golang.org/x/sys/unix"
)

// The podman suite: Debian's podman 4.3 and conmon, cgroupfs manager, no
// network, with the runtime under test as podman's OCI runtime.
//
// podman has no daemon, but it and conmon write fixed paths the test cannot
// move: podman never passes --root to the runtime, so the runtime keeps its
// state in its default root (/run/containerfd, /run/runc). Every podman
// command therefore runs, through nsenter, in a mount namespace of the
// test's own with a private tmpfs on /run, held open by a "sleep infinity"
// started like a daemon (startDaemon). Everything else podman keeps (its
// storage, its state, locks, events, the conmon sockets) is in the test's
// directory, named by a containers.conf (CONTAINERS_CONF), a storage.conf
// (CONTAINERS_STORAGE_CONF), --root and --runroot.

// podmanImage is the image every podman and Docker container runs: the
// entrypoint is unset and the command is sh, as in Docker Hub's busybox.
const podmanImage = "docker.io/library/busybox:cfd"

// installedBinary is where docs/clients.md's configurations say
// containerfd is installed (make install).
const installedBinary = "/usr/local/bin/containerfd"

// podmanRuntimeConf is the part of containers.conf that makes podman use
// the runtime at binary under the name name: the [engine] table (with the
// keys in extra first) and [engine.runtimes]. docs/clients.md shows it for
// containerfd; TestClientsDocPodmanDocker checks that it is this one.
//
// runtime_supports_json makes podman (and conmon) pass the runtime
// --log-format=json, so that podman shows the runtime's own error message.
func podmanRuntimeConf(name, binary, extra string) string {
	return fmt.Sprintf(`[engine]
%[3]sruntime = %[1]q
runtime_supports_json = [%[1]q, "crun", "runc", "kata", "runsc", "krun"]

[engine.runtimes]
%[1]s = [%[2]q]
`, name, binary, extra)
}

// podman is a podman of the test's own.
type podman struct {
	t       *testing.T
	dir     string
	env     []string // CONTAINERS_CONF, CONTAINERS_STORAGE_CONF, …
	ns      *daemon  // the process holding the mount namespace
	cgroup  string   // the cgroup parent of every container: /cfdtest-<random>
	runtime string   // the runtime's name in containers.conf
}

// startPodman writes podman's configuration in a directory of its own,
// starts the mount namespace podman runs in, and loads the busybox image.
// Cleanups check that nothing is left: no container, no conmon, no mount, no
// cgroup, and nothing in the runtime's default root.
func startPodman(t *testing.T) *podman {
	t.Helper()
	requireTools(t, "podman", "conmon", "nsenter", "unshare", "sleep")
	dir, err := os.MkdirTemp("", "cfdpm-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	p := &podman{t: t, dir: dir, runtime: filepath.Base(runtimeBin)}
	p.cgroup = path.Dir(testutil.CgroupPath(t))

	// The container processes may not raise their limits above the
	// machine's hard limits (no CAP_SYS_RESOURCE here): podman's defaults
	// (nofile 1048576, nproc from its own limit) are too high.
	var nofile unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &nofile); err != nil {
		t.Fatal(err)
	}
	nofileMax := min(nofile.Max, 1048576)
	conf := fmt.Sprintf(`[containers]
default_ulimits = ["nofile=%d:%d", "nproc=4096:4096"]
log_driver = "k8s-file"
# --init: a static tini (Debian's tini package), as the image has no libc.
init_path = "/usr/bin/tini-static"

[network]
network_config_dir = %q

%s`, nofileMax, nofileMax, filepath.Join(dir, "net"), podmanRuntimeConf(p.runtime, runtimeBin, fmt.Sprintf(
		"cgroup_manager = \"cgroupfs\"\nevents_logger = \"file\"\nevents_logfile_path = %q\nlock_type = \"file\"\n"+
			"static_dir = %q\ntmp_dir = %q\nvolume_path = %q\n",
		filepath.Join(dir, "events.log"), filepath.Join(dir, "storage", "libpod"),
		filepath.Join(dir, "tmp"), filepath.Join(dir, "volumes"))))
	storage := fmt.Sprintf(`[storage]
driver = "overlay"
graphroot = %q
runroot = %q
`, filepath.Join(dir, "storage"), filepath.Join(dir, "runroot"))
	files := map[string]string{"containers.conf": conf, "storage.conf": storage, "registries.conf": ""}
	for name, text := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("podman containers.conf:\n%s\nstorage.conf:\n%s", conf, storage)
	p.env = []string{
		"CONTAINERS_CONF=" + filepath.Join(dir, "containers.conf"),
		"CONTAINERS_STORAGE_CONF=" + filepath.Join(dir, "storage.conf"),
		"CONTAINERS_REGISTRIES_CONF=" + filepath.Join(dir, "registries.conf"),
	}

	// After the namespace is gone (cleanups run last-in first-out):
	// podman leaves conmon's cgroup, <parent>/conmon, in every hierarchy
	// on purpose; it must be empty. CgroupPath's cleanup then checks that
	// nothing else is left under the parent.
	t.Cleanup(func() {
		removeEmptyCgroups(t, p.cgroup+"/conmon")
		// conmon also makes <parent>/conmon where this host mounts no
		// hierarchy (testutil.RemoveStrayCgroupDirs): not ours, but the
		// test's to clean.
		if _, err := testutil.RemoveStrayCgroupDirs(strings.TrimPrefix(p.cgroup, "/")); err != nil {
			t.Errorf("removing conmon's directories: %v", err)
		}
	})
	p.ns = startDaemon(t, daemonOpts{
		name:   "podman's mount namespace",
		args:   []string{"sh", "-c", `touch "$1"; exec sleep infinity`, "sh", filepath.Join(dir, "ns-ready")},
		log:    filepath.Join(dir, "ns.log"),
		marker: dir, // conmon's command line names the container's files
		ready: func() bool {
			_, err := os.Stat(filepath.Join(dir, "ns-ready"))
			return err == nil
		},
	})
	// Before the namespace goes: no container left, and nothing in /run,
	// where the runtime keeps its state (its default --root).
	t.Cleanup(func() {
		if out := run(t, p.cmd("ps", "--all", "--quiet")).stdout; strings.TrimSpace(out) != "" {
			t.Errorf("podman containers left after the test:\n%s", out)
			run(t, p.cmd("rm", "--force", "--all", "--time", "0"))
		}
		checkEmptyTree(t, "/run in podman's mount namespace (the runtime's default --root)",
			fmt.Sprintf("/proc/%d/root/run", p.nsPid()))
	})

	tarball := buildImage(t, image{name: podmanImage, cmd: []string{"sh"}})
	mustRun(t, p.cmd("load", "--input", tarball))
	if out := mustRun(t, p.cmd("images", "--format", "{{.Repository}}:{{.Tag}}")).stdout; !hasLine(out, podmanImage) {
		t.Fatalf("podman images does not list %s after podman load:\n%s", podmanImage, out)
	}
	return p
}

func (p *podman) nsPid() int { return p.ns.pid() }

// args is a podman command line run in the test's mount namespace.
func (p *podman) args(args ...string) []string {
	a := []string{"nsenter", "--mount=" + fmt.Sprintf("/proc/%d/ns/mnt", p.nsPid()), "--",
		"podman", "--root", filepath.Join(p.dir, "storage"), "--runroot", filepath.Join(p.dir, "runroot")}
	return append(a, args...)
}

// envArgs is args with podman's environment set by env(1), for runTTY,
// which takes no environment.
func (p *podman) envArgs(args ...string) []string {
	return append(append([]string{"env"}, p.env...), p.args(args...)...)
}

func (p *podman) cmd(args ...string) command {
	return command{args: p.args(args...), env: p.env}
}

// run runs a podman command and returns what it did.
func (p *podman) run(t *testing.T, args ...string) result {
	t.Helper()
	return run(t, p.cmd(args...))
}

// must runs a podman command, fails the test unless it exits 0, and returns
// its stdout.
func (p *podman) must(t *testing.T, args ...string) string {
	t.Helper()
	return mustRun(t, p.cmd(args...)).stdout
}

// runArgs is `podman run` with the flags every test container gets (no
// network, the test's cgroup parent), then opts, the image and args.
func (p *podman) runArgs(opts []string, args ...string) []string {
	a := []string{"run", "--network", "none", "--cgroup-parent", p.cgroup}
	a = append(append(a, opts...), podmanImage)
	return append(a, args...)
}

// pmContainer is a container a subtest made with a name of its own; a
// cleanup removes it whatever the subtest did.
type pmContainer struct {
	t    *testing.T
	p    *podman
	name string
}

func (p *podman) container(t *testing.T) *pmContainer {
	c := &pmContainer{t: t, p: p, name: testutil.ID(t)}
	t.Cleanup(func() {
		if hasLine(run(t, p.cmd("ps", "--all", "--format", "{{.Names}}")).stdout, c.name) {
			t.Logf("removing what the test left of container %s", c.name)
			run(t, p.cmd("rm", "--force", "--time", "0", c.name))
		}
	})
	return c
}

// inspect returns a field of `podman inspect` as a Go template gives it.
func (c *pmContainer) inspect(field string) string {
	c.t.Helper()
	return strings.TrimSpace(c.p.must(c.t, "inspect", "--format", "{{"+field+"}}", c.name))
}

// status is the container's State.Status: running, paused, exited, …
func (c *pmContainer) status() string { return c.inspect(".State.Status") }

// waitStatus waits until podman shows the container with status.
func (c *pmContainer) waitStatus(status string) {
	c.t.Helper()
	var st string
	if !waitFor(10*time.Second, func() bool { st = c.status(); return st == status }) {
		c.t.Fatalf("container %s: status %s, want %s", c.name, st, status)
	}
}

// pid is the container's init as the host sees it; it must be running.
func (c *pmContainer) pid() int {
	c.t.Helper()
	pid, err := strconv.Atoi(c.inspect(".State.Pid"))
	if err != nil || pid <= 0 {
		c.t.Fatalf("container %s: State.Pid %d (%v), want a pid", c.name, pid, err)
	}
	return pid
}

// cgroup is the container's cgroup: podman's cgroupfs manager puts it in
// <parent>/libpod-<id>.
func (c *pmContainer) cgroup() string {
	return c.p.cgroup + "/libpod-" + c.inspect(".Id")
}

// podmanCounter counts in /tmp/count ten times a second, says so on stdout
// once, and exits 3 on SIGTERM.
const podmanCounter = `trap "exit 3" TERM; echo counting; i=0; while :; do i=$((i+1)); echo $i > /tmp/count; sleep 0.1 & wait; done`

// podmanTTYScript prints the name of its terminal and the terminal's size,
// once the client has set it.
const podmanTTYScript = `tty; i=0; until s=$(stty size 2>/dev/null); [ -n "$s" ] && [ "$s" != "0 0" ]; do i=$((i+1)); [ $i -gt 100 ] && break; sleep 0.05; done; echo "size $s"`

func TestPodman(t *testing.T) {
	testutil.NoLeaks(t)
	testutil.RequireRoot(t)
	requireTools(t, "podman", "conmon", "nsenter")
	start := time.Now()
	p := startPodman(t)
	t.Logf("podman ready with the image in %v; runtime %s (%q in containers.conf); %s; %s",
		time.Since(start).Round(time.Millisecond), runtimeBin, p.runtime,
		firstLine(mustRun(t, command{args: []string{"podman", "--version"}}).stdout),
		firstLine(mustRun(t, command{args: []string{"conmon", "--version"}}).stdout))
	defer func() { t.Logf("TestPodman took %v", time.Since(start).Round(time.Millisecond)) }()

	t.Run("RunRm", func(t *testing.T) {
		c := p.container(t)
		r := p.run(t, p.runArgs([]string{"--rm", "--name", c.name}, "sh", "-c", `echo "hello from pid $$"; echo "to stderr" >&2`)...)
		if r.code != 0 || r.stdout != "hello from pid 1\n" || !strings.Contains(r.stderr, "to stderr\n") {
			t.Errorf("podman run --rm: %v; want exit 0, the output on stdout and stderr", r)
		}
		if r := p.run(t, p.runArgs([]string{"--rm"}, "sh", "-c", "exit 7")...); r.code != 7 {
			t.Errorf("podman run --rm of a process exiting 7: %v", r)
		}
		if hasLine(p.must(t, "ps", "--all", "--format", "{{.Names}}"), c.name) {
			t.Errorf("container %s still listed after run --rm", c.name)
		}
	})

	t.Run("Stdin", func(t *testing.T) {
		r := run(t, command{args: p.args(p.runArgs([]string{"--rm", "--interactive"}, "sed", "s/^/got: /")...),
			env: p.env, stdin: "line one\nline two\n"})
		if r.code != 0 || r.stdout != "got: line one\ngot: line two\n" {
			t.Errorf("podman run -i with stdin: %v", r)
		}
	})

	t.Run("TTY", func(t *testing.T) {
		out, code := runTTY(t, 30, 100, "typed\r", p.envArgs(p.runArgs([]string{"--rm", "--interactive", "--tty"},
			"sh", "-c", podmanTTYScript+`; read line; echo "got:$line"; exit 4`)...)...)
		if code != 4 {
			t.Errorf("podman run -it: exit %d, want 4", code)
		}
		for _, want := range []string{`/dev/pts/\d+\r*\n`, `size 30 100\r*\n`, `got:typed\r*\n`} {
			if !regexp.MustCompile(want).MatchString(out) {
				t.Errorf("podman run -it: the terminal shows %q, want it to match %q", out, want)
			}
		}
	})

	t.Run("UserWorkdir", func(t *testing.T) {
		r := p.run(t, p.runArgs([]string{"--rm", "--user", "65534:65534", "--workdir", "/tmp"}, "sh", "-c", `echo "$(id -u) $(id -g) $(pwd)"`)...)
		if r.code != 0 || r.stdout != "65534 65534 /tmp\n" {
			t.Errorf("podman run -u 65534:65534 -w /tmp: %v", r)
		}
		// A user name, resolved in the image's /etc/passwd.
		r = p.run(t, p.runArgs([]string{"--rm", "--user", "nobody", "--workdir", "/etc"}, "sh", "-c", `echo "$(id -un) $(id -u) $(pwd)"`)...)
		if r.code != 0 || r.stdout != "nobody 65534 /etc\n" {
			t.Errorf("podman run -u nobody -w /etc: %v", r)
		}
	})

	t.Run("Lifecycle", func(t *testing.T) {
		c := p.container(t)
		id := strings.TrimSpace(p.must(t, p.runArgs([]string{"--detach", "--name", c.name}, "sh", "-c", podmanCounter)...))
		if !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(id) {
			t.Fatalf("podman run -d printed %q, want the container id", id)
		}
		c.waitStatus("running")
		pid := c.pid()
		checkCgroupOf(t, pid, c.cgroup())
		// The runtime itself has it, running, in its default root (in
		// podman's mount namespace).
		r := run(t, command{args: []string{"nsenter", fmt.Sprintf("--mount=/proc/%d/ns/mnt", p.nsPid()), "--", runtimeBin, "state", id}})
		if !regexp.MustCompile(`"status": "running"`).MatchString(r.stdout) || !strings.Contains(r.stdout, fmt.Sprintf(`"pid": %d`, pid)) {
			t.Errorf("the runtime's state of the container: %v; want running with pid %d", r, pid)
		}

		// exec: output and exit code, in the container's namespaces.
		r = p.run(t, "exec", c.name, "sh", "-c", `echo "exec sees $(cat /proc/1/cmdline | tr '\0' ' ')"; exit 5`)
		if r.code != 5 || !strings.HasPrefix(r.stdout, "exec sees sh -c trap") {
			t.Errorf("podman exec: %v; want exit 5 and the container's pid 1 seen from inside", r)
		}
		// exec of a program that does not exist: podman's exit 127,
		// with the runtime's error naming it.
		for _, prog := range []string{"no-such-program", "/no/such-program"} {
			r := p.run(t, "exec", c.name, prog)
			if r.code != 127 || !strings.Contains(r.stderr, prog) {
				t.Errorf("podman exec %s: %v; want exit 127 and an error naming it", prog, r)
			}
		}
		// exec with stdin, as a user, in a directory.
		r = run(t, command{args: p.args("exec", "--interactive", "--user", "65534", "--workdir", "/tmp", c.name, "sh", "-c", `read l; echo "$l $(id -u) $(pwd)"`),
			env: p.env, stdin: "typed\n"})
		if r.code != 0 || r.stdout != "typed 65534 /tmp\n" {
			t.Errorf("podman exec -i -u 65534 -w /tmp: %v", r)
		}

		// logs: what init wrote.
		if out := p.must(t, "logs", c.name); out != "counting\n" {
			t.Errorf("podman logs: %q, want %q", out, "counting\n")
		}
		// top: init's command line, pid 1.
		top := p.must(t, "top", c.name, "pid", "args")
		if !regexp.MustCompile(`(?m)^1\s+sh -c trap`).MatchString(top) {
			t.Errorf("podman top does not list init as pid 1:\n%s", top)
		}

		// pause: podman says paused, the freezer says frozen, and the
		// counter stops; unpause: it counts again.
		p.must(t, "pause", c.name)
		c.waitStatus("paused")
		if !cgroupFrozen(t, c.cgroup()) {
			t.Errorf("container paused but its cgroup %s is not frozen", c.cgroup())
		}
		n1 := readInRootOf(pid, "/tmp/count")
		time.Sleep(400 * time.Millisecond)
		if n2 := readInRootOf(pid, "/tmp/count"); n1 == "" || n1 != n2 {
			t.Errorf("paused container kept counting: %q then %q", n1, n2)
		}
		p.must(t, "unpause", c.name)
		c.waitStatus("running")
		if cgroupFrozen(t, c.cgroup()) {
			t.Errorf("container running but its cgroup %s is frozen", c.cgroup())
		}
		if !waitFor(3*time.Second, func() bool { return readInRootOf(pid, "/tmp/count") != n1 }) {
			t.Errorf("unpaused container does not count: still %q", n1)
		}

		// stop: SIGTERM, which init handles by exiting 3.
		p.must(t, "stop", "--time", "10", c.name)
		c.waitStatus("exited")
		if code := c.inspect(".State.ExitCode"); code != "3" {
			t.Errorf("after podman stop: exit code %s, want 3 (init's SIGTERM trap)", code)
		}
		if readCmdline(pid) != "" {
			t.Errorf("after podman stop: init (pid %d) still there", pid)
		}

		// start: runs again, a new init.
		p.must(t, "start", c.name)
		c.waitStatus("running")
		pid2 := c.pid()
		if pid2 == pid {
			t.Errorf("podman start: init has the old pid %d", pid)
		}
		checkCgroupOf(t, pid2, c.cgroup())
		if !waitFor(3*time.Second, func() bool { return readInRootOf(pid2, "/tmp/count") != "" }) {
			t.Errorf("started container does not count")
		}

		// restart: stop and start; a new init again.
		p.must(t, "restart", "--time", "10", c.name)
		c.waitStatus("running")
		pid3 := c.pid()
		if pid3 == pid2 || readCmdline(pid2) != "" {
			t.Errorf("podman restart: init pid %d, before %d (still there: %q)", pid3, pid2, readCmdline(pid2))
		}
		if out := p.must(t, "logs", c.name); out != "counting\ncounting\ncounting\n" {
			t.Errorf("podman logs after start and restart: %q, want three runs", out)
		}

		// kill: SIGKILL by default, exit code 137.
		p.must(t, "kill", c.name)
		c.waitStatus("exited")
		if code := c.inspect(".State.ExitCode"); code != "137" {
			t.Errorf("after podman kill: exit code %s, want 137", code)
		}
		// kill --signal to a running container: init's trap sees it.
		p.must(t, "start", c.name)
		c.waitStatus("running")
		p.must(t, "kill", "--signal", "TERM", c.name)
		c.waitStatus("exited")
		if code := c.inspect(".State.ExitCode"); code != "3" {
			t.Errorf("after podman kill --signal TERM: exit code %s, want 3", code)
		}

		// rm -f of a running container: gone, and so are its
		// processes and cgroup.
		p.must(t, "start", c.name)
		c.waitStatus("running")
		pid4 := c.pid()
		cg := c.cgroup()
		p.must(t, "rm", "--force", "--time", "0", c.name)
		if hasLine(p.must(t, "ps", "--all", "--format", "{{.Names}}"), c.name) {
			t.Errorf("container %s still listed after rm -f", c.name)
		}
		if readCmdline(pid4) != "" {
			t.Errorf("after podman rm -f: init (pid %d) still there", pid4)
		}
		checkCgroupGone(t, cg)
	})

	// --read-only with a :ro volume. podman also mounts tmpfs on /tmp,
	// /var/tmp and /run with the option tmpcopyup (the tmpfs starts with a
	// copy of what the image has there), unless --read-only-tmpfs=false;
	// --tmpfs mounts get tmpcopyup too: with --tmpfs /etc, the image's
	// /etc/passwd is there and /etc is writable.
	readOnly := func(t *testing.T, tmpfs bool) {
		data := t.TempDir()
		if err := os.WriteFile(filepath.Join(data, "file"), []byte("host data\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		script := `cat /data/file
touch /data/new 2>/dev/null && echo "wrote /data"
touch /new 2>/dev/null && echo "wrote /"
for m in / /data; do awk -v m=$m '$5 == m { print $6 }' /proc/self/mountinfo | grep -q '^ro' && echo "$m ro"; done
touch /tmp/new 2>/dev/null && echo "wrote /tmp"
grep -q '^root:' /etc/passwd && echo "/etc has passwd"
touch /etc/new 2>/dev/null && echo "wrote /etc"
true`
		opts := []string{"--rm", "--read-only", "--volume", data + ":/data:ro"}
		want := "host data\n/ ro\n/data ro\n/etc has passwd\n"
		if tmpfs {
			opts = append(opts, "--tmpfs", "/etc")
			want = "host data\n/ ro\n/data ro\nwrote /tmp\n/etc has passwd\nwrote /etc\n"
		} else {
			opts = append(opts, "--read-only-tmpfs=false")
		}
		r := p.run(t, p.runArgs(opts, "sh", "-c", script)...)
		if r.code != 0 || r.stdout != want {
			t.Errorf("podman run --read-only -v …:/data:ro: %v; want stdout %q", r, want)
		}
		if ents, _ := os.ReadDir(data); len(ents) != 1 {
			t.Errorf("the container wrote into the read-only volume: %v", ents)
		}
	}
	t.Run("ReadOnly", func(t *testing.T) { readOnly(t, false) })
	t.Run("ReadOnlyTmpfs", func(t *testing.T) { readOnly(t, true) })

	t.Run("Resources", func(t *testing.T) {
		c := p.container(t)
		p.must(t, p.runArgs([]string{"--detach", "--name", c.name, "--memory", "64m", "--pids-limit", "20"}, "sleep", "1000")...)
		c.waitStatus("running")
		pid := c.pid()
		cg := c.cgroup()
		checkCgroupOf(t, pid, cg)
		if got := memoryLimitOf(t, cg); got != "67108864" {
			t.Errorf("podman run --memory 64m: the cgroup's memory limit is %q, want 67108864", got)
		}
		if got := pidsLimitOf(t, cg); got != "20" {
			t.Errorf("podman run --pids-limit 20: the cgroup's pids.max is %q, want 20", got)
		}
		// The pids limit holds: 30 more processes cannot all start.
		r := p.run(t, "exec", c.name, "sh", "-c", `for i in $(seq 30); do sleep 5 & done`)
		if r.code == 0 || !strings.Contains(r.stderr, "can't fork: Resource temporarily unavailable") {
			t.Errorf("podman exec forking 30 processes under --pids-limit 20: %v; want fork to fail with EAGAIN", r)
		}
		p.must(t, "rm", "--force", "--time", "0", c.name)
		checkCgroupGone(t, cg)
	})

	t.Run("Init", func(t *testing.T) {
		if _, err := os.Stat("/usr/bin/tini-static"); err != nil {
			t.Skip("needs /usr/bin/tini-static, podman's init_path here (Debian's tini; hack/deps.sh installs it)")
		}
		r := p.run(t, p.runArgs([]string{"--rm", "--init"}, "sh", "-c", `echo "$(cat /proc/1/cmdline | tr '\0' ' ')"; [ $$ != 1 ] && echo "sh is not pid 1"; exit 6`)...)
		if r.code != 6 || !strings.HasPrefix(r.stdout, "/run/podman-init -- sh -c") || !strings.Contains(r.stdout, "sh is not pid 1\n") {
			t.Errorf("podman run --init: %v; want exit 6, podman-init as pid 1 and sh below it", r)
		}
		// A signal to the container reaches the process below init.
		c := p.container(t)
		p.must(t, p.runArgs([]string{"--detach", "--init", "--name", c.name}, "sh", "-c", podmanCounter)...)
		c.waitStatus("running")
		p.must(t, "stop", "--time", "10", c.name)
		c.waitStatus("exited")
		if code := c.inspect(".State.ExitCode"); code != "3" {
			t.Errorf("podman stop of a container with --init: exit code %s, want 3 (sh's SIGTERM trap)", code)
		}
		p.must(t, "rm", c.name)
	})
}

// Checks shared by the podman and Docker suites.

// checkCgroupOf checks that pid is in cgroup in the v1 memory and pids
// hierarchies (or cgroup2 on a pure v2 host).
func checkCgroupOf(t *testing.T, pid int, cgroup string) {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		t.Errorf("cgroup of pid %d: %v", pid, err)
		return
	}
	for _, ctl := range []string{"memory", "pids"} {
		if _, err := os.Stat("/sys/fs/cgroup/" + ctl); err != nil {
			ctl = ""
		}
		if !regexp.MustCompile(`(?m)^\d+:` + ctl + `:` + regexp.QuoteMeta(cgroup) + `$`).Match(b) {
			t.Errorf("pid %d is not in cgroup %s (%s):\n%s", pid, cgroup, ctl, b)
		}
	}
}

// checkCgroupGone checks that a container's cgroup is gone from every
// hierarchy.
func checkCgroupGone(t *testing.T, cgroup string) {
	t.Helper()
	for _, ctl := range []string{"memory", "pids", "freezer", "cpu", "devices", "unified", ""} {
		dir := cgroupDir(ctl, cgroup)
		if _, err := os.Stat(filepath.Join(dir, "cgroup.procs")); err == nil {
			t.Errorf("cgroup %s still there after the container was removed", dir)
		}
	}
}

// cgroupFrozen reports whether a cgroup is frozen: the v1 freezer or
// cgroup2's cgroup.freeze, whichever the runtime uses.
func cgroupFrozen(t *testing.T, cgroup string) bool {
	t.Helper()
	if s, err := cgroupFile(t, "freezer", cgroup, "freezer.state"); err == nil && s == "FROZEN" {
		return true
	}
	for _, ctl := range []string{"unified", ""} {
		if s, err := cgroupFile(t, ctl, cgroup, "cgroup.freeze"); err == nil && s == "1" {
			return true
		}
	}
	return false
}

// memoryLimitOf reads a cgroup's memory limit: memory.limit_in_bytes in the
// v1 memory hierarchy, or memory.max on a pure cgroup2 host.
func memoryLimitOf(t *testing.T, cgroup string) string {
	t.Helper()
	ctl, file := "memory", "memory.limit_in_bytes"
	if _, err := os.Stat("/sys/fs/cgroup/memory"); err != nil {
		ctl, file = "", "memory.max"
	}
	s, err := cgroupFile(t, ctl, cgroup, file)
	if err != nil {
		t.Errorf("memory limit: %v", err)
	}
	return s
}

// pidsLimitOf reads a cgroup's pids.max (v1 pids hierarchy, or cgroup2).
func pidsLimitOf(t *testing.T, cgroup string) string {
	t.Helper()
	ctl := "pids"
	if _, err := os.Stat("/sys/fs/cgroup/pids"); err != nil {
		ctl = ""
	}
	s, err := cgroupFile(t, ctl, cgroup, "pids.max")
	if err != nil {
		t.Errorf("pids limit: %v", err)
	}
	return s
}

// removeEmptyCgroups removes a cgroup that a client leaves on purpose from
// every hierarchy; a process still in it fails the test.
func removeEmptyCgroups(t *testing.T, cgroup string) {
	t.Helper()
	for _, ctl := range []string{"cpu", "cpuacct", "cpuset", "memory", "devices", "freezer", "blkio", "pids", "systemd", "net_cls", "net_prio", "perf_event", "hugetlb", "rdma", "misc", "unified", ""} {
		dir := cgroupDir(ctl, cgroup)
		b, err := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
		if err != nil {
			continue
		}
		if s := strings.TrimSpace(string(b)); s != "" {
			t.Errorf("processes left in cgroup %s: %s", dir, strings.ReplaceAll(s, "\n", " "))
			continue
		}
		if err := unix.Rmdir(dir); err != nil {
			t.Errorf("removing cgroup %s: %v", dir, err)
		}
	}
}

// readInRootOf reads a file in a container's root through /proc/<pid>/root.
func readInRootOf(pid int, path string) string {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/root%s", pid, path))
	return strings.TrimSpace(string(b))
}

// firstLine is the first line of s, trimmed.
func firstLine(s string) string {
	l, _, _ := strings.Cut(strings.TrimSpace(s), "\n")
	return l
}
