package libcontainerfd

import (
	"fmt"
	"strconv"
	"strings"

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
	if pc.Personality != nil {
		if _, _, errno := unix.Syscall(unix.SYS_PERSONALITY, uintptr(*pc.Personality), 0, 0); errno != 0 {
			return fmt.Errorf("set personality %#x: %w", *pc.Personality, errno)
		}
	}
	return nil
}
