package integration

import (
	"crypto/sha256"
	binenc "encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/containerfd/containerfd/internal/testutil"
	"github.com/containerfd/containerfd/libcontainerfd/kernfeat"
	"github.com/containerfd/containerfd/spec"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// Each test here does, from inside a container, the steps of a runc CVE's
// published exploit against containerfd, and shows that they fail and the
// host is untouched (SECURITY.md lists the steps).

func fileHash(t *testing.T, path string) string {
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	io.Copy(h, f)
	return fmt.Sprintf("%x", h.Sum(nil))
}

// installAttack copies the attack helper (testdata/attack) into the
// container's root as /attack.
func (e *env) installAttack() {
	e.t.Helper()
	b, err := os.ReadFile(attack)
	if err != nil {
		e.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(e.spec().Root.Path, "attack"), b, 0o755); err != nil {
		e.t.Fatal(err)
	}
}

// withoutDevTmpfs drops the /dev tmpfs so the image's own /dev is what the
// container sees (with devpts and the rest mounted in it).
func withoutDevTmpfs(s *specs.Spec) {
	ms := s.Mounts[:0]
	for _, m := range s.Mounts {
		if m.Destination != "/dev" {
			ms = append(ms, m)
		}
	}
	s.Mounts = ms
}

// CVE-2024-21626 (GHSA-xr7r-f8xq-vfvv): runc leaked an fd of the host's
// /sys/fs/cgroup into the container's process. The published attacks,
// replayed for every fd N a runtime might leak: 1, process.cwd
// /proc/self/fd/N, then reading host files through ../../..; 2, the
// container plants /proc/self/fd/N as the directory an exec's --cwd names;
// 3a and 3b, the program is /proc/self/fd/N/../../..<host binary>, given in
// config.json or as a symlink in the container that exec runs, so a host
// binary runs in the container and can be overwritten through
// /proc/<pid>/exe. Before all of them the container lists its fds, as the
// PoCs do to find N.
func TestCVE_2024_21626_LeakedFds(t *testing.T) {
	host := t.TempDir()
	secret := filepath.Join(host, "secret")
	if err := os.WriteFile(secret, []byte("host-secret-"+filepath.Base(host)), 0o600); err != nil {
		t.Fatal(err)
	}
	victim := filepath.Join(host, "busybox") // busybox runs the applet its argv[1] names
	b, err := os.ReadFile("/bin/busybox")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(victim, b, 0o755); err != nil {
		t.Fatal(err)
	}
	victimHash := fileHash(t, victim)
	up := strings.Repeat("../", 16)
	leaked := func(what, out string) {
		t.Helper()
		if strings.Contains(out, "host-secret") || strings.Contains(out, "ESCAPED") {
			t.Errorf("%s reached the host: %q", what, out)
		}
	}
	checkFds := func(what, out string) {
		t.Helper()
		for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
			f := strings.Fields(l)
			if len(f) < 3 || f[len(f)-2] != "->" {
				continue // ls's own directory fd, already closed when it is listed
			}
			fd, target := f[len(f)-3], f[len(f)-1]
			if fd != "0" && fd != "1" && fd != "2" && !strings.HasPrefix(target, "/proc/") {
				t.Errorf("%s: fd %s -> %s reached the container (%q)", what, fd, target, l)
			}
		}
	}
	const fds = 16

	// Attacks 1 and 3a: a malicious image's config, for run.
	e := newEnv(t, "sh", "-c", "ls -l /proc/self/fd/ | tail -n +2")
	r := e.cfd("run", "-b", e.bundle, e.id)
	if r.code != 0 {
		t.Fatalf("run: %v", r)
	}
	checkFds("run", r.stdout)
	for n := 3; n < fds; n++ {
		fd := fmt.Sprintf("/proc/self/fd/%d", n)
		s := e.spec()
		s.Process.Cwd = fd
		s.Process.Args = []string{"sh", "-c", "cat " + up + secret[1:]}
		e.writeSpec(s)
		r := e.cfd("run", "-b", e.bundle, e.id)
		leaked("run with cwd "+fd, r.stdout+r.stderr)
		e.cfd("delete", "--force", e.id)

		s.Process.Cwd = "/"
		s.Process.Args = []string{fd + "/" + up + victim[1:], "sh", "-c", "echo ESCAPED"}
		e.writeSpec(s)
		r = e.cfd("run", "-b", e.bundle, e.id)
		leaked("run of "+s.Process.Args[0], r.stdout+r.stderr)
		e.cfd("delete", "--force", e.id)
	}

	// Attacks 2 and 3b: the container plants the links where an exec
	// will go.
	plant := fmt.Sprintf(`for n in $(seq 3 %d); do
		ln -s /proc/self/fd/$n /tmp/wd$n
		mkdir /x$n && ln -s /proc/self/fd/$n/%s /x$n/busybox
	done; touch /planted; exec sleep 100`, fds-1, up+victim[1:])
	e2 := newEnv(t, "sh", "-c", plant)
	e2.ok("run", "-d", "-b", e2.bundle, e2.id)
	waitFor(t, "the links planted", func() bool {
		_, err := os.Stat(filepath.Join(e2.spec().Root.Path, "planted"))
		return err == nil
	})
	r = e2.cfd("exec", e2.id, "sh", "-c", "ls -l /proc/self/fd/ | tail -n +2")
	if r.code != 0 {
		t.Fatalf("exec: %v", r)
	}
	checkFds("exec", r.stdout)
	for n := 3; n < fds; n++ {
		wd := fmt.Sprintf("/tmp/wd%d", n)
		r := e2.cfd("exec", "--cwd", wd, e2.id, "sh", "-c", "cat "+up+secret[1:])
		leaked("exec --cwd "+wd, r.stdout+r.stderr)
		prog := fmt.Sprintf("/x%d/busybox", n)
		r = e2.cfd("exec", e2.id, prog, "sh", "-c", "echo ESCAPED")
		leaked("exec "+prog, r.stdout+r.stderr)
	}
	if fileHash(t, victim) != victimHash {
		t.Error("the host binary was changed")
	}
}

// CVE-2021-30465 and CVE-2024-45310: a container that shares a volume with
// another one being created swaps, in that volume, a directory on the path
// of the other's mount destinations with a symlink to a host directory
// (renameat2 RENAME_EXCHANGE in a loop), so that the runtime, between its
// check and its mount or mkdir, follows the symlink: a mount lands on the
// host directory, or the directories made for a mount (CVE-2024-45310) are
// made there. Here the attacker container races while the victim, with
// tmpfs and bind mounts through the shared volume, is created again and
// again; the host directory keeps only its own file, no mount lands on it,
// and the victim finds nothing of it (a mount may still follow the symlink
// as the victim's root resolves it, as if the image held it).
func TestCVE_2021_30465_and_CVE_2024_45310_MountTargetSymlinkRace(t *testing.T) {
	vol, outside, data := t.TempDir(), t.TempDir(), t.TempDir()
	if err := os.WriteFile(filepath.Join(outside, "host-file"), []byte("host"), 0o644); err != nil {
		t.Fatal(err)
	}
	volume := specs.Mount{Destination: "/vol", Type: "bind", Source: vol, Options: []string{"rbind"}}

	a := newEnv(t, "sh", "-c", "mkdir /vol/race && ln -s "+outside+" /vol/evil && exec /attack swap /vol race evil")
	a.installAttack()
	s := a.spec()
	s.Mounts = append(s.Mounts, volume)
	a.writeSpec(s)
	out := a.tempFile()
	cmd := exec.Command(binary, "--root", a.root, "run", "-b", a.bundle, a.id)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	waitFor(t, "the attacker racing", func() bool { return strings.Contains(readBack(t, out), "swapping") })

	// The victim looks for the host directory's file.
	v := newEnv(t, "find", "/", "-path", "/proc", "-prune", "-o", "-path", "/sys", "-prune", "-o", "-name", "host-file", "-print")
	s = v.spec()
	s.Mounts = append(s.Mounts, volume,
		specs.Mount{Destination: "/vol/race/tmp", Type: "tmpfs", Source: "tmpfs"},
		specs.Mount{Destination: "/vol/race/new/deeper", Type: "tmpfs", Source: "tmpfs"},
		specs.Mount{Destination: "/vol/race/data", Type: "bind", Source: data, Options: []string{"bind"}})
	v.writeSpec(s)
	hostMounts, _ := os.ReadFile("/proc/self/mountinfo")
	for i := 0; i < 20; i++ {
		// The race may make run fail, or a mount follow the symlink
		// within the victim's root: either is fine.
		if r := v.cfd("run", "-b", v.bundle, v.id); r.stdout != "" {
			t.Errorf("run %d: the victim sees the host directory: %v", i, r)
		}
		v.cfd("delete", "--force", v.id)
	}
	a.ok("delete", "--force", a.id)
	if ents, _ := os.ReadDir(outside); len(ents) != 1 || ents[0].Name() != "host-file" {
		t.Errorf("the host directory now holds %v", ents)
	}
	if now, _ := os.ReadFile("/proc/self/mountinfo"); string(now) != string(hostMounts) && strings.Contains(string(now), outside) {
		t.Errorf("a mount landed on the host directory %s", outside)
	}
}

// CVE-2025-31133 (GHSA-9493-h29p-rfm2): runc masked files by binding the
// container's own /dev/null over them. Attack 1: the container's /dev/null
// is a symlink to a procfs file (here /proc/sys/kernel/core_pattern), so
// masking binds that file writable over /proc/timer_list & co., and the
// container writes "|/tmp/evil %p" through the masked path to run its
// program on the host at the next core dump. Attack 2: /dev/null is gone,
// and the masking is skipped. Both from an image whose /dev the container
// sees (no /dev tmpfs). As runc 1.5 does, containerfd masks with the
// container's /dev/null, checked: a symlink to anything but the null
// device is refused and the container is not made; a missing one is made
// (a default device), and each masked file is it (1:3, empty) after the
// writes. The host's core_pattern is unchanged.
func TestCVE_2025_31133_MaskedPathNullSwap(t *testing.T) {
	var want strings.Builder
	script := ""
	for _, f := range spec.Default(false).Linux.MaskedPaths {
		if st, err := os.Stat(f); err != nil || st.IsDir() {
			continue // absent here, or masked with a tmpfs
		}
		script += fmt.Sprintf("printf '|/tmp/evil %%%%p' >%s; echo %s $(stat -c %%t:%%T %s) $(wc -c <%s)\n", f, f, f, f)
		fmt.Fprintf(&want, "%s 1:3 0\n", f)
	}
	script += "printf '|/tmp/evil %p' >/proc/sys/kernel/core_pattern || echo refused\n"
	want.WriteString("refused\n")
	before, err := os.ReadFile("/proc/sys/kernel/core_pattern")
	if err != nil {
		t.Fatal(err)
	}
	for _, null := range []string{"symlink", "missing"} {
		t.Run(null, func(t *testing.T) {
			e := newEnv(t, "sh", "-c", script)
			rootfs := e.spec().Root.Path
			os.Remove(filepath.Join(rootfs, "dev/null"))
			if null == "symlink" {
				if err := os.Symlink("/proc/sys/kernel/core_pattern", filepath.Join(rootfs, "dev/null")); err != nil {
					t.Fatal(err)
				}
			}
			s := e.spec()
			withoutDevTmpfs(s)
			s.Linux.Devices = nil
			e.writeSpec(s)
			r := e.cfd("run", "-b", e.bundle, e.id)
			switch {
			case null == "symlink" && (r.code == 0 || !strings.Contains(r.stderr, "/dev/null is not the null device")):
				t.Errorf("masked paths with /dev/null a symlink to core_pattern: %v, want it refused", r)
			case null == "missing" && r.stdout != want.String():
				t.Errorf("masked paths with /dev/null missing: %v, want stdout %q", r, want.String())
			}
			if after, _ := os.ReadFile("/proc/sys/kernel/core_pattern"); string(after) != string(before) {
				t.Fatalf("core_pattern changed: %q", after)
			}
		})
	}
}

// CVE-2025-52565: runc bound /dev/pts/N onto /dev/console by path, before
// masking and read-only paths were applied, so a symlink the container
// placed there (or raced in) made a procfs file such as core_pattern its
// console, writable. Here the image's /dev/console is a symlink to
// /proc/sys/kernel/core_pattern; the container checks that its console is
// the pty (character device 136:N) and that nothing is mounted at
// core_pattern, writes "|/tmp/evil %p" through /dev/console, and the
// host's core_pattern is unchanged.
func TestCVE_2025_52565_ConsoleSymlink(t *testing.T) {
	e := newEnv(t, "sh", "-c", `stat -c '%F %t' /dev/console
		grep -c core_pattern /proc/self/mountinfo
		printf '|/tmp/evil %%p\n' >/dev/console; echo written`)
	rootfs := e.spec().Root.Path
	os.Remove(filepath.Join(rootfs, "dev/console"))
	if err := os.Symlink("/proc/sys/kernel/core_pattern", filepath.Join(rootfs, "dev/console")); err != nil {
		t.Fatal(err)
	}
	s := e.spec()
	withoutDevTmpfs(s)
	s.Process.Terminal = true
	e.writeSpec(s)
	before, err := os.ReadFile("/proc/sys/kernel/core_pattern")
	if err != nil {
		t.Fatal(err)
	}
	m := e.createOnConsole()
	e.ok("start", e.id)
	out := readUntil(t, m, "written")
	if !strings.Contains(out, "character special file 88\r\n0\r\n") {
		t.Errorf("/dev/console: %q", out)
	}
	waitStatus(t, e, "stopped")
	e.ok("delete", e.id)
	if after, _ := os.ReadFile("/proc/sys/kernel/core_pattern"); string(after) != string(before) {
		t.Fatalf("core_pattern changed: %q", after)
	}
}

// CVE-2022-29162 (GHSA-f3fp-gc8g-vw66): runc exec --cap also made the
// capabilities inheritable. The exploit: the image holds a program with
// file inheritable capabilities (setcap cap_sys_admin,cap_net_admin+ei); a
// non-root process exec'd with --cap, without no_new_privs, runs it and
// gains them, as pI & fI. Here /fcaps/busybox carries that xattr and is
// run by exec --user 1000 --cap of both. It gains nothing; with
// CAP_NET_ADMIN inheritable in config.json (the control, which shows the
// file capabilities work) it gains that one and not --cap's.
func TestCVE_2022_29162_ExecCapNotInheritable(t *testing.T) {
	const (
		netAdmin = 1 << 12
		sysAdmin = 1 << 21
		// <linux/capability.h>
		vfsCapRevision2     = 0x02000000
		vfsCapFlagEffective = 0x000001
	)
	e := newEnv(t, "sleep", "100")
	dir := filepath.Join(e.spec().Root.Path, "fcaps")
	os.Mkdir(dir, 0o755)
	b, err := os.ReadFile("/bin/busybox")
	if err != nil {
		t.Fatal(err)
	}
	prog := filepath.Join(dir, "busybox")
	if err := os.WriteFile(prog, b, 0o755); err != nil {
		t.Fatal(err)
	}
	// struct vfs_cap_data, revision 2, effective: permitted 0, inheritable
	// CAP_SYS_ADMIN|CAP_NET_ADMIN.
	xattr := make([]byte, 20)
	binenc.LittleEndian.PutUint32(xattr[0:], vfsCapRevision2|vfsCapFlagEffective)
	binenc.LittleEndian.PutUint32(xattr[8:], netAdmin|sysAdmin)
	if err := unix.Setxattr(prog, "security.capability", xattr, 0); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		inheritable []string
		want        uint64
	}{{nil, 0}, {[]string{"CAP_NET_ADMIN"}, netAdmin}} {
		s := e.spec()
		s.Process.NoNewPrivileges = false // docker's default: file capabilities count
		s.Process.Capabilities.Inheritable = c.inheritable
		s.Process.Capabilities.Bounding = append(s.Process.Capabilities.Bounding, c.inheritable...)
		e.writeSpec(s)
		e.ok("run", "-d", "-b", e.bundle, e.id)
		out := e.ok("exec", "--user", "1000:1000", "--cap", "CAP_SYS_ADMIN", "--cap", "CAP_NET_ADMIN", e.id,
			"/fcaps/busybox", "grep", "-E", "^(CapInh|CapPrm|CapEff|NoNewPrivs)", "/proc/self/status")
		want := fmt.Sprintf("CapInh:\t%016x\nCapPrm:\t%016[1]x\nCapEff:\t%016[1]x\nNoNewPrivs:\t0\n", c.want)
		if out != want {
			t.Errorf("inheritable %v: a non-root exec --cap of a program with file inheritable capabilities:\n%s\nwant\n%s", c.inheritable, out, want)
		}
		e.ok("delete", "--force", e.id)
	}
}

// CVE-2023-25809 (GHSA-m8cg-xc2p-r3fc): without a cgroup namespace,
// rootless runc left /sys/fs/cgroup, the host's hierarchy, writable, and
// the container, whose root is the user, wrote the user's delegated cgroups
// on the host. The steps, from inside a container without a cgroup
// namespace: list its cgroup mounts that are not read-only; look for the
// host's cgroups under /sys/fs/cgroup; remount it read-write; from
// /proc/self/cgroup, find its cgroup and the parent's under
// /sys/fs/cgroup[/unified], and move itself there through cgroup.procs and
// make a cgroup there; mount cgroup2 and the v1 pids hierarchy (whose root
// holds release_agent) afresh. Rootless in a delegated subtree (the CVE's
// case), as root, and as root of a user namespace holding CAP_SYS_ADMIN,
// which may remount its own mounts but no more: each step fails, and the
// cgroups as the host sees them are unchanged.
func TestCVE_2023_25809_NoCgroupNamespace(t *testing.T) {
	script := func(escape string) string {
		return `cg=$(sed -n 's/^0:://p' /proc/self/cgroup)
		grep -E ' - cgroup2? ' /proc/self/mountinfo | cut -d' ' -f5,6 | grep -v ' ro,'
		ls /sys/fs/cgroup | grep -c cfdtest
		mount -o remount,bind,rw /sys/fs/cgroup 2>/dev/null && echo remounted
		for d in /sys/fs/cgroup /sys/fs/cgroup/unified /sys/fs/cgroup$cg /sys/fs/cgroup${cg%/*} /sys/fs/cgroup/unified$cg /sys/fs/cgroup/unified${cg%/*}; do
			[ -f $d/cgroup.procs ] || continue # a cgroup, not the tmpfs that holds v1 hierarchies
			echo $$ >$d/cgroup.procs 2>/dev/null && echo moved to $d
			mkdir $d/` + escape + ` 2>/dev/null && echo made in $d
		done
		mkdir /dev/shm/cg2 /dev/shm/cg1
		mount -t cgroup2 none /dev/shm/cg2 2>/dev/null && echo mounted cgroup2
		mount -t cgroup -o pids none /dev/shm/cg1 2>/dev/null && echo mounted pids
		echo done`
	}
	v2 := "/sys/fs/cgroup/unified"
	if isCgroupFS("/sys/fs/cgroup", unix.CGROUP2_SUPER_MAGIC) {
		v2 = "/sys/fs/cgroup"
	}
	// host checks what the host sees of cgroups after the attack: no
	// cgroup called escape under the hierarchies' roots or below parent
	// (a cgroup2 directory), and the release_agent of v1 pids as it was.
	host := func(t *testing.T, escape, parent string) func() {
		agent, _ := os.ReadFile("/sys/fs/cgroup/pids/release_agent")
		return func() {
			for _, d := range []string{v2, "/sys/fs/cgroup/pids", parent} {
				p := filepath.Join(d, escape)
				if _, err := os.Stat(p); err == nil {
					t.Errorf("the container made the cgroup %s", p)
					os.Remove(p)
				}
			}
			if now, _ := os.ReadFile("/sys/fs/cgroup/pids/release_agent"); string(now) != string(agent) {
				t.Errorf("the host's release_agent changed to %q", now)
			}
		}
	}

	for _, userns := range []bool{false, true} {
		t.Run(fmt.Sprintf("root userns=%v", userns), func(t *testing.T) {
			e := newEnv(t)
			escape := "escape-" + e.id
			s := e.spec()
			s.Process.Args = []string{"sh", "-c", script(escape)}
			withoutNamespace(s, "cgroup")
			want := "0\ndone\n"
			if userns {
				s.Linux.Namespaces = append(s.Linux.Namespaces, specsUserNS())
				s.Linux.UIDMappings, s.Linux.GIDMappings = idMap100000(), idMap100000()
				c := s.Process.Capabilities
				c.Bounding = append(c.Bounding, "CAP_SYS_ADMIN")
				c.Effective = append(c.Effective, "CAP_SYS_ADMIN")
				c.Permitted = append(c.Permitted, "CAP_SYS_ADMIN")
				if err := chownTree(s.Root.Path, 100000, 100000); err != nil {
					t.Fatal(err)
				}
				want = "0\nremounted\ndone\n"
			}
			e.writeSpec(s)
			check := host(t, escape, filepath.Join(v2, filepath.Dir(e.cgroup)))
			if r := e.cfd("run", "-b", e.bundle, e.id); r.stdout != want {
				t.Errorf("the container reached cgroups: %v, want stdout %q", r, want)
			}
			check()
		})
	}

	t.Run("rootless delegated", func(t *testing.T) {
		testutil.NoLeaks(t)
		u := newRootlessUser(t)
		_, cgPath, parent := u.delegatedCgroup()
		id := filepath.Base(cgPath)
		escape := "escape-" + id
		dir := u.bundle(id, func(s *specs.Spec) {
			s.Linux.CgroupsPath = cgPath
			withoutNamespace(s, "cgroup")
		}, "sh", "-c", script(escape))
		check := host(t, escape, parent)
		if r := u.run(dir, "run", id); r.stdout != "0\ndone\n" {
			t.Errorf("the container reached cgroups: %v", r)
		}
		check()
		if ents, _ := os.ReadDir(parent); len(ents) == 0 || slices.ContainsFunc(ents, func(d os.DirEntry) bool { return d.IsDir() && d.Name() != "caller" }) {
			t.Errorf("the delegated subtree %s after the container: %v", parent, ents)
		}
	})
}

// An image whose /proc, /sys or /dev is a symlink to a host directory. The
// published attacks: /proc a symlink so that procfs is mounted elsewhere
// and the runtime's /proc writes go astray (CVE-2023-28642, CVE-2019-19921);
// /dev a symlink so that /dev set-up deletes the host's ptmx and makes the
// fd, stdin, stdout, stderr and core links in a host directory
// (CVE-2026-41579). Here the host directory holds files with those names;
// /proc and /sys are refused as mount points, /dev resolves inside the
// root, where the container finds its own devices; the host directory
// keeps exactly its files and nothing is mounted on it.
func TestHostileRootfsSymlinks(t *testing.T) {
	for _, dir := range []string{"proc", "sys", "dev"} {
		t.Run(dir, func(t *testing.T) {
			outside := t.TempDir()
			names := []string{"ptmx", "null", "console", "fd", "stdin", "stdout", "stderr", "core"}
			for _, n := range names {
				if err := os.WriteFile(filepath.Join(outside, n), []byte("host"), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			e := newEnv(t, "stat", "-L", "-c", "%n %t:%T", "/dev/null", "/dev/ptmx")
			rootfs := e.spec().Root.Path
			os.RemoveAll(filepath.Join(rootfs, dir))
			if err := os.Symlink(outside, filepath.Join(rootfs, dir)); err != nil {
				t.Fatal(err)
			}
			r := e.cfd("run", "-b", e.bundle, e.id)
			// In runc's words too, which its mounts.bats matches.
			if dir != "dev" && (r.code == 0 || !strings.Contains(r.stderr, "symlink") || !strings.Contains(r.stderr, "must be mounted on ordinary directory")) {
				t.Errorf("run with /%s a symlink to the host: %v", dir, r)
			}
			if dir == "dev" && r.stdout != "/dev/null 1:3\n/dev/ptmx 5:2\n" {
				t.Errorf("run with /dev a symlink to the host: %v", r)
			}
			ents, _ := os.ReadDir(outside)
			if len(ents) != len(names) {
				t.Errorf("/%s: the host directory now holds %v", dir, ents)
			}
			for _, n := range names {
				if st, err := os.Lstat(filepath.Join(outside, n)); err != nil || !st.Mode().IsRegular() {
					t.Errorf("/%s: the host's %s: %v, %v", dir, n, st, err)
				} else if b, _ := os.ReadFile(filepath.Join(outside, n)); string(b) != "host" {
					t.Errorf("/%s: the host's %s now holds %q", dir, n, b)
				}
			}
			if mi, _ := os.ReadFile("/proc/self/mountinfo"); strings.Contains(string(mi), outside) {
				t.Errorf("/%s: a mount landed on the host directory", dir)
			}
		})
	}
}

// loopDevice attaches file to a free loop device for the test and returns
// the device's number, or why there is none to be had.
func loopDevice(t *testing.T, file string) (major, minor int64, why error) {
	t.Helper()
	ctl, err := os.OpenFile("/dev/loop-control", os.O_RDWR, 0)
	if err != nil {
		return 0, 0, err
	}
	defer ctl.Close()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for try := 0; try < 10; try++ {
		n, err := unix.IoctlRetInt(int(ctl.Fd()), unix.LOOP_CTL_GET_FREE)
		if err != nil {
			return 0, 0, err
		}
		dev, err := os.OpenFile(fmt.Sprintf("/dev/loop%d", n), os.O_RDONLY, 0)
		if err != nil {
			return 0, 0, err
		}
		if err := unix.IoctlSetInt(int(dev.Fd()), unix.LOOP_SET_FD, int(f.Fd())); err != nil {
			dev.Close() // taken meanwhile by someone else
			continue
		}
		t.Cleanup(func() {
			unix.IoctlSetInt(int(dev.Fd()), unix.LOOP_CLR_FD, 0)
			dev.Close()
		})
		var st unix.Stat_t
		if err := unix.Fstat(int(dev.Fd()), &st); err != nil {
			t.Fatal(err)
		}
		return int64(unix.Major(st.Rdev)), int64(unix.Minor(st.Rdev)), nil
	}
	return 0, 0, errors.New("every free loop device was taken meanwhile")
}

// The device allowed list is enforced. The attack: a container with
// CAP_MKNOD makes nodes for a host disk and for /dev/mem and reads them:
// the host's whole disk (from /proc/partitions, else sda) and, where one
// can be had, a loop device over a file of the host's, which shows what a
// read returns. The nodes are made (mknod of any device is allowed, as runc
// allows it), the reads refused; the control, the loop device allowed for
// reading in linux.resources.devices, reads the file's first sector.
func TestDeviceRulesEnforced(t *testing.T) {
	disk, diskMinor, ok := firstDisk(t)
	if !ok {
		disk, diskMinor = 8, 0 // sda, where the host shows none
	}
	script := fmt.Sprintf(`mknod /tmp/disk b %d %d && echo made
		echo disk $(dd if=/tmp/disk bs=512 count=1 2>/dev/null | wc -c)
		mknod /tmp/mem c 1 1 && echo made
		echo mem $(dd if=/tmp/mem bs=1 count=1 2>/dev/null | wc -c)
		echo ok >/dev/null && echo null-ok
`, disk, diskMinor)
	want := "made\ndisk 0\nmade\nmem 0\nnull-ok\n"
	img := filepath.Join(t.TempDir(), "disk.img")
	if err := os.WriteFile(img, []byte(strings.Repeat("host-disk-sector", 32)), 0o600); err != nil {
		t.Fatal(err)
	}
	loop, loopMinor, err := loopDevice(t, img)
	if err != nil {
		t.Logf("no loop device (%v): the disk alone, without the control", err)
	} else {
		script += fmt.Sprintf(`mknod /tmp/loop b %d %d && echo made
		echo loop $(dd if=/tmp/loop bs=512 count=1 2>/dev/null | grep -c host-disk-sector)`, loop, loopMinor)
		want += "made\nloop 0\n"
	}
	for _, allow := range []bool{false, true} {
		if allow && err != nil {
			break
		}
		e := newEnv(t, "sh", "-c", script)
		s := e.spec()
		c := s.Process.Capabilities
		c.Bounding = append(c.Bounding, "CAP_MKNOD")
		c.Effective = append(c.Effective, "CAP_MKNOD")
		c.Permitted = append(c.Permitted, "CAP_MKNOD")
		if allow {
			s.Linux.Resources.Devices = append(s.Linux.Resources.Devices,
				specs.LinuxDeviceCgroup{Allow: true, Type: "b", Major: &loop, Minor: &loopMinor, Access: "r"})
			want = strings.Replace(want, "loop 0", "loop 1", 1)
		}
		e.writeSpec(s)
		if r := e.cfd("run", "-b", e.bundle, e.id); r.stdout != want {
			t.Errorf("devices (loop device allowed: %v): %v, want stdout %q", allow, r, want)
		}
	}
}

// A seccomp profile applies to init's process and to exec'd ones. The
// attack: from inside, make the system calls the profile forbids (mkdir,
// unshare), directly and through the i386 (int 0x80) and x32 ABIs, whose
// numbers a filter checking x86_64's alone would let through; with the
// profile for x86_64 and x86, and for x86_64 alone. Nothing is made, and
// a profile that cannot be compiled is refused.
func TestSeccomp(t *testing.T) {
	for _, arches := range [][]specs.Arch{{specs.ArchX86_64, specs.ArchX86}, {specs.ArchX86_64}} {
		t.Run(fmt.Sprint(arches), func(t *testing.T) {
			e := newEnv(t, "sh", "-c", "{ mkdir /tmp/init && echo made; unshare -U true && echo unshared; /attack mkdir32 /tmp/init32; echo done; } >/report 2>&1; exec sleep 100")
			e.installAttack()
			s := e.spec()
			s.Linux.Seccomp = &specs.LinuxSeccomp{
				DefaultAction: specs.ActAllow,
				Architectures: arches,
				Syscalls: []specs.LinuxSyscall{
					{Names: []string{"mkdir", "mkdirat"}, Action: specs.ActErrno, ErrnoRet: func() *uint { v := uint(1); return &v }()},
					{Names: []string{"unshare"}, Action: specs.ActErrno},
				},
			}
			e.writeSpec(s)
			e.ok("run", "-d", "-b", e.bundle, e.id)
			rootfs := s.Root.Path
			var report []byte
			waitFor(t, "init's attack", func() bool {
				report, _ = os.ReadFile(filepath.Join(rootfs, "report"))
				return strings.HasSuffix(string(report), "done\n")
			})
			pid := int(e.state()["pid"].(float64))
			if st, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid)); !strings.Contains(string(st), "Seccomp:\t2") {
				t.Errorf("init is not under a seccomp filter")
			}
			r := e.cfd("exec", e.id, "sh", "-c", "mkdir /tmp/exec && echo made; /attack mkdir32 /tmp/exec32; grep Seccomp: /proc/self/status")
			if !strings.Contains(r.stdout, "Seccomp:\t2") {
				t.Errorf("exec under seccomp: %v", r)
			}
			// i386 mkdir is refused by name where the profile has x86,
			// and as a call of an unknown architecture where not.
			i386 := "i386 EPERM\n"
			if len(arches) == 1 {
				i386 = "i386 killed"
			}
			all := string(report) + r.stdout
			if strings.Contains(all, "made") || strings.Contains(all, "unshared") || strings.Contains(all, " ok") || strings.Count(all, i386) != 2 {
				t.Errorf("a forbidden system call: init %q, exec %v", report, r)
			}
			for _, d := range []string{"init", "init32", "exec", "exec32"} {
				if _, err := os.Stat(filepath.Join(rootfs, "tmp", d)); err == nil {
					t.Errorf("/tmp/%s was made", d)
				}
			}
			e.ok("delete", "--force", e.id)
		})
	}

	e := newEnv(t, "true")
	bad := e.spec()
	bad.Linux.Seccomp = &specs.LinuxSeccomp{
		DefaultAction: specs.ActAllow,
		Syscalls:      []specs.LinuxSyscall{{Names: []string{"mkdir"}, Action: specs.ActErrno}, {Names: []string{"unshare"}, Action: "SCMP_ACT_NOPE"}},
	}
	e.writeSpec(bad)
	if r := e.cfd("run", "-b", e.bundle, e.id); r.code == 0 || !strings.Contains(r.stderr, "linux.seccomp.syscalls[1].action") {
		t.Errorf("a bad seccomp action: %v", r)
	}
}

// CVE-2025-52881 (GHSA-cgrx-mc8f-2prm) and CVE-2019-16884: runc's writes to
// /proc (sysctls, the LSM label in /proc/self/attr) went through the
// container's own /proc, so a container that shares a volume with the one
// being created redirected them: a symlink raced into the volume, mounted
// over /proc/sys/net, sent a sysctl to another procfs file (a host-wide
// one, here kernel.printk_ratelimit_burst), and a volume over /proc (the
// 2019 attack) took the writes in plain files. Here the attacker
// container plants a decoy file and a symlink in the volume and swaps them
// (renameat2 RENAME_EXCHANGE) while the victim, with
// net.ipv4.ip_forward=1 and oom_score_adj 300, is created with the volume
// over /proc/sys/net, then over /proc. The real values change, the decoys
// and the host's sysctl do not. (The LSM label is not written here: this
// host's kernel has no LSM; libcontainerfd/lsm tests that write.)
func TestCVE_2025_52881_ProcWritesGoToProcfs(t *testing.T) {
	const target = "/proc/sys/kernel/printk_ratelimit_burst"
	hostValue, err := os.ReadFile(target)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if now, _ := os.ReadFile(target); string(now) != string(hostValue) {
			t.Errorf("%s changed to %q; restoring %q", target, now, hostValue)
			os.WriteFile(target, hostValue, 0)
		}
	})
	vol := t.TempDir()
	a := newEnv(t, "sh", "-c", `for d in /vol/net/ipv4 /vol/proc/sys/net/ipv4 /vol/proc/self/attr/apparmor; do mkdir -p $d; done
		for f in /vol/net/ipv4/ip_forward /vol/proc/sys/net/ipv4/ip_forward /vol/proc/self/oom_score_adj /vol/proc/self/attr/exec /vol/proc/self/attr/apparmor/exec; do
			echo decoy >$f
		done
		ln -s `+target+` /vol/net/ipv4/link
		exec /attack swap /vol/net/ipv4 ip_forward link`)
	a.installAttack()
	s := a.spec()
	s.Mounts = append(s.Mounts, specs.Mount{Destination: "/vol", Type: "bind", Source: vol, Options: []string{"rbind"}})
	a.writeSpec(s)
	a.ok("run", "-d", "-b", a.bundle, a.id)
	waitFor(t, "the attacker racing", func() bool {
		_, err := os.Lstat(filepath.Join(vol, "net/ipv4/link"))
		return err == nil
	})

	for _, over := range []string{"/proc/sys/net", "/proc"} {
		src := filepath.Join(vol, "net")
		if over == "/proc" {
			src = filepath.Join(vol, "proc")
		}
		v := newEnv(t, "sleep", "100")
		s := v.spec()
		s.Mounts = append(s.Mounts, specs.Mount{Destination: over, Type: "bind", Source: src, Options: []string{"rbind"}})
		s.Linux.ReadonlyPaths = nil
		s.Linux.MaskedPaths = nil
		s.Linux.Sysctl = map[string]string{"net.ipv4.ip_forward": "1"}
		adj := 300
		s.Process.OOMScoreAdj = &adj
		v.writeSpec(s)
		for i := 0; i < 5; i++ {
			if r := v.cfd("run", "-d", "-b", v.bundle, v.id); r.code != 0 {
				t.Fatalf("run with a volume over %s: %v", over, r)
			}
			// The real values, seen from a fresh procfs the exec mounts.
			out := v.ok("exec", "--cap", "CAP_SYS_ADMIN", v.id, "sh", "-c",
				"mkdir -p /tmp/p && mount -t proc proc /tmp/p && cat /tmp/p/sys/net/ipv4/ip_forward /tmp/p/1/oom_score_adj; umount /tmp/p")
			if out != "1\n300\n" {
				t.Errorf("volume over %s: real procfs values %q", over, out)
			}
			v.ok("delete", "--force", v.id)
		}
	}
	a.ok("delete", "--force", a.id)
	filepath.WalkDir(vol, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if c, _ := os.ReadFile(p); string(c) != "decoy\n" {
				t.Errorf("the decoy %s now holds %q", p, c)
			}
		}
		return nil
	})
}

// SCMP_ACT_NOTIFY: the listener fd reaches listenerPath with runc's
// ContainerProcessState, and the agent's answer is what the container sees.
func TestSeccompNotify(t *testing.T) {
	e := newEnv(t, "sh", "-c", "mkdir /tmp/notified && echo made || echo refused; sleep 100")
	sock := filepath.Join(t.TempDir(), "agent.sock")
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: sock, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	s := e.spec()
	s.Linux.Seccomp = &specs.LinuxSeccomp{
		DefaultAction:    specs.ActAllow,
		ListenerPath:     sock,
		ListenerMetadata: "agent-meta",
		Architectures:    []specs.Arch{specs.ArchX86_64, specs.ArchX86},
		Syscalls:         []specs.LinuxSyscall{{Names: []string{"mkdir", "mkdirat"}, Action: specs.ActNotify}},
	}
	e.writeSpec(s)
	got := make(chan string, 1)
	go func() {
		conn, err := l.AcceptUnix()
		if err != nil {
			got <- err.Error()
			return
		}
		defer conn.Close()
		buf, oob := make([]byte, 65536), make([]byte, unix.CmsgSpace(4))
		n, oobn, _, _, err := conn.ReadMsgUnix(buf, oob)
		if err != nil {
			got <- err.Error()
			return
		}
		msgs, _ := unix.ParseSocketControlMessage(oob[:oobn])
		if len(msgs) != 1 {
			got <- "no fd"
			return
		}
		fds, _ := unix.ParseUnixRights(&msgs[0])
		var st specs.ContainerProcessState
		json.Unmarshal(buf[:n], &st)
		// Answer the first call with EACCES.
		var req [80]byte // struct seccomp_notif
		for {
			_, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(fds[0]), unix.SECCOMP_IOCTL_NOTIF_RECV, uintptr(unsafe.Pointer(&req[0])))
			if e != unix.EINTR {
				break
			}
		}
		var resp [24]byte // struct seccomp_notif_resp: id, val, error, flags
		copy(resp[:8], req[:8])
		*(*int32)(unsafe.Pointer(&resp[16])) = -int32(unix.EACCES)
		unix.Syscall(unix.SYS_IOCTL, uintptr(fds[0]), unix.SECCOMP_IOCTL_NOTIF_SEND, uintptr(unsafe.Pointer(&resp[0])))
		unix.Close(fds[0])
		got <- fmt.Sprintf("%s %v %s %s", st.Metadata, st.Fds, st.State.ID, st.Version)
	}()
	e.ok("create", "--bundle", e.bundle, e.id)
	e.ok("start", e.id)
	select {
	case g := <-got:
		if want := "agent-meta [seccompFd] " + e.id + " " + specs.Version; g != want {
			t.Errorf("agent got %q, want %q", g, want)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no seccomp listener reached the agent")
	}
	rootfs := e.spec().Root.Path
	time.Sleep(200 * time.Millisecond)
	if _, err := os.Stat(filepath.Join(rootfs, "tmp/notified")); err == nil {
		t.Error("the agent said EACCES, but the directory was made")
	}
}

// Without an agent listening, start fails in runc's words and leaves
// nothing; NOTIFY on write is refused at create, as runc refuses it.
func TestSeccompNotifyNoAgentAndWrite(t *testing.T) {
	e := newEnv(t, "true")
	s := e.spec()
	s.Linux.Seccomp = &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, ListenerPath: filepath.Join(t.TempDir(), "none.sock"),
		Syscalls: []specs.LinuxSyscall{{Names: []string{"mkdir"}, Action: specs.ActNotify}}}
	e.writeSpec(s)
	if r := e.cfd("run", "-b", e.bundle, e.id); r.code == 0 || !strings.Contains(r.stderr, "failed to connect with seccomp agent") {
		t.Errorf("run without an agent: %v", r)
	}
	if r := e.cfd("state", e.id); r.code == 0 {
		t.Errorf("a failed run left its container: %v", r)
	}
	s.Linux.Seccomp.Syscalls[0].Names = []string{"write"}
	e.writeSpec(s)
	if r := e.cfd("run", "-b", e.bundle, e.id); r.code == 0 || !strings.Contains(r.stderr, "SCMP_ACT_NOTIFY cannot be used for the write syscall") {
		t.Errorf("run with NOTIFY on write: %v", r)
	}
}

// takePid starts a host process (sleep) with pid, steering the kernel's
// next pid through ns_last_pid; it skips the test where other processes
// keep taking it first.
func takePid(t *testing.T, pid int) {
	t.Helper()
	for try := 0; try < 200; try++ {
		if err := os.WriteFile("/proc/sys/kernel/ns_last_pid", []byte(strconv.Itoa(pid-1)), 0); err != nil {
			t.Skipf("ns_last_pid: %v", err)
		}
		cmd := exec.Command("sleep", "100")
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		if cmd.Process.Pid == pid {
			t.Cleanup(func() {
				cmd.Process.Kill()
				cmd.Wait()
			})
			return
		}
		cmd.Process.Kill()
		cmd.Wait()
	}
	t.Skipf("pid %d kept going to other processes", pid)
}

// A reused pid mistaken for the container's init. The attack: the
// container's init exits on its own, and a host process comes to hold its
// pid before anyone deletes the container; then state, kill, exec, ps and
// delete are run on the container, as a caller would, with the pidfs
// handle and with the start-time fallback that identify init. The
// container is stopped, the host process is neither signalled, nor
// entered by exec, nor listed.
func TestPidReuse(t *testing.T) {
	for _, fallback := range []bool{false, true} {
		t.Run(fmt.Sprintf("start-time=%v", fallback), func(t *testing.T) {
			if fallback {
				t.Setenv(kernfeat.EnvDisable, os.Getenv(kernfeat.EnvDisable)+",pidfs-handle")
			}
			e := newEnv(t, "sh", "-c", "while [ ! -e /exit ]; do sleep 0.05; done")
			e.ok("run", "-d", "-b", e.bundle, e.id)
			pid := int(e.state()["pid"].(float64))
			if err := os.WriteFile(filepath.Join(e.spec().Root.Path, "exit"), nil, 0o644); err != nil {
				t.Fatal(err)
			}
			waitFor(t, "init to exit and be reaped", func() bool {
				_, err := os.Stat(fmt.Sprintf("/proc/%d", pid))
				return err != nil
			})
			takePid(t, pid)
			alive := func(what string) {
				t.Helper()
				var st unix.WaitStatus
				if n, err := unix.Wait4(pid, &st, unix.WNOHANG, nil); n != 0 || err != nil {
					t.Fatalf("after %s the host process holding pid %d is gone: %v", what, pid, st)
				}
			}
			if st := e.status(); st != "stopped" {
				t.Errorf("state with init's pid reused: %s", st)
			}
			e.cfd("kill", e.id, "9")
			alive("kill")
			if r := e.cfd("exec", e.id, "sh", "-c", "echo entered"); r.code == 0 || strings.Contains(r.stdout, "entered") {
				t.Errorf("exec into a container whose init's pid a host process holds: %v", r)
			}
			if r := e.cfd("ps", "--format", "json", e.id); strings.Contains(r.stdout, strconv.Itoa(pid)) {
				t.Errorf("ps lists the host process: %v", r)
			}
			e.ok("delete", e.id)
			alive("delete")
		})
	}
}

// A seccomp profile without a flags field is loaded with SPEC_ALLOW, as
// runc loads it: the filter leaves the process's speculative store bypass
// as the host has it. With an empty flags list the kernel's seccomp
// mitigation applies.
func TestSeccompSpecAllowByDefault(t *testing.T) {
	b, _ := os.ReadFile("/sys/devices/system/cpu/vulnerabilities/spec_store_bypass")
	if !strings.Contains(string(b), "seccomp") {
		t.Skipf("the host does not mitigate speculative store bypass for seccomp'd processes (spec_store_bypass: %q)", strings.TrimSpace(string(b)))
	}
	for _, tc := range []struct {
		flags []specs.LinuxSeccompFlag
		want  string
	}{{nil, "thread vulnerable"}, {[]specs.LinuxSeccompFlag{}, "thread force mitigated"}} {
		e := newEnv(t, "grep", "Speculation_Store_Bypass", "/proc/self/status")
		s := e.spec()
		s.Linux.Seccomp = &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Flags: tc.flags,
			Syscalls: []specs.LinuxSyscall{{Names: []string{"kexec_load"}, Action: specs.ActErrno}}}
		e.writeSpec(s)
		if r := e.cfd("run", "-b", e.bundle, e.id); !strings.Contains(r.stdout, tc.want) {
			t.Errorf("flags %v: %v, want %q", tc.flags, r, tc.want)
		}
	}
}
