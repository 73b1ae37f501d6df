package integration

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// cgroupDir is where controller ctrl (its v1 name, or v2ctrl on cgroup2)
// keeps the files of cgroup path cg, as the runtime places it: a v1
// hierarchy of the controller if one is mounted (this host's hybrid
// layout), else cgroup2 (/sys/fs/cgroup on a pure v2 host, as in the VM of
// hack/vm.sh, or /sys/fs/cgroup/unified) where the root enables the
// controller for its children. "" when neither has it.
func cgroupDir(t *testing.T, ctrl, v2ctrl, cg string) (dir string, v2 bool) {
	t.Helper()
	if d := filepath.Join("/sys/fs/cgroup", ctrl); isCgroupFS(d, unix.CGROUP_SUPER_MAGIC) {
		return filepath.Join(d, cg), false
	}
	for _, root := range []string{"/sys/fs/cgroup", "/sys/fs/cgroup/unified"} {
		if !isCgroupFS(root, unix.CGROUP2_SUPER_MAGIC) {
			continue
		}
		// The runtime leaves the root's subtree_control as the host set
		// it: a controller reaches the container only if enabled there.
		on, err := os.ReadFile(filepath.Join(root, "cgroup.subtree_control"))
		if err != nil {
			t.Fatal(err)
		}
		if slices.Contains(strings.Fields(string(on)), v2ctrl) {
			return filepath.Join(root, cg), true
		}
	}
	return "", false
}

func isCgroupFS(dir string, magic int64) bool {
	var st unix.Statfs_t
	return unix.Statfs(dir, &st) == nil && int64(st.Type) == magic
}

// readCgroupFile reads a limit of the container's cgroup cg: file v1file
// of controller ctrl's v1 hierarchy, or v2file on cgroup2.
func readCgroupFile(t *testing.T, ctrl, v2ctrl, cg, v1file, v2file string) string {
	t.Helper()
	dir, v2 := cgroupDir(t, ctrl, v2ctrl, cg)
	if dir == "" {
		t.Fatalf("no %s controller here, neither cgroup v1 nor cgroup2", ctrl)
	}
	file := v1file
	if v2 {
		file = v2file
	}
	b, err := os.ReadFile(filepath.Join(dir, file))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

func TestUpdate(t *testing.T) {
	e := newEnv(t, "sleep", "100")
	e.ok("run", "-d", "-b", e.bundle, e.id)
	e.ok("update", "--memory", "64m", "--pids-limit", "30", "--cpu-share", "512", e.id)
	if got := readCgroupFile(t, "memory", "memory", e.cgroup, "memory.limit_in_bytes", "memory.max"); got != "67108864" {
		t.Errorf("memory limit after update --memory 64m = %s", got)
	}
	if got := readCgroupFile(t, "pids", "pids", e.cgroup, "pids.max", "pids.max"); got != "30" {
		t.Errorf("pids.max = %s", got)
	}
	// cgroup2 has cpu.weight: shares 512 is weight 1+(512-2)*9999/262142.
	if got := readCgroupFile(t, "cpu", "cpu", e.cgroup, "cpu.shares", "cpu.weight"); got != "512" && got != "20" {
		t.Errorf("cpu.shares (or cpu.weight) = %s, want 512 (or 20)", got)
	}
	// As containerd sends it: JSON on stdin.
	r := e.cfdIn([]byte(`{"memory":{"limit":33554432},"pids":{"limit":10}}`), "update", "--resources=-", e.id)
	if r.code != 0 {
		t.Fatalf("update --resources=-: %v", r)
	}
	if got := readCgroupFile(t, "memory", "memory", e.cgroup, "memory.limit_in_bytes", "memory.max"); got != "33554432" {
		t.Errorf("memory limit after --resources = %s", got)
	}
	if got := readCgroupFile(t, "pids", "pids", e.cgroup, "pids.max", "pids.max"); got != "10" {
		t.Errorf("pids.max after --resources = %s", got)
	}
	if r := e.cfd("update", "--memory", "lots", e.id); r.code == 0 || !strings.Contains(r.stderr, "--memory") {
		t.Errorf("update with a bad size: %v", r)
	}
}

func TestEventsStats(t *testing.T) {
	e := newEnv(t, "sleep", "100")
	e.ok("run", "-d", "-b", e.bundle, e.id)
	var ev struct {
		Type string `json:"type"`
		ID   string `json:"id"`
		Data struct {
			Memory struct {
				Usage struct{ Usage uint64 } `json:"usage"`
			} `json:"memory"`
			Pids struct{ Current uint64 } `json:"pids"`
			CPU  struct {
				Usage struct{ Total uint64 } `json:"usage"`
			} `json:"cpu"`
		} `json:"data"`
	}
	out := e.ok("events", "--stats", e.id)
	if err := json.Unmarshal([]byte(out), &ev); err != nil {
		t.Fatalf("events --stats %q: %v", out, err)
	}
	if ev.Type != "stats" || ev.ID != e.id || ev.Data.Pids.Current != 1 || ev.Data.Memory.Usage.Usage == 0 || ev.Data.CPU.Usage.Total == 0 {
		t.Errorf("events --stats: %s", out)
	}
}
