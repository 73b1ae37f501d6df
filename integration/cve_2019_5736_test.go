package integration

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/containerfd/containerfd/internal/testutil"
	"github.com/containerfd/containerfd/libcontainerfd/kernfeat"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// CVE-2019-5736, as the public exploit does it. The image holds /bin/evil,
// a script whose interpreter is #!/proc/self/exe: a process that execs it
// while its own exe is the runtime's binary makes the kernel run that
// binary inside the container, as a process the container may open. A
// watcher in the container (testdata/exewatch) opens /proc/<pid>/exe of
// every process as soon as it shows up and keeps the fds; once the runtime
// on the host has exited, it reopens them for writing and writes. The host
// meanwhile starts /bin/evil (and /bin/sleep, as the exploit's victim
// would) a dozen times, in each way containerfd starts a process: run,
// create and start, exec into a running and into a created container;
// directly, through the stage (CONTAINERFD_START=stage), and without the
// exec trampoline (memfd-exec off, where the kernel will not exec a memfd). The
// runtime's binary must come out unchanged, and the watcher must not have
// written any file but the containers' own.
//
// The processes share the watcher's pid namespace: the watcher is the init
// of one container, the victim another container that joins its pid
// namespace, so that the victim's init may exit and the watcher go on.
func TestCVE_2019_5736_ExecThroughProcSelfExe(t *testing.T) {
	modes := []struct {
		name   string
		args   []string // the victim's init
		attack func(v *victim)
	}{
		{"run", []string{"/bin/evil"}, func(v *victim) {
			for range rounds {
				v.run("run", "--bundle", v.bundle, v.id)
				v.run("delete", "--force", v.id)
			}
		}},
		{"create-start", []string{"/bin/evil"}, func(v *victim) {
			for range rounds {
				v.must("create", "--bundle", v.bundle, v.id)
				v.must("start", v.id)
				v.waitStopped()
				v.must("delete", v.id)
			}
		}},
		{"exec-running", []string{"sleep", "100"}, func(v *victim) {
			v.must("run", "--detach", "--bundle", v.bundle, v.id)
			v.execRounds()
			v.must("delete", "--force", v.id)
		}},
		{"exec-created", []string{"sleep", "100"}, func(v *victim) {
			v.must("create", "--bundle", v.bundle, v.id)
			v.execRounds()
			v.must("delete", "--force", v.id)
		}},
	}
	paths := []struct{ name, env string }{
		{"direct", ""},
		{"stage", envStart + "=stage"},
		{"no-trampoline", kernfeat.EnvDisable + "=" + os.Getenv(kernfeat.EnvDisable) + ",memfd-exec"},
	}
	for _, path := range paths {
		for _, m := range modes {
			t.Run(path.name+"/"+m.name, func(t *testing.T) {
				if path.name != "stage" && stageForced() {
					t.Skip(envStart + "=stage for the whole run: the stage subtest is this one")
				}
				var env []string
				if path.env != "" {
					env = []string{path.env}
				}
				w := newWatcher(t, env)
				v := w.victim(t, m.args)
				m.attack(v)
				checkExploit(t, w.rootfs, w.self, w.before)
			})
		}
	}
}

// CVE-2019-5736: a process in the container holds the runtime's binary
// open (init's /proc/1/exe while it waits for start) and writes to it once
// the runtime is gone. A direct init (our fork, holding the binary itself)
// is not dumpable, so its exe cannot be opened without CAP_SYS_PTRACE, and
// a process with it may not join before start; the init stage's binary is
// a read-only bind that nothing can write through.
func TestCVE_2019_5736_OverwriteRuntimeBinary(t *testing.T) {
	e := newEnv(t, "sleep", "100")
	// A copy of containerfd: were the attack to work, only the copy breaks.
	self := filepath.Join(t.TempDir(), "containerfd")
	b, err := os.ReadFile(binary)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(self, b, 0o755); err != nil {
		t.Fatal(err)
	}
	before := fileHash(t, self)
	run := func(args ...string) result {
		cmd := exec.Command(self, append([]string{"--root", e.root}, args...)...)
		out, errf := e.tempFile(), e.tempFile()
		cmd.Stdout, cmd.Stderr = out, errf
		err := cmd.Run()
		r := result{stdout: readBack(t, out), stderr: readBack(t, errf)}
		if ee, ok := err.(*exec.ExitError); ok {
			r.code = ee.ExitCode()
		}
		return r
	}
	if r := run("create", "--bundle", e.bundle, e.id); r.code != 0 {
		t.Fatalf("create: %v", r)
	}
	attack := `if ! (exec 3</proc/1/exe) 2>/dev/null; then echo DENIED; exit; fi
		exec 3</proc/1/exe
		while grep -q containerfd /proc/1/cmdline; do sleep 0.05; done
		(echo owned >>/proc/self/fd/3) 2>/dev/null && echo WROTE || echo DENIED`
	pidFile := filepath.Join(e.bundle, "attacker.pid")
	attacker := func(caps string) string {
		proc := fmt.Sprintf(`{"args":["sh","-c",%q],"env":["PATH=/bin"],"cwd":"/","user":{"uid":0,"gid":0}%s}`, "{ "+attack+"\n} > /tmp/attack.log 2>&1", caps)
		pf := filepath.Join(e.bundle, "attack.json")
		os.WriteFile(pf, []byte(proc), 0o644)
		return pf
	}
	// With CAP_SYS_PTRACE the attacker could open a direct init's exe: it
	// may not join before start. Through the stage it may, and its write
	// is refused.
	ptrace := attacker(`,"capabilities":{"bounding":["CAP_SYS_PTRACE"],"effective":["CAP_SYS_PTRACE"],"permitted":["CAP_SYS_PTRACE"]}`)
	r := run("exec", "--detach", "--pid-file", pidFile, "--process", ptrace, e.id)
	direct := !stageForced()
	if direct && (r.code == 0 || !strings.Contains(r.stderr, "CVE-2019-5736")) {
		t.Fatalf("exec of a process with CAP_SYS_PTRACE before start: %v", r)
	}
	// Without (the container's capabilities, which exec takes when the
	// process gives none, as runc's does) it may join.
	if direct {
		if r := run("exec", "--detach", "--pid-file", pidFile, "--process", attacker(""), e.id); r.code != 0 {
			t.Fatalf("exec the attacker: %v", r)
		}
	} else if r.code != 0 {
		t.Fatalf("exec the attacker: %v", r)
	}
	time.Sleep(200 * time.Millisecond)
	if r := run("start", e.id); r.code != 0 {
		t.Fatalf("start: %v", r)
	}
	rootfs := e.spec().Root.Path
	var out []byte
	for i := 0; i < 100; i++ {
		out, _ = os.ReadFile(filepath.Join(rootfs, "tmp/attack.log"))
		if strings.Count(string(out), "\n") >= 1 {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if string(out) != "DENIED\n" {
		t.Errorf("attacker: %q", out)
	}
	if fileHash(t, self) != before {
		t.Fatal("the runtime binary was changed")
	}
}

// TestCVE_2019_5736_Rootless: the same attack on a rootless container,
// whose runtime is the user's own copy (say, in ~/bin): the container's
// root is that user on the host, and could write it given an fd. The
// watcher is the container's init, or, before start, an exec'd process.
func TestCVE_2019_5736_Rootless(t *testing.T) {
	for _, mode := range []string{"exec-running", "exec-created"} {
		t.Run(mode, func(t *testing.T) {
			testutil.NoLeaks(t)
			u := newRootlessUser(t)
			u.Own(t, u.binary, 0o755)
			before := fileHash(t, u.binary)
			id := testutil.ID(t)
			var rootfs string
			var watch []string
			dir := u.bundle(id, func(s *specs.Spec) {
				rootfs = s.Root.Path
				s.Root.Readonly = false // the watcher reports in /tmp
				watch = watcherArgs(armRootfs(t, rootfs, true))
				s.Process.Args = watch
				if mode == "exec-created" {
					s.Process.Args = []string{"sleep", "100"}
				}
			})
			if mode == "exec-running" {
				u.ok(dir, "run", "--detach", id)
			} else {
				u.ok(dir, "create", id)
				u.ok(dir, append([]string{"exec", "--detach", id}, watch...)...)
			}
			for range rounds {
				u.run(dir, "exec", id, "/bin/evil")
				u.ok(dir, "exec", id, "/bin/sleep", "0.3")
			}
			checkExploit(t, rootfs, u.binary, before)
			u.ok(dir, "delete", "--force", id)
		})
	}
}

// armRootfs puts the attacker's files in a rootfs: /bin/evil, and with
// watcher /exewatch. It returns the DEV:INO of the rootfs's own programs,
// which the watcher is not to write.
func armRootfs(t *testing.T, rootfs string, watcher bool) []string {
	t.Helper()
	if err := os.WriteFile(filepath.Join(rootfs, "bin/evil"), []byte("#!/proc/self/exe\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	own := []string{devIno(t, filepath.Join(rootfs, "bin/busybox"))}
	if watcher {
		copyFile(t, exewatch, filepath.Join(rootfs, "exewatch"), 0o755)
		own = append(own, devIno(t, filepath.Join(rootfs, "exewatch")))
	}
	return own
}

func watcherArgs(own []string) []string {
	return append([]string{"/exewatch", "/tmp/go", "/tmp/report"}, own...)
}

// checkExploit lets the watcher in rootfs write what it holds, once every
// runtime process has exited, and checks that the runtime's binary self
// still has the hash before.
func checkExploit(t *testing.T, rootfs, self, before string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(rootfs, "tmp/go"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	var report string
	for i := 0; i < 200 && !strings.HasSuffix(report, "DONE\n"); i++ {
		time.Sleep(50 * time.Millisecond)
		b, _ := os.ReadFile(filepath.Join(rootfs, "tmp/report"))
		report = string(b)
	}
	if !strings.HasSuffix(report, "DONE\n") {
		t.Fatalf("the watcher did not report: %q", report)
	}
	t.Logf("the watcher held:\n%s", report)
	if h := fileHash(t, self); h != before {
		t.Errorf("the container overwrote the runtime's binary (sha256 %s, was %s)", h, before)
	}
	for _, l := range strings.Split(report, "\n") {
		if strings.HasPrefix(l, "WROTE ") {
			t.Errorf("the container wrote a file it got from /proc/<pid>/exe: %s", l)
		}
	}
}

// rounds is how often each start mode runs the exploit's script: a dozen,
// as the exploit would; in the VM (emulated, several times slower), four.
// The watcher holds the trampoline of nearly every round.
var rounds = map[bool]int{false: 12, true: 4}[os.Getenv(prebuiltEnv) != ""]

// watcher is the attacker's container and the copy of containerfd it
// attacks: were the attack to work, only the copy breaks.
type watcher struct {
	*env
	rootfs string
	self   string // the runtime's binary
	before string // its hash
	cmdEnv []string
	own    []string // DEV:INO of the containers' own programs
}

func newWatcher(t *testing.T, cmdEnv []string) *watcher {
	w := &watcher{env: newEnv(t), cmdEnv: cmdEnv}
	w.self = filepath.Join(t.TempDir(), "containerfd")
	copyFile(t, binary, w.self, 0o755)
	w.before = fileHash(t, w.self)
	w.rootfs = w.spec().Root.Path
	w.own = armRootfs(t, w.rootfs, true)
	return w
}

// runtime runs the attacked copy of containerfd for e.
func (w *watcher) runtime(e *env, args ...string) result {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, w.self, append([]string{"--root", e.root}, args...)...)
	cmd.Env = append(os.Environ(), w.cmdEnv...)
	return runResult(e.t, cmd, args)
}

// victim is the container whose processes the watcher watches.
type victim struct {
	*env
	w *watcher
}

// victim makes the victim's bundle, then runs the watcher, which by then
// knows every file it is not to write, and points the victim at its pid
// namespace.
func (w *watcher) victim(t *testing.T, args []string) *victim {
	v := &victim{env: newEnv(t, args...), w: w}
	// The watcher's container, made after the victim's leak check began,
	// goes before that check ends (its entry in the host-wide list too).
	t.Cleanup(func() { w.runtime(w.env, "delete", "--force", w.id) })
	s := v.spec()
	w.own = append(w.own, armRootfs(t, s.Root.Path, false)...)
	ws := w.spec()
	ws.Process.Args = watcherArgs(w.own)
	w.writeSpec(ws)
	if r := w.runtime(w.env, "run", "--detach", "--bundle", w.bundle, w.id); r.code != 0 {
		t.Fatalf("run the watcher: %v", r)
	}
	pid := int(w.state()["pid"].(float64))
	for i := range s.Linux.Namespaces {
		if s.Linux.Namespaces[i].Type == specs.PIDNamespace {
			s.Linux.Namespaces[i].Path = fmt.Sprintf("/proc/%d/ns/pid", pid)
		}
	}
	v.writeSpec(s)
	return v
}

func (v *victim) run(args ...string) result { return v.w.runtime(v.env, args...) }

func (v *victim) must(args ...string) {
	v.t.Helper()
	if r := v.run(args...); r.code != 0 {
		v.t.Fatalf("containerfd %s: %v", strings.Join(args, " "), r)
	}
}

// execRounds alternates the exploit's script with an ordinary program.
func (v *victim) execRounds() {
	for range rounds {
		v.run("exec", v.id, "/bin/evil")
		v.must("exec", v.id, "/bin/sleep", "0.3")
	}
}

func (v *victim) waitStopped() {
	v.t.Helper()
	for range 200 {
		if r := v.run("state", v.id); strings.Contains(r.stdout, `"stopped"`) {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	v.t.Fatalf("%s did not stop", v.id)
}

func copyFile(t *testing.T, src, dst string, mode os.FileMode) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, b, mode); err != nil {
		t.Fatal(err)
	}
}

func devIno(t *testing.T, path string) string {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%d:%d", st.Dev, st.Ino)
}

// TestTrampolineRefusedByFilter: a seccomp profile that refuses execveat
// (one older than it, say) cannot let a direct child exec its trampoline;
// init and exec'd processes start through the stage, which execs the
// program with execve, as before.
func TestTrampolineRefusedByFilter(t *testing.T) {
	e := newEnv(t, "sleep", "100")
	s := e.spec()
	s.Linux.Seccomp = &specs.LinuxSeccomp{
		DefaultAction: specs.ActAllow,
		Syscalls:      []specs.LinuxSyscall{{Names: []string{"execveat"}, Action: specs.ActErrno}},
	}
	e.writeSpec(s)
	e.ok("run", "--detach", "--bundle", e.bundle, e.id)
	if out := e.ok("exec", e.id, "sh", "-c", "echo exec; grep Seccomp: /proc/self/status"); out != "exec\nSeccomp:\t2\n" {
		t.Errorf("exec under a filter without execveat: %q", out)
	}
}
