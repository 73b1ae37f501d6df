package integration

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/containerfd/containerfd/internal/testutil"
	"github.com/containerfd/containerfd/libcontainerfd/caps"
	"github.com/containerfd/containerfd/spec"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// The systemd cgroup driver against a real systemd: Debian's systemd runs as
// PID 1 of a privileged container (its own cgroup namespace, a writable
// cgroup2 at /sys/fs/cgroup, the host's /usr read-only), and containerfd,
// exec'd into it, runs an inner container with --systemd-cgroup there. What
// systemd made is read back with systemctl.
//
// On a host whose cgroup2 has no controllers (hybrid), systemd in the
// container has none either: it keeps the limits as unit properties without
// applying them, and the test checks the properties only, and says so; where
// the controller exists it checks the cgroup files too.

const systemdBin = "/usr/bin/systemd"

// sdEnv is a systemd container and the inner containers run in it.
type sdEnv struct {
	*env
	innerBundle string // host directory, /inner in the container
	systemBus   bool   // dbus-daemon runs in the container
}

func newSystemdEnv(t *testing.T) *sdEnv {
	if _, err := os.Stat(systemdBin); err != nil {
		t.Skipf("needs %s (apt-get install systemd): %v", systemdBin, err)
	}
	e := newEnv(t, systemdBin, "--unit=cfdtest.target")
	root := t.TempDir()
	for _, l := range []struct{ name, target string }{{"bin", "usr/bin"}, {"sbin", "usr/sbin"}, {"lib", "usr/lib"}, {"lib64", "usr/lib64"}} {
		if err := os.Symlink(l.target, filepath.Join(root, l.name)); err != nil {
			t.Fatal(err)
		}
	}
	for _, d := range []string{"usr", "proc", "sys", "dev", "run", "tmp", "var", "root", "cfd", "inner", "inner-rootfs", "etc/systemd/system", "etc/dbus-1"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	passwd, group := "root:x:0:0:root:/root:/bin/sh\n", "root:x:0:\n"
	wants := ""
	// The system bus, if the host has dbus: dbus-daemon runs as messagebus.
	if pw, gr := userLine("/etc/passwd", "messagebus"), userLine("/etc/group", "messagebus"); pw != "" && gr != "" {
		if _, err := os.Stat("/usr/bin/dbus-daemon"); err == nil {
			passwd, group = passwd+pw+"\n", group+gr+"\n"
			wants = "Wants=dbus.socket\n"
		}
	}
	machineID := make([]byte, 16)
	if _, err := rand.Read(machineID); err != nil {
		t.Fatal(err)
	}
	files := map[string]string{
		"etc/machine-id": hex.EncodeToString(machineID) + "\n",
		"etc/passwd":     passwd,
		"etc/group":      group,
		// The only unit asked for: systemd starts nothing of the host's.
		"etc/systemd/system/cfdtest.target": "[Unit]\nDescription=containerfd systemd driver test\n" + wants,
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(root, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("../usr/lib/os-release", filepath.Join(root, "etc/os-release")); err != nil {
		t.Fatal(err)
	}

	s := e.spec()
	s.Root = &specs.Root{Path: root}
	s.Hostname = "systemd"
	s.Process.Env = append(s.Process.Env, "container=containerfd")
	// Privileged, so that containerfd runs inside: every capability we
	// hold, no seccomp, nothing masked.
	all, err := heldCaps()
	if err != nil {
		t.Fatal(err)
	}
	s.Process.Capabilities = &specs.LinuxCapabilities{Bounding: all, Effective: all, Permitted: all}
	s.Process.NoNewPrivileges = false
	s.Linux.Seccomp = nil
	s.Linux.MaskedPaths, s.Linux.ReadonlyPaths = nil, nil
	s.Linux.Resources = &specs.LinuxResources{Devices: []specs.LinuxDeviceCgroup{{Allow: true, Access: "rwm"}}}
	s.Linux.Namespaces = nil
	for _, ns := range []specs.LinuxNamespaceType{specs.PIDNamespace, specs.IPCNamespace, specs.UTSNamespace, specs.MountNamespace, specs.CgroupNamespace, specs.NetworkNamespace} {
		s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: ns})
	}
	dir := filepath.Dir(binary)
	innerBundle := t.TempDir()
	s.Mounts = []specs.Mount{
		{Destination: "/proc", Type: "proc", Source: "proc"},
		{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
		{Destination: "/dev/pts", Type: "devpts", Source: "devpts", Options: []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"}},
		{Destination: "/dev/shm", Type: "tmpfs", Source: "shm", Options: []string{"nosuid", "noexec", "nodev", "mode=1777", "size=65536k"}},
		{Destination: "/dev/mqueue", Type: "mqueue", Source: "mqueue", Options: []string{"nosuid", "noexec", "nodev"}},
		{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: []string{"nosuid", "noexec", "nodev", "ro"}},
		{Destination: "/sys/fs/cgroup", Type: "cgroup2", Source: "cgroup2", Options: []string{"nosuid", "noexec", "nodev", "rw"}},
		{Destination: "/run", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "nodev", "mode=755"}},
		{Destination: "/tmp", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "nodev", "mode=1777"}},
		{Destination: "/usr", Type: "bind", Source: "/usr", Options: []string{"rbind", "ro"}},
		{Destination: "/cfd", Type: "bind", Source: dir, Options: []string{"rbind", "ro"}},
		{Destination: "/inner", Type: "bind", Source: innerBundle, Options: []string{"rbind", "rw"}},
		{Destination: "/inner-rootfs", Type: "bind", Source: testutil.Rootfs(t), Options: []string{"rbind", "rw"}},
	}
	if _, err := os.Stat("/etc/dbus-1"); err == nil {
		s.Mounts = append(s.Mounts, specs.Mount{Destination: "/etc/dbus-1", Type: "bind", Source: "/etc/dbus-1", Options: []string{"rbind", "ro"}})
	}
	e.writeSpec(s)
	e.ok("run", "--detach", "--bundle", e.bundle, e.id)

	// Up when systemctl says so.
	deadline := time.Now().Add(60 * time.Second)
	for {
		r := e.cfd("exec", e.id, "systemctl", "is-system-running")
		state := strings.TrimSpace(r.stdout)
		if state == "running" || state == "degraded" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("systemd in the container not up after 60s: is-system-running: %v", r)
		}
		time.Sleep(100 * time.Millisecond)
	}
	se := &sdEnv{env: e, innerBundle: innerBundle, systemBus: wants != ""}
	if r := e.cfd("exec", e.id, "busctl", "--system", "status"); se.systemBus && r.code != 0 {
		t.Fatalf("no system bus in the systemd container: %v", r)
	}
	return se
}

// userLine returns the line of name in a passwd or group file, or "".
func userLine(file, name string) string {
	f, err := os.Open(file)
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), name+":") {
			return sc.Text()
		}
	}
	return ""
}

// heldCaps returns the names of the capabilities in our bounding set.
func heldCaps() ([]string, error) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return nil, err
	}
	m := regexp.MustCompile(`(?m)^CapBnd:\s*([0-9a-f]+)$`).FindSubmatch(b)
	if m == nil {
		return nil, fmt.Errorf("no CapBnd in /proc/self/status")
	}
	mask, err := strconv.ParseUint(string(m[1]), 16, 64)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, n := range caps.Names() {
		if c, ok := caps.FromName(n); ok && mask&(1<<uint(c)) != 0 {
			out = append(out, n)
		}
	}
	return out, nil
}

// in runs a command in the systemd container.
func (e *sdEnv) in(args ...string) result {
	e.t.Helper()
	return e.cfd(append([]string{"exec", e.id}, args...)...)
}

func (e *sdEnv) inOK(args ...string) string {
	e.t.Helper()
	r := e.in(args...)
	if r.code != 0 {
		e.t.Fatalf("in the systemd container: %s: %v", strings.Join(args, " "), r)
	}
	return r.stdout
}

// inner runs containerfd in the systemd container, with its own state root
// and the systemd driver.
func (e *sdEnv) inner(args ...string) result {
	e.t.Helper()
	return e.in(append([]string{"/cfd/containerfd", "--root", "/run/cfd-inner", "--systemd-cgroup"}, args...)...)
}

func (e *sdEnv) innerOK(args ...string) string {
	e.t.Helper()
	r := e.inner(args...)
	if r.code != 0 {
		e.t.Fatalf("inner containerfd %s: %v", strings.Join(args, " "), r)
	}
	return r.stdout
}

// writeInner writes the inner bundle's config: sleep, the busybox rootfs,
// cgroupsPath as given, r and the annotations.
func (e *sdEnv) writeInner(cgroupsPath string, r *specs.LinuxResources, annotations ...string) {
	s := spec.Default(false)
	for i := 0; i+1 < len(annotations); i += 2 {
		if s.Annotations == nil {
			s.Annotations = map[string]string{}
		}
		s.Annotations[annotations[i]] = annotations[i+1]
	}
	s.Process.Terminal = false
	s.Process.Args = []string{"sleep", "1000"}
	s.Root = &specs.Root{Path: "/inner-rootfs"}
	s.Linux.CgroupsPath = cgroupsPath
	if r != nil {
		r.Devices = s.Linux.Resources.Devices
		s.Linux.Resources = r
	}
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		e.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(e.innerBundle, "config.json"), b, 0o644); err != nil {
		e.t.Fatal(err)
	}
}

// show returns properties of a unit, from systemctl show.
func (e *sdEnv) show(unit string, props ...string) map[string]string {
	e.t.Helper()
	args := []string{"systemctl", "show", unit}
	for _, p := range props {
		args = append(args, "-p", p)
	}
	out := map[string]string{}
	for _, line := range strings.Split(e.inOK(args...), "\n") {
		if k, v, ok := strings.Cut(line, "="); ok {
			if old, dup := out[k]; dup {
				v = old + " " + v
			}
			out[k] = v
		}
	}
	return out
}

// units returns the units systemd knows, any state, whose name has prefix.
func (e *sdEnv) units(prefix string) []string {
	e.t.Helper()
	var out []string
	for _, line := range strings.Split(e.inOK("systemctl", "list-units", "--all", "--plain", "--no-legend", "--no-pager"), "\n") {
		if f := strings.Fields(line); len(f) > 0 && strings.HasPrefix(f[0], prefix) {
			out = append(out, line)
		}
	}
	return out
}

func checkProps(t *testing.T, what string, got map[string]string, want map[string]string) {
	t.Helper()
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: %s=%q, want %q", what, k, got[k], v)
		}
	}
}

// A scope is created with Delegate=yes and the limits as properties, init is
// born in it, update changes the properties, delete leaves no unit.
func TestSystemdCgroupDriver(t *testing.T) {
	e := newSystemdEnv(t)
	if !e.systemBus {
		t.Log("no dbus-daemon here: the driver talks to systemd's private socket")
	}
	id := testutil.ID(t)
	unit := "cfdsd-" + id + ".scope"
	dir := "/sys/fs/cgroup/system.slice/" + unit
	i64 := func(v int64) *int64 { return &v }
	u64 := func(v uint64) *uint64 { return &v }
	e.writeInner("system.slice:cfdsd:"+id, &specs.LinuxResources{
		Memory: &specs.LinuxMemory{Limit: i64(64 << 20)},
		Pids:   &specs.LinuxPids{Limit: i64(100)},
		CPU:    &specs.LinuxCPU{Shares: u64(512), Quota: i64(50000), Period: u64(100000)},
		// systemd's MemoryHigh has no field of its own in the spec.
		Unified: map[string]string{"memory.high": "50331648"},
	}, "org.systemd.property.TimeoutStopSec", "uint64 7")
	e.innerOK("create", "--bundle", "/inner", id)
	checkProps(t, "after create", e.show(unit, "ActiveState", "Delegate", "Slice", "ControlGroup", "MemoryMax", "MemoryHigh", "TasksMax", "CPUWeight", "CPUQuotaPerSecUSec", "DevicePolicy", "Description", "TimeoutStopUSec"), map[string]string{
		"TimeoutStopUSec": "7s",
		"ActiveState":     "active", "Delegate": "yes", "Slice": "system.slice", "ControlGroup": "/system.slice/" + unit,
		"MemoryMax": "67108864", "MemoryHigh": "50331648", "TasksMax": "100", "CPUWeight": "20", "CPUQuotaPerSecUSec": "500ms",
		"DevicePolicy": "strict", "Description": "containerfd container " + id,
	})
	// Init was cloned into the scope's cgroup, and its cgroup namespace is
	// rooted there.
	pid := strings.TrimSpace(e.inOK("sh", "-c", "/cfd/containerfd --root /run/cfd-inner state "+id+" | sed -n 's/.*\"pid\": \\([0-9]*\\).*/\\1/p'"))
	if procs := e.inOK("cat", dir+"/cgroup.procs"); !strings.Contains("\n"+procs, "\n"+pid+"\n") || pid == "" {
		t.Errorf("init %q is not in %s: %q", pid, dir, procs)
	}
	e.innerOK("start", id)
	if got := e.innerOK("exec", id, "cat", "/proc/self/cgroup"); !strings.Contains(got, "0::/\n") {
		t.Errorf("inner /proc/self/cgroup: %q, want 0::/ (a cgroup namespace rooted at the scope)", got)
	}
	// Devices are enforced whatever the controllers: /dev/mem (1:1) is not
	// in the default list.
	if r := e.inner("exec", id, "sh", "-c", "mknod /tmp/mem c 1 1 && head -c1 /tmp/mem"); r.code == 0 || !strings.Contains(r.stderr, "Operation not permitted") {
		t.Errorf("reading a device not in the list: %v", r)
	}
	checkFiles := func(when string, want map[string]string) {
		t.Helper()
		controllers := strings.Fields(e.inOK("cat", dir+"/cgroup.controllers"))
		for file, v := range want {
			ctl, _, _ := strings.Cut(file, ".")
			if !contains(controllers, ctl) {
				t.Logf("%s: no %s controller in the systemd container (cgroup.controllers %q): checked the unit property, not %s", when, ctl, controllers, file)
				continue
			}
			if got := strings.TrimSpace(e.inOK("cat", dir+"/"+file)); got != v {
				t.Errorf("%s: %s is %q, want %q", when, file, got, v)
			}
		}
	}
	checkFiles("after create", map[string]string{"memory.max": "67108864", "memory.high": "50331648", "pids.max": "100", "cpu.max": "50000 100000", "cpu.weight": "20"})

	e.innerOK("update", "--memory", "134217728", "--pids-limit", "50", "--cpu-quota", "25000", id)
	checkProps(t, "after update", e.show(unit, "MemoryMax", "TasksMax", "CPUQuotaPerSecUSec", "DevicePolicy"), map[string]string{
		"MemoryMax": "134217728", "TasksMax": "50", "CPUQuotaPerSecUSec": "250ms", "DevicePolicy": "strict",
	})
	checkFiles("after update", map[string]string{"memory.max": "134217728", "pids.max": "50", "cpu.max": "25000 100000"})

	e.innerOK("pause", id)
	if got := e.innerOK("state", id); !strings.Contains(got, `"paused"`) {
		t.Errorf("after pause: %s", got)
	}
	e.innerOK("resume", id)

	e.innerOK("delete", "--force", id)
	if left := e.units("cfdsd-"); len(left) > 0 {
		t.Errorf("units left after delete: %q", left)
	}
	if r := e.in("test", "-e", dir); r.code == 0 {
		t.Errorf("%s left after delete", dir)
	}

	// A name ending in .slice is a transient slice, with no process of its
	// own in systemd's eyes and so never stopped by systemd: delete must.
	slice := "cfdsd" + strings.ReplaceAll(id[len(id)-12:], "-", "") + ".slice"
	e.writeInner("-.slice::"+slice, &specs.LinuxResources{Pids: &specs.LinuxPids{Limit: i64(10)}})
	e.innerOK("run", "--detach", "--bundle", "/inner", id)
	checkProps(t, "slice", e.show(slice, "ActiveState", "ControlGroup", "TasksMax"), map[string]string{
		"ActiveState": "active", "ControlGroup": "/" + slice, "TasksMax": "10",
	})
	if got := e.innerOK("exec", id, "cat", "/proc/self/cgroup"); !strings.Contains(got, "0::/\n") {
		t.Errorf("inner /proc/self/cgroup in a slice: %q, want 0::/", got)
	}
	e.innerOK("delete", "--force", id)
	if left := e.units("cfdsd"); len(left) > 0 {
		t.Errorf("units left after delete of a slice: %q", left)
	}

	// A scope that does not stop in time is killed and kept as failed, as
	// a runtime killed before delete may leave it: delete must reset it.
	// The container's init, sleep, is the init of its pid namespace and so
	// ignores systemd's SIGTERM; TimeoutStopSec comes as an annotation.
	e.writeInner("system.slice:cfdsd:"+id, nil, "org.systemd.property.TimeoutStopSec", "uint64 1")
	e.innerOK("run", "--detach", "--bundle", "/inner", id)
	e.inOK("systemctl", "stop", unit)
	if st := e.show(unit, "ActiveState", "Result"); st["ActiveState"] != "failed" || st["Result"] != "timeout" {
		t.Errorf("scope stopped past its TimeoutStopSec: %v, want failed by timeout", st)
	}
	if out := e.innerOK("state", id); !strings.Contains(out, `"stopped"`) {
		t.Errorf("state of a container whose scope failed: %s", out)
	}
	e.innerOK("delete", id)
	if left := e.units("cfdsd-"); len(left) > 0 {
		t.Errorf("units left after delete of a container whose scope failed: %q", left)
	}
}

// A failed unit of the same name, as a runtime killed before delete leaves,
// is cleaned at create; a live one is refused and left alone. And without a
// system bus the driver talks to systemd's private socket.
func TestSystemdCgroupLeftoverAndPrivateBus(t *testing.T) {
	e := newSystemdEnv(t)
	id := testutil.ID(t)
	unit := "cfdsd-" + id + ".scope"
	e.writeInner("system.slice:cfdsd:"+id, nil)

	// A live scope of that name: refused, and still there after.
	e.cfd("exec", "--detach", e.id, "systemd-run", "--scope", "--unit="+unit, "-p", "TimeoutStopSec=1", "--", "sh", "-c", `trap "" TERM; sleep 1000`)
	waitFor(t, "the leftover scope to run", func() bool { return e.show(unit, "ActiveState")["ActiveState"] == "active" })
	// Its cgroup holds its processes: refused as runc refuses it.
	if r := e.inner("create", "--bundle", "/inner", id); r.code == 0 || !strings.Contains(r.stderr, "container's cgroup is not empty") {
		t.Errorf("create over a live unit of the same name: %v", r)
	}
	if st := e.show(unit, "ActiveState", "Description"); st["ActiveState"] != "active" || strings.HasPrefix(st["Description"], "containerfd") {
		t.Errorf("the live unit after a refused create: %v", st)
	}
	// Stopped, it ignores SIGTERM, is killed after TimeoutStopSec and stays
	// as failed.
	e.inOK("systemctl", "stop", unit)
	if st := e.show(unit, "ActiveState"); st["ActiveState"] != "failed" {
		t.Fatalf("leftover unit: %v, want failed", st)
	}
	e.innerOK("create", "--bundle", "/inner", id)
	checkProps(t, "create over a failed unit", e.show(unit, "ActiveState", "Description", "Delegate"), map[string]string{
		"ActiveState": "active", "Description": "containerfd container " + id, "Delegate": "yes",
	})
	e.innerOK("delete", "--force", id)
	if left := e.units("cfdsd-"); len(left) > 0 {
		t.Errorf("units left after delete: %q", left)
	}

	// No system bus: the private socket.
	if !e.systemBus {
		t.Log("no dbus-daemon here: the private socket was used all along")
		return
	}
	if r := e.in("systemctl", "stop", "dbus.socket", "dbus.service"); r.code != 0 {
		t.Fatalf("stop dbus: %v", r)
	}
	if r := e.in("busctl", "--system", "status"); r.code == 0 {
		t.Fatalf("the system bus still answers after dbus was stopped: %v", r)
	}
	e.innerOK("run", "--detach", "--bundle", "/inner", id)
	checkProps(t, "over the private socket", e.show(unit, "ActiveState", "Delegate"), map[string]string{"ActiveState": "active", "Delegate": "yes"})
	// Once its process is killed systemd drops the scope and removes its
	// cgroup: wait, state and delete cope with the cgroup gone.
	e.innerOK("kill", id, "KILL")
	waitKilled(t, e.inner("wait", id))
	waitFor(t, "systemd to drop the emptied scope", func() bool { return len(e.units("cfdsd-")) == 0 })
	if out := e.innerOK("state", id); !strings.Contains(out, `"stopped"`) {
		t.Errorf("state once systemd dropped the scope: %s", out)
	}
	e.innerOK("delete", id)
	if left := e.units("cfdsd-"); len(left) > 0 {
		t.Errorf("units left after delete over the private socket: %q", left)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
