package hooks

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// The hooks are real shell scripts (/bin/sh) that log what they saw into
// files. No test calls t.Parallel: writing an executable while another
// goroutine forks can make its exec fail with ETXTBSY.

func testState(t *testing.T) *specs.State {
	return &specs.State{
		Version:     specs.Version,
		ID:          "hooks-test",
		Status:      specs.StateCreating,
		Pid:         4242,
		Bundle:      t.TempDir(),
		Annotations: map[string]string{"a": "1", "quote\"d": "x\ny"},
	}
}

// script writes an executable /bin/sh script named name into dir.
func script(t *testing.T, dir, name, body string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

// logger writes a hook that appends its name to dir/order and logs its
// arguments (after argv[0]), its exact environment, its stdin (read to EOF)
// and its working directory into dir/name.{args,env,stdin,cwd}.
func logger(t *testing.T, dir, name string) string {
	return script(t, dir, name, fmt.Sprintf(`D='%s'; N='%s'
echo "$N" >> "$D/order"
for a in "$@"; do printf '%%s\n' "$a"; done > "$D/$N.args"
/usr/bin/tr '\0' '\n' < /proc/$$/environ > "$D/$N.env"
/usr/bin/readlink /proc/$$/cwd > "$D/$N.cwd"
/usr/bin/cat > "$D/$N.stdin"
`, dir, name))
}

// failer writes a hook that prints to stdout and stderr and exits code.
func failer(t *testing.T, dir, name string, code int) string {
	return script(t, dir, name, fmt.Sprintf("echo %s-out\necho %s-err >&2\nexit %d\n", name, name, code))
}

func read(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func lines(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(strings.TrimSuffix(s, "\n"), "\n")
}

func TestOrderArgsEnvStdinCwd(t *testing.T) {
	dir := t.TempDir()
	st := testState(t)
	hs := []specs.Hook{
		{Path: logger(t, dir, "h0")}, // no args, no env
		{Path: logger(t, dir, "h1"), Args: []string{"ignored-argv0", "a b", "", "c"}, Env: []string{"FOO=bar", "PATH=/nowhere"}},
		{Path: logger(t, dir, "h2"), Env: []string{"ONLY=1"}},
	}
	t.Setenv("HOOKS_TEST_LEAK", "leaked") // must not reach any hook
	if err := Run(CreateRuntime, hs, st); err != nil {
		t.Fatal(err)
	}
	if got := lines(read(t, filepath.Join(dir, "order"))); !slices.Equal(got, []string{"h0", "h1", "h2"}) {
		t.Errorf("order = %q, want h0 h1 h2", got)
	}
	for name, want := range map[string][]string{"h0": nil, "h1": {"a b", "", "c"}, "h2": nil} {
		if got := lines(read(t, filepath.Join(dir, name+".args"))); !slices.Equal(got, want) {
			t.Errorf("%s args = %q, want %q", name, got, want)
		}
	}
	for name, want := range map[string][]string{"h0": nil, "h1": {"FOO=bar", "PATH=/nowhere"}, "h2": {"ONLY=1"}} {
		if got := lines(read(t, filepath.Join(dir, name+".env"))); !slices.Equal(got, want) {
			t.Errorf("%s env = %q, want exactly %q", name, got, want)
		}
	}
	wantJSON, _ := json.Marshal(st)
	for _, name := range []string{"h0", "h1", "h2"} {
		in := read(t, filepath.Join(dir, name+".stdin"))
		if in != string(wantJSON) {
			t.Errorf("%s stdin = %s, want %s", name, in, wantJSON)
		}
		var got specs.State
		if err := json.Unmarshal([]byte(in), &got); err != nil {
			t.Fatalf("%s stdin: %v", name, err)
		}
		if !reflect.DeepEqual(&got, st) {
			t.Errorf("%s stdin state = %+v, want %+v", name, got, *st)
		}
		if cwd := strings.TrimSpace(read(t, filepath.Join(dir, name+".cwd"))); cwd != st.Bundle {
			t.Errorf("%s cwd = %s, want the bundle %s", name, cwd, st.Bundle)
		}
	}
	// The JSON has exactly the fields of specs.State.
	var m map[string]any
	if err := json.Unmarshal(wantJSON, &m); err != nil {
		t.Fatal(err)
	}
	var keys []string
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	if want := []string{"annotations", "bundle", "id", "ociVersion", "pid", "status"}; !slices.Equal(keys, want) {
		t.Errorf("state keys = %q, want %q", keys, want)
	}
}

func TestArgv0(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "cmdline")
	// With a script the kernel replaces argv[0]; run the shell itself and
	// copy its own cmdline (from a child, so that it is the shell's).
	h := specs.Hook{Path: "/bin/sh", Args: []string{"my-argv0", "-c", "/usr/bin/cp /proc/$$/cmdline '" + out + "'; exit 0"}}
	if err := Run(Poststart, []specs.Hook{h}, testState(t)); err != nil {
		t.Fatal(err)
	}
	argv := strings.Split(strings.TrimSuffix(read(t, out), "\x00"), "\x00")
	if !slices.Equal(argv, h.Args) {
		t.Errorf("argv = %q, want %q", argv, h.Args)
	}

	// No args: argv is [path].
	h = specs.Hook{Path: script(t, dir, "noargs", "/usr/bin/cp /proc/$$/cmdline '"+out+"'\n")}
	if err := Run(Poststart, []specs.Hook{h}, testState(t)); err != nil {
		t.Fatal(err)
	}
	// The kernel runs "/bin/sh <script>" for argv [script].
	argv = strings.Split(strings.TrimSuffix(read(t, out), "\x00"), "\x00")
	if !slices.Equal(argv, []string{"/bin/sh", h.Path}) {
		t.Errorf("argv = %q, want [/bin/sh %s]", argv, h.Path)
	}
}

func TestFailureStopsRun(t *testing.T) {
	dir := t.TempDir()
	bad := failer(t, dir, "bad", 3)
	hs := []specs.Hook{{Path: logger(t, dir, "h0")}, {Path: bad}, {Path: logger(t, dir, "h2")}}
	err := Run(CreateRuntime, hs, testState(t))
	if err == nil {
		t.Fatal("no error from a hook that exits 3")
	}
	want := fmt.Sprintf("error running createRuntime hook #1: %s: exit status 3: bad-err (stdout: bad-out)", bad)
	if err.Error() != want {
		t.Errorf("error = %q\nwant    %q", err, want)
	}
	var he *Error
	if !errors.As(err, &he) || he.Kind != CreateRuntime || he.Index != 1 || he.Path != bad {
		t.Errorf("error %#v is not the *Error of createRuntime hook 1", err)
	}
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 3 {
		t.Errorf("error %v does not wrap an *exec.ExitError with code 3", err)
	}
	if got := lines(read(t, filepath.Join(dir, "order"))); !slices.Equal(got, []string{"h0"}) {
		t.Errorf("hooks run = %q, want only h0", got)
	}
}

func TestEveryFatalKindStops(t *testing.T) {
	for _, k := range []Kind{Prestart, CreateRuntime, CreateContainer, StartContainer, Poststart} {
		dir := t.TempDir()
		hs := []specs.Hook{{Path: failer(t, dir, "bad", 1)}, {Path: logger(t, dir, "after")}}
		err := Run(k, hs, testState(t))
		if err == nil || !strings.HasPrefix(err.Error(), "error running "+k.String()+" hook #0: ") {
			t.Errorf("%s: error = %v", k, err)
		}
		if _, err := os.Stat(filepath.Join(dir, "order")); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s: a hook after the failing one ran", k)
		}
	}
}

func TestPoststopRunsAll(t *testing.T) {
	dir := t.TempDir()
	hs := []specs.Hook{
		{Path: failer(t, dir, "bad0", 1)},
		{Path: logger(t, dir, "h1")},
		{Path: failer(t, dir, "bad2", 2)},
		{Path: logger(t, dir, "h3")},
	}
	err := Run(Poststop, hs, testState(t))
	if err == nil {
		t.Fatal("no error from failing poststop hooks")
	}
	if got := lines(read(t, filepath.Join(dir, "order"))); !slices.Equal(got, []string{"h1", "h3"}) {
		t.Errorf("hooks run = %q, want h1 h3", got)
	}
	joined, ok := err.(interface{ Unwrap() []error })
	if !ok {
		t.Fatalf("error %T is not joined", err)
	}
	errs := joined.Unwrap()
	if len(errs) != 2 {
		t.Fatalf("%d errors, want 2: %v", len(errs), err)
	}
	for i, want := range []string{
		fmt.Sprintf("error running poststop hook #0: %s: exit status 1: bad0-err", hs[0].Path),
		fmt.Sprintf("error running poststop hook #2: %s: exit status 2: bad2-err", hs[2].Path),
	} {
		if !strings.HasPrefix(errs[i].Error(), want) {
			t.Errorf("error %d = %q, want prefix %q", i, errs[i], want)
		}
	}

	// All fine: nil.
	if err := Run(Poststop, []specs.Hook{{Path: logger(t, dir, "ok")}}, testState(t)); err != nil {
		t.Errorf("poststop with no failure: %v", err)
	}
}

func TestKindRules(t *testing.T) {
	for _, c := range []struct {
		k                      Kind
		fatal, inCont, pathCon bool
	}{
		{Prestart, true, false, false},
		{CreateRuntime, true, false, false},
		{CreateContainer, true, true, false},
		{StartContainer, true, true, true},
		{Poststart, true, false, false},
		{Poststop, false, false, false},
	} {
		if c.k.Fatal() != c.fatal || c.k.ContainerNamespace() != c.inCont || c.k.PathInContainer() != c.pathCon {
			t.Errorf("%s: Fatal %v ContainerNamespace %v PathInContainer %v, want %v %v %v", c.k,
				c.k.Fatal(), c.k.ContainerNamespace(), c.k.PathInContainer(), c.fatal, c.inCont, c.pathCon)
		}
	}
	h := &specs.Hooks{
		Prestart:        []specs.Hook{{Path: "/0"}},
		CreateRuntime:   []specs.Hook{{Path: "/1"}},
		CreateContainer: []specs.Hook{{Path: "/2"}},
		StartContainer:  []specs.Hook{{Path: "/3"}},
		Poststart:       []specs.Hook{{Path: "/4"}},
		Poststop:        []specs.Hook{{Path: "/5"}},
	}
	for i, k := range []Kind{Prestart, CreateRuntime, CreateContainer, StartContainer, Poststart, Poststop} {
		if got := k.From(h); len(got) != 1 || got[0].Path != "/"+strconv.Itoa(i) {
			t.Errorf("%s.From = %v", k, got)
		}
		if got := k.From(nil); got != nil {
			t.Errorf("%s.From(nil) = %v", k, got)
		}
	}
	if err := Run("poststopp", []specs.Hook{{Path: "/bin/true"}}, testState(t)); err == nil || !strings.Contains(err.Error(), `unknown hook kind "poststopp"`) {
		t.Errorf("unknown kind: %v", err)
	}
	if err := Run(Poststart, []specs.Hook{{Path: "/bin/true"}}, nil); err == nil {
		t.Error("nil state: no error")
	}
	if err := Run(Poststart, nil, nil); err != nil {
		t.Errorf("no hooks: %v", err)
	}
}

func TestBadHooks(t *testing.T) {
	dir := t.TempDir()
	err := Run(CreateContainer, []specs.Hook{{Path: "/nonexistent/hook"}}, testState(t))
	if err == nil || !errors.Is(err, fs.ErrNotExist) ||
		!strings.HasPrefix(err.Error(), "error running createContainer hook #0: /nonexistent/hook: ") ||
		!strings.Contains(err.Error(), "no such file or directory") {
		t.Errorf("missing path: %v", err)
	}

	rel := logger(t, dir, "rel")
	t.Chdir(dir)
	err = Run(CreateRuntime, []specs.Hook{{Path: "rel"}}, testState(t))
	if err == nil || err.Error() != "error running createRuntime hook #0: rel: path must be absolute" {
		t.Errorf("relative path: %v", err)
	}
	zero := 0
	err = Run(CreateRuntime, []specs.Hook{{Path: rel, Timeout: &zero}}, testState(t))
	if err == nil || !strings.Contains(err.Error(), "timeout must be greater than zero") {
		t.Errorf("zero timeout: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "order")); !errors.Is(err, fs.ErrNotExist) {
		t.Error("an invalid hook ran")
	}

	notExec := filepath.Join(dir, "notexec")
	if err := os.WriteFile(notExec, []byte("#!/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	err = Run(CreateRuntime, []specs.Hook{{Path: notExec}}, testState(t))
	if err == nil || !errors.Is(err, fs.ErrPermission) {
		t.Errorf("not executable: %v", err)
	}
}

// dead reports whether pid is gone or a zombie.
func dead(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] == 'Z' || s[i+2] == 'X'
}

func waitDead(t *testing.T, what string, pid int) {
	t.Helper()
	for end := time.Now().Add(5 * time.Second); time.Now().Before(end); time.Sleep(10 * time.Millisecond) {
		if dead(pid) {
			return
		}
	}
	t.Errorf("%s (pid %d) still alive", what, pid)
	syscall.Kill(pid, syscall.SIGKILL)
}

func readPid(t *testing.T, p string) int {
	t.Helper()
	pid, err := strconv.Atoi(strings.TrimSpace(read(t, p)))
	if err != nil {
		t.Fatal(err)
	}
	return pid
}

func TestTimeoutKillsGroup(t *testing.T) {
	dir := t.TempDir()
	slow := script(t, dir, "slow", fmt.Sprintf(`echo $$ > '%[1]s/hook'
/usr/bin/sleep 100 &
echo $! > '%[1]s/child'
echo about to hang >&2
/usr/bin/sleep 100
`, dir))
	one := 1
	hs := []specs.Hook{{Path: slow, Timeout: &one}, {Path: logger(t, dir, "after")}}
	start := time.Now()
	err := Run(StartContainer, hs, testState(t))
	took := time.Since(start)
	if err == nil {
		t.Fatal("no error from a hook past its timeout")
	}
	want := fmt.Sprintf("error running startContainer hook #0: %s: timed out after 1s: about to hang", slow)
	if err.Error() != want {
		t.Errorf("error = %q\nwant    %q", err, want)
	}
	if !errors.Is(err, ErrTimeout) {
		t.Errorf("error %v does not match ErrTimeout", err)
	}
	if took < time.Second || took > 3*time.Second {
		t.Errorf("Run took %v, want about 1s", took)
	}
	waitDead(t, "hook", readPid(t, filepath.Join(dir, "hook")))
	waitDead(t, "hook's child", readPid(t, filepath.Join(dir, "child")))
	if _, err := os.Stat(filepath.Join(dir, "order")); !errors.Is(err, fs.ErrNotExist) {
		t.Error("the hook after the timed-out one ran")
	}

	// Within its timeout a hook just runs.
	ten := 10
	if err := Run(StartContainer, []specs.Hook{{Path: logger(t, dir, "quick"), Timeout: &ten}}, testState(t)); err != nil {
		t.Errorf("hook within its timeout: %v", err)
	}
}

func TestLeftoverProcessDoesNotBlock(t *testing.T) {
	dir := t.TempDir()
	// The background sleep keeps the hook's stdout and stderr open.
	h := script(t, dir, "bg", fmt.Sprintf("/usr/bin/sleep 30 &\necho $! > '%s/child'\nexit 0\n", dir))
	start := time.Now()
	err := Run(CreateRuntime, []specs.Hook{{Path: h}}, testState(t))
	took := time.Since(start)
	child := readPid(t, filepath.Join(dir, "child"))
	syscall.Kill(child, syscall.SIGKILL)
	if err != nil {
		t.Errorf("hook that exits 0 but leaves a process: %v", err)
	}
	if took > waitDelay+time.Second {
		t.Errorf("Run took %v", took)
	}
}

func TestOnlyStdFds(t *testing.T) {
	dir := t.TempDir()
	// An fd without O_CLOEXEC, as one inherited from a careless parent.
	leak, err := unix.Open("/dev/null", unix.O_RDONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(leak)
	f, err := os.Open(dir) // and an ordinary (O_CLOEXEC) one
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()

	out := filepath.Join(dir, "fds")
	// ls lists its own fds; the one it reads /proc/self/fd through is
	// dropped below.
	h := specs.Hook{Path: "/bin/sh", Args: []string{"sh", "-c", "exec /usr/bin/ls -l /proc/self/fd/ > '" + out + "'"}}
	if err := Run(CreateRuntime, []specs.Hook{h}, testState(t)); err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile(`(\d+) -> (.*)$`)
	fds := map[string]string{}
	for _, l := range lines(read(t, out)) {
		m := re.FindStringSubmatch(l)
		if m == nil {
			continue
		}
		if regexp.MustCompile(`^/proc/\d+/fd$`).MatchString(m[2]) {
			continue // ls's own directory fd
		}
		fds[m[1]] = m[2]
	}
	if len(fds) != 3 || !strings.HasPrefix(fds["0"], "pipe:") || fds["1"] != out || !strings.HasPrefix(fds["2"], "pipe:") {
		t.Errorf("hook's fds = %v, want only 0 (pipe), 1, 2 (pipe)\n%s", fds, read(t, out))
	}
	// Documented side effect: our fds are now close-on-exec.
	if fl, err := unix.FcntlInt(uintptr(leak), unix.F_GETFD, 0); err != nil || fl&unix.FD_CLOEXEC == 0 {
		t.Errorf("leaked fd flags %#x, %v: want FD_CLOEXEC", fl, err)
	}
}

func TestOutputTail(t *testing.T) {
	dir := t.TempDir()
	h := script(t, dir, "loud", `/usr/bin/head -c 100000 /dev/zero | /usr/bin/tr '\0' x >&2
echo THE-END >&2
/usr/bin/head -c 100000 /dev/zero | /usr/bin/tr '\0' y
exit 7
`)
	err := Run(CreateRuntime, []specs.Hook{{Path: h}}, testState(t))
	var he *Error
	if !errors.As(err, &he) {
		t.Fatalf("error = %v", err)
	}
	if len(he.Stderr) > outputTail+3 || !bytes.HasPrefix(he.Stderr, []byte("...xxx")) || !bytes.HasSuffix(he.Stderr, []byte("xxxTHE-END\n")) {
		t.Errorf("stderr tail: %d bytes, %.20q...%q", len(he.Stderr), he.Stderr, he.Stderr[max(0, len(he.Stderr)-20):])
	}
	if len(he.Stdout) != outputTail+3 || bytes.Count(he.Stdout[3:], []byte("y")) != outputTail {
		t.Errorf("stdout tail: %d bytes", len(he.Stdout))
	}
	if !strings.HasPrefix(err.Error(), fmt.Sprintf("error running createRuntime hook #0: %s: exit status 7: ...xxx", h)) {
		t.Errorf("error = %.100q", err)
	}
}

func TestTailWriter(t *testing.T) {
	var tl tail
	var all []byte
	for i := range 3000 {
		s := []byte(strconv.Itoa(i) + ",")
		all = append(all, s...)
		tl.Write(s)
	}
	if want := append([]byte("..."), all[len(all)-outputTail:]...); !bytes.Equal(tl.bytes(), want) {
		t.Errorf("tail of small writes differs")
	}
	var short tail
	short.Write([]byte("abc"))
	if string(short.bytes()) != "abc" {
		t.Errorf("short tail = %q", short.bytes())
	}
}

func TestBigStateUnread(t *testing.T) {
	// A state larger than a pipe buffer, to a hook that never reads stdin.
	dir := t.TempDir()
	st := testState(t)
	st.Annotations["big"] = strings.Repeat("z", 1<<20)
	if err := Run(CreateRuntime, []specs.Hook{{Path: script(t, dir, "noread", "exit 0\n")}}, st); err != nil {
		t.Errorf("hook not reading a big state: %v", err)
	}
	if err := Run(CreateRuntime, []specs.Hook{{Path: logger(t, dir, "reads")}}, st); err != nil {
		t.Fatal(err)
	}
	want, _ := json.Marshal(st)
	if got := read(t, filepath.Join(dir, "reads.stdin")); got != string(want) {
		t.Errorf("big state: read %d bytes, want %d", len(got), len(want))
	}
}

func TestPrepare(t *testing.T) {
	dir := t.TempDir()
	marker := filepath.Join(dir, "wrapped")
	// A prepare that wraps the hook the way an "enter the container" helper
	// would: run something first, then exec the original argv. It also
	// replaces SysProcAttr, dropping Setpgid.
	wrap := func(cmd *exec.Cmd) error {
		cmd.Args = append([]string{"wrapper", "-c", `echo "$0" > '` + marker + `'; unset PWD; exec "$0" "$@"`, cmd.Path}, cmd.Args[1:]...)
		cmd.Path = "/bin/sh"
		cmd.SysProcAttr = &syscall.SysProcAttr{}
		return nil
	}
	h := script(t, dir, "h", fmt.Sprintf(`/usr/bin/cp /proc/$$/stat '%[1]s/stat'
for a in "$@"; do printf '%%s\n' "$a"; done > '%[1]s/args'
/usr/bin/tr '\0' '\n' < /proc/$$/environ > '%[1]s/env'
/usr/bin/cat > '%[1]s/stdin'
`, dir))
	st := testState(t)
	hk := specs.Hook{Path: h, Args: []string{"h", "x"}, Env: []string{"K=v"}}
	if err := RunIn(CreateContainer, []specs.Hook{hk}, st, wrap); err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(read(t, marker)); got != h {
		t.Errorf("wrapper saw %q, want %q", got, h)
	}
	if got := lines(read(t, filepath.Join(dir, "args"))); !slices.Equal(got, []string{"x"}) {
		t.Errorf("args = %q", got)
	}
	if got := lines(read(t, filepath.Join(dir, "env"))); !slices.Equal(got, []string{"K=v"}) {
		t.Errorf("env = %q", got)
	}
	want, _ := json.Marshal(st)
	if got := read(t, filepath.Join(dir, "stdin")); got != string(want) {
		t.Errorf("stdin = %s", got)
	}
	// Still the leader of its own process group.
	stat := read(t, filepath.Join(dir, "stat"))
	f := strings.Fields(stat[strings.LastIndexByte(stat, ')')+2:])
	pid := strings.Fields(stat)[0]
	if len(f) < 3 || f[2] != pid {
		t.Errorf("hook pid %s in process group %v, want its own", pid, f)
	}

	// A failing prepare fails the hook, which does not run.
	boom := errors.New("cannot enter")
	err := RunIn(StartContainer, []specs.Hook{{Path: logger(t, dir, "never")}}, st, func(*exec.Cmd) error { return boom })
	if !errors.Is(err, boom) || !strings.HasPrefix(err.Error(), "error running startContainer hook #0: ") || !strings.HasSuffix(err.Error(), ": prepare: cannot enter") {
		t.Errorf("failing prepare: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "order")); !errors.Is(err, fs.ErrNotExist) {
		t.Error("hook ran although prepare failed")
	}
}
