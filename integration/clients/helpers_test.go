// Package clients runs real clients of an OCI runtime (containerd with ctr
// and crictl, podman, Docker) with containerfd as their runtime, each with a
// daemon of its own, and checks what their users see.
//
// The runtime is containerfd built from this tree, or any runc-compatible
// binary named by CFD_CLIENT_RUNTIME (e.g. CFD_CLIENT_RUNTIME=/usr/sbin/runc):
// the same tests pass with runc, which shows they test the clients' contract
// and not containerfd's quirks.
//
// This file holds what every client suite shares: the runtime binary, running
// commands (with a terminal when needed), a busybox image built here, daemons
// in a mount namespace of their own, and the checks that nothing is left.
package clients

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/containerfd/containerfd/internal/clienttools"
	"github.com/containerfd/containerfd/internal/testutil"
	"golang.org/x/sys/unix"
)

// runtimeEnv names a runtime binary to use in containerfd's place.
const runtimeEnv = "CFD_CLIENT_RUNTIME"

// runtimeBin is the OCI runtime the clients are pointed at: containerfd,
// built once for the test run, or $CFD_CLIENT_RUNTIME.
var runtimeBin string

func TestMain(m *testing.M) {
	code, err := testMain(m)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Exit(code)
}

func testMain(m *testing.M) (int, error) {
	if p := os.Getenv(runtimeEnv); p != "" {
		if !filepath.IsAbs(p) {
			return 0, fmt.Errorf("%s=%q: want an absolute path", runtimeEnv, p)
		}
		if _, err := os.Stat(p); err != nil {
			return 0, fmt.Errorf("%s: %w", runtimeEnv, err)
		}
		runtimeBin = p
		return m.Run(), nil
	}
	dir, err := os.MkdirTemp("", "cfdbin-")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(dir)
	// 0755 all the way: daemons may run the runtime as another user.
	if err := os.Chmod(dir, 0o755); err != nil {
		return 0, err
	}
	runtimeBin = filepath.Join(dir, "containerfd")
	build := exec.Command("go", "build", "-o", runtimeBin, "../..")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		return 0, fmt.Errorf("building containerfd: %w", err)
	}
	return m.Run(), nil
}

// requireTools skips the test unless every tool is in $PATH.
func requireTools(t testing.TB, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("needs %s in $PATH (hack/deps.sh installs it)", tool)
		}
	}
}

// cmdTimeout bounds every command the tests run.
const cmdTimeout = 90 * time.Second

// result is what a command did.
type result struct {
	stdout, stderr string
	code           int
}

func (r result) String() string {
	return fmt.Sprintf("exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
}

// output is stdout and stderr together, for messages that may go to either.
func (r result) output() string { return r.stdout + r.stderr }

// command is one command to run; the zero values mean no stdin and the
// test's environment.
type command struct {
	args  []string
	stdin string
	// closeStdin, when set, keeps stdin open after the input until it
	// returns true (polled every 50ms, for up to cmdTimeout): for clients
	// that race an early EOF.
	closeStdin func() bool
	env        []string // added to os.Environ()
}

// run runs c, logs it and what it did, and returns the result. A command
// that cannot be started, or runs past cmdTimeout, fails the test.
func run(t testing.TB, c command) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, c.args[0], c.args[1:]...)
	cmd.Env = append(os.Environ(), c.env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if c.stdin != "" || c.closeStdin != nil {
		cmd.Stdin = strings.NewReader(c.stdin)
		if c.closeStdin != nil {
			cmd.Stdin = io.MultiReader(cmd.Stdin, eofWhen{ctx, c.closeStdin})
		}
	}
	// A client may leave a helper holding our pipes (a shim's log
	// forwarder); do not wait for it once the client is gone.
	cmd.WaitDelay = 5 * time.Second
	start := time.Now()
	err := cmd.Run()
	r := result{stdout: stdout.String(), stderr: stderr.String()}
	var ee *exec.ExitError
	switch {
	case ctx.Err() != nil:
		t.Fatalf("$ %s: timed out after %v (stdout %q, stderr %q)", shellQuote(c.args), cmdTimeout, r.stdout, r.stderr)
	case errors.As(err, &ee):
		r.code = ee.ExitCode()
	case err != nil && !errors.Is(err, exec.ErrWaitDelay):
		t.Fatalf("$ %s: %v", shellQuote(c.args), err)
	}
	t.Logf("$ %s%s  (%v)\n%s", shellQuote(c.args), stdinNote(c.stdin), time.Since(start).Round(time.Millisecond), indent(r))
	return r
}

// eofWhen is an empty reader that blocks until cond or ctx is done.
type eofWhen struct {
	ctx  context.Context
	cond func() bool
}

func (r eofWhen) Read([]byte) (int, error) {
	for r.ctx.Err() == nil && !r.cond() {
		time.Sleep(50 * time.Millisecond)
	}
	return 0, io.EOF
}

func stdinNote(stdin string) string {
	if stdin == "" {
		return ""
	}
	return fmt.Sprintf(" <<< %q", stdin)
}

func indent(r result) string {
	var b strings.Builder
	fmt.Fprintf(&b, "\texit %d", r.code)
	for _, s := range []struct{ name, text string }{{"stdout", r.stdout}, {"stderr", r.stderr}} {
		if s.text == "" {
			continue
		}
		fmt.Fprintf(&b, "\n\t%s:", s.name)
		for _, l := range strings.Split(strings.TrimRight(s.text, "\n"), "\n") {
			b.WriteString("\n\t\t" + l)
		}
	}
	return b.String()
}

// shellQuote renders args as a command line one could paste into sh.
func shellQuote(args []string) string {
	q := make([]string, len(args))
	for i, a := range args {
		if a != "" && strings.IndexFunc(a, func(r rune) bool {
			return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./:=,@+%", r))
		}) < 0 {
			q[i] = a
		} else {
			q[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
	}
	return strings.Join(q, " ")
}

// mustRun runs c and fails the test unless it exits 0.
func mustRun(t testing.TB, c command) result {
	t.Helper()
	r := run(t, c)
	if r.code != 0 {
		t.Fatalf("$ %s: %v", shellQuote(c.args), r)
	}
	return r
}

// runTTY runs c with a new terminal as its stdin, stdout and stderr and
// controlling terminal (rows x cols), types input into it, and returns
// what the terminal showed and the exit code: what a user at a terminal sees.
func runTTY(t testing.TB, rows, cols uint16, input string, args ...string) (string, int) {
	t.Helper()
	master, slave, err := openPty(rows, cols)
	if err != nil {
		t.Fatalf("open a pty: %v", err)
	}
	defer master.Close()
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, slave
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		slave.Close()
		t.Fatalf("$ %s: %v", shellQuote(args), err)
	}
	slave.Close() // the child holds it now: reads end with EIO when it is gone
	var out bytes.Buffer
	done := make(chan struct{})
	go func() {
		io.Copy(&out, master)
		close(done)
	}()
	if input != "" {
		master.WriteString(input)
	}
	err = cmd.Wait()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Errorf("$ %s: the terminal stayed open after it exited", shellQuote(args))
	}
	code := 0
	var ee *exec.ExitError
	switch {
	case ctx.Err() != nil:
		t.Fatalf("$ %s (on a tty): timed out after %v; terminal: %q", shellQuote(args), cmdTimeout, out.String())
	case errors.As(err, &ee):
		code = ee.ExitCode()
	case err != nil:
		t.Fatalf("$ %s (on a tty): %v", shellQuote(args), err)
	}
	t.Logf("$ %s  (on a %dx%d tty%s, %v)\n\texit %d\n\tterminal: %q", shellQuote(args), rows, cols,
		stdinNote(input), time.Since(start).Round(time.Millisecond), code, out.String())
	return out.String(), code
}

// openPty opens a new pseudo-terminal pair with the window size given.
func openPty(rows, cols uint16) (master, slave *os.File, err error) {
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, nil, err
	}
	fail := func(err error) (*os.File, *os.File, error) {
		m.Close()
		return nil, nil, err
	}
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		return fail(fmt.Errorf("unlockpt: %w", err))
	}
	if err := unix.IoctlSetWinsize(int(m.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: rows, Col: cols}); err != nil {
		return fail(fmt.Errorf("set window size: %w", err))
	}
	// TIOCGPTPEER's argument is the peer's open flags.
	r, _, errno := unix.Syscall(unix.SYS_IOCTL, m.Fd(), unix.TIOCGPTPEER, unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC)
	fd := int(r)
	if errno != 0 {
		// Before TIOCGPTPEER (unlikely here): open the peer by name.
		fd, err = unix.IoctlRetInt(int(m.Fd()), unix.TIOCGPTN)
		if err != nil {
			return fail(fmt.Errorf("ptsname: %w", err))
		}
		s, err := os.OpenFile("/dev/pts/"+strconv.Itoa(fd), os.O_RDWR|unix.O_NOCTTY, 0)
		if err != nil {
			return fail(err)
		}
		return m, s, nil
	}
	return m, os.NewFile(uintptr(fd), "pty peer"), nil
}

// Images.

// image describes a busybox image to build: every applet of Debian's static
// busybox, /etc/passwd and /etc/group, in one uncompressed layer.
type image struct {
	name       string   // full reference, e.g. "docker.io/library/busybox:cfd"
	entrypoint []string // image config Entrypoint
	cmd        []string // image config Cmd
	env        []string // image config Env; PATH is always set
}

// buildImage writes the image as a tarball that `ctr images import`,
// `podman load` and `docker load` all take (clienttools.WriteImage), and
// returns its path. No registry is needed.
func buildImage(t testing.TB, img image) string {
	t.Helper()
	rootfs := testutil.Rootfs(t) // skips the test without a static busybox
	path := filepath.Join(t.TempDir(), "image.tar")
	digest, size, err := clienttools.WriteImage(path, rootfs,
		clienttools.Image{Name: img.name, Entrypoint: img.entrypoint, Cmd: img.cmd, Env: img.env})
	if err != nil {
		t.Fatalf("image %s: %v", img.name, err)
	}
	t.Logf("built image %s (%s, layer %d bytes) as %s", img.name, digest[:19], size, path)
	return path
}

func mustJSON(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Daemons.

// daemon is a client's daemon (containerd, dockerd, …) that a test started
// in a mount namespace of its own, with a private tmpfs on /run: such
// daemons write fixed paths there (containerd's shim sockets in
// /run/containerd/s, dockerd's /run/docker) and the host's must stay
// untouched.
type daemon struct {
	t      testing.TB
	name   string
	cmd    *exec.Cmd
	log    string // its stdout and stderr
	marker string // in the command line of the daemon and of every helper it starts
	// mounts in its namespace once it was ready, by mount point and source
	mounts map[string]bool
	exited chan struct{}
}

// daemonOpts is how to start a daemon.
type daemonOpts struct {
	name   string   // for messages: "containerd"
	args   []string // the daemon's command line
	env    []string
	log    string // file for its stdout and stderr
	marker string // see daemon.marker: e.g. the test's own directory
	// privateDirs get an empty tmpfs of their own in the daemon's mount
	// namespace, besides /run (e.g. /etc/docker).
	privateDirs []string
	// ready reports whether the daemon is ready; it is polled until it
	// returns true or the deadline.
	ready func() bool
}

// startDaemon starts a daemon under `unshare --mount --propagation private`
// with a tmpfs on /run (and on each of privateDirs), waits until it is
// ready, and registers its stop, by pid, as a cleanup. After the stop, the
// cleanup fails the test for any process whose command line holds the
// marker (the daemon's helpers: shims, …), and kills them.
func startDaemon(t testing.TB, o daemonOpts) *daemon {
	t.Helper()
	requireTools(t, "unshare", "mount")
	logf, err := os.OpenFile(o.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	script := `set -e; for d in /run "$@"; do [ "$d" = -- ] && break; mount -t tmpfs -o mode=0755 tmpfs "$d"; done
while [ "$1" != -- ]; do shift; done; shift; exec "$@"`
	args := append([]string{"unshare", "--mount", "--propagation", "private", "--", "/bin/sh", "-c", script, "sh"}, o.privateDirs...)
	args = append(append(args, "--"), o.args...)
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Env = append(os.Environ(), o.env...)
	cmd.Stdout, cmd.Stderr = logf, logf
	// Its own process group: a ^C to `go test` goes to the test, whose
	// cleanups stop the daemon in order.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", o.name, err)
	}
	d := &daemon{t: t, name: o.name, cmd: cmd, log: o.log, marker: o.marker, exited: make(chan struct{})}
	go func() {
		cmd.Wait()
		close(d.exited)
	}()
	t.Logf("started %s, pid %d: %s", o.name, cmd.Process.Pid, shellQuote(args))
	t.Cleanup(d.stop)
	deadline := time.Now().Add(30 * time.Second)
	for !o.ready() {
		select {
		case <-d.exited:
			t.Fatalf("%s exited while starting (%v); its log:\n%s", o.name, cmd.ProcessState, d.tail(40))
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not ready after 30s; its log:\n%s", o.name, d.tail(40))
		}
		time.Sleep(50 * time.Millisecond)
	}
	d.mounts = d.mountSet()
	return d
}

// pid is the daemon's process id (unshare and sh exec it).
func (d *daemon) pid() int { return d.cmd.Process.Pid }

// mountSet reads the mounts in the daemon's namespace.
func (d *daemon) mountSet() map[string]bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/mountinfo", d.pid()))
	if err != nil {
		d.t.Errorf("%s: mounts: %v", d.name, err)
		return nil
	}
	set := map[string]bool{}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) > 4 {
			set[f[4]+" ("+f[3]+")"] = true // mount point (root)
		}
	}
	return set
}

// newMounts lists the mounts in the daemon's namespace that were not there
// when it became ready: after every container is gone, none should be.
func (d *daemon) newMounts() []string {
	var added []string
	for m := range d.mountSet() {
		if !d.mounts[m] {
			added = append(added, m)
		}
	}
	sort.Strings(added)
	return added
}

// tail returns the last n lines of the daemon's log.
func (d *daemon) tail(n int) string {
	b, _ := os.ReadFile(d.log)
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return "\t" + strings.Join(lines, "\n\t")
}

// stop checks the daemon's namespace for mounts left by containers, stops
// the daemon (SIGTERM, then SIGKILL after 15s) and checks that no helper of
// it is left.
func (d *daemon) stop() {
	t := d.t
	select {
	case <-d.exited:
		t.Errorf("%s exited before the test stopped it (%v); its log:\n%s", d.name, d.cmd.ProcessState, d.tail(40))
	default:
		if left := d.newMounts(); len(left) > 0 {
			t.Errorf("mounts left in %s's mount namespace after the test:\n\t%s", d.name, strings.Join(left, "\n\t"))
		}
		d.cmd.Process.Signal(unix.SIGTERM)
		select {
		case <-d.exited:
		case <-time.After(15 * time.Second):
			t.Errorf("%s did not exit within 15s of SIGTERM; killing it", d.name)
			d.cmd.Process.Kill()
			<-d.exited
		}
		t.Logf("stopped %s, pid %d (%v)", d.name, d.pid(), d.cmd.ProcessState)
	}
	// Its helpers (shims) exit once their containers are deleted.
	deadline := time.Now().Add(10 * time.Second)
	for {
		left := processesWith(d.marker)
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			for _, p := range left {
				t.Errorf("process left after %s stopped; killing it: pid %d: %s", d.name, p.pid, p.cmdline)
				unix.Kill(p.pid, unix.SIGKILL)
			}
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}

type process struct {
	pid     int
	cmdline string
}

// processesWith lists the processes (not zombies) whose command line
// contains s.
func processesWith(s string) []process {
	ents, _ := os.ReadDir("/proc")
	var ps []process
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if err != nil || len(b) == 0 {
			continue // gone, or a zombie or kernel thread
		}
		cmdline := strings.TrimSpace(string(bytes.ReplaceAll(b, []byte{0}, []byte{' '})))
		if strings.Contains(cmdline, s) {
			ps = append(ps, process{pid, cmdline})
		}
	}
	return ps
}

// Checks.

// checkEmptyTree fails the test for anything under dir but empty
// directories: a runtime's --root after its containers were deleted (a
// runtime may keep the per-namespace directory a caller gave it).
func checkEmptyTree(t testing.TB, what, dir string) {
	t.Helper()
	var left []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if d.IsDir() {
			ents, err := os.ReadDir(p)
			if err != nil {
				return err
			}
			if len(ents) > 0 {
				return nil
			}
		}
		if p != dir {
			rel, _ := filepath.Rel(dir, p)
			if !d.IsDir() {
				left = append(left, rel)
			}
		}
		return nil
	})
	if err != nil {
		t.Errorf("checking %s %s: %v", what, dir, err)
	}
	if len(left) > 0 {
		t.Errorf("%s %s not empty after the test:\n\t%s", what, dir, strings.Join(left, "\n\t"))
	}
}

// cgroupFile reads a file of a cgroup, e.g. cgroupFile(t, "memory",
// "/cfdtest-…/id", "memory.limit_in_bytes"); controller "unified" is cgroup2
// in hybrid mode.
func cgroupFile(t testing.TB, controller, cgroup, file string) (string, error) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("/sys/fs/cgroup", controller, cgroup, file))
	return strings.TrimSpace(string(b)), err
}

// cgroupDir returns the directory of a cgroup in one v1 hierarchy (or in
// cgroup2, controller "unified" on hybrid hosts, "" on pure v2 hosts).
func cgroupDir(controller, cgroup string) string {
	return filepath.Join("/sys/fs/cgroup", controller, cgroup)
}

// waitFor polls cond every 50ms until it is true or timeout passes.
func waitFor(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(50 * time.Millisecond)
	}
}
