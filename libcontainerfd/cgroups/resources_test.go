package cgroups

import (
	"errors"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// ---- pure planning: resources -> ordered file writes ----

func ptr[T any](v T) *T { return &v }

const mi = 1 << 20

// fakeFiles is a reader over a map: a file not in it does not exist.
func fakeFiles(files map[string]string) reader {
	return func(f string) (string, error) {
		v, ok := files[f]
		if !ok {
			return "", &fs.PathError{Op: "open", Path: f, Err: fs.ErrNotExist}
		}
		return v, nil
	}
}

// with returns base with the changes applied ("" value: file removed).
func with(base map[string]string, changes ...string) map[string]string {
	m := map[string]string{}
	for k, v := range base {
		m[k] = v
	}
	for i := 0; i+1 < len(changes); i += 2 {
		if changes[i+1] == "" {
			delete(m, changes[i])
		} else {
			m[changes[i]] = changes[i+1]
		}
	}
	return m
}

func ws(kv ...string) []fileWrite {
	var out []fileWrite
	for i := 0; i+1 < len(kv); i += 2 {
		out = append(out, fileWrite{kv[i], kv[i+1]})
	}
	return out
}

type planCase struct {
	name  string
	r     *specs.LinuxResources
	files map[string]string // nil: the defaults
	want  []fileWrite
	err   string // a substring of the error; "" for none
	unsup bool   // the error wraps errors.ErrUnsupported
}

func runPlanCases(t *testing.T, v2 bool, defaults map[string]string, cases []planCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			files := tc.files
			if files == nil {
				files = defaults
			}
			got, err := plan(tc.r, v2, fakeFiles(files))
			if tc.err != "" {
				if err == nil {
					t.Fatalf("got %v, want an error with %q", got, tc.err)
				}
				if !strings.Contains(err.Error(), tc.err) {
					t.Errorf("error %q, want it to contain %q", err, tc.err)
				}
				if tc.unsup != errors.Is(err, errors.ErrUnsupported) {
					t.Errorf("error %q: wraps ErrUnsupported %v, want %v", err, !tc.unsup, tc.unsup)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("writes\n got %v\nwant %v", got, tc.want)
			}
		})
	}
}

func mem(m specs.LinuxMemory) *specs.LinuxResources { return &specs.LinuxResources{Memory: &m} }
func cpu(c specs.LinuxCPU) *specs.LinuxResources    { return &specs.LinuxResources{CPU: &c} }
func pids(l int64) *specs.LinuxResources {
	return &specs.LinuxResources{Pids: &specs.LinuxPids{Limit: &l}}
}

// TestPlanV2 is the cgroup2 translation table.
func TestPlanV2(t *testing.T) {
	defaults := map[string]string{
		"memory.max": "max", "memory.swap.max": "max", "memory.low": "0",
		"memory.current": "1000000", "memory.swap.current": "0",
		"cpu.max": "max 100000", "cpu.weight": "100", "cpu.max.burst": "0", "cpu.idle": "0",
	}
	runPlanCases(t, true, defaults, []planCase{
		{name: "nothing", r: &specs.LinuxResources{}},
		{name: "empty sections", r: &specs.LinuxResources{Memory: &specs.LinuxMemory{}, CPU: &specs.LinuxCPU{}, Pids: &specs.LinuxPids{}}},
		// devices are not file writes of plan (see devices_test.go); empty
		// blockIO and network are not "set".
		{name: "devices apart", r: &specs.LinuxResources{Devices: []specs.LinuxDeviceCgroup{{Allow: false, Access: "rwm"}},
			BlockIO: &specs.LinuxBlockIO{}, Network: &specs.LinuxNetwork{}}},
		// Docker sends "blockIO": {"weight": 0}: 0 is "not set", as in runc.
		{name: "blockIO weight 0 is unset", r: &specs.LinuxResources{BlockIO: &specs.LinuxBlockIO{Weight: ptr[uint16](0), LeafWeight: ptr[uint16](0)}}},

		// memory
		{name: "limit", r: mem(specs.LinuxMemory{Limit: ptr[int64](1048576)}), want: ws("memory.max", "1048576")},
		{name: "limit 0 is unset", r: mem(specs.LinuxMemory{Limit: ptr[int64](0)})},
		{name: "limit -1 lifts swap too", r: mem(specs.LinuxMemory{Limit: ptr[int64](-1)}),
			want: ws("memory.swap.max", "max", "memory.max", "max")},
		{name: "limit -1 without swap accounting", r: mem(specs.LinuxMemory{Limit: ptr[int64](-1)}),
			files: with(defaults, "memory.swap.max", ""), want: ws("memory.max", "max")},
		{name: "limit and swap", r: mem(specs.LinuxMemory{Limit: ptr[int64](100 * mi), Swap: ptr[int64](300 * mi)}),
			want: ws("memory.swap.max", "209715200", "memory.max", "104857600")},
		{name: "swap equal to limit: no swap", r: mem(specs.LinuxMemory{Limit: ptr[int64](100 * mi), Swap: ptr[int64](100 * mi)}),
			want: ws("memory.swap.max", "0", "memory.max", "104857600")},
		{name: "swap -1", r: mem(specs.LinuxMemory{Limit: ptr[int64](100 * mi), Swap: ptr[int64](-1)}),
			want: ws("memory.swap.max", "max", "memory.max", "104857600")},
		{name: "swap with unlimited memory", r: mem(specs.LinuxMemory{Limit: ptr[int64](-1), Swap: ptr[int64](300 * mi)}),
			want: ws("memory.swap.max", "314572800", "memory.max", "max")},
		{name: "swap alone, against the current memory.max", r: mem(specs.LinuxMemory{Swap: ptr[int64](300 * mi)}),
			files: with(defaults, "memory.max", "104857600"), want: ws("memory.swap.max", "209715200")},
		{name: "swap alone, memory.max max", r: mem(specs.LinuxMemory{Swap: ptr[int64](300 * mi)}),
			want: ws("memory.swap.max", "314572800")},
		{name: "swap below limit", r: mem(specs.LinuxMemory{Limit: ptr[int64](300 * mi), Swap: ptr[int64](100 * mi)}),
			err: "linux.resources.memory.swap (memory+swap) 104857600 is below linux.resources.memory.limit 314572800"},
		{name: "swap without swap accounting", r: mem(specs.LinuxMemory{Limit: ptr[int64](100 * mi), Swap: ptr[int64](300 * mi)}),
			files: with(defaults, "memory.swap.max", ""), err: "no memory.swap.max", unsup: true},
		{name: "limit below -1", r: mem(specs.LinuxMemory{Limit: ptr[int64](-2)}), err: "linux.resources.memory.limit: -2"},
		{name: "reservation", r: mem(specs.LinuxMemory{Reservation: ptr[int64](50 * mi)}), want: ws("memory.low", "52428800")},
		{name: "reservation -1", r: mem(specs.LinuxMemory{Reservation: ptr[int64](-1)}), want: ws("memory.low", "max")},
		{name: "all memory", r: mem(specs.LinuxMemory{Limit: ptr[int64](100 * mi), Swap: ptr[int64](200 * mi), Reservation: ptr[int64](50 * mi)}),
			want: ws("memory.swap.max", "104857600", "memory.max", "104857600", "memory.low", "52428800")},
		{name: "swappiness, kernel, kernelTCP, useHierarchy ignored", r: mem(specs.LinuxMemory{Swappiness: ptr[uint64](10),
			Kernel: ptr[int64](mi), KernelTCP: ptr[int64](mi), UseHierarchy: ptr(true)})},
		{name: "disableOOMKiller false", r: mem(specs.LinuxMemory{DisableOOMKiller: ptr(false)})},
		{name: "disableOOMKiller true", r: mem(specs.LinuxMemory{DisableOOMKiller: ptr(true)}),
			err: "disableOOMKiller", unsup: true},
		{name: "checkBeforeUpdate refuses", r: mem(specs.LinuxMemory{Limit: ptr[int64](500000), CheckBeforeUpdate: ptr(true)}),
			err: "not above the current usage 1000000"},
		{name: "checkBeforeUpdate passes", r: mem(specs.LinuxMemory{Limit: ptr[int64](2000000), CheckBeforeUpdate: ptr(true)}),
			want: ws("memory.max", "2000000")},
		{name: "checkBeforeUpdate swap", r: mem(specs.LinuxMemory{Limit: ptr[int64](2000000), Swap: ptr[int64](3000000), CheckBeforeUpdate: ptr(true)}),
			files: with(defaults, "memory.swap.current", "2500000"), err: "memory+swap usage 3500000"},

		// cpu weight: 1 + ((shares-2)*9999)/262142
		{name: "shares 1024", r: cpu(specs.LinuxCPU{Shares: ptr[uint64](1024)}), want: ws("cpu.weight", "39")},
		{name: "shares 2", r: cpu(specs.LinuxCPU{Shares: ptr[uint64](2)}), want: ws("cpu.weight", "1")},
		{name: "shares 262144", r: cpu(specs.LinuxCPU{Shares: ptr[uint64](262144)}), want: ws("cpu.weight", "10000")},
		{name: "shares 100", r: cpu(specs.LinuxCPU{Shares: ptr[uint64](100)}), want: ws("cpu.weight", "4")},
		{name: "shares 0 is unset", r: cpu(specs.LinuxCPU{Shares: ptr[uint64](0)})},
		{name: "shares 1", r: cpu(specs.LinuxCPU{Shares: ptr[uint64](1)}), err: "linux.resources.cpu.shares: 1 is out of range 2-262144"},
		{name: "shares too big", r: cpu(specs.LinuxCPU{Shares: ptr[uint64](262145)}), err: "out of range"},
		{name: "idle 1 after the weight", r: cpu(specs.LinuxCPU{Shares: ptr[uint64](1024), Idle: ptr[int64](1)}),
			want: ws("cpu.weight", "39", "cpu.idle", "1")},
		{name: "idle 0 before the weight", r: cpu(specs.LinuxCPU{Shares: ptr[uint64](1024), Idle: ptr[int64](0)}),
			want: ws("cpu.idle", "0", "cpu.weight", "39")},
		{name: "idle 2", r: cpu(specs.LinuxCPU{Idle: ptr[int64](2)}), err: "linux.resources.cpu.idle"},

		// cpu.max
		{name: "quota and period", r: cpu(specs.LinuxCPU{Quota: ptr[int64](50000), Period: ptr[uint64](100000)}),
			want: ws("cpu.max", "50000 100000")},
		{name: "quota -1", r: cpu(specs.LinuxCPU{Quota: ptr[int64](-1), Period: ptr[uint64](100000)}),
			want: ws("cpu.max", "max 100000")},
		{name: "quota -5 is unlimited too", r: cpu(specs.LinuxCPU{Quota: ptr[int64](-5)}), want: ws("cpu.max", "max")},
		{name: "quota alone keeps the period", r: cpu(specs.LinuxCPU{Quota: ptr[int64](50000)}), want: ws("cpu.max", "50000")},
		{name: "period alone keeps the quota", r: cpu(specs.LinuxCPU{Period: ptr[uint64](20000)}),
			files: with(defaults, "cpu.max", "30000 100000"), want: ws("cpu.max", "30000 20000")},
		{name: "period alone, no quota", r: cpu(specs.LinuxCPU{Period: ptr[uint64](20000)}), want: ws("cpu.max", "max 20000")},
		{name: "burst fits the current quota: first", r: cpu(specs.LinuxCPU{Quota: ptr[int64](20000), Burst: ptr[uint64](10000)}),
			files: with(defaults, "cpu.max", "50000 100000"), want: ws("cpu.max.burst", "10000", "cpu.max", "20000")},
		{name: "burst above the current quota: after", r: cpu(specs.LinuxCPU{Quota: ptr[int64](80000), Burst: ptr[uint64](60000)}),
			files: with(defaults, "cpu.max", "20000 100000"), want: ws("cpu.max", "80000", "cpu.max.burst", "60000")},
		{name: "burst, quota max now", r: cpu(specs.LinuxCPU{Quota: ptr[int64](80000), Burst: ptr[uint64](60000)}),
			want: ws("cpu.max.burst", "60000", "cpu.max", "80000")},
		{name: "burst alone", r: cpu(specs.LinuxCPU{Burst: ptr[uint64](0)}), want: ws("cpu.max.burst", "0")},
		{name: "realtime", r: cpu(specs.LinuxCPU{RealtimeRuntime: ptr[int64](1000)}), err: "realtimeRuntime", unsup: true},
		{name: "realtime period", r: cpu(specs.LinuxCPU{RealtimePeriod: ptr[uint64](1000)}), err: "real-time", unsup: true},
		{name: "realtime zero is unset", r: cpu(specs.LinuxCPU{RealtimeRuntime: ptr[int64](0), RealtimePeriod: ptr[uint64](0)})},

		// cpuset, pids
		{name: "cpuset", r: cpu(specs.LinuxCPU{Cpus: "0-1", Mems: "0"}), want: ws("cpuset.cpus", "0-1", "cpuset.mems", "0")},
		{name: "pids", r: pids(100), want: ws("pids.max", "100")},
		{name: "pids -1", r: pids(-1), want: ws("pids.max", "max")},
		{name: "pids -7", r: pids(-7), want: ws("pids.max", "max")},
		{name: "pids 0 is a limit, of 1 as runc", r: pids(0), want: ws("pids.max", "1")},

		// everything, in controller order: cpuset, memory, cpu, pids
		{name: "all", r: &specs.LinuxResources{
			Memory: &specs.LinuxMemory{Limit: ptr[int64](64 * mi), Reservation: ptr[int64](32 * mi), Swap: ptr[int64](128 * mi)},
			CPU: &specs.LinuxCPU{Shares: ptr[uint64](512), Quota: ptr[int64](50000), Period: ptr[uint64](100000),
				Burst: ptr[uint64](1000), Cpus: "0", Mems: "0", Idle: ptr[int64](0)},
			Pids: &specs.LinuxPids{Limit: ptr[int64](10)},
		}, want: ws("cpuset.cpus", "0", "cpuset.mems", "0",
			"memory.swap.max", "67108864", "memory.max", "67108864", "memory.low", "33554432",
			"cpu.idle", "0", "cpu.weight", "20", "cpu.max.burst", "1000", "cpu.max", "50000 100000",
			"pids.max", "10")},

		// v1-only or v1 and cgroup2 alike (more in resources_extra_test.go)
		{name: "network on cgroup2", r: &specs.LinuxResources{Network: &specs.LinuxNetwork{ClassID: ptr[uint32](1)}},
			err: "linux.resources.network.classID: cgroup v2 has no net_cls", unsup: true},
	})
}

// TestPlanV1 is the v1 table, with the write orders that depend on the
// current values.
func TestPlanV1(t *testing.T) {
	const unl = "9223372036854771712"
	defaults := map[string]string{
		memLimit: unl, memswLimit: unl, memSoft: unl, "memory.usage_in_bytes": "1000000", "memory.memsw.usage_in_bytes": "1000000",
		"memory.swappiness": "60", "memory.oom_control": "oom_kill_disable 0\nunder_oom 0\noom_kill 0",
		"cpu.shares": "1024", "cpu.cfs_quota_us": "-1", "cpu.cfs_period_us": "100000", "cpu.cfs_burst_us": "0",
		"cpu.rt_runtime_us": "0", "cpu.rt_period_us": "1000000", "cpu.idle": "0",
	}
	runPlanCases(t, false, defaults, []planCase{
		{name: "nothing", r: &specs.LinuxResources{}},
		// memory vs memory+swap
		{name: "first limits: memory first", r: mem(specs.LinuxMemory{Limit: ptr[int64](100 * mi), Swap: ptr[int64](200 * mi)}),
			want: ws(memLimit, "104857600", memswLimit, "209715200")},
		{name: "raise: memsw first", r: mem(specs.LinuxMemory{Limit: ptr[int64](300 * mi), Swap: ptr[int64](600 * mi)}),
			files: with(defaults, memLimit, "104857600", memswLimit, "209715200"),
			want:  ws(memswLimit, "629145600", memLimit, "314572800")},
		{name: "lower: memory first", r: mem(specs.LinuxMemory{Limit: ptr[int64](50 * mi), Swap: ptr[int64](100 * mi)}),
			files: with(defaults, memLimit, "314572800", memswLimit, "629145600"),
			want:  ws(memLimit, "52428800", memswLimit, "104857600")},
		{name: "new memsw between: memsw first", r: mem(specs.LinuxMemory{Limit: ptr[int64](300 * mi), Swap: ptr[int64](350 * mi)}),
			files: with(defaults, memLimit, "104857600", memswLimit, "419430400"),
			want:  ws(memswLimit, "367001600", memLimit, "314572800")},
		{name: "unlimited: memsw first", r: mem(specs.LinuxMemory{Limit: ptr[int64](-1), Swap: ptr[int64](-1)}),
			files: with(defaults, memLimit, "104857600", memswLimit, "209715200"),
			want:  ws(memswLimit, "-1", memLimit, "-1")},
		{name: "limit -1 lifts memsw too", r: mem(specs.LinuxMemory{Limit: ptr[int64](-1)}),
			files: with(defaults, memLimit, "104857600", memswLimit, "209715200"),
			want:  ws(memswLimit, "-1", memLimit, "-1")},
		{name: "limit -1 without swap accounting", r: mem(specs.LinuxMemory{Limit: ptr[int64](-1)}),
			files: with(defaults, memswLimit, ""), want: ws(memLimit, "-1")},
		{name: "swap without swap accounting", r: mem(specs.LinuxMemory{Limit: ptr[int64](mi), Swap: ptr[int64](2 * mi)}),
			files: with(defaults, memswLimit, ""), err: "no memory.memsw.limit_in_bytes", unsup: true},
		{name: "limit alone above memsw", r: mem(specs.LinuxMemory{Limit: ptr[int64](300 * mi)}),
			files: with(defaults, memLimit, "104857600", memswLimit, "104857600"),
			err:   "linux.resources.memory.limit 314572800 is above the current memory+swap limit 104857600"},
		{name: "limit alone below memsw", r: mem(specs.LinuxMemory{Limit: ptr[int64](50 * mi)}),
			files: with(defaults, memLimit, "104857600", memswLimit, "104857600"), want: ws(memLimit, "52428800")},
		{name: "swap alone", r: mem(specs.LinuxMemory{Swap: ptr[int64](300 * mi)}), want: ws(memswLimit, "314572800")},
		{name: "swap with unlimited memory", r: mem(specs.LinuxMemory{Limit: ptr[int64](-1), Swap: ptr[int64](300 * mi)}),
			err: "with an unlimited memory limit"},
		{name: "reservation, oom, swappiness", r: mem(specs.LinuxMemory{Reservation: ptr[int64](mi), DisableOOMKiller: ptr(true), Swappiness: ptr[uint64](10)}),
			want: ws(memSoft, "1048576", "memory.oom_control", "1", "memory.swappiness", "10")},
		{name: "oom killer back on", r: mem(specs.LinuxMemory{DisableOOMKiller: ptr(false)}), want: ws("memory.oom_control", "0")},
		{name: "swappiness -1 left alone", r: mem(specs.LinuxMemory{Swappiness: ptr(uint64(math.MaxUint64))})},
		{name: "swappiness 101", r: mem(specs.LinuxMemory{Swappiness: ptr[uint64](101)}), err: "linux.resources.memory.swappiness: 101 is out of range 0-100"},
		{name: "checkBeforeUpdate", r: mem(specs.LinuxMemory{Limit: ptr[int64](500000), CheckBeforeUpdate: ptr(true)}), err: "not above the current usage"},

		// cpu
		{name: "shares", r: cpu(specs.LinuxCPU{Shares: ptr[uint64](512)}), want: ws("cpu.shares", "512")},
		{name: "shares and idle", r: cpu(specs.LinuxCPU{Shares: ptr[uint64](512), Idle: ptr[int64](1)}), want: ws("cpu.shares", "512", "cpu.idle", "1")},
		{name: "quota from unlimited: period first", r: cpu(specs.LinuxCPU{Quota: ptr[int64](50000), Period: ptr[uint64](10000)}),
			want: ws("cpu.cfs_period_us", "10000", "cpu.cfs_quota_us", "50000")},
		{name: "to unlimited: quota first", r: cpu(specs.LinuxCPU{Quota: ptr[int64](-1), Period: ptr[uint64](10000)}),
			files: with(defaults, "cpu.cfs_quota_us", "50000"), want: ws("cpu.cfs_quota_us", "-1", "cpu.cfs_period_us", "10000")},
		{name: "shorter period, same ratio: quota first", r: cpu(specs.LinuxCPU{Quota: ptr[int64](15000), Period: ptr[uint64](10000)}),
			files: with(defaults, "cpu.cfs_quota_us", "150000", "cpu.cfs_period_us", "100000"),
			want:  ws("cpu.cfs_quota_us", "15000", "cpu.cfs_period_us", "10000")},
		{name: "longer period, same ratio: period first", r: cpu(specs.LinuxCPU{Quota: ptr[int64](150000), Period: ptr[uint64](100000)}),
			files: with(defaults, "cpu.cfs_quota_us", "15000", "cpu.cfs_period_us", "10000"),
			want:  ws("cpu.cfs_period_us", "100000", "cpu.cfs_quota_us", "150000")},
		{name: "quota alone", r: cpu(specs.LinuxCPU{Quota: ptr[int64](20000)}), want: ws("cpu.cfs_quota_us", "20000")},
		{name: "period alone", r: cpu(specs.LinuxCPU{Period: ptr[uint64](20000)}), want: ws("cpu.cfs_period_us", "20000")},
		{name: "burst below the current quota: first", r: cpu(specs.LinuxCPU{Quota: ptr[int64](20000), Burst: ptr[uint64](20000)}),
			files: with(defaults, "cpu.cfs_quota_us", "50000"), want: ws("cpu.cfs_burst_us", "20000", "cpu.cfs_quota_us", "20000")},
		{name: "burst above the current quota: after", r: cpu(specs.LinuxCPU{Quota: ptr[int64](80000), Burst: ptr[uint64](60000)}),
			files: with(defaults, "cpu.cfs_quota_us", "20000"), want: ws("cpu.cfs_quota_us", "80000", "cpu.cfs_burst_us", "60000")},
		{name: "burst, all three", r: cpu(specs.LinuxCPU{Quota: ptr[int64](80000), Period: ptr[uint64](100000), Burst: ptr[uint64](60000)}),
			files: with(defaults, "cpu.cfs_quota_us", "20000"),
			want:  ws("cpu.cfs_period_us", "100000", "cpu.cfs_quota_us", "80000", "cpu.cfs_burst_us", "60000")},
		{name: "rt: runtime first when the period shrinks", r: cpu(specs.LinuxCPU{RealtimeRuntime: ptr[int64](5000), RealtimePeriod: ptr[uint64](100000)}),
			files: with(defaults, "cpu.rt_runtime_us", "50000"), want: ws("cpu.rt_runtime_us", "5000", "cpu.rt_period_us", "100000")},
		{name: "rt: period first when it grows", r: cpu(specs.LinuxCPU{RealtimeRuntime: ptr[int64](50000), RealtimePeriod: ptr[uint64](1000000)}),
			files: with(defaults, "cpu.rt_runtime_us", "5000", "cpu.rt_period_us", "100000"),
			want:  ws("cpu.rt_period_us", "1000000", "cpu.rt_runtime_us", "50000")},
		{name: "rt: from zero, period first", r: cpu(specs.LinuxCPU{RealtimeRuntime: ptr[int64](50000), RealtimePeriod: ptr[uint64](100000)}),
			want: ws("cpu.rt_period_us", "100000", "cpu.rt_runtime_us", "50000")},
		{name: "rt: to -1, runtime first", r: cpu(specs.LinuxCPU{RealtimeRuntime: ptr[int64](-1), RealtimePeriod: ptr[uint64](100000)}),
			want: ws("cpu.rt_runtime_us", "-1", "cpu.rt_period_us", "100000")},
		{name: "rt: from -1, period first", r: cpu(specs.LinuxCPU{RealtimeRuntime: ptr[int64](5000), RealtimePeriod: ptr[uint64](100000)}),
			files: with(defaults, "cpu.rt_runtime_us", "-1"), want: ws("cpu.rt_period_us", "100000", "cpu.rt_runtime_us", "5000")},
		{name: "rt runtime below -1", r: cpu(specs.LinuxCPU{RealtimeRuntime: ptr[int64](-2)}), err: "realtimeRuntime: -2"},
		{name: "missing file", r: cpu(specs.LinuxCPU{Quota: ptr[int64](1000), Period: ptr[uint64](1000)}),
			files: with(defaults, "cpu.cfs_quota_us", ""), err: "read cpu.cfs_quota_us"},
		{name: "pids", r: pids(5), want: ws("pids.max", "5")},
	})
}

func TestLessRatio(t *testing.T) {
	for _, tc := range []struct {
		a, b, c, d uint64
		want       bool
	}{
		{1, 2, 1, 2, true},
		{1, 3, 1, 2, true},
		{1, 2, 1, 3, false},
		{0, 5, 0, 7, true},
		// Products beyond 64 bits.
		{math.MaxUint64, math.MaxUint64 - 1, math.MaxUint64, math.MaxUint64, false},
		{math.MaxUint64 - 1, math.MaxUint64, math.MaxUint64, math.MaxUint64, true},
	} {
		if got := lessRatio(tc.a, tc.b, tc.c, tc.d); got != tc.want {
			t.Errorf("lessRatio(%d/%d <= %d/%d) = %v", tc.a, tc.b, tc.c, tc.d, got)
		}
	}
}

// ---- Set on a fake cgroup2 directory ----

// fakeV2 makes a plain directory laid out like a cgroup2 cgroup with the
// given controllers, and a Cgroup on it.
func fakeV2(t *testing.T, controllers string) (*Cgroup, string) {
	t.Helper()
	dir := t.TempDir()
	for f, v := range map[string]string{
		"cgroup.controllers": controllers, "memory.max": "max", "memory.swap.max": "max", "memory.low": "0",
		"memory.current": "4096", "cpu.max": "max 100000", "cpu.weight": "100", "cpu.max.burst": "0", "cpu.idle": "0",
		"cpuset.cpus": "", "cpuset.mems": "", "pids.max": "max",
	} {
		if err := os.WriteFile(filepath.Join(dir, f), []byte(v+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return &Cgroup{mode: V2, paths: Paths{KeyUnified: dir}, v2: dir, cloneFD: -1}, dir
}

func readFiles(t *testing.T, dir string, files ...string) map[string]string {
	t.Helper()
	m := map[string]string{}
	for _, f := range files {
		b, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		m[f] = strings.TrimSpace(string(b))
	}
	return m
}

// TestSetV2FakeDir runs Set against a fake cgroup2 directory: the values
// land in the files, an update changes them down and up, and a controller
// missing from cgroup.controllers, or a write that fails, is an error that
// says what and where.
func TestSetV2FakeDir(t *testing.T) {
	c, dir := fakeV2(t, "cpuset cpu io memory hugetlb pids rdma misc")
	files := []string{"memory.max", "memory.swap.max", "memory.low", "cpu.weight", "cpu.max", "cpu.max.burst", "cpu.idle", "cpuset.cpus", "cpuset.mems", "pids.max"}
	steps := []struct {
		r    *specs.LinuxResources
		want map[string]string
	}{{
		r: &specs.LinuxResources{
			Memory: &specs.LinuxMemory{Limit: ptr[int64](64 * mi), Reservation: ptr[int64](32 * mi), Swap: ptr[int64](128 * mi)},
			CPU: &specs.LinuxCPU{Shares: ptr[uint64](1024), Quota: ptr[int64](50000), Period: ptr[uint64](100000),
				Burst: ptr[uint64](10000), Cpus: "0-1", Mems: "0"},
			Pids: &specs.LinuxPids{Limit: ptr[int64](10)},
			// No devices: on cgroup2 they are a BPF program, which a
			// fake directory cannot take (devices_host_test.go).
		},
		want: map[string]string{"memory.max": "67108864", "memory.swap.max": "67108864", "memory.low": "33554432",
			"cpu.weight": "39", "cpu.max": "50000 100000", "cpu.max.burst": "10000", "cpu.idle": "0",
			"cpuset.cpus": "0-1", "cpuset.mems": "0", "pids.max": "10"},
	}, {
		// update: down
		r: &specs.LinuxResources{
			Memory: &specs.LinuxMemory{Limit: ptr[int64](16 * mi), Swap: ptr[int64](16 * mi)},
			CPU:    &specs.LinuxCPU{Quota: ptr[int64](20000), Burst: ptr[uint64](5000), Idle: ptr[int64](1), Shares: ptr[uint64](2)},
			Pids:   &specs.LinuxPids{Limit: ptr[int64](0)},
		},
		want: map[string]string{"memory.max": "16777216", "memory.swap.max": "0", "memory.low": "33554432",
			"cpu.weight": "1", "cpu.max": "20000", "cpu.max.burst": "5000", "cpu.idle": "1",
			"cpuset.cpus": "0-1", "cpuset.mems": "0", "pids.max": "1"},
	}, {
		// update: up, and unlimited
		r: &specs.LinuxResources{
			Memory: &specs.LinuxMemory{Limit: ptr[int64](-1)},
			CPU:    &specs.LinuxCPU{Quota: ptr[int64](-1), Period: ptr[uint64](50000), Idle: ptr[int64](0)},
			Pids:   &specs.LinuxPids{Limit: ptr[int64](-1)},
		},
		want: map[string]string{"memory.max": "max", "memory.swap.max": "max", "memory.low": "33554432",
			"cpu.weight": "1", "cpu.max": "max 50000", "cpu.max.burst": "5000", "cpu.idle": "0",
			"cpuset.cpus": "0-1", "cpuset.mems": "0", "pids.max": "max"},
	}}
	for i, s := range steps {
		if err := c.Set(s.r); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		if got := readFiles(t, dir, files...); !reflect.DeepEqual(got, s.want) {
			t.Errorf("step %d:\n got %v\nwant %v", i, got, s.want)
		}
	}
	if err := c.Set(nil); err != nil {
		t.Errorf("Set(nil): %v", err)
	}

	// A write that fails names file, value and directory, and wraps the
	// errno.
	if err := os.Remove(filepath.Join(dir, "pids.max")); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "pids.max"), 0o755); err != nil {
		t.Fatal(err)
	}
	err := c.Set(pids(7))
	if want := "cgroups: set pids.max to 7 in " + dir + ": is a directory"; err == nil || err.Error() != want {
		t.Errorf("error %v, want %q", err, want)
	}
	if !errors.Is(err, unix.EISDIR) {
		t.Errorf("error %v does not wrap the errno", err)
	}

	// Controllers missing from cgroup.controllers.
	c2, dir2 := fakeV2(t, "cpu io")
	for _, tc := range []struct {
		r    *specs.LinuxResources
		want string
	}{
		{mem(specs.LinuxMemory{Limit: ptr[int64](mi)}), "cgroups: memory controller not enabled in " + dir2 + ` (cgroup.controllers has "cpu io")`},
		{pids(3), "cgroups: pids controller not enabled in " + dir2},
		{cpu(specs.LinuxCPU{Cpus: "0"}), "cgroups: cpuset controller not enabled in " + dir2},
		// A value that needs a current one to plan still says what is missing.
		{mem(specs.LinuxMemory{Swap: ptr[int64](mi)}), "cgroups: memory controller not enabled in " + dir2},
	} {
		err := c2.Set(tc.r)
		if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("Set: %v\nwant an error starting %q", err, tc.want)
		}
	}
	// Nothing asked of the missing controllers: fine.
	if err := c2.Set(&specs.LinuxResources{Memory: &specs.LinuxMemory{DisableOOMKiller: ptr(false)}, CPU: &specs.LinuxCPU{Shares: ptr[uint64](1024)}}); err != nil {
		t.Errorf("Set: %v", err)
	}
	if got := readFiles(t, dir2, "cpu.weight")["cpu.weight"]; got != "39" {
		t.Errorf("cpu.weight %q, want 39", got)
	}
	// Validation errors come first, whatever is enabled.
	if err := c2.Set(mem(specs.LinuxMemory{DisableOOMKiller: ptr(true)})); !errors.Is(err, errors.ErrUnsupported) {
		t.Errorf("disableOOMKiller on cgroup2: %v, want ErrUnsupported", err)
	}
}
