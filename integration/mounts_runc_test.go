package integration

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/containerfd/containerfd/libcontainerfd/mounttree"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// Tests that the container's mounts, seen from inside, are runc's: each
// was run against runc (Debian's 1.1.5, and runc 1.5's source read for
// what it does) with the same bundle.

// Kubernetes' mountPropagation: Bidirectional (what CSI node plugins use)
// reaches the runtime, through containerd's CRI, as a bind with "rshared"
// and rootfsPropagation "rshared". runc starts it, and a mount made on the
// host under the source shows inside, and one made inside shows on the host.
// containerfd made the root shared before pivot_root, which refuses a shared
// new root: "init: pivot_root: invalid argument".
func TestBidirectionalVolume(t *testing.T) {
	e := newEnv(t, "sleep", "100")
	src := sharedVolume(t)
	s := e.spec()
	s.Mounts = append(s.Mounts, specs.Mount{Destination: "/vol", Type: "bind", Source: src, Options: []string{"rbind", "rshared"}})
	s.Linux.RootfsPropagation = "rshared"
	withSysAdmin(s) // a CSI plugin mounts: it has CAP_SYS_ADMIN
	e.writeSpec(s)
	if r := e.cfd("run", "-d", "-b", e.bundle, e.id); r.code != 0 {
		t.Fatalf("run with a Bidirectional volume: %v", r)
	}
	t.Cleanup(func() { unix.Unmount(filepath.Join(src, "from-host"), unix.MNT_DETACH) })
	if err := unix.Mount("tmpfs", filepath.Join(src, "from-host"), "tmpfs", 0, "size=1m"); err != nil {
		t.Fatal(err)
	}
	if out := e.ok("exec", e.id, "awk", "$5 == \"/vol/from-host\" { print $9 }", "/proc/self/mountinfo"); out != "tmpfs\n" {
		t.Errorf("a tmpfs mounted on the host under the volume's source: inside, /vol/from-host is %q, want the tmpfs", out)
	}
	e.ok("exec", e.id, "mount", "-t", "tmpfs", "tmpfs", "/vol/from-inside")
	t.Cleanup(func() { unix.Unmount(filepath.Join(src, "from-inside"), unix.MNT_DETACH) })
	var st unix.Statfs_t
	if err := unix.Statfs(filepath.Join(src, "from-inside"), &st); err != nil || st.Type != unix.TMPFS_MAGIC {
		t.Errorf("a tmpfs mounted inside on /vol/from-inside did not show on the host (statfs type %#x, %v)", st.Type, err)
	}
}

// mountsOf returns the mount points of /proc/self/mountinfo inside, in order.
func mountsOf(info string) []string {
	var out []string
	for _, l := range strings.Split(strings.TrimSpace(info), "\n") {
		if f := strings.Fields(l); len(f) > 4 {
			out = append(out, f[4])
		}
	}
	return out
}

// "ro" on a bind is not recursive in runc, nor with mount(8), nor in
// Kubernetes before recursiveReadOnly: a read-only bind whose source has a
// submount leaves the submount writable; "rro" makes it read-only too.
func TestReadonlyBindNotRecursive(t *testing.T) {
	e := newEnv(t, "sh", "-c", `touch /ro/sub/a && echo ro-sub-rw
touch /ro/top 2>/dev/null || echo ro-top-ro
touch /rro/sub/b 2>/dev/null || echo rro-sub-ro
touch /rro/top 2>/dev/null || echo rro-top-ro`)
	src := t.TempDir()
	sub := filepath.Join(src, "sub")
	if err := os.Mkdir(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("tmpfs", sub, "tmpfs", 0, "size=1m"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Unmount(sub, unix.MNT_DETACH) })
	s := e.spec()
	s.Mounts = append(s.Mounts,
		specs.Mount{Destination: "/ro", Type: "bind", Source: src, Options: []string{"rbind", "ro"}},
		specs.Mount{Destination: "/rro", Type: "bind", Source: src, Options: []string{"rbind", "rro"}})
	e.writeSpec(s)
	r := e.cfd("run", "-b", e.bundle, e.id)
	if want := "ro-sub-rw\nro-top-ro\nrro-sub-ro\nrro-top-ro\n"; r.code != 0 || r.stdout != want {
		t.Errorf("rbind ro and rro with a submount: %v, want stdout %q", r, want)
	}
}

// runc 1.5 masks a directory with a read-only tmpfs of one block and one
// inode (its default mode, 1777; any write fails with EROFS), made once
// and bound on every later masked directory; a path listed twice is masked
// once.
func TestMaskedDirReadonlyTmpfs(t *testing.T) {
	e := newEnv(t, "sh", "-c", `stat -c '%a %u %g' /mask-a /mask-b
mkdir /mask-a/x 2>&1
awk '$5 ~ /^\/mask-/ { print $5, $6, $(NF) }' /proc/self/mountinfo`)
	s := e.spec()
	for _, d := range []string{"mask-a", "mask-b"} {
		if err := os.Mkdir(filepath.Join(s.Root.Path, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	s.Linux.MaskedPaths = []string{"/mask-a", "/mask-b", "/mask-a/"}
	s.Process.User = specs.User{UID: 1000, GID: 1000}
	e.writeSpec(s)
	r := e.cfd("run", "-b", e.bundle, e.id)
	want := `1777 0 0
1777 0 0
mkdir: can't create directory '/mask-a/x': Read-only file system
/mask-a ro,relatime ro,size=4k,nr_inodes=1
/mask-b ro,relatime ro,size=4k,nr_inodes=1
`
	// A kernel built with CONFIG_TMPFS_INODE64 (Debian's 6.1) shows
	// inode64 among every tmpfs's options.
	r.stdout = strings.ReplaceAll(r.stdout, ",inode64", "")
	if r.code != 0 || r.stdout != want {
		t.Errorf("masked directories: %v\nwant stdout\n%s", r, want)
	}
}

// runc keeps the config's order in /proc/self/mountinfo: the root, the
// mounts as listed, then the read-only paths, then the masked ones. From
// Linux 6.8 on, mountinfo lists mounts in the order they were made, not
// attached, so each must be made in turn.
func TestMountinfoOrder(t *testing.T) {
	e := newEnv(t, "cat", "/proc/self/mountinfo")
	s := e.spec()
	for _, d := range []string{"ro-dir", "mask-dir", "a", "b"} {
		if err := os.Mkdir(filepath.Join(s.Root.Path, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(s.Root.Path, "mask-file"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	s.Mounts = append(s.Mounts,
		specs.Mount{Destination: "/a", Type: "tmpfs", Source: "tmpfs"},
		specs.Mount{Destination: "/b", Type: "bind", Source: t.TempDir(), Options: []string{"rbind"}},
		specs.Mount{Destination: "/a/c", Type: "tmpfs", Source: "tmpfs"})
	s.Linux.ReadonlyPaths = []string{"/proc/sys", "/ro-dir"}
	s.Linux.MaskedPaths = []string{"/mask-file", "/mask-dir", "/proc/uptime"}
	e.writeSpec(s)
	want := []string{"/"}
	for _, m := range s.Mounts {
		want = append(want, m.Destination)
	}
	want = append(append(want, s.Linux.ReadonlyPaths...), s.Linux.MaskedPaths...)
	r := e.cfd("run", "-b", e.bundle, e.id)
	if r.code != 0 {
		t.Fatalf("run: %v", r)
	}
	var got []string
	for _, m := range mountsOf(r.stdout) {
		// A cgroup mount expands to a hierarchy per controller below it
		// on a v1 host; proc goes last where the kernel cannot make it
		// for another pid namespace from outside (see docs/compat.md).
		if strings.HasPrefix(m, "/sys/fs/cgroup/") || (m == "/proc" && !mounttree.ProcPidns.Available()) {
			continue
		}
		got = append(got, m)
	}
	if !mounttree.ProcPidns.Available() {
		want = slices.DeleteFunc(want, func(m string) bool { return m == "/proc" })
	}
	if !slices.Equal(got, want) {
		t.Errorf("mountinfo's order inside:\n got %q\nwant %q", got, want)
	}
}

// A cgroup mount shows the container's own limits where programs read them
// (JVMs, GOMEMLIMIT helpers, cAdvisor): on a v1 or hybrid host, as runc
// does, a tmpfs with each v1 hierarchy bound read-only at the container's
// cgroup (a hybrid host's cgroup2, which holds no controllers, is not
// shown); on a pure cgroup2 host, cgroup2.
func TestCgroupMountShowsLimits(t *testing.T) {
	const limit = 64 << 20
	var st unix.Statfs_t
	if err := unix.Statfs("/sys/fs/cgroup", &st); err != nil {
		t.Fatal(err)
	}
	v2 := st.Type == unix.CGROUP2_SUPER_MAGIC
	script := `cat /sys/fs/cgroup/memory.max; test -e /sys/fs/cgroup/memory || echo no-v1`
	want := fmt.Sprintf("%d\nno-v1\n", limit)
	if !v2 {
		if err := unix.Statfs("/sys/fs/cgroup/memory", &st); err != nil || st.Type != unix.CGROUP_SUPER_MAGIC {
			t.Skip("needs a cgroup v1 memory hierarchy at /sys/fs/cgroup/memory, or a pure cgroup2 host")
		}
		script = `cat /sys/fs/cgroup/memory/memory.limit_in_bytes
test -e /sys/fs/cgroup/cgroup.controllers || echo no-cgroup2
echo 1 2>/dev/null >/sys/fs/cgroup/memory/memory.limit_in_bytes || echo read-only`
		want = fmt.Sprintf("%d\nno-cgroup2\nread-only\n", limit)
	}
	e := newEnv(t, "sh", "-c", script)
	s := e.spec()
	memLimit := int64(limit)
	s.Linux.Resources = &specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: &memLimit}}
	e.writeSpec(s)
	if r := e.cfd("run", "-b", e.bundle, e.id); r.code != 0 || r.stdout != want {
		t.Errorf("limits under /sys/fs/cgroup inside: %v, want stdout %q", r, want)
	}
}

// With a user namespace, runc's init makes /dev's mounts, links and masks
// inside it, so they belong to the container's root. containerfd makes
// them outside, as the host's root, whose files are the overflow id 65534
// inside unless given to the container's root: the /dev tmpfs (uid=, gid=),
// the roots of devpts and mqueue and devpts' ptmx (chown), the links
// (/dev/fd, /dev/ptmx, /dev/stdin …) and a masked directory's tmpfs.
func TestUsernsDevOwnership(t *testing.T) {
	e := newEnv(t, "sh", "-c", `stat -c '%n %u:%g' /dev /dev/pts /dev/pts/ptmx /dev/mqueue /dev/shm /dev/fd /dev/ptmx /dev/stdin /dev/stdout /dev/stderr /mask-dir`)
	s := e.spec()
	if err := os.Mkdir(filepath.Join(s.Root.Path, "mask-dir"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := chownTree(s.Root.Path, 100000, 100000); err != nil {
		t.Fatal(err)
	}
	s.Linux.Namespaces = append(s.Linux.Namespaces, specsUserNS())
	s.Linux.UIDMappings, s.Linux.GIDMappings = idMap100000(), idMap100000()
	s.Linux.MaskedPaths = append(s.Linux.MaskedPaths, "/mask-dir")
	e.writeSpec(s)
	r := e.cfd("run", "-b", e.bundle, e.id)
	if r.code != 0 {
		t.Fatalf("run: %v", r)
	}
	for _, l := range strings.Split(strings.TrimSpace(r.stdout), "\n") {
		if !strings.HasSuffix(l, " 0:0") {
			t.Errorf("%s, want the container's root, 0:0", l)
		}
	}
}

// A bind's flags as runc sets them (runc's mounts_sshfs.bats): with no
// flag option the bind keeps its source's flags; one that names any flag
// gets those it names and no others, but keeps the source's atime setting
// unless an option sets one. With a user namespace runc binds inside it,
// where the kernel locks the source's ro, nosuid, nodev, noexec and atime:
// those stay, and an option that clears one fails the start.
func TestBindFlagsAsRunc(t *testing.T) {
	const (
		ro, nosuid, nodev, noexec = unix.MS_RDONLY, unix.MS_NOSUID, unix.MS_NODEV, unix.MS_NOEXEC
		noatime, nodiratime       = unix.MS_NOATIME, unix.MS_NODIRATIME
	)
	for _, c := range []struct {
		name   string
		source uintptr
		opts   []string
		want   string // the bind's options inside; "" for a failed start
		userns string // the same with a user namespace
	}{
		{"no options", ro | noexec | nodiratime, []string{"bind"}, "ro,noexec,nodiratime,relatime", "ro,noexec,nodiratime,relatime"},
		{"dev clears the rest", ro | noexec, []string{"bind", "dev"}, "rw,relatime", "ro,noexec,relatime"},
		{"implied rw", ro, []string{"bind", "nosuid", "nodev"}, "rw,nosuid,nodev,relatime", "ro,nosuid,nodev,relatime"},
		{"explicit rw", ro, []string{"bind", "rw", "nosuid"}, "rw,nosuid,relatime", ""},
		{"ro keeps noatime", nosuid | nodev | noexec | noatime, []string{"bind", "ro"}, "ro,noatime", "ro,nosuid,nodev,noexec,noatime"},
		{"rbind keeps noatime", noatime, []string{"rbind"}, "rw,noatime", "rw,noatime"},
	} {
		for _, userns := range []bool{false, true} {
			want := c.want
			if userns {
				want = c.userns
			}
			t.Run(fmt.Sprintf("%s userns=%v", c.name, userns), func(t *testing.T) {
				e := newEnv(t, "awk", `$5 == "/fl" { print $6 }`, "/proc/self/mountinfo")
				src := t.TempDir()
				if err := unix.Mount("tmpfs", src, "tmpfs", 0, "size=1m"); err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { unix.Unmount(src, unix.MNT_DETACH) })
				if err := unix.Mount("", src, "", unix.MS_REMOUNT|unix.MS_BIND|c.source, ""); err != nil {
					t.Fatal(err)
				}
				s := e.spec()
				s.Mounts = append(s.Mounts, specs.Mount{Destination: "/fl", Type: "bind", Source: src, Options: c.opts})
				if userns {
					if err := chownTree(s.Root.Path, 100000, 100000); err != nil {
						t.Fatal(err)
					}
					s.Linux.Namespaces = append(s.Linux.Namespaces, specsUserNS())
					s.Linux.UIDMappings, s.Linux.GIDMappings = idMap100000(), idMap100000()
				}
				e.writeSpec(s)
				r := e.cfd("run", "-b", e.bundle, e.id)
				switch {
				case want == "" && r.code == 0:
					t.Errorf("options %q cleared a flag locked on the source: %v", c.opts, r)
				case want != "" && (r.code != 0 || r.stdout != want+"\n"):
					t.Errorf("options %q on a bind of a %s mount: %v, want %q", c.opts, mountFlagNames(c.source), r, want)
				}
			})
		}
	}
}

// mountFlagNames names MS_ flags for messages.
func mountFlagNames(f uintptr) string {
	var s []string
	for _, n := range []struct {
		f    uintptr
		name string
	}{{unix.MS_RDONLY, "ro"}, {unix.MS_NOSUID, "nosuid"}, {unix.MS_NODEV, "nodev"}, {unix.MS_NOEXEC, "noexec"},
		{unix.MS_NOATIME, "noatime"}, {unix.MS_NODIRATIME, "nodiratime"}} {
		if f&n.f != 0 {
			s = append(s, n.name)
		}
	}
	return strings.Join(s, ",")
}

// runc binds each mount after the ones before it, so a bind's source under
// root.path may be a tree that earlier mounts of the config made (runc's
// "mount order, container bind-mount source"); containerfd opened every
// source before attaching any, and open_tree found nothing there.
func TestBindSourceFromEarlierMount(t *testing.T) {
	for _, tc := range []struct{ userns, hostDest, idmap bool }{
		{false, false, false}, {true, false, false}, {false, true, false},
		// runc's "container idmap source": the binds from the tree
		// idmapped with a mapping of their own.
		{false, true, true}, {true, true, true},
	} {
		userns := tc.userns
		t.Run(fmt.Sprintf("userns=%v,hostDest=%v,idmap=%v", tc.userns, tc.hostDest, tc.idmap), func(t *testing.T) {
			e := newEnv(t, "cat", "/final/x/y/z/z/x/y/z/x/file")
			s := e.spec()
			rootfs := s.Root.Path
			src := t.TempDir()
			for _, sub := range []string{"a/x", "b/y", "c/z"} {
				if err := os.MkdirAll(filepath.Join(src, sub), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join(src, sub, "file"), []byte(sub+"\n"), 0o644); err != nil {
					t.Fatal(err)
				}
				top := filepath.Dir(sub)
				if err := os.Symlink(top, filepath.Join(src, "sym-"+top)); err != nil {
					t.Fatal(err)
				}
			}
			for _, d := range []string{"mnt", "final"} {
				if err := os.Mkdir(filepath.Join(rootfs, d), 0o755); err != nil {
					t.Fatal(err)
				}
			}
			bind := func(from, to string) specs.Mount {
				m := specs.Mount{Destination: to, Type: "bind", Source: from, Options: []string{"rbind"}}
				if tc.hostDest && strings.HasPrefix(from, rootfs) {
					// runc's test names these destinations by their host
					// path under root.path, which runc strips.
					m.Destination = filepath.Join(rootfs, to)
				}
				if tc.idmap && strings.HasPrefix(from, rootfs) {
					m.Options = append(m.Options, "idmap")
					m.UIDMappings, m.GIDMappings = idMap100000(), idMap100000()
				}
				return m
			}
			s.Mounts = append(s.Mounts,
				bind(filepath.Join(src, "a"), "/mnt"),
				bind(filepath.Join(src, "sym-b"), "/mnt/x"),
				bind(filepath.Join(src, "c"), "/mnt/x/y"),
				bind(filepath.Join(src, "sym-a"), "/mnt/x/y/z"),
				// Sources made by the mounts above.
				bind(filepath.Join(rootfs, "mnt/x"), "/mnt/x/y/z/x"),
				bind(filepath.Join(rootfs, "mnt/x/y"), "/mnt/x/y/z"),
				bind(filepath.Join(rootfs, "mnt"), "/final"))
			if userns {
				if err := chownTree(rootfs, 100000, 100000); err != nil {
					t.Fatal(err)
				}
				s.Linux.Namespaces = append(s.Linux.Namespaces, specsUserNS())
				s.Linux.UIDMappings, s.Linux.GIDMappings = idMap100000(), idMap100000()
			}
			e.writeSpec(s)
			r := e.cfd("run", "-b", e.bundle, e.id)
			if tc.idmap && userns && stageForced() {
				// The stage, root only of the container's user namespace,
				// cannot idmap: the runtime opens those binds before any
				// mount, where this source is not there yet (docs/compat.md).
				if r.code == 0 || !strings.Contains(r.stderr, "mount rbind "+filepath.Join(rootfs, "mnt/x")+" on /mnt/x/y/z/x") {
					t.Errorf("through the stage: %v, want the bind named in the error", r)
				}
				return
			}
			if r.code != 0 || r.stdout != "a/x\n" {
				t.Errorf("binds from a tree the config's earlier mounts made: %v, want stdout %q", r, "a/x\n")
			}
		})
	}
}

// runc mounts a read-only tmpfs or /dev writable and makes it read-only
// once the root is built, so /dev takes its mounts, nodes and links (runc's
// "ro /dev mount"); and a tmpfs without mode= takes the mode of the
// directory it covers, as a mode= option ("tmpfs mount mode= inherit").
func TestReadonlyDevAndTmpfsMode(t *testing.T) {
	e := newEnv(t, "sh", "-c", `awk '$2 == "/dev" || $2 == "/ro" { print $2, substr($4, 1, 3) }' /proc/mounts
test -c /dev/pts/ptmx && test -L /dev/fd && echo dev-filled
stat -c '%n %a' /inherit /explicit /new /ro
grep -o '^tmpfs /inherit .*mode=710' /proc/mounts >/dev/null && echo mode-option`)
	s := e.spec()
	for _, d := range []string{"inherit", "explicit", "ro"} {
		dir := filepath.Join(s.Root.Path, d)
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(dir, 0o710); err != nil {
			t.Fatal(err)
		}
	}
	for i, m := range s.Mounts {
		if m.Destination == "/dev" {
			s.Mounts[i].Options = append(m.Options, "ro")
		}
	}
	tmpfs := func(dst string, opts ...string) specs.Mount {
		return specs.Mount{Destination: dst, Type: "tmpfs", Source: "tmpfs", Options: append([]string{"nodev", "nosuid"}, opts...)}
	}
	s.Mounts = append(s.Mounts, tmpfs("/inherit"), tmpfs("/explicit", "mode=1500"), tmpfs("/new"), tmpfs("/ro", "ro"))
	e.writeSpec(s)
	want := "/dev ro,\n/ro ro,\ndev-filled\n/inherit 710\n/explicit 1500\n/new 1777\n/ro 710\nmode-option\n"
	if r := e.cfd("run", "-b", e.bundle, e.id); r.code != 0 || r.stdout != want {
		t.Errorf("a read-only /dev and tmpfs modes: %v, want stdout %q", r, want)
	}
}

// A read-only /dev still takes the console's bind, whose mount point is
// made before /dev goes read-only (runc's "ro /dev mount" runs with a
// terminal).
func TestReadonlyDevConsole(t *testing.T) {
	eachStartPath(t, func(t *testing.T) {
		e := newEnv(t, "sh", "-c", `awk '$2 == "/dev" { print substr($4, 1, 3) }' /proc/mounts; test -e /dev/console && echo console; sleep 100`)
		s := e.spec()
		s.Process.Terminal = true
		for i, m := range s.Mounts {
			if m.Destination == "/dev" {
				s.Mounts[i].Options = append(m.Options, "ro")
			}
		}
		e.writeSpec(s)
		m := e.createOnConsole()
		e.ok("start", e.id)
		if out := readUntil(t, m, "console"); !strings.Contains(out, "ro,\r\nconsole") {
			t.Errorf("a read-only /dev with a terminal: %q", out)
		}
	})
}

// Without rootfsPropagation runc makes the container's mounts slaves of
// the host's (rslave): a mount made on the host under a volume's source
// shows inside. A bind that asks for rshared is then a slave with a peer
// group of its own: what is mounted on it inside stays inside.
func TestVolumeReceivesHostMounts(t *testing.T) {
	e := newEnv(t, "sleep", "100")
	src := sharedVolume(t)
	s := e.spec()
	s.Mounts = append(s.Mounts,
		specs.Mount{Destination: "/vol", Type: "bind", Source: src, Options: []string{"rbind"}},
		specs.Mount{Destination: "/shared", Type: "bind", Source: src, Options: []string{"rbind", "rshared"}})
	withSysAdmin(s)
	e.writeSpec(s)
	if r := e.cfd("run", "-d", "-b", e.bundle, e.id); r.code != 0 {
		t.Fatalf("run: %v", r)
	}
	t.Cleanup(func() { unix.Unmount(filepath.Join(src, "from-host"), unix.MNT_DETACH) })
	if err := unix.Mount("tmpfs", filepath.Join(src, "from-host"), "tmpfs", 0, "size=1m"); err != nil {
		t.Fatal(err)
	}
	got := strings.Fields(e.ok("exec", e.id, "awk", `$5 ~ /from-host$/ { for (i = 7; $i != "-"; i++); print $5 ":" $(i+1) }`, "/proc/self/mountinfo"))
	slices.Sort(got)
	if want := []string{"/shared/from-host:tmpfs", "/vol/from-host:tmpfs"}; !slices.Equal(got, want) {
		t.Errorf("a tmpfs mounted on the host under the volumes' source, inside: %q, want %q", got, want)
	}
	e.ok("exec", e.id, "mount", "-t", "tmpfs", "tmpfs", "/shared/from-inside")
	var st unix.Statfs_t
	if err := unix.Statfs(filepath.Join(src, "from-inside"), &st); err != nil || st.Type == unix.TMPFS_MAGIC {
		unix.Unmount(filepath.Join(src, "from-inside"), unix.MNT_DETACH)
		t.Errorf("a tmpfs mounted inside on an rshared bind under an rslave root showed on the host (%v)", err)
	}
}

// withSysAdmin gives the process CAP_SYS_ADMIN, to mount.
func withSysAdmin(s *specs.Spec) {
	c := s.Process.Capabilities
	c.Bounding = append(c.Bounding, "CAP_SYS_ADMIN")
	c.Effective = append(c.Effective, "CAP_SYS_ADMIN")
	c.Permitted = append(c.Permitted, "CAP_SYS_ADMIN")
}

// More mounts than the process's RLIMIT_NOFILE lets it open: the limit is
// the program's, not the runtime's while it builds the root (runc's
// idmap.bats gives 20 idmapped binds an RLIMIT_NOFILE of 20).
func TestManyMountsLowNofile(t *testing.T) {
	eachStartPath(t, func(t *testing.T) {
		e := newEnv(t, "sh", "-c", "ulimit -n; cat /mnt/30/f")
		s := e.spec()
		src := t.TempDir()
		for i := 1; i <= 30; i++ {
			d := filepath.Join(src, strconv.Itoa(i))
			if err := os.Mkdir(d, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(d, "f"), []byte(strconv.Itoa(i)+"\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			s.Mounts = append(s.Mounts, specs.Mount{Destination: "/mnt/" + strconv.Itoa(i), Type: "bind", Source: d, Options: []string{"bind"}})
		}
		s.Process.Rlimits = []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Soft: 20, Hard: 20}}
		e.writeSpec(s)
		if r := e.cfd("run", "-b", e.bundle, e.id); r.code != 0 || r.stdout != "20\n30\n" {
			t.Errorf("30 mounts under RLIMIT_NOFILE 20: %v", r)
		}
		// With a terminal, whose pty a direct init takes at its gate once
		// the limit is set (runc's idmap.bats runs so).
		s.Process.Terminal = true
		e.writeSpec(s)
		m := e.createOnConsole()
		e.ok("start", e.id)
		if out := readUntil(t, m, "30"); !strings.Contains(out, "20\r\n30") {
			t.Errorf("with a terminal: %q", out)
		}
	})
}

// sharedVolume is a shared mount of a new directory with the two
// directories the propagation tests mount on: from-host and from-inside.
func sharedVolume(t *testing.T) string {
	t.Helper()
	src := sharedMount(t, t.TempDir())
	for _, d := range []string{"from-host", "from-inside"} {
		if err := os.Mkdir(filepath.Join(src, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return src
}
