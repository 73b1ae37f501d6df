package integration

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/containerfd/containerfd/libcontainerfd/resctrl"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// On a host without resctrl, run with linux.intelRdt fails naming the
// field and resctrl, and leaves nothing (newEnv's checks: no state,
// cgroup, process or mount).
func TestIntelRdtNoResctrl(t *testing.T) {
	e := newEnv(t, "true")
	if root, err := resctrl.Root(); err == nil {
		t.Skipf("this host has resctrl mounted at %s", root)
	}
	e.edit(func(s *specs.Spec) {
		s.Linux.IntelRdt = &specs.LinuxIntelRdt{L3CacheSchema: "L3:0=f", EnableMonitoring: true}
	})
	r := e.cfd("run", "--bundle", e.bundle, e.id)
	if r.code == 0 || !strings.Contains(r.stderr, "linux.intelRdt") || !strings.Contains(r.stderr, "resctrl") {
		t.Errorf("run: %v, want an error naming linux.intelRdt and resctrl", r)
	}
	if r := e.cfd("state", e.id); r.code == 0 {
		t.Errorf("container left after a failed run: %v", r)
	}
	if d := cgroupDirsOf(t, e.cgroup); len(d) != 0 {
		t.Errorf("cgroups left after a failed run: %v", d)
	}
}

// needResctrl skips where no resctrl filesystem is mounted (no host here
// has one: it needs a CPU with RDT or PQoS).
func needResctrl(t *testing.T) string {
	t.Helper()
	root, err := resctrl.Root()
	if err != nil {
		t.Skipf("needs a mounted resctrl filesystem: %v", err)
	}
	return root
}

// The CLI path on a real resctrl: create puts init in the container's own
// group and monitoring group, exec'd processes join them, update rewrites
// the schemata, delete removes both groups.
func TestIntelRdtRun(t *testing.T) {
	e := newEnv(t, "sleep", "100")
	root := needResctrl(t)
	def, err := os.ReadFile(filepath.Join(root, "schemata"))
	if err != nil {
		t.Fatal(err)
	}
	line := strings.TrimSpace(strings.SplitN(string(def), "\n", 2)[0])
	_, monErr := os.Stat(filepath.Join(root, "mon_groups"))
	e.edit(func(s *specs.Spec) {
		s.Linux.IntelRdt = &specs.LinuxIntelRdt{Schemata: []string{line}, EnableMonitoring: monErr == nil}
	})
	e.ok("create", "--bundle", e.bundle, e.id)
	group := filepath.Join(root, e.id)
	pid := strings.TrimSuffix(strings.Split(strings.Split(e.ok("state", e.id), `"pid": `)[1], ",")[0], "\n")
	hasTask := func(dir string) bool {
		b, err := os.ReadFile(filepath.Join(dir, "tasks"))
		return err == nil && strings.Contains("\n"+string(b), "\n"+pid+"\n")
	}
	if !hasTask(group) {
		t.Errorf("init %s not in %s", pid, group)
	}
	if monErr == nil && !hasTask(filepath.Join(group, "mon_groups", e.id)) {
		t.Errorf("init %s not in the monitoring group", pid)
	}
	e.ok("start", e.id)
	if _, err := os.Stat("/proc/self/resctrl"); err == nil {
		if out := e.ok("exec", e.id, "cat", "/proc/self/resctrl"); !strings.Contains(out, "/"+e.id) {
			t.Errorf("exec'd process: /proc/self/resctrl %q, want group /%s", out, e.id)
		}
	}
	if strings.HasPrefix(line, "L3:") {
		e.ok("update", "--l3-cache-schema", line, e.id)
	}
	e.ok("delete", "--force", e.id)
	if _, err := os.Stat(group); !os.IsNotExist(err) {
		t.Errorf("group %s after delete: %v", group, err)
	}
}

// The runtime killed right after it made the groups: delete --force
// removes them.
func TestIntelRdtKilledCreate(t *testing.T) {
	e := newEnv(t, "sleep", "100")
	root := needResctrl(t)
	e.edit(func(s *specs.Spec) { s.Linux.IntelRdt = &specs.LinuxIntelRdt{} })
	e.killedAt("create:intelrdt", "create", "--bundle", e.bundle, e.id)
	group := filepath.Join(root, e.id)
	if _, err := os.Stat(group); err != nil {
		t.Errorf("group %s after a kill at create:intelrdt: %v", group, err)
	}
	e.ok("delete", "--force", e.id)
	if _, err := os.Stat(group); !os.IsNotExist(err) {
		t.Errorf("group %s after delete --force: %v", group, err)
	}
}
