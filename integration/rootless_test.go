package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/containerfd/containerfd/internal/mountinfo"
	"github.com/containerfd/containerfd/internal/testutil"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// The rootless tests make a user of their own, with subordinate id ranges
// in /etc/subuid and /etc/subgid, and run containerfd as that user (the
// test itself is root). Everything is undone after the test: the user, its
// ranges, its files; a process of the user left running fails the test.

// rootlessUser is the test's unprivileged user (testutil.User) with a copy
// of containerfd it can run.
type rootlessUser struct {
	*testutil.User
	t        *testing.T
	binary   string // containerfd, where the user can run it
	cgroupFD int    // with UseCgroupFD: the cgroup2 dir commands start in
}

func newRootlessUser(t *testing.T) *rootlessUser {
	t.Helper()
	testutil.RequireRoot(t)
	u := &rootlessUser{User: testutil.NewUser(t), t: t, cgroupFD: -1}
	t.Cleanup(func() {
		// The default state root, under XDG_RUNTIME_DIR, must be empty.
		st := filepath.Join(u.XDG, "containerfd")
		if left, _ := os.ReadDir(st); len(left) > 0 {
			var names []string
			for _, e := range left {
				names = append(names, e.Name())
			}
			t.Errorf("user's state root %s not empty after the test: %v", st, names)
		}
	})
	bindir := u.dir(t.TempDir(), 0o755)
	testutil.Path(t, bindir)
	u.binary = filepath.Join(bindir, "containerfd")
	b, err := os.ReadFile(binary)
	if err == nil {
		err = os.WriteFile(u.binary, b, 0o755)
	}
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// dir makes dir the user's with mode and returns it.
func (u *rootlessUser) dir(dir string, mode os.FileMode) string {
	u.t.Helper()
	u.Own(u.t, dir, mode)
	return dir
}

// run runs the user's containerfd with args, in dir, with the user's
// environment (no --root: the default under XDG_RUNTIME_DIR).
func (u *rootlessUser) run(dir string, args ...string) result {
	u.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, u.binary, args...)
	cmd.Dir = dir
	cmd.Env = u.Env()
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: u.Credential()}
	if u.cgroupFD >= 0 {
		cmd.SysProcAttr.UseCgroupFD = true
		cmd.SysProcAttr.CgroupFD = u.cgroupFD
	}
	return runResult(u.t, cmd, args)
}

func (u *rootlessUser) ok(dir string, args ...string) string {
	u.t.Helper()
	r := u.run(dir, args...)
	if r.code != 0 {
		u.t.Fatalf("as %s: containerfd %s: %v", u.Name, strings.Join(args, " "), r)
	}
	return r.stdout
}

// bundle makes a bundle the user owns with `containerfd spec --rootless`
// run as the user, the test's rootfs (owned by root, as an image unpacked
// by another user would be), no terminal and args; edit changes the config.
// The container is deleted after the test.
func (u *rootlessUser) bundle(id string, edit func(*specs.Spec), args ...string) string {
	u.t.Helper()
	rootfs := testutil.Rootfs(u.t)
	dir, err := os.MkdirTemp("", "cfdrl-bundle-")
	if err != nil {
		u.t.Fatal(err)
	}
	u.t.Cleanup(func() { os.RemoveAll(dir) })
	u.dir(dir, 0o755)
	u.ok(dir, "spec", "--rootless")
	p := filepath.Join(dir, "config.json")
	b, err := os.ReadFile(p)
	if err != nil {
		u.t.Fatal(err)
	}
	var s specs.Spec
	if err := json.Unmarshal(b, &s); err != nil {
		u.t.Fatal(err)
	}
	s.Root.Path = rootfs
	s.Process.Terminal = false
	s.Process.Args = args
	if edit != nil {
		edit(&s)
	}
	if b, err = json.Marshal(&s); err != nil {
		u.t.Fatal(err)
	}
	if err := os.WriteFile(p, b, 0o644); err != nil {
		u.t.Fatal(err)
	}
	u.t.Cleanup(func() { u.run(dir, "delete", "--force", id) })
	return dir
}

// withSubids maps container ids 1… to the user's subordinate range, as
// podman does, so that container users other than root exist. The test
// must have called RequireSubids.
func (u *rootlessUser) withSubids(s *specs.Spec) {
	s.Linux.UIDMappings = append(s.Linux.UIDMappings, specs.LinuxIDMapping{ContainerID: 1, HostID: uint32(u.SubStart), Size: uint32(u.SubCount)})
	s.Linux.GIDMappings = append(s.Linux.GIDMappings, specs.LinuxIDMapping{ContainerID: 1, HostID: uint32(u.SubStart), Size: uint32(u.SubCount)})
}

// TestRootlessRun: as a user who is not root, `spec --rootless` and `run`
// work; the container's root is the user, its state goes under
// XDG_RUNTIME_DIR, and without a delegated cgroup it runs without one and
// says so once.
func TestRootlessRun(t *testing.T) {
	testutil.NoLeaks(t)
	u := newRootlessUser(t)
	id := testutil.ID(t)
	cg := testutil.CgroupPath(t)
	dir := u.bundle(id, func(s *specs.Spec) { s.Linux.CgroupsPath = cg },
		"sh", "-c", "id -u; cat /proc/self/uid_map; ls /sys/class/net >/dev/null && echo sys; echo hi > /dev/null && echo null")
	r := u.run(dir, "run", id)
	if r.code != 0 {
		t.Fatalf("run as %s: %v", u.Name, r)
	}
	want := fmt.Sprintf("0\n         0 %10d          1\nsys\nnull\n", u.UID)
	if r.stdout != want {
		t.Errorf("run: stdout %q, want %q", r.stdout, want)
	}
	if n := strings.Count(r.stderr, "has no cgroup"); n != 1 || !strings.Contains(r.stderr, "permission denied") {
		t.Errorf("run without a delegated cgroup: want one warning that says why, got stderr %q", r.stderr)
	}
	// The state was under XDG_RUNTIME_DIR, and is gone with the container.
	if _, err := os.Stat(filepath.Join(u.XDG, "containerfd")); err != nil {
		t.Errorf("state root under XDG_RUNTIME_DIR: %v", err)
	}
}

// TestRootlessExec: exec joins a rootless container; with the user's
// subordinate ids mapped, a file the container's root makes is the user's
// on the host, and one its uid 1000 makes is the mapped subordinate id's.
func TestRootlessExec(t *testing.T) {
	testutil.NoLeaks(t)
	u := newRootlessUser(t)
	u.RequireSubids(t)
	id := testutil.ID(t)
	data := u.dir(t.TempDir(), 0o777)
	testutil.Path(t, data)
	dir := u.bundle(id, func(s *specs.Spec) {
		u.withSubids(s)
		// The rootfs is root's, which the user cannot write to.
		if err := os.Mkdir(filepath.Join(s.Root.Path, "data"), 0o755); err != nil {
			t.Fatal(err)
		}
		s.Mounts = append(s.Mounts, specs.Mount{Destination: "/data", Type: "bind", Source: data, Options: []string{"rbind", "rw"}})
	}, "sleep", "1000")
	u.ok(dir, "run", "--detach", id)
	if st := u.ok(dir, "state", id); !strings.Contains(st, `"status": "running"`) {
		t.Fatalf("state: %s", st)
	}
	out := u.ok(dir, "exec", id, "sh", "-c", "id -u; cat /proc/self/uid_map | wc -l; touch /data/by-root")
	if out != "0\n2\n" {
		t.Errorf("exec: %q, want uid 0 and two map lines", out)
	}
	u.ok(dir, "exec", "--user", "1000:1000", id, "touch", "/data/by-1000")
	for name, want := range map[string][2]int{"by-root": {u.UID, u.GID}, "by-1000": {u.SubStart + 999, u.SubStart + 999}} {
		var st unix.Stat_t
		if err := unix.Stat(filepath.Join(data, name), &st); err != nil {
			t.Fatal(err)
		}
		if int(st.Uid) != want[0] || int(st.Gid) != want[1] {
			t.Errorf("%s: owner %d:%d on the host, want %d:%d", name, st.Uid, st.Gid, want[0], want[1])
		}
	}
	if ps := u.ok(dir, "ps", "--format", "json", id); !strings.HasPrefix(ps, "[") || ps == "[]\n" {
		t.Errorf("ps: %q", ps)
	}
	u.ok(dir, "kill", id, "KILL")
	waitKilled(t, u.run(dir, "wait", id))
	u.ok(dir, "delete", id)
}

// TestRootlessRefused: what a rootless container cannot have fails with a
// message that says why, and leaves nothing behind.
func TestRootlessRefused(t *testing.T) {
	testutil.NoLeaks(t)
	u := newRootlessUser(t)
	adj := -1000
	for _, c := range []struct {
		name string
		edit func(*specs.Spec)
		want string
	}{
		{"no user namespace", func(s *specs.Spec) {
			var nss []specs.LinuxNamespace
			for _, ns := range s.Linux.Namespaces {
				if ns.Type != specs.UserNamespace {
					nss = append(nss, ns)
				}
			}
			s.Linux.Namespaces = nss
			s.Linux.UIDMappings, s.Linux.GIDMappings = nil, nil
		}, "needs a new user namespace"},
		{"oom score below the caller's", func(s *specs.Spec) { s.Process.OOMScoreAdj = &adj },
			"oomScoreAdj -1000 is below the caller's"},
		{"limit without a cgroup", func(s *specs.Spec) {
			limit := int64(64 << 20)
			s.Linux.Resources = &specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: &limit}}
		}, "linux.resources.memory: cannot be enforced without a cgroup"},
		{"idmapped mount", func(s *specs.Spec) {
			s.Mounts = append(s.Mounts, specs.Mount{Destination: "/mnt", Type: "bind", Source: "/tmp", Options: []string{"rbind", "idmap"}})
		}, "an idmapped mount needs CAP_SYS_ADMIN in the user namespace of the filesystem"},
		{"network device", func(s *specs.Spec) {
			s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.NetworkNamespace})
			s.Linux.NetDevices = map[string]specs.LinuxNetDevice{"lo": {Name: "lo1"}}
		}, "moving a host interface needs CAP_NET_ADMIN"},
		{"device not on the host", func(s *specs.Spec) {
			s.Linux.Devices = append(s.Linux.Devices, specs.LinuxDevice{Path: "/dev/cfd-no-such", Type: "c", Major: 1, Minor: 3})
		}, "device /dev/cfd-no-such: mknod needs CAP_MKNOD in the initial user namespace, so the host's node is bound instead"},
	} {
		t.Run(c.name, func(t *testing.T) {
			id := testutil.ID(t)
			dir := u.bundle(id, c.edit, "true")
			r := u.run(dir, "run", id)
			if r.code == 0 || !strings.Contains(r.stderr, c.want) {
				t.Errorf("run: want a failure saying %q, got %v", c.want, r)
			}
		})
	}
	t.Run("systemd cgroup driver", func(t *testing.T) {
		id := testutil.ID(t)
		dir := u.bundle(id, nil, "true")
		r := u.run(dir, "--systemd-cgroup", "run", id)
		if r.code == 0 || !strings.Contains(r.stderr, "a rootless container would need a systemd user manager") {
			t.Errorf("run --systemd-cgroup: want a refusal that says why, got %v", r)
		}
	})
	t.Run("cgroup operations", func(t *testing.T) {
		id := testutil.ID(t)
		dir := u.bundle(id, func(s *specs.Spec) { s.Linux.CgroupsPath = testutil.CgroupPath(t) }, "sleep", "1000")
		u.ok(dir, "run", "--detach", id)
		for _, args := range [][]string{{"pause", id}, {"update", "--memory", "64m", id}, {"events", "--stats", id}} {
			r := u.run(dir, args...)
			if r.code == 0 || !strings.Contains(r.stderr, "the container has no cgroup: it runs rootless without a delegated cgroup2 subtree") {
				t.Errorf("%s: want a refusal that says why, got %v", args[0], r)
			}
		}
		u.ok(dir, "delete", "--force", id)
	})
	t.Run("device bound", func(t *testing.T) {
		id := testutil.ID(t)
		dir := u.bundle(id, func(s *specs.Spec) {
			s.Linux.Devices = append(s.Linux.Devices, specs.LinuxDevice{Path: "/dev/full", Type: "c", Major: 1, Minor: 7})
		}, "sh", "-c", "grep -c ' /dev/full ' /proc/self/mountinfo")
		r := u.run(dir, "run", id)
		if r.code != 0 || r.stdout != "1\n" {
			t.Errorf("run: want /dev/full bound, got %v", r)
		}
		if !strings.Contains(r.stderr, "mknod needs CAP_MKNOD in the initial user namespace; the host's /dev/full bound instead") {
			t.Errorf("run: want a warning that the device is bound, got %q", r.stderr)
		}
	})
}

// cgroup2Mount returns where the cgroup2 hierarchy is mounted (its root).
func cgroup2Mount(t *testing.T) string {
	t.Helper()
	es, err := mountinfo.Read("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range es {
		if e.FSType == "cgroup2" && e.Root == "/" {
			return e.Mountpoint
		}
	}
	t.Skip("no cgroup2 hierarchy is mounted: nothing to delegate")
	return ""
}

// delegate makes dir a cgroup the user may manage, as systemd's Delegate=
// does: the directory and its cgroup.procs, cgroup.threads and
// cgroup.subtree_control are the user's.
func (u *rootlessUser) delegate(dir string) {
	u.t.Helper()
	if err := os.Mkdir(dir, 0o755); err != nil {
		u.t.Fatal(err)
	}
	for _, f := range []string{"", "cgroup.procs", "cgroup.threads", "cgroup.subtree_control"} {
		if err := os.Chown(filepath.Join(dir, f), u.UID, u.GID); err != nil {
			u.t.Fatal(err)
		}
	}
}

// delegatedCgroup delegates to the user a cgroup2 subtree /cfdtest-P, with
// a cgroup "caller" in it where its commands start, as a systemd host does
// for a user's session, and returns the cgroup2 root, a container cgroup
// path below the subtree (from testutil.CgroupPath) and the subtree's
// directory.
func (u *rootlessUser) delegatedCgroup() (v2, cgPath, parent string) {
	t := u.t
	v2 = cgroup2Mount(t)
	cgPath = testutil.CgroupPath(t) // /cfdtest-P/<id>
	parent = filepath.Join(v2, filepath.Dir(cgPath))
	u.delegate(parent)
	caller := filepath.Join(parent, "caller")
	u.delegate(caller)
	fd, err := unix.Open(caller, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	u.cgroupFD = fd
	t.Cleanup(func() {
		// Before CgroupPath's check, which would take it for a leftover.
		unix.Close(fd)
		if err := unix.Rmdir(caller); err != nil {
			t.Errorf("rmdir %s: %v", caller, err)
		}
	})
	return v2, cgPath, parent
}

// enableAtRoot enables ctrl in the cgroup2 root's subtree_control when the
// root has it but does not enable it, and disables it after the test (best
// effort: another cgroup may use it by then).
func enableAtRoot(t *testing.T, v2, ctrl string) {
	have, _ := os.ReadFile(filepath.Join(v2, "cgroup.controllers"))
	on, _ := os.ReadFile(filepath.Join(v2, "cgroup.subtree_control"))
	if !slices.Contains(strings.Fields(string(have)), ctrl) || slices.Contains(strings.Fields(string(on)), ctrl) {
		return
	}
	sc := filepath.Join(v2, "cgroup.subtree_control")
	if err := os.WriteFile(sc, []byte("+"+ctrl), 0); err != nil {
		t.Logf("enable %s in %s: %v", ctrl, sc, err)
		return
	}
	t.Cleanup(func() { os.WriteFile(sc, []byte("-"+ctrl), 0) })
}

// TestRootlessDelegatedCgroup: given a delegated cgroup2 subtree with the
// caller in it, a rootless container gets a cgroup of its own there (kill,
// pause, ps and wait use it), and its limits are enforced where cgroup2
// has the controller.
func TestRootlessDelegatedCgroup(t *testing.T) {
	testutil.NoLeaks(t)
	u := newRootlessUser(t)
	v2, cgPath, parent := u.delegatedCgroup()

	// Where a pure cgroup2 host has a controller but does not hand it down
	// from the root (a VM without systemd does not), hand it down, as a
	// systemd host would have: else nothing below can use it. A hybrid
	// host's root (this one's) is left alone.
	if v2 == "/sys/fs/cgroup" {
		for _, ctrl := range []string{"pids", "hugetlb"} {
			enableAtRoot(t, v2, ctrl)
		}
	}

	id := filepath.Base(cgPath)
	dir := u.bundle(id, func(s *specs.Spec) { s.Linux.CgroupsPath = cgPath }, "sleep", "1000")
	r := u.run(dir, "run", "--detach", id)
	if r.code != 0 || strings.Contains(r.stderr, "no cgroup") {
		t.Fatalf("run in a delegated subtree: %v", r)
	}
	own := filepath.Join(v2, cgPath)
	procs, err := os.ReadFile(filepath.Join(own, "cgroup.procs"))
	if err != nil {
		t.Fatalf("the container's cgroup: %v", err)
	}
	var st struct{ Pid int }
	if err := json.Unmarshal([]byte(u.ok(dir, "state", id)), &st); err != nil {
		t.Fatal(err)
	}
	if strings.TrimSpace(string(procs)) != strconv.Itoa(st.Pid) {
		t.Errorf("%s/cgroup.procs: %q, want init %d", own, procs, st.Pid)
	}
	u.ok(dir, "pause", id)
	if s := u.ok(dir, "state", id); !strings.Contains(s, `"status": "paused"`) {
		t.Errorf("after pause: %s", s)
	}
	u.ok(dir, "resume", id)
	u.ok(dir, "exec", id, "true")
	u.ok(dir, "kill", "--all", id, "KILL")
	waitKilled(t, u.run(dir, "wait", id))
	u.ok(dir, "delete", id)
	if _, err := os.Stat(own); !os.IsNotExist(err) {
		t.Errorf("the container's cgroup %s after delete: %v", own, err)
	}

	t.Run("hugetlb limit set", func(t *testing.T) {
		// Not enforcement (that would take huge pages): the limit lands
		// in the container's delegated cgroup, which the kernel lets the
		// user write. This host leaves hugetlb to cgroup2.
		ctrls, err := os.ReadFile(filepath.Join(parent, "cgroup.controllers"))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(filepath.Join(parent, "hugetlb.2MB.max")); err != nil || !slices.Contains(strings.Fields(string(ctrls)), "hugetlb") {
			t.Skipf("the hugetlb controller with 2MB pages is not available to the delegated subtree here (cgroup.controllers: %q)", strings.TrimSpace(string(ctrls)))
		}
		id := testutil.ID(t)
		path := filepath.Join(filepath.Dir(cgPath), id)
		dir := u.bundle(id, func(s *specs.Spec) {
			s.Linux.CgroupsPath = path
			s.Linux.Resources = &specs.LinuxResources{HugepageLimits: []specs.LinuxHugepageLimit{{Pagesize: "2MB", Limit: 2 << 20}}}
		}, "cat", "/sys/fs/cgroup/hugetlb.2MB.max")
		if out := u.ok(dir, "run", id); out != "2097152\n" {
			t.Errorf("hugetlb.2MB.max in the container: %q, want 2097152", out)
		}
	})
	t.Run("pids limit", func(t *testing.T) {
		ctrls, err := os.ReadFile(filepath.Join(parent, "cgroup.controllers"))
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Contains(strings.Fields(string(ctrls)), "pids") {
			all, _ := os.ReadFile(filepath.Join(v2, "cgroup.controllers"))
			t.Skipf("the pids controller is not available to the delegated cgroup2 subtree here (%s/cgroup.controllers: %q): the limit cannot be enforced on this host; cgroup v2 with controllers has it (make test-vm)",
				v2, strings.TrimSpace(string(all)))
		}
		id := testutil.ID(t)
		path := filepath.Join(filepath.Dir(cgPath), id)
		// Room for the runtime's stage (a Go program: a few threads) and
		// the shell, not for 20 more processes.
		ten := int64(10)
		dir := u.bundle(id, func(s *specs.Spec) {
			s.Linux.CgroupsPath = path
			s.Linux.Resources = &specs.LinuxResources{Pids: &specs.LinuxPids{Limit: &ten}}
		}, "sh", "-c", "cat /sys/fs/cgroup/pids.max; for i in $(seq 20); do sleep 1 & done; wait")
		r := u.run(dir, "run", id)
		if !strings.HasPrefix(r.stdout, "10\n") || !strings.Contains(r.stderr, "fork") {
			t.Errorf("run with pids.limit 10: want pids.max 10 and a fork refused, got %v", r)
		}
	})
}

// TestRootlessTerminal: the config `spec --rootless` writes, with its
// terminal, runs in the foreground on the user's terminal.
func TestRootlessTerminal(t *testing.T) {
	testutil.NoLeaks(t)
	u := newRootlessUser(t)
	id := testutil.ID(t)
	dir := u.bundle(id, func(s *specs.Spec) { s.Process.Terminal = true },
		"sh", "-c", "tty; id -u; echo ready; read x; echo got $x")
	master, peer := openPty(t)
	u.Own(t, "/dev/"+ptsName(t, master), 0o620)
	cmd := exec.Command(u.binary, "run", id)
	cmd.Dir = dir
	cmd.Env = u.Env()
	cmd.Stdin, cmd.Stdout, cmd.Stderr = peer, peer, peer
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: u.Credential(), Setsid: true, Setctty: true, Ctty: 0}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// The pty's reads have no deadline (its fd is blocking): if the
	// container never answers, stop the runtime and close the pty, which
	// ends the reads; bundle's cleanup deletes the container.
	timer := time.AfterFunc(30*time.Second, func() {
		t.Errorf("run on a terminal: no answer after 30s")
		cmd.Process.Kill()
		master.Close()
	})
	defer timer.Stop()
	waited := make(chan int, 1)
	go func() {
		cmd.Wait()
		waited <- cmd.ProcessState.ExitCode()
	}()
	out := readUntil(t, master, "ready")
	// Our terminal is raw and the pty's ONLCR off while run copies it.
	if !strings.Contains(out, "/dev/pts/0\n0\n") {
		t.Errorf("on the terminal: %q, want the container's /dev/pts/0 and uid 0", out)
	}
	master.Write([]byte("ping\r"))
	readUntil(t, master, "got ping")
	if code := <-waited; code != 0 {
		t.Errorf("run on a terminal as %s: exit %d", u.Name, code)
	}
}

// ptsName is the name of the pty master's peer under /dev ("pts/3").
func ptsName(t *testing.T, master *os.File) string {
	var n int
	var err error
	ptyFd(master, func(fd int) { n, err = unix.IoctlGetInt(fd, unix.TIOCGPTN) })
	if err != nil {
		t.Fatal(err)
	}
	return "pts/" + strconv.Itoa(n)
}

// TestRootlessNetns: with a network namespace of its own (which the user's
// user namespace owns), a rootless container gets a real sysfs, lo up and
// its sysctls, all done by init from inside.
func TestRootlessNetns(t *testing.T) {
	testutil.NoLeaks(t)
	u := newRootlessUser(t)
	id := testutil.ID(t)
	dir := u.bundle(id, func(s *specs.Spec) {
		s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.NetworkNamespace})
		s.Linux.Sysctl = map[string]string{"net.ipv4.ip_unprivileged_port_start": "80"}
		for i, m := range s.Mounts {
			if m.Destination == "/sys" {
				s.Mounts[i] = specs.Mount{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: []string{"nosuid", "noexec", "nodev", "ro"}}
			}
		}
	}, "sh", "-c", "ls /sys/class/net; cat /sys/class/net/lo/flags; cat /proc/sys/net/ipv4/ip_unprivileged_port_start; grep ' - sysfs ' /proc/self/mountinfo | cut -d' ' -f5")
	out := u.ok(dir, "run", id)
	if want := "lo\n0x9\n80\n/sys\n"; out != want {
		t.Errorf("in a network namespace of its own: %q, want only lo, up (0x9), the sysctl and a sysfs of its own on /sys alone", out)
	}
}
