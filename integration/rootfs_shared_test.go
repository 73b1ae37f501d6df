package integration

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// dockerd makes its data root rshared and mounts each container's rootfs
// below it, so the rootfs is a shared mount. The runtime's tree is a clone
// of it, and a clone of a shared mount joins its peer group: pivot_root
// refuses a shared new root (EINVAL: every `docker run` failed with "init:
// pivot_root: invalid argument") unless the runtime first takes the tree out
// of the host's peer group, private, or a slave with rootfsPropagation
// "rslave" (the client suite's TestDocker runs the real thing).
func TestRootfsOnSharedMount(t *testing.T) {
	for _, prop := range []string{"", "rslave", "rprivate"} {
		t.Run("propagation="+prop, func(t *testing.T) {
			e := newEnv(t, "sh", "-c", `echo "in $(hostname)"; awk '$5 == "/" { print $7 }' /proc/self/mountinfo`)
			s := e.spec()
			s.Root.Path = sharedMount(t, s.Root.Path)
			s.Linux.RootfsPropagation = prop
			e.writeSpec(s)
			r := e.cfd("run", "-b", e.bundle, e.id)
			if r.code != 0 || !strings.HasPrefix(r.stdout, "in ") {
				t.Fatalf("run with the rootfs on a shared mount: %v", r)
			}
			// The root's optional fields: no "shared:N" (a peer of the
			// host's mount); "master:N" with rslave.
			opt := strings.TrimSpace(strings.SplitN(r.stdout, "\n", 2)[1])
			if strings.HasPrefix(opt, "shared:") {
				t.Errorf("the container's root is shared (%q), a peer of the host's rootfs", opt)
			}
			if prop == "rslave" && !strings.HasPrefix(opt, "master:") {
				t.Errorf("rootfsPropagation rslave: the container's root has %q, want a slave (master:N)", opt)
			}
		})
	}
}

// A volume whose source is a shared mount (on a systemd host, nearly every
// mount is): the container's bind of it is a clone, which would join the
// host's peer group, and a mount made on it in the container (here a tmpfs
// of the config's) would show on the host. The bind leaves the peer group
// first, as the root does.
func TestVolumeOnSharedMount(t *testing.T) {
	for _, prop := range []string{"", "rslave"} {
		t.Run("propagation="+prop, func(t *testing.T) {
			e := newEnv(t, "sh", "-c", "touch /vol/sub/made-inside && echo ok")
			vol := sharedMount(t, t.TempDir())
			s := e.spec()
			s.Mounts = append(s.Mounts,
				specs.Mount{Destination: "/vol", Type: "bind", Source: vol, Options: []string{"rbind"}},
				specs.Mount{Destination: "/vol/sub", Type: "tmpfs", Source: "tmpfs"})
			s.Linux.RootfsPropagation = prop
			e.writeSpec(s)
			if r := e.cfd("run", "-b", e.bundle, e.id); r.code != 0 || r.stdout != "ok\n" {
				t.Fatalf("run with a volume on a shared mount: %v", r)
			}
			mi, err := os.ReadFile("/proc/self/mountinfo")
			if err != nil {
				t.Fatal(err)
			}
			if strings.Contains(string(mi), filepath.Join(vol, "sub")) {
				t.Errorf("the container's tmpfs on /vol/sub showed on the host at %s/sub", vol)
			}
			if _, err := os.Stat(filepath.Join(vol, "sub", "made-inside")); err == nil {
				t.Errorf("a file made in the container's tmpfs is on the host")
			}
		})
	}
}

// sharedMount binds dir (recursively) on a directory of the test's and
// makes that a shared mount, unmounted after the test; it returns where.
func sharedMount(t *testing.T, dir string) string {
	t.Helper()
	shared := t.TempDir()
	if err := unix.Mount(dir, shared, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		t.Fatalf("bind %s: %v", dir, err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(shared, unix.MNT_DETACH); err != nil {
			t.Errorf("unmount %s: %v", shared, err)
		}
	})
	if err := unix.Mount("", shared, "", unix.MS_SHARED, ""); err != nil {
		t.Fatalf("make %s shared: %v", shared, err)
	}
	return shared
}
