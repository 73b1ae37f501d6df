package cgroups

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func writeFixture(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for f, v := range files {
		if err := os.WriteFile(filepath.Join(dir, f), []byte(v), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// TestStatsV2Fixture reads the counters from a fake cgroup2 directory.
func TestStatsV2Fixture(t *testing.T) {
	dir := t.TempDir()
	writeFixture(t, dir, map[string]string{
		"cgroup.controllers":  "cpu memory pids\n",
		"memory.current":      "20971520\n",
		"memory.max":          "41943040\n",
		"memory.peak":         "31457280\n",
		"memory.stat":         "anon 1000\nfile 2000\nkernel 300\n",
		"memory.events":       "low 1\nhigh 2\nmax 3\noom 4\noom_kill 5\noom_group_kill 6\n",
		"memory.swap.current": "1048576\n",
		"memory.swap.max":     "max\n",
		"memory.swap.events":  "high 0\nmax 0\nfail 7\n",
		"cpu.stat":            "usage_usec 3000\nuser_usec 2000\nsystem_usec 1000\nnr_periods 10\nnr_throttled 4\nthrottled_usec 500\n",
		"pids.current":        "3\n",
		"pids.max":            "max\n",
	})
	c := &Cgroup{mode: V2, paths: Paths{KeyUnified: dir}, v2: dir, cloneFD: -1}
	got, err := c.Stats()
	if err != nil {
		t.Fatal(err)
	}
	want := &Stats{
		CPU: CPUStats{
			Usage:      CPUUsage{Total: 3000000, User: 2000000, Kernel: 1000000},
			Throttling: CPUThrottling{Periods: 10, ThrottledPeriods: 4, ThrottledTime: 500000},
		},
		Memory: MemoryStats{
			Cache:  2000,
			Usage:  MemoryEntry{Limit: 41943040, Usage: 20971520, Max: 31457280, Failcnt: 3},
			Swap:   MemoryEntry{Limit: math.MaxUint64, Usage: 22020096, Failcnt: 7},
			Events: MemoryEvents{Low: 1, High: 2, Max: 3, OOM: 4, OOMKill: 5, OOMGroupKill: 6},
			Raw:    map[string]uint64{"anon": 1000, "file": 2000, "kernel": 300},
		},
		Pids: PidsStats{Current: 3, Limit: math.MaxUint64},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got  %+v\nwant %+v", got, want)
	}
	// Finite swap: memory+swap is reported, as v1 does.
	writeFixture(t, dir, map[string]string{"memory.swap.max": "10485760\n"})
	if got, err = c.Stats(); err != nil || got.Memory.Swap.Limit != 41943040+10485760 {
		t.Errorf("swap limit %d, %v", got.Memory.Swap.Limit, err)
	}
	js, err := json.Marshal(got)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{`"cpu":{"usage":{"total":3000000`, `"oom_kill":5`, `"pids":{"current":3`, `"failcnt":3`} {
		if !strings.Contains(string(js), k) {
			t.Errorf("JSON lacks %s: %s", k, js)
		}
	}

	// Without the memory and pids controllers (a bare cgroup2 cgroup, as
	// in hybrid mode): only the CPU usage, which cpu.stat always has.
	bare := t.TempDir()
	writeFixture(t, bare, map[string]string{"cpu.stat": "usage_usec 7\nuser_usec 4\nsystem_usec 3\n"})
	c = &Cgroup{mode: V2, paths: Paths{KeyUnified: bare}, v2: bare, cloneFD: -1}
	if got, err = c.Stats(); err != nil || !reflect.DeepEqual(got, &Stats{CPU: CPUStats{Usage: CPUUsage{Total: 7000, User: 4000, Kernel: 3000}}}) {
		t.Errorf("bare: %+v, %v", got, err)
	}
	// A malformed file is an error naming it.
	writeFixture(t, bare, map[string]string{"cpu.stat": "usage_usec seven\n"})
	if _, err := c.Stats(); err == nil || !strings.Contains(err.Error(), "cpu.stat") {
		t.Errorf("malformed cpu.stat: %v", err)
	}
}

// TestStatsV1Fixture reads the counters from fake v1 directories, with the
// cpuacct.stat fallback of kernels before 4.7 and no swap accounting.
func TestStatsV1Fixture(t *testing.T) {
	mem, cpu, pids := t.TempDir(), t.TempDir(), t.TempDir()
	writeFixture(t, mem, map[string]string{
		"memory.stat":                "cache 4096\nrss 8192\n",
		"memory.usage_in_bytes":      "12288\n",
		"memory.max_usage_in_bytes":  "20000\n",
		"memory.failcnt":             "9\n",
		"memory.limit_in_bytes":      "9223372036854771712\n",
		"memory.kmem.usage_in_bytes": "1\n", "memory.kmem.max_usage_in_bytes": "2\n",
		"memory.kmem.failcnt": "0\n", "memory.kmem.limit_in_bytes": "9223372036854771712\n",
		"memory.oom_control": "oom_kill_disable 1\nunder_oom 1\noom_kill 2\n",
	})
	writeFixture(t, cpu, map[string]string{
		"cpuacct.usage":        "5000\n",
		"cpuacct.usage_percpu": "3000 2000 \n",
		"cpuacct.stat":         "user 3\nsystem 1\n",
		"cpu.stat":             "nr_periods 5\nnr_throttled 1\nthrottled_time 777\n",
	})
	writeFixture(t, pids, map[string]string{"pids.current": "2\n", "pids.max": "64\n"})
	c := &Cgroup{mode: V1, paths: Paths{"memory": mem, "cpu": cpu, "cpuacct": cpu, "pids": pids}, v1: []string{cpu, mem, pids}, cloneFD: -1}
	got, err := c.Stats()
	if err != nil {
		t.Fatal(err)
	}
	want := &Stats{
		CPU: CPUStats{
			Usage:      CPUUsage{Total: 5000, PerCPU: []uint64{3000, 2000}, User: 30000000, Kernel: 10000000},
			Throttling: CPUThrottling{Periods: 5, ThrottledPeriods: 1, ThrottledTime: 777},
		},
		Memory: MemoryStats{
			Cache:  4096,
			Usage:  MemoryEntry{Limit: 9223372036854771712, Usage: 12288, Max: 20000, Failcnt: 9},
			Kernel: MemoryEntry{Limit: 9223372036854771712, Usage: 1, Max: 2},
			Events: MemoryEvents{OOMKill: 2, OOMKillDisable: true, UnderOOM: true},
			Raw:    map[string]uint64{"cache": 4096, "rss": 8192},
		},
		Pids: PidsStats{Current: 2, Limit: 64},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got  %+v\nwant %+v", got, want)
	}
}
