package clients

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/containerfd/containerfd/internal/clienttools"
	"github.com/containerfd/containerfd/internal/mdtext"
	"github.com/containerfd/containerfd/internal/testutil"
)

// The containerd suite: containerd with its runc shim (io.containerd.runc.v2)
// running the runtime named by BinaryName, driven by ctr (TestContainerd)
// and, through the CRI plugin, by crictl (TestCRI); each test runs once with
// Debian's containerd 1.6 and once with containerd 2.x built from the Go
// module proxy (forEachContainerd).

// busyboxRef is the image every container runs.
const busyboxRef = "docker.io/library/busybox:cfd"

// ctrNamespace is the containerd namespace of the ctr tests.
const ctrNamespace = "test"

// containerdVersion is a containerd the tests run against, with its ctr and
// its runc shim.
type containerdVersion struct {
	name string // the subtest's: "containerd-1.6", "containerd-2.4"
	// dir holds its containerd, ctr and containerd-shim-runc-v2; "" is
	// $PATH (Debian's).
	dir string
	// v2 is containerd 2.x: config version 3, where the CRI plugin is
	// three plugins with new names.
	v2 bool
}

// debianContainerd is Debian's containerd 1.6, from $PATH.
var debianContainerd = &containerdVersion{name: "containerd-1.6"}

// bin is the path of one of the version's commands: "containerd", "ctr" or
// "containerd-shim-runc-v2".
func (v *containerdVersion) bin(name string) string {
	if v.dir == "" {
		return name
	}
	return filepath.Join(v.dir, name)
}

// forEachContainerd runs f as a subtest for each containerd: Debian's 1.6
// (skipped without it) and 2.x (built when missing; a failed build fails
// the subtest).
func forEachContainerd(t *testing.T, f func(*testing.T, *containerdVersion)) {
	t.Run(debianContainerd.name, func(t *testing.T) { f(t, debianContainerd) })
	t.Run(containerd2Name, func(t *testing.T) { f(t, containerd2(t)) })
}

// containerd is a containerd daemon of the test's own: config, root, state,
// socket and the runtime's --root all live in dir.
type containerd struct {
	version     *containerdVersion
	dir         string
	sock        string
	runtimeRoot string // the runc options' Root; the shim adds /<namespace>
	d           *daemon
}

// containerdDisabled lists the plugins of containerd 1.6 that do nothing
// here, or that touch the host (aufs loads a module): the tests disable
// them.
var containerdDisabled = []string{
	"io.containerd.snapshotter.v1.aufs",
	"io.containerd.snapshotter.v1.btrfs",
	"io.containerd.snapshotter.v1.devmapper",
	"io.containerd.snapshotter.v1.zfs",
	"io.containerd.tracing.processor.v1.otlp",
	"io.containerd.internal.v1.tracing",
}

// containerd2Disabled is containerdDisabled for containerd 2.x: aufs is
// gone, and btrfs, devmapper and zfs are not built in (clienttools builds without them);
// NRI (its socket in /run, plugins from /opt/nri) and the erofs snapshotter
// do nothing here.
var containerd2Disabled = []string{
	"io.containerd.snapshotter.v1.erofs",
	"io.containerd.nri.v1.nri",
	"io.containerd.tracing.processor.v1.otlp",
	"io.containerd.internal.v1.tracing",
}

// disabled lists the plugins the version's daemon runs without; without cri,
// the CRI plugin too (in 2.x, the plugins it is made of, and the pod sandbox
// controller that needs them).
func (v *containerdVersion) disabled(cri bool) []string {
	if !v.v2 {
		if cri {
			return containerdDisabled
		}
		return append(slices.Clone(containerdDisabled), "io.containerd.grpc.v1.cri")
	}
	if cri {
		return containerd2Disabled
	}
	return append(slices.Clone(containerd2Disabled), "io.containerd.grpc.v1.cri", "io.containerd.cri.v1.images",
		"io.containerd.cri.v1.runtime", "io.containerd.podsandbox.controller.v1.podsandbox")
}

// startContainerdVersion writes a config.toml with the CRI plugin's section
// that cri returns, and starts containerd version v with it. cri gets the
// daemon, whose dirs and version are set (c.criConfig() is the CRI section
// with runc's shim); a nil cri disables the plugin.
func startContainerdVersion(t *testing.T, v *containerdVersion, cri func(*containerd) string) *containerd {
	t.Helper()
	if v.dir == "" {
		requireTools(t, "containerd", "ctr", "containerd-shim-runc-v2")
	}
	if v.v2 {
		// 2.x's ctr logs the daemon's deprecation warnings (cgroup v1 on
		// hybrid hosts) on every command, amid the output tests check.
		t.Setenv("CONTAINERD_SUPPRESS_DEPRECATION_WARNINGS", "1")
	}
	dir, err := os.MkdirTemp("", "cfdctd-") // short: the socket path is limited
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	c := &containerd{version: v, dir: dir, sock: filepath.Join(dir, "containerd.sock"), runtimeRoot: filepath.Join(dir, "runtime")}
	disabled := v.disabled(cri != nil)
	criSection := ""
	if cri != nil {
		criSection = cri(c)
	}
	q := make([]string, len(disabled))
	for i, p := range disabled {
		q[i] = strconv.Quote(p)
	}
	// Config version 3 is the oldest that 2.x reads with its plugins'
	// new names (and 2.0 the oldest 2.x that reads it).
	configVersion := 2
	if v.v2 {
		configVersion = 3
	}
	config := fmt.Sprintf(`version = %d
root = %q
state = %q
disabled_plugins = [%s]

[grpc]
  address = %q

[plugins]
  [plugins."io.containerd.internal.v1.opt"]
    path = %q
%s`, configVersion, filepath.Join(dir, "root"), filepath.Join(dir, "state"), strings.Join(q, ", "), c.sock, filepath.Join(dir, "opt"), criSection)
	configPath := filepath.Join(dir, "config.toml")
	if err := os.WriteFile(configPath, []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("%s config.toml:\n%s", v.name, config)
	// After the daemon stops (cleanups run last-in first-out): nothing of
	// the runtime's state may be left.
	t.Cleanup(func() { checkEmptyTree(t, "runtime root", c.runtimeRoot) })
	opts := daemonOpts{
		name:   "containerd",
		args:   []string{v.bin("containerd"), "--config", configPath, "--log-level", "info"},
		log:    filepath.Join(dir, "containerd.log"),
		marker: dir,
		ready: func() bool {
			conn, err := net.Dial("unix", c.sock)
			if err == nil {
				conn.Close()
			}
			return err == nil
		},
	}
	if v.dir != "" {
		// containerd finds its shim on $PATH: its own first.
		opts.env = []string{"PATH=" + v.dir + string(os.PathListSeparator) + os.Getenv("PATH")}
	}
	c.d = startDaemon(t, opts)
	return c
}

// fifoDir is where ctr makes the fifos of a task's stdio: ctr runs in the
// host's mount namespace and the shim in containerd's, so not in /run
// (ctr's default, /run/containerd/fifo, would also touch the host's).
func (c *containerd) fifoDir() string { return filepath.Join(c.dir, "fifo") }

// ctr is a ctr command line against this containerd, in namespace ns.
func (c *containerd) ctr(ns string, args ...string) command {
	return command{args: append([]string{c.version.bin("ctr"), "--address", c.sock, "--namespace", ns}, args...)}
}

// importImage imports an image tarball into namespace ns and checks that
// containerd lists it.
func (c *containerd) importImage(t *testing.T, ns, tarball, ref string) {
	t.Helper()
	mustRun(t, c.ctr(ns, "images", "import", tarball))
	if out := mustRun(t, c.ctr(ns, "images", "ls", "--quiet")).stdout; !hasLine(out, ref) {
		t.Fatalf("image %s not listed after import: %q", ref, out)
	}
}

func hasLine(text, line string) bool {
	for _, l := range strings.Split(text, "\n") {
		if strings.TrimSpace(l) == line {
			return true
		}
	}
	return false
}

// ctrEnv is one ctr test: the daemon, and a cgroup of the test's own.
type ctrEnv struct {
	t      *testing.T
	c      *containerd
	cgroup string // /cfdtest-<random>/<id>: the container's cgroupsPath
	id     string
	// runtime is ctr run's flags that select the runtime (docs/clients.md
	// shows them): runc's shim running runtimeBin, or containerfd's shim.
	runtime []string
}

// newCtrEnv makes a container id and cgroup path for a subtest, and a
// cleanup that removes the container whatever the subtest did.
func (c *containerd) newCtrEnv(t *testing.T) *ctrEnv {
	e := &ctrEnv{t: t, c: c, cgroup: testutil.CgroupPath(t), id: testutil.ID(t),
		runtime: []string{"--runc-binary", runtimeBin, "--runc-root", c.runtimeRoot}}
	t.Cleanup(func() {
		if !hasLine(run(t, c.ctr(ctrNamespace, "containers", "ls", "--quiet")).stdout, e.id) {
			return
		}
		t.Logf("removing what the test left of container %s", e.id)
		run(t, c.ctr(ctrNamespace, "tasks", "delete", "--force", e.id))
		run(t, c.ctr(ctrNamespace, "containers", "delete", e.id))
	})
	return e
}

// runArgs is `ctr run` with the flags that select the runtime and the
// test's cgroup, then opts, the image, the id and args.
func (e *ctrEnv) runArgs(opts []string, args ...string) []string {
	a := append(e.c.ctr(ctrNamespace, "run").args, e.runtime...)
	a = append(a, "--cgroup", e.cgroup, "--fifo-dir", e.c.fifoDir())
	a = append(a, opts...)
	return append(append(a, busyboxRef, e.id), args...)
}

// execArgs is `ctr tasks exec` in the container with opts, then args.
func (e *ctrEnv) execArgs(opts []string, args ...string) []string {
	a := e.c.ctr(ctrNamespace, "tasks", "exec", "--fifo-dir", e.c.fifoDir()).args
	return append(append(append(a, opts...), e.id), args...)
}

func (e *ctrEnv) exec(opts []string, args ...string) result {
	e.t.Helper()
	return run(e.t, command{args: e.execArgs(opts, args...)})
}

func (e *ctrEnv) mustExec(opts []string, args ...string) {
	e.t.Helper()
	mustRun(e.t, command{args: e.execArgs(opts, args...)})
}

func (e *ctrEnv) run(stdin string, opts []string, args ...string) result {
	e.t.Helper()
	return run(e.t, command{args: e.runArgs(opts, args...), stdin: stdin})
}

func (e *ctrEnv) ctr(args ...string) result {
	e.t.Helper()
	return run(e.t, e.c.ctr(ctrNamespace, args...))
}

func (e *ctrEnv) mustCtr(args ...string) string {
	e.t.Helper()
	return mustRun(e.t, e.c.ctr(ctrNamespace, args...)).stdout
}

// task is a line of `ctr tasks ls`.
type task struct {
	pid    int
	status string // RUNNING, PAUSED, STOPPED, …
}

// task returns the container's task as `ctr tasks ls` shows it.
func (e *ctrEnv) task() task {
	e.t.Helper()
	out := e.mustCtr("tasks", "ls")
	for _, l := range strings.Split(out, "\n") {
		f := strings.Fields(l)
		if len(f) == 3 && f[0] == e.id {
			pid, err := strconv.Atoi(f[1])
			if err != nil {
				e.t.Fatalf("ctr tasks ls: pid %q: %v", f[1], err)
			}
			return task{pid, f[2]}
		}
	}
	e.t.Fatalf("ctr tasks ls does not list %s:\n%s", e.id, out)
	return task{}
}

// taskStatus is the task's status in `ctr tasks ls`, "" if it is not
// listed, without logging.
func (e *ctrEnv) taskStatus() string {
	a := e.c.ctr(ctrNamespace, "tasks", "ls").args
	out, err := exec.Command(a[0], a[1:]...).Output()
	if err != nil {
		return ""
	}
	for _, l := range strings.Split(string(out), "\n") {
		if f := strings.Fields(l); len(f) == 3 && f[0] == e.id {
			return f[2]
		}
	}
	return ""
}

// waitStatus waits until `ctr tasks ls` shows the task with status.
func (e *ctrEnv) waitStatus(status string) task {
	e.t.Helper()
	waitFor(10*time.Second, func() bool { return e.taskStatus() == status })
	tk := e.task()
	if tk.status != status {
		e.t.Fatalf("task %s: status %s, want %s", e.id, tk.status, status)
	}
	return tk
}

// runDetached starts the container with `ctr run -d` and returns its task,
// which must be running.
func (e *ctrEnv) runDetached(opts []string, args ...string) task {
	e.t.Helper()
	r := e.run("", append([]string{"--detach"}, opts...), args...)
	if r.code != 0 {
		e.t.Fatalf("ctr run --detach: %v", r)
	}
	tk := e.task()
	if tk.status != "RUNNING" || tk.pid <= 0 {
		e.t.Fatalf("after ctr run --detach: task %+v, want RUNNING with a pid", tk)
	}
	return tk
}

// runCounter runs the counter detached (runDetached) and waits until it
// counts: its traps are set then. The container's init is its pid
// namespace's: until it has a handler, the kernel drops a SIGTERM to it.
func (e *ctrEnv) runCounter(opts []string) task {
	e.t.Helper()
	tk := e.runDetached(opts, "sh", "-c", counter)
	if !waitFor(5*time.Second, func() bool { return readInRoot(tk.pid, "/tmp/count") != "" }) {
		e.t.Fatalf("the counter (pid %d) does not count", tk.pid)
	}
	return tk
}

// deleteTask deletes the stopped task and the container, and checks that
// ctr gave the exit code want, that containerd no longer lists them, and
// that the runtime's state and the container's cgroups are gone.
func (e *ctrEnv) deleteTask(want int) {
	e.t.Helper()
	// ctr tasks delete warns about a task that exited with a status
	// other than 0, and names it.
	r := e.ctr("tasks", "delete", e.id)
	warned := regexp.MustCompile(`exit with non-zero exit code (\d+)`).FindStringSubmatch(r.stderr)
	switch {
	case r.code != 0:
		e.t.Errorf("ctr tasks delete: %v", r)
	case want == 0 && warned != nil:
		e.t.Errorf("ctr tasks delete: %v; want exit status 0, no warning", r)
	case want != 0 && (warned == nil || warned[1] != strconv.Itoa(want)):
		e.t.Errorf("ctr tasks delete: %v; want a warning about exit code %d", r, want)
	}
	e.mustCtr("containers", "delete", e.id)
	if out := e.mustCtr("containers", "ls", "--quiet"); hasLine(out, e.id) {
		e.t.Errorf("container %s still listed after delete: %q", e.id, out)
	}
	e.checkGone()
}

// checkGone checks that the runtime no longer knows the container and that
// its cgroup is gone from every hierarchy.
func (e *ctrEnv) checkGone() {
	e.t.Helper()
	r := run(e.t, command{args: []string{runtimeBin, "--root", filepath.Join(e.c.runtimeRoot, ctrNamespace), "state", e.id}})
	if r.code == 0 || !strings.Contains(r.output(), "does not exist") {
		e.t.Errorf("runtime state of a deleted container: %v; want an error saying it does not exist", r)
	}
	for _, ctl := range []string{"memory", "pids", "freezer", "cpu", "unified", ""} {
		dir := cgroupDir(ctl, e.cgroup)
		if _, err := os.Stat(filepath.Join(dir, "cgroup.procs")); err == nil {
			e.t.Errorf("cgroup %s still there after delete", dir)
		}
	}
}

// inCgroup checks that pid is in the test's cgroup (in the v1 pids or memory
// hierarchy, or cgroup2).
func (e *ctrEnv) inCgroup(pid int) {
	e.t.Helper()
	checkCgroup(e.t, pid, e.cgroup)
}

// execPid waits for `ctr tasks ps` to list exec id, and returns its pid (0
// if it is not listed within 5s). Its INFO column names it:
// &ProcessDetails{ExecID:<id>,…} (1.6), exec_id:"<id>" (2.x).
func (e *ctrEnv) execPid(id string) int {
	e.t.Helper()
	q := regexp.QuoteMeta(id)
	info := regexp.MustCompile(`ExecID:` + q + `,|^exec_id:"` + q + `"$`)
	pid := 0
	waitFor(5*time.Second, func() bool {
		for _, l := range strings.Split(e.mustCtr("tasks", "ps", e.id), "\n") {
			if f := strings.Fields(l); len(f) == 2 && info.MatchString(f[1]) {
				pid, _ = strconv.Atoi(f[0])
			}
		}
		return pid > 0
	})
	return pid
}

// readInRoot reads a file in the container's root through /proc/<pid>/root.
func readInRoot(pid int, path string) string {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/root%s", pid, path))
	return strings.TrimSpace(string(b))
}

// ttyScript prints the name of the terminal on stdin and its size once it
// has one: ctr sets the size of the container's terminal to its own only
// after the task has started (until then it is 0x0).
const ttyScript = `tty; i=0; until s=$(stty size 2>/dev/null); [ -n "$s" ] && [ "$s" != "0 0" ]; do i=$((i+1)); [ $i -gt 100 ] && break; sleep 0.05; done; echo "size $s"`

// counter is a container command that counts in /tmp/count, ten times a
// second, and exits 3 on SIGTERM and 0 on SIGUSR2.
const counter = `trap "exit 3" TERM; trap "exit 0" USR2; i=0; while :; do i=$((i+1)); echo $i > /tmp/count; sleep 0.1 & wait; done`

func TestContainerd(t *testing.T) {
	testutil.NoLeaks(t)
	testutil.RequireRoot(t)
	hostRunUntouched(t)
	busybox := buildImage(t, image{name: busyboxRef, cmd: []string{"sh"}})
	forEachContainerd(t, func(t *testing.T, v *containerdVersion) { testContainerd(t, v, busybox) })
}

// testContainerd is TestContainerd with containerd v, whose daemon all the
// subtests share; busybox is the image's tarball.
func testContainerd(t *testing.T, v *containerdVersion, busybox string) {
	start := time.Now()
	c := startContainerdVersion(t, v, nil)
	c.importImage(t, ctrNamespace, busybox, busyboxRef)
	t.Logf("%s up with the image in %v; runtime %s", v.name, time.Since(start).Round(time.Millisecond), runtimeBin)

	t.Run("RunAttached", func(t *testing.T) {
		e := c.newCtrEnv(t)
		r := e.run("", []string{"--rm"}, "sh", "-c", `echo "hello from pid $$"; echo "to stderr" >&2`)
		if r.code != 0 || r.stdout != "hello from pid 1\n" || r.stderr != "to stderr\n" {
			t.Errorf("ctr run --rm: %v; want exit 0, the output on stdout and stderr", r)
		}
		if out := e.mustCtr("containers", "ls", "--quiet"); hasLine(out, e.id) {
			t.Errorf("container %s still listed after run --rm", e.id)
		}
		e.checkGone()
	})

	t.Run("ExitCode", func(t *testing.T) {
		e := c.newCtrEnv(t)
		if r := e.run("", []string{"--rm"}, "sh", "-c", "exit 7"); r.code != 7 {
			t.Errorf("ctr run of a process exiting 7: %v", r)
		}
		e.checkGone()
	})

	t.Run("Stdin", func(t *testing.T) {
		e := c.newCtrEnv(t)
		// sed ends when stdin does: EOF must reach the container. ctr
		// loses an EOF that comes before the task has started (it
		// closes the task's stdin from a callback set only then), so
		// stdin stays open until the task runs.
		r := run(t, command{
			args:       e.runArgs([]string{"--rm"}, "sed", "s/^/got: /"),
			stdin:      "line one\nline two\n",
			closeStdin: func() bool { return e.taskStatus() == "RUNNING" },
		})
		if r.code != 0 || r.stdout != "got: line one\ngot: line two\n" {
			t.Errorf("ctr run with stdin: %v", r)
		}
		e.checkGone()
	})

	t.Run("EnvCwd", func(t *testing.T) {
		e := c.newCtrEnv(t)
		r := e.run("", []string{"--rm", "--env", "FOO=bar", "--env", "SPACED=a b", "--cwd", "/tmp"},
			"sh", "-c", `echo "$FOO|$SPACED|$(pwd)|$PATH"`)
		if want := "bar|a b|/tmp|/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n"; r.code != 0 || r.stdout != want {
			t.Errorf("ctr run --env --cwd: %v; want stdout %q", r, want)
		}
		e.checkGone()
	})

	t.Run("Detached", func(t *testing.T) {
		e := c.newCtrEnv(t)
		tk := e.runCounter(nil)
		e.inCgroup(tk.pid)

		// exec: output and exit code.
		r := e.exec([]string{"--exec-id", "e1"}, "sh", "-c", `echo "exec in $(cat /proc/1/cmdline | tr '\0' ' ')"; exit 5`)
		if r.code != 5 || !strings.HasPrefix(r.stdout, "exec in sh -c trap") {
			t.Errorf("ctr tasks exec: %v; want exit 5 and the container's pid 1 seen from inside", r)
		}
		// exec of a program that does not exist: the runtime's error reaches the user.
		for _, prog := range []string{"/no/such-program", "no-such-program"} {
			r := e.exec([]string{"--exec-id", "e2"}, prog)
			out := strings.ToLower(r.output())
			if r.code == 0 || !strings.Contains(out, prog) ||
				!(strings.Contains(out, "no such file or directory") || strings.Contains(out, "executable file not found")) {
				t.Errorf("ctr tasks exec %s: %v; want an error naming it and saying it is not found", prog, r)
			}
		}

		// ps: init and a detached exec, each with its pid.
		e.mustExec([]string{"--detach", "--exec-id", "sleeper"}, "sleep", "1000")
		sleeper := e.execPid("sleeper")
		out := e.mustCtr("tasks", "ps", e.id)
		if !regexp.MustCompile(`(?m)^` + strconv.Itoa(tk.pid) + `\s`).MatchString(out) {
			t.Errorf("ctr tasks ps does not list init (pid %d):\n%s", tk.pid, out)
		}
		if sleeper == 0 {
			t.Errorf("ctr tasks ps does not list the exec \"sleeper\":\n%s", out)
		} else if cmd := readCmdline(sleeper); cmd != "sleep 1000" {
			t.Errorf("ctr tasks ps: exec \"sleeper\" has pid %d, whose command line is %q", sleeper, cmd)
		} else {
			e.inCgroup(sleeper)
		}

		// pause: containerd says PAUSED, the freezer says frozen, and
		// the counter stops; resume: it counts again.
		e.mustCtr("tasks", "pause", e.id)
		e.waitStatus("PAUSED")
		if !e.frozen() {
			t.Errorf("task PAUSED but its cgroup %s is not frozen", e.cgroup)
		}
		n1 := readInRoot(tk.pid, "/tmp/count")
		time.Sleep(400 * time.Millisecond)
		if n2 := readInRoot(tk.pid, "/tmp/count"); n1 == "" || n1 != n2 {
			t.Errorf("paused container kept counting: %q then %q", n1, n2)
		}
		e.mustCtr("tasks", "resume", e.id)
		e.waitStatus("RUNNING")
		if e.frozen() {
			t.Errorf("task RUNNING but its cgroup %s is frozen", e.cgroup)
		}
		if !waitFor(3*time.Second, func() bool { return readInRoot(tk.pid, "/tmp/count") != n1 }) {
			t.Errorf("resumed container does not count: still %q", n1)
		}

		// kill: SIGTERM (ctr's default) to init, which exits 3.
		e.mustCtr("tasks", "kill", e.id)
		e.waitStatus("STOPPED")
		e.deleteTask(3)
	})

	t.Run("KillAll", func(t *testing.T) {
		e := c.newCtrEnv(t)
		// Each shell says when its trap is set: /tmp/ready.<name>.
		trap := `trap 'echo $$ > /tmp/usr1.$0' USR1; touch /tmp/ready.$0; while :; do sleep 0.1 & wait; done`
		tk := e.runDetached(nil, "sh", "-c", trap, "init")
		e.mustExec([]string{"--detach", "--exec-id", "other"}, "sh", "-c", trap, "exec")
		e.mustExec([]string{"--detach", "--exec-id", "sleeper"}, "sleep", "1000")
		for _, who := range []string{"init", "exec"} {
			if !waitFor(5*time.Second, func() bool {
				_, err := os.Stat(fmt.Sprintf("/proc/%d/root/tmp/ready.%s", tk.pid, who))
				return err == nil
			}) {
				t.Fatalf("the %s shell did not start", who)
			}
		}

		// kill --all with a signal the processes handle: each one gets it.
		e.mustCtr("tasks", "kill", "--all", "--signal", "SIGUSR1", e.id)
		for _, who := range []string{"init", "exec"} {
			if !waitFor(5*time.Second, func() bool { return readInRoot(tk.pid, "/tmp/usr1."+who) != "" }) {
				t.Errorf("kill --all SIGUSR1 did not reach the %s process", who)
			}
		}
		if st := e.task().status; st != "RUNNING" {
			t.Errorf("after kill --all SIGUSR1: task %s, want RUNNING", st)
		}
		pids := e.cgroupProcs()
		if len(pids) < 3 {
			t.Errorf("cgroup %s has processes %v, want at least init and two execs", e.cgroup, pids)
		}

		// kill --all SIGKILL: every process goes, exec'd ones too.
		e.mustCtr("tasks", "kill", "--all", "--signal", "SIGKILL", e.id)
		e.waitStatus("STOPPED")
		if !waitFor(5*time.Second, func() bool { return len(e.cgroupProcs()) == 0 }) {
			t.Errorf("after kill --all SIGKILL: processes %v still in cgroup %s", e.cgroupProcs(), e.cgroup)
		}
		for _, pid := range pids {
			if readCmdline(pid) != "" {
				t.Errorf("after kill --all SIGKILL: pid %d (%s) still there", pid, readCmdline(pid))
			}
		}
		e.deleteTask(128 + 9)
	})

	t.Run("DeleteForce", func(t *testing.T) {
		e := c.newCtrEnv(t)
		tk := e.runDetached(nil, "sleep", "1000")
		// containerd refuses to delete a running task; --force kills it.
		if r := e.ctr("tasks", "delete", e.id); r.code == 0 {
			t.Errorf("ctr tasks delete of a running task: %v; want an error", r)
		}
		e.mustCtr("tasks", "delete", "--force", e.id)
		if readCmdline(tk.pid) != "" {
			t.Errorf("init (pid %d) still running after tasks delete --force", tk.pid)
		}
		e.mustCtr("containers", "delete", e.id)
		e.checkGone()
	})

	t.Run("TTY", func(t *testing.T) {
		e := c.newCtrEnv(t)
		out, code := runTTY(t, 30, 100, "typed\r", e.runArgs([]string{"--rm", "--tty"},
			"sh", "-c", ttyScript+`; read line; echo "got:$line"; exit 4`)...)
		if code != 4 {
			t.Errorf("ctr run --tty: exit %d, want 4", code)
		}
		for _, want := range []string{`/dev/pts/\d+\r*\n`, `size 30 100\r*\n`, `got:typed\r*\n`} {
			if !regexp.MustCompile(want).MatchString(out) {
				t.Errorf("ctr run --tty: terminal shows %q, want a match for %q", out, want)
			}
		}
		e.checkGone()
	})

	t.Run("ExecTTY", func(t *testing.T) {
		e := c.newCtrEnv(t)
		e.runDetached(nil, "sleep", "1000")
		out, code := runTTY(t, 25, 90, "", e.execArgs([]string{"--tty", "--exec-id", "tty1"},
			"sh", "-c", ttyScript+`; [ -t 0 ] && [ -t 1 ] && [ -t 2 ] && echo "stdio is a tty"; exit 6`)...)
		if code != 6 {
			t.Errorf("ctr tasks exec --tty: exit %d, want 6", code)
		}
		for _, want := range []string{`/dev/pts/\d+\r*\n`, `size 25 90\r*\n`, `stdio is a tty\r*\n`} {
			if !regexp.MustCompile(want).MatchString(out) {
				t.Errorf("ctr tasks exec --tty: terminal shows %q, want a match for %q", out, want)
			}
		}
		e.mustCtr("tasks", "kill", "--signal", "SIGKILL", e.id)
		e.waitStatus("STOPPED")
		e.deleteTask(128 + 9)
	})

	t.Run("MemoryLimitMetrics", func(t *testing.T) {
		e := c.newCtrEnv(t)
		const limit = 64 << 20
		tk := e.runCounter([]string{"--memory-limit", strconv.Itoa(limit)})
		e.inCgroup(tk.pid)
		if got := e.memoryLimit(); got != strconv.Itoa(limit) {
			t.Errorf("memory limit in cgroup %s: %q, want %d", e.cgroup, got, limit)
		}
		// metrics: containerd's shim reads the container's cgroups.
		r := e.ctr("tasks", "metrics", e.id)
		if r.code != 0 {
			t.Errorf("ctr tasks metrics: %v", r)
		} else {
			m := metricsTable(r.stdout)
			if m["memory.limit_in_bytes"] != strconv.Itoa(limit) && m["memory.limit"] != strconv.Itoa(limit) {
				t.Errorf("ctr tasks metrics: memory limit %q, want %d:\n%s", m["memory.limit_in_bytes"], limit, r.stdout)
			}
			if n, err := strconv.Atoi(m["pids.current"]); err != nil || n < 1 {
				t.Errorf("ctr tasks metrics: pids.current %q, want at least 1:\n%s", m["pids.current"], r.stdout)
			}
			usage := m["memory.usage_in_bytes"] + m["memory.usage"]
			if n, err := strconv.Atoi(usage); err != nil || n <= 0 {
				t.Errorf("ctr tasks metrics: memory usage %q, want > 0:\n%s", usage, r.stdout)
			}
		}
		e.mustCtr("tasks", "kill", "--signal", "SIGUSR2", e.id) // the counter exits 0
		e.waitStatus("STOPPED")
		e.deleteTask(0)
	})

	t.Run("ReadOnly", func(t *testing.T) {
		e := c.newCtrEnv(t)
		data := t.TempDir()
		if err := os.WriteFile(filepath.Join(data, "file"), []byte("from the host\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		r := e.run("", []string{"--rm", "--read-only", "--mount", "type=bind,src=" + data + ",dst=/data,options=rbind:ro"},
			"sh", "-c", `cat /data/file
touch /new 2>/dev/null && echo "rootfs writable"
touch /data/new 2>/dev/null && echo "bind writable"
touch /tmp/new 2>/dev/null && echo "tmp writable"
grep -E " / | /data " /proc/self/mounts | cut -d" " -f2,4 | cut -d, -f1`)
		// /tmp is part of the read-only rootfs: ctr mounts no tmpfs there.
		if want := "from the host\n/ ro\n/data ro\n"; r.code != 0 || r.stdout != want {
			t.Errorf("ctr run --read-only with a ro bind mount: %v; want stdout %q", r, want)
		}
		if ents, _ := os.ReadDir(data); len(ents) != 1 {
			t.Errorf("the container wrote into the read-only bind mount: %v", ents)
		}
	})
}

// frozen reports whether the container's cgroup is frozen: the v1 freezer or
// cgroup2's cgroup.freeze, whichever the runtime uses.
func (e *ctrEnv) frozen() bool {
	e.t.Helper()
	if s, err := cgroupFile(e.t, "freezer", e.cgroup, "freezer.state"); err == nil && s == "FROZEN" {
		return true
	}
	for _, ctl := range []string{"unified", ""} {
		if s, err := cgroupFile(e.t, ctl, e.cgroup, "cgroup.freeze"); err == nil && s == "1" {
			return true
		}
	}
	return false
}

// memoryLimit reads the container's memory limit: memory.limit_in_bytes in
// the v1 memory hierarchy, or memory.max on a pure cgroup2 host.
func (e *ctrEnv) memoryLimit() string {
	e.t.Helper()
	if _, err := os.Stat("/sys/fs/cgroup/memory"); err == nil {
		s, err := cgroupFile(e.t, "memory", e.cgroup, "memory.limit_in_bytes")
		if err != nil {
			e.t.Errorf("memory limit: %v", err)
		}
		return s
	}
	s, err := cgroupFile(e.t, "", e.cgroup, "memory.max")
	if err != nil {
		e.t.Errorf("memory limit: %v", err)
	}
	return s
}

// cgroupProcs lists the processes in the container's cgroup (v1 pids
// hierarchy, or cgroup2).
func (e *ctrEnv) cgroupProcs() []int {
	e.t.Helper()
	for _, ctl := range []string{"pids", ""} {
		s, err := cgroupFile(e.t, ctl, e.cgroup, "cgroup.procs")
		if err != nil {
			continue
		}
		var pids []int
		for _, f := range strings.Fields(s) {
			if n, err := strconv.Atoi(f); err == nil {
				pids = append(pids, n)
			}
		}
		return pids
	}
	return nil
}

func readCmdline(pid int) string {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	return strings.TrimSpace(strings.ReplaceAll(string(b), "\x00", " "))
}

// metricsTable parses the METRIC VALUE table of `ctr tasks metrics`.
func metricsTable(out string) map[string]string {
	m := map[string]string{}
	for _, l := range strings.Split(out, "\n") {
		if f := strings.Fields(l); len(f) == 2 {
			m[f[0]] = f[1]
		}
	}
	return m
}

// hostRunUntouched checks, after the test, that containerd's default
// places on the host that did not exist before still do not: the test's
// containerd, shims and clients use their own.
func hostRunUntouched(t *testing.T) {
	paths := []string{"/run/containerd", "/var/lib/containerd", "/opt/containerd", "/var/log/pods"}
	existed := map[string]bool{}
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

// Kubernetes: containerd's CRI plugin, driven by crictl.

const (
	// criHandler is the runtime handler: a RuntimeClass's handler, crictl
	// runp --runtime.
	criHandler = "containerfd"
	// pauseRef is the pod sandbox image: busybox sleeping forever.
	pauseRef = "docker.io/containerfd/pause:test"
	// crictlVersion is built from the Go module proxy.
	crictlVersion = clienttools.CrictlVersion
	// criNamespace is the containerd namespace of the CRI plugin.
	criNamespace = "k8s.io"
)

// criRuntimeEntry is the config.toml entry of containerd 1.6's CRI plugin
// (config version 2) for the runtime handler that runs containers with the
// runtime at binary, keeping its state under root (the shim adds /k8s.io).
// docs/clients.md shows it with containerfd's installed paths;
// TestClientsDocConfigs checks that it is this one.
func criRuntimeEntry(binary, root string) string {
	return fmt.Sprintf(`[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.%s]
  runtime_type = "io.containerd.runc.v2"
  [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.%[1]s.options]
    BinaryName = %[2]q
    Root = %[3]q
    SystemdCgroup = false
`, criHandler, binary, root)
}

// criRuntimeEntry2x is criRuntimeEntry for containerd 2.x (config version
// 3): the same entry, with the same options, in the plugin that holds the
// runtimes now, io.containerd.cri.v1.runtime.
func criRuntimeEntry2x(binary, root string) string {
	return fmt.Sprintf(`[plugins."io.containerd.cri.v1.runtime".containerd.runtimes.%s]
  runtime_type = "io.containerd.runc.v2"
  [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.%[1]s.options]
    BinaryName = %[2]q
    Root = %[3]q
    SystemdCgroup = false
`, criHandler, binary, root)
}

// criRuntimeEntry is the version's runtime handler entry: criRuntimeEntry
// or criRuntimeEntry2x.
func (v *containerdVersion) criRuntimeEntry(binary, root string) string {
	if v.v2 {
		return criRuntimeEntry2x(binary, root)
	}
	return criRuntimeEntry(binary, root)
}

// runtimeClass is the Kubernetes RuntimeClass that selects the handler.
const runtimeClass = `apiVersion: node.k8s.io/v1
kind: RuntimeClass
metadata:
  name: containerfd
handler: containerfd
`

// criConfig is the CRI section of the daemon's config.toml, for its
// version, with the handler that runs runtimeBin.
func (c *containerd) criConfig() string {
	return criSection(c.version, c.dir, c.version.criRuntimeEntry(runtimeBin, c.runtimeRoot))
}

// criSection is the CRI plugin's section of version v's config.toml:
// runtimes (entries such as criRuntimeEntry's, for v), criHandler the
// default, our pause image, no CNI (the pods use the host's network; the
// CNI dirs are under dir) and restrict_oom_score_adj (CAP_SYS_RESOURCE is
// not in this machine's bounding set, so the pause container's
// oom_score_adj of -998 would fail).
func criSection(v *containerdVersion, dir, runtimes string) string {
	cniBin, cniConf := filepath.Join(dir, "cni", "bin"), filepath.Join(dir, "cni", "conf")
	if !v.v2 {
		return fmt.Sprintf(`  [plugins."io.containerd.grpc.v1.cri"]
    sandbox_image = %q
    restrict_oom_score_adj = true
    stream_server_address = "127.0.0.1"
    stream_server_port = "0"
    [plugins."io.containerd.grpc.v1.cri".containerd]
      snapshotter = "overlayfs"
      default_runtime_name = %q
%s    [plugins."io.containerd.grpc.v1.cri".cni]
      bin_dir = %q
      conf_dir = %q
`, pauseRef, criHandler, indentLines(runtimes, "      "), cniBin, cniConf)
	}
	// 2.x: images (the pause image, the snapshotter), runtime (the
	// runtimes, CNI, the OOM score) and the gRPC service (streaming).
	return fmt.Sprintf(`  [plugins."io.containerd.cri.v1.images"]
    snapshotter = "overlayfs"
    [plugins."io.containerd.cri.v1.images".pinned_images]
      sandbox = %q
  [plugins."io.containerd.cri.v1.runtime"]
    restrict_oom_score_adj = true
    [plugins."io.containerd.cri.v1.runtime".containerd]
      default_runtime_name = %q
%s    [plugins."io.containerd.cri.v1.runtime".cni]
      bin_dirs = [%q]
      conf_dir = %q
  [plugins."io.containerd.grpc.v1.cri"]
    stream_server_address = "127.0.0.1"
    stream_server_port = "0"
`, pauseRef, criHandler, indentLines(runtimes, "      "), cniBin, cniConf)
}

func indentLines(s, prefix string) string {
	lines := strings.SplitAfter(s, "\n")
	for i, l := range lines {
		if l != "" {
			lines[i] = prefix + l
		}
	}
	return strings.Join(lines, "")
}

// crictl returns a crictl built from the Go module proxy (cached in the
// user's cache directory by clienttools.Crictl, so later runs do not build
// it again), or $CFD_CRICTL.
func crictl(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("CFD_CRICTL"); p != "" {
		return p
	}
	requireTools(t, "go")
	bin, err := clienttools.Crictl(t.Logf)
	if err != nil {
		t.Fatalf("%v (set CFD_CRICTL to a crictl binary to use instead)", err)
	}
	return bin
}

// containerd 2.x, built from the Go module proxy by clienttools.Containerd2.
const (
	containerd2Version = clienttools.Containerd2Version
	containerd2Name    = "containerd-2.4" // forEachContainerd's subtest
	// containerd2Env names a directory holding containerd, ctr and
	// containerd-shim-runc-v2 of 2.x to use instead of building them.
	containerd2Env = "CFD_CONTAINERD2"
)

// containerd2Commands are what a containerd 2.x directory holds.
var containerd2Commands = clienttools.Containerd2Commands

// containerd2 returns containerd 2.x: the commands in $CFD_CONTAINERD2, or
// built from the Go module proxy, static, once, into the user's cache
// directory (later runs reuse them). A failed build fails the test: the
// proxy is reachable where the tests run.
func containerd2(t *testing.T) *containerdVersion {
	t.Helper()
	dir := os.Getenv(containerd2Env)
	if dir == "" {
		dir = buildContainerd2(t)
	}
	for _, cmd := range containerd2Commands {
		if _, err := os.Stat(filepath.Join(dir, cmd)); err != nil {
			t.Fatalf("containerd %s: %v (%s names a directory with %s)", containerd2Version, err, containerd2Env, strings.Join(containerd2Commands, ", "))
		}
	}
	return &containerdVersion{name: containerd2Name, dir: dir, v2: true}
}

// buildContainerd2 builds containerd2Commands into
// <cache>/containerfd-test/containerd-<version>, unless they are there.
func buildContainerd2(t *testing.T) string {
	t.Helper()
	requireTools(t, "go")
	dir, err := clienttools.Containerd2(t.Logf)
	if err != nil {
		t.Fatalf("%v; the build's output is above (%s names a directory of prebuilt %s to use instead)",
			err, containerd2Env, strings.Join(containerd2Commands, ", "))
	}
	return dir
}

// criEnv is the CRI test's daemon and crictl.
type criEnv struct {
	t      *testing.T
	c      *containerd
	crictl []string // command line up to the subcommand
	dir    string   // pod and container configs, logs
}

// newCRIEnv writes crictl's config for containerd c into dir, where the
// test's pod and container configs and logs go too.
func newCRIEnv(t *testing.T, c *containerd, crictlBin, dir string) *criEnv {
	t.Helper()
	cfg := filepath.Join(dir, "crictl.yaml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf("runtime-endpoint: unix://%s\nimage-endpoint: unix://%[1]s\ntimeout: 60\n", c.sock)), 0o644); err != nil {
		t.Fatal(err)
	}
	return &criEnv{t: t, c: c, dir: dir, crictl: []string{crictlBin, "--config", cfg}}
}

// runPod runs a pod sandbox called name with the handler criHandler, on the
// host's network, in a cgroup parent of the test's own, and removes it at
// the test's end if the test did not. It returns the pod's id, the path of
// its config (crictl create wants it) and its cgroup parent.
func (e *criEnv) runPod(name string) (id, config, cgroup string) {
	t := e.t
	t.Helper()
	cgroup = filepath.Dir(testutil.CgroupPath(t)) // "/cfdtest-<random>": testutil checks below it
	config = e.writeJSON("pod.json", map[string]any{
		"metadata":      map[string]any{"name": name, "namespace": "default", "uid": testutil.ID(t), "attempt": 0},
		"log_directory": filepath.Join(e.dir, "logs"),
		"linux": map[string]any{
			"cgroup_parent": cgroup,
			// network NODE: no CNI needed; pid CONTAINER, ipc POD.
			"security_context": map[string]any{"namespace_options": map[string]any{"network": 2, "pid": 1, "ipc": 0}},
		},
	})
	r := e.run("runp", "--runtime", criHandler, config)
	if r.code != 0 {
		t.Fatalf("crictl runp: %v\ncontainerd's log:\n%s", r, e.c.d.tail(30))
	}
	id = strings.TrimSpace(r.stdout)
	t.Cleanup(func() {
		if strings.Contains(run(t, command{args: append(append([]string{}, e.crictl...), "pods", "--quiet")}).stdout, id) {
			t.Logf("removing what the test left of pod %s", id)
			e.run("stopp", id)
			e.run("rmp", "--force", id)
		}
	})
	return id, config, cgroup
}

// create creates a container in the pod with `crictl create`, and removes
// it at the end of t if t did not.
func (e *criEnv) create(t *testing.T, podID, config, podConfig string) string {
	t.Helper()
	r := e.run("create", podID, config, podConfig)
	if r.code != 0 {
		t.Fatalf("crictl create: %v", r)
	}
	id := strings.TrimSpace(r.stdout)
	t.Cleanup(func() {
		if strings.Contains(run(t, command{args: append(append([]string{}, e.crictl...), "ps", "--all", "--quiet")}).stdout, id) {
			t.Logf("removing what the test left of container %s", id)
			e.run("rm", "--force", id)
		}
	})
	return id
}

func (e *criEnv) run(args ...string) result {
	e.t.Helper()
	return run(e.t, command{args: append(append([]string{}, e.crictl...), args...)})
}

func (e *criEnv) must(args ...string) string {
	e.t.Helper()
	return mustRun(e.t, command{args: append(append([]string{}, e.crictl...), args...)}).stdout
}

// inspect runs crictl inspect or inspectp and decodes its JSON.
func (e *criEnv) inspect(cmd, id string) map[string]any {
	e.t.Helper()
	var v map[string]any
	out := e.must(cmd, "--output", "json", id)
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		e.t.Fatalf("crictl %s: %v", cmd, err)
	}
	return v
}

// field walks a decoded JSON object: field(v, "status", "state").
func field(v any, path ...string) any {
	for _, p := range path {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[p]
	}
	return v
}

// runtimeState is the runtime's own `state` of a container the CRI plugin
// made: "running", …, or "" if the runtime does not know it.
func (e *criEnv) runtimeState(id string) string {
	e.t.Helper()
	r := run(e.t, command{args: []string{runtimeBin, "--root", filepath.Join(e.c.runtimeRoot, criNamespace), "state", id}})
	if r.code != 0 {
		return ""
	}
	var st struct{ Status string }
	json.Unmarshal([]byte(r.stdout), &st)
	return st.Status
}

func (e *criEnv) writeJSON(name string, v any) string {
	e.t.Helper()
	p := filepath.Join(e.dir, name)
	if err := os.WriteFile(p, mustJSON(e.t, v), 0o644); err != nil {
		e.t.Fatal(err)
	}
	return p
}

func TestCRI(t *testing.T) {
	testutil.NoLeaks(t)
	testutil.RequireRoot(t)
	hostRunUntouched(t)
	crictlBin := crictl(t)
	busybox := buildImage(t, image{name: busyboxRef, cmd: []string{"sh"}})
	pause := buildImage(t, image{name: pauseRef, entrypoint: []string{"sleep", "2147483647"}})
	forEachContainerd(t, func(t *testing.T, v *containerdVersion) { testCRI(t, v, crictlBin, busybox, pause) })
}

// testCRI is TestCRI with containerd v: one daemon, one pod, its containers;
// busybox and pause are the images' tarballs.
func testCRI(t *testing.T, v *containerdVersion, crictlBin, busybox, pause string) {
	start := time.Now()
	dir, err := os.MkdirTemp("", "cfdcri-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	// The CRI section names the daemon's own dirs (the runtime's Root).
	c := startContainerdVersion(t, v, (*containerd).criConfig)
	c.importImage(t, criNamespace, busybox, busyboxRef)
	c.importImage(t, criNamespace, pause, pauseRef)

	e := newCRIEnv(t, c, crictlBin, dir)
	t.Logf("%s with the CRI plugin up, images imported, in %v; runtime %s", v.name, time.Since(start).Round(time.Millisecond), runtimeBin)

	// The CRI plugin sees both images.
	images := e.must("images", "--output", "json")
	for _, ref := range []string{busyboxRef, pauseRef} {
		if !strings.Contains(images, `"`+ref+`"`) {
			t.Errorf("crictl images does not list %s", ref)
		}
	}

	podID, pod, podCgroup := e.runPod("cfdpod")
	ip := e.inspect("inspectp", podID)
	if st := field(ip, "status", "state"); st != "SANDBOX_READY" {
		t.Errorf("pod state %v, want SANDBOX_READY", st)
	}
	// The CRI API's field (containerd 1.6 also has it in its verbose
	// info, 2.x no longer).
	if h := field(ip, "status", "runtimeHandler"); h != criHandler {
		t.Errorf("pod runtime handler %v, want %s", h, criHandler)
	}
	if st := e.runtimeState(podID); st != "running" {
		t.Errorf("the runtime's state of the pod sandbox: %q, want running (is it the runtime that ran it?)", st)
	}
	if pid, ok := field(ip, "info", "pid").(float64); !ok || pid <= 0 {
		t.Errorf("pod sandbox pid: %v", field(ip, "info", "pid"))
	} else if cmd := readCmdline(int(pid)); cmd != "sleep 2147483647" {
		t.Errorf("pod sandbox pid %v runs %q, want our pause image's sleep", pid, cmd)
	} else {
		checkCgroup(t, int(pid), podCgroup+"/"+podID)
	}

	// A container with a pid namespace of its own (kubelet's default),
	// and one in the pod's (shareProcessNamespace: its init is not pid 1,
	// and the shim kills what init leaves with `kill --all` once init is
	// gone).
	t.Run("Container", func(t *testing.T) { e.container(t, podID, pod, podCgroup, 1) })
	t.Run("SharedPidNamespace", func(t *testing.T) { e.container(t, podID, pod, podCgroup, 0) })

	// stopp and rmp.
	e.must("stopp", podID)
	if st := field(e.inspect("inspectp", podID), "status", "state"); st != "SANDBOX_NOTREADY" {
		t.Errorf("pod state after stopp: %v, want SANDBOX_NOTREADY", st)
	}
	e.must("rmp", podID)
	if out := e.must("pods", "--quiet"); strings.Contains(out, podID) {
		t.Errorf("crictl pods lists the removed pod: %q", out)
	}
	if st := e.runtimeState(podID); st != "" {
		t.Errorf("the runtime still knows the removed pod sandbox: %s", st)
	}
}

// container runs the CRI container workflow in the pod: create, start,
// exec (sync and streaming, a missing program), logs, stop, rm. pidMode is
// the container's namespace_options.pid: 1 (CONTAINER) or 0 (POD).
func (e *criEnv) container(t *testing.T, podID, podConfig, podCgroup string, pidMode int) {
	name := map[int]string{0: "shared", 1: "box"}[pidMode]
	const limit = 48 << 20
	ctrCfg := e.writeJSON(name+".json", map[string]any{
		"metadata": map[string]any{"name": name},
		"image":    map[string]any{"image": busyboxRef},
		"command":  []string{"sh", "-c", `echo "started with $GREETING"; trap 'echo "got SIGTERM"; exit 0' TERM; while :; do sleep 1 & wait; done`},
		"envs":     []map[string]string{{"key": "GREETING", "value": "hello from the pod spec"}},
		"log_path": name + ".log",
		"linux": map[string]any{
			"resources":        map[string]any{"memory_limit_in_bytes": limit},
			"security_context": map[string]any{"namespace_options": map[string]any{"pid": pidMode}},
		},
	})
	ctrID := e.create(t, podID, ctrCfg, podConfig)
	if st := field(e.inspect("inspect", ctrID), "status", "state"); st != "CONTAINER_CREATED" {
		t.Errorf("container state after create: %v, want CONTAINER_CREATED", st)
	}
	e.must("start", ctrID)
	ic := e.inspect("inspect", ctrID)
	if st := field(ic, "status", "state"); st != "CONTAINER_RUNNING" {
		t.Errorf("container state after start: %v, want CONTAINER_RUNNING", st)
	}
	if st := e.runtimeState(ctrID); st != "running" {
		t.Errorf("the runtime's state of the container: %q, want running", st)
	}
	ctrCgroup := podCgroup + "/" + ctrID
	if pid, ok := field(ic, "info", "pid").(float64); ok && pid > 0 {
		checkCgroup(t, int(pid), ctrCgroup)
	} else {
		t.Errorf("container pid: %v", field(ic, "info", "pid"))
	}
	if got, err := cgroupFile(t, "memory", ctrCgroup, "memory.limit_in_bytes"); err != nil || got != strconv.Itoa(limit) {
		t.Errorf("memory limit of the container's cgroup: %q (%v), want %d", got, err, limit)
	}
	// update: the CRI plugin sends the container's new linux.resources
	// to `update --resources -`.
	t.Run("Update", func(t *testing.T) {
		const newLimit = 80 << 20
		r := e.run("update", "--memory", strconv.Itoa(newLimit), ctrID)
		if r.code != 0 {
			skipIfNoUpdate(t, r)
			t.Fatalf("crictl update --memory: %v", r)
		}
		if got, err := cgroupFile(t, "memory", ctrCgroup, "memory.limit_in_bytes"); err != nil || got != strconv.Itoa(newLimit) {
			t.Errorf("memory limit after crictl update: %q (%v), want %d", got, err, newLimit)
		}
	})

	// exec, synchronous (ExecSync) and streaming (Exec, through the CRI
	// stream server), with output and exit codes.
	pid1 := map[int]string{0: "sleep 2147483647", 1: `sh -c echo "started with`}[pidMode]
	r := e.run("exec", "--sync", ctrID, "sh", "-c", `echo "pid 1: $(cat /proc/1/cmdline | tr '\0' ' ')"; echo "$GREETING"`)
	if r.code != 0 || !strings.Contains(r.stdout, "pid 1: "+pid1) || !strings.Contains(r.stdout, "hello from the pod spec\n") {
		t.Errorf("crictl exec --sync: %v; want the environment and pid 1 %q", r, pid1)
	}
	// crictl exits 1 and names the process's exit code.
	if r = e.run("exec", ctrID, "sh", "-c", "echo streamed; exit 3"); r.code == 0 || r.stdout != "streamed\n" || !strings.Contains(r.stderr, "exit code 3") {
		t.Errorf("crictl exec (streaming): %v; want stdout \"streamed\" and an error naming exit code 3", r)
	}
	r = e.run("exec", "--sync", ctrID, "/no/such-program")
	if out := strings.ToLower(r.output()); r.code == 0 || !strings.Contains(out, "/no/such-program") || !strings.Contains(out, "no such file or directory") {
		t.Errorf("crictl exec of a missing program: %v; want an error naming it", r)
	}

	// logs: the container's stdout, through the shim into the pod's log.
	if out := e.must("logs", ctrID); !strings.Contains(out, "started with hello from the pod spec") {
		t.Errorf("crictl logs: %q", out)
	}

	// stop: SIGTERM, which the container handles at once and exits 0 (no
	// SIGKILL after the timeout).
	start := time.Now()
	e.must("stop", "--timeout", "20", ctrID)
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("crictl stop took %v: the container's exit was not seen until the timeout", d)
	}
	ic = e.inspect("inspect", ctrID)
	if st, code := field(ic, "status", "state"), field(ic, "status", "exitCode"); st != "CONTAINER_EXITED" || code != float64(0) {
		t.Errorf("container after stop: state %v, exit code %v; want CONTAINER_EXITED, 0", st, code)
	}
	if out := e.must("logs", ctrID); !strings.Contains(out, "got SIGTERM") {
		t.Errorf("crictl logs after stop: %q; want the container's answer to SIGTERM", out)
	}
	e.must("rm", ctrID)
	if out := e.must("ps", "--all", "--quiet"); strings.Contains(out, ctrID) {
		t.Errorf("crictl ps --all lists the removed container: %q", out)
	}
	if st := e.runtimeState(ctrID); st != "" {
		t.Errorf("the runtime still knows the removed container: %s", st)
	}
	if _, err := os.Stat(cgroupDir("memory", ctrCgroup)); err == nil {
		t.Errorf("cgroup %s still there after rm", ctrCgroup)
	}
}

// skipIfNoUpdate skips a step that needs the runtime's update command when
// the runtime has none (containerfd before issue 4), and says so.
func skipIfNoUpdate(t *testing.T, r result) {
	t.Helper()
	out := r.output()
	if strings.Contains(out, "No help topic for 'update'") || strings.Contains(out, "update: not supported") {
		t.Skipf("containerfd update (issue 4) is missing: the CRI plugin's `update --resources -` failed: %v", r)
	}
}

// checkCgroup checks that pid is in cgroup (v1 pids or memory hierarchy, or
// cgroup2).
func checkCgroup(t *testing.T, pid int, cgroup string) {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		t.Errorf("cgroup of pid %d: %v", pid, err)
		return
	}
	if !regexp.MustCompile(`(?m)^\d+:(pids|memory|):` + regexp.QuoteMeta(cgroup) + `$`).Match(b) {
		t.Errorf("pid %d is not in cgroup %s:\n%s", pid, cgroup, b)
	}
}

// TestClientsDocConfigs checks that clientsDoc shows the configuration
// these tests use: the config.toml runtime entries of containerd 1.x and 2.x
// and ctr's flags (with the paths of `make install`), and the RuntimeClass
// of the handler.
func TestClientsDocConfigs(t *testing.T) {
	doc := readClientsDoc(t)
	ctd := docSection(t, doc, "## containerd")
	const binary, root = "/usr/local/bin/containerfd", "/run/containerd/containerfd"
	entries := mdtext.CodeBlocks(ctd, "toml")
	for i, want := range []string{criRuntimeEntry(binary, root), criRuntimeEntry2x(binary, root)} {
		version := []string{"1.x", "2.x"}[i]
		if i >= len(entries) {
			t.Errorf("%s, containerd: no config.toml entry for containerd %s (its ```toml block %d); want\n%s", clientsDoc, version, i+1, want)
		} else if entries[i] != want {
			t.Errorf("%s, containerd: the config.toml entry for containerd %s is\n%s\nwant (as the tests use it)\n%s", clientsDoc, version, entries[i], want)
		}
	}
	if flags := "--runc-binary " + binary + " --runc-root " + root; !strings.Contains(ctd, "ctr run "+flags) {
		t.Errorf("%s, containerd: no `ctr run %s`", clientsDoc, flags)
	}
	k8s := docSection(t, doc, "## Kubernetes (CRI)")
	if got := codeBlock(t, k8s, "yaml"); got != runtimeClass {
		t.Errorf("%s, Kubernetes: the RuntimeClass is\n%s\nwant\n%s", clientsDoc, got, runtimeClass)
	}
	if !strings.Contains(runtimeClass, "\nhandler: "+criHandler+"\n") {
		t.Errorf("the RuntimeClass does not name the handler %s the tests use", criHandler)
	}
}

// clientsDoc is where users read how to configure each client for
// containerfd; the tests check that it shows what they run.
const clientsDoc = "../../docs/clients.md"

// readClientsDoc returns clientsDoc's text.
func readClientsDoc(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(clientsDoc)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// docSection returns the text under the heading line in text (clientsDoc or
// a section of it), up to the next heading of the same or a higher level.
func docSection(t *testing.T, text, heading string) string {
	t.Helper()
	sec, ok := mdtext.Section(text, heading)
	if !ok {
		t.Fatalf("%s has no %q section", clientsDoc, heading)
	}
	return sec
}

// codeBlock returns the first fenced code block of the language in text.
func codeBlock(t *testing.T, text, lang string) string {
	t.Helper()
	blocks := mdtext.CodeBlocks(text, lang)
	if len(blocks) == 0 {
		t.Fatalf("%s: no ```%s block in the section", clientsDoc, lang)
	}
	return blocks[0]
}
