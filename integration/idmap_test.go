package integration

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Idmapped binds: a host directory owned by 0:0 seen through a mapping of
// the mount's own (no user namespace), and through the container's user
// namespace ("idmap" with no mappings).
func TestIDMappedMounts(t *testing.T) {
	host := t.TempDir()
	if err := os.WriteFile(filepath.Join(host, "f"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Run("own mapping", func(t *testing.T) {
		e := newEnv(t, "stat", "-c", "%u:%g", "/mnt/f")
		s := e.spec()
		s.Mounts = append(s.Mounts, specs.Mount{Destination: "/mnt", Type: "bind", Source: host, Options: []string{"bind"},
			// As runc takes them, and as the kernel reads a user namespace's
			// map: the id the filesystem stores (0) is shown as hostID.
			UIDMappings: []specs.LinuxIDMapping{{ContainerID: 0, HostID: 1000, Size: 1}},
			GIDMappings: []specs.LinuxIDMapping{{ContainerID: 0, HostID: 2000, Size: 1}}})
		e.writeSpec(s)
		if r := e.cfd("run", "-b", e.bundle, e.id); r.code != 0 || r.stdout != "1000:2000\n" {
			t.Errorf("idmapped bind: %v, want 1000:2000", r)
		}
	})
	t.Run("container user namespace", func(t *testing.T) {
		e := newEnv(t, "sh", "-c", "stat -c %u:%g /mnt/f; stat -c %u:%g /etc/hostname 2>/dev/null || stat -c %u:%g /bin/busybox")
		s := e.spec()
		s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.UserNamespace})
		s.Linux.UIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 65536}}
		s.Linux.GIDMappings = s.Linux.UIDMappings
		s.Mounts = append(s.Mounts, specs.Mount{Destination: "/mnt", Type: "bind", Source: host, Options: []string{"bind", "idmap"}})
		e.writeSpec(s)
		if err := chownTree(s.Root.Path, 100000, 100000); err != nil {
			t.Fatal(err)
		}
		r := e.cfd("run", "-b", e.bundle, e.id)
		// Host 0 is container 0 only through the idmapped mount; elsewhere
		// it would be the overflow id.
		if r.code != 0 || !strings.HasPrefix(r.stdout, "0:0\n") {
			t.Errorf("idmap with the container's user namespace: %v", r)
		}
	})
}

func chownTree(dir string, uid, gid int) error {
	return filepath.Walk(dir, func(p string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, uid, gid)
	})
}

func specsUserNS() specs.LinuxNamespace { return specs.LinuxNamespace{Type: specs.UserNamespace} }

func idMap100000() []specs.LinuxIDMapping {
	return []specs.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 65536}}
}
