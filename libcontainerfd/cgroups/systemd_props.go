package cgroups

import (
	"errors"
	"fmt"
	"maps"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"

	sddbus "github.com/coreos/go-systemd/v22/dbus"
	"github.com/godbus/dbus/v5"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// The systemd driver hands systemd, as unit properties, every limit systemd
// has a property for: systemd writes those cgroup files itself whenever it
// (re)applies the unit (at start, on SetUnitProperties, on daemon-reload),
// and would put back its own value (often its default) over one we wrote. The
// rest of linux.resources is written to the files directly, which Delegate=yes
// makes legal.

// infinity is what systemd takes for "no limit" in a uint64 property.
const infinity = uint64(math.MaxUint64)

func prop(name string, v any) sddbus.Property {
	return sddbus.Property{Name: name, Value: dbus.MakeVariant(v)}
}

// limitValue converts a spec limit (-1 unlimited) to a systemd one.
func limitValue(v int64) uint64 {
	if v < 0 {
		return infinity
	}
	return uint64(v)
}

// unitProperties returns the properties that carry r for a unit whose
// controllers are cgroup2's (v2) or v1's. It checks what it reads (a bad
// value is an error naming its field) and reads /proc/devices for device
// rules with a wildcard minor number.
func unitProperties(r *specs.LinuxResources, v2 bool) ([]sddbus.Property, error) {
	if r == nil {
		return nil, nil
	}
	var ps []sddbus.Property
	if m := r.Memory; m != nil {
		limit, swap, reservation, err := memoryLimits(m)
		if err != nil {
			return nil, err
		}
		if v2 {
			if limit != 0 {
				ps = append(ps, prop("MemoryMax", limitValue(limit)))
			}
			if reservation != 0 {
				ps = append(ps, prop("MemoryLow", limitValue(reservation)))
			}
			sw, err := swapV2(swap, limit)
			if err != nil {
				return nil, err
			}
			if sw != 0 {
				ps = append(ps, prop("MemorySwapMax", limitValue(sw)))
			}
		} else if limit != 0 {
			ps = append(ps, prop("MemoryLimit", limitValue(limit)))
		}
	}
	if c := r.CPU; c != nil {
		if c.Shares != nil && *c.Shares != 0 {
			s := *c.Shares
			if s < minShares || s > maxShares {
				return nil, fmt.Errorf("cgroups: linux.resources.cpu.shares %d: out of [%d, %d]", s, minShares, maxShares)
			}
			if v2 {
				ps = append(ps, prop("CPUWeight", sharesToWeight(s)))
			} else {
				ps = append(ps, prop("CPUShares", s))
			}
		}
		var quota int64
		if c.Quota != nil {
			quota = *c.Quota
		}
		var period uint64
		if c.Period != nil {
			period = *c.Period
		}
		if period != 0 {
			ps = append(ps, prop("CPUQuotaPeriodUSec", period))
		}
		switch {
		case quota == -1:
			ps = append(ps, prop("CPUQuotaPerSecUSec", infinity))
		case quota > 0:
			if period == 0 {
				period = 100000 // the kernel's default cfs period
			}
			// systemd keeps the quota as a percentage of a CPU (1% = 10ms a
			// second): round up, so the cgroup gets at least what was asked.
			perSec := uint64(quota) * 1000000 / period
			if perSec%10000 != 0 {
				perSec = (perSec/10000 + 1) * 10000
			}
			ps = append(ps, prop("CPUQuotaPerSecUSec", perSec))
		case quota < -1:
			return nil, fmt.Errorf("cgroups: linux.resources.cpu.quota %d: negative", quota)
		}
		if v2 {
			for _, f := range []struct{ field, name, list string }{{"cpus", "AllowedCPUs", c.Cpus}, {"mems", "AllowedMemoryNodes", c.Mems}} {
				if f.list == "" {
					continue
				}
				bits, err := listToBits(f.list)
				if err != nil {
					return nil, fmt.Errorf("cgroups: linux.resources.cpu.%s %q: %w", f.field, f.list, err)
				}
				ps = append(ps, prop(f.name, bits))
			}
		}
	}
	if p := r.Pids; p != nil && p.Limit != nil {
		ps = append(ps, prop("TasksMax", limitValue(pidsLimit(*p.Limit))))
	}
	if b := r.BlockIO; b != nil && b.Weight != nil && *b.Weight != 0 {
		if err := checkBlkioWeight("linux.resources.blockIO.weight", *b.Weight); err != nil {
			return nil, err
		}
		if v2 {
			ps = append(ps, prop("IOWeight", blkioToIOWeight(*b.Weight)))
		} else {
			ps = append(ps, prop("BlockIOWeight", uint64(*b.Weight)))
		}
	}
	if v2 {
		// unified is written last, so it wins over the translated values:
		// so too as properties.
		ups, err := unifiedProperties(r.Unified)
		if err != nil {
			return nil, err
		}
		for _, p := range ups {
			ps = slices.DeleteFunc(ps, func(q sddbus.Property) bool { return q.Name == p.Name })
		}
		ps = append(ps, ups...)
	}
	dev, err := deviceProperties(r.Devices)
	if err != nil {
		return nil, err
	}
	return append(ps, dev...), nil
}

// unifiedKeys are the cgroup2 files of linux.resources.unified that systemd
// has a property for, and so would put back on its own: they go as that
// property too.
var unifiedKeys = map[string]string{
	"memory.min": "MemoryMin", "memory.low": "MemoryLow", "memory.high": "MemoryHigh",
	"memory.max": "MemoryMax", "memory.swap.max": "MemorySwapMax",
	"pids.max": "TasksMax", "cpu.weight": "CPUWeight", "io.weight": "IOWeight",
	"cpuset.cpus": "AllowedCPUs", "cpuset.mems": "AllowedMemoryNodes",
	"cpu.max": "CPUQuotaPerSecUSec",
}

// unifiedProperties returns the properties for the keys of u in
// unifiedKeys, in key order; the files are still written as they are.
func unifiedProperties(u map[string]string) ([]sddbus.Property, error) {
	keys := slices.Sorted(maps.Keys(u))
	var ps []sddbus.Property
	for _, k := range keys {
		name, ok := unifiedKeys[k]
		if !ok {
			continue
		}
		v := strings.TrimSpace(u[k])
		bad := func(err error) error {
			return fmt.Errorf("cgroups: linux.resources.unified[%q] %q: %w", k, u[k], err)
		}
		num := func(s string) (uint64, error) {
			if s == "max" {
				return infinity, nil
			}
			return strconv.ParseUint(s, 10, 64)
		}
		switch k {
		case "cpuset.cpus", "cpuset.mems":
			bits, err := listToBits(v)
			if err != nil {
				return nil, bad(err)
			}
			ps = append(ps, prop(name, bits))
		case "cpu.max":
			// "QUOTA [PERIOD]", as in the file.
			f := strings.Fields(v)
			if len(f) < 1 || len(f) > 2 {
				return nil, bad(errors.New("want \"QUOTA [PERIOD]\""))
			}
			period := uint64(100000)
			if len(f) == 2 {
				p, err := strconv.ParseUint(f[1], 10, 64)
				if err != nil || p == 0 {
					return nil, bad(errors.New("bad period"))
				}
				period = p
				ps = append(ps, prop("CPUQuotaPeriodUSec", period))
			}
			quota, err := num(f[0])
			if err != nil {
				return nil, bad(err)
			}
			if quota != infinity {
				quota = quota * 1000000 / period
				if quota%10000 != 0 {
					quota = (quota/10000 + 1) * 10000
				}
			}
			ps = append(ps, prop(name, quota))
		case "io.weight":
			// Only the default weight, "N" or "default N"; per-device
			// weights stay in the file alone.
			w, ok := strings.CutPrefix(v, "default ")
			if strings.Contains(w, "\n") || strings.Contains(w, ":") {
				continue
			}
			if !ok && strings.Contains(w, " ") {
				return nil, bad(errors.New("not a weight"))
			}
			n, err := strconv.ParseUint(strings.TrimSpace(w), 10, 64)
			if err != nil {
				return nil, bad(err)
			}
			ps = append(ps, prop(name, n))
		default:
			n, err := num(v)
			if err != nil {
				return nil, bad(err)
			}
			ps = append(ps, prop(name, n))
		}
	}
	return ps, nil
}

// deviceAllow is one entry of systemd's DeviceAllow (a(ss)).
type deviceAllow struct {
	Path, Access string
}

// deviceProperties turns the device list into DevicePolicy=strict and a
// DeviceAllow list, so that systemd's own device filter (a second BPF
// program on cgroup2, devices.allow on v1) allows what ours allows. A list
// that allows every device by default systemd cannot express (it has no
// deny list): then it gets no device properties and only our filter
// enforces the list. An empty list sets nothing, as in Set.
func deviceProperties(rules []specs.LinuxDeviceCgroup) ([]sddbus.Property, error) {
	if len(rules) == 0 {
		return nil, nil
	}
	f, err := newDeviceFilter(rules)
	if err != nil {
		return nil, err
	}
	if f.defaultAllow {
		return nil, nil
	}
	allow := []deviceAllow{}
	var names map[devKey]string
	for _, e := range f.sorted() {
		kind := map[byte]string{'c': "char", 'b': "block"}[e.typ]
		var p string
		switch {
		case e.major == wildcard:
			p = kind + "-*"
		case e.minor == wildcard:
			// systemd names a whole major by its driver name.
			if names == nil {
				if names, err = procDevices(); err != nil {
					return nil, err
				}
			}
			name, ok := names[devKey{e.typ, e.major, wildcard}]
			if !ok {
				// Not a major this kernel has: nothing to allow.
				continue
			}
			p = kind + "-" + name
		default:
			p = fmt.Sprintf("/dev/%s/%d:%d", kind, e.major, e.minor)
		}
		allow = append(allow, deviceAllow{p, e.access.String()})
	}
	// A DeviceAllow list adds to the one the unit has, and an empty one
	// clears it: clear, then set, so that an update replaces the list.
	return []sddbus.Property{prop("DevicePolicy", "strict"), prop("DeviceAllow", []deviceAllow{}), prop("DeviceAllow", allow)}, nil
}

// procDevices reads the driver names of /proc/devices by type and major.
func procDevices() (map[devKey]string, error) {
	b, err := os.ReadFile("/proc/devices")
	if err != nil {
		return nil, fmt.Errorf("cgroups: device names for systemd: %w", err)
	}
	out := map[devKey]string{}
	var typ byte
	for _, line := range strings.Split(string(b), "\n") {
		switch line {
		case "Character devices:":
			typ = 'c'
			continue
		case "Block devices:":
			typ = 'b'
			continue
		}
		f := strings.Fields(line)
		if len(f) != 2 || typ == 0 {
			continue
		}
		major, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			continue
		}
		if _, dup := out[devKey{typ, major, wildcard}]; !dup {
			out[devKey{typ, major, wildcard}] = f[1]
		}
	}
	return out, nil
}

// listToBits turns a cpuset list such as "0-3,8" into systemd's bit mask
// (AllowedCPUs, AllowedMemoryNodes): byte i, bit j is number 8i+j.
func listToBits(list string) ([]byte, error) {
	var bits []byte
	for _, part := range strings.Split(strings.TrimSpace(list), ",") {
		lo, hi, isRange := strings.Cut(part, "-")
		a, err := strconv.ParseUint(lo, 10, 16)
		if err != nil {
			return nil, fmt.Errorf("bad number %q", lo)
		}
		b := a
		if isRange {
			if b, err = strconv.ParseUint(hi, 10, 16); err != nil {
				return nil, fmt.Errorf("bad number %q", hi)
			}
			if b < a {
				return nil, fmt.Errorf("range %q goes down", part)
			}
		}
		for n := a; n <= b; n++ {
			for uint64(len(bits)) <= n/8 {
				bits = append(bits, 0)
			}
			bits[n/8] |= 1 << (n % 8)
		}
	}
	return bits, nil
}

// withoutUnitLimits returns a copy of r without the limits unitProperties
// gives systemd whose controller the cgroup does not have: systemd keeps
// such a property (and applies it once the controller is there) while the
// file to write does not exist. Every other limit stays, to be written to
// the files.
func (c *Cgroup) withoutUnitLimits(r *specs.LinuxResources) *specs.LinuxResources {
	if r == nil {
		return nil
	}
	out := *r
	missing := func(ctl, v2ctl string) bool {
		_, _, err := c.controllerDir(ctl, v2ctl)
		return err != nil
	}
	v2 := c.mode == V2
	if m := r.Memory; m != nil && missing("memory", "memory") {
		mm := *m
		mm.Limit = nil
		if v2 {
			mm.Reservation, mm.Swap = nil, nil
		}
		out.Memory = &mm
	}
	if cpu := r.CPU; cpu != nil {
		cc := *cpu
		if missing("cpu", "cpu") {
			cc.Shares, cc.Quota, cc.Period = nil, nil, nil
		}
		if v2 && missing("cpuset", "cpuset") {
			cc.Cpus, cc.Mems = "", ""
		}
		out.CPU = &cc
	}
	if p := r.Pids; p != nil && p.Limit != nil && missing("pids", "pids") {
		out.Pids = nil
	}
	if b := r.BlockIO; b != nil && b.Weight != nil && missing("blkio", "io") {
		bb := *b
		bb.Weight = nil
		out.BlockIO = &bb
	}
	if v2 && len(r.Unified) > 0 {
		out.Unified = map[string]string{}
		for k, v := range r.Unified {
			ctl, _, _ := strings.Cut(k, ".")
			if _, prop := unifiedKeys[k]; prop && missing(ctl, ctl) {
				continue
			}
			out.Unified[k] = v
		}
	}
	return &out
}

// AnnotationPrefix starts the name of an annotation that sets a unit
// property, as in runc: "org.systemd.property.TimeoutStopUSec" with the
// value "uint64 5000000", in GVariant text form.
const AnnotationPrefix = "org.systemd.property."

// AnnotationProperties returns the unit properties the annotations set, in
// name order. A name must look like a property name ("CollectMode"); its
// value is parsed as a GVariant. A name ending in "Sec" (not "USec") takes a
// number of seconds and is passed on as the "USec" property systemd has, as
// runc does. Errors name the annotation.
func AnnotationProperties(annotations map[string]string) ([]sddbus.Property, error) {
	var ps []sddbus.Property
	for _, k := range slices.Sorted(maps.Keys(annotations)) {
		name, ok := strings.CutPrefix(k, AnnotationPrefix)
		if !ok {
			continue
		}
		bad := func(err error) error {
			return fmt.Errorf("cgroups: annotations[%q] %q: %w", k, annotations[k], err)
		}
		if !propertyName(name) {
			return nil, bad(errors.New("not a property name (a capital letter, then letters and digits)"))
		}
		v, err := dbus.ParseVariant(annotations[k], dbus.Signature{})
		if err != nil {
			return nil, bad(err)
		}
		if strings.HasSuffix(name, "Sec") && !strings.HasSuffix(name, "USec") {
			var sec float64
			switch n := v.Value().(type) {
			case uint8, uint16, uint32, uint64, int16, int32, int64:
				sec, _ = strconv.ParseFloat(fmt.Sprint(n), 64)
			case float64:
				sec = n
			default:
				return nil, bad(errors.New("a ...Sec property takes a number of seconds"))
			}
			if sec < 0 || sec*1e6 >= math.MaxUint64 {
				return nil, bad(errors.New("out of range"))
			}
			name = strings.TrimSuffix(name, "Sec") + "USec"
			v = dbus.MakeVariant(uint64(math.Round(sec * 1e6)))
		}
		ps = append(ps, sddbus.Property{Name: name, Value: v})
	}
	return ps, nil
}

func propertyName(s string) bool {
	if s == "" || s[0] < 'A' || s[0] > 'Z' {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
			return false
		}
	}
	return true
}
