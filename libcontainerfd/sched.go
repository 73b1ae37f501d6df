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
