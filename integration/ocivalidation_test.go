package integration

import (
	"path/filepath"
	"runtime"
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

// cfdWithout runs containerfd with args (in e's root) from a thread whose
// bounding set lacks capability c: the runtime, exec'd as root, then holds
// neither it nor, through the bounding set, any way to give it.
func (e *env) cfdWithout(c uintptr, env []string, args ...string) result {
	e.t.Helper()
	ch := make(chan result)
	go func() {
		// The thread is left locked: it dies with the goroutine, and no
		// other goroutine runs on a thread without the capability.
		runtime.LockOSThread()
		if err := unix.Prctl(unix.PR_CAPBSET_DROP, c, 0, 0, 0); err != nil {
			e.t.Errorf("drop capability %d from the bounding set: %v", c, err)
			ch <- result{code: -1}
			return
		}
		ch <- e.cfdCmd(nil, env, nil, args...)
	}()
	return <-ch
}

// TestCapabilitiesNotHeld: a process asking for a capability that the
// runtime does not hold (runtime-tools' process_capabilities and
// linux_rootfs_propagation ask for all of them; this machine's runtime runs
// without CAP_SYS_RESOURCE) fails at create, as runc's does, naming it,
// on both start paths; exec names it too. Before, create passed and start
// failed with a bare "set capabilities: operation not permitted".
func TestCapabilitiesNotHeld(t *testing.T) {
	const name = "CAP_WAKE_ALARM"
	for _, mode := range []string{"direct", "stage"} {
		t.Run(mode, func(t *testing.T) {
			var env []string
			if mode == "stage" {
				env = []string{envStart + "=stage"}
			}
			e := newEnv(t, "sleep", "100")
			s := e.spec()
			c := s.Process.Capabilities
			c.Bounding = append(c.Bounding, name)
			c.Effective = append(c.Effective, name)
			c.Permitted = append(c.Permitted, name)
			c.Inheritable = append(c.Inheritable, name)
			c.Ambient = append(c.Ambient, name)
			e.writeSpec(s)
			r := e.cfdWithout(unix.CAP_WAKE_ALARM, env, "create", "--bundle", e.bundle, e.id)
			if r.code != 1 || !strings.Contains(r.stderr, "process.capabilities: caps: permitted "+name+"; inheritable "+name+": not held by the runtime") {
				t.Fatalf("create asking for %s the runtime lacks: %v", name, r)
			}
			if r := e.cfd("state", e.id); r.code == 0 {
				t.Errorf("the failed create left the container: %v", r)
			}

			// The same config from a runtime that holds it starts.
			e.ok("create", "--bundle", e.bundle, e.id)
			e.ok("start", e.id)
			r = e.cfdWithout(unix.CAP_WAKE_ALARM, env, "exec", "--cap", name, e.id, "true")
			if r.code != 255 || !strings.Contains(r.stderr, "process.capabilities: caps: permitted "+name) {
				t.Errorf("exec --cap %s from a runtime that lacks it: %v", name, r)
			}
			e.ok("exec", "--cap", name, e.id, "true")
		})
	}
}
