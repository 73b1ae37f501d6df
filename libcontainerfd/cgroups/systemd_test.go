package cgroups

import (
	"fmt"
	"math"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func TestExpandSlice(t *testing.T) {
	for _, tc := range []struct{ in, want, err string }{
		{in: "system.slice", want: "/system.slice"},
		{in: "-.slice", want: "/"},
		{in: "a-b-c.slice", want: "/a.slice/a-b.slice/a-b-c.slice"},
		{in: "machine-ctrs.slice", want: "/machine.slice/machine-ctrs.slice"},
		{in: ".slice", err: "not a slice unit name"},
		{in: "system", err: "not a slice unit name"},
		{in: "a/b.slice", err: "not a slice unit name"},
		{in: "-a.slice", err: "empty level"},
		{in: "a--b.slice", err: "empty level"},
		{in: "a-.slice", err: "empty level"},
	} {
		got, err := ExpandSlice(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("ExpandSlice(%q) = %q, %v; want error %q", tc.in, got, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("ExpandSlice(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

func TestParseUnit(t *testing.T) {
	for _, tc := range []struct{ in, name, slice, path, err string }{
		{in: "system.slice:containerfd:web", name: "containerfd-web.scope", slice: "system.slice", path: "/system.slice/containerfd-web.scope"},
		{in: ":containerfd:web", name: "containerfd-web.scope", slice: "system.slice", path: "/system.slice/containerfd-web.scope"},
		{in: "machine-ctrs.slice::web", name: "web.scope", slice: "machine-ctrs.slice", path: "/machine.slice/machine-ctrs.slice/web.scope"},
		{in: "a.slice:x:a-b.slice", name: "a-b.slice", slice: "a.slice", path: "/a.slice/a-b.slice"},
		{in: "-.slice:p:n", name: "p-n.scope", slice: "-.slice", path: "/p-n.scope"},
		{in: "/ctrs/web", err: `wants "slice:prefix:name"`},
		{in: "a:b:c:d", err: `wants "slice:prefix:name"`},
		{in: "system:p:n", err: "not a slice unit name"},
		{in: "system.slice:p:", err: "empty name"},
		{in: "system.slice:p:we b", err: `no ' ' in a unit name`},
		{in: "system.slice:p:" + strings.Repeat("x", 260), err: "longer than systemd's 255 bytes"},
		{in: "a.slice:x:b-c.slice", err: "not a child of a.slice"},
		{in: "a.slice:x:a--b.slice", err: "empty level"},
	} {
		u, err := ParseUnit(tc.in)
		var path string
		if err == nil {
			path, err = u.CgroupPath()
		}
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("ParseUnit(%q) = %+v %q, %v; want error %q", tc.in, u, path, err, tc.err)
			}
			continue
		}
		if err != nil || u.Name != tc.name || u.Slice != tc.slice || path != tc.path {
			t.Errorf("ParseUnit(%q) = %+v %q, %v; want %s in %s at %s", tc.in, u, path, err, tc.name, tc.slice, tc.path)
		}
	}
}

func TestListToBits(t *testing.T) {
	for in, want := range map[string]string{"0": "[1]", "0-3,8": "[15 1]", "1,3": "[10]", "9-10": "[0 6]"} {
		got, err := listToBits(in)
		if err != nil || fmt.Sprint(got) != want {
			t.Errorf("listToBits(%q) = %v, %v; want %s", in, got, err, want)
		}
	}
	for _, in := range []string{"", "a", "3-1", "1-", "0,,1"} {
		if got, err := listToBits(in); err == nil {
			t.Errorf("listToBits(%q) = %v, want an error", in, got)
		}
	}
}

// props renders properties as "Name=value" for comparison.
func props(t *testing.T, r *specs.LinuxResources, v2 bool) string {
	t.Helper()
	ps, err := unitProperties(r, v2)
	if err != nil {
		t.Fatalf("unitProperties: %v", err)
	}
	var out []string
	for _, p := range ps {
		out = append(out, p.Name+"="+fmt.Sprint(p.Value.Value()))
	}
	return strings.Join(out, " ")
}

func TestUnitProperties(t *testing.T) {
	i64 := func(v int64) *int64 { return &v }
	u64 := func(v uint64) *uint64 { return &v }
	max := fmt.Sprint(uint64(math.MaxUint64))
	r := &specs.LinuxResources{
		Memory:  &specs.LinuxMemory{Limit: i64(64 << 20), Reservation: i64(32 << 20), Swap: i64(96 << 20)},
		CPU:     &specs.LinuxCPU{Shares: u64(1024), Quota: i64(12345), Period: u64(100000), Cpus: "0-1", Mems: "0"},
		Pids:    &specs.LinuxPids{Limit: i64(100)},
		BlockIO: &specs.LinuxBlockIO{Weight: func(v uint16) *uint16 { return &v }(500)},
	}
	// The quota, 123.45ms a second, goes up to systemd's next percent.
	want := "MemoryMax=67108864 MemoryLow=33554432 MemorySwapMax=33554432 CPUWeight=39 CPUQuotaPeriodUSec=100000 CPUQuotaPerSecUSec=130000 AllowedCPUs=[3] AllowedMemoryNodes=[1] TasksMax=100 IOWeight=4950"
	if got := props(t, r, true); got != want {
		t.Errorf("v2:\n got %s\nwant %s", got, want)
	}
	want = "MemoryLimit=67108864 CPUShares=1024 CPUQuotaPeriodUSec=100000 CPUQuotaPerSecUSec=130000 TasksMax=100 BlockIOWeight=500"
	if got := props(t, r, false); got != want {
		t.Errorf("v1:\n got %s\nwant %s", got, want)
	}
	unlimited := &specs.LinuxResources{
		Memory: &specs.LinuxMemory{Limit: i64(-1)},
		CPU:    &specs.LinuxCPU{Quota: i64(-1)},
		Pids:   &specs.LinuxPids{Limit: i64(-1)},
	}
	want = "MemoryMax=" + max + " MemorySwapMax=" + max + " CPUQuotaPerSecUSec=" + max + " TasksMax=" + max
	if got := props(t, unlimited, true); got != want {
		t.Errorf("unlimited:\n got %s\nwant %s", got, want)
	}
	// unified keys systemd has a property for go as that property too, and
	// win over the translated value.
	uni := &specs.LinuxResources{
		Memory: &specs.LinuxMemory{Limit: i64(64 << 20)},
		Unified: map[string]string{"memory.high": "50331648", "memory.max": "max", "cpu.max": "max 50000", "pids.max": "7",
			"cpu.weight": "300", "cpuset.cpus": "0", "io.weight": "default 200", "memory.oom.group": "1"},
	}
	want = "CPUQuotaPeriodUSec=50000 CPUQuotaPerSecUSec=" + max + " CPUWeight=300 AllowedCPUs=[1] IOWeight=200 MemoryHigh=50331648 MemoryMax=" + max + " TasksMax=7"
	if got := props(t, uni, true); got != want {
		t.Errorf("unified:\n got %s\nwant %s", got, want)
	}
	if got := props(t, &specs.LinuxResources{Unified: map[string]string{"cpu.max": "25000 100000", "io.weight": "default 100\n8:0 300"}}, true); got != "CPUQuotaPeriodUSec=100000 CPUQuotaPerSecUSec=250000" {
		t.Errorf("unified cpu.max, per-device io.weight: %s", got)
	}
	// pids 0 is a real limit systemd cannot take: 1, as runc sets it.
	if got := props(t, &specs.LinuxResources{Pids: &specs.LinuxPids{Limit: i64(0)}}, true); got != "TasksMax=1" {
		t.Errorf("pids 0: %s, want TasksMax=1", got)
	}
	for _, bad := range []*specs.LinuxResources{
		{CPU: &specs.LinuxCPU{Shares: u64(1)}},
		{CPU: &specs.LinuxCPU{Quota: i64(-5)}},
		{CPU: &specs.LinuxCPU{Cpus: "1-0"}},
		{Memory: &specs.LinuxMemory{Limit: i64(100), Swap: i64(50)}},
		{Devices: []specs.LinuxDeviceCgroup{{Allow: true, Type: "x"}}},
		{Unified: map[string]string{"memory.high": "lots"}},
		{Unified: map[string]string{"cpu.max": "1 2 3"}},
		{Unified: map[string]string{"cpuset.cpus": "x"}},
	} {
		if ps, err := unitProperties(bad, true); err == nil {
			t.Errorf("unitProperties(%+v) = %v, want an error", bad, ps)
		}
	}
}

func TestDeviceProperties(t *testing.T) {
	i64 := func(v int64) *int64 { return &v }
	rules := []specs.LinuxDeviceCgroup{
		{Allow: false, Access: "rwm"},
		{Allow: true, Type: "c", Major: i64(1), Minor: i64(3), Access: "rw"},
		{Allow: true, Type: "c", Access: "m"},
		{Allow: true, Type: "c", Major: i64(1), Access: "r"},    // mem, by name
		{Allow: true, Type: "c", Major: i64(4095), Access: "r"}, // no such major: nothing
	}
	ps, err := deviceProperties(rules)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, p := range ps {
		got = append(got, p.Name+"="+fmt.Sprint(p.Value.Value()))
	}
	want := "DevicePolicy=strict DeviceAllow=[] DeviceAllow=[{char-* m} {char-mem r} {/dev/char/1:3 rw}]"
	if strings.Join(got, " ") != want {
		t.Errorf("got  %s\nwant %s", strings.Join(got, " "), want)
	}
	// Allow all but some: systemd has no deny list; only our filter.
	if ps, err := deviceProperties([]specs.LinuxDeviceCgroup{{Allow: true, Access: "rwm"}, {Allow: false, Type: "c", Major: i64(1), Minor: i64(3), Access: "rwm"}}); err != nil || len(ps) != 0 {
		t.Errorf("allow-by-default list: %v, %v; want no properties", ps, err)
	}
}

func TestAnnotationProperties(t *testing.T) {
	ps, err := AnnotationProperties(map[string]string{
		"org.systemd.property.TimeoutStopSec": "uint64 5",
		"org.systemd.property.RuntimeMaxSec":  "1.5",
		"org.systemd.property.CollectMode":    "'inactive-or-failed'",
		"org.systemd.property.TasksMax":       "uint64 9",
		"com.example.other":                   "anything",
	})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, p := range ps {
		got = append(got, p.Name+"="+p.Value.String())
	}
	want := `CollectMode="inactive-or-failed" RuntimeMaxUSec=@t 1500000 TasksMax=@t 9 TimeoutStopUSec=@t 5000000`
	if strings.Join(got, " ") != want {
		t.Errorf("got  %s\nwant %s", strings.Join(got, " "), want)
	}
	for k, v := range map[string]string{
		"org.systemd.property.":            "uint64 1",
		"org.systemd.property.lower":       "uint64 1",
		"org.systemd.property.Bad-Name":    "uint64 1",
		"org.systemd.property.TasksMax":    "not a variant",
		"org.systemd.property.TimeoutSec":  "'five'",
		"org.systemd.property.TimeoutSec ": "uint64 1",
	} {
		if ps, err := AnnotationProperties(map[string]string{k: v}); err == nil || !strings.Contains(err.Error(), k) {
			t.Errorf("%s=%q: %v, %v; want an error naming it", k, v, ps, err)
		}
	}
}
