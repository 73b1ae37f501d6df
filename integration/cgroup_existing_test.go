package integration

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/containerfd/containerfd/internal/testutil"
)

// TestPreexistingCgroup: a cgroup directory made before the container (a
// caller may make it and set limits on it first) is taken as it is, as
// runc takes it; one that holds another container's processes is refused
// with runc's words. Delete leaves the directory, which is not ours (runc
// removes it: docs/compat.md), and removes those it made.
func TestPreexistingCgroup(t *testing.T) {
	e := newEnv(t, "sleep", "100")
	dir, v2 := cgroupDir(t, "pids", "pids", e.cgroup)
	if dir == "" {
		t.Skip("no pids controller here, neither cgroup v1 nor cgroup2")
	}
	if v2 {
		// The limit file is there only if the parent hands pids down.
		if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(filepath.Dir(dir), "cgroup.subtree_control"), []byte("+pids"), 0); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove(dir) })
	if err := os.WriteFile(filepath.Join(dir, "pids.max"), []byte("42"), 0); err != nil {
		t.Fatal(err)
	}

	e.ok("run", "-d", "-b", e.bundle, e.id)
	if got := readCgroupFile(t, "pids", "pids", e.cgroup, "pids.max", "pids.max"); got != "42" {
		t.Errorf("pids.max of the pre-existing cgroup: %s, want the 42 set before", got)
	}
	procs, err := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
	pid := strconv.Itoa(int(e.state()["pid"].(float64)))
	if err != nil || strings.TrimSpace(string(procs)) != pid {
		t.Errorf("%s/cgroup.procs: %q, %v; want init %s", dir, procs, err, pid)
	}

	// A second container on the same cgroup path.
	other := *e
	other.id = testutil.ID(t) + "-2"
	other.root = testutil.StateDir(t)
	t.Cleanup(func() { other.cfd("delete", "--force", other.id) })
	if r := other.cfd("create", "-b", e.bundle, other.id); r.code == 0 || !strings.Contains(r.stderr, "container's cgroup is not empty") {
		t.Errorf("create on the cgroup of a running container: %v", r)
	}
	if st := e.status(); st != "running" {
		t.Errorf("the first container after the refused create: %s", st)
	}

	e.ok("delete", "--force", e.id)
	if _, err := os.Stat(dir); err != nil {
		t.Errorf("delete removed %s, which was there before the container: %v", dir, err)
	}
	if d, _ := cgroupDir(t, "memory", "memory", e.cgroup); d != "" && d != dir {
		if _, err := os.Stat(d); !os.IsNotExist(err) {
			t.Errorf("delete left %s, which it made: %v", d, err)
		}
	}
}
