package integration

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/containerfd/containerfd/libcontainerfd/kernfeat"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// What a process sees of itself (its fds, environment, cwd, session,
// terminal and CPUs) is the same whichever way it starts.

// eachStartPath runs f once for every way the runtime starts a process:
// directly, through the Go stage, and without the trampoline (a direct
// child that cannot exec it starts through the stage). The commands f
// runs inherit the path's environment.
func eachStartPath(t *testing.T, f func(t *testing.T)) {
	for _, p := range []struct{ name, key, value string }{
		{"direct", "", ""},
		{"stage", envStart, "stage"},
		{"no-trampoline", kernfeat.EnvDisable, os.Getenv(kernfeat.EnvDisable) + ",memfd-exec"},
	} {
		t.Run(p.name, func(t *testing.T) {
			if p.name != "stage" && stageForced() {
				t.Skip(envStart + "=stage for the whole run: the stage subtest is this one")
			}
			if p.key != "" {
				t.Setenv(p.key, p.value)
			}
			f(t)
		})
	}
}

// ownFDs is what `ls /proc/self/fd` prints in a process that has only its
// stdio: the fourth is the directory ls reads.
const ownFDs = "0\n1\n2\n3\n"

// A seccomp profile written before close_range(2) (Linux 5.9) existed,
// here runtime-tools v0.9.0's default (Docker's allow-list of 2017, with
// defaultAction SCMP_ACT_ERRNO), as the OCI validation suite's configs
// carry it: its filter answers the newer call with ENOSYS. Every process
// starts under it, with the filter loaded early (no no_new_privs) and
// last, and the program sees no fd but its own.
func TestSeccompProfileBeforeCloseRange(t *testing.T) {
	if runtime.GOARCH != "amd64" {
		t.Skip("the profile is runtime-tools' for amd64 (x86_64, x86, x32)")
	}
	b, err := os.ReadFile("testdata/seccomp-runtime-tools.json")
	if err != nil {
		t.Fatal(err)
	}
	var profile specs.LinuxSeccomp
	if err := json.Unmarshal(b, &profile); err != nil {
		t.Fatal(err)
	}
	for _, name := range profile.Syscalls[0].Names {
		if name == "close_range" {
			t.Fatal("the profile allows close_range")
		}
	}
	eachStartPath(t, func(t *testing.T) {
		for _, nnp := range []bool{false, true} {
			e := newEnv(t, "sh", "-c", "ls /proc/self/fd")
			s := e.spec()
			s.Process.NoNewPrivileges = nnp
			s.Linux.Seccomp = &profile
			e.writeSpec(s)
			if r := e.cfd("run", "-b", e.bundle, e.id); r.code != 0 || r.stdout != ownFDs {
				t.Errorf("no_new_privs %v: run: %v, want stdout %q", nnp, r, ownFDs)
			}

			s.Process.Args = []string{"sh", "-c", "ls /proc/self/fd >/fds; exec sleep 100"}
			e.writeSpec(s)
			e.ok("create", "-b", e.bundle, e.id)
			e.ok("start", e.id)
			fds := filepath.Join(s.Root.Path, "fds")
			waitFor(t, "init's ls", func() bool { b, _ := os.ReadFile(fds); return strings.HasSuffix(string(b), "3\n") })
			if b, _ := os.ReadFile(fds); string(b) != ownFDs {
				t.Errorf("no_new_privs %v: create+start: init's fds %q, want %q", nnp, b, ownFDs)
			}
			if r := e.cfd("exec", e.id, "ls", "/proc/self/fd"); r.code != 0 || r.stdout != ownFDs {
				t.Errorf("no_new_privs %v: exec: %v, want stdout %q", nnp, r, ownFDs)
			}
			e.ok("delete", "--force", e.id)
			os.Remove(fds)
		}
	})
}

// HOME, when the config's env has none (or an empty one), is the user's
// from /etc/passwd in the container's root, else "/", as runc sets it; an
// /etc/passwd that is a symlink out of the root is read inside it.
func TestHomeFromPasswd(t *testing.T) {
	eachStartPath(t, func(t *testing.T) {
		e := newEnv(t, "sh", "-c", "env | grep ^HOME=")
		s := e.spec()
		passwd := filepath.Join(s.Root.Path, "etc/passwd")
		f, err := os.OpenFile(passwd, os.O_APPEND|os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		f.WriteString("user:x:1000:1000::/home/user:/bin/sh\n")
		f.Close()
		base := s.Process.Env
		for _, tc := range []struct {
			uid  uint32
			env  []string
			want string
		}{
			{0, nil, "/root"},
			{1000, nil, "/home/user"},
			{4242, nil, "/"}, // no entry
			{1000, []string{"HOME=/set"}, "/set"},
			{1000, []string{"HOME="}, "/home/user"},
			// The last of a variable set twice wins, as in runc.
			{1000, []string{"HOME=/override", "HOME="}, "/home/user"},
			{1000, []string{"HOME=", "HOME=/last"}, "/last"},
		} {
			s.Process.User = specs.User{UID: tc.uid, GID: tc.uid}
			s.Process.Env = append(append([]string(nil), base...), tc.env...)
			e.writeSpec(s)
			want := "HOME=" + tc.want + "\n"
			if r := e.cfd("run", "-b", e.bundle, e.id); r.stdout != want {
				t.Errorf("init as %d with %q: %v, want stdout %q", tc.uid, tc.env, r, want)
			}
		}

		s.Process.User = specs.User{}
		s.Process.Env = base
		s.Process.Args = []string{"sleep", "100"}
		e.writeSpec(s)
		e.ok("run", "-d", "-b", e.bundle, e.id)
		for _, tc := range []struct {
			args []string
			want string
		}{
			{nil, "/root"},
			{[]string{"--user", "1000:1000"}, "/home/user"},
			{[]string{"--user", "4242"}, "/"},
			{[]string{"--env", "HOME=/set"}, "/set"},
		} {
			args := append(append([]string{"exec"}, tc.args...), e.id, "sh", "-c", "env | grep ^HOME=")
			if r := e.cfd(args...); r.stdout != "HOME="+tc.want+"\n" {
				t.Errorf("exec %q: %v, want HOME=%s", tc.args, r, tc.want)
			}
		}
		// A link out of the root resolves inside it, where there is no
		// such file.
		outside := filepath.Join(t.TempDir(), "passwd")
		if err := os.WriteFile(outside, []byte("root:x:0:0::/escaped:/bin/sh\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Remove(passwd); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(outside, passwd); err != nil {
			t.Fatal(err)
		}
		if r := e.cfd("exec", e.id, "sh", "-c", "env | grep ^HOME="); r.stdout != "HOME=/\n" {
			t.Errorf("exec with /etc/passwd a link out of the root: %v, want HOME=/", r)
		}
	})
}

// A process.cwd the image does not have is made, as runc makes it: mode
// 0755, owned by root, before the root goes read-only. One that is not a
// directory fails the start, naming the field, and leaves nothing behind.
func TestCwdMade(t *testing.T) {
	eachStartPath(t, func(t *testing.T) {
		e := newEnv(t, "sh", "-c", "pwd; stat -c '%a %u %g' .")
		s := e.spec()
		s.Process.Cwd = "/no/such/dir"
		s.Process.User = specs.User{UID: 1000, GID: 1000}
		s.Root.Readonly = true
		e.writeSpec(s)
		if r := e.cfd("run", "-b", e.bundle, e.id); r.code != 0 || r.stdout != "/no/such/dir\n755 0 0\n" {
			t.Errorf("run with a missing cwd: %v", r)
		}
		if err := os.RemoveAll(filepath.Join(s.Root.Path, "no")); err != nil {
			t.Fatal(err)
		}

		s.Process.Cwd = "/etc/passwd/dir"
		e.writeSpec(s)
		if r := e.cfd("run", "-b", e.bundle, e.id); r.code == 0 || !strings.Contains(r.stderr, "process.cwd") || !strings.Contains(r.stderr, "not a directory") {
			t.Errorf("run with a cwd under a file: %v", r)
		}
		if r := e.cfd("state", e.id); r.code == 0 {
			t.Errorf("a failed run left its container: %v", r)
		}
	})
}

// A process's stdio becomes its user's, as runc makes it (all but
// /dev/null), so that a program that is not root can open /dev/stdout
// (a file of root's, mode 0600, here; for `run` in the foreground, a pipe
// of the container's root, as runc's).
func TestStdioOwner(t *testing.T) {
	const script = `stat -L -c %u /proc/self/fd/1 /proc/self/fd/0; echo reopened >>/dev/stdout`
	var null unix.Stat_t // exec's stdin, left as it is
	if err := unix.Stat("/dev/null", &null); err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("1000\n%d\nreopened\n", null.Uid)
	eachStartPath(t, func(t *testing.T) {
		e := newEnv(t, "sh", "-c", script)
		s := e.spec()
		s.Process.User = specs.User{UID: 1000, GID: 1000}
		e.writeSpec(s)
		if r, want := e.cfd("run", "-b", e.bundle, e.id), "1000\n1000\nreopened\n"; r.stdout != want {
			t.Errorf("init: %v, want stdout %q", r, want)
		}
		s.Process.Args = []string{"sleep", "100"}
		e.writeSpec(s)
		e.ok("run", "-d", "-b", e.bundle, e.id)
		if r := e.cfd("exec", e.id, "sh", "-c", script); r.stdout != want {
			t.Errorf("exec: %v, want stdout %q", r, want)
		}
		// Through stdin the host's /dev/null was the process's: it must
		// stay whose it was (runc's exec.bats checks that it stays 0:0).
		var after unix.Stat_t
		if err := unix.Stat("/dev/null", &after); err != nil || after.Uid != null.Uid || after.Gid != null.Gid {
			t.Errorf("the host's /dev/null is now %d:%d (was %d:%d): %v", after.Uid, after.Gid, null.Uid, null.Gid, err)
		}
	})
}

// sessionOf is what `sessionOf` prints in the shell that runs it: its pid,
// process group and session.
const sessionOf = `cut -d' ' -f1,5,6 /proc/$$/stat`

// leadsSession reports whether out, sessionOf's, shows a process that
// leads its process group and session.
func leadsSession(out string) bool {
	f := strings.Fields(out)
	return len(f) == 3 && f[0] == f[1] && f[1] == f[2]
}

// Every process of the container leads a session and a process group of
// its own (setsid), as runc's do: init and exec'd ones, with a terminal
// (below, TestTerminalOwnerAndONLCR) or without.
func TestSessionLeader(t *testing.T) {
	eachStartPath(t, func(t *testing.T) {
		e := newEnv(t, "sh", "-c", sessionOf)
		if r := e.cfd("run", "-b", e.bundle, e.id); r.stdout != "1 1 1\n" {
			t.Errorf("init: %v, want pid, process group and session 1", r)
		}
		s := e.spec()
		s.Process.Args = []string{"sleep", "100"}
		e.writeSpec(s)
		e.ok("run", "-d", "-b", e.bundle, e.id)
		if r := e.cfd("exec", e.id, "sh", "-c", sessionOf); !leadsSession(r.stdout) {
			t.Errorf("exec: %v, want it to lead its process group and session", r)
		}
	})
}

// A terminal belongs to the process's user (its group stays devpts's, 5),
// as runc chowns it; it is the controlling terminal of the process's own
// session. Where the runtime copies the pty to its caller's terminal (exec
// -t in the foreground), ONLCR is off, as runc turns it off, so that lines
// do not end in "\r\n" there; a pty handed to a console socket keeps the
// kernel's modes, as runc's does.
func TestTerminalOwnerAndONLCR(t *testing.T) {
	const script = `stat -c '%u %g' $(tty); ` + sessionOf + `; echo end`
	eachStartPath(t, func(t *testing.T) {
		e := newEnv(t, "sh", "-c", script+"; sleep 100")
		s := e.spec()
		s.Process.Terminal = true
		s.Process.User = specs.User{UID: 1000, GID: 1000}
		e.writeSpec(s)
		m := e.createOnConsole()
		ptyFd(m, func(fd int) {
			if tio, err := unix.IoctlGetTermios(fd, unix.TCGETS); err != nil || tio.Oflag&unix.ONLCR == 0 {
				t.Errorf("the console socket's pty: ONLCR cleared (%v)", err)
			}
		})
		e.ok("start", e.id)
		out := readUntil(t, m, "end")
		if !strings.Contains(out, "1000 5\r\n1 1 1\r\n") {
			t.Errorf("init's terminal: %q, want it owned by 1000:5 and init to lead its session", out)
		}

		master, peer := openPty(t)
		wait := e.onTerminal(peer, "exec", "-t", "--user", "1000:1000", e.id, "sh", "-c", script)
		out = readUntil(t, master, "end")
		if code := wait(); code != 0 {
			t.Errorf("exec -t: exit %d", code)
		}
		// Our own terminal is raw while the runtime copies to it.
		lines := strings.Split(out, "\n")
		if strings.Contains(out, "\r") || len(lines) < 3 || lines[0] != "1000 5" || !leadsSession(lines[1]) {
			t.Errorf("exec -t in the foreground: %q, want \"1000 5\", a session of its own, no \\r", out)
		}
	})
}

// pinThread pins the calling goroutine's thread to cpu, so that what it
// starts inherits the pinning, until unpin.
func pinThread(t *testing.T, cpu int) (unpin func()) {
	runtime.LockOSThread()
	var was, set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &was); err != nil {
		t.Fatal(err)
	}
	set.Set(cpu)
	if err := unix.SchedSetaffinity(0, &set); err != nil {
		t.Fatal(err)
	}
	return func() {
		unix.SchedSetaffinity(0, &was)
		runtime.UnlockOSThread()
	}
}

// cpusAllowed is a process's Cpus_allowed_list in /proc/<pid>/status.
func cpusAllowed(t *testing.T, pid string) string {
	b, err := os.ReadFile("/proc/" + pid + "/status")
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimPrefix(grepLine(string(b), "Cpus_allowed_list:"), "Cpus_allowed_list:\t")
}

// The caller's CPU affinity does not reach the container: as runc (1.2
// and later) does, a process runs on every CPU its cpuset has, unless
// execCPUAffinity pins it; that is for exec'd processes (the config's, or
// --process's own), not for init (config.md).
func TestCPUAffinityReset(t *testing.T) {
	all := cpusAllowed(t, "thread-self")
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &set); err != nil {
		t.Fatal(err)
	}
	if set.Count() < 2 {
		t.Skipf("needs two CPUs to pin the runtime to one; has %s", all)
	}
	last := 0
	for i := range len(set) * 64 {
		if set.IsSet(i) {
			last = i
		}
	}
	first := 0
	for !set.IsSet(first) {
		first++
	}
	const show = "grep Cpus_allowed_list: /proc/self/status | cut -f2"
	eachStartPath(t, func(t *testing.T) {
		e := newEnv(t, "sh", "-c", show)
		defer pinThread(t, first)()
		if r := e.cfd("run", "-b", e.bundle, e.id); r.stdout != all+"\n" {
			t.Errorf("init of a runtime pinned to CPU %d: %v, want %s", first, r, all)
		}
		s := e.spec()
		s.Process.Args = []string{"sleep", "100"}
		e.writeSpec(s)
		e.ok("run", "-d", "-b", e.bundle, e.id)
		if r := e.cfd("exec", e.id, "sh", "-c", show); r.stdout != all+"\n" {
			t.Errorf("exec by a runtime pinned to CPU %d: %v, want %s", first, r, all)
		}
		e.ok("delete", "--force", e.id)

		s.Process.ExecCPUAffinity = &specs.CPUAffinity{Final: strconv.Itoa(last)}
		e.writeSpec(s)
		e.ok("run", "-d", "-b", e.bundle, e.id)
		if got := cpusAllowed(t, strconv.Itoa(int(e.state()["pid"].(float64)))); got != all {
			t.Errorf("init with execCPUAffinity: on %s, want %s", got, all)
		}
		if r := e.cfd("exec", e.id, "sh", "-c", show); r.stdout != strconv.Itoa(last)+"\n" {
			t.Errorf("exec with the config's execCPUAffinity %d: %v", last, r)
		}
		proc := s.Process
		proc.Args, proc.ExecCPUAffinity = []string{"sh", "-c", show}, nil
		b, err := json.Marshal(proc)
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(e.bundle, "process.json")
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
		if r := e.cfd("exec", "--process", path, e.id); r.stdout != strconv.Itoa(last)+"\n" {
			t.Errorf("exec --process without execCPUAffinity, the config's %d: %v", last, r)
		}
	})
}

// What a config's capabilities ask for and the process cannot get is left
// out with a warning, as runc leaves it out: a name unknown here, and an
// ambient capability that is not inheritable (the kernel raises only
// permitted and inheritable ones).
func TestCapabilityWarnings(t *testing.T) {
	e := newEnv(t, "grep", "CapAmb", "/proc/self/status")
	s := e.spec()
	c := s.Process.Capabilities
	c.Bounding = append(c.Bounding, "CAP_UNKNOWN")
	c.Inheritable = []string{"CAP_KILL"}
	c.Ambient = []string{"CAP_KILL", "CAP_CHOWN"}
	c.Permitted = append(c.Permitted, "CAP_CHOWN")
	e.writeSpec(s)
	r := e.cfd("run", "-b", e.bundle, e.id)
	if r.code != 0 || r.stdout != "CapAmb:\t0000000000000020\n" {
		t.Fatalf("run: %v, want CAP_KILL alone ambient", r)
	}
	for _, w := range []string{`ignoring unknown capability \"CAP_UNKNOWN\" in the bounding set`,
		"can't raise ambient capability CAP_CHOWN: "} {
		if !strings.Contains(r.stderr, "level=warning") || !strings.Contains(r.stderr, w) {
			t.Errorf("run's stderr %q: want a warning %q", r.stderr, w)
		}
	}
}

// A variable set more than once is set once, to its last value, in the
// order of those last ones, as runc (and os/exec) have it.
func TestEnvDedup(t *testing.T) {
	eachStartPath(t, func(t *testing.T) {
		e := newEnv(t, "env")
		s := e.spec()
		s.Process.Env = []string{"ONE=two", "PATH=/usr/bin:/bin", "ONE=", "TWO=a", "TWO=b"}
		e.writeSpec(s)
		if r := e.cfd("run", "-b", e.bundle, e.id); r.stdout != "PATH=/usr/bin:/bin\nONE=\nTWO=b\nHOME=/root\n" {
			t.Errorf("run: %v", r)
		}
	})
}
