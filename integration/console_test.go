package integration

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// consoleSocket listens where containerfd sends the pty master and returns
// a func that waits for it.
func consoleSocket(t *testing.T, dir string) (string, func() *os.File) {
	path := filepath.Join(dir, "console.sock")
	return path, listenFDs(t, path)
}

// createOnConsole creates the container with a console socket and returns
// the pty master that comes over it.
func (e *env) createOnConsole() *os.File {
	e.t.Helper()
	sock, master := consoleSocket(e.t, e.bundle)
	e.ok("create", "--bundle", e.bundle, "--console-socket", sock, e.id)
	m := master()
	if m == nil {
		e.t.Fatal("no pty master on the console socket")
	}
	e.t.Cleanup(func() { m.Close() })
	return m
}

// listenFDs listens on a unix socket at path, accepting in the background;
// each call of the func it returns waits up to 10 s for the next
// connection and gives the first fd that came with it, or nil.
func listenFDs(t *testing.T, path string) func() *os.File {
	t.Helper()
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	got := make(chan *os.File, 4)
	go func() {
		for {
			conn, err := l.AcceptUnix()
			if err != nil {
				return
			}
			got <- recvFD(conn)
			conn.Close()
		}
	}()
	return func() *os.File {
		select {
		case f := <-got:
			return f
		case <-time.After(10 * time.Second):
			return nil
		}
	}
}

// recvFD reads one message from conn and returns the fd it carries.
func recvFD(conn *net.UnixConn) *os.File {
	buf, oob := make([]byte, 4096), make([]byte, unix.CmsgSpace(4))
	_, oobn, _, _, err := conn.ReadMsgUnix(buf, oob)
	if err != nil {
		return nil
	}
	msgs, _ := unix.ParseSocketControlMessage(oob[:oobn])
	if len(msgs) != 1 {
		return nil
	}
	fds, _ := unix.ParseUnixRights(&msgs[0])
	if len(fds) != 1 {
		return nil
	}
	// Non-blocking before os.NewFile, which then hands it to the poller:
	// readUntil's deadline needs that.
	unix.SetNonblock(fds[0], true)
	return os.NewFile(uintptr(fds[0]), "received fd")
}

// readUntil reads f until want shows up or 10 s pass.
func readUntil(t *testing.T, f *os.File, want string) string {
	var out bytes.Buffer
	f.SetReadDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 1024)
	for !strings.Contains(out.String(), want) {
		n, err := f.Read(buf)
		out.Write(buf[:n])
		if err != nil {
			t.Errorf("reading the pty: %v; got %q, want %q", err, out.String(), want)
			break
		}
	}
	return out.String()
}

func TestConsoleSocket(t *testing.T) {
	e := newEnv(t, "sh", "-c", "tty; ls -l /dev/console; read x; echo got $x")
	s := e.spec()
	s.Process.Terminal = true
	e.writeSpec(s)
	m := e.createOnConsole()
	e.ok("start", e.id)
	out := readUntil(t, m, "/dev/console")
	if !strings.Contains(out, "/dev/pts/0") {
		t.Errorf("tty in the container: %q", out)
	}
	m.Write([]byte("ping\n"))
	readUntil(t, m, "got ping")
	waitStatus(t, e, "stopped")
	e.ok("delete", e.id)
}

func TestExecTTY(t *testing.T) {
	e := newEnv(t, "sleep", "100")
	e.ok("run", "-d", "-b", e.bundle, e.id)
	sock, master := consoleSocket(t, e.bundle)
	pidFile := filepath.Join(e.bundle, "exec.pid")
	e.ok("exec", "--tty", "--detach", "--console-socket", sock, "--pid-file", pidFile, e.id, "sh", "-c", "tty; read x; echo got $x")
	m := master()
	if m == nil {
		t.Fatal("no pty master on the console socket")
	}
	defer m.Close()
	readUntil(t, m, "/dev/pts/")
	m.Write([]byte("pong\n"))
	readUntil(t, m, "got pong")
}

func TestTerminalNeedsConsoleSocket(t *testing.T) {
	e := newEnv(t, "sh")
	s := e.spec()
	s.Process.Terminal = true
	e.writeSpec(s)
	if r := e.cfd("create", "--bundle", e.bundle, e.id); r.code == 0 || !strings.Contains(r.stderr, "--console-socket") {
		t.Errorf("create with a terminal and no console socket: %v", r)
	}
}

// openPty opens a pty pair of the test's own: the terminal a user's shell
// would run containerfd on.
func openPty(t *testing.T) (master, peer *os.File) {
	t.Helper()
	// Non-blocking from the start and never made blocking by Fd(), so that
	// the runtime poller serves it and readUntil's deadline holds.
	m, err := unix.Open("/dev/ptmx", unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
	if err != nil {
		t.Fatal(err)
	}
	master = os.NewFile(uintptr(m), "/dev/ptmx")
	t.Cleanup(func() { master.Close() })
	if err := unix.IoctlSetPointerInt(m, unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	r, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(m), unix.TIOCGPTPEER, unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC)
	if errno != 0 {
		t.Fatal(errno)
	}
	p := os.NewFile(r, "pty peer")
	t.Cleanup(func() { p.Close() })
	return master, p
}

// ptyFd runs fn on f's fd without f.Fd(), which would make f blocking and
// its read deadlines moot.
func ptyFd(f *os.File, fn func(fd int)) {
	rc, err := f.SyscallConn()
	if err != nil {
		fn(-1)
		return
	}
	rc.Control(func(fd uintptr) { fn(int(fd)) })
}

// onTerminal runs containerfd args... with the pty's peer as its
// controlling terminal and stdio, and returns its exit code.
func (e *env) onTerminal(peer *os.File, args ...string) (wait func() int) {
	e.t.Helper()
	cmd := exec.Command(binary, append([]string{"--root", e.root}, args...)...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = peer, peer, peer
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	if err := cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	waited := make(chan int, 1)
	go func() {
		cmd.Wait()
		waited <- cmd.ProcessState.ExitCode()
	}()
	return func() int {
		select {
		case code := <-waited:
			return code
		case <-time.After(30 * time.Second):
			cmd.Process.Kill()
			e.t.Fatalf("containerfd %s did not return", strings.Join(args, " "))
			return -1
		}
	}
}

// sameModes fails the test if the terminal's modes are not those of before.
func sameModes(t *testing.T, peer *os.File, before *unix.Termios, after string) {
	t.Helper()
	now, err := unix.IoctlGetTermios(int(peer.Fd()), unix.TCGETS)
	if err != nil {
		t.Fatal(err)
	}
	if now.Iflag != before.Iflag || now.Oflag != before.Oflag || now.Lflag != before.Lflag || now.Cflag != before.Cflag {
		t.Errorf("terminal modes after %s: iflag %#x oflag %#x lflag %#x cflag %#x, want %#x %#x %#x %#x", after,
			now.Iflag, now.Oflag, now.Lflag, now.Cflag, before.Iflag, before.Oflag, before.Lflag, before.Cflag)
	}
}

// TestRunOnTerminal runs `run` and `exec` in the foreground on a terminal,
// as a user at a shell does: the container's pty is proxied (size, input,
// output), and the terminal's modes are given back on every way out.
func TestRunOnTerminal(t *testing.T) {
	e := newEnv(t, "sh", "-c", "stty size; read x; echo got $x")
	s := e.spec()
	s.Process.Terminal = true
	e.writeSpec(s)
	master, peer := openPty(t)
	if err := unix.IoctlSetWinsize(int(peer.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: 33, Col: 111}); err != nil {
		t.Fatal(err)
	}
	before, err := unix.IoctlGetTermios(int(peer.Fd()), unix.TCGETS)
	if err != nil {
		t.Fatal(err)
	}

	wait := e.onTerminal(peer, "run", "-b", e.bundle, e.id)
	readUntil(t, master, "33 111")
	master.Write([]byte("ping\r"))
	readUntil(t, master, "got ping")
	if code := wait(); code != 0 {
		t.Errorf("run: exit %d", code)
	}
	sameModes(t, peer, before, "run")

	// start fails after the terminal went raw: a startContainer hook that
	// is not there.
	s.Hooks = &specs.Hooks{StartContainer: []specs.Hook{{Path: "/no-such-hook"}}}
	e.writeSpec(s)
	wait = e.onTerminal(peer, "run", "-b", e.bundle, e.id)
	if code := wait(); code == 0 {
		t.Error("run with a missing startContainer hook: exit 0")
	}
	sameModes(t, peer, before, "a failed start")

	s.Hooks = nil
	s.Process.Terminal = false
	s.Process.Args = []string{"sleep", "100"}
	e.writeSpec(s)
	e.ok("run", "-d", "-b", e.bundle, e.id)
	wait = e.onTerminal(peer, "exec", "-t", e.id, "sh", "-c", "read x; echo got $x; exit 3")
	master.Write([]byte("pong\r"))
	readUntil(t, master, "got pong")
	if code := wait(); code != 3 {
		t.Errorf("exec: exit %d, want 3", code)
	}
	sameModes(t, peer, before, "exec")
}

// A created init with a terminal holds the pty as its stdio while it waits
// for start, as runc's does: nothing of the host (no /dev/null) on 0-2.
func TestCreatedInitStdioIsPty(t *testing.T) {
	eachStartPath(t, func(t *testing.T) {
		e := newEnv(t, "sh", "-c", "read x; echo got $x")
		s := e.spec()
		s.Process.Terminal = true
		e.writeSpec(s)
		m := e.createOnConsole()
		pid := int(e.state()["pid"].(float64))
		for fd := 0; fd < 3; fd++ {
			target, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%d", pid, fd))
			if err != nil || !strings.HasPrefix(target, "/dev/pts/") {
				t.Errorf("created init's fd %d: %q, %v; want the pty", fd, target, err)
			}
		}
		e.ok("start", e.id)
		m.Write([]byte("ping\n"))
		readUntil(t, m, "got ping")
		waitStatus(t, e, "stopped")
		e.ok("delete", e.id)
	})
}
