package integration

import (
	"bytes"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// consoleSocket listens where containerfd sends the pty master and returns
// a func that waits for it.
func consoleSocket(t *testing.T, dir string) (string, func() *os.File) {
	path := filepath.Join(dir, "console.sock")
	return path, listenFDs(t, path)
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
	sock, master := consoleSocket(t, e.bundle)
	e.ok("create", "--bundle", e.bundle, "--console-socket", sock, e.id)
	m := master()
	if m == nil {
		t.Fatal("no pty master on the console socket")
	}
	defer m.Close()
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
