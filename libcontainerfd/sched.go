package libcontainerfd

import (
	"fmt"
	"strconv"
	"strings"
	"unsafe"

	"golang.org/x/sys/unix"
)

// ParseCPUList reads a Linux cpu list ("0-3,7") into a CPU set.
func ParseCPUList(list string) (*unix.CPUSet, error) {
	var set unix.CPUSet
	for _, part := range strings.Split(list, ",") {
		lo, hi, isRange := strings.Cut(strings.TrimSpace(part), "-")
		first, err := strconv.Atoi(lo)
		last := first
		if err == nil && isRange {
			last, err = strconv.Atoi(hi)
		}
		if err != nil || first < 0 || last < first || last >= cpuSetSize {
			return nil, fmt.Errorf("bad cpu list element %q", part)
		}
		for cpu := first; cpu <= last; cpu++ {
			set.Set(cpu)
		}
	}
	return &set, nil
}

// ParseNodeList reads a NUMA node list ("0-1,3") into the bitmask
// set_mempolicy(2) takes.
func ParseNodeList(list string) ([]uint64, error) {
	set, err := ParseCPUList(list) // the same syntax
	if err != nil {
		return nil, err
	}
	mask := make([]uint64, len(set))
	for i, w := range set {
		mask[i] = uint64(w)
	}
	return mask, nil
}

// cpuSetSize is how many CPUs a unix.CPUSet holds.
const cpuSetSize = len(unix.CPUSet{}) * 64

// setAffinity pins pid (0: the caller's thread) to list, if list is set.
func setAffinity(pid int, list string) error {
	if list == "" {
		return nil
	}
	set, err := ParseCPUList(list)
	if err != nil {
		return fmt.Errorf("cpu affinity %q: %w", list, err)
	}
	if err := unix.SchedSetaffinity(pid, set); err != nil {
		return fmt.Errorf("cpu affinity %q: %w", list, err)
	}
	return nil
}

// setSchedule applies the process's scheduling policy and I/O priority to
// the calling thread (which then execs).
func (pc *processConfig) setSchedule() error {
	if pc.Scheduler != nil {
		if err := unix.SchedSetAttr(0, pc.Scheduler, 0); err != nil {
			return fmt.Errorf("set scheduler (policy %d): %w", pc.Scheduler.Policy, err)
		}
	}
	if pc.IOPriority != nil {
		const ioprioWhoProcess = 1
		if _, _, errno := unix.Syscall(unix.SYS_IOPRIO_SET, ioprioWhoProcess, 0, uintptr(*pc.IOPriority)); errno != 0 {
			return fmt.Errorf("set I/O priority %#x: %w", *pc.IOPriority, errno)
		}
	}
	if mp := pc.MemoryPolicy; mp != nil {
		var mask []uint64
		if mp.Nodes != "" {
			var err error
			if mask, err = ParseNodeList(mp.Nodes); err != nil {
				return fmt.Errorf("memory policy nodes %q: %w", mp.Nodes, err)
			}
		}
		// An unsafe.Pointer, made a uintptr only in the call: a uintptr
		// held in a variable would not keep mask alive.
		var ptr unsafe.Pointer
		if len(mask) > 0 {
			ptr = unsafe.Pointer(&mask[0])
		}
		if _, _, errno := unix.Syscall(unix.SYS_SET_MEMPOLICY, uintptr(mp.Mode), uintptr(ptr), uintptr(len(mask)*64)); errno != 0 {
			return fmt.Errorf("set memory policy %#x nodes %q: %w", mp.Mode, mp.Nodes, errno)
		}
	}
	if pc.Personality != nil {
		if _, _, errno := unix.Syscall(unix.SYS_PERSONALITY, uintptr(*pc.Personality), 0, 0); errno != 0 {
			return fmt.Errorf("set personality %#x: %w", *pc.Personality, errno)
		}
	}
	return nil
}
