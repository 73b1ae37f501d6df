package mounttree

import (
	"errors"
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

	"github.com/containerfd/containerfd/internal/testutil"
	"golang.org/x/sys/unix"

	"github.com/containerfd/containerfd/libcontainerfd/kernfeat"
)

const (
	nosuidNodevNoexec = unix.MOUNT_ATTR_NOSUID | unix.MOUNT_ATTR_NODEV | unix.MOUNT_ATTR_NOEXEC
)

func TestBind(t *testing.T) {
	if !isolated(t) {
		return
	}
	rootDir := tempDir(t)
	root := openRoot(t, rootDir)
	src := tempDir(t)
	writeFile(t, src+"/hostname", "host-name\n")

	t.Run("file", func(t *testing.T) {
		m := Mount{Type: "bind", Source: src + "/hostname", Target: "/etc/hostname",
			Attr: unix.MOUNT_ATTR_RDONLY | nosuidNodevNoexec}
		openAttach(t, root, m, OwnNamespaces())
		target := rootDir + "/etc/hostname"
		checkMount(t, target, mountAt(t, mountOf(t, src)).FSType, []string{"ro", "nosuid", "nodev", "noexec", "relatime"}, []string{"rw"})
		if b, err := os.ReadFile(target); err != nil || string(b) != "host-name\n" {
			t.Errorf("read %s: %q %v", target, b, err)
		}
		if err := os.WriteFile(target, []byte("x"), 0o644); !errors.Is(err, unix.EROFS) {
			t.Errorf("write to a read-only bind: %v, want EROFS", err)
		}
	})

	t.Run("fd", func(t *testing.T) {
		// The source is opened (and could be verified) first, then bound
		// from the fd: nothing is looked up again.
		srcfd, err := unix.Open(src+"/hostname", unix.O_PATH|unix.O_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer unix.Close(srcfd)
		m := Mount{Source: "hostname-fd", Target: "/etc/hosts", Attr: unix.MOUNT_ATTR_RDONLY}
		fd, err := OpenBindFD(srcfd, m)
		if err != nil {
			t.Fatal(err)
		}
		checkCloexec(t, fd)
		defer unix.Close(fd)
		attach(t, root, m, fd)
		checkMount(t, rootDir+"/etc/hosts", mountAt(t, mountOf(t, src)).FSType, []string{"ro"}, nil)
		if b, _ := os.ReadFile(rootDir + "/etc/hosts"); string(b) != "host-name\n" {
			t.Errorf("read: %q", b)
		}
	})

	t.Run("dir", func(t *testing.T) {
		writeFile(t, src+"/data/file", "data")
		m := Mount{Type: "bind", Source: src + "/data", Target: "/mnt/data",
			Attr: unix.MOUNT_ATTR_NOATIME | unix.MOUNT_ATTR_NOSYMFOLLOW}
		openAttach(t, root, m, OwnNamespaces())
		checkMount(t, rootDir+"/mnt/data", mountAt(t, mountOf(t, src)).FSType, []string{"rw", "noatime", "nosymfollow"}, []string{"relatime"})
		if b, _ := os.ReadFile(rootDir + "/mnt/data/file"); string(b) != "data" {
			t.Errorf("read: %q", b)
		}
	})

	t.Run("atime", func(t *testing.T) {
		mountTmpfs(t, src+"/noatime", unix.MS_NOATIME)
		for _, c := range []struct {
			attr      uint64
			want, not []string
		}{
			{unix.MOUNT_ATTR_STRICTATIME, nil, []string{"noatime", "relatime"}},
			{unix.MOUNT_ATTR_RELATIME, []string{"relatime"}, []string{"noatime"}},
			{unix.MOUNT_ATTR_NOATIME, []string{"noatime"}, []string{"relatime"}},
			{unix.MOUNT_ATTR_STRICTATIME | unix.MOUNT_ATTR_NODIRATIME, []string{"nodiratime"}, []string{"noatime", "relatime"}},
		} {
			target := fmt.Sprintf("/atime-%#x", c.attr)
			openAttach(t, root, Mount{Type: "bind", Source: src + "/noatime", Target: target, Attr: c.attr}, OwnNamespaces())
			checkMount(t, rootDir+target, "tmpfs", c.want, c.not)
		}
	})

	t.Run("clear", func(t *testing.T) {
		mountTmpfs(t, src+"/ro", unix.MS_RDONLY|unix.MS_NOSUID)
		openAttach(t, root, Mount{Type: "bind", Source: src + "/ro", Target: "/keep"}, OwnNamespaces())
		checkMount(t, rootDir+"/keep", "tmpfs", []string{"ro", "nosuid"}, nil)
		openAttach(t, root, Mount{Type: "bind", Source: src + "/ro", Target: "/cleared",
			ClearAttr: unix.MOUNT_ATTR_RDONLY | unix.MOUNT_ATTR_NOSUID}, OwnNamespaces())
		checkMount(t, rootDir+"/cleared", "tmpfs", []string{"rw"}, []string{"ro", "nosuid"})
	})

	t.Run("rbind", func(t *testing.T) {
		mountTmpfs(t, src+"/tree/sub", 0)
		writeFile(t, src+"/tree/sub/marker", "sub")
		// A plain bind leaves the submount out.
		openAttach(t, root, Mount{Type: "bind", Source: src + "/tree", Target: "/nr"}, OwnNamespaces())
		if isMountPoint(t, rootDir+"/nr/sub") {
			t.Error("bind (not rbind) took the submount along")
		}
		if _, err := os.Stat(rootDir + "/nr/sub/marker"); err == nil {
			t.Error("bind (not rbind) shows the submount's file")
		}
		// rbind takes it along, and RecAttr goes on it too.
		openAttach(t, root, Mount{Type: "bind", Source: src + "/tree", Target: "/r", Recursive: true,
			RecAttr: unix.MOUNT_ATTR_RDONLY | unix.MOUNT_ATTR_NOEXEC}, OwnNamespaces())
		checkMount(t, rootDir+"/r", "", []string{"ro", "noexec"}, nil)
		checkMount(t, rootDir+"/r/sub", "tmpfs", []string{"ro", "noexec"}, nil)
		if b, _ := os.ReadFile(rootDir + "/r/sub/marker"); string(b) != "sub" {
			t.Errorf("rbind: marker reads %q", b)
		}
		// Attr on an rbind goes on the top mount only, as "ro" does with
		// mount(8) and runc.
		openAttach(t, root, Mount{Type: "bind", Source: src + "/tree", Target: "/rtop", Recursive: true,
			Attr: unix.MOUNT_ATTR_RDONLY | unix.MOUNT_ATTR_NOEXEC}, OwnNamespaces())
		checkMount(t, rootDir+"/rtop", "", []string{"ro", "noexec"}, nil)
		checkMount(t, rootDir+"/rtop/sub", "tmpfs", []string{"rw"}, []string{"ro", "noexec"})
		// Without Recursive only the top mount changes.
		openAttach(t, root, Mount{Type: "bind", Source: src + "/tree", Target: "/r2", Recursive: false,
			Attr: unix.MOUNT_ATTR_RDONLY}, OwnNamespaces())
		checkMount(t, rootDir+"/r2", "", []string{"ro"}, nil)
	})
}

// mountOf returns the mount point of the mount holding p.
func mountOf(t *testing.T, p string) string {
	t.Helper()
	best := ""
	for _, m := range mountinfo(t) {
		if (p == m.MountPoint || strings.HasPrefix(p, strings.TrimSuffix(m.MountPoint, "/")+"/")) && len(m.MountPoint) >= len(best) {
			best = m.MountPoint
		}
	}
	return best
}

func TestTmpfs(t *testing.T) {
	if !isolated(t) {
		return
	}
	rootDir := tempDir(t)
	root := openRoot(t, rootDir)

	m := Mount{Type: "tmpfs", Source: marker, Target: "/dev",
		Attr: nosuidNodevNoexec | unix.MOUNT_ATTR_STRICTATIME, Data: []string{"mode=755", "size=65536k"}}
	openAttach(t, root, m, OwnNamespaces())
	e := checkMount(t, rootDir+"/dev", "tmpfs", []string{"rw", "nosuid", "nodev", "noexec", "size=65536k", "mode=755"},
		[]string{"relatime", "noatime", "ro"})
	if e.Source != marker {
		t.Errorf("source %q, want %q", e.Source, marker)
	}
	if st, err := os.Stat(rootDir + "/dev"); err != nil || st.Mode().Perm() != 0o755 {
		t.Errorf("mode of the tmpfs root: %v %v", st.Mode(), err)
	}

	m = Mount{Type: "tmpfs", Source: marker, Target: "/ro",
		Attr: unix.MOUNT_ATTR_RDONLY | unix.MOUNT_ATTR_NOATIME | unix.MOUNT_ATTR_NODIRATIME | unix.MOUNT_ATTR_NOSYMFOLLOW}
	openAttach(t, root, m, OwnNamespaces())
	checkMount(t, rootDir+"/ro", "tmpfs", []string{"ro", "noatime", "nodiratime", "nosymfollow"}, []string{"nosuid", "relatime"})
	if err := os.WriteFile(rootDir+"/ro/f", nil, 0o644); !errors.Is(err, unix.EROFS) {
		t.Errorf("write to a read-only tmpfs: %v, want EROFS", err)
	}
}

func TestProc(t *testing.T) {
	if !isolated(t) {
		return
	}
	if !ProcPidns.Available() {
		t.Skip("kernel lacks fsconfig(FSCONFIG_SET_FD, \"pidns\") for proc (Linux 6.18)")
	}
	rootDir := tempDir(t)
	root := openRoot(t, rootDir)
	pid := spawn(t, &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWPID})
	ns := OwnNamespaces()
	ns.PID = nsFD(t, pid, "pid")

	m := Mount{Type: "proc", Source: marker, Target: "/proc", Attr: nosuidNodevNoexec}
	openAttach(t, root, m, ns)
	checkMount(t, rootDir+"/proc", "proc", []string{"nosuid", "nodev", "noexec", "relatime"}, nil)
	if got := pids(rootDir + "/proc"); !slices.Equal(got, []string{"1"}) {
		t.Errorf("the container's /proc lists pids %v, want only 1", got)
	}
	if b, _ := os.ReadFile(rootDir + "/proc/1/comm"); string(b) != "sleep\n" {
		t.Errorf("pid 1 is %q, want sleep", b)
	}

	// Our own pid namespace shows us.
	openAttach(t, root, Mount{Type: "proc", Source: marker, Target: "/proc-own"}, OwnNamespaces())
	if got := pids(rootDir + "/proc-own"); !slices.Contains(got, strconv.Itoa(os.Getpid())) {
		t.Errorf("own /proc does not list us (%d): %v", os.Getpid(), got)
	}

	// Not a pid namespace fd.
	bad := OwnNamespaces()
	bad.PID = nsFD(t, pid, "net")
	_, err := Open(m, bad)
	if err == nil || !strings.HasPrefix(err.Error(), "mount proc on /proc: fsconfig pidns: invalid argument") {
		t.Errorf("net ns fd as pidns: %v", err)
	}
	t.Logf("with a net ns fd: %v", err)
}

// proc and sysfs refuse a target that is a symlink (CVE-2019-19921), even one
// that stays inside the root.
func TestProcSymlinkTarget(t *testing.T) {
	if !isolated(t) {
		return
	}
	rootDir := tempDir(t)
	root := openRoot(t, rootDir)
	if err := os.Mkdir(rootDir+"/fake", 0o755); err != nil {
		t.Fatal(err)
	}
	for _, typ := range []string{"proc", "sysfs"} {
		link := "/" + typ + "-link"
		if err := os.Symlink("fake", rootDir+link); err != nil {
			t.Fatal(err)
		}
		m := Mount{Type: typ, Source: marker, Target: link}
		fd := open(t, m, OwnNamespaces())
		err := Attach(root, m, fd)
		if !errors.Is(err, unix.ELOOP) || !strings.Contains(err.Error(), "is a symlink") {
			t.Errorf("%s on a symlink: %v, want ELOOP", typ, err)
		}
		if isMountPoint(t, rootDir+"/fake") {
			t.Errorf("%s was mounted through the symlink", typ)
		}
		// A symlink among the parents is followed inside the root.
		m.Target = link + "/sub"
		attach(t, root, m, fd)
		checkMount(t, rootDir+"/fake/sub", typ, nil, nil)
	}
}

// With proc's pidns option switched off, Open reports ErrProcNeedsPidns and
// proc is mounted by a process inside the pid namespace instead.
func TestProcPidnsDisabled(t *testing.T) {
	if !isolated(t, kernfeat.EnvDisable+"="+ProcPidns.Name()) {
		return
	}
	if ProcPidns.Available() {
		t.Fatalf("ProcPidns available with %s=%s", kernfeat.EnvDisable, os.Getenv(kernfeat.EnvDisable))
	}
	pid := spawn(t, &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWPID})
	ns := OwnNamespaces()
	ns.PID = nsFD(t, pid, "pid")
	_, err := Open(Mount{Type: "proc", Target: "/proc"}, ns)
	if !errors.Is(err, ErrProcNeedsPidns) {
		t.Fatalf("Open: %v, want ErrProcNeedsPidns", err)
	}
	if !strings.HasPrefix(err.Error(), "mount proc on /proc: fsconfig pidns: ") {
		t.Errorf("error does not name the mount and step: %v", err)
	}

	// The fallback: a process that is pid 1 of a new pid namespace (and
	// shares our mount namespace) mounts proc itself.
	rootDir := tempDir(t)
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), envHelper+"=proc-in-pidns", "MOUNTTREE_TEST_ROOT="+rootDir)
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWPID}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("helper: %v: %s", err, out)
	}
	if strings.TrimSpace(string(out)) != "pids: 1" {
		t.Errorf("helper's /proc: %q, want only pid 1", out)
	}
	checkMount(t, rootDir+"/proc", "proc", []string{"nosuid", "nodev", "noexec"}, nil)
}

func TestSysfs(t *testing.T) {
	if !isolated(t) {
		return
	}
	rootDir := tempDir(t)
	root := openRoot(t, rootDir)
	pid := spawn(t, &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWNET})
	ns := OwnNamespaces()
	ns.Net = nsFD(t, pid, "net")

	m := Mount{Type: "sysfs", Source: marker, Target: "/sys", Attr: unix.MOUNT_ATTR_RDONLY | nosuidNodevNoexec}
	openAttach(t, root, m, ns)
	checkMount(t, rootDir+"/sys", "sysfs", []string{"ro", "nosuid", "nodev", "noexec"}, nil)
	if got := readDir(t, rootDir+"/sys/class/net"); !slices.Equal(got, []string{"lo"}) {
		t.Errorf("the container's /sys/class/net: %v, want [lo]", got)
	}

	// A pidfd of a process in the namespace does as well.
	pidfd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(pidfd)
	byPidfd := OwnNamespaces()
	byPidfd.Net = pidfd
	openAttach(t, root, Mount{Type: "sysfs", Source: marker, Target: "/sys-pidfd"}, byPidfd)
	if got := readDir(t, rootDir+"/sys-pidfd/class/net"); !slices.Equal(got, []string{"lo"}) {
		t.Errorf("sysfs by pidfd: /sys/class/net: %v, want [lo]", got)
	}

	// In our own net namespace, sysfs shows our interfaces.
	openAttach(t, root, Mount{Type: "sysfs", Source: marker, Target: "/sys-own"}, OwnNamespaces())
	if got, want := readDir(t, rootDir+"/sys-own/class/net"), readDir(t, "/sys/class/net"); !slices.Equal(got, want) {
		t.Errorf("own sysfs lists %v, want %v", got, want)
	}

	// A namespace fd of the wrong type.
	bad := OwnNamespaces()
	bad.Net = nsFD(t, pid, "pid")
	if _, err := Open(m, bad); err == nil || !strings.HasPrefix(err.Error(), "mount sysfs on /sys: ") || !errors.Is(err, unix.EINVAL) {
		t.Errorf("pid ns fd as net ns: %v", err)
	}
}

func TestDevpts(t *testing.T) {
	if !isolated(t) {
		return
	}
	rootDir := tempDir(t)
	root := openRoot(t, rootDir)
	m := Mount{Type: "devpts", Source: marker, Target: "/dev/pts",
		Attr: unix.MOUNT_ATTR_NOSUID | unix.MOUNT_ATTR_NOEXEC, Data: []string{"mode=620", "gid=5"}}
	openAttach(t, root, m, OwnNamespaces())
	checkMount(t, rootDir+"/dev/pts", "devpts", []string{"nosuid", "noexec", "ptmxmode=666", "mode=620", "gid=5"}, nil)
	// A new instance holds no ptys yet.
	if got := readDir(t, rootDir+"/dev/pts"); !slices.Equal(got, []string{"ptmx"}) {
		t.Errorf("new devpts instance holds %v, want only ptmx", got)
	}

	ptmx, err := os.OpenFile(rootDir+"/dev/pts/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatalf("open ptmx: %v", err)
	}
	defer ptmx.Close()
	if err := unix.IoctlSetPointerInt(int(ptmx.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatalf("unlock pty: %v", err)
	}
	n, err := unix.IoctlGetInt(int(ptmx.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	pts, err := os.OpenFile(fmt.Sprintf("%s/dev/pts/%d", rootDir, n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatalf("open pty %d: %v", n, err)
	}
	defer pts.Close()
	if _, err := pts.Write([]byte("ping\n")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64)
	ptmx.SetReadDeadline(time.Now().Add(5 * time.Second))
	k, err := ptmx.Read(buf)
	if err != nil || !strings.HasPrefix(string(buf[:k]), "ping") {
		t.Errorf("read from the master: %q %v", buf[:k], err)
	}

	// ptmxmode given is kept.
	openAttach(t, root, Mount{Type: "devpts", Source: marker, Target: "/pts2", Data: []string{"ptmxmode=0600"}}, OwnNamespaces())
	checkMount(t, rootDir+"/pts2", "devpts", []string{"ptmxmode=600"}, nil)
}

func TestMqueue(t *testing.T) {
	if !isolated(t) {
		return
	}
	rootDir := tempDir(t)
	root := openRoot(t, rootDir)
	pid := spawn(t, &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWIPC})
	ns := OwnNamespaces()
	ns.IPC = nsFD(t, pid, "ipc")

	// A queue in our own IPC namespace (the test child's, not the host's).
	openAttach(t, root, Mount{Type: "mqueue", Source: marker, Target: "/mq-own"}, OwnNamespaces())
	mkQueue(t, rootDir+"/mq-own/mine")

	openAttach(t, root, Mount{Type: "mqueue", Source: marker, Target: "/dev/mqueue", Attr: nosuidNodevNoexec}, ns)
	checkMount(t, rootDir+"/dev/mqueue", "mqueue", []string{"nosuid", "nodev", "noexec"}, nil)
	if got := readDir(t, rootDir+"/dev/mqueue"); len(got) != 0 {
		t.Errorf("the container's mqueue shows %v, want nothing", got)
	}
	mkQueue(t, rootDir+"/dev/mqueue/theirs")
	if got := readDir(t, rootDir+"/mq-own"); !slices.Equal(got, []string{"mine"}) {
		t.Errorf("our mqueue shows %v, want [mine]", got)
	}
}

// mkQueue creates a POSIX message queue by creating a file in an mqueue
// mount.
func mkQueue(t *testing.T, p string) {
	t.Helper()
	f, err := os.OpenFile(p, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
}

func TestCgroup2(t *testing.T) {
	if !isolated(t) {
		return
	}
	cg2 := ""
	for _, m := range mountinfo(t) {
		if m.FSType == "cgroup2" && m.Root == "/" {
			cg2 = m.MountPoint
			break
		}
	}
	if cg2 == "" {
		t.Skip("no cgroup2 hierarchy mounted")
	}
	cg := filepath.Join(cg2, fmt.Sprintf("containerfd-mounttree-test-%d", os.Getpid()))
	if err := os.Mkdir(cg, 0o755); err != nil {
		t.Skipf("cannot make a cgroup2 group: %v", err)
	}
	t.Cleanup(func() {
		for i := 0; ; i++ {
			err := os.Remove(cg)
			if err == nil || i == 100 {
				if err != nil {
					t.Errorf("remove cgroup: %v", err)
				}
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	})
	cgfd, err := unix.Open(cg, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(cgfd)
	// Registered after the cgroup's removal, so it runs (kills sleep) first.
	pid := spawn(t, &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWCGROUP, UseCgroupFD: true, CgroupFD: cgfd})
	ns := OwnNamespaces()
	ns.Cgroup = nsFD(t, pid, "cgroup")

	rootDir := tempDir(t)
	root := openRoot(t, rootDir)
	openAttach(t, root, Mount{Type: "cgroup2", Source: marker, Target: "/sys/fs/cgroup", Attr: nosuidNodevNoexec}, ns)
	e := checkMount(t, rootDir+"/sys/fs/cgroup", "cgroup2", []string{"nosuid", "nodev", "noexec"}, nil)
	// The mount's root is the container's cgroup, seen from our namespace.
	if e.Root != "/"+filepath.Base(cg) {
		t.Errorf("cgroup2 mount root %s, want /%s", e.Root, filepath.Base(cg))
	}
	if b, _ := os.ReadFile(rootDir + "/sys/fs/cgroup/cgroup.procs"); strings.TrimSpace(string(b)) != strconv.Itoa(pid) {
		t.Errorf("the container's cgroup.procs holds %q, want %d", b, pid)
	}

	openAttach(t, root, Mount{Type: "cgroup2", Source: marker, Target: "/cg-own"}, OwnNamespaces())
	if e := mountAt(t, rootDir+"/cg-own"); e.Root != "/" {
		t.Errorf("own cgroup2 mount root %s, want /", e.Root)
	}
	if !slices.Contains(readDir(t, rootDir+"/cg-own"), filepath.Base(cg)) {
		t.Errorf("own cgroup2 mount does not show %s", filepath.Base(cg))
	}
}

// CVE-2021-30465 class: symlinks in the root that point outside it never get
// a mount onto a host path.
func TestSymlinkEscape(t *testing.T) {
	if !isolated(t) {
		return
	}
	rootDir := tempDir(t)
	root := openRoot(t, rootDir)
	outside := tempDir(t)
	if err := os.Symlink(outside, rootDir+"/evil"); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside+"/y", rootDir+"/link"); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(strings.Repeat("../", 10)+outside, rootDir+"/up"); err != nil {
		t.Fatal(err)
	}
	for target, want := range map[string]string{
		"/evil/x":                       outside + "/x", // through a parent symlink
		"/link":                         outside + "/y", // the target itself is a symlink
		"/up/z":                         outside + "/z", // relative symlink climbing out
		"../../../../" + outside + "/w": outside + "/w", // .. in the target
	} {
		openAttach(t, root, Mount{Type: "tmpfs", Source: marker, Target: target}, OwnNamespaces())
		checkMount(t, rootDir+want, "tmpfs", nil, nil)
		if isMountPoint(t, want) {
			t.Errorf("%s: mounted on the host's %s", target, want)
		}
	}

	// A bind of a file onto a symlink to a host file.
	hostFiles := tempDir(t)
	writeFile(t, hostFiles+"/resolv.conf", "host")
	writeFile(t, rootDir+"/src/resolv.conf", "container")
	if err := os.MkdirAll(rootDir+"/etc", 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(hostFiles+"/resolv.conf", rootDir+"/etc/resolv.conf"); err != nil {
		t.Fatal(err)
	}
	openAttach(t, root, Mount{Type: "bind", Source: rootDir + "/src/resolv.conf", Target: "/etc/resolv.conf"}, OwnNamespaces())
	if b, _ := os.ReadFile(hostFiles + "/resolv.conf"); string(b) != "host" || isMountPoint(t, hostFiles+"/resolv.conf") {
		t.Errorf("the host's file was mounted over: %q", b)
	}
	if b, _ := os.ReadFile(rootDir + hostFiles + "/resolv.conf"); string(b) != "container" {
		t.Errorf("bind inside the root reads %q", b)
	}

	if got := readDir(t, outside); len(got) != 0 {
		t.Errorf("created outside the root: %v", got)
	}
	for _, m := range mountinfo(t) {
		if strings.HasPrefix(m.MountPoint, outside) || strings.HasPrefix(m.MountPoint, hostFiles) {
			t.Errorf("mount outside the root: %s", m.Line)
		}
	}
}

// The race of CVE-2021-30465: a directory on the target path is swapped
// with a symlink to the outside (RENAME_EXCHANGE) while mounts are attached.
// Every mount lands inside the root.
func TestSymlinkExchangeRace(t *testing.T) {
	if !isolated(t) {
		return
	}
	rootDir := tempDir(t)
	root := openRoot(t, rootDir)
	outside := tempDir(t)
	if err := os.Mkdir(rootDir+"/d", 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, rootDir+"/s"); err != nil {
		t.Fatal(err)
	}
	stop := testutil.SwapRace(t, rootDir, "d", "s")
	var ok, failed int
	for i := 0; i < 300; i++ {
		m := Mount{Type: "tmpfs", Source: marker, Target: fmt.Sprintf("/d/m%d", i%5)}
		fd, err := Open(m, OwnNamespaces())
		if err != nil {
			t.Fatal(err)
		}
		if err := Attach(root, m, fd); err != nil {
			failed++
		} else {
			ok++
		}
		unix.Close(fd)
	}
	stop()
	if ok == 0 {
		t.Error("no attach succeeded")
	}
	// Both sides of the swap were hit: the real directory and, through
	// the symlink, <root>/<outside>.
	var viaDir, viaLink int
	for _, m := range mountinfo(t) {
		switch {
		case m.Source != marker:
		case strings.HasPrefix(m.MountPoint, rootDir+"/d/"), strings.HasPrefix(m.MountPoint, rootDir+"/s/"):
			viaDir++
		case strings.HasPrefix(m.MountPoint, rootDir+outside+"/"):
			viaLink++
		default:
			t.Errorf("mount outside the root: %s", m.Line)
		}
	}
	t.Logf("%d attached (%d in the directory, %d through the symlink, inside the root), %d refused", ok, viaDir, viaLink, failed)
	if got := readDir(t, outside); len(got) != 0 {
		t.Errorf("created outside the root: %v", got)
	}
}

// Propagation is set on the detached mount where the kernel takes it
// there, and after the attach where not (DetachedPropagation disabled).
func TestPropagation(t *testing.T) {
	for _, disable := range []string{"", DetachedPropagation.Name()} {
		t.Run("disable="+disable, func(t *testing.T) {
			if isolated(t, kernfeat.EnvDisable+"="+disable) {
				testPropagation(t)
			}
		})
	}
}

func testPropagation(t *testing.T) {
	t.Logf("mount_setattr propagation on a detached mount: %v", DetachedPropagation.Available())
	rootDir := tempDir(t)
	root := openRoot(t, rootDir)

	openAttach(t, root, Mount{Type: "tmpfs", Source: marker, Target: "/a", Propagation: unix.MS_SHARED}, OwnNamespaces())
	a := mountAt(t, rootDir+"/a")
	group := ""
	for _, o := range a.Optional {
		if v, ok := strings.CutPrefix(o, "shared:"); ok {
			group = v
		}
	}
	if group == "" {
		t.Fatalf("/a is not shared: %s", a.Line)
	}

	// A slave bind of /a receives what is mounted under /a.
	openAttach(t, root, Mount{Type: "bind", Source: rootDir + "/a", Target: "/b", Propagation: unix.MS_SLAVE}, OwnNamespaces())
	if b := mountAt(t, rootDir+"/b"); !slices.Contains(b.Optional, "master:"+group) || slices.ContainsFunc(b.Optional, func(o string) bool { return strings.HasPrefix(o, "shared:") }) {
		t.Errorf("/b is not a slave of group %s: %s", group, b.Line)
	}
	openAttach(t, root, Mount{Type: "tmpfs", Source: marker, Target: "/a/sub"}, OwnNamespaces())
	if !isMountPoint(t, rootDir+"/b/sub") {
		t.Error("a mount under shared /a did not propagate to its slave /b")
	}
	openAttach(t, root, Mount{Type: "tmpfs", Source: marker, Target: "/b/back"}, OwnNamespaces())
	if isMountPoint(t, rootDir+"/a/back") {
		t.Error("a mount under slave /b propagated back to /a")
	}

	// Attached under a shared mount, a mount asked to be private is made
	// private again after the attach.
	openAttach(t, root, Mount{Type: "tmpfs", Source: marker, Target: "/a/priv", Propagation: unix.MS_PRIVATE}, OwnNamespaces())
	if p := mountAt(t, rootDir+"/a/priv"); len(p.Optional) != 0 {
		t.Errorf("/a/priv is not private: %s", p.Line)
	}

	// Unbindable cannot be bound.
	openAttach(t, root, Mount{Type: "tmpfs", Source: marker, Target: "/u", Propagation: unix.MS_UNBINDABLE}, OwnNamespaces())
	if u := mountAt(t, rootDir+"/u"); !slices.Contains(u.Optional, "unbindable") {
		t.Errorf("/u is not unbindable: %s", u.Line)
	}
	if _, err := Open(Mount{Type: "bind", Source: rootDir + "/u", Target: "/u2"}, OwnNamespaces()); !errors.Is(err, unix.EINVAL) {
		t.Errorf("bind of an unbindable mount: %v, want EINVAL", err)
	}

	// A recursive bind with Propagation applies it to the submounts.
	openAttach(t, root, Mount{Type: "bind", Source: rootDir + "/a", Target: "/rp", Recursive: true, Propagation: unix.MS_PRIVATE}, OwnNamespaces())
	for _, p := range []string{"/rp", "/rp/sub"} {
		if e := mountAt(t, rootDir+p); len(e.Optional) != 0 {
			t.Errorf("%s is not private: %s", p, e.Line)
		}
	}
}

// A whole tree is built detached: mounts are attached into a detached root
// (Linux 6.15+), then the tree is attached at once.
func TestDetachedTree(t *testing.T) {
	if !isolated(t) {
		return
	}
	rootM := Mount{Type: "tmpfs", Source: marker, Data: []string{"mode=755"}}
	rfd := open(t, rootM, OwnNamespaces())

	dev := Mount{Type: "tmpfs", Source: marker, Target: "/dev", Data: []string{"mode=755"}, Propagation: unix.MS_SHARED}
	err := Attach(rfd, dev, open(t, dev, OwnNamespaces()))
	if errors.Is(err, unix.EINVAL) {
		t.Skipf("kernel cannot move_mount into a detached tree: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	// Targets resolve across the mounts of the detached tree.
	pts := Mount{Type: "devpts", Source: marker, Target: "/dev/pts"}
	attach(t, rfd, pts, open(t, pts, OwnNamespaces()))
	proc := Mount{Type: "proc", Source: marker, Target: "/proc", Attr: nosuidNodevNoexec}
	attach(t, rfd, proc, open(t, proc, OwnNamespaces()))

	dir := tempDir(t)
	parent := openRoot(t, filepath.Dir(dir))
	attach(t, parent, Mount{Type: "tmpfs", Target: filepath.Base(dir)}, rfd)
	checkMount(t, dir, "tmpfs", nil, nil)
	if e := checkMount(t, dir+"/dev", "tmpfs", nil, nil); !slices.ContainsFunc(e.Optional, func(o string) bool { return strings.HasPrefix(o, "shared:") }) {
		t.Errorf("propagation set before the attach into the detached tree was lost: %s", e.Line)
	}
	checkMount(t, dir+"/dev/pts", "devpts", nil, nil)
	checkMount(t, dir+"/proc", "proc", []string{"nosuid", "nodev", "noexec"}, nil)
}

func TestErrors(t *testing.T) {
	if !isolated(t) {
		return
	}
	rootDir := tempDir(t)
	root := openRoot(t, rootDir)
	writeFile(t, rootDir+"/file", "")
	if err := os.Mkdir(rootDir+"/adir", 0o755); err != nil {
		t.Fatal(err)
	}
	src := tempDir(t)
	writeFile(t, src+"/f", "")
	own := OwnNamespaces()

	cases := []struct {
		name   string
		open   Mount
		attach bool
		prefix string
		is     error
	}{
		{"bad option", Mount{Type: "tmpfs", Target: "/x", Data: []string{"bogus=1"}}, false,
			"mount tmpfs on /x: fsconfig bogus=1: invalid argument (tmpfs: Unknown parameter 'bogus')", unix.EINVAL},
		{"unknown fs", Mount{Type: "nosuchfs", Target: "/x"}, false,
			"mount nosuchfs on /x: fsopen: no such device", unix.ENODEV},
		{"missing source", Mount{Type: "bind", Source: src + "/missing", Target: "/x"}, false,
			"mount bind " + src + "/missing on /x: open_tree: no such file or directory", unix.ENOENT},
		{"no source", Mount{Type: "bind", Target: "/x"}, false, "mount bind  on /x: bind without a source", unix.EINVAL},
		{"no type", Mount{Target: "/x"}, false, "mount (no type) on /x: no filesystem type", unix.EINVAL},
		{"bad attr", Mount{Type: "tmpfs", Target: "/x", Attr: unix.MOUNT_ATTR_IDMAP}, false,
			"mount tmpfs on /x: unsupported mount attributes", unix.EINVAL},
		{"bad atime", Mount{Type: "tmpfs", Target: "/x", Attr: unix.MOUNT_ATTR__ATIME}, false,
			"mount tmpfs on /x: bad atime setting", unix.EINVAL},
		{"bad propagation", Mount{Type: "tmpfs", Target: "/x", Propagation: unix.MS_BIND}, false,
			"mount tmpfs on /x: bad propagation", unix.EINVAL},
		{"file on a dir", Mount{Type: "bind", Source: src + "/f", Target: "/adir"}, true,
			"attach bind " + src + "/f on /adir: create /adir in root: ", unix.EISDIR},
		{"through a file", Mount{Type: "tmpfs", Target: "/file/x"}, true,
			"attach tmpfs on /file/x: mkdir /file/x in root: file exists and is not a directory", unix.ENOTDIR},
		{"dir on a file", Mount{Type: "tmpfs", Target: "/file"}, true,
			"attach tmpfs on /file: mkdir /file in root: file exists and is not a directory", unix.ENOTDIR},
	}
	for _, c := range cases {
		fd, err := Open(c.open, own)
		if c.attach {
			if err != nil {
				t.Errorf("%s: Open: %v", c.name, err)
				continue
			}
			err = Attach(root, c.open, fd)
			unix.Close(fd)
		} else if err == nil {
			unix.Close(fd)
		}
		if err == nil || !strings.HasPrefix(err.Error(), c.prefix) || !errors.Is(err, c.is) {
			t.Errorf("%s: got %v, want %q… (%v)", c.name, err, c.prefix, c.is)
		}
	}
}
