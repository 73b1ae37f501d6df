package cgroups

import (
	"errors"
	"fmt"
	"io/fs"
	"math"
	"strconv"
	"strings"
)

// Stats is a snapshot of a cgroup's usage counters. It follows runc's
// libcontainer cgroups.Stats and the types.Stats that `runc events --stats`
// prints, field for field where they overlap, so that the CLI can map it to
// that JSON; the field comments name each source file. Times are in
// nanoseconds, sizes in bytes. A counter whose controller or file the host
// lacks stays zero.
type Stats struct {
	CPU    CPUStats    `json:"cpu"`
	Memory MemoryStats `json:"memory"`
	Pids   PidsStats   `json:"pids"`
}

// CPUStats is runc's CpuStats.
type CPUStats struct {
	Usage      CPUUsage      `json:"usage"`
	Throttling CPUThrottling `json:"throttling"`
}

// CPUUsage is the CPU time used by the cgroup's processes: v1
// cpuacct.usage, cpuacct.usage_percpu, cpuacct.usage_user/_sys (or
// cpuacct.stat); cgroup2 cpu.stat usage_usec, user_usec, system_usec.
type CPUUsage struct {
	Total  uint64   `json:"total"`
	PerCPU []uint64 `json:"percpu,omitempty"` // v1 only
	Kernel uint64   `json:"kernel"`
	User   uint64   `json:"user"`
}

// CPUThrottling is what the CFS quota held back: cpu.stat nr_periods,
// nr_throttled, throttled_time (v1) or throttled_usec (cgroup2).
type CPUThrottling struct {
	Periods          uint64 `json:"periods"`
	ThrottledPeriods uint64 `json:"throttledPeriods"`
	ThrottledTime    uint64 `json:"throttledTime"`
}

// MemoryStats is runc's MemoryStats.
type MemoryStats struct {
	// Cache is the page cache: memory.stat "cache" (v1) or "file" (cgroup2).
	Cache uint64 `json:"cache"`
	// Usage is memory: v1 memory.usage_in_bytes, max_usage_in_bytes,
	// failcnt, limit_in_bytes; cgroup2 memory.current, memory.peak,
	// memory.max, and memory.events "max" as the fail count.
	Usage MemoryEntry `json:"usage"`
	// Swap is memory+swap, as v1 counts it (memory.memsw.*); on cgroup2,
	// memory.swap.current/max plus memory.current/max, as runc reports it.
	Swap MemoryEntry `json:"swap"`
	// Kernel is v1 memory.kmem.*; zero on cgroup2.
	Kernel MemoryEntry `json:"kernel"`
	// Events counts limit hits and OOM kills.
	Events MemoryEvents `json:"events"`
	// Raw is memory.stat.
	Raw map[string]uint64 `json:"raw,omitempty"`
}

// MemoryEntry is one memory counter. A Limit of "max" is math.MaxUint64;
// v1 prints its own stand-in for unlimited (9223372036854771712 with 4 KiB
// pages), kept as is, as runc does.
type MemoryEntry struct {
	Limit   uint64 `json:"limit"`
	Usage   uint64 `json:"usage,omitempty"`
	Max     uint64 `json:"max,omitempty"`
	Failcnt uint64 `json:"failcnt"`
}

// MemoryEvents holds cgroup2 memory.events (low, high, max, oom, oom_kill,
// oom_group_kill), or, on v1, what memory.oom_control tells: oom_kill, and
// the OOM killer switch and state (UnderOOM: processes wait for memory with
// the OOM killer disabled). v1 counts no "oom" events: OOM stays 0 there.
type MemoryEvents struct {
	Low            uint64 `json:"low"`
	High           uint64 `json:"high"`
	Max            uint64 `json:"max"`
	OOM            uint64 `json:"oom"`
	OOMKill        uint64 `json:"oom_kill"`
	OOMGroupKill   uint64 `json:"oom_group_kill"`
	OOMKillDisable bool   `json:"oom_kill_disable,omitempty"`
	UnderOOM       bool   `json:"under_oom,omitempty"`
}

// PidsStats is pids.current and pids.max, math.MaxUint64 for "max" (runc's
// JSON has 0 for that).
type PidsStats struct {
	Current uint64 `json:"current"`
	Limit   uint64 `json:"limit"`
}

// Stats reads the cgroup's counters, each controller from its v1 hierarchy
// if it has one, else from the cgroup2 directory. A controller that is in
// neither, or a file the kernel does not have, leaves its fields zero; other
// read or parse failures are errors, after the rest is read.
func (c *Cgroup) Stats() (*Stats, error) {
	s := &Stats{}
	var errs []error
	if dir, v2, ok := c.statsDir("memory"); ok {
		errs = append(errs, memoryStats(dir, v2, &s.Memory))
	}
	if dir, ok := c.paths["cpuacct"]; ok {
		errs = append(errs, cpuacctStats(dir, &s.CPU))
		if dir, ok := c.paths["cpu"]; ok {
			errs = append(errs, cpuStat(dir, false, &s.CPU))
		}
	} else if c.v2 != "" { // cpu.stat has the usage even without the cpu controller
		errs = append(errs, cpuStat(c.v2, true, &s.CPU))
	}
	if dir, _, ok := c.statsDir("pids"); ok {
		errs = append(errs, pidsStats(dir, &s.Pids))
	}
	if err := errors.Join(errs...); err != nil {
		return s, fmt.Errorf("cgroups: stats: %w", err)
	}
	return s, nil
}

// statsDir returns the directory to read controller ctrl's counters from.
func (c *Cgroup) statsDir(ctrl string) (dir string, v2, ok bool) {
	if d, ok := c.paths[ctrl]; ok {
		return d, false, true
	}
	return c.v2, true, c.v2 != ""
}

// absent reports whether err is that of a missing (optional) file.
func absent(err error) bool { return errors.Is(err, fs.ErrNotExist) }

// readUint reads a file holding one number, or "max" (math.MaxUint64).
func readUint(dir, file string) (uint64, error) {
	s, err := readFile(dir, file)
	if err != nil {
		return 0, err
	}
	s = strings.TrimSpace(s)
	if s == "max" {
		return math.MaxUint64, nil
	}
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		if n, ierr := strconv.ParseInt(s, 10, 64); ierr == nil && n < 0 {
			return 0, nil // a v1 counter that went below zero
		}
		return 0, fmt.Errorf("parse %s/%s: %q is not a number", dir, file, s)
	}
	return v, nil
}

// readKeyed reads a flat keyed file ("key value" lines: memory.stat,
// cpu.stat, memory.events, memory.oom_control).
func readKeyed(dir, file string) (map[string]uint64, error) {
	s, err := readFile(dir, file)
	if err != nil {
		return nil, err
	}
	return parseKeyed(dir+"/"+file, s)
}

func parseKeyed(name, s string) (map[string]uint64, error) {
	m := map[string]uint64{}
	for _, line := range strings.Split(s, "\n") {
		if line == "" {
			continue
		}
		k, v, ok := strings.Cut(line, " ")
		n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 64)
		if !ok || err != nil {
			return nil, fmt.Errorf("parse %s: malformed line %q", name, line)
		}
		m[k] = n
	}
	return m, nil
}

// memoryStats fills m from a v1 or cgroup2 memory directory.
func memoryStats(dir string, v2 bool, m *MemoryStats) error {
	var err error
	if v2 {
		if _, err := readFile(dir, "memory.current"); absent(err) {
			return nil // memory controller not enabled here
		}
	}
	if m.Raw, err = readKeyed(dir, "memory.stat"); err != nil {
		return err
	}
	if v2 {
		return memoryStatsV2(dir, m)
	}
	m.Cache = m.Raw["cache"]
	if m.Usage, err = memoryEntryV1(dir, "memory"); err != nil {
		return err
	}
	if m.Swap, err = memoryEntryV1(dir, "memory.memsw"); err != nil && !absent(err) {
		return err
	}
	if m.Kernel, err = memoryEntryV1(dir, "memory.kmem"); err != nil && !absent(err) {
		return err
	}
	oom, err := readKeyed(dir, "memory.oom_control")
	if err != nil {
		return err
	}
	m.Events.OOMKill = oom["oom_kill"]
	m.Events.OOMKillDisable = oom["oom_kill_disable"] == 1
	m.Events.UnderOOM = oom["under_oom"] == 1
	return nil
}

// memoryEntryV1 reads prefix.usage_in_bytes, .max_usage_in_bytes, .failcnt
// and .limit_in_bytes.
func memoryEntryV1(dir, prefix string) (MemoryEntry, error) {
	var e MemoryEntry
	for _, f := range []struct {
		name string
		v    *uint64
	}{{".usage_in_bytes", &e.Usage}, {".max_usage_in_bytes", &e.Max}, {".failcnt", &e.Failcnt}, {".limit_in_bytes", &e.Limit}} {
		var err error
		if *f.v, err = readUint(dir, prefix+f.name); err != nil {
			return MemoryEntry{}, err
		}
	}
	return e, nil
}

func memoryStatsV2(dir string, m *MemoryStats) error {
	m.Cache = m.Raw["file"]
	ev, err := readKeyed(dir, "memory.events")
	if err != nil {
		return err
	}
	m.Events = MemoryEvents{Low: ev["low"], High: ev["high"], Max: ev["max"], OOM: ev["oom"], OOMKill: ev["oom_kill"], OOMGroupKill: ev["oom_group_kill"]}
	m.Usage.Failcnt = ev["max"]
	if m.Usage.Usage, err = readUint(dir, "memory.current"); err != nil {
		return err
	}
	if m.Usage.Limit, err = readUint(dir, "memory.max"); err != nil {
		return err
	}
	if m.Usage.Max, err = readUint(dir, "memory.peak"); err != nil && !absent(err) { // Linux 5.19
		return err
	}
	swap, err := readUint(dir, "memory.swap.current")
	if absent(err) {
		return nil // no swap accounting
	}
	if err != nil {
		return err
	}
	swapMax, err := readUint(dir, "memory.swap.max")
	if err != nil {
		return err
	}
	m.Swap.Usage = swap + m.Usage.Usage
	m.Swap.Limit = math.MaxUint64
	if swapMax != math.MaxUint64 && m.Usage.Limit != math.MaxUint64 {
		m.Swap.Limit = swapMax + m.Usage.Limit
	}
	if sev, err := readKeyed(dir, "memory.swap.events"); err == nil {
		m.Swap.Failcnt = sev["fail"]
	}
	return nil
}

// userHZ is the unit of cpuacct.stat: USER_HZ, 100 on every Linux
// architecture Go supports.
const userHZ = 100

// cpuacctStats fills the v1 CPU usage.
func cpuacctStats(dir string, c *CPUStats) error {
	var err error
	if c.Usage.Total, err = readUint(dir, "cpuacct.usage"); err != nil {
		return err
	}
	if s, err := readFile(dir, "cpuacct.usage_percpu"); err == nil {
		for _, f := range strings.Fields(s) {
			v, err := strconv.ParseUint(f, 10, 64)
			if err != nil {
				return fmt.Errorf("parse %s/cpuacct.usage_percpu: %q is not a number", dir, f)
			}
			c.Usage.PerCPU = append(c.Usage.PerCPU, v)
		}
	} else if !absent(err) {
		return err
	}
	user, uerr := readUint(dir, "cpuacct.usage_user")
	sys, serr := readUint(dir, "cpuacct.usage_sys")
	if uerr == nil && serr == nil {
		c.Usage.User, c.Usage.Kernel = user, sys
		return nil
	}
	// Before Linux 4.7: clock ticks in cpuacct.stat.
	st, err := readKeyed(dir, "cpuacct.stat")
	if err != nil {
		return err
	}
	c.Usage.User = st["user"] * (1e9 / userHZ)
	c.Usage.Kernel = st["system"] * (1e9 / userHZ)
	return nil
}

// cpuStat reads cpu.stat: usage (cgroup2) and throttling (both).
func cpuStat(dir string, v2 bool, c *CPUStats) error {
	st, err := readKeyed(dir, "cpu.stat")
	if err != nil {
		if absent(err) {
			return nil
		}
		return err
	}
	c.Throttling.Periods = st["nr_periods"]
	c.Throttling.ThrottledPeriods = st["nr_throttled"]
	if !v2 {
		c.Throttling.ThrottledTime = st["throttled_time"]
		return nil
	}
	c.Throttling.ThrottledTime = st["throttled_usec"] * 1000
	c.Usage.Total = st["usage_usec"] * 1000
	c.Usage.User = st["user_usec"] * 1000
	c.Usage.Kernel = st["system_usec"] * 1000
	return nil
}

func pidsStats(dir string, p *PidsStats) error {
	cur, err := readUint(dir, "pids.current")
	if absent(err) {
		return nil // pids controller not enabled here
	}
	if err != nil {
		return err
	}
	if p.Limit, err = readUint(dir, "pids.max"); err != nil {
		return err
	}
	p.Current = cur
	return nil
}
