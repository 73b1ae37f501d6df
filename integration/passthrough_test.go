package integration

import (
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// NOTIFY_SOCKET: the container's READY=1 reaches our socket, with MAINPID.
func TestNotifySocket(t *testing.T) {
	e := newEnv(t, "/sdnotify")
	b, err := os.ReadFile(sdnotify)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(e.spec().Root.Path, "sdnotify"), b, 0o755); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(t.TempDir(), "notify.sock")
	l, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	env := []string{"NOTIFY_SOCKET=" + sock}
	if r := e.cfdCmd(nil, env, nil, "create", "--bundle", e.bundle, e.id); r.code != 0 {
		t.Fatalf("create: %v", r)
	}
	if r := e.cfdCmd(nil, env, nil, "start", e.id); r.code != 0 {
		t.Fatalf("start: %v", r)
	}
	l.SetReadDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 256)
	n, err := l.Read(buf)
	if err != nil {
		t.Fatal(err)
	}
	pid := e.state()["pid"].(float64)
	if got := string(buf[:n]); got != "READY=1\nMAINPID="+strconv.Itoa(int(pid))+"\n" {
		t.Errorf("notify message %q", got)
	}
}

// LISTEN_FDS and --preserve-fds: the fds and the environment reach the
// process.
func TestListenFdsAndPreserveFds(t *testing.T) {
	e := newEnv(t, "sh", "-c", `echo "$LISTEN_FDS $LISTEN_PID"; cat <&3; cat <&4; ls /proc/self/fd | wc -l`)
	files := make([]*os.File, 2)
	for i, text := range []string{"listen-fd\n", "preserved-fd\n"} {
		r, w, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(w, text)
		w.Close()
		defer r.Close()
		files[i] = r
	}
	r := e.cfdCmd(nil, []string{"LISTEN_FDS=1"}, files, "run", "--preserve-fds", "1", "--bundle", e.bundle, e.id)
	// ls sees 0-4 and its own directory fd.
	if r.code != 0 || r.stdout != "1 1\nlisten-fd\npreserved-fd\n6\n" {
		t.Errorf("run with LISTEN_FDS=1 --preserve-fds 1: %v", r)
	}
}

func TestNoPivot(t *testing.T) {
	e := newEnv(t, "sh", "-c", "ls /; cat /proc/1/cmdline")
	r := e.cfd("run", "--no-pivot", "--bundle", e.bundle, e.id)
	if r.code != 0 || !strings.Contains(r.stdout, "bin") {
		t.Errorf("run --no-pivot: %v", r)
	}
}

// With --no-pivot the host's proc stays in the container's mount
// namespace, outside the chroot; where it is fully visible, a process that
// makes a user and pid namespace may mount a fresh, unmasked proc and write
// /proc/sysrq-trigger (runc's no_pivot.bats). The runtime detaches it
// first, so the mount is refused.
func TestNoPivotNoBareProc(t *testing.T) {
	e := newEnv(t, "unshare", "-mrpf", "sh", "-c", "mount -t proc none /proc && echo mounted")
	s := e.spec()
	s.Process.Capabilities.Bounding = append(s.Process.Capabilities.Bounding, "CAP_SETFCAP")
	s.Process.Capabilities.Permitted = append(s.Process.Capabilities.Permitted, "CAP_SETFCAP")
	e.writeSpec(s)
	r := e.cfd("run", "--no-pivot", "--bundle", e.bundle, e.id)
	if r.code == 0 || strings.Contains(r.stdout, "mounted") || !strings.Contains(r.stdout+r.stderr, "ermission denied") {
		t.Errorf("a fresh proc mount under --no-pivot: %v, want it refused", r)
	}
}

func TestExecCapsAndPrivs(t *testing.T) {
	e := newEnv(t, "sleep", "100")
	e.ok("run", "-d", "-b", e.bundle, e.id)
	out := e.ok("exec", "--cap", "CAP_SYS_ADMIN", "--no-new-privs", "-g", "44", "-g", "55", e.id,
		"sh", "-c", "grep -E '^(CapInh|CapEff|NoNewPrivs)' /proc/self/status; id -G")
	// The default spec's caps (AUDIT_WRITE, KILL, NET_BIND_SERVICE) plus
	// SYS_ADMIN; never inheritable (CVE-2022-29162).
	want := "CapInh:\t0000000000000000\nCapEff:\t0000000020200420\nNoNewPrivs:\t1\n0 44 55\n"
	if out != want {
		t.Errorf("exec --cap --no-new-privs -g:\n%q\nwant\n%q", out, want)
	}
}

func TestGlobalFlags(t *testing.T) {
	e := newEnv(t, "true")
	// The systemd driver wants "slice:prefix:name", not a cgroupfs path
	// (systemd itself: systemd_test.go).
	if r := e.cfd("--systemd-cgroup", "create", "--bundle", e.bundle, e.id); r.code == 0 || !strings.Contains(r.stderr, "linux.cgroupsPath") || !strings.Contains(r.stderr, "the systemd driver wants") {
		t.Errorf("--systemd-cgroup with a cgroupfs path: %v", r)
	}
	if r := e.cfd("state", e.id); r.code == 0 {
		t.Errorf("state after a refused create: %v", r)
	}
	if r := e.cfd("--log-format", "xml", "list"); r.code == 0 || !strings.Contains(r.stderr, "log-format") {
		t.Errorf("--log-format xml: %v", r)
	}
	e.ok("--debug", "--rootless", "false", "list")
}

func TestExecPreserveFds(t *testing.T) {
	e := newEnv(t, "sleep", "100")
	e.ok("run", "-d", "-b", e.bundle, e.id)
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(w, "through fd 3\n")
	w.Close()
	defer r.Close()
	res := e.cfdCmd(nil, nil, []*os.File{r}, "exec", "--preserve-fds", "1", e.id, "sh", "-c", "cat <&3; ls /proc/self/fd | wc -l")
	if res.code != 0 || res.stdout != "through fd 3\n5\n" {
		t.Errorf("exec --preserve-fds 1: %v", res)
	}
}

// --debug adds the runtime's steps at level debug: to stderr, or to --log
// (and then not to stderr), in the log's format.
func TestDebugLog(t *testing.T) {
	e := newEnv(t, "true")
	r := e.cfd("--debug", "run", "-b", e.bundle, e.id)
	if r.code != 0 || !strings.Contains(r.stderr, "level=debug") || !strings.Contains(r.stderr, "init is pid") {
		t.Errorf("--debug run: %v, want debug lines on stderr", r)
	}
	log := filepath.Join(t.TempDir(), "log.json")
	r = e.cfd("--debug", "--log", log, "--log-format", "json", "run", "-b", e.bundle, e.id)
	b, err := os.ReadFile(log)
	if r.code != 0 || strings.Contains(r.stderr, "debug") || err != nil || !strings.Contains(string(b), `"level":"debug"`) {
		t.Errorf("--debug --log: %v, log %q (%v)", r, b, err)
	}
	if r := e.cfd("run", "-b", e.bundle, e.id); strings.Contains(r.stderr, "debug") {
		t.Errorf("run without --debug: %v", r)
	}
	// The seccomp filter's flags, as runc's --debug counts them.
	s := e.spec()
	s.Linux.Seccomp = &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Flags: []specs.LinuxSeccompFlag{specs.LinuxSeccompFlagLog, "SECCOMP_FILTER_FLAG_TSYNC"}}
	e.writeSpec(s)
	if r := e.cfd("--debug", "run", "-b", e.bundle, e.id); !strings.Contains(r.stderr, `msg="seccomp filter flags: 2"`) {
		t.Errorf("--debug run with seccomp flags LOG and TSYNC: %v", r)
	}
}
