package integration

import (
	"bufio"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/containerfd/containerfd/internal/testutil"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// criuLogsOnFailure logs the end of CRIU's logs in work (dump.log,
// restore.log) if the test fails: under a VM they are all there is.
func criuLogsOnFailure(t *testing.T, work string) {
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		for _, name := range []string{"dump.log", "restore.log"} {
			b, err := os.ReadFile(filepath.Join(work, name))
			if err != nil {
				continue
			}
			lines := strings.Split(strings.TrimSpace(string(b)), "\n")
			if len(lines) > 60 {
				lines = lines[len(lines)-60:]
			}
			t.Logf("%s, the end:\n%s", name, strings.Join(lines, "\n"))
		}
	})
}

// A container on a terminal, as runc's own checkpoint tests run one: created
// with --console-socket, checkpointed without --shell-job (the pty's master
// is outside the container, and CRIU is told to expect that: runc sets
// orphan_pts_master), restored with --console-socket, which receives a new
// master for the same process; that process, reading lines and answering,
// still answers on it.
func TestCheckpointRestoreTerminal(t *testing.T) {
	testutil.RequireCRIU(t)
	e := newEnv(t, "sh", "-c", `while read x; do echo "got $x"; done`)
	s := e.spec()
	s.Process.Terminal = true
	e.writeSpec(s)
	images, work := filepath.Join(t.TempDir(), "images"), t.TempDir()
	criuLogsOnFailure(t, work)
	sock, master := consoleSocket(t, e.bundle)

	e.ok("run", "-d", "--console-socket", sock, "--bundle", e.bundle, e.id)
	m := master()
	if m == nil {
		t.Fatal("no pty master on the console socket after run")
	}
	defer m.Close()
	m.Write([]byte("one\n"))
	readUntil(t, m, "got one")

	e.ok("checkpoint", "--image-path", images, "--work-path", work, e.id)
	if r := e.cfd("state", e.id); r.code == 0 {
		t.Fatalf("container still there after checkpoint: %v", r)
	}
	e.ok("restore", "-d", "--console-socket", sock, "--image-path", images, "--work-path", work, "--bundle", e.bundle, e.id)
	m2 := master()
	if m2 == nil {
		t.Fatal("no new pty master on the console socket after restore")
	}
	defer m2.Close()
	if s := e.status(); s != "running" {
		t.Fatalf("status after restore = %s", s)
	}
	m2.Write([]byte("two\n"))
	readUntil(t, m2, "got two")
	e.ok("delete", "--force", e.id)
}

// tcpPeer makes a network namespace for a container to join by path, held
// by a sleeping process of the test, with one end of a veth pair in it
// (10.250.9.2/24) and the other on the host (10.250.9.1/24): a client on the
// host talks to a server in the container over a real link. The namespace is
// external to the container, as a pod's is (podman, CRI), so a checkpoint
// leaves it and its link in place and restore puts the sockets back into it.
// It returns the namespace's path and the server's address.
func tcpPeer(t *testing.T) (nsPath, addr string) {
	t.Helper()
	dev := "cfdtcp" + strconv.Itoa(os.Getpid()%100000)
	holder := exec.Command("sh", "-c", "read x && ip link set lo up && ip addr add 10.250.9.2/24 dev "+dev+
		" && ip link set "+dev+" up && echo ready && exec sleep 1000")
	holder.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWNET}
	in, err := holder.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := holder.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := holder.Start(); err != nil {
		t.Fatalf("a process in a new network namespace: %v", err)
	}
	t.Cleanup(func() {
		holder.Process.Kill()
		holder.Wait()
	})
	// After the holder's cleanup is registered, so that the pair is deleted
	// before the namespace goes (which would take it, asynchronously).
	vethPair(t, dev)
	pid := strconv.Itoa(holder.Process.Pid)
	if b, err := exec.Command("ip", "link", "set", dev, "netns", pid).CombinedOutput(); err != nil {
		t.Fatalf("ip link set %s netns %s: %v: %s", dev, pid, err, b)
	}
	in.Write([]byte("\n"))
	if line, err := bufio.NewReader(out).ReadString('\n'); line != "ready\n" {
		t.Fatalf("setting up the namespace's end of the link: %q, %v", line, err)
	}
	for _, args := range [][]string{{"addr", "add", "10.250.9.1/24", "dev", dev + "p"}, {"link", "set", dev + "p", "up"}} {
		if b, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, b)
		}
	}
	return "/proc/" + pid + "/ns/net", "10.250.9.2:5555"
}

// dialRetry connects to addr, retrying for 20 s while the server starts.
func dialRetry(t *testing.T, addr string) net.Conn {
	t.Helper()
	var err error
	for i := 0; i < 200; i++ {
		var c net.Conn
		if c, err = net.DialTimeout("tcp", addr, time.Second); err == nil {
			t.Cleanup(func() { c.Close() })
			return c
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("connecting to the server in the container at %s: %v", addr, err)
	return nil
}

// ask writes line on c and waits (20 s: TCP retransmits after a restore take
// their time) for the server's answer.
func ask(t *testing.T, c net.Conn, r *bufio.Reader, line string) {
	t.Helper()
	c.SetDeadline(time.Now().Add(20 * time.Second))
	if _, err := c.Write([]byte(line + "\n")); err != nil {
		t.Fatalf("writing %q to the server: %v", line, err)
	}
	got, err := r.ReadString('\n')
	if want := "got " + line + "\n"; got != want {
		t.Fatalf("the server answered %q (%v), want %q", got, err, want)
	}
}

// An established TCP connection between a client on the host and a server
// in the container survives checkpoint and restore with --tcp-established on
// both (CRIU takes the socket in repair mode and locks the namespace's
// traffic meanwhile): the same connection, on the same client socket, is
// answered by the restored server.
func TestCheckpointRestoreTCPEstablished(t *testing.T) {
	testutil.RequireCRIU(t, "tcp_half_closed")
	e := newEnv(t, "sh", "-c", `exec </dev/null >/dev/null 2>&1; exec nc -l -p 5555 -e sh -c 'while read x; do echo "got $x"; done'`)
	nsPath, addr := tcpPeer(t)
	s := e.spec()
	for i, ns := range s.Linux.Namespaces {
		if ns.Type == specs.NetworkNamespace {
			s.Linux.Namespaces[i].Path = nsPath
		}
	}
	e.writeSpec(s)
	images, work := filepath.Join(t.TempDir(), "images"), t.TempDir()
	criuLogsOnFailure(t, work)
	t.Cleanup(func() {
		if t.Failed() { // CRIU's network lock, if it is still there
			out, err := exec.Command("nsenter", "--net="+nsPath, "iptables-save").CombinedOutput()
			t.Logf("iptables-save in the container's network namespace (%v):\n%s", err, out)
		}
	})

	e.ok("run", "-d", "--bundle", e.bundle, e.id)
	c := dialRetry(t, addr)
	r := bufio.NewReader(c)
	ask(t, c, r, "one")

	e.ok("checkpoint", "--tcp-established", "--image-path", images, "--work-path", work, e.id)
	if res := e.cfd("state", e.id); res.code == 0 {
		t.Fatalf("container still there after checkpoint: %v", res)
	}
	e.ok("restore", "-d", "--tcp-established", "--image-path", images, "--work-path", work, "--bundle", e.bundle, e.id)
	ask(t, c, r, "two")
	e.ok("delete", "--force", e.id)
}

// podman drives checkpoint and restore with the argv below, run here as it
// runs it (podman 4.3.1, Debian 12's, and podman 5.6.2, the same; conmon
// 2.1.6, Debian 12's, and 2.1.13, the same for restore):
//
//   - `podman container checkpoint [-R] [-P | --with-previous]
//     [--tcp-established] [--file-locks]` runs, in libpod/oci_conmon_common.go
//     (*ConmonOCIRuntime).CheckpointContainer: <runtime flags> checkpoint
//     --image-path <bundle>/checkpoint (with -P: <bundle>/pre-checkpoint)
//     --work-path <bundle> [--leave-running] [--tcp-established]
//     [--file-locks] [--leave-running, a second time, unless -P] [--pre-dump]
//     [--parent-path ../pre-checkpoint, with --with-previous] <id>.
//   - `podman container restore [--tcp-established] [--file-locks]` starts
//     conmon with --restore <bundle>/checkpoint and --runtime-opt for each
//     flag (createOCIContainer, same file), and conmon's runtime --log-format=json
//     --log <oci-log> (sharedConmonArgs' --runtime-arg); conmon
//     (src/runtime_args.c, configure_runtime_args) runs: <runtime> <runtime
//     args> restore --bundle <bundle> --pid-file <pidfile> --detach
//     --image-path <bundle>/checkpoint --work-path <bundle> <runtime opts>
//     [--console-socket <socket>] <id>.
//   - The container itself: conmon's create (the same function) and podman's
//     start; podman's cleanup after a checkpoint: delete --force.
//
// podman's runtime flags are the --runtime-flag options, "--x" for "x": the
// test passes its --root that way.
func TestPodmanCheckpointRestoreArgv(t *testing.T) {
	testutil.RequireCRIU(t, "mem_dirty_track")
	e, out := counterEnv(t)
	b := e.bundle
	criuLogsOnFailure(t, b)
	rt := []string{"--root=" + e.root}
	conmon := slices.Concat(rt, []string{"--log-format=json", "--log", filepath.Join(b, "oci-log")})
	run := func(args ...string) {
		t.Helper()
		cmd := exec.Command(binary, args...)
		if res := runResult(t, cmd, args); res.code != 0 {
			t.Fatalf("containerfd %s: %v", strings.Join(args, " "), res)
		}
	}
	checkpoint := func(flags ...string) {
		t.Helper()
		run(slices.Concat(rt, []string{"checkpoint"}, flags, []string{e.id})...)
	}

	run(slices.Concat(conmon, []string{"create", "--bundle", b, "--pid-file", filepath.Join(b, "pidfile"), e.id})...)
	run(slices.Concat(rt, []string{"start", e.id})...)
	waitCount(t, out, 3)

	// podman container checkpoint -R: the flag twice.
	checkpoint("--image-path", filepath.Join(b, "checkpoint"), "--work-path", b, "--leave-running", "--leave-running")
	if s := e.status(); s != "running" {
		t.Fatalf("status after checkpoint --leave-running = %s", s)
	}
	waitCount(t, out, count(t, out))
	// The next checkpoint writes its own images into an empty directory.
	if err := os.RemoveAll(filepath.Join(b, "checkpoint")); err != nil {
		t.Fatal(err)
	}

	// podman container checkpoint -P, then --with-previous --tcp-established --file-locks.
	checkpoint("--image-path", filepath.Join(b, "pre-checkpoint"), "--work-path", b, "--pre-dump")
	if s := e.status(); s != "running" {
		t.Fatalf("status after a pre-dump = %s", s)
	}
	waitCount(t, out, count(t, out))
	checkpoint("--image-path", filepath.Join(b, "checkpoint"), "--work-path", b,
		"--tcp-established", "--file-locks", "--parent-path", filepath.Join("..", "pre-checkpoint"))
	at := count(t, out)
	run(slices.Concat(rt, []string{"delete", "--force", e.id})...)

	// podman container restore --tcp-established --file-locks, through conmon.
	pidfile := filepath.Join(b, "pidfile")
	os.Remove(pidfile)
	run(slices.Concat(conmon, []string{"restore", "--bundle", b, "--pid-file", pidfile, "--detach",
		"--image-path", filepath.Join(b, "checkpoint"), "--work-path", b, "--tcp-established", "--file-locks", e.id})...)
	if s := e.status(); s != "running" {
		t.Fatalf("status after restore = %s", s)
	}
	if next := waitCount(t, out, at); next > at+10 {
		t.Errorf("after restore the counter went from %d to %d: not where it was", at, next)
	}
	pid, err := os.ReadFile(pidfile)
	if err != nil {
		t.Fatalf("restore --pid-file: %v", err)
	}
	if want := strconv.Itoa(int(e.state()["pid"].(float64))); string(pid) != want {
		t.Errorf("--pid-file holds %q, state's pid is %s", pid, want)
	}
	// podman rm -f: the counter, a shell as pid 1, ignores SIGTERM.
	run(slices.Concat(rt, []string{"kill", e.id, "9"})...)
	waitStatus(t, e, "stopped")
	run(slices.Concat(rt, []string{"delete", "--force", e.id})...)
}
