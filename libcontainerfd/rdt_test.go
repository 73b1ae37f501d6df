package libcontainerfd_test

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/containerfd/containerfd/internal/testutil"
	cfd "github.com/containerfd/containerfd/libcontainerfd"
	"github.com/containerfd/containerfd/libcontainerfd/resctrl"
	"github.com/opencontainers/runtime-spec/specs-go"
)

// requireResctrl skips the test where no resctrl filesystem is mounted,
// saying whether the kernel has resctrl at all (it registers it only where
// the CPU has RDT or PQoS).
func requireResctrl(t *testing.T) string {
	t.Helper()
	root, err := resctrl.Root()
	if err != nil {
		fss, _ := os.ReadFile("/proc/filesystems")
		t.Skipf("needs a mounted resctrl filesystem: %v (kernel lists resctrl in /proc/filesystems: %v)",
			err, strings.Contains(string(fss), "\tresctrl\n"))
	}
	return root
}

// createRdt makes a container that the test destroys, or that is destroyed
// when the test ends.
func createRdt(t *testing.T, e *env, cfg *cfd.Config) *cfd.Container {
	t.Helper()
	id := testutil.ID(t)
	c, err := cfd.Create(e.root, id, cfg)
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	t.Cleanup(func() {
		if c, err := cfd.Load(e.root, id); err == nil {
			c.Destroy()
		}
	})
	return c
}

// Without resctrl, a container with IntelRdt is refused at Create, naming
// resctrl, and leaves nothing behind (newEnv checks for leaks).
func TestIntelRdtNoResctrl(t *testing.T) {
	e := newEnv(t)
	if _, err := resctrl.Root(); err == nil {
		t.Skip("this host has resctrl mounted")
	}
	cfg := e.config()
	cfg.IntelRdt = &specs.LinuxIntelRdt{}
	c, err := cfd.Create(e.root, "rdt-none", cfg)
	if err == nil {
		c.Destroy()
		t.Fatal("Create with IntelRdt succeeded without resctrl")
	}
	if !strings.Contains(err.Error(), "intelRdt") || !strings.Contains(err.Error(), "resctrl") {
		t.Errorf("Create: %v; want an error naming intelRdt and resctrl", err)
	}
}

// The whole path on a real resctrl: the container's own group with
// schemata and a monitoring group, init and exec'd processes in them, and
// both removed at Destroy.
func TestIntelRdtOwnGroup(t *testing.T) {
	e := newEnv(t)
	root := requireResctrl(t)
	// The first schema of the default group is valid on any hardware.
	def, err := os.ReadFile(filepath.Join(root, "schemata"))
	if err != nil {
		t.Fatal(err)
	}
	line := strings.TrimSpace(strings.SplitN(string(def), "\n", 2)[0])
	_, monErr := os.Stat(filepath.Join(root, "mon_groups"))
	cfg := e.config()
	cfg.IntelRdt = &specs.LinuxIntelRdt{Schemata: []string{line}, EnableMonitoring: monErr == nil}
	c := createRdt(t, e, cfg)
	group := filepath.Join(root, c.ID())
	got, err := os.ReadFile(filepath.Join(group, "schemata"))
	if err != nil {
		t.Fatalf("the container's group: %v", err)
	}
	if !strings.Contains(string(got), line) {
		t.Errorf("group schemata %q, want %q in them", got, line)
	}
	p := e.startSleeping(c)
	tasks := func(dir string) string {
		b, err := os.ReadFile(filepath.Join(dir, "tasks"))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	pid := strconv.Itoa(p.Pid)
	if !strings.Contains("\n"+tasks(group), "\n"+pid+"\n") {
		t.Errorf("init %s not in %s/tasks: %q", pid, group, tasks(group))
	}
	mon := filepath.Join(group, "mon_groups", c.ID())
	if cfg.IntelRdt.EnableMonitoring && !strings.Contains("\n"+tasks(mon), "\n"+pid+"\n") {
		t.Errorf("init %s not in %s/tasks: %q", pid, mon, tasks(mon))
	}
	// An exec'd process is in the group too, as /proc/self/resctrl shows
	// where the kernel has it.
	if _, err := os.Stat("/proc/self/resctrl"); err == nil {
		if out := e.mustExec(c, "cat", "/proc/self/resctrl"); !strings.Contains(out, "/"+c.ID()) {
			t.Errorf("exec'd process: /proc/self/resctrl %q, want group /%s", out, c.ID())
		}
	}
	if err := c.Destroy(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(group); !os.IsNotExist(err) {
		t.Errorf("group %s after Destroy: %v", group, err)
	}
}

// A closID group is shared: an existing one is joined and kept at
// Destroy; a missing one with no schemata is an error that leaves nothing.
func TestIntelRdtClosID(t *testing.T) {
	e := newEnv(t)
	root := requireResctrl(t)
	group := filepath.Join(root, "cfdtest-shared")
	if err := os.Mkdir(group, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove(group) })
	cfg := e.config()
	cfg.IntelRdt = &specs.LinuxIntelRdt{ClosID: "cfdtest-shared"}
	c := createRdt(t, e, cfg)
	p := e.startSleeping(c)
	b, _ := os.ReadFile(filepath.Join(group, "tasks"))
	if !strings.Contains("\n"+string(b), "\n"+strconv.Itoa(p.Pid)+"\n") {
		t.Errorf("init %d not in %s/tasks: %q", p.Pid, group, b)
	}
	if err := c.Destroy(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(group); err != nil {
		t.Errorf("shared group after Destroy: %v", err)
	}

	cfg.IntelRdt = &specs.LinuxIntelRdt{ClosID: "cfdtest-missing"}
	if c, err := cfd.Create(e.root, "rdt-missing", cfg); err == nil {
		c.Destroy()
		t.Error("Create with a missing closID and no schemata succeeded")
	}
	if _, err := os.Stat(filepath.Join(root, "cfdtest-missing")); !os.IsNotExist(err) {
		t.Errorf("missing closID group after a failed Create: %v", err)
	}
}
