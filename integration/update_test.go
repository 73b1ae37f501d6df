package integration

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
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

// TestUpdateFlagsAfterID updates with the flags after the container id, as
// runc's tests and scripts write it (runc's command line takes flags after
// the arguments): each limit must be applied, and a word update does not
// know must fail rather than pass unapplied.
func TestUpdateFlagsAfterID(t *testing.T) {
	e := newEnv(t, "sleep", "100")
	s := e.spec()
	quota, period, pids := int64(500000), uint64(1000000), int64(20)
	s.Linux.Resources.CPU = &specs.LinuxCPU{Quota: &quota, Period: &period}
	s.Linux.Resources.Pids = &specs.LinuxPids{Limit: &pids}
	e.writeSpec(s)
	e.ok("run", "-d", "-b", e.bundle, e.id)

	cpuMax := func() (quota, period string) {
		q := readCgroupFile(t, "cpu", "cpu", e.cgroup, "cpu.cfs_quota_us", "cpu.max")
		if dir, v2 := cgroupDir(t, "cpu", "cpu", e.cgroup); !v2 {
			b, err := os.ReadFile(filepath.Join(dir, "cpu.cfs_period_us"))
			if err != nil {
				t.Fatal(err)
			}
			return q, strings.TrimSpace(string(b))
		}
		q, p, _ := strings.Cut(q, " ")
		if q == "max" {
			q = "-1"
		}
		return q, p
	}
	e.ok("update", e.id, "--cpu-period", "900000")
	if q, p := cpuMax(); q != "500000" || p != "900000" {
		t.Errorf("after update ID --cpu-period 900000: quota %s period %s, want 500000 900000", q, p)
	}
	e.ok("update", e.id, "--pids-limit", "12345")
	if got := readCgroupFile(t, "pids", "pids", e.cgroup, "pids.max", "pids.max"); got != "12345" {
		t.Errorf("after update ID --pids-limit 12345: pids.max = %s", got)
	}
	e.ok("update", e.id, "--cpu-quota=-1", "--pids-limit", "-1")
	if q, _ := cpuMax(); q != "-1" {
		t.Errorf("after update ID --cpu-quota=-1: quota %s", q)
	}
	if got := readCgroupFile(t, "pids", "pids", e.cgroup, "pids.max", "pids.max"); got != "max" {
		t.Errorf("after update ID --pids-limit -1: pids.max = %s", got)
	}
	if dir, v2 := cgroupDir(t, "cpuset", "cpuset", e.cgroup); dir != "" {
		file := "cpuset.cpus"
		if v2 {
			file = "cpuset.cpus.effective" // cpuset.cpus reads empty until set
		}
		if cpus, err := os.ReadFile(filepath.Join(dir, file)); err == nil && strings.TrimSpace(string(cpus)) != "0" {
			e.ok("update", e.id, "--cpuset-cpus", "0")
			if got := readCgroupFile(t, "cpuset", "cpuset", e.cgroup, "cpuset.cpus", "cpuset.cpus"); got != "0" {
				t.Errorf("after update ID --cpuset-cpus 0: cpuset.cpus = %s", got)
			}
		}
	}
	if dir, v2 := cgroupDir(t, "cpu", "cpu", e.cgroup); dir != "" {
		file := "cpu.cfs_burst_us"
		if v2 {
			file = "cpu.max.burst"
		}
		if _, err := os.Stat(filepath.Join(dir, file)); err == nil {
			e.ok("update", e.id, "--cpu-quota", "600000", "--cpu-burst", "500000")
			b, err := os.ReadFile(filepath.Join(dir, file))
			if err != nil {
				t.Fatal(err)
			}
			// Kernels before 6.10 show cpu.max.burst divided by 1000.
			if got := strings.TrimSpace(string(b)); got != "500000" && got != "500" {
				t.Errorf("after update ID --cpu-burst 500000: %s = %s", file, got)
			}
		}
	}
	for _, args := range [][]string{
		{"update", e.id, "--pids-limit", "7", "extra"},
		{"update", e.id, "--no-such-flag", "7"},
	} {
		if r := e.cfd(args...); r.code == 0 || !strings.Contains(r.stderr, "requires exactly 1 argument(s)") {
			t.Errorf("%s: %v", strings.Join(args, " "), r)
		}
	}
	if got := readCgroupFile(t, "pids", "pids", e.cgroup, "pids.max", "pids.max"); got != "max" {
		t.Errorf("a refused update changed pids.max to %s", got)
	}
}

// TestDeviceAccessOtherLetters runs a device rule whose access has a letter
// other than r, w and m: runc keeps the known letters ("rwa" is "rw"), and
// so do we.
func TestDeviceAccessOtherLetters(t *testing.T) {
	e := newEnv(t, "sh", "-c", "head -c 1 /dev/kmsg; echo ok >/dev/null && echo null-ok")
	s := e.spec()
	kmsgMajor, kmsgMinor := int64(1), int64(11)
	s.Linux.Resources.Devices = append(s.Linux.Resources.Devices,
		specs.LinuxDeviceCgroup{Allow: false, Type: "c", Major: &kmsgMajor, Minor: &kmsgMinor, Access: "rwa"})
	s.Linux.Devices = append(s.Linux.Devices, specs.LinuxDevice{Path: "/dev/kmsg", Type: "c", Major: 1, Minor: 11})
	e.writeSpec(s)
	r := e.cfd("run", "-b", e.bundle, e.id)
	if r.code != 0 || r.stdout != "null-ok\n" || !strings.Contains(r.stderr, "/dev/kmsg") {
		t.Fatalf("run with access \"rwa\" on /dev/kmsg: want /dev/kmsg refused and /dev/null usable: %v", r)
	}
}

// TestPidsLimitZero: a pids limit of 0 is written as 1, as runc writes it
// with either cgroup driver (systemd takes no TasksMax of 0): in the config,
// where 0 would leave no room even for init, and by update.
func TestPidsLimitZero(t *testing.T) {
	e := newEnv(t, "sleep", "100")
	if !stageForced() {
		// The Go stage has threads of its own, more than one limit allows.
		s := e.spec()
		zero := int64(0)
		s.Linux.Resources.Pids = &specs.LinuxPids{Limit: &zero}
		e.writeSpec(s)
	}
	e.ok("run", "-d", "-b", e.bundle, e.id)
	if !stageForced() {
		if got := readCgroupFile(t, "pids", "pids", e.cgroup, "pids.max", "pids.max"); got != "1" {
			t.Errorf("pids.max with linux.resources.pids.limit 0: %s, want 1", got)
		}
	}
	e.ok("update", "--pids-limit", "12", e.id)
	e.ok("update", "--pids-limit", "0", e.id)
	if got := readCgroupFile(t, "pids", "pids", e.cgroup, "pids.max", "pids.max"); got != "1" {
		t.Errorf("pids.max after update --pids-limit 0: %s, want 1", got)
	}
	if st := e.status(); st != "running" {
		t.Errorf("status: %s", st)
	}
}
