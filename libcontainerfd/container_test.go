package libcontainerfd_test

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	cfd "github.com/containerfd/containerfd/libcontainerfd"
	"github.com/containerfd/containerfd/libcontainerfd/mounttree"
	"golang.org/x/sys/unix"
)

func TestRunInitAndExitCode(t *testing.T) {
	e := newEnv(t)
	c := e.create(e.config())
	out, code := e.run(c, "sh", "-c", "echo hello from $(hostname); echo pid $$; exit 3")
	if code != 3 {
		t.Errorf("exit code %d, want 3 (output %q)", code, out)
	}
	if err := containsAll(out, "hello from cfdtest", "pid 1"); err != nil {
		t.Errorf("%v in %q", err, out)
	}
	if st, _ := c.Status(); st != cfd.Stopped {
		t.Errorf("status after exit = %s, want stopped", st)
	}
}

func TestCreateStartStatus(t *testing.T) {
	e := newEnv(t)
	c := e.create(e.config())
	if st, _ := c.Status(); st != cfd.Creating {
		t.Errorf("status before ForkInit = %s, want creating", st)
	}
	p := &cfd.Process{Args: []string{"sleep", "1000"}, Env: []string{"PATH=/bin"}}
	if err := c.ForkInit(p); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.KillAll(); p.Wait() })
	if st, _ := c.Status(); st != cfd.Created {
		t.Errorf("status after ForkInit = %s, want created", st)
	}
	if err := c.ForkInit(&cfd.Process{Args: []string{"true"}}); !errors.Is(err, cfd.ErrInitStarted) {
		t.Errorf("second ForkInit: %v, want ErrInitStarted", err)
	}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	if st, _ := c.Status(); st != cfd.Running {
		t.Errorf("status after Start = %s, want running", st)
	}
	if err := c.Start(); !errors.Is(err, cfd.ErrAlreadyStart) {
		t.Errorf("second Start: %v", err)
	}
}

func TestMissingBinaryFailsAtForkInit(t *testing.T) {
	e := newEnv(t)
	c := e.create(e.config())
	err := c.ForkInit(&cfd.Process{Args: []string{"no-such-program"}, Env: []string{"PATH=/bin"}})
	if err == nil || !strings.Contains(err.Error(), "executable file not found in $PATH") {
		t.Errorf("ForkInit of a missing program: %v", err)
	}
	err = c.ForkInit(&cfd.Process{Args: []string{"/bin/nope"}})
	if err == nil || !strings.Contains(err.Error(), "no such file or directory") {
		t.Errorf("ForkInit of a missing path: %v", err)
	}
}

func TestDuplicateID(t *testing.T) {
	e := newEnv(t)
	c := e.create(e.config())
	cfg := e.config()
	cfg.Cgroup += "-other"
	if _, err := cfd.Create(e.root, c.ID(), cfg); !errors.Is(err, cfd.ErrExist) {
		t.Errorf("Create with a used id: %v, want ErrExist", err)
	}
}

// Every namespace new: the container's differ from ours, and an exec'd
// process is in exactly init's, user namespace included.
func TestNamespacesNewAndExecJoinsAll(t *testing.T) {
	e := newEnv(t)
	cfg := e.config()
	cfg.Namespaces = newNS(append(allNS, unix.CLONE_NEWUSER, unix.CLONE_NEWTIME)...)
	cfg.UIDMappings = []cfd.IDMap{{ContainerID: 0, HostID: 100000, Size: 65536}}
	cfg.GIDMappings = []cfd.IDMap{{ContainerID: 0, HostID: 100000, Size: 65536}}
	// The rootfs must be usable by the mapped root.
	if err := chownTree(e.rootfs, 100000, 100000); err != nil {
		t.Fatal(err)
	}
	c := e.create(cfg)
	init := e.startSleeping(c)
	names := []string{"user", "mnt", "pid", "uts", "ipc", "net", "cgroup", "time"}
	script := ""
	for _, n := range names {
		script += "readlink /proc/self/ns/" + n + "; "
	}
	out := strings.Fields(e.mustExec(c, "sh", "-c", script+"cat /proc/self/uid_map; id -u"))
	for i, n := range names {
		initNS := nsInode(t, strconv.Itoa(init.Pid), n)
		if out[i] != initNS {
			t.Errorf("exec'd process %s namespace %s, init's %s", n, out[i], initNS)
		}
		if out[i] == nsInode(t, "self", n) {
			t.Errorf("%s namespace is the host's", n)
		}
	}
	if got := strings.Join(out[len(names):], " "); got != "0 100000 65536 0" {
		t.Errorf("uid_map and id = %q", got)
	}
}

func chownTree(dir string, uid, gid int) error {
	return filepath.Walk(dir, func(p string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, uid, gid)
	})
}

// Namespaces not listed are inherited; listed with a path they are joined.
func TestNamespacesInheritedAndJoined(t *testing.T) {
	e := newEnv(t)
	cfgA := e.config()
	a := e.create(cfgA)
	initA := e.startSleeping(a)

	cfgB := e.config()
	cfgB.Cgroup += "-b"
	pidA := strconv.Itoa(initA.Pid)
	cfgB.Namespaces = []cfd.Namespace{
		{Type: unix.CLONE_NEWNS}, {Type: unix.CLONE_NEWPID}, // new
		{Type: unix.CLONE_NEWNET, Path: "/proc/" + pidA + "/ns/net"}, // joined
		{Type: unix.CLONE_NEWUTS, Path: "/proc/" + pidA + "/ns/uts"},
		{Type: unix.CLONE_NEWIPC, Path: "/proc/" + pidA + "/ns/ipc"},
		// cgroup: inherited
	}
	cfgB.Hostname = ""
	b := e.create(cfgB)
	initB := e.startSleeping(b)
	pidB := strconv.Itoa(initB.Pid)
	for _, n := range []string{"net", "uts", "ipc"} {
		if nsInode(t, pidB, n) != nsInode(t, pidA, n) {
			t.Errorf("%s namespace not joined", n)
		}
	}
	for _, n := range []string{"mnt", "pid"} {
		if nsInode(t, pidB, n) == nsInode(t, pidA, n) || nsInode(t, pidB, n) == nsInode(t, "self", n) {
			t.Errorf("%s namespace not new", n)
		}
	}
	if nsInode(t, pidB, "cgroup") != nsInode(t, "self", "cgroup") {
		t.Errorf("cgroup namespace not inherited")
	}
	if out := e.mustExec(b, "hostname"); strings.TrimSpace(out) != "cfdtest" {
		t.Errorf("hostname in joined uts namespace = %q", out)
	}

	cfgC := e.config()
	cfgC.Cgroup += "-c"
	cfgC.Namespaces = append(newNS(unix.CLONE_NEWNS), cfd.Namespace{Type: unix.CLONE_NEWNET, Path: "/proc/" + pidA + "/ns/uts"})
	if c, err := cfd.Create(e.root, "cfdtest-badns-"+pidA, cfgC); err == nil {
		err = c.ForkInit(&cfd.Process{Args: []string{"true"}})
		c.Destroy()
		if err == nil || !strings.Contains(err.Error(), "it is a uts namespace") {
			t.Errorf("joining a uts namespace as net: %v", err)
		}
	}
}

// A user namespace (and time, cgroup) joined by path at Create.
func TestJoinUserNamespace(t *testing.T) {
	e := newEnv(t)
	if err := chownTree(e.rootfs, 100000, 100000); err != nil {
		t.Fatal(err)
	}
	cfgA := e.config()
	cfgA.Namespaces = newNS(append(allNS, unix.CLONE_NEWUSER, unix.CLONE_NEWTIME)...)
	cfgA.UIDMappings = []cfd.IDMap{{ContainerID: 0, HostID: 100000, Size: 65536}}
	cfgA.GIDMappings = cfgA.UIDMappings
	a := e.create(cfgA)
	pidA := strconv.Itoa(e.startSleeping(a).Pid)

	cfgB := e.config()
	cfgB.Cgroup += "-b"
	cfgB.Namespaces = newNS(unix.CLONE_NEWNS, unix.CLONE_NEWPID)
	for _, n := range []struct {
		t    int
		name string
	}{{unix.CLONE_NEWUSER, "user"}, {unix.CLONE_NEWNET, "net"}, {unix.CLONE_NEWUTS, "uts"}, {unix.CLONE_NEWIPC, "ipc"}, {unix.CLONE_NEWCGROUP, "cgroup"}, {unix.CLONE_NEWTIME, "time"}} {
		cfgB.Namespaces = append(cfgB.Namespaces, cfd.Namespace{Type: n.t, Path: "/proc/" + pidA + "/ns/" + n.name})
	}
	cfgB.Hostname = ""
	b := e.create(cfgB)
	pidB := strconv.Itoa(e.startSleeping(b).Pid)
	for _, n := range []string{"user", "net", "uts", "ipc", "cgroup", "time"} {
		if nsInode(t, pidB, n) != nsInode(t, pidA, n) {
			t.Errorf("%s namespace not joined", n)
		}
	}
	if out := e.mustExec(b, "sh", "-c", "cat /proc/self/uid_map; id -u; touch /made-by-b"); !strings.Contains(out, "0     100000      65536") || !strings.HasSuffix(out, "0\n") {
		t.Errorf("in b: %q", out)
	}
	if fi, err := os.Stat(filepath.Join(e.rootfs, "made-by-b")); err != nil || fi.Sys().(*syscall.Stat_t).Uid != 100000 {
		t.Errorf("file made by root of b: %v, %+v", err, fi)
	}
}

// Each mount type, built outside, attached inside.
func TestMountTree(t *testing.T) {
	for _, disable := range []string{"", "proc-pidns"} {
		t.Run("disable="+disable, func(t *testing.T) {
			t.Setenv("CONTAINERFD_DISABLE", disable)
			e := newEnv(t)
			host := t.TempDir()
			os.WriteFile(filepath.Join(host, "file"), []byte("from host\n"), 0o644)
			os.MkdirAll(filepath.Join(host, "sub"), 0o755)
			cfg := e.config()
			ro := uint64(unix.MOUNT_ATTR_RDONLY)
			cfg.Mounts = []mounttree.Mount{
				procMount(),
				{Type: "tmpfs", Source: "tmpfs", Target: "/dev", Data: []string{"mode=755", "size=65536k"}, Attr: unix.MOUNT_ATTR_NOSUID},
				{Type: "devpts", Source: "devpts", Target: "/dev/pts", Data: []string{"newinstance", "ptmxmode=0666", "mode=0620"}},
				{Type: "mqueue", Source: "mqueue", Target: "/dev/mqueue"},
				{Type: "sysfs", Source: "sysfs", Target: "/sys", Attr: ro},
				{Type: "cgroup2", Source: "cgroup", Target: "/sys/fs/cgroup", Attr: ro},
				{Type: "bind", Source: host, Target: "/mnt/dir", Recursive: true, Attr: ro},
				{Type: "bind", Source: filepath.Join(host, "file"), Target: "/mnt/file"},
				{Type: "tmpfs", Source: "tmpfs", Target: "/tmp", Attr: unix.MOUNT_ATTR_NOEXEC | unix.MOUNT_ATTR_NODEV},
			}
			c := e.create(cfg)
			e.startSleeping(c)
			mi := e.mustExec(c, "cat", "/proc/self/mountinfo")
			for _, want := range []string{
				e.rootfsRoot() + " / rw", " /proc rw,nosuid,nodev,noexec", " /dev rw,nosuid", " /dev/pts ", " /dev/mqueue ",
				" /sys ro", " /sys/fs/cgroup ro", " /mnt/dir ro", " /mnt/file ", " /tmp rw,nodev,noexec",
				" - proc ", " - tmpfs ", " - devpts ", " - mqueue ", " - sysfs ", " - cgroup2 ",
			} {
				if !strings.Contains(mi, want) {
					t.Errorf("mountinfo lacks %q:\n%s", want, mi)
				}
			}
			if strings.Count(mi, "\n") != len(cfg.Mounts)+1 {
				t.Errorf("mountinfo has other mounts than ours (old root not detached?):\n%s", mi)
			}
			// Our proc (pid 1 is init), our sysfs (only lo), the binds.
			if out := e.mustExec(c, "sh", "-c", "cat /proc/1/cmdline; echo; cat /mnt/file; ls /sys/class/net; echo x 2>/dev/null > /mnt/dir/y || echo readonly"); out != "sleep\x001000\x00\nfrom host\nlo\nreadonly\n" {
				t.Errorf("inside the container: %q", out)
			}
		})
	}
}

func TestNoPivot(t *testing.T) {
	e := newEnv(t)
	cfg := e.config()
	cfg.NoPivot = true
	c := e.create(cfg)
	out, code := e.run(c, "sh", "-c", "ls /; cat /proc/self/mountinfo | wc -l")
	if code != 0 || !strings.Contains(out, "bin") {
		t.Errorf("no-pivot container: exit %d, %q", code, out)
	}
}

func TestReadonlyRoot(t *testing.T) {
	e := newEnv(t)
	cfg := e.config()
	cfg.RootReadonly = true
	c := e.create(cfg)
	out, _ := e.run(c, "sh", "-c", "touch /x && echo writable; grep ' / ro' /proc/self/mountinfo")
	if strings.Contains(out, "writable") || !strings.Contains(out, e.rootfsRoot()+" / ro") {
		t.Errorf("read-only root: %q", out)
	}
}

// Wait and PollFD report the last process, not init.
func TestWaitForLastProcess(t *testing.T) {
	e := newEnv(t)
	cfg := e.config()
	// A shared pid namespace: a child may outlive init.
	cfg.Namespaces = newNS(unix.CLONE_NEWNS, unix.CLONE_NEWUTS)
	cfg.Mounts = []mounttree.Mount{devNull()}
	c := e.create(cfg)
	o := newOutput(t)
	p := proc(o, "sh", "-c", "sleep 1 >/dev/null 2>&1 & exit 0")
	pfd, err := func() (int, error) {
		if err := c.ForkInit(p); err != nil {
			return -1, err
		}
		fd, err := c.PollFD()
		if err != nil {
			return -1, err
		}
		return fd, c.Start()
	}()
	o.collect()
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(pfd)
	if _, err := p.Wait(); err != nil {
		t.Fatal(err)
	}
	fds := []unix.PollFd{{Fd: int32(pfd), Events: unix.POLLIN}}
	if n, _ := unix.Poll(fds, 0); n != 0 {
		t.Fatal("PollFD fired when init exited, while its child still runs")
	}
	pids, _ := c.Pids()
	if len(pids) != 1 {
		t.Errorf("pids after init exit: %v, want the sleeping child", pids)
	}
	if n, _ := unix.Poll(fds, 5000); n != 1 || fds[0].Revents&unix.POLLHUP == 0 {
		t.Errorf("PollFD did not hang up after the last process left: n=%d revents=%#x", n, fds[0].Revents)
	}
	if err := c.Wait(); err != nil {
		t.Error(err)
	}
}

func TestKillAll(t *testing.T) {
	for _, mode := range []struct{ cgroup, disable string }{{"hybrid", ""}, {"v2", ""}, {"v1", ""}, {"hybrid", "cgroup-kill"}, {"v2", "cgroup-kill"}} {
		t.Run(mode.cgroup+"/"+mode.disable, func(t *testing.T) {
			setCgroupMode(t, mode.cgroup)
			t.Setenv("CONTAINERFD_DISABLE", mode.disable)
			e := newEnv(t)
			cfg := e.config()
			cfg.Namespaces = newNS(unix.CLONE_NEWNS, unix.CLONE_NEWUTS) // no pid ns: killing init alone would not do
			cfg.Mounts = []mounttree.Mount{devNull()}
			c := e.create(cfg)
			p := &cfd.Process{Args: []string{"sh", "-c", "sleep 1000 & sleep 1000 & wait"}, Env: []string{"PATH=/bin"}}
			if err := c.ForkInit(p); err != nil {
				t.Fatal(err)
			}
			if err := c.Start(); err != nil {
				t.Fatal(err)
			}
			waitFor(t, func() bool { pids, _ := c.Pids(); return len(pids) == 3 })
			if err := c.KillAll(); err != nil {
				t.Fatal(err)
			}
			ws, _ := p.Wait()
			if ws.Signal() != unix.SIGKILL {
				t.Errorf("init: %v, want killed", ws)
			}
			if err := c.Wait(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// Init, as soon as the container is created (containerd's shim reads its
// cgroups then), and an exec'd process are in the container's cgroup in
// every hierarchy: the v1 ones they join by themselves, right after the clone
// (memory: once the stage's runtime has started).
func TestProcessesJoinEveryHierarchy(t *testing.T) {
	for _, mode := range []string{"hybrid", "v1"} {
		t.Run(mode, func(t *testing.T) {
			setCgroupMode(t, mode)
			e := newEnv(t)
			cfg := e.config()
			// No cgroup namespace: /proc/self/cgroup shows host paths.
			cfg.Namespaces = newNS(unix.CLONE_NEWNS, unix.CLONE_NEWPID, unix.CLONE_NEWUTS)
			c := e.create(cfg)
			init := &cfd.Process{Args: []string{"sleep", "1000"}, Env: []string{"PATH=/bin"}}
			if err := c.ForkInit(init); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() {
				c.KillAll()
				init.Wait()
			})
			defer init.Signal(unix.SIGKILL) // KillAll misses it if it is not in
			b, err := os.ReadFile("/proc/" + strconv.Itoa(init.Pid) + "/cgroup")
			if err != nil {
				t.Fatal(err)
			}
			if err := c.Start(); err != nil {
				t.Fatal(err)
			}
			for name, out := range map[string]string{"created init": string(b), "exec": e.mustExec(c, "cat", "/proc/self/cgroup")} {
				v1 := 0
				for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
					f := strings.SplitN(line, ":", 3)
					if len(f) != 3 || f[0] == "0" {
						continue // cgroup2 goes by CLONE_INTO_CGROUP
					}
					v1++
					if f[2] != e.cgroup {
						t.Errorf("%s: %s, want %s", name, line, e.cgroup)
					}
				}
				if v1 == 0 {
					t.Errorf("%s: no v1 hierarchy in %q", name, out)
				}
			}
		})
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for i := 0; i < 500; i++ {
		if cond() {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("condition not met in 5s")
}

func TestFreezeThaw(t *testing.T) {
	for _, mode := range []string{"hybrid", "v1", "v2"} {
		t.Run(mode, func(t *testing.T) {
			setCgroupMode(t, mode)
			e := newEnv(t)
			c := e.create(e.config())
			init := e.startSleeping(c)
			if err := c.Freeze(); err != nil {
				t.Fatal(err)
			}
			if st, _ := c.Status(); st != cfd.Paused {
				t.Errorf("status frozen = %s", st)
			}
			if s := procState(t, init.Pid); s != "S" && s != "D" {
				t.Logf("frozen init state %s", s)
			}
			if err := c.Thaw(); err != nil {
				t.Fatal(err)
			}
			if st, _ := c.Status(); st != cfd.Running {
				t.Errorf("status thawed = %s", st)
			}
			e.mustExec(c, "true")
		})
	}
}

func procState(t *testing.T, pid int) string {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	return strings.Fields(s[strings.LastIndexByte(s, ')')+1:])[0]
}

// A listener made from outside in the container's network namespace is
// reachable from inside and not from the host.
func TestSocket(t *testing.T) {
	e := newEnv(t)
	c := e.create(e.config())
	e.startSleeping(c)
	// Bring lo up with a socket of the container's.
	s, err := c.Socket(unix.AF_INET, unix.SOCK_DGRAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	ifr, _ := unix.NewIfreq("lo")
	ifr.SetUint16(unix.IFF_UP)
	if err := unix.IoctlIfreq(s, unix.SIOCSIFFLAGS, ifr); err != nil {
		t.Fatal(err)
	}
	unix.Close(s)

	l, err := c.Socket(unix.AF_INET, unix.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(l)
	addr := &unix.SockaddrInet4{Port: 47321, Addr: [4]byte{127, 0, 0, 1}}
	if err := unix.Bind(l, addr); err != nil {
		t.Fatal(err)
	}
	if err := unix.Listen(l, 1); err != nil {
		t.Fatal(err)
	}
	// From the host: nobody listens there.
	h, _ := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err := unix.Connect(h, addr); err == nil {
		t.Error("the container's listener is reachable from the host")
	}
	unix.Close(h)
	// From inside.
	done := make(chan string, 1)
	go func() {
		conn, _, err := unix.Accept(l)
		if err != nil {
			done <- err.Error()
			return
		}
		b := make([]byte, 64)
		n, _ := unix.Read(conn, b)
		unix.Close(conn)
		done <- string(b[:n])
	}()
	e.mustExec(c, "sh", "-c", "echo hello-inside | nc 127.0.0.1 47321")
	if got := <-done; strings.TrimSpace(got) != "hello-inside" {
		t.Errorf("listener got %q", got)
	}
}

func TestOpenAtStaysInRoot(t *testing.T) {
	e := newEnv(t)
	outside := filepath.Join(filepath.Dir(e.rootfs), "secret")
	if err := os.WriteFile(outside, []byte("host secret"), 0o600); err != nil {
		t.Fatal(err)
	}
	defer os.Remove(outside)
	os.WriteFile(filepath.Join(e.rootfs, "secret"), []byte("container file"), 0o600)
	os.Symlink("../../../../../secret", filepath.Join(e.rootfs, "rel"))
	os.Symlink(outside, filepath.Join(e.rootfs, "abs"))
	os.Symlink("/rel", filepath.Join(e.rootfs, "chain"))
	c := e.create(e.config())
	e.startSleeping(c)
	for _, p := range []string{"../secret", "../../../secret", "/secret", "rel", "abs", "chain", strings.TrimPrefix(outside, "/")} {
		fd, err := c.OpenAt(p, unix.O_RDONLY, 0)
		if err != nil {
			if !errors.Is(err, unix.ENOENT) {
				t.Errorf("OpenAt(%q): %v", p, err)
			}
			continue
		}
		b := make([]byte, 64)
		n, _ := unix.Read(fd, b)
		unix.Close(fd)
		if string(b[:n]) != "container file" {
			t.Errorf("OpenAt(%q) read %q: escaped the root", p, b[:n])
		}
	}
}

func TestMountIntoRunningContainer(t *testing.T) {
	e := newEnv(t)
	c := e.create(e.config())
	e.startSleeping(c)
	host := t.TempDir()
	os.WriteFile(filepath.Join(host, "hello"), []byte("late mount\n"), 0o644)
	if err := c.Mount(mounttree.Mount{Type: "bind", Source: host, Target: "/late/bind", Attr: unix.MOUNT_ATTR_RDONLY}); err != nil {
		t.Fatal(err)
	}
	if err := c.Mount(mounttree.Mount{Type: "tmpfs", Source: "late", Target: "/late/tmp"}); err != nil {
		t.Fatal(err)
	}
	out := e.mustExec(c, "sh", "-c", "cat /late/bind/hello; grep -c /late /proc/self/mountinfo")
	if out != "late mount\n2\n" {
		t.Errorf("inside: %q", out)
	}
}

func TestKeyringPerContainer(t *testing.T) {
	e := newEnv(t)
	a := e.create(e.config())
	cfgB := e.config()
	cfgB.Cgroup += "-b"
	b := e.create(cfgB)
	e.startSleeping(a)
	e.startSleeping(b)
	keysA := e.mustExec(a, "cat", "/proc/keys")
	keysB := e.mustExec(b, "cat", "/proc/keys")
	if !strings.Contains(keysA, "containerfd."+a.ID()) || strings.Contains(keysA, "containerfd."+b.ID()) {
		t.Errorf("container a sees keys:\n%s", keysA)
	}
	if !strings.Contains(keysB, "containerfd."+b.ID()) || strings.Contains(keysB, "containerfd."+a.ID()) {
		t.Errorf("container b sees keys:\n%s", keysB)
	}
}

// Two processes may destroy the same container at once: a foreground run
// whose init a delete --force has just killed destroys it too. The one
// that comes second finds it gone, and that is no error: before its lock
// (the state directory removed) or waiting for it (removed meanwhile).
func TestDestroyTwice(t *testing.T) {
	e := newEnv(t)
	c := e.create(e.config())
	p := &cfd.Process{Args: []string{"sleep", "1000"}, Env: []string{"PATH=/bin"}}
	if err := c.ForkInit(p); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.KillAll(); p.Wait() })
	before, err := cfd.Load(e.root, c.ID())
	if err != nil {
		t.Fatal(err)
	}
	waiting, err := cfd.Load(e.root, c.ID())
	if err != nil {
		t.Fatal(err)
	}
	if err := waiting.Lock(); err != nil {
		t.Fatal(err)
	}
	waiting.Unlock()
	if err := c.Destroy(); err != nil {
		t.Fatal(err)
	}
	if err := before.Destroy(); err != nil {
		t.Errorf("Destroy of a container destroyed before its lock: %v", err)
	}
	if err := waiting.Destroy(); err != nil {
		t.Errorf("Destroy of a container destroyed while it held its lock's fd: %v", err)
	}
}
