package libcontainerfd_test

import (
	"errors"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	cfd "github.com/containerfd/containerfd/libcontainerfd"
	"github.com/containerfd/containerfd/libcontainerfd/cgroups"
	"github.com/containerfd/containerfd/libcontainerfd/mounttree"
	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// devConfig is a container with its own /dev, like runc's default spec.
func (e *env) devConfig() *cfd.Config {
	cfg := e.config()
	cfg.Mounts = append(cfg.Mounts,
		mounttree.Mount{Type: "tmpfs", Source: "tmpfs", Target: "/dev", Attr: unix.MOUNT_ATTR_NOSUID, Data: []string{"mode=755"}},
		mounttree.Mount{Type: "devpts", Source: "devpts", Target: "/dev/pts", Data: []string{"newinstance", "ptmxmode=0666", "mode=0620"}},
		mounttree.Mount{Type: "sysfs", Source: "sysfs", Target: "/sys", Attr: unix.MOUNT_ATTR_RDONLY},
	)
	mode := os.FileMode(0o666)
	zero := uint32(0)
	for _, d := range []struct {
		path         string
		major, minor int64
	}{{"/dev/null", 1, 3}, {"/dev/zero", 1, 5}, {"/dev/tty", 5, 0}} {
		cfg.Devices = append(cfg.Devices, specs.LinuxDevice{Path: d.path, Type: "c", Major: d.major, Minor: d.minor, FileMode: &mode, UID: &zero, GID: &zero})
	}
	cfg.Links = []cfd.Link{{Path: "/dev/fd", Target: "/proc/self/fd"}, {Path: "/dev/ptmx", Target: "pts/ptmx"}}
	return cfg
}

func TestTerminal(t *testing.T) {
	e := newEnv(t)
	c := e.create(e.devConfig())
	p := &cfd.Process{Args: []string{"sh", "-c", "tty; read x; echo got $x"}, Env: []string{"PATH=/bin"}, Terminal: true,
		ConsoleSize: &specs.Box{Height: 30, Width: 100}}
	if err := c.ForkInit(p); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.KillAll(); p.Wait() })
	if p.Console == nil {
		t.Fatal("no pty master with Terminal")
	}
	defer p.Console.Close()
	if ws, err := unix.IoctlGetWinsize(int(p.Console.Fd()), unix.TIOCGWINSZ); err != nil || ws.Row != 30 || ws.Col != 100 {
		t.Errorf("console size %+v %v", ws, err)
	}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	p.Console.Write([]byte("ping\n"))
	out := readFor(p.Console, "got ping")
	if !strings.Contains(out, "/dev/pts/0") || !strings.Contains(out, "got ping") {
		t.Errorf("pty output %q", out)
	}
}

func readFor(f *os.File, want string) string {
	var sb strings.Builder
	f.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 256)
	for !strings.Contains(sb.String(), want) {
		n, err := f.Read(buf)
		sb.Write(buf[:n])
		if err != nil {
			break
		}
	}
	return sb.String()
}

func TestDevicesLinksMaskedReadonly(t *testing.T) {
	for _, userns := range []bool{false, true} {
		t.Run("userns="+strconv.FormatBool(userns), func(t *testing.T) {
			e := newEnv(t)
			cfg := e.devConfig()
			if userns {
				cfg.Namespaces = append(cfg.Namespaces, cfd.Namespace{Type: unix.CLONE_NEWUSER})
				cfg.UIDMappings = []cfd.IDMap{{ContainerID: 0, HostID: 100000, Size: 65536}}
				cfg.GIDMappings = cfg.UIDMappings
				if err := chownTree(e.rootfs, 100000, 100000); err != nil {
					t.Fatal(err)
				}
			}
			cfg.MaskedPaths = []string{"/proc/keys", "/proc/acpi", "/sys/firmware", "/proc/no-such-file"}
			cfg.ReadonlyPaths = []string{"/proc/sys", "/proc/sysrq-trigger"}
			c := e.create(cfg)
			e.startSleeping(c)
			out := e.mustExec(c, "sh", "-c", `
				stat -c '%F %t:%T %a' /dev/null /dev/zero
				echo hi > /dev/null && echo null-ok
				readlink /dev/fd; readlink /dev/ptmx
				echo keys=$(wc -c < /proc/keys) acpi=$(ls /proc/acpi | wc -l) firmware=$(ls /sys/firmware | wc -l)
				echo 1 2>/dev/null > /proc/sys/vm/drop_caches || echo sys-readonly
				grep -c ' /proc/sys ro' /proc/self/mountinfo`)
			want := "character special file 1:3 666\ncharacter special file 1:5 666\nnull-ok\n/proc/self/fd\npts/ptmx\nkeys=0 acpi=0 firmware=0\nsys-readonly\n1\n"
			if out != want {
				t.Errorf("inside:\n%s\nwant:\n%s", out, want)
			}
		})
	}
}

func TestProcessSettings(t *testing.T) {
	e := newEnv(t)
	c := e.create(e.config())
	e.startSleeping(c)
	o := newOutput(t)
	adj, umask := 500, uint32(0o077)
	p := proc(o, "sh", "-c", `grep -E '^(CapInh|CapPrm|CapEff|CapBnd|CapAmb|NoNewPrivs)' /proc/self/status; ulimit -n; cat /proc/self/oom_score_adj; umask; id -u; id -G`)
	p.UID, p.GID, p.AdditionalGids = 1000, 1000, []uint32{2000, 3000}
	p.Umask = &umask
	p.NoNewPrivileges = true
	p.OOMScoreAdj = &adj
	p.Rlimits = []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Soft: 512, Hard: 512}}
	three := []string{"CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"}
	p.Capabilities = &specs.LinuxCapabilities{Bounding: three, Effective: []string{"CAP_NET_BIND_SERVICE"},
		Permitted: []string{"CAP_NET_BIND_SERVICE"}, Inheritable: []string{"CAP_NET_BIND_SERVICE"}, Ambient: []string{"CAP_NET_BIND_SERVICE"}}
	if err := c.Exec(p); err != nil {
		o.collect()
		t.Fatal(err)
	}
	p.Wait()
	got := strings.Fields(o.collect())
	want := []string{"CapInh:", "0000000000000400", "CapPrm:", "0000000000000400", "CapEff:", "0000000000000400",
		"CapBnd:", "0000000020000420", "CapAmb:", "0000000000000400", "NoNewPrivs:", "1", "512", "500", "0077", "1000", "1000", "2000", "3000"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("process settings:\n got %v\nwant %v", got, want)
	}
}

func TestSysctl(t *testing.T) {
	e := newEnv(t)
	cfg := e.config()
	cfg.Sysctl = map[string]string{"net.ipv4.ip_forward": "1", "kernel.shmmni": "1234"}
	c := e.create(cfg)
	e.startSleeping(c)
	if out := e.mustExec(c, "cat", "/proc/sys/net/ipv4/ip_forward", "/proc/sys/kernel/shmmni"); out != "1\n1234\n" {
		t.Errorf("sysctls inside: %q", out)
	}
	host, _ := os.ReadFile("/proc/sys/kernel/shmmni")
	if strings.TrimSpace(string(host)) == "1234" {
		t.Error("the container's sysctl reached the host")
	}

	cfg = e.config()
	cfg.Cgroup += "-2"
	cfg.Sysctl = map[string]string{"kernel.panic": "1"}
	c2, err := cfd.Create(e.root, "cfdtest-sysctl2-"+strconv.Itoa(os.Getpid()), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Destroy()
	if err := c2.ForkInit(&cfd.Process{Args: []string{"true"}}); err == nil || !strings.Contains(err.Error(), "not namespaced") {
		t.Errorf("non-namespaced sysctl: %v", err)
	}
}

// TestResources: memory and pids limits reach the container's cgroup, in
// v1 (this host) and on cgroup2 where it has those controllers (the VM of
// hack/vm.sh; this host's cgroup2 has none).
func TestResources(t *testing.T) {
	for _, mode := range []string{"v1", "v2"} {
		t.Run(mode, func(t *testing.T) {
			setCgroupMode(t, mode)
			e := newEnv(t)
			if mode == "v2" {
				for _, ctrl := range []string{"memory", "pids"} {
					if !v2RootEnables(t, ctrl) {
						t.Skipf("cgroup2 here does not enable the %s controller for its children", ctrl)
					}
				}
			}
			cfg := e.config()
			limit, pids := int64(64<<20), int64(20)
			cfg.Resources = &specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: &limit}, Pids: &specs.LinuxPids{Limit: &pids}}
			c := e.create(cfg)
			e.startSleeping(c)
			paths := c.Cgroup().Paths()
			memFile, pidsDir := paths["memory"]+"/memory.limit_in_bytes", paths["pids"]
			if mode == "v2" {
				memFile, pidsDir = paths[cgroups.KeyUnified]+"/memory.max", paths[cgroups.KeyUnified]
			}
			if b, err := os.ReadFile(memFile); strings.TrimSpace(string(b)) != strconv.FormatInt(limit, 10) {
				t.Errorf("%s = %q (%v)", memFile, b, err)
			}
			if b, err := os.ReadFile(pidsDir + "/pids.max"); strings.TrimSpace(string(b)) != "20" {
				t.Errorf("pids.max = %q (%v)", b, err)
			}
		})
	}
}

// v2RootEnables reports whether the cgroup2 root of the forced mode enables
// ctrl for its children (the runtime leaves the root's subtree_control as
// the host set it).
func v2RootEnables(t *testing.T, ctrl string) bool {
	t.Helper()
	for _, root := range []string{"/sys/fs/cgroup", "/sys/fs/cgroup/unified"} {
		var st unix.Statfs_t
		if unix.Statfs(root, &st) != nil || st.Type != unix.CGROUP2_SUPER_MAGIC {
			continue
		}
		on, err := os.ReadFile(root + "/cgroup.subtree_control")
		if err != nil {
			t.Fatal(err)
		}
		return slices.Contains(strings.Fields(string(on)), ctrl)
	}
	return false
}

// A container runs in 1 MiB of memory: nothing of ours is charged to it.
// Init and exec are started directly (the process has capabilities, none
// of them CAP_SYS_PTRACE), so no Go runtime starts in the container's
// cgroup; through the Go stage, only a v1 memory hierarchy can be joined
// late enough (hybrid and v1).
func TestSmallMemoryLimit(t *testing.T) {
	caps := &specs.LinuxCapabilities{Bounding: []string{"CAP_KILL"}, Effective: []string{"CAP_KILL"}, Permitted: []string{"CAP_KILL"}}
	for _, mode := range []string{"hybrid", "v1", "v2"} {
		t.Run(mode, func(t *testing.T) {
			setCgroupMode(t, mode)
			e := newEnv(t)
			if mode == "v2" && !v2RootEnables(t, "memory") {
				t.Skip("cgroup2 here does not enable the memory controller for its children")
			}
			cfg := e.config()
			limit := int64(1 << 20)
			cfg.Resources = &specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: &limit}}
			c := e.create(cfg)
			p := &cfd.Process{Args: []string{"sleep", "1000"}, Env: []string{"PATH=/bin"}, Capabilities: caps}
			if err := c.ForkInit(p); err != nil {
				t.Fatalf("ForkInit under a 1 MiB limit: %v", err)
			}
			t.Cleanup(func() { c.KillAll(); p.Wait() })
			if err := c.Start(); err != nil {
				t.Fatalf("Start under a 1 MiB limit: %v", err)
			}
			o := newOutput(t)
			x := proc(o, "true")
			x.Capabilities = caps
			if err := c.Exec(x); err != nil {
				t.Fatalf("exec true under a 1 MiB limit: %v", err)
			}
			if ws, err := x.Wait(); err != nil || cfd.ExitCode(ws) != 0 {
				t.Errorf("exec true under a 1 MiB limit: %v %v: %s", ws, err, o.collect())
			}
			paths := c.Cgroup().Paths()
			if mode == "v2" {
				b, _ := os.ReadFile(paths[cgroups.KeyUnified] + "/memory.events")
				if !strings.Contains(string(b), "\nmax 0\n") || !strings.Contains(string(b), "oom_kill 0") {
					t.Errorf("memory.events:\n%s", b)
				}
				return
			}
			b, _ := os.ReadFile(paths["memory"] + "/memory.failcnt")
			if strings.TrimSpace(string(b)) != "0" {
				t.Errorf("memory.failcnt = %q, want 0", b)
			}
		})
	}
}

func TestBeforePivot(t *testing.T) {
	e := newEnv(t)
	cfg := e.config()
	var sawPid int
	var sawRoot string
	cfg.BeforePivot = func(pid int) error {
		sawPid = pid
		// Init is not yet in its root: it still sees the host's /.
		sawRoot, _ = os.Readlink("/proc/" + strconv.Itoa(pid) + "/root")
		return nil
	}
	c := e.create(cfg)
	p := e.startSleeping(c)
	if sawPid != p.Pid || sawRoot != "/" {
		t.Errorf("BeforePivot saw pid %d root %q; init is %d", sawPid, sawRoot, p.Pid)
	}

	cfg = e.config()
	cfg.Cgroup += "-fail"
	cfg.BeforePivot = func(int) error { return errors.New("hook refused") }
	c2, err := cfd.Create(e.root, "cfdtest-beforepivot-fail-"+strconv.Itoa(os.Getpid()), cfg)
	if err != nil {
		t.Fatal(err)
	}
	err = c2.ForkInit(&cfd.Process{Args: []string{"true"}})
	if err == nil || !strings.Contains(err.Error(), "hook refused") {
		t.Errorf("ForkInit with a failing BeforePivot: %v", err)
	}
	if err := c2.Destroy(); err != nil {
		t.Error(err)
	}
}

func TestEnter(t *testing.T) {
	e := newEnv(t)
	cfg := e.devConfig() // a script is read by its interpreter from /dev/fd
	cfg.Namespaces = append(cfg.Namespaces, cfd.Namespace{Type: unix.CLONE_NEWUSER})
	cfg.UIDMappings = []cfd.IDMap{{ContainerID: 0, HostID: 100000, Size: 65536}}
	cfg.GIDMappings = cfg.UIDMappings
	if err := chownTree(e.rootfs, 100000, 100000); err != nil {
		t.Fatal(err)
	}
	c := e.create(cfg)
	init := e.startSleeping(c)
	os.WriteFile(e.rootfs+"/hello.sh", []byte("#!/bin/sh\necho in-container $(hostname)\n"), 0o755)
	for _, where := range []string{cfd.PathOnHost, cfd.PathInContainer} {
		// A static program: once the container has pivoted, a dynamic one
		// would look for its loader in the container.
		path, args := "/bin/busybox", []string{"sh", "-c", "readlink /proc/self/ns/net; readlink /proc/self/ns/user"}
		if where == cfd.PathInContainer {
			path, args = "/hello.sh", nil
		}
		cmd := &exec.Cmd{Path: path, Args: args}
		if err := c.Enter(cmd, where); err != nil {
			t.Fatal(err)
		}
		var stderr strings.Builder
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("%s: %v: %s %s", where, err, out, stderr.String())
		}
		want := nsInode(t, strconv.Itoa(init.Pid), "net") + "\n" + nsInode(t, strconv.Itoa(init.Pid), "user") + "\n"
		if where == cfd.PathInContainer {
			want = "in-container cfdtest\n"
		}
		if string(out) != want {
			t.Errorf("%s: %q, want %q", where, out, want)
		}
	}
}
