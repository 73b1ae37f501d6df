package seccomp

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"
	"unsafe"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// These tests load filters into the real kernel. A filter cannot be
// removed, so each runs in a child: the test binary re-executed with
// helperEnv naming a helper below. The child locks its thread, sets
// no_new_privs (all Load needs; root is not required), loads, makes the
// syscalls on that thread and prints what it saw.

const helperEnv = "CONTAINERFD_SECCOMP_TEST_HELPER"

func TestMain(m *testing.M) {
	if name := os.Getenv(helperEnv); name != "" {
		h, ok := helpers[name]
		if !ok {
			fmt.Fprintf(os.Stderr, "no helper %q\n", name)
			os.Exit(100)
		}
		runtime.LockOSThread()
		// A killed helper must not leave a core file behind.
		_ = unix.Setrlimit(unix.RLIMIT_CORE, &unix.Rlimit{})
		if err := h(); err != nil {
			fmt.Fprintln(os.Stderr, "helper:", err)
			os.Exit(101)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

var helpers = map[string]func() error{}

// load compiles s, sets no_new_privs and loads the filter on this thread.
func load(s *specs.LinuxSeccomp) (int, error) {
	f, err := Compile(s)
	if err != nil {
		return -1, err
	}
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return -1, err
	}
	return f.Load()
}

// runHelper runs a helper in a child and returns its output and exit state.
func runHelper(t *testing.T, name string, env ...string) (stdout, stderr string, state *os.ProcessState) {
	t.Helper()
	if err := unix.Prctl(unix.PR_GET_SECCOMP, 0, 0, 0, 0); err == unix.EINVAL {
		t.Skip("kernel without seccomp")
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(append(os.Environ(), helperEnv+"="+name), env...)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	if _, ok := err.(*exec.ExitError); err != nil && !ok {
		t.Fatal(err)
	}
	return o.String(), e.String(), cmd.ProcessState
}

func wantOutput(t *testing.T, name string, want ...string) {
	t.Helper()
	out, errOut, st := runHelper(t, name)
	if !st.Success() {
		t.Fatalf("helper %s: %v\nstdout:\n%s\nstderr:\n%s", name, st, out, errOut)
	}
	for _, w := range want {
		if !strings.Contains(out, w) {
			t.Errorf("helper %s: output lacks %q:\n%s", name, w, out)
		}
	}
}

func errnoOf(r uintptr, e syscall.Errno) string {
	if e != 0 {
		return unix.ErrnoName(e)
	}
	return fmt.Sprint(r)
}

func mkdirat(path string) string {
	p, _ := unix.BytePtrFromString(path)
	cwd := unix.AT_FDCWD
	r, _, e := unix.RawSyscall(unix.SYS_MKDIRAT, uintptr(cwd), uintptr(unsafe.Pointer(p)), 0o755)
	return errnoOf(r, e)
}

func init() {
	helpers["mkdir-errno"] = func() error {
		if _, err := load(&specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{
			{Names: []string{"mkdir", "mkdirat"}, Action: specs.ActErrno, ErrnoRet: uptr(uint(unix.EMLINK))},
		}}); err != nil {
			return err
		}
		fmt.Println("mkdirat:", mkdirat(filepath.Join(os.TempDir(), "containerfd-seccomp-never")))
		return nil
	}
	// The filter survives execve: a shell's mkdir fails.
	helpers["exec-sh"] = func() error {
		if _, err := load(&specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{
			{Names: []string{"mkdir", "mkdirat"}, Action: specs.ActErrno},
		}}); err != nil {
			return err
		}
		dir := os.Getenv("DIR")
		return syscall.Exec("/bin/sh", []string{"sh", "-c", `mkdir "$DIR/x"; echo "rc=$?"; cat /proc/self/status | grep "^Seccomp"`},
			[]string{"DIR=" + dir, "LC_ALL=C"})
	}
	// Docker's default profile: new syscalls get ENOSYS, refused ones EPERM.
	helpers["moby"] = func() error {
		s, err := loadMoby("amd64", dockerCaps, "6.18")
		if err != nil {
			return err
		}
		if _, err := load(s); err != nil {
			return err
		}
		for _, c := range []struct {
			name string
			nr   uintptr
			a0   uintptr
		}{
			{"nr1000", 1000, 0},
			{"kexec_load", unix.SYS_KEXEC_LOAD, 0},
			{"clone3", unix.SYS_CLONE3, 0},
			{"unshare", unix.SYS_UNSHARE, 0},
			{"getppid", unix.SYS_GETPPID, 0},
			{"personality-query", unix.SYS_PERSONALITY, 0xffffffff},
			{"personality-1", unix.SYS_PERSONALITY, 1},
			{"socket-vsock", unix.SYS_SOCKET, unix.AF_VSOCK},
		} {
			r, _, e := unix.RawSyscall(c.nr, c.a0, 0, 0)
			if e == 0 && c.name == "getppid" {
				r = 1 // any pid
			}
			if e == 0 && c.name == "personality-query" {
				r = 0
			}
			fmt.Printf("%s: %s\n", c.name, errnoOf(r, e))
		}
		return nil
	}
	// Argument conditions on the real registers, high half included.
	helpers["args"] = func() error {
		if _, err := load(&specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{
			{Names: []string{"personality"}, Action: specs.ActErrno, ErrnoRet: uptr(uint(unix.EDOM)),
				Args: []specs.LinuxSeccompArg{{Index: 0, Op: specs.OpNotEqual, Value: 0xffffffff}}},
		}}); err != nil {
			return err
		}
		for _, a := range []uint64{0xffffffff, 8, 1<<32 | 0xffffffff} {
			r, _, e := unix.RawSyscall(unix.SYS_PERSONALITY, uintptr(a), 0, 0)
			if e == 0 {
				r = 0
			}
			fmt.Printf("personality(%#x): %s\n", a, errnoOf(r, e))
		}
		return nil
	}
	helpers["kill-process"] = func() error {
		if _, err := load(&specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{
			{Names: []string{"getppid"}, Action: specs.ActKillProcess},
		}}); err != nil {
			return err
		}
		fmt.Println("loaded")
		unix.RawSyscall(unix.SYS_GETPPID, 0, 0, 0)
		fmt.Println("survived")
		return nil
	}
	helpers["tsync"] = func() error {
		s := &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{
			{Names: []string{"mkdirat"}, Action: specs.ActErrno},
		}}
		if os.Getenv("TSYNC") != "" {
			s.Flags = []specs.LinuxSeccompFlag{"SECCOMP_FILTER_FLAG_TSYNC"}
		}
		if _, err := load(s); err != nil {
			return err
		}
		tasks, err := os.ReadDir("/proc/self/task")
		if err != nil {
			return err
		}
		filtered := 0
		for _, task := range tasks {
			b, err := os.ReadFile("/proc/self/task/" + task.Name() + "/status")
			if err != nil {
				return err
			}
			if strings.Contains(string(b), "\nSeccomp:\t2\n") {
				filtered++
			}
		}
		fmt.Printf("threads=%d filtered=%d\n", len(tasks), filtered)
		return nil
	}
	// A supervisor thread answers the locked thread's mkdirat with 42.
	helpers["notify"] = func() error {
		s := &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{
			{Names: []string{"mkdirat"}, Action: specs.ActNotify},
		}}
		if os.Getenv("KILLABLE") != "" {
			s.Flags = []specs.LinuxSeccompFlag{specs.LinuxSeccompFlagWaitKillableRecv}
		}
		fd, err := load(s)
		if err != nil {
			return err
		}
		if fd < 0 {
			return fmt.Errorf("no listener fd")
		}
		if fl, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err != nil || fl&unix.FD_CLOEXEC == 0 {
			return fmt.Errorf("listener fd flags %#x, %v", fl, err)
		}
		tid := unix.Gettid() // the locked thread, which makes the call
		done := make(chan string, 1)
		go func() { done <- supervise(fd, tid) }()
		fmt.Println("mkdirat:", mkdirat("/nonexistent/containerfd"))
		select {
		case msg := <-done:
			fmt.Println(msg)
		case <-time.After(10 * time.Second):
			return fmt.Errorf("supervisor hung")
		}
		return nil
	}
}

// struct seccomp_notif and seccomp_notif_resp (linux/seccomp.h).
type seccompNotif struct {
	id    uint64
	pid   uint32
	flags uint32
	nr    int32
	arch  uint32
	ip    uint64
	args  [6]uint64
}

type seccompNotifResp struct {
	id    uint64
	val   int64
	error int32
	flags uint32
}

func supervise(fd, tid int) string {
	var n seccompNotif
	for {
		_, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.SECCOMP_IOCTL_NOTIF_RECV, uintptr(unsafe.Pointer(&n)))
		if e == unix.EINTR {
			continue
		}
		if e != 0 {
			return "recv: " + e.Error()
		}
		break
	}
	resp := seccompNotifResp{id: n.id, val: 42}
	if _, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.SECCOMP_IOCTL_NOTIF_SEND, uintptr(unsafe.Pointer(&resp))); e != 0 {
		return "send: " + e.Error()
	}
	return fmt.Sprintf("notified nr=%d arch=%#x mode=%#o from-caller=%v", n.nr, n.arch, n.args[2], int(n.pid) == tid)
}

func TestLoadErrno(t *testing.T) {
	wantOutput(t, "mkdir-errno", "mkdirat: EMLINK")
}

func TestLoadExec(t *testing.T) {
	dir := t.TempDir()
	out, errOut, st := runHelper(t, "exec-sh", "DIR="+dir)
	if !st.Success() || !strings.Contains(out+errOut, "Operation not permitted") || !strings.Contains(out, "rc=1") ||
		!strings.Contains(out, "Seccomp:\t2") {
		t.Fatalf("%v\nstdout:\n%s\nstderr:\n%s", st, out, errOut)
	}
	if _, err := os.Stat(filepath.Join(dir, "x")); err == nil {
		t.Fatal("mkdir succeeded")
	}
}

func TestLoadMobyDefault(t *testing.T) {
	if runtime.GOARCH != "amd64" {
		t.Skip("the helper resolves amd64 numbers")
	}
	wantOutput(t, "moby",
		"nr1000: ENOSYS", "kexec_load: EPERM", "clone3: ENOSYS", "unshare: EPERM", "getppid: 1",
		"personality-query: 0", "personality-1: EPERM", "socket-vsock: EPERM")
}

func TestLoadArgs(t *testing.T) {
	wantOutput(t, "args", "personality(0xffffffff): 0", "personality(0x8): EDOM", "personality(0x1ffffffff): EDOM")
}

func TestLoadKillProcess(t *testing.T) {
	out, errOut, st := runHelper(t, "kill-process")
	ws, ok := st.Sys().(syscall.WaitStatus)
	if !ok || !ws.Signaled() || ws.Signal() != syscall.SIGSYS || strings.Contains(out, "survived") || !strings.Contains(out, "loaded") {
		t.Fatalf("%v\nstdout:\n%s\nstderr:\n%s", st, out, errOut)
	}
}

func TestLoadTSYNC(t *testing.T) {
	out, errOut, st := runHelper(t, "tsync")
	var n, k int
	if _, err := fmt.Sscanf(out, "threads=%d filtered=%d", &n, &k); err != nil || !st.Success() || k != 1 || n < 2 {
		t.Fatalf("without TSYNC: %v %q %q", st, out, errOut)
	}
	t.Setenv("TSYNC", "1")
	out, errOut, st = runHelper(t, "tsync")
	if _, err := fmt.Sscanf(out, "threads=%d filtered=%d", &n, &k); err != nil || !st.Success() || k != n {
		t.Fatalf("with TSYNC: %v %q %q", st, out, errOut)
	}
}

func TestLoadNotify(t *testing.T) {
	want := fmt.Sprintf("notified nr=%d arch=%#x mode=0755 from-caller=true", unix.SYS_MKDIRAT, nativeArch().audit)
	wantOutput(t, "notify", "mkdirat: 42", want)
	if flagAvailable(unix.SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV) {
		t.Setenv("KILLABLE", "1")
		wantOutput(t, "notify", "mkdirat: 42", want)
	}
}

// TestKernelSupport probes without loading anything.
func TestKernelSupport(t *testing.T) {
	if err := unix.Prctl(unix.PR_GET_SECCOMP, 0, 0, 0, 0); err == unix.EINVAL {
		t.Skip("kernel without seccomp")
	}
	var u unix.Utsname
	_ = unix.Uname(&u)
	release := unix.ByteSliceToString(u.Release[:])
	for _, fl := range []string{"SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW", "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"} {
		err := FlagSupported(fl)
		t.Logf("%s on %s: %v", fl, release, err)
		if err != nil && fl != "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV" { // 5.19
			t.Errorf("%s: %v", fl, err)
		}
	}
	if err := FlagSupported("SECCOMP_FILTER_FLAG_FOO"); err == nil {
		t.Error("unknown flag supported")
	}
	if flagAvailable(1 << 20) {
		t.Error("bit 20 reported available")
	}
	if bad := unsupportedFlags(1<<20 | unix.SECCOMP_FILTER_FLAG_LOG); len(bad) != 0 {
		t.Errorf("unsupported %v: unnamed bits are not in the list", bad)
	}
	for _, a := range []string{"SCMP_ACT_KILL_PROCESS", "SCMP_ACT_KILL_THREAD", "SCMP_ACT_TRAP", "SCMP_ACT_ERRNO",
		"SCMP_ACT_TRACE", "SCMP_ACT_LOG", "SCMP_ACT_ALLOW", "SCMP_ACT_NOTIFY"} {
		if ok, err := ActionAvailable(a); !ok || err != nil {
			t.Errorf("%s: %v %v", a, ok, err)
		}
	}
	fs := Features()
	if len(fs.Actions) != 9 || len(fs.Operators) != 7 || len(fs.KnownFlags) != 4 || len(fs.SupportedFlags) < 3 || len(fs.Archs) < 20 {
		t.Errorf("features %+v", fs)
	}
}
