package libcontainerfd_test

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/containerfd/containerfd/internal/mountinfo"
	"github.com/containerfd/containerfd/internal/testutil"
	cfd "github.com/containerfd/containerfd/libcontainerfd"
	"github.com/containerfd/containerfd/libcontainerfd/cgroups"
	"github.com/containerfd/containerfd/libcontainerfd/mounttree"
	"golang.org/x/sys/unix"
)

func TestMain(m *testing.M) {
	// This test binary is the library's own binary: it starts it as a
	// stage (cfd.Init).
	cfd.Init()
	// A copy of this binary started as a helper process (see helperCmd).
	if h := os.Getenv("CFD_TEST_HELPER"); h != "" {
		os.Exit(runHelper(h))
	}
	os.Exit(m.Run())
}

// env is one test's sandbox: a state root, a cgroup path and a rootfs.
type env struct {
	t      *testing.T
	root   string
	cgroup string
	rootfs string
}

func newEnv(t *testing.T) *env {
	testutil.NoLeaks(t)
	testutil.RequireRoot(t)
	return &env{t: t, root: testutil.StateDir(t), cgroup: testutil.CgroupPath(t), rootfs: testutil.Rootfs(t)}
}

// setCgroupMode forces the cgroup mode (CONTAINERFD_CGROUP_MODE) for the
// test, or skips it, naming what is missing, where this host cannot have
// that mode: a pure cgroup v2 host (the VM of hack/vm.sh) has no v1
// hierarchy, so no v1 or hybrid mode.
func setCgroupMode(t *testing.T, mode string) {
	t.Helper()
	t.Setenv(cgroups.EnvMode, mode)
	if _, err := cgroups.DetectMode(); err != nil {
		t.Skipf("cgroup mode %s not available on this host: %v", mode, err)
	}
}

// rootfsRoot is how the container's mountinfo names the root of its "/":
// the rootfs path within the file system that holds it, which is the path
// itself only where / holds it (not when /tmp is a tmpfs of its own, as in
// the VM of hack/vm.sh).
func (e *env) rootfsRoot() string {
	e.t.Helper()
	es, err := mountinfo.Read("/proc/self/mountinfo")
	if err != nil {
		e.t.Fatal(err)
	}
	var best mountinfo.Entry
	for _, m := range es { // the last, deepest mount wins
		if (e.rootfs == m.Mountpoint || strings.HasPrefix(e.rootfs, strings.TrimSuffix(m.Mountpoint, "/")+"/")) &&
			len(m.Mountpoint) >= len(best.Mountpoint) {
			best = m
		}
	}
	return filepath.Join(best.Root, strings.TrimPrefix(e.rootfs, best.Mountpoint))
}

var allNS = []int{unix.CLONE_NEWNS, unix.CLONE_NEWPID, unix.CLONE_NEWUTS, unix.CLONE_NEWIPC, unix.CLONE_NEWNET, unix.CLONE_NEWCGROUP}

func newNS(types ...int) []cfd.Namespace {
	var nss []cfd.Namespace
	for _, t := range types {
		nss = append(nss, cfd.Namespace{Type: t})
	}
	return nss
}

func procMount() mounttree.Mount {
	return mounttree.Mount{Type: "proc", Source: "proc", Target: "/proc", Attr: unix.MOUNT_ATTR_NOSUID | unix.MOUNT_ATTR_NODEV | unix.MOUNT_ATTR_NOEXEC}
}

// devNull binds the host's /dev/null: sh needs it for background jobs.
func devNull() mounttree.Mount {
	return mounttree.Mount{Type: "bind", Source: "/dev/null", Target: "/dev/null"}
}

// config is a plain container: new namespaces but user, its own root with
// /proc.
func (e *env) config() *cfd.Config {
	return &cfd.Config{
		Flags:      cfd.NewEmptyFS,
		Namespaces: newNS(allNS...),
		Cgroup:     e.cgroup,
		Rootfs:     e.rootfs,
		Mounts:     []mounttree.Mount{procMount()},
		Hostname:   "cfdtest",
	}
}

// create makes a container that the test destroys when it ends.
func (e *env) create(cfg *cfd.Config) *cfd.Container {
	e.t.Helper()
	c, err := cfd.Create(e.root, testutil.ID(e.t), cfg)
	if err != nil {
		e.t.Fatalf("Create: %v", err)
	}
	e.t.Cleanup(func() {
		if err := c.Destroy(); err != nil {
			e.t.Errorf("Destroy: %v", err)
		}
	})
	return c
}

// output collects what a process writes to its stdout and stderr.
type output struct {
	r, w *os.File
	done chan []byte
}

func newOutput(t *testing.T) *output {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	o := &output{r: r, w: w, done: make(chan []byte, 1)}
	go func() {
		b, _ := io.ReadAll(r)
		r.Close()
		o.done <- b
	}()
	return o
}

// collect closes our write end and waits for every writer to finish.
func (o *output) collect() string {
	o.w.Close()
	return string(<-o.done)
}

func proc(o *output, args ...string) *cfd.Process {
	return &cfd.Process{
		Args:   args,
		Env:    []string{"PATH=/bin:/sbin:/usr/bin", "HOME=/root"},
		Stdout: o.w,
		Stderr: o.w,
	}
}

// run starts a container whose init runs args, waits for init and returns
// its output and exit code.
func (e *env) run(c *cfd.Container, args ...string) (string, int) {
	e.t.Helper()
	o := newOutput(e.t)
	p := proc(o, args...)
	if err := c.ForkInit(p); err != nil {
		o.collect()
		e.t.Fatalf("ForkInit: %v", err)
	}
	if err := c.Start(); err != nil {
		o.collect()
		p.Wait()
		e.t.Fatalf("Start: %v", err)
	}
	ws, err := p.Wait()
	if err != nil {
		e.t.Fatal(err)
	}
	return o.collect(), cfd.ExitCode(ws)
}

// startSleeping starts a container whose init sleeps, and returns init.
func (e *env) startSleeping(c *cfd.Container) *cfd.Process {
	e.t.Helper()
	p := &cfd.Process{Args: []string{"sleep", "1000"}, Env: []string{"PATH=/bin"}}
	if err := c.ForkInit(p); err != nil {
		e.t.Fatalf("ForkInit: %v", err)
	}
	e.t.Cleanup(func() {
		c.KillAll()
		p.Wait()
	})
	if err := c.Start(); err != nil {
		e.t.Fatalf("Start: %v", err)
	}
	return p
}

// exec runs args in a running container and returns output and exit code.
func (e *env) exec(c *cfd.Container, args ...string) (string, int) {
	e.t.Helper()
	o := newOutput(e.t)
	p := proc(o, args...)
	if err := c.Exec(p); err != nil {
		o.collect()
		e.t.Fatalf("Exec %q: %v", args, err)
	}
	ws, err := p.Wait()
	if err != nil {
		e.t.Fatal(err)
	}
	return o.collect(), cfd.ExitCode(ws)
}

func (e *env) mustExec(c *cfd.Container, args ...string) string {
	e.t.Helper()
	out, code := e.exec(c, args...)
	if code != 0 {
		e.t.Fatalf("exec %q: exit %d: %s", args, code, out)
	}
	return out
}

func nsInode(t *testing.T, pid, name string) string {
	t.Helper()
	l, err := os.Readlink("/proc/" + pid + "/ns/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func containsAll(s string, subs ...string) error {
	var missing []string
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			missing = append(missing, sub)
		}
	}
	if missing != nil {
		return errors.New("missing " + strings.Join(missing, ", "))
	}
	return nil
}

var _ = bytes.Contains
