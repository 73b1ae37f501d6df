package integration

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func readCgroupFile(t *testing.T, ctrl, cgroup, file string) string {
	b, err := os.ReadFile(filepath.Join("/sys/fs/cgroup", ctrl, cgroup, file))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

func TestUpdate(t *testing.T) {
	e := newEnv(t, "sleep", "100")
	e.ok("run", "-d", "-b", e.bundle, e.id)
	e.ok("update", "--memory", "64m", "--pids-limit", "30", "--cpu-share", "512", e.id)
	if got := readCgroupFile(t, "memory", e.cgroup, "memory.limit_in_bytes"); got != "67108864" {
		t.Errorf("memory.limit_in_bytes after update --memory 64m = %s", got)
	}
	if got := readCgroupFile(t, "pids", e.cgroup, "pids.max"); got != "30" {
		t.Errorf("pids.max = %s", got)
	}
	if got := readCgroupFile(t, "cpu", e.cgroup, "cpu.shares"); got != "512" {
		t.Errorf("cpu.shares = %s", got)
	}
	// As containerd sends it: JSON on stdin.
	r := e.cfdIn([]byte(`{"memory":{"limit":33554432},"pids":{"limit":10}}`), "update", "--resources=-", e.id)
	if r.code != 0 {
		t.Fatalf("update --resources=-: %v", r)
	}
	if got := readCgroupFile(t, "memory", e.cgroup, "memory.limit_in_bytes"); got != "33554432" {
		t.Errorf("memory.limit_in_bytes after --resources = %s", got)
	}
	if got := readCgroupFile(t, "pids", e.cgroup, "pids.max"); got != "10" {
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
