package clients

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/containerfd/containerfd/internal/testutil"
	"golang.org/x/sys/unix"
)

// The shim suite: containerd's runtime type io.containerd.containerfd.v2,
// served by containerd-shim-containerfd-v2 built from this tree and found on
// the daemon's $PATH, driven by ctr (TestShim) and by crictl through the CRI
// plugin (TestShimCRI). The runtime options are those docs/clients.md shows.

const (
	shimRuntime = "io.containerd.containerfd.v2"
	shimBinary  = "containerd-shim-containerfd-v2"
)

// shimConfigFile is the runtime options' TOML file (ConfigPath) that keeps
// the containers' state under root. docs/clients.md shows it with the
// installed default; TestClientsDocShimConfigs checks that it is this one.
func shimConfigFile(root string) string {
	return fmt.Sprintf("Root = %q\nSystemdCgroup = false\n", root)
}

// shimCRIEntry is the CRI plugin's runtime handler for the shim, in
// containerd 1.x's config (version 2).
func shimCRIEntry(configPath string) string {
	return fmt.Sprintf(`[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.%s]
  runtime_type = %q
  [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.%[1]s.options]
    ConfigPath = %[3]q
`, criHandler, shimRuntime, configPath)
}

// shimCRIEntryV3 is the same handler in containerd 2.x's config (version 3).
func shimCRIEntryV3(configPath string) string {
	return fmt.Sprintf(`[plugins."io.containerd.cri.v1.runtime".containerd.runtimes.%s]
  runtime_type = %q
  [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.%[1]s.options]
    ConfigPath = %[3]q
`, criHandler, shimRuntime, configPath)
}

var (
	shimOnce sync.Once
	shimDir  string
	shimErr  error
)

// requireShim builds the shim beside the test's containerfd, once, and puts
// its directory first in $PATH for the daemons the test starts.
func requireShim(t *testing.T) {
	t.Helper()
	if os.Getenv(runtimeEnv) != "" {
		t.Skipf("the shim is containerfd's own: not tested with %s set", runtimeEnv)
	}
	shimOnce.Do(func() {
		shimDir = filepath.Dir(runtimeBin)
		// The tags of make build's SHIM_TAGS: the binary users get.
		build := exec.Command("go", "build", "-tags", "urfave_cli_no_docs,urfave_cli_no_suggest,godbus_no_tcp,containerfd_nocriu,no_grpc",
			"-o", filepath.Join(shimDir, shimBinary), "../../cmd/"+shimBinary)
		build.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := build.CombinedOutput(); err != nil {
			shimErr = fmt.Errorf("building %s: %v\n%s", shimBinary, err, out)
		}
	})
	if shimErr != nil {
		t.Fatal(shimErr)
	}
	t.Setenv("PATH", shimDir+":"+os.Getenv("PATH"))
}

// shimEnv is one ctr test against the shim, whose runtime options' file
// (ConfigPath) is config.
type shimEnv struct{ *ctrEnv }

// writeShimConfig writes the runtime options' file of containerd c.
func writeShimConfig(t *testing.T, c *containerd) string {
	t.Helper()
	p := filepath.Join(c.dir, "containerfd.toml")
	if err := os.WriteFile(p, []byte(shimConfigFile(c.runtimeRoot)), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func newShimEnv(t *testing.T, c *containerd, config string) *shimEnv {
	e := &shimEnv{}
	// After newCtrEnv's cleanup, which deletes what a failed test left.
	t.Cleanup(func() { e.noShimLeft() })
	e.ctrEnv = c.newCtrEnv(t)
	e.runtime = []string{"--runtime", shimRuntime, "--runtime-config-path", config}
	return e
}

// shims lists the shim processes serving container id (its first
// container, by whose id the shim is started) of this containerd.
func (e *shimEnv) shims() []process {
	var ps []process
	for _, p := range processesWith(e.c.sock) {
		if strings.Contains(p.cmdline, shimBinary) && strings.Contains(p.cmdline, "-id "+e.id+" ") {
			ps = append(ps, p)
		}
	}
	return ps
}

// noShimLeft checks that the container's shim is gone: it leaves once
// containerd deleted its last task.
func (e *shimEnv) noShimLeft() {
	e.t.Helper()
	if !waitFor(10*time.Second, func() bool { return len(e.shims()) == 0 }) {
		e.t.Errorf("shim still running after its container was deleted: %v", e.shims())
	}
}

func TestShim(t *testing.T) {
	testutil.NoLeaks(t)
	testutil.RequireRoot(t)
	requireShim(t)
	hostRunUntouched(t)
	busybox := buildImage(t, image{name: busyboxRef, cmd: []string{"sh"}})
	forEachContainerd(t, func(t *testing.T, v *containerdVersion) { testShim(t, v, busybox) })
}

// testShim is TestShim with containerd v, without the CRI plugin, whose
// daemon all the subtests share; busybox is the image's tarball.
func testShim(t *testing.T, v *containerdVersion, busybox string) {
	start := time.Now()
	c := startContainerdVersion(t, v, nil)
	t.Cleanup(func() { noFifoHeld(t, c.fifoDir()) })
	config := writeShimConfig(t, c)
	c.importImage(t, ctrNamespace, busybox, busyboxRef)
	t.Logf("%s up with the image in %v", v.name, time.Since(start).Round(time.Millisecond))

	t.Run("Lifecycle", func(t *testing.T) {
		e := newShimEnv(t, c, config)
		tk := e.runCounter(nil)
		e.inCgroup(tk.pid)
		if len(e.shims()) != 1 {
			t.Errorf("want one shim serving %s: %v", e.id, e.shims())
		}
		// The shim's state is containerfd's: the CLI sees the container.
		if st := runtimeStateIn(t, filepath.Join(c.runtimeRoot, ctrNamespace), e.id); st != "running" {
			t.Errorf("containerfd state of the shim's container: %q, want running", st)
		}
		e.mustCtr("tasks", "kill", e.id) // SIGTERM: the counter exits 3
		e.waitStatus("STOPPED")
		e.deleteTask(3)
	})

	// Containers that name one group share one shim, with runc's shim's
	// annotation as with ours.
	t.Run("Group", func(t *testing.T) {
		for _, key := range []string{"io.containerd.containerfd.v2.group", "io.containerd.runc.v2.group"} {
			first := newShimEnv(t, c, config)
			second := newShimEnv(t, c, config)
			opts := []string{"--annotation", key + "=g-" + first.id}
			first.runCounter(opts)
			second.runCounter(opts)
			if len(first.shims()) != 1 || len(second.shims()) != 0 {
				t.Errorf("%s: shims serving %s: %v, %s: %v; want one, serving both", key, first.id, first.shims(), second.id, second.shims())
			}
			for _, e := range []*shimEnv{second, first} {
				e.mustCtr("tasks", "kill", e.id)
				e.waitStatus("STOPPED")
				e.deleteTask(3)
			}
			first.noShimLeft()
		}
	})

	t.Run("RunRm", func(t *testing.T) {
		e := newShimEnv(t, c, config)
		r := e.run("", []string{"--rm"}, "sh", "-c", `echo "hello from pid $$"; echo "to stderr" >&2`)
		if r.code != 0 || r.stdout != "hello from pid 1\n" || r.stderr != "to stderr\n" {
			t.Errorf("ctr run --rm: %v; want exit 0, the output on stdout and stderr", r)
		}
		e.checkGone()
	})

	t.Run("ExitCodes", func(t *testing.T) {
		for _, want := range []int{0, 1, 7, 255} {
			e := newShimEnv(t, c, config)
			cmd := []string{"sh", "-c", "exit " + strconv.Itoa(want)}
			if r := e.run("", []string{"--rm"}, cmd...); r.code != want {
				t.Errorf("ctr run --rm %v: %v, want exit %d", cmd, r, want)
			}
			e.checkGone()
		}
		e := newShimEnv(t, c, config)
		start := time.Now()
		r := e.run("", []string{"--rm"}, "/no/such-program")
		if out := strings.ToLower(r.output()); r.code == 0 || !strings.Contains(out, "no such file or directory") {
			t.Errorf("ctr run of a missing program: %v; want an error saying it is not found", r)
		}
		noDrainWait(t, "ctr run of a missing program", start)
		e.ctr("containers", "delete", e.id)
		e.checkGone()
	})

	t.Run("Stdin", func(t *testing.T) {
		e := newShimEnv(t, c, config)
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

	t.Run("Exec", func(t *testing.T) {
		e := newShimEnv(t, c, config)
		tk := e.runDetached(nil, "sleep", "1000")
		r := e.exec([]string{"--exec-id", "e1"}, "sh", "-c", `echo "exec in $(cat /proc/1/cmdline | tr '\0' ' ')"; echo err >&2; exit 5`)
		if r.code != 5 || r.stdout != "exec in sleep 1000 \n" || r.stderr != "err\n" {
			t.Errorf("ctr tasks exec: %v; want exit 5, the container's pid 1 seen from inside", r)
		}
		start := time.Now()
		r = e.exec([]string{"--exec-id", "e2"}, "/no/such-program")
		if out := strings.ToLower(r.output()); r.code == 0 || !strings.Contains(out, "no such file or directory") {
			t.Errorf("ctr tasks exec of a missing program: %v; want an error saying it is not found", r)
		}
		noDrainWait(t, "ctr tasks exec of a missing program", start)
		e.mustExec([]string{"--detach", "--exec-id", "sleeper"}, "sleep", "1000")
		sleeper := e.execPid("sleeper")
		if cmd := readCmdline(sleeper); cmd != "sleep 1000" {
			t.Errorf("ctr tasks ps: exec \"sleeper\" has pid %d, whose command line is %q", sleeper, cmd)
		} else {
			e.inCgroup(sleeper)
		}
		// kill one process: the exec, not init.
		e.mustCtr("tasks", "kill", "--exec-id", "sleeper", "--signal", "SIGKILL", e.id)
		if !waitFor(5*time.Second, func() bool { return readCmdline(sleeper) == "" }) {
			t.Errorf("exec sleeper (pid %d) still there after kill --exec-id", sleeper)
		}
		if st := e.task().status; st != "RUNNING" {
			t.Errorf("after killing an exec: task %s, want RUNNING", st)
		}
		e.mustCtr("tasks", "kill", "--signal", "SIGKILL", e.id)
		e.waitStatus("STOPPED")
		if readCmdline(tk.pid) != "" {
			t.Errorf("init (pid %d) still there", tk.pid)
		}
		e.deleteTask(128 + 9)
	})

	t.Run("TTY", func(t *testing.T) {
		e := newShimEnv(t, c, config)
		out, code := runTTY(t, 30, 100, "typed\r", e.runArgs([]string{"--rm", "--tty"},
			"sh", "-c", ttyScript+`; read line; echo "got:$line"; exit 4`)...)
		if code != 4 {
			t.Errorf("ctr run --tty: exit %d, want 4", code)
		}
		for _, want := range []string{"/dev/pts/", "size 30 100", "got:typed"} {
			if !strings.Contains(out, want) {
				t.Errorf("ctr run --tty: terminal shows %q, want %q in it", out, want)
			}
		}
		e.checkGone()
	})

	t.Run("ExecTTY", func(t *testing.T) {
		e := newShimEnv(t, c, config)
		e.runDetached(nil, "sleep", "1000")
		out, code := runTTY(t, 25, 90, "", e.execArgs([]string{"--tty", "--exec-id", "tty1"},
			"sh", "-c", ttyScript+`; [ -t 0 ] && [ -t 1 ] && [ -t 2 ] && echo "stdio is a tty"; exit 6`)...)
		if code != 6 {
			t.Errorf("ctr tasks exec --tty: exit %d, want 6", code)
		}
		for _, want := range []string{"/dev/pts/", "size 25 90", "stdio is a tty"} {
			if !strings.Contains(out, want) {
				t.Errorf("ctr tasks exec --tty: terminal shows %q, want %q in it", out, want)
			}
		}
		e.mustCtr("tasks", "kill", "--signal", "SIGKILL", e.id)
		e.waitStatus("STOPPED")
		e.deleteTask(128 + 9)
	})

	t.Run("KillAll", func(t *testing.T) {
		e := newShimEnv(t, c, config)
		trap := `trap 'echo $$ > /tmp/usr1.$0' USR1; touch /tmp/ready.$0; while :; do sleep 0.1 & wait; done`
		tk := e.runDetached(nil, "sh", "-c", trap, "init")
		e.mustExec([]string{"--detach", "--exec-id", "other"}, "sh", "-c", trap, "exec")
		for _, who := range []string{"init", "exec"} {
			if !waitFor(5*time.Second, func() bool {
				return readInRoot(tk.pid, "/tmp/ready."+who) != "" || fileExists(tk.pid, "/tmp/ready."+who)
			}) {
				t.Fatalf("the %s shell did not start", who)
			}
		}
		e.mustCtr("tasks", "kill", "--all", "--signal", "SIGUSR1", e.id)
		for _, who := range []string{"init", "exec"} {
			if !waitFor(5*time.Second, func() bool { return readInRoot(tk.pid, "/tmp/usr1."+who) != "" }) {
				t.Errorf("kill --all SIGUSR1 did not reach the %s process", who)
			}
		}
		pids := e.cgroupProcs()
		e.mustCtr("tasks", "kill", "--all", "--signal", "SIGKILL", e.id)
		e.waitStatus("STOPPED")
		for _, pid := range pids {
			if readCmdline(pid) != "" {
				t.Errorf("after kill --all SIGKILL: pid %d (%s) still there", pid, readCmdline(pid))
			}
		}
		e.deleteTask(128 + 9)
	})

	t.Run("PauseResume", func(t *testing.T) {
		e := newShimEnv(t, c, config)
		tk := e.runCounter(nil)
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
		if !waitFor(3*time.Second, func() bool { return readInRoot(tk.pid, "/tmp/count") != n1 }) {
			t.Errorf("resumed container does not count: still %q", n1)
		}
		e.mustCtr("tasks", "kill", "--signal", "SIGUSR2", e.id) // exits 0
		e.waitStatus("STOPPED")
		e.deleteTask(0)
	})

	// ctr has no `tasks update` (neither 1.6's nor 2.4's): TestShimCRI
	// updates through crictl.
	t.Run("Metrics", func(t *testing.T) {
		e := newShimEnv(t, c, config)
		const limit = 64 << 20
		e.runCounter([]string{"--memory-limit", strconv.Itoa(limit)})
		if got := e.memoryLimit(); got != strconv.Itoa(limit) {
			t.Errorf("memory limit in cgroup %s: %q, want %d", e.cgroup, got, limit)
		}
		m := metricsTable(e.mustCtr("tasks", "metrics", e.id))
		if m["memory.limit_in_bytes"] != strconv.Itoa(limit) && m["memory.limit"] != strconv.Itoa(limit) {
			t.Errorf("ctr tasks metrics: memory limit %q, want %d: %v", m["memory.limit_in_bytes"], limit, m)
		}
		if n, err := strconv.Atoi(m["pids.current"]); err != nil || n < 1 {
			t.Errorf("ctr tasks metrics: pids.current %q, want at least 1: %v", m["pids.current"], m)
		}
		if n, err := strconv.Atoi(m["memory.usage_in_bytes"] + m["memory.usage"]); err != nil || n <= 0 {
			t.Errorf("ctr tasks metrics: memory usage, want > 0: %v", m)
		}
		e.mustCtr("tasks", "kill", "--signal", "SIGUSR2", e.id)
		e.waitStatus("STOPPED")
		e.deleteTask(0)
	})

	t.Run("Logs", func(t *testing.T) {
		e := newShimEnv(t, c, config)
		// ctr's --log-uri file:// is the shim's file logger.
		logFile := filepath.Join(t.TempDir(), "ctr.log")
		r := e.run("", []string{"--rm", "--log-uri", "file://" + logFile}, "sh", "-c", "echo to-stdout; echo to-stderr >&2; exit 2")
		if r.code != 2 {
			t.Errorf("ctr run --log-uri: %v, want exit 2", r)
		}
		b, _ := os.ReadFile(logFile)
		if !strings.Contains(string(b), "to-stdout\n") || !strings.Contains(string(b), "to-stderr\n") {
			t.Errorf("log file %s holds %q, want both streams", logFile, b)
		}
		e.checkGone()
	})

	t.Run("OOM", func(t *testing.T) {
		e := newShimEnv(t, c, config)
		ev := startEvents(t, c)
		const limit = 24 << 20
		r := e.run("", []string{"--rm", "--memory-limit", strconv.Itoa(limit)},
			"sh", "-c", `a=$(head -c 200000000 /dev/zero | tr '\0' x); echo survived`)
		if r.code != 137 || strings.Contains(r.stdout, "survived") {
			t.Errorf("ctr run of a process past its memory limit: %v, want it killed (137)", r)
		}
		if !ev.waitFor("/tasks/oom", e.id) {
			t.Errorf("ctr events shows no /tasks/oom for %s:\n%s", e.id, ev.text())
		}
		// The task's events, in order (ctr run --rm may end before
		// ctr events shows the last).
		ev.waitFor("/tasks/delete", e.id)
		ev.inOrder(t, e.id, "/tasks/create", "/tasks/start", "/tasks/exit", "/tasks/delete")
		e.checkGone()
	})

	t.Run("Events", func(t *testing.T) {
		e := newShimEnv(t, c, config)
		ev := startEvents(t, c)
		e.runDetached(nil, "sleep", "1000")
		e.mustExec([]string{"--detach", "--exec-id", "x1"}, "true")
		e.mustCtr("tasks", "pause", e.id)
		e.mustCtr("tasks", "resume", e.id)
		e.mustCtr("tasks", "kill", "--signal", "SIGKILL", e.id)
		e.waitStatus("STOPPED")
		e.deleteTask(128 + 9)
		if !ev.waitFor("/tasks/delete", e.id) {
			t.Fatalf("no /tasks/delete for %s:\n%s", e.id, ev.text())
		}
		ev.inOrder(t, e.id, "/tasks/create", "/tasks/start", "/tasks/exec-added", "/tasks/exec-started",
			"/tasks/paused", "/tasks/resumed", "/tasks/exit", "/tasks/delete")
	})

	t.Run("Orphans", func(t *testing.T) {
		// In the shim's pid namespace (the test's), a process whose
		// parent exits is the shim's, the subreaper's: the shim reaps
		// it once it exits, and takes no exit of the processes it
		// waits for.
		e := newShimEnv(t, c, config)
		e.runDetached([]string{"--with-ns", fmt.Sprintf("pid:/proc/%d/ns/pid", os.Getpid())}, "sh", "-c",
			`for i in 1 2 3; do (sleep 1.5 &); done; trap "exit 3" TERM; while :; do sleep 0.1 & wait; done`)
		shims := e.shims()
		if len(shims) != 1 {
			t.Fatalf("want one shim serving %s: %v", e.id, shims)
		}
		var orphans []int
		waitFor(5*time.Second, func() bool {
			orphans = nil
			for _, pid := range testutil.Children(shims[0].pid, "") {
				if readCmdline(pid) == "sleep 1.5" {
					orphans = append(orphans, pid)
				}
			}
			return len(orphans) == 3
		})
		if len(orphans) != 3 {
			t.Fatalf("the shim's children %v: want the three orphaned sleeps among them", testutil.Children(shims[0].pid, ""))
		}
		if !waitFor(5*time.Second, func() bool {
			for _, pid := range orphans {
				if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); err == nil {
					return false
				}
			}
			return true
		}) {
			t.Errorf("orphans %v not reaped by the shim", orphans)
		}
		e.mustCtr("tasks", "kill", e.id)
		e.waitStatus("STOPPED")
		e.deleteTask(3)
	})

	t.Run("ShimKilled", func(t *testing.T) {
		e := newShimEnv(t, c, config)
		tk := e.runDetached(nil, "sleep", "1000")
		shims := e.shims()
		if len(shims) != 1 {
			t.Fatalf("want one shim serving %s: %v", e.id, shims)
		}
		unix.Kill(shims[0].pid, unix.SIGKILL)
		// Kill-on-close: the container dies with its shim; containerd
		// runs the shim's delete, which removes what is left.
		if !waitFor(10*time.Second, func() bool { return readCmdline(tk.pid) == "" }) {
			t.Errorf("init (pid %d) still running after its shim was killed", tk.pid)
		}
		if !waitFor(10*time.Second, func() bool { s := e.taskStatus(); return s == "" || s == "STOPPED" }) {
			t.Errorf("task still %s after its shim was killed", e.taskStatus())
		}
		e.ctr("tasks", "delete", e.id)
		e.mustCtr("containers", "delete", e.id)
		if !waitFor(5*time.Second, func() bool { return len(e.cgroupProcs()) == 0 }) {
			t.Errorf("processes %v left in cgroup %s", e.cgroupProcs(), e.cgroup)
		}
		e.checkGone()
	})

	t.Run("ContainerdRestart", func(t *testing.T) {
		e := newShimEnv(t, c, config)
		tk := e.runCounter(nil)
		shims := e.shims()
		if len(shims) != 1 {
			t.Fatalf("want one shim serving %s: %v", e.id, shims)
		}
		c.restart(t, shims[0].pid)
		if st := e.task(); st.status != "RUNNING" || st.pid != tk.pid {
			t.Errorf("after containerd restarted: task %+v, want RUNNING with pid %d", st, tk.pid)
		}
		if got := e.shims(); len(got) != 1 || got[0].pid != shims[0].pid {
			t.Errorf("after containerd restarted: shims %v, want the same %v", got, shims)
		}
		r := e.exec([]string{"--exec-id", "after"}, "echo", "alive")
		if r.code != 0 || r.stdout != "alive\n" {
			t.Errorf("exec after containerd restarted: %v", r)
		}
		e.mustCtr("tasks", "kill", e.id)
		e.waitStatus("STOPPED")
		e.deleteTask(3)
	})
}

// noDrainWait checks that what started at start took less than the shim's
// wait for a process's output to drain (shim/io.go, outputDrain: 2s), which
// the IO of a process that never ran has no cause to wait for.
func noDrainWait(t *testing.T, what string, start time.Time) {
	t.Helper()
	if d := time.Since(start); d >= 2*time.Second {
		t.Errorf("%s took %v: the shim waited for the output of a process that never ran", what, d)
	}
}

// runtimeStateIn is containerfd's `state` status of container id under
// root, "" if it does not know it.
func runtimeStateIn(t *testing.T, root, id string) string {
	r := run(t, command{args: []string{runtimeBin, "--root", root, "state", id}})
	if r.code != 0 {
		return ""
	}
	for _, l := range strings.Split(r.stdout, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(l), `"status": "`); ok {
			return strings.TrimSuffix(v, `",`)
		}
	}
	return ""
}

func fileExists(pid int, path string) bool {
	_, err := os.Stat(fmt.Sprintf("/proc/%d/root%s", pid, path))
	return err == nil
}

// restart stops containerd and starts it again with the same config, in the
// same mount namespace (the shims' sockets are in its private /run; the
// shim with pid inNS holds it), as a host's containerd restarts.
func (c *containerd) restart(t *testing.T, inNS int) {
	t.Helper()
	d := c.d
	d.cmd.Process.Signal(unix.SIGTERM)
	select {
	case <-d.exited:
	case <-time.After(15 * time.Second):
		t.Fatalf("containerd did not exit within 15s of SIGTERM")
	}
	logf, err := os.OpenFile(d.log, os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	cmd := exec.Command("nsenter", "--mount=/proc/"+strconv.Itoa(inNS)+"/ns/mnt", "--",
		c.version.bin("containerd"), "--config", filepath.Join(c.dir, "config.toml"), "--log-level", "info")
	cmd.Env = d.cmd.Env // $PATH finds the version's shims and ours
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("restart containerd: %v", err)
	}
	// The daemon's cleanup stops this one now.
	d.cmd, d.exited = cmd, make(chan struct{})
	exited := d.exited
	go func() {
		cmd.Wait()
		close(exited)
	}()
	if !waitFor(30*time.Second, func() bool {
		conn, err := net.Dial("unix", c.sock)
		if err == nil {
			conn.Close()
		}
		return err == nil
	}) {
		t.Fatalf("containerd not ready 30s after its restart; its log:\n%s", d.tail(40))
	}
	t.Logf("restarted containerd, pid %d", cmd.Process.Pid)
}

// events is a `ctr events` running for the test.
type events struct {
	mu  sync.Mutex
	out bytes.Buffer
}

func startEvents(t *testing.T, c *containerd) *events {
	t.Helper()
	a := c.ctr(ctrNamespace, "events").args
	cmd := exec.Command(a[0], a[1:]...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ev := &events{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		s := bufio.NewScanner(stdout)
		for s.Scan() {
			ev.mu.Lock()
			ev.out.WriteString(s.Text() + "\n")
			ev.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-done
		cmd.Wait()
	})
	time.Sleep(200 * time.Millisecond) // subscribed
	return ev
}

func (ev *events) text() string {
	ev.mu.Lock()
	defer ev.mu.Unlock()
	return ev.out.String()
}

// waitFor waits for an event of topic about container id.
func (ev *events) waitFor(topic, id string) bool {
	return waitFor(10*time.Second, func() bool {
		for _, l := range strings.Split(ev.text(), "\n") {
			if strings.Contains(l, " "+topic+" ") && strings.Contains(l, id) {
				return true
			}
		}
		return false
	})
}

// inOrder checks that the events about container id have the topics want
// in that order (others between them allowed).
func (ev *events) inOrder(t *testing.T, id string, want ...string) {
	t.Helper()
	var got []string
	for _, l := range strings.Split(ev.text(), "\n") {
		if !strings.Contains(l, id) {
			continue
		}
		for _, f := range strings.Fields(l) {
			if strings.HasPrefix(f, "/tasks/") {
				got = append(got, f)
				break
			}
		}
	}
	i := 0
	for _, g := range got {
		if i < len(want) && g == want[i] {
			i++
		}
	}
	if i < len(want) {
		t.Errorf("events of %s: %v; want %v in this order", id, got, want)
	}
}

// noFifoHeld checks that no process holds a fifo under dir open: the shim
// closes a process's fifos once it is deleted. (ctr itself leaves the fifos
// of a task it did not wait for, as it does with runc's shim.)
func noFifoHeld(t *testing.T, dir string) {
	t.Helper()
	links, _ := filepath.Glob("/proc/[0-9]*/fd/*")
	for _, l := range links {
		target, err := os.Readlink(l)
		if err != nil || !strings.HasPrefix(target, dir+"/") {
			continue
		}
		if st, err := os.Stat(target); err == nil && st.Mode()&os.ModeNamedPipe != 0 {
			pid := strings.Split(l, "/")[2]
			n, _ := strconv.Atoi(pid)
			t.Errorf("fifo %s still open in pid %s (%s)", target, pid, readCmdline(n))
		}
	}
}

func TestShimCRI(t *testing.T) {
	testutil.NoLeaks(t)
	testutil.RequireRoot(t)
	requireShim(t)
	hostRunUntouched(t)
	crictlBin := crictl(t)
	busybox := buildImage(t, image{name: busyboxRef, cmd: []string{"sh"}})
	pause := buildImage(t, image{name: pauseRef, entrypoint: []string{"sleep", "2147483647"}})
	forEachContainerd(t, func(t *testing.T, v *containerdVersion) { testShimCRI(t, v, crictlBin, busybox, pause) })
}

// testShimCRI is TestShimCRI with containerd v: its CRI section is
// TestCRI's with the handler docs/clients.md shows for v (shimCRIEntry,
// shimCRIEntryV3) in place of runc's shim.
func testShimCRI(t *testing.T, v *containerdVersion, crictlBin, busybox, pause string) {
	dir := t.TempDir()
	c := startContainerdVersion(t, v, func(c *containerd) string {
		config := writeShimConfig(t, c)
		entry := shimCRIEntry(config)
		if v.v2 {
			entry = shimCRIEntryV3(config)
		}
		return criSection(v, c.dir, entry)
	})
	c.importImage(t, criNamespace, busybox, busyboxRef)
	c.importImage(t, criNamespace, pause, pauseRef)
	e := newCRIEnv(t, c, crictlBin, dir)
	shims := func() []process {
		var ps []process
		for _, p := range processesWith(c.sock) {
			if strings.Contains(p.cmdline, shimBinary) {
				ps = append(ps, p)
			}
		}
		return ps
	}

	podID, pod, podCgroup := e.runPod("shimpod")
	if st := e.runtimeState(podID); st != "running" {
		t.Errorf("containerfd's state of the pod sandbox: %q, want running", st)
	}

	// Two containers in the pod, each with a memory limit.
	const limit, newLimit = 48 << 20, 80 << 20
	var ids []string
	for _, name := range []string{"one", "two"} {
		ctrCfg := e.writeJSON(name+".json", map[string]any{
			"metadata": map[string]any{"name": name},
			"image":    map[string]any{"image": busyboxRef},
			"command":  []string{"sh", "-c", `echo "started ` + name + `"; trap 'echo "got SIGTERM"; exit 0' TERM; while :; do sleep 1 & wait; done`},
			"log_path": name + ".log",
			"linux":    map[string]any{"resources": map[string]any{"memory_limit_in_bytes": limit}},
		})
		id := e.create(t, podID, ctrCfg, pod)
		ids = append(ids, id)
		e.must("start", id)
		if st := field(e.inspect("inspect", id), "status", "state"); st != "CONTAINER_RUNNING" {
			t.Errorf("container %s after start: %v, want CONTAINER_RUNNING", name, st)
		}
	}
	// One shim for the pod: its sandbox and both containers; and one
	// watcher that kills them if it goes, not one per container.
	if ps := shims(); len(ps) != 1 {
		t.Errorf("shims serving the pod: %v, want one", ps)
	} else if ws := testutil.Children(ps[0].pid, "containerfd-watch"); len(ws) != 1 {
		t.Errorf("the shim's watcher processes for the pod's containers: %v, want one", ws)
	}
	for _, id := range ids {
		cg := podCgroup + "/" + id
		if got, err := cgroupFile(t, "memory", cg, "memory.limit_in_bytes"); err != nil || got != strconv.Itoa(limit) {
			t.Errorf("memory limit of %s: %q (%v), want %d", cg, got, err, limit)
		}
	}
	// update: the shim's Update.
	e.must("update", "--memory", strconv.Itoa(newLimit), ids[0])
	if got, err := cgroupFile(t, "memory", podCgroup+"/"+ids[0], "memory.limit_in_bytes"); err != nil || got != strconv.Itoa(newLimit) {
		t.Errorf("memory limit after crictl update: %q (%v), want %d", got, err, newLimit)
	}
	// exec, sync and streaming, and the logs, through the shim's IO.
	// crictl prints stdout and stderr each with a newline more.
	if r := e.run("exec", "--sync", ids[1], "sh", "-c", "echo $((6*7))"); r.code != 0 || strings.TrimSpace(r.stdout) != "42" {
		t.Errorf("crictl exec --sync: %v", r)
	}
	if r := e.run("exec", ids[1], "sh", "-c", "echo streamed; exit 3"); r.stdout != "streamed\n" || !strings.Contains(r.stderr, "exit code 3") {
		t.Errorf("crictl exec (streaming): %v; want stdout \"streamed\" and exit code 3", r)
	}
	// A missing program: the CRI plugin waits for the exec it failed to
	// start (its deferred delete kills and waits), which must end at once.
	start := time.Now()
	r := e.run("exec", "--sync", ids[1], "/no/such-program")
	if out := strings.ToLower(r.output()); r.code == 0 || !strings.Contains(out, "no such file or directory") {
		t.Errorf("crictl exec of a missing program: %v; want an error saying it is not found", r)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("crictl exec of a missing program took %v: the exec that failed to start was waited for until a timeout", d)
	}
	if out := e.must("logs", ids[0]); !strings.Contains(out, "started one") {
		t.Errorf("crictl logs: %q", out)
	}
	if out := e.must("stats", "--output", "json", ids[0]); !strings.Contains(out, "workingSetBytes") {
		t.Errorf("crictl stats: %q", out)
	}
	for _, id := range ids {
		e.must("stop", "--timeout", "20", id)
		ic := e.inspect("inspect", id)
		if st, code := field(ic, "status", "state"), field(ic, "status", "exitCode"); st != "CONTAINER_EXITED" || code != float64(0) {
			t.Errorf("container after stop: %v, exit code %v; want CONTAINER_EXITED, 0", st, code)
		}
		e.must("rm", id)
		if st := e.runtimeState(id); st != "" {
			t.Errorf("containerfd still knows the removed container: %s", st)
		}
		if _, err := os.Stat(cgroupDir("memory", podCgroup+"/"+id)); err == nil {
			t.Errorf("cgroup %s/%s still there after rm", podCgroup, id)
		}
	}
	e.must("stopp", podID)
	e.must("rmp", podID)
	if st := e.runtimeState(podID); st != "" {
		t.Errorf("containerfd still knows the removed pod sandbox: %s", st)
	}
	if _, err := os.Stat(cgroupDir("memory", podCgroup+"/"+podID)); err == nil {
		t.Errorf("cgroup %s/%s still there after rmp", podCgroup, podID)
	}
	if !waitFor(10*time.Second, func() bool { return len(shims()) == 0 }) {
		t.Errorf("the pod's shim still runs after rmp: %v", shims())
	}
	noFifoHeld(t, c.dir)
}

// TestClientsDocShimConfigs checks that clientsDoc shows the shim's
// configuration these tests use, with the installed paths: the runtime
// options' file, the CRI runtime entries of containerd 1.x and 2.x, ctr's
// flags, and the RuntimeClass.
func TestClientsDocShimConfigs(t *testing.T) {
	sec := docSection(t, readClientsDoc(t), "## containerd shim")
	const config, root = "/etc/containerd/containerfd.toml", "/run/containerd/containerfd"
	if got, want := codeBlock(t, docSection(t, sec, "### Runtime options"), "toml"), shimConfigFile(root); got != want {
		t.Errorf("%s, the shim's options file is\n%s\nwant (as the tests use it)\n%s", clientsDoc, got, want)
	}
	v2 := docSection(t, sec, "### containerd 1.6 (config version 2)")
	if got, want := codeBlock(t, v2, "toml"), shimCRIEntry(config); got != want {
		t.Errorf("%s, containerd 1.6: the runtime entry is\n%s\nwant\n%s", clientsDoc, got, want)
	}
	if flags := "ctr run --runtime " + shimRuntime + " --runtime-config-path " + config; !strings.Contains(v2, flags) {
		t.Errorf("%s, containerd 1.6: no `%s`", clientsDoc, flags)
	}
	if got, want := codeBlock(t, docSection(t, sec, "### containerd 2.x (config version 3)"), "toml"), shimCRIEntryV3(config); got != want {
		t.Errorf("%s, containerd 2.x: the runtime entry is\n%s\nwant\n%s", clientsDoc, got, want)
	}
	if got := codeBlock(t, docSection(t, sec, "### Kubernetes RuntimeClass"), "yaml"); got != runtimeClass {
		t.Errorf("%s, the shim's RuntimeClass is\n%s\nwant\n%s", clientsDoc, got, runtimeClass)
	}
}
