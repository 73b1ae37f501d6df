package libcontainerfd

import (
	"os"
	"strings"
	"testing"

	"github.com/containerfd/containerfd/libcontainerfd/mounttree"
	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// TestCheckRootless: what a rootless container cannot have is refused
// before anything is made, with the reason. (The integration tests check
// the same as a real user; this covers what the host cannot show, such as
// intelRdt without resctrl.)
func TestCheckRootless(t *testing.T) {
	userns := func() *Config {
		return &Config{Rootless: true,
			Namespaces:  []Namespace{{Type: unix.CLONE_NEWUSER}, {Type: unix.CLONE_NEWNS}},
			UIDMappings: []IDMap{{ContainerID: 0, HostID: 1000, Size: 1}}, GIDMappings: []IDMap{{ContainerID: 0, HostID: 1000, Size: 1}}}
	}
	for _, c := range []struct {
		name string
		edit func(*Config)
		want string // "" for no error
	}{
		{"plain", func(*Config) {}, ""},
		{"no mappings", func(cfg *Config) { cfg.UIDMappings = nil }, "needs uid and gid mappings"},
		{"net devices", func(cfg *Config) { cfg.NetDevices = map[string]string{"eth0": ""} }, "moving a host interface needs CAP_NET_ADMIN"},
		{"idmapped mount", func(cfg *Config) {
			cfg.Mounts = []mounttree.Mount{{Type: "bind", Source: "/tmp", Target: "/mnt", IDMap: true}}
		}, "mount on /mnt: an idmapped mount needs CAP_SYS_ADMIN"},
		{"intel rdt", func(cfg *Config) { cfg.IntelRdt = &specs.LinuxIntelRdt{ClosID: "x"} }, "linux.intelRdt: resctrl groups are made and joined in /sys/fs/resctrl"},
	} {
		cfg := userns()
		c.edit(cfg)
		err := checkRootless(cfg)
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%s: %v", c.name, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%s: got %v, want an error saying %q", c.name, err, c.want)
		}
	}
	// Without a user namespace: refused unless the caller is root (of
	// its own user namespace, as under rootless podman).
	cfg := userns()
	cfg.Namespaces = cfg.Namespaces[1:]
	err := checkRootless(cfg)
	if os.Geteuid() != 0 && (err == nil || !strings.Contains(err.Error(), "needs a new user namespace")) {
		t.Errorf("no user namespace, not root: got %v", err)
	}
	if os.Geteuid() == 0 && err != nil {
		t.Errorf("no user namespace, root: %v", err)
	}
}
