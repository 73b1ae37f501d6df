package integration

import (
	"path/filepath"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// The checks of the OCI runtime-tools validation suite (make test-oci) that
// containerfd once failed, each on its own.

// TestDevicesListInOrder: on a cgroup v1 devices hierarchy, devices.list
// lists linux.resources.devices' allow rules in the config's order, runc's
// own allow rules after them (runtime-tools' linux_cgroups_devices reads
// the file back; config-linux.md: "entries in the listed order").
func TestDevicesListInOrder(t *testing.T) {
	e := newEnv(t, "sleep", "100")
	dir := filepath.Join("/sys/fs/cgroup/devices", e.cgroup)
	if !isCgroupFS("/sys/fs/cgroup/devices", unix.CGROUP_SUPER_MAGIC) {
		t.Skip("no cgroup v1 devices hierarchy: cgroup v2's device program has no devices.list, and no order")
	}
	num := func(n int64) *int64 { return &n }
	s := e.spec()
	s.Linux.Resources = &specs.LinuxResources{Devices: []specs.LinuxDeviceCgroup{
		{Allow: false, Access: "rwm"},
		{Allow: true, Type: "c", Major: num(10), Minor: num(229), Access: "rwm"},
		{Allow: true, Type: "b", Major: num(8), Minor: num(20), Access: "rw"},
		{Allow: true, Type: "b", Major: num(10), Minor: num(200), Access: "r"},
	}}
	e.writeSpec(s)
	e.ok("create", "--bundle", e.bundle, e.id)
	got := strings.Split(readIn(t, dir, "devices.list"), "\n")
	want := []string{"c 10:229 rwm", "b 8:20 rw", "b 10:200 r", "c *:* m", "b *:* m"}
	if len(got) < len(want) || strings.Join(got[:len(want)], "\n") != strings.Join(want, "\n") {
		t.Errorf("devices.list starts\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
