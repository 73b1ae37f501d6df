package integration

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/containerfd/containerfd/internal/testutil"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

func TestCreateStartStateDelete(t *testing.T) {
	e := newEnv(t, "sh", "-c", "echo started > /tmp/started; sleep 2")
	pidFile := filepath.Join(e.bundle, "init.pid")
	e.ok("create", "--bundle", e.bundle, "--pid-file", pidFile, e.id)

	st := e.state()
	if st["status"] != "created" || st["id"] != e.id || st["bundle"] != e.bundle || st["ociVersion"] == "" {
		t.Errorf("state after create: %v", st)
	}
	b, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(string(b)) // a bare integer, no newline
	if err != nil || float64(pid) != st["pid"] {
		t.Errorf("pid file %q, state pid %v", b, st["pid"])
	}
	// Init waits, not yet running the process: our fork, named at its gate
	// (or, with CONTAINERFD_START=stage, our stage).
	comm, _ := os.ReadFile("/proc/" + string(b) + "/comm")
	cmd, _ := os.ReadFile("/proc/" + string(b) + "/cmdline")
	if string(comm) != "containerfd-ini\n" && !strings.HasPrefix(string(cmd), "containerfd-init") {
		t.Errorf("init before start runs %q (%q)", cmd, comm)
	}
	for _, k := range []string{"rootfs", "created", "owner"} {
		if st[k] == nil || st[k] == "" {
			t.Errorf("state lacks %s: %v", k, st)
		}
	}

	e.ok("start", e.id)
	if s := e.status(); s != "running" {
		t.Errorf("status after start = %s", s)
	}
	if r := e.cfd("delete", e.id); r.code == 0 || !strings.Contains(r.stderr, "running") {
		t.Errorf("delete of a running container: %v", r)
	}
	waitStatus(t, e, "stopped")
	cgroupDirs := cgroupDirsOf(t, e.cgroup)
	if len(cgroupDirs) == 0 {
		t.Fatal("no cgroup directories found while the container exists")
	}
	e.ok("delete", e.id)
	if r := e.cfd("state", e.id); r.code == 0 || !strings.Contains(r.stderr, e.id) || !strings.Contains(r.stderr, "does not exist") {
		t.Errorf("state after delete: %v", r)
	}
	for _, d := range cgroupDirs {
		if _, err := os.Stat(d); err == nil {
			t.Errorf("cgroup %s left after delete", d)
		}
	}
}

func waitStatus(t *testing.T, e *env, want string) {
	t.Helper()
	for i := 0; i < 500; i++ {
		if e.status() == want {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("status never became %s (is %s)", want, e.status())
}

// cgroupDirsOf lists the directories of cgroup path in every hierarchy.
func cgroupDirsOf(t *testing.T, path string) []string {
	var dirs []string
	ents, _ := os.ReadDir("/sys/fs/cgroup")
	for _, ent := range ents {
		d := filepath.Join("/sys/fs/cgroup", ent.Name(), path)
		if _, err := os.Stat(d); err == nil {
			dirs = append(dirs, d)
		}
	}
	if _, err := os.Stat(filepath.Join("/sys/fs/cgroup", path)); err == nil {
		dirs = append(dirs, filepath.Join("/sys/fs/cgroup", path))
	}
	return dirs
}

func TestRunExitCode(t *testing.T) {
	e := newEnv(t, "sh", "-c", "echo out; echo err >&2; exit 3")
	r := e.cfd("run", "--bundle", e.bundle, e.id)
	if r.code != 3 || r.stdout != "out\n" || r.stderr != "err\n" {
		t.Errorf("run: %v", r)
	}
	// run deletes the container after it exits.
	if r := e.cfd("state", e.id); r.code == 0 {
		t.Errorf("container still there after run: %v", r)
	}
}

// run returns 128+N when the process dies of signal N.
func TestRunKilled(t *testing.T) {
	e := newEnv(t, "sleep", "100")
	out, errf := e.tempFile(), e.tempFile()
	run := exec.Command(binary, "--root", e.root, "run", "--bundle", e.bundle, e.id)
	run.Stdout, run.Stderr = out, errf
	if err := run.Start(); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 500 && e.cfd("state", e.id).code != 0; i++ {
		time.Sleep(10 * time.Millisecond)
	}
	waitStatus(t, e, "running")
	e.ok("kill", e.id, "KILL")
	err := run.Wait()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 137 {
		t.Errorf("run of a process killed by SIGKILL: %v (stderr %q)", err, readBack(t, errf))
	}
}

// run passes the signals it gets on to the process.
func TestRunForwardsSignals(t *testing.T) {
	e := newEnv(t, "sh", "-c", "trap 'exit 7' TERM; sleep 100 & wait")
	run := exec.Command(binary, "--root", e.root, "run", "--bundle", e.bundle, e.id)
	if err := run.Start(); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 500 && e.cfd("state", e.id).code != 0; i++ {
		time.Sleep(10 * time.Millisecond)
	}
	waitStatus(t, e, "running")
	// The trap is set once sh runs its script: until then TERM is lost.
	for i := 0; i < 500; i++ {
		if r := e.cfd("ps", e.id); strings.Count(r.stdout, "\n") >= 3 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	run.Process.Signal(unix.SIGTERM)
	err := run.Wait()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 7 {
		t.Errorf("run after SIGTERM: %v, want exit 7 from the trap", err)
	}
}

func TestRunDetachAndKeep(t *testing.T) {
	e := newEnv(t, "sleep", "100")
	e.ok("run", "--detach", "--bundle", e.bundle, e.id)
	if s := e.status(); s != "running" {
		t.Errorf("status after run --detach = %s", s)
	}
	e.ok("kill", e.id, "KILL")
	waitStatus(t, e, "stopped")
	e.ok("delete", e.id)

	e2 := newEnv(t, "true")
	e2.ok("run", "--keep", "--bundle", e2.bundle, e2.id)
	if s := e2.status(); s != "stopped" {
		t.Errorf("status after run --keep = %s", s)
	}
	e2.ok("delete", e2.id)
}

func TestKillSignals(t *testing.T) {
	for _, sig := range []string{"KILL", "SIGKILL", "9", "kill"} {
		t.Run(sig, func(t *testing.T) {
			e := newEnv(t, "sleep", "100")
			e.ok("run", "-d", "-b", e.bundle, e.id)
			e.ok("kill", e.id, sig)
			waitStatus(t, e, "stopped")
			e.ok("delete", e.id)
		})
	}
	// The default is SIGTERM. A pid 1 gets only the signals it handles.
	e := newEnv(t, "sh", "-c", "trap 'exit 0' TERM; while :; do sleep 0.1; done")
	e.ok("run", "-d", "-b", e.bundle, e.id)
	if r := e.cfd("kill", e.id, "NOSUCHSIG"); r.code == 0 || !strings.Contains(r.stderr, "invalid signal") {
		t.Errorf("kill with a bad signal: %v", r)
	}
	e.ok("kill", e.id)
	waitStatus(t, e, "stopped")
	if r := e.cfd("kill", e.id, "9"); r.code == 0 || !strings.Contains(r.stderr, "not running") {
		t.Errorf("kill of a stopped container: %v", r)
	}
}

func TestKillAll(t *testing.T) {
	e := newEnv(t, "sh", "-c", "sleep 100 & sleep 100 & wait")
	s := e.spec()
	// A shared pid namespace: killing init alone would leave the sleeps.
	withoutNamespace(s, "pid")
	e.writeSpec(s)
	e.ok("run", "-d", "-b", e.bundle, e.id)
	var pids []int
	for i := 0; i < 200 && len(pids) < 3; i++ {
		json.Unmarshal([]byte(e.ok("ps", "--format", "json", e.id)), &pids)
		time.Sleep(10 * time.Millisecond)
	}
	if len(pids) != 3 {
		t.Fatalf("ps --format json: %v", pids)
	}
	// pidfds, not pids: other tests' processes may reuse a pid at once.
	var pidfds []int
	for _, p := range pids {
		fd, err := unix.PidfdOpen(p, 0)
		if err != nil {
			t.Fatalf("pidfd_open %d: %v", p, err)
		}
		defer unix.Close(fd)
		pidfds = append(pidfds, fd)
	}
	e.ok("kill", "--all", e.id, "9")
	waitStatus(t, e, "stopped")
	for i, fd := range pidfds {
		// A pidfd polls readable once its process has exited.
		fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		n, err := unix.Poll(fds, 5000)
		for err == unix.EINTR {
			n, err = unix.Poll(fds, 5000)
		}
		if n != 1 || err != nil {
			t.Errorf("pid %d survived kill --all", pids[i])
		}
	}
	e.ok("delete", e.id)
}

func TestDeleteForce(t *testing.T) {
	e := newEnv(t, "sleep", "100")
	e.ok("run", "-d", "-b", e.bundle, e.id)
	e.ok("delete", "--force", e.id)
	if r := e.cfd("state", e.id); r.code == 0 {
		t.Errorf("state after delete --force: %v", r)
	}
	// Deleting what does not exist: an error, but not with --force.
	if r := e.cfd("delete", e.id); r.code == 0 || !strings.Contains(r.stderr, "does not exist") {
		t.Errorf("delete of a missing container: %v", r)
	}
	e.ok("delete", "--force", e.id)
}

func TestPauseResume(t *testing.T) {
	e := newEnv(t, "sleep", "100")
	e.ok("run", "-d", "-b", e.bundle, e.id)
	e.ok("pause", e.id)
	if s := e.status(); s != "paused" {
		t.Errorf("status after pause = %s", s)
	}
	if r := e.cfd("exec", e.id, "true"); r.code == 0 || !strings.Contains(r.stderr, "paused") {
		t.Errorf("exec in a paused container: %v", r)
	}
	e.ok("resume", e.id)
	if s := e.status(); s != "running" {
		t.Errorf("status after resume = %s", s)
	}
	if r := e.cfd("resume", e.id); r.code == 0 {
		t.Errorf("resume of a running container: %v", r)
	}
}

func TestExec(t *testing.T) {
	e := newEnv(t, "sleep", "100")
	e.ok("run", "-d", "-b", e.bundle, e.id)
	r := e.cfd("exec", "--env", "X=42", "--cwd", "/tmp", e.id, "sh", "-c", "echo $X $(pwd) $(id -u); exit 7")
	if r.code != 7 || r.stdout != "42 /tmp 0\n" {
		t.Errorf("exec: %v", r)
	}
	r = e.cfd("exec", "--user", "1000:1000", e.id, "id")
	if r.code != 0 || !strings.Contains(r.stdout, "uid=1000") || !strings.Contains(r.stdout, "gid=1000") {
		t.Errorf("exec --user: %v", r)
	}
	for _, c := range []struct{ cmd, want string }{
		{"no-such-program", "executable file not found in $PATH"},
		{"/no/such/path", "no such file or directory"},
	} {
		r := e.cfd("exec", e.id, c.cmd)
		if r.code == 0 || !strings.Contains(r.stderr, c.want) {
			t.Errorf("exec %s: %v, want %q", c.cmd, r, c.want)
		}
	}

	// --detach with a pid file.
	pidFile := filepath.Join(e.bundle, "exec.pid")
	e.ok("exec", "--detach", "--pid-file", pidFile, e.id, "sleep", "100")
	b, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	if cmd, _ := os.ReadFile("/proc/" + string(b) + "/cmdline"); string(cmd) != "sleep\x00100\x00" {
		t.Errorf("exec --detach pid %s runs %q", b, cmd)
	}

	// --process, as containerd sends it.
	proc := `{"args":["sh","-c","echo from process.json; exit 4"],"env":["PATH=/bin"],"cwd":"/","user":{"uid":0,"gid":0}}`
	pf := filepath.Join(e.bundle, "process.json")
	os.WriteFile(pf, []byte(proc), 0o644)
	if r := e.cfd("exec", "--process", pf, e.id); r.code != 4 || r.stdout != "from process.json\n" {
		t.Errorf("exec --process: %v", r)
	}
}

func TestPs(t *testing.T) {
	e := newEnv(t, "sleep", "100")
	e.ok("run", "-d", "-b", e.bundle, e.id)
	var pids []int
	if err := json.Unmarshal([]byte(e.ok("ps", "--format", "json", e.id)), &pids); err != nil || len(pids) != 1 {
		t.Errorf("ps --format json: %v %v", pids, err)
	}
	out := e.ok("ps", e.id)
	if lines := strings.Split(strings.TrimSpace(out), "\n"); len(lines) != 2 || !strings.Contains(lines[0], "PID") || !strings.Contains(lines[1], "sleep 100") {
		t.Errorf("ps table:\n%s", out)
	}
}

func TestList(t *testing.T) {
	e := newEnv(t, "sleep", "100")
	e.ok("run", "-d", "-b", e.bundle, e.id)
	if out := e.ok("list"); !strings.Contains(out, e.id) || !strings.Contains(out, "running") || !strings.HasPrefix(out, "ID") {
		t.Errorf("list:\n%s", out)
	}
	var states []map[string]any
	if err := json.Unmarshal([]byte(e.ok("list", "--format", "json")), &states); err != nil || len(states) != 1 || states[0]["id"] != e.id {
		t.Errorf("list --format json: %v %v", states, err)
	}
	if out := e.ok("list", "-q"); out != e.id+"\n" {
		t.Errorf("list -q: %q", out)
	}
}

// `containerfd spec` gives a config that runs as it is; only the cgroup
// path is the test's own (a relative one would land in a cgroup not ours).
func TestSpecRuns(t *testing.T) {
	e := newEnv(t)
	os.Remove(filepath.Join(e.bundle, "config.json"))
	e.ok("spec", "--bundle", e.bundle)
	if r := e.cfd("spec", "--bundle", e.bundle); r.code == 0 {
		t.Errorf("spec over an existing config.json: %v", r)
	}
	s := e.spec()
	s.Linux.CgroupsPath = e.cgroup
	e.writeSpec(s)
	if err := os.Symlink(testutil.Rootfs(t), filepath.Join(e.bundle, "rootfs")); err != nil {
		t.Fatal(err)
	}
	// The default process is an interactive sh on a terminal: feed it.
	r := e.cfdIn([]byte("echo hello from $(hostname)\nexit 5\n"), "run", "--bundle", e.bundle, e.id)
	if r.code != 5 || !strings.Contains(r.stdout, "hello from containerfd") {
		t.Errorf("run of the default spec: %v", r)
	}
}

func TestFeatures(t *testing.T) {
	e := newEnv(t)
	var f map[string]any
	if err := json.Unmarshal([]byte(e.ok("features")), &f); err != nil {
		t.Fatal(err)
	}
	if f["ociVersionMin"] != "1.0.0" || f["linux"] == nil {
		t.Errorf("features: %v", f)
	}
}

func TestVersion(t *testing.T) {
	out, err := exec.Command(binary, "--version").Output()
	if err != nil || !strings.Contains(string(out), "containerfd version") || !strings.Contains(string(out), "spec: 1.") {
		t.Errorf("--version: %q %v", out, err)
	}
}

// A container that enables a domain controller for cgroups below its own
// (systemd in a container does) can hold no process in its own cgroup:
// exec joins init's cgroup instead, as runc and crun do. cgroup2 needs such
// a controller here: on a hybrid host hugetlb often is one.
func TestExecIntoNonLeafCgroup(t *testing.T) {
	e := newEnv(t, "sh", "-c", "mkdir /sys/fs/cgroup/init && echo $$ > /sys/fs/cgroup/init/cgroup.procs && echo +$CTL > /sys/fs/cgroup/cgroup.subtree_control && sleep 1000")
	e.ok("create", "--bundle", e.bundle, e.id)
	b, err := os.ReadFile(filepath.Join(e.root, e.id, "state.json"))
	if err != nil {
		t.Fatal(err)
	}
	var st struct {
		Cgroup map[string]string `json:"cgroup"`
	}
	if err := json.Unmarshal(b, &st); err != nil {
		t.Fatal(err)
	}
	dir := st.Cgroup["unified"]
	if dir == "" {
		t.Skip("no cgroup2 hierarchy")
	}
	ctls, err := os.ReadFile(filepath.Join(dir, "cgroup.controllers"))
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(ctls))
	if len(f) == 0 {
		t.Skipf("no controller on cgroup2 in %s to enable below it", dir)
	}
	e.ok("delete", e.id)
	s := e.spec()
	s.Process.Env = append(s.Process.Env, "CTL="+f[0])
	for i, m := range s.Mounts {
		if m.Destination == "/sys/fs/cgroup" {
			s.Mounts[i] = specs.Mount{Destination: "/sys/fs/cgroup", Type: "cgroup2", Source: "cgroup2", Options: []string{"nosuid", "noexec", "nodev", "rw"}}
		}
	}
	e.writeSpec(s)
	e.ok("run", "--detach", "--bundle", e.bundle, e.id)
	deadline := time.Now().Add(10 * time.Second)
	for {
		sub, _ := os.ReadFile(filepath.Join(dir, "cgroup.subtree_control"))
		if strings.Contains(string(sub), f[0]) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the container did not enable %s below its cgroup %s", f[0], dir)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if out := e.ok("exec", e.id, "cat", "/proc/self/cgroup"); !strings.Contains(out, "0::/init\n") {
		t.Errorf("exec into a container whose cgroup is not a leaf: /proc/self/cgroup %q, want 0::/init", out)
	}
}

// exec --cgroup puts the process in existing sub-cgroups of the
// container's, as runc's does: PATH for every hierarchy, or
// CONTROLLER[,CONTROLLER]:PATH for v1 ones; a path out of the container's
// cgroup, one that is not there, or an unknown controller is refused.
func TestExecSubCgroup(t *testing.T) {
	eachStartPath(t, func(t *testing.T) {
		e := newEnv(t, "sleep", "1000")
		e.ok("run", "-d", "-b", e.bundle, e.id)
		b, err := os.ReadFile(filepath.Join(e.root, e.id, "state.json"))
		if err != nil {
			t.Fatal(err)
		}
		var st struct {
			Cgroup map[string]string `json:"cgroup"`
		}
		if err := json.Unmarshal(b, &st); err != nil || len(st.Cgroup) == 0 {
			t.Fatalf("state's cgroup: %v %v", st.Cgroup, err)
		}
		for _, d := range st.Cgroup {
			sub := filepath.Join(d, "sub")
			if err := os.Mkdir(sub, 0o755); err != nil && !os.IsExist(err) {
				t.Fatal(err)
			}
			t.Cleanup(func() { os.Remove(sub) })
			// A new v1 cpuset has no CPUs: joining it fails with ENOSPC.
			for _, f := range []string{"cpuset.cpus", "cpuset.mems"} {
				if v, err := os.ReadFile(filepath.Join(d, f)); err == nil && filepath.Base(filepath.Dir(d)) != "unified" {
					os.WriteFile(filepath.Join(sub, f), v, 0o644)
				}
			}
		}
		// /proc/self/cgroup from the host's cgroup namespace: the exec'd
		// process's lines, read through its pid from outside.
		in := func(args ...string) string {
			t.Helper()
			return e.ok(append(append([]string{"exec"}, args...), e.id, "sh", "-c", "cat /proc/self/cgroup")...)
		}
		out := in("--cgroup", "sub")
		for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
			if !strings.HasSuffix(l, "/sub") {
				t.Errorf("exec --cgroup sub: %q is not in the sub-cgroup", l)
			}
		}
		if _, ok := st.Cgroup["memory"]; ok {
			out := in("--cgroup", "memory:sub")
			for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
				if strings.Contains(l, ":memory:") != strings.HasSuffix(l, "/sub") {
					t.Errorf("exec --cgroup memory:sub: %q", l)
				}
			}
		}
		for arg, want := range map[string]string{
			"..":          "bad sub cgroup path",
			"nonexistent": "no such file or directory",
			"whaaat:/":    "unknown controller",
		} {
			if r := e.cfd("exec", "--cgroup", arg, e.id, "true"); r.code == 0 || !strings.Contains(r.stderr, want) {
				t.Errorf("exec --cgroup %s: %v, want an error with %q", arg, r, want)
			}
		}
	})
}

// One value per flag, commas and all, as runc takes them.
func TestExecEnvWithComma(t *testing.T) {
	e := newEnv(t, "sleep", "1000")
	e.ok("run", "-d", "-b", e.bundle, e.id)
	if out := e.ok("exec", "-e", "A=x,y", e.id, "sh", "-c", "echo $A"); out != "x,y\n" {
		t.Errorf("exec -e A=x,y: %q", out)
	}
}

// A program that cannot be executed (here its interpreter is missing), run
// or exec'd in the foreground: as with runc, whose init prints it on the
// process's stderr, the reason alone is the output and the command exits
// 255; a --log file still gets the whole error. runc's run.bats "runc run
// [execve error]".
func TestRunExecveError(t *testing.T) {
	eachStartPath(t, func(t *testing.T) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "run.sh"), []byte("#!/mmnnttbb foo bar\nsh\n"), 0o755); err != nil {
			t.Fatal(err)
		}
		e := newEnv(t, "/mnt/run.sh")
		s := e.spec()
		s.Mounts = append(s.Mounts, specs.Mount{Destination: "/mnt", Type: "bind", Source: dir, Options: []string{"bind"}})
		e.writeSpec(s)
		const want = "exec /mnt/run.sh: no such file or directory\n"
		if r := e.cfd("run", "-b", e.bundle, e.id); r.code != 255 || r.stderr != want || r.stdout != "" {
			t.Errorf("run: %+v; want exit 255 and stderr %q alone", r, want)
		}
		log := filepath.Join(t.TempDir(), "log.json")
		r := e.cfd("--log", log, "--log-format", "json", "run", "-b", e.bundle, e.id)
		if r.code != 255 || r.stderr != want {
			t.Errorf("run with --log: %+v; want exit 255 and stderr %q alone", r, want)
		}
		if b, _ := os.ReadFile(log); !strings.Contains(string(b), `"level":"error"`) || !strings.Contains(string(b), "exec /mnt/run.sh") {
			t.Errorf("--log: %q; want the error", b)
		}

		// exec in the foreground says it the same way.
		s.Process.Args = []string{"sleep", "100"}
		e.writeSpec(s)
		e.ok("run", "-d", "-b", e.bundle, e.id)
		if r := e.cfd("exec", e.id, "/mnt/run.sh"); r.code != 255 || r.stderr != want || r.stdout != "" {
			t.Errorf("exec: %+v; want exit 255 and stderr %q alone", r, want)
		}
	})
}
