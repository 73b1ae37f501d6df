package integration

import (
	"strings"
	"testing"

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
			shared := t.TempDir()
			if err := unix.Mount(s.Root.Path, shared, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
				t.Fatalf("bind the rootfs: %v", err)
			}
			t.Cleanup(func() {
				if err := unix.Unmount(shared, unix.MNT_DETACH); err != nil {
					t.Errorf("unmount %s: %v", shared, err)
				}
			})
			if err := unix.Mount("", shared, "", unix.MS_SHARED, ""); err != nil {
				t.Fatalf("make the rootfs shared: %v", err)
			}
			s.Root.Path = shared
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
