package cgroups

import (
	"errors"
	"fmt"
	"io/fs"
	"math"
	"math/bits"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// Set applies the resource limits r (an OCI config's linux.resources) to the
// cgroup. It is used both when a container is created and by update on a
// running one, so limits may go up or down: where the kernel checks one file
// against another (memory against memory+swap, quota against period and
// burst, in v1 also against the parent's quota), Set orders its writes from
// the current values so that every step is valid.
//
// Each controller is written where it lives: in its v1 hierarchy (V1 and
// Hybrid modes), else in the cgroup2 directory, translated the way runc and
// crun do (memory.max, cpu.weight, cpu.max …). A controller that r asks
// something of but that is neither mounted as v1 nor enabled in the cgroup2
// directory (cgroup.controllers) is an error naming it.
//
// Applied: memory (limit, reservation, swap, swappiness, disableOOMKiller,
// checkBeforeUpdate), cpu (shares, quota, period, burst, realtimeRuntime,
// realtimePeriod, idle, cpus, mems), pids (limit), blockIO, hugepageLimits,
// rdma, network, unified and devices. As in runc, a zero memory limit, swap,
// reservation, cpu shares, quota, period, realtime value, blkio weight or
// net_cls classID means "not set", and -1 means unlimited. A pids limit of 0
// is a real limit (runtime-spec 1.3), written as 1 as runc writes it; -1 is
// "max". Ignored:
// memory.kernel and memory.kernelTCP (deprecated; runc ignores them too),
// memory.useHierarchy (always on in current kernels), memory.swappiness on
// cgroup2 (no such knob).
//
// blockIO goes to v1 blkio (blkio.weight or, without CFQ, blkio.bfq.weight
// and their weight_device files; blkio.leaf_weight*; blkio.throttle.*) or to
// cgroup2 io (io.bfq.weight as is, else io.weight converted from the blkio
// range 10-1000 to 1-10000 as 1 + (w-10)*9999/990; io.max lines "MAJ:MIN
// rbps=… wbps=… riops=… wiops=…", a rate of 0 being no limit as in v1). Leaf
// weights were CFQ's: an error where there is no blkio.leaf_weight, and on
// cgroup2. hugepageLimits go to hugetlb.<size>.limit_in_bytes (v1) or
// hugetlb.<size>.max (cgroup2), and the same limit to the .rsvd. variant of
// the file where the kernel has it, as runc; the page size must be one the
// host has (/sys/kernel/mm/hugepages), even for a limit of 0, as in runc. rdma
// goes to rdma.max, one "DEV hca_handle=N hca_object=M" line per device.
// network goes to v1 net_cls.classid and net_prio.ifpriomap; cgroup2 has no
// such controllers, so there it is an error wrapping errors.ErrUnsupported.
// unified (cgroup2 files, written last, so they win over the translated
// values) is applied in V2 mode only, as runc (hybrid too is an error); see
// unifiedWrites for the keys it refuses.
//
// Devices (the allowed device list) are applied in order, later rules
// winning, starting from "deny every device" (see devices.go for the exact
// rules); an empty list leaves the cgroup's devices as they are. Where there
// is a v1 devices hierarchy (V1, Hybrid) Set writes devices.deny and
// devices.allow (see devicesV1Writes for the sequence; an update of a
// deny-by-default list only adds and removes exceptions) and checks the
// outcome in devices.list. Where there is a cgroup2 directory (V2, Hybrid)
// it compiles the list into a BPF_PROG_TYPE_CGROUP_DEVICE program and
// attaches it to the directory, replacing the one an earlier Set attached
// (see attachDeviceProgram). In Hybrid mode it does both: the v1
// controller already enforces the list, and the program on the cgroup2
// directory enforces the same list again, which is harmless and keeps the
// cgroup2 path in use and tested.
//
// Set checks everything it can before it writes anything (for devices, the
// rules, devices.list and the kernel's verdict on the program); then it
// stops at the first write the kernel refuses, and the writes before it
// stay. Each write error names the file, the value and the directory, and
// wraps the errno.
func (c *Cgroup) Set(r *specs.LinuxResources) error {
	if r == nil {
		return nil
	}
	// Plan every controller before writing anything, so that a value that
	// is wrong anywhere changes nothing.
	type step struct {
		dir string
		ws  []fileWrite
	}
	var steps []step
	for _, ctl := range controllers {
		dir, v2, derr := c.controllerDir(ctl.name, ctl.v2name)
		var noDir error // what the planner reads when there is no dir
		if derr != nil {
			noDir = &noDirError{derr}
		}
		cur := func(file string) (string, error) {
			if derr != nil {
				return "", noDir
			}
			s, err := readFile(dir, file)
			return strings.TrimSpace(s), err
		}
		p := ctl.v1
		if v2 {
			p = ctl.v2
		}
		ws, err := p(r, cur)
		if derr != nil && (len(ws) > 0 || errors.Is(err, noDir)) {
			return derr
		}
		if err != nil {
			return err
		}
		steps = append(steps, step{dir, ws})
	}
	uws, err := unifiedWrites(r.Unified, c.mode, c.v2, func(file string) (string, error) {
		s, err := readFile(c.v2, file)
		return strings.TrimSpace(s), err
	})
	if err != nil {
		return err
	}
	steps = append(steps, step{c.v2, uws})
	dev, err := c.planDevices(r.Devices)
	if err != nil {
		return err
	}
	defer dev.close()
	for _, s := range steps {
		for _, w := range s.ws {
			if err := w.apply(s.dir); err != nil {
				return err
			}
		}
	}
	return c.applyDevices(dev)
}

// noDirError is what a planner reads from a controller that has no
// directory here: it carries the reason but, unlike that reason (which may
// wrap fs.ErrNotExist, if cgroup.controllers is missing), never reads as a
// missing file, which planners take to mean "the kernel has no such knob".
type noDirError struct{ err error }

func (e *noDirError) Error() string { return e.err.Error() }

// fileWrite is one value written to one file of a cgroup. The controller the
// file belongs to is the part of its name before the first dot.
type fileWrite struct {
	file, value string
}

func (w fileWrite) String() string { return w.file + "=" + w.value }

// apply writes w in dir, with an error that says what was written where.
func (w fileWrite) apply(dir string) error {
	err := writeRaw(filepath.Join(dir, w.file), w.value)
	if err == nil {
		return nil
	}
	if pe, ok := err.(*fs.PathError); ok {
		err = pe.Err
	}
	hint := ""
	if errors.Is(err, unix.EBUSY) && (w.file == "memory.limit_in_bytes" || w.file == "memory.memsw.limit_in_bytes") {
		// The kernel could not reclaim enough to go below the new limit.
		usageFile := strings.Replace(w.file, "limit", "usage", 1)
		if u, rerr := readFile(dir, usageFile); rerr == nil {
			hint = fmt.Sprintf(" (%s is %s)", usageFile, strings.TrimSpace(u))
		}
	}
	return fmt.Errorf("cgroups: set %s to %s in %s: %w%s", w.file, w.value, dir, err, hint)
}

// reader returns the current content of a file of the cgroup, trimmed, or
// an error (wrapping fs.ErrNotExist if there is no such file).
type reader func(file string) (string, error)

// planner turns resources into the writes for one controller, in order,
// reading current values where the order or a value depends on them. It
// writes nothing, so that it can be tested without a kernel.
type planner func(r *specs.LinuxResources, cur reader) ([]fileWrite, error)

// controllers lists, in the order Set visits them, each controller Set
// writes: its v1 name, its cgroup2 name ("" if cgroup2 has none) and its v1
// and cgroup2 planners. Devices are apart (planDevices): on cgroup2 they are
// a program, not a file. Unified is apart too (unifiedWrites), and last.
var controllers = []struct {
	name, v2name string
	v1, v2       planner
}{
	{"cpuset", "cpuset", cpusetWrites, cpusetWrites},
	{"memory", "memory", memoryV1, memoryV2},
	{"cpu", "cpu", cpuV1, cpuV2},
	{"pids", "pids", pidsWrites, pidsWrites},
	{"blkio", "io", blkioV1, ioV2},
	{"hugetlb", "hugetlb", hugetlbV1, hugetlbV2},
	{"rdma", "rdma", rdmaWrites, rdmaWrites},
	{"net_cls", "", netClsV1, netV2("classID")},
	{"net_prio", "", netPrioV1, netV2("priorities")},
}

// plan returns every write Set would make for r, with all controllers in
// cgroup v1 (v2 false) or all in cgroup2 (v2 true); cur reads any file. It
// is Set without the kernel, for tests.
func plan(r *specs.LinuxResources, v2 bool, cur reader) ([]fileWrite, error) {
	var all []fileWrite
	for _, ctl := range controllers {
		p := ctl.v1
		if v2 {
			p = ctl.v2
		}
		ws, err := p(r, cur)
		if err != nil {
			return nil, err
		}
		all = append(all, ws...)
	}
	mode := V1
	if v2 {
		mode = V2
	}
	ws, err := unifiedWrites(r.Unified, mode, "", cur)
	if err != nil {
		return nil, err
	}
	return append(all, ws...), nil
}

// controllerDir returns the directory whose files drive controller ctrl
// (v1 name; v2ctrl is its cgroup2 name, "" if cgroup2 has none), and whether
// it is the cgroup2 one: the v1 directory of ctrl if there is one, else the
// cgroup2 directory if v2ctrl is enabled there. On error, v2 still tells
// which kind of files ctrl would have had here.
func (c *Cgroup) controllerDir(ctrl, v2ctrl string) (dir string, v2 bool, err error) {
	if d, ok := c.paths[ctrl]; ok && ctrl != KeyUnified {
		return d, false, nil
	}
	if c.v2 == "" || v2ctrl == "" {
		none := ""
		if v2ctrl == "" {
			none = " (cgroup v2 has no " + ctrl + ")"
		}
		return "", c.mode == V2, fmt.Errorf("cgroups: %s controller: no v1 hierarchy of it is mounted%s", ctrl, none)
	}
	avail, err := readFile(c.v2, "cgroup.controllers")
	if err != nil {
		return "", c.mode == V2, fmt.Errorf("cgroups: %s controller: %w", v2ctrl, err)
	}
	if !slices.Contains(strings.Fields(avail), v2ctrl) {
		nor := ""
		switch {
		case c.mode == Hybrid && ctrl == v2ctrl:
			nor = ", nor mounted as a v1 hierarchy"
		case c.mode == Hybrid:
			nor = ", nor " + ctrl + " mounted as a v1 hierarchy"
		}
		return "", c.mode == V2, fmt.Errorf("cgroups: %s controller not enabled in %s (cgroup.controllers has %q)%s",
			v2ctrl, c.v2, strings.TrimSpace(avail), nor)
	}
	return c.v2, true, nil
}

// ---- memory ----

const (
	memLimit      = "memory.limit_in_bytes"
	memswLimit    = "memory.memsw.limit_in_bytes"
	memSoft       = "memory.soft_limit_in_bytes"
	maxSwappiness = 100
)

// memoryLimits returns the limit, swap (memory+swap) and reservation of m,
// 0 where unset, after checking that each is -1 or a number of bytes.
func memoryLimits(m *specs.LinuxMemory) (limit, swap, reservation int64, err error) {
	for _, f := range []struct {
		name string
		p    *int64
		v    *int64
	}{{"limit", m.Limit, &limit}, {"swap", m.Swap, &swap}, {"reservation", m.Reservation, &reservation}} {
		if f.p == nil {
			continue
		}
		if *f.p < -1 {
			return 0, 0, 0, fmt.Errorf("cgroups: linux.resources.memory.%s: %d is neither -1 (unlimited) nor a number of bytes", f.name, *f.p)
		}
		*f.v = *f.p
	}
	if swap > 0 && limit > 0 && swap < limit {
		return 0, 0, 0, fmt.Errorf("cgroups: linux.resources.memory.swap (memory+swap) %d is below linux.resources.memory.limit %d", swap, limit)
	}
	return limit, swap, reservation, nil
}

// memoryV1 writes the v1 memory files. The kernel keeps memory+swap
// (memsw) at or above memory at all times, so when both change, the one
// written first is memsw if the new memsw is at or above the current memory
// limit (it goes up, or -1), else memory (it goes down); as runc does.
func memoryV1(r *specs.LinuxResources, cur reader) ([]fileWrite, error) {
	m := r.Memory
	if m == nil {
		return nil, nil
	}
	limit, swap, reservation, err := memoryLimits(m)
	if err != nil {
		return nil, err
	}
	var ws []fileWrite
	if limit != 0 || swap != 0 {
		_, err := cur(memswLimit)
		memsw := err == nil
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("cgroups: read %s: %w", memswLimit, err)
		}
		// As runc: lifting the memory limit lifts memory+swap too.
		if limit == -1 && swap == 0 && memsw {
			swap = -1
		}
		if swap > 0 && limit == -1 {
			return nil, fmt.Errorf("cgroups: linux.resources.memory.swap (memory+swap) %d with an unlimited memory limit: v1 keeps memory+swap at or above memory", swap)
		}
		if swap != 0 && !memsw {
			return nil, fmt.Errorf("cgroups: linux.resources.memory.swap: no %s: the kernel does not account swap (swapaccount=0?): %w", memswLimit, errors.ErrUnsupported)
		}
		lw := fileWrite{memLimit, strconv.FormatInt(limit, 10)}
		sw := fileWrite{memswLimit, strconv.FormatInt(swap, 10)}
		switch {
		case limit != 0 && swap != 0:
			curLimit, err := readLimit(cur, memLimit)
			if err != nil {
				return nil, err
			}
			if swap == -1 || curLimit < swap {
				ws = append(ws, sw, lw)
			} else {
				ws = append(ws, lw, sw)
			}
		case limit != 0:
			if limit > 0 && memsw {
				curSwap, err := readLimit(cur, memswLimit)
				if err != nil {
					return nil, err
				}
				if curSwap < limit {
					return nil, fmt.Errorf("cgroups: linux.resources.memory.limit %d is above the current memory+swap limit %d (%s): set linux.resources.memory.swap too", limit, curSwap, memswLimit)
				}
			}
			ws = append(ws, lw)
		default:
			ws = append(ws, sw)
		}
		if err := checkBeforeUpdate(m, limit, swap, cur, "memory.usage_in_bytes", "memory.memsw.usage_in_bytes", true); err != nil {
			return nil, err
		}
	}
	if reservation != 0 {
		ws = append(ws, fileWrite{memSoft, strconv.FormatInt(reservation, 10)})
	}
	if m.DisableOOMKiller != nil {
		ws = append(ws, fileWrite{"memory.oom_control", map[bool]string{true: "1", false: "0"}[*m.DisableOOMKiller]})
	}
	if s := m.Swappiness; s != nil && int64(*s) != -1 { // -1, as runc: leave it
		if *s > maxSwappiness {
			return nil, fmt.Errorf("cgroups: linux.resources.memory.swappiness: %d is out of range 0-%d", *s, maxSwappiness)
		}
		ws = append(ws, fileWrite{"memory.swappiness", strconv.FormatUint(*s, 10)})
	}
	return ws, nil
}

// checkBeforeUpdate implements memory.checkBeforeUpdate: refuse a limit
// below the current usage (on cgroup2 the kernel would OOM-kill to get
// there). swapIncludesMemory says whether the swap usage file counts memory
// too (v1 memsw) or swap alone (cgroup2).
func checkBeforeUpdate(m *specs.LinuxMemory, limit, swap int64, cur reader, usageFile, swapUsageFile string, swapIncludesMemory bool) error {
	if m.CheckBeforeUpdate == nil || !*m.CheckBeforeUpdate || (limit <= 0 && swap <= 0) {
		return nil
	}
	usage, err := readLimit(cur, usageFile)
	if err != nil {
		return err
	}
	if limit > 0 && usage >= limit {
		return fmt.Errorf("cgroups: linux.resources.memory.limit %d is not above the current usage %d (checkBeforeUpdate)", limit, usage)
	}
	if swap <= 0 {
		return nil
	}
	swapUsage, err := readLimit(cur, swapUsageFile)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if !swapIncludesMemory {
		swapUsage += usage
	}
	if swapUsage >= swap {
		return fmt.Errorf("cgroups: linux.resources.memory.swap %d is not above the current memory+swap usage %d (checkBeforeUpdate)", swap, swapUsage)
	}
	return nil
}

// memoryV2 writes the cgroup2 memory files: memory.swap.max (swap alone:
// the spec's memory+swap minus memory), memory.max, memory.low.
func memoryV2(r *specs.LinuxResources, cur reader) ([]fileWrite, error) {
	m := r.Memory
	if m == nil {
		return nil, nil
	}
	if m.DisableOOMKiller != nil && *m.DisableOOMKiller {
		return nil, fmt.Errorf("cgroups: linux.resources.memory.disableOOMKiller: cgroup v2 cannot disable the OOM killer: %w", errors.ErrUnsupported)
	}
	limit, swap, reservation, err := memoryLimits(m)
	if err != nil {
		return nil, err
	}
	var ws []fileWrite
	if swap != 0 || limit == -1 {
		// Without the memory limit, the swap is computed against the
		// current one.
		memory := limit
		if memory == 0 {
			if memory, err = readLimit(cur, "memory.max"); err != nil {
				return nil, err
			}
			if memory == math.MaxInt64 {
				memory = -1
			}
		}
		swapOnly, err := swapV2(swap, memory)
		if err != nil {
			return nil, err
		}
		if swapOnly != 0 || swap > 0 {
			_, err := cur("memory.swap.max")
			switch {
			case err == nil:
				ws = append(ws, fileWrite{"memory.swap.max", v2Limit(swapOnly)})
			case !errors.Is(err, fs.ErrNotExist):
				return nil, fmt.Errorf("cgroups: read memory.swap.max: %w", err)
			case swapOnly != -1 || swap != 0:
				return nil, fmt.Errorf("cgroups: linux.resources.memory.swap: no memory.swap.max: the kernel does not account swap (swapaccount=0?): %w", errors.ErrUnsupported)
			}
			// Else the limit was lifted with no swap asked for: no
			// swap accounting, no swap limit to lift.
		}
	}
	if limit != 0 {
		ws = append(ws, fileWrite{"memory.max", v2Limit(limit)})
	}
	if reservation != 0 {
		ws = append(ws, fileWrite{"memory.low", v2Limit(reservation)})
	}
	if err := checkBeforeUpdate(m, limit, swap, cur, "memory.current", "memory.swap.current", false); err != nil {
		return nil, err
	}
	return ws, nil
}

// swapV2 converts the spec's memory+swap limit to cgroup2's swap-only one,
// given the memory limit (-1 unlimited), like runc's
// ConvertMemorySwapToCgroupV2Value: 0 stays unset, -1 unlimited; with
// unlimited memory the swap is taken as is; and lifting the memory limit with
// no swap given lifts the swap limit too.
func swapV2(swap, memory int64) (int64, error) {
	switch {
	case memory == -1 && swap == 0:
		return -1, nil
	case swap == -1 || swap == 0:
		return swap, nil
	case memory == -1:
		return swap, nil
	case memory == 0:
		return 0, fmt.Errorf("cgroups: linux.resources.memory.swap %d: no memory limit to subtract", swap)
	case swap < memory:
		return 0, fmt.Errorf("cgroups: linux.resources.memory.swap (memory+swap) %d is below the memory limit %d", swap, memory)
	}
	return swap - memory, nil
}

// v2Limit formats a cgroup2 limit: -1 is "max".
func v2Limit(v int64) string {
	if v < 0 {
		return "max"
	}
	return strconv.FormatInt(v, 10)
}

// readLimit reads a limit or usage file: a number, or "max" returned as
// math.MaxInt64 (v1 writes its own stand-in for unlimited, just below it).
func readLimit(cur reader, file string) (int64, error) {
	s, err := cur(file)
	if err != nil {
		return 0, fmt.Errorf("cgroups: read %s: %w", file, err)
	}
	return parseLimit(file, s)
}

func parseLimit(file, s string) (int64, error) {
	if s == "max" {
		return math.MaxInt64, nil
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		if u, uerr := strconv.ParseUint(s, 10, 64); uerr == nil && u > math.MaxInt64 {
			return math.MaxInt64, nil
		}
		return 0, fmt.Errorf("cgroups: parse %s: %q is not a number", file, s)
	}
	return v, nil
}

// ---- cpu ----

// The range of v1 cpu.shares (kernel MIN_SHARES, MAX_SHARES).
const (
	minShares = 2
	maxShares = 262144
)

// sharesToWeight converts v1 cpu.shares [2, 262144] to cgroup2 cpu.weight
// [1, 10000], linearly, as runc and crun do.
func sharesToWeight(shares uint64) uint64 {
	return 1 + ((shares-minShares)*9999)/(maxShares-minShares)
}

// sharesAndIdle writes shares (to sharesFile, through conv) and cpu.idle. An
// idle cgroup refuses a new weight (EINVAL), so the weight goes first when
// the cgroup becomes idle, last when it stops being so.
func sharesAndIdle(c *specs.LinuxCPU, sharesFile string, conv func(uint64) uint64) ([]fileWrite, error) {
	var ws []fileWrite
	if c.Shares != nil && *c.Shares != 0 {
		s := *c.Shares
		if s < minShares || s > maxShares {
			return nil, fmt.Errorf("cgroups: linux.resources.cpu.shares: %d is out of range %d-%d", s, minShares, maxShares)
		}
		ws = append(ws, fileWrite{sharesFile, strconv.FormatUint(conv(s), 10)})
	}
	if c.Idle != nil {
		if *c.Idle != 0 && *c.Idle != 1 {
			return nil, fmt.Errorf("cgroups: linux.resources.cpu.idle: %d is neither 0 nor 1", *c.Idle)
		}
		idle := fileWrite{"cpu.idle", strconv.FormatInt(*c.Idle, 10)}
		if *c.Idle == 1 {
			ws = append(ws, idle)
		} else {
			ws = append([]fileWrite{idle}, ws...)
		}
	}
	return ws, nil
}

// lessRatio reports whether a/b <= c/d, for non-negative a, c and positive
// b, d, exactly.
func lessRatio(a, b, c, d uint64) bool {
	hi1, lo1 := bits.Mul64(a, d)
	hi2, lo2 := bits.Mul64(c, b)
	return hi1 < hi2 || (hi1 == hi2 && lo1 <= lo2)
}

// runtimeFirst decides the order of a runtime (quota) and period pair that
// both change, from the current values (runtime -1: unlimited). The kernel
// checks the ratio runtime/period after each write (v1 CFS: at most the
// parent's; RT: the children's sum at most the parent's, and runtime at most
// period). Of the two intermediate states, new runtime over old period and
// old runtime over new period, it picks the one with the lower ratio: that
// one is no higher than the old or the new ratio, so it passes whenever both
// of those do. A runtime of -1 counts the same whatever the period (CFS: no
// limit; RT: 100%), so when it is the new value it goes first, and when it is
// the current one the period goes first: either way the intermediate state
// counts as one of the two end states.
func runtimeFirst(newRt int64, newPeriod uint64, curRt int64, curPeriod uint64) bool {
	switch {
	case newRt < 0:
		return true
	case curRt < 0:
		return false
	case curPeriod == 0 || newPeriod == 0:
		return true
	}
	// new runtime first iff newRt/curPeriod <= curRt/newPeriod.
	return lessRatio(uint64(newRt), curPeriod, uint64(curRt), newPeriod)
}

// readInt reads a file holding one integer.
func readInt(cur reader, file string) (int64, error) {
	s, err := cur(file)
	if err != nil {
		return 0, fmt.Errorf("cgroups: read %s: %w", file, err)
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("cgroups: parse %s: %q is not a number", file, s)
	}
	return v, nil
}

// pairWrites orders the writes of a runtime file and a period file (either
// may be unset: 0), and places burst (nil: unset) around them. The kernel
// keeps burst <= runtime, so burst goes first if it fits the current
// runtime, else after the new one.
func pairWrites(cur reader, rtFile, periodFile, burstFile string, rt int64, period uint64, burst *uint64) ([]fileWrite, error) {
	rw := fileWrite{rtFile, strconv.FormatInt(rt, 10)}
	pw := fileWrite{periodFile, strconv.FormatUint(period, 10)}
	var ws []fileWrite
	var curRt int64
	if rt != 0 && (period != 0 || burst != nil) {
		var err error
		if curRt, err = readInt(cur, rtFile); err != nil {
			return nil, err
		}
	}
	switch {
	case rt != 0 && period != 0:
		curPeriod, err := readInt(cur, periodFile)
		if err != nil {
			return nil, err
		}
		if runtimeFirst(rt, period, curRt, uint64(max(curPeriod, 0))) {
			ws = append(ws, rw, pw)
		} else {
			ws = append(ws, pw, rw)
		}
	case rt != 0:
		ws = append(ws, rw)
	case period != 0:
		ws = append(ws, pw)
	}
	if burst != nil {
		bw := fileWrite{burstFile, strconv.FormatUint(*burst, 10)}
		if rt == 0 || curRt < 0 || *burst <= uint64(curRt) {
			ws = append([]fileWrite{bw}, ws...)
		} else {
			ws = append(ws, bw)
		}
	}
	return ws, nil
}

// cpuV1 writes the v1 cpu files: shares and idle, then the CFS quota,
// period and burst, then the real-time runtime and period, each pair in the
// order the kernel accepts (see runtimeFirst, pairWrites).
func cpuV1(r *specs.LinuxResources, cur reader) ([]fileWrite, error) {
	c := r.CPU
	if c == nil {
		return nil, nil
	}
	ws, err := sharesAndIdle(c, "cpu.shares", func(s uint64) uint64 { return s })
	if err != nil {
		return nil, err
	}
	quota := unlimited(c.Quota)
	cfs, err := pairWrites(cur, "cpu.cfs_quota_us", "cpu.cfs_period_us", "cpu.cfs_burst_us", quota, u64(c.Period), c.Burst)
	if err != nil {
		return nil, err
	}
	ws = append(ws, cfs...)
	if c.RealtimeRuntime != nil && *c.RealtimeRuntime < -1 {
		return nil, fmt.Errorf("cgroups: linux.resources.cpu.realtimeRuntime: %d is neither -1 nor a number of microseconds", *c.RealtimeRuntime)
	}
	rt, err := pairWrites(cur, "cpu.rt_runtime_us", "cpu.rt_period_us", "", i64(c.RealtimeRuntime), u64(c.RealtimePeriod), nil)
	if err != nil {
		return nil, err
	}
	return append(ws, rt...), nil
}

// cpuV2 writes the cgroup2 cpu files: cpu.weight (from shares) and
// cpu.idle, then cpu.max ("quota period", quota "max" for -1) and
// cpu.max.burst. cpu.max takes both numbers in one write, so their order is
// no concern; with only the quota it writes the quota alone (the kernel keeps
// the period), with only the period the current quota goes with it. cgroup2
// has no real-time group scheduling.
func cpuV2(r *specs.LinuxResources, cur reader) ([]fileWrite, error) {
	c := r.CPU
	if c == nil {
		return nil, nil
	}
	if i64(c.RealtimeRuntime) != 0 || u64(c.RealtimePeriod) != 0 {
		return nil, fmt.Errorf("cgroups: linux.resources.cpu.realtimeRuntime, realtimePeriod: cgroup v2 has no real-time group scheduling: %w", errors.ErrUnsupported)
	}
	ws, err := sharesAndIdle(c, "cpu.weight", sharesToWeight)
	if err != nil {
		return nil, err
	}
	quota, period := unlimited(c.Quota), u64(c.Period)
	var curQuota string // from cpu.max, when needed
	if (period != 0 && quota == 0) || (c.Burst != nil && quota != 0) {
		s, err := cur("cpu.max")
		if err != nil {
			return nil, fmt.Errorf("cgroups: read cpu.max: %w", err)
		}
		curQuota, _, _ = strings.Cut(s, " ")
	}
	var cpuMax string
	switch {
	case quota != 0 && period != 0:
		cpuMax = v2Limit(quota) + " " + strconv.FormatUint(period, 10)
	case quota != 0:
		cpuMax = v2Limit(quota)
	case period != 0:
		cpuMax = curQuota + " " + strconv.FormatUint(period, 10)
	}
	if c.Burst == nil {
		if cpuMax != "" {
			ws = append(ws, fileWrite{"cpu.max", cpuMax})
		}
		return ws, nil
	}
	bw := fileWrite{"cpu.max.burst", strconv.FormatUint(*c.Burst, 10)}
	if cpuMax == "" {
		return append(ws, bw), nil
	}
	burstFirst := quota == 0 || curQuota == "max"
	if !burstFirst {
		q, err := strconv.ParseUint(curQuota, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("cgroups: parse cpu.max: quota %q is not a number", curQuota)
		}
		burstFirst = *c.Burst <= q
	}
	if burstFirst {
		return append(ws, bw, fileWrite{"cpu.max", cpuMax}), nil
	}
	return append(ws, fileWrite{"cpu.max", cpuMax}, bw), nil
}

// unlimited returns *p with every negative value as -1, 0 if unset.
func unlimited(p *int64) int64 {
	if p == nil {
		return 0
	}
	return max(*p, -1)
}

func i64(p *int64) int64 {
	if p == nil {
		return 0
	}
	return *p
}

func u64(p *uint64) uint64 {
	if p == nil {
		return 0
	}
	return *p
}

// ---- cpuset, pids: the same files in v1 and cgroup2 ----

func cpusetWrites(r *specs.LinuxResources, _ reader) ([]fileWrite, error) {
	c := r.CPU
	if c == nil {
		return nil, nil
	}
	var ws []fileWrite
	if c.Cpus != "" {
		ws = append(ws, fileWrite{"cpuset.cpus", c.Cpus})
	}
	if c.Mems != "" {
		ws = append(ws, fileWrite{"cpuset.mems", c.Mems})
	}
	return ws, nil
}

// pidsWrites writes pids.max: "max" for -1 (any negative), else the number,
// 0 being written as 1 (pidsLimit).
func pidsWrites(r *specs.LinuxResources, _ reader) ([]fileWrite, error) {
	if r.Pids == nil || r.Pids.Limit == nil {
		return nil, nil
	}
	return []fileWrite{{"pids.max", v2Limit(pidsLimit(*r.Pids.Limit))}}, nil
}

// pidsLimit is the limit a pids limit v (runtime-spec 1.3: 0 is a limit,
// negative none) is applied as: -1 for none, and 1 for 0, as runc writes
// it with either cgroup driver (systemd takes no TasksMax of 0), so that the
// two drivers agree; init is the one process then.
func pidsLimit(v int64) int64 {
	if v == 0 {
		return 1
	}
	return max(v, -1)
}
