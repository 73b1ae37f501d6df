package integration

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// start runs containerfd in the background with its output in files.
func (e *env) startCmd(args ...string) (*exec.Cmd, *os.File, *os.File) {
	e.t.Helper()
	cmd := exec.Command(binary, append([]string{"--root", e.root}, args...)...)
	out, errf := e.tempFile(), e.tempFile()
	cmd.Stdout, cmd.Stderr = out, errf
	if err := cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	return cmd, out, errf
}

// socket: a listener made in the container's network namespace from
// outside serves a host command; the container reaches it on its own
// 127.0.0.1, the host's 127.0.0.1 has no such listener.
func TestSocketVerb(t *testing.T) {
	e := newEnv(t, "sleep", "100")
	e.ok("run", "-d", "-b", e.bundle, e.id)
	cmd, out, errf := e.startCmd("socket", "--bind", "127.0.0.1:9123", "--listen", e.id, "--", accept1)
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	for i := 0; !strings.Contains(readBack(t, out), "listening") && i < 500; i++ {
		time.Sleep(10 * time.Millisecond)
	}
	if c, err := net.DialTimeout("tcp", "127.0.0.1:9123", time.Second); err == nil {
		c.Close()
		t.Error("the container's listener answers on the host's 127.0.0.1")
	}
	e.ok("exec", e.id, "sh", "-c", "echo hi-from-inside | nc 127.0.0.1 9123")
	cmd.Wait()
	if got := readBack(t, out); got != "listening on 127.0.0.1:9123\ngot hi-from-inside\n" {
		t.Errorf("host command: %q (stderr %q)", got, readBack(t, errf))
	}

	// --send-to passes the socket itself.
	sock := filepath.Join(t.TempDir(), "s")
	next := listenFDs(t, sock)
	e.ok("socket", "--bind", "127.0.0.1:9124", "--send-to", sock, e.id)
	f := next()
	if f == nil {
		t.Fatal("socket --send-to sent nothing")
	}
	defer f.Close()
	sa, err := unix.Getsockname(int(f.Fd()))
	if in4, ok := sa.(*unix.SockaddrInet4); err != nil || !ok || in4.Port != 9124 {
		t.Errorf("socket sent: %#v, %v", sa, err)
	}
}

// mount and umount into a running container; the target cannot leave the
// root through a symlink.
func TestMountVerb(t *testing.T) {
	e := newEnv(t, "sleep", "100")
	rootfs := e.spec().Root.Path
	if err := os.Symlink("/etc", filepath.Join(rootfs, "escape")); err != nil {
		t.Fatal(err)
	}
	host := t.TempDir()
	os.WriteFile(filepath.Join(host, "hello"), []byte("from the host\n"), 0o644)
	e.ok("run", "-d", "-b", e.bundle, e.id)
	e.ok("mount", "--type", "tmpfs", "-o", "size=1m,mode=700", e.id, "/scratch")
	e.ok("mount", "--bind", host, "--ro", e.id, "/data")
	e.ok("mount", "--bind", host, e.id, "/escape/cfdtest-mounted")
	out := e.ok("exec", e.id, "sh", "-c", `grep -E ' /(scratch|data|etc/cfdtest-mounted) ' /proc/self/mountinfo | cut -d' ' -f5,6; cat /data/hello; echo x > /data/y 2>/dev/null || echo ro`)
	if !strings.Contains(out, "/scratch rw") || !strings.Contains(out, "/data ro") || !strings.Contains(out, "/etc/cfdtest-mounted rw") ||
		!strings.Contains(out, "from the host") || !strings.Contains(out, "ro\n") {
		t.Errorf("inside after mount:\n%s", out)
	}
	if _, err := os.Stat("/etc/cfdtest-mounted"); err == nil {
		t.Error("a mount target through a symlink was made on the host")
	}
	e.ok("umount", e.id, "/data")
	if out := e.ok("exec", e.id, "sh", "-c", "grep -c ' /data ' /proc/self/mountinfo || true"); strings.TrimSpace(out) != "0" {
		t.Errorf("/data still mounted after umount: %q", out)
	}
}

// --kill-on-close: SIGKILL the process that ran create; the container's
// processes are gone within a second.
func TestKillOnCloseVerb(t *testing.T) {
	e := newEnv(t, "sleep", "100")
	script := fmt.Sprintf("%s --root %s create --kill-on-close --bundle %s %s && %s --root %s start %s && echo started && exec sleep 100",
		binary, e.root, e.bundle, e.id, binary, e.root, e.id)
	holder := exec.Command("sh", "-c", script)
	out := e.tempFile()
	holder.Stdout, holder.Stderr = out, out
	if err := holder.Start(); err != nil {
		t.Fatal(err)
	}
	for i := 0; !strings.Contains(readBack(t, out), "started") && i < 500; i++ {
		time.Sleep(10 * time.Millisecond)
	}
	pid := int(e.state()["pid"].(float64))
	pidfd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(pidfd)
	holder.Process.Signal(syscall.SIGKILL)
	holder.Wait()
	fds := []unix.PollFd{{Fd: int32(pidfd), Events: unix.POLLIN}}
	if n, _ := unix.Poll(fds, 1000); n != 1 {
		t.Fatal("the container outlived its holder by more than a second")
	}
	e.ok("delete", e.id)
}

// --empty-fs: the root starts empty and is filled from outside before start.
func TestEmptyFS(t *testing.T) {
	e := newEnv(t, "/bin/sh", "-c", "echo from an empty root; ls /")
	// create's stdout is the process's: keep the file to read it later.
	create, out, errf := e.startCmd("create", "--empty-fs", "--bundle", e.bundle, e.id)
	if err := create.Wait(); err != nil {
		t.Fatalf("create: %v: %s", err, readBack(t, errf))
	}
	if r := e.cfd("exec", e.id, "/bin/sh", "-c", "true"); r.code == 0 {
		t.Error("exec in an empty root found a program")
	}
	e.ok("mount", "--bind", "/bin/busybox", "--ro", e.id, "/bin/sh")
	e.ok("mount", "--bind", "/bin/busybox", "--ro", e.id, "/bin/ls")
	e.ok("start", e.id)
	waitStatus(t, e, "stopped")
	if got := readBack(t, out); got != "from an empty root\nbin\n" {
		t.Errorf("the process in a root filled from outside printed %q", got)
	}
	e.ok("delete", e.id)
}

// --pidfd-socket: a pidfd of init (create) and of an exec'd process.
func TestPidfdSocket(t *testing.T) {
	e := newEnv(t, "sleep", "100")
	sock := filepath.Join(t.TempDir(), "pidfd.sock")
	next := listenFDs(t, sock)
	// pidOf is the pid of the next pidfd received, from its fdinfo.
	pidOf := func() string {
		f := next()
		if f == nil {
			return "nothing"
		}
		defer f.Close()
		info, _ := os.ReadFile(fmt.Sprintf("/proc/self/fdinfo/%d", f.Fd()))
		for _, line := range bytes.Split(info, []byte("\n")) {
			if v, ok := bytes.CutPrefix(line, []byte("Pid:")); ok {
				return strings.TrimSpace(string(v))
			}
		}
		return "no Pid in fdinfo: " + string(info)
	}
	e.ok("create", "--pidfd-socket", sock, "--bundle", e.bundle, e.id)
	if pid := pidOf(); pid != strconv.Itoa(int(e.state()["pid"].(float64))) {
		t.Errorf("create --pidfd-socket sent a pidfd of %s", pid)
	}
	e.ok("start", e.id)
	pidFile := filepath.Join(e.bundle, "exec.pid")
	e.ok("exec", "--detach", "--pid-file", pidFile, "--pidfd-socket", sock, e.id, "sleep", "50")
	want, _ := os.ReadFile(pidFile)
	if pid := pidOf(); pid != string(want) {
		t.Errorf("exec --pidfd-socket sent a pidfd of %s, want %s", pid, want)
	}
}

// mount into a container with its own user namespace: a host directory
// owned by host root shows as the container's root only when idmapped.
func TestMountVerbUserns(t *testing.T) {
	e := newEnv(t, "sleep", "100")
	s := e.spec()
	s.Linux.Namespaces = append(s.Linux.Namespaces, specsUserNS())
	s.Linux.UIDMappings = idMap100000()
	s.Linux.GIDMappings = idMap100000()
	e.writeSpec(s)
	if err := chownTree(s.Root.Path, 100000, 100000); err != nil {
		t.Fatal(err)
	}
	host := t.TempDir()
	os.WriteFile(filepath.Join(host, "f"), []byte("x"), 0o644)
	e.ok("run", "-d", "-b", e.bundle, e.id)
	e.ok("mount", "--bind", host, e.id, "/plain")
	e.ok("mount", "--bind", host, "-o", "idmap", e.id, "/mapped")
	out := e.ok("exec", e.id, "sh", "-c", "stat -c %u /plain/f /mapped/f")
	if out != "65534\n0\n" {
		t.Errorf("owners through a plain and an idmapped bind: %q, want 65534 and 0", out)
	}
}

// SIGTERM sent straight to a created container's init, through the pidfd
// that create --pidfd-socket handed out rather than through kill, stops it
// as it stops runc's waiting init; SIGUSR1, which a Go program ignores,
// does not. Init waits at spawn's gate (direct) or in our stage.
func TestPidfdSignalCreated(t *testing.T) {
	eachStartPath(t, func(t *testing.T) {
		e := newEnv(t, "sleep", "100")
		sock := filepath.Join(t.TempDir(), "pidfd.sock")
		next := listenFDs(t, sock)
		e.ok("create", "--pidfd-socket", sock, "--bundle", e.bundle, e.id)
		f := next()
		if f == nil {
			t.Fatal("create --pidfd-socket sent no pidfd")
		}
		defer f.Close()
		if err := unix.PidfdSendSignal(int(f.Fd()), unix.SIGUSR1, nil, 0); err != nil {
			t.Fatal(err)
		}
		time.Sleep(200 * time.Millisecond)
		if st := e.status(); st != "created" {
			t.Errorf("after SIGUSR1: %s, want created", st)
		}
		if err := unix.PidfdSendSignal(int(f.Fd()), unix.SIGTERM, nil, 0); err != nil {
			t.Fatal(err)
		}
		waitStatus(t, e, "stopped")

		// Past the gate, the program runs with no signal blocked.
		e.ok("delete", e.id)
		e.ok("create", "--bundle", e.bundle, e.id)
		e.ok("start", e.id)
		status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", int(e.state()["pid"].(float64))))
		if err != nil || !strings.Contains(string(status), "\nSigBlk:\t0000000000000000\n") {
			t.Errorf("init's signal mask after start: %v\n%s", err, status)
		}
	})
}
