package spawn

import (
	"errors"
	"os"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// runProc starts sh -c script with Proc p and returns its stdout.
func runProc(t *testing.T, p *Proc, script string) string {
	t.Helper()
	p.Path = "/bin/sh"
	return run(t, Attr{Proc: p}, script)
}

func TestProcIdentity(t *testing.T) {
	requireRoot(t)
	var set unix.CPUSet
	set.Set(0)
	p := &Proc{
		Umask:        0o027,
		Cwd:          "/tmp",
		TTY:          -1,
		BoundingDrop: []uintptr{unix.CAP_SYS_ADMIN},
		Groups:       []uint32{5, 7},
		UID:          1000, GID: 1001,
		Caps:       &[2]unix.CapUserData{{Effective: 1 << unix.CAP_KILL, Permitted: 1 << unix.CAP_KILL, Inheritable: 1 << unix.CAP_KILL}},
		Ambient:    []uintptr{unix.CAP_KILL},
		NoNewPrivs: true,
		CloseFrom:  3,
		Affinity:   &set,
	}
	out := runProc(t, p, `umask; pwd; grep -E '^(Uid|Gid|Groups|CapInh|CapPrm|CapEff|CapBnd|CapAmb|NoNewPrivs|Cpus_allowed_list):' /proc/self/status`)
	for _, want := range []string{
		"0027\n/tmp\n",
		"Uid:\t1000\t1000\t1000\t1000",
		"Gid:\t1001\t1001\t1001\t1001",
		"Groups:\t5 7",
		"CapInh:\t0000000000000020",
		"CapPrm:\t0000000000000020",
		"CapEff:\t0000000000000020",
		"CapAmb:\t0000000000000020",
		"NoNewPrivs:\t1",
		"Cpus_allowed_list:\t0\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %q in:\n%s", want, out)
		}
	}
	if strings.Contains(out, "CapBnd:\t000001ffffffffff") || !strings.Contains(out, "CapBnd:") {
		t.Errorf("CAP_SYS_ADMIN still bounded:\n%s", out)
	}
}

func TestProcPrepareRunsBeforeTheProgram(t *testing.T) {
	requireRoot(t)
	var pid int
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	proc, err := Start(&Attr{
		Argv: []string{"sh", "-c", "cat /proc/self/oom_score_adj"}, Env: []string{"PATH=/bin"},
		Files: []int{-1, int(w.Fd()), 2}, CgroupFD: -1,
		Proc: &Proc{Path: "/bin/sh", Cwd: "/", TTY: -1, Umask: 0o22, CloseFrom: 3},
		Prepare: func(p int) error {
			pid = p
			return os.WriteFile("/proc/"+itoa(p)+"/oom_score_adj", []byte("123"), 0)
		},
	})
	w.Close()
	if err != nil {
		t.Fatal(err)
	}
	out, _ := readAll(r)
	wait(t, proc)
	if pid != proc.Pid || strings.TrimSpace(out) != "123" {
		t.Errorf("Prepare saw pid %d (child %d); the program read oom_score_adj %q, want 123", pid, proc.Pid, out)
	}
}

func TestProcStepFailureIsReported(t *testing.T) {
	requireRoot(t)
	for _, tc := range []struct {
		p    Proc
		step string
		err  error
	}{
		{Proc{Path: "/bin/true", Cwd: "/no/such/dir", TTY: -1}, "chdir to cwd", unix.ENOENT},
		{Proc{Path: "/no/such/program", Cwd: "/", TTY: -1}, "execve", unix.ENOENT},
		{Proc{Path: "/bin/true", Cwd: "/", TTY: -1, BoundingDrop: []uintptr{1000}}, "drop from the bounding set", unix.EINVAL},
	} {
		tc.p.CloseFrom = 3
		_, err := Start(&Attr{Argv: []string{"x"}, CgroupFD: -1, Proc: &tc.p})
		var ce *ChildError
		if !errors.As(err, &ce) || ce.Step != tc.step || !errors.Is(err, tc.err) {
			t.Errorf("%+v: err = %v, want step %q and %v", tc.p, err, tc.step, tc.err)
		}
	}
}

// gated starts sh -c script behind a Gate that also makes a proc mount in
// the child's new pid namespace, and returns the child, the gate's socket,
// and the path of its listener.
func gated(t *testing.T, p *Proc, script string, stdout int) (*Process, int, string) {
	t.Helper()
	sp, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(sp[0]) })
	defer unix.Close(sp[1])
	ln, err := unix.Socket(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(ln)
	addr := t.TempDir() + "/start.sock"
	if err := unix.Bind(ln, &unix.SockaddrUnix{Name: addr}); err != nil {
		t.Fatal(err)
	}
	if err := unix.Listen(ln, 1); err != nil {
		t.Fatal(err)
	}
	proc, err := Start(&Attr{
		Argv: []string{"sh", "-c", script}, Env: []string{"PATH=/bin"},
		Files:      []int{-1, stdout, 2},
		CgroupFD:   -1,
		Cloneflags: unix.CLONE_NEWPID | unix.CLONE_NEWNS,
		Proc:       p,
		Gate: &Gate{Sock: sp[1], Listener: ln, Order: []byte("run"),
			Mount: &NewMount{Type: "proc", Source: "proc", Options: []string{"hidepid=1"}, Attr: unix.MOUNT_ATTR_NOSUID}},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		unix.PidfdSendSignal(proc.Pidfd, unix.SIGKILL, nil, 0)
		var ws unix.WaitStatus
		unix.Wait4(proc.Pid, &ws, 0, nil)
		unix.Close(proc.Pidfd)
	})
	return proc, sp[0], addr
}

func connectRun(t *testing.T, addr string) int {
	t.Helper()
	conn, err := unix.Socket(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(conn) })
	if err := unix.Connect(conn, &unix.SockaddrUnix{Name: addr}); err != nil {
		t.Fatal(err)
	}
	if _, err := unix.Write(conn, []byte("run")); err != nil {
		t.Fatal(err)
	}
	return conn
}

func TestGate(t *testing.T) {
	requireRoot(t)
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	proc, sock, addr := gated(t, &Proc{Cwd: "/", TTY: -1, Umask: 0o22, CloseFrom: 3}, "echo $$ ran", int(w.Fd()))
	w.Close()

	// The proc mount comes first, made in the child's pid namespace.
	buf, oob := make([]byte, 1), make([]byte, unix.CmsgSpace(4))
	_, oobn, _, _, err := unix.Recvmsg(sock, buf, oob, unix.MSG_CMSG_CLOEXEC)
	if err != nil {
		t.Fatal(err)
	}
	msgs, _ := unix.ParseSocketControlMessage(oob[:oobn])
	fds, err := unix.ParseUnixRights(&msgs[0])
	if err != nil || len(fds) != 1 {
		t.Fatalf("mount fd: %v %v", fds, err)
	}
	defer unix.Close(fds[0])
	var sfs unix.Statfs_t
	if err := unix.Fstatfs(fds[0], &sfs); err != nil || sfs.Type != unix.PROC_SUPER_MAGIC {
		t.Fatalf("mount is not proc: %#x %v", sfs.Type, err)
	}
	fd, err := unix.Openat(fds[0], "1/comm", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatalf("pid 1 of the new namespace in its proc: %v", err)
	}
	unix.Close(fd)

	// Held at the gate until told the path and given the order.
	if _, err := unix.Write(sock, []byte("/bin/sh")); err != nil {
		t.Fatal(err)
	}
	var ws unix.WaitStatus
	if wpid, _ := unix.Wait4(proc.Pid, &ws, unix.WNOHANG, nil); wpid != 0 {
		t.Fatalf("child ran before the order: %v", ws)
	}
	conn := connectRun(t, addr)
	out, _ := readAll(r)
	if out != "1 ran\n" {
		t.Errorf("output %q, want \"1 ran\\n\"", out)
	}
	if n, err := unix.Read(conn, make([]byte, 16)); n != 0 || err != nil {
		t.Errorf("exec should close the connection silently: %d %v", n, err)
	}
}

func TestGateReportsFailureOnConnection(t *testing.T) {
	requireRoot(t)
	_, sock, addr := gated(t, &Proc{Cwd: "/no/such/dir", TTY: -1, CloseFrom: 3}, "true", 1)
	unix.Recvmsg(sock, make([]byte, 1), make([]byte, 64), unix.MSG_CMSG_CLOEXEC)
	unix.Write(sock, []byte("/bin/sh"))
	conn := connectRun(t, addr)
	b := make([]byte, 64)
	n, err := unix.Read(conn, b)
	if err != nil {
		t.Fatal(err)
	}
	err = ParseStepRecord(b[:n])
	var ce *ChildError
	if !errors.As(err, &ce) || ce.Step != "chdir to cwd" || ce.Err != unix.ENOENT {
		t.Errorf("report %v, want chdir to cwd: ENOENT", err)
	}
}

func TestGateExitsWhenCallerGoes(t *testing.T) {
	requireRoot(t)
	proc, sock, _ := gated(t, &Proc{Cwd: "/", TTY: -1, CloseFrom: 3}, "true", 1)
	unix.Recvmsg(sock, make([]byte, 1), make([]byte, 64), unix.MSG_CMSG_CLOEXEC)
	unix.Close(sock)
	var ws unix.WaitStatus
	if _, err := unix.Wait4(proc.Pid, &ws, 0, nil); err != nil || ws.ExitStatus() != 127 {
		t.Errorf("child: %v %v, want exit 127", ws, err)
	}
}

// Joining a user namespace, a gated child makes its pid namespace after the
// join and forks once more: the child that forks reports the real one's
// pid, and the real one reports its gate. The two reports race (the gate's
// came first once in the VM, under TCG); this runs the path 20 times, but
// the order it gets is the scheduler's.
func TestGateAfterForkIntoNewPidNamespace(t *testing.T) {
	requireRoot(t)
	target, err := Start(&Attr{
		ExecFD: openExe(t, "/bin/sleep"), Argv: []string{"sleep", "100"},
		Cloneflags: unix.CLONE_NEWUSER, UIDMap: "0 300000 1000\n", GIDMap: "0 300000 1000\n", CgroupFD: -1,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		unix.PidfdSendSignal(target.Pidfd, unix.SIGKILL, nil, 0)
		wait(t, target)
	}()
	for i := 0; i < 20; i++ {
		sp, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		ln, err := unix.Socket(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		p, err := Start(&Attr{
			Argv: []string{"true"}, CgroupFD: -1,
			Join:       []Namespace{{FD: target.Pidfd, Flags: unix.CLONE_NEWUSER}},
			Cloneflags: unix.CLONE_NEWPID | unix.CLONE_NEWNS,
			Proc:       &Proc{Cwd: "/", TTY: -1, CloseFrom: 3},
			Gate:       &Gate{Sock: sp[1], Listener: ln, Order: []byte("run")},
		})
		unix.Close(sp[1])
		unix.Close(ln)
		if err != nil {
			unix.Close(sp[0])
			t.Fatalf("start %d: %v", i, err)
		}
		var ns [2]string
		for j, pid := range []int{p.Pid, target.Pid} {
			ns[j], _ = os.Readlink("/proc/" + itoa(pid) + "/ns/user")
		}
		unix.Close(sp[0]) // the child exits at its gate
		var ws unix.WaitStatus
		if _, err := unix.Wait4(p.Pid, &ws, 0, nil); err != nil || ws.ExitStatus() != 127 {
			t.Fatalf("start %d: the child that was reported: %v %v", i, ws, err)
		}
		unix.Close(p.Pidfd)
		if ns[0] != ns[1] {
			t.Fatalf("start %d: child in user namespace %s, want %s", i, ns[0], ns[1])
		}
	}
}
