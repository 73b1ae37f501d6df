package cgroups

import (
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// The planners of blockIO, hugepageLimits, rdma, network and unified (see
// Set for the rules they follow).

// exists reports whether the cgroup has file, from cur: a file that exists
// but cannot be read (write-only, such as memory.reclaim) counts.
func exists(cur reader, file string) (bool, error) {
	_, err := cur(file)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, fs.ErrNotExist):
		return false, nil
	case errors.Is(err, fs.ErrPermission), errors.Is(err, unix.EINVAL):
		return true, nil
	}
	return false, fmt.Errorf("cgroups: read %s: %w", file, err)
}

// need fails, naming field, if the cgroup has no file.
func need(cur reader, file, field, why string) error {
	ok, err := exists(cur, file)
	if err != nil || ok {
		return err
	}
	return fmt.Errorf("cgroups: linux.resources.%s: the cgroup has no %s (%s): %w", field, file, why, errors.ErrUnsupported)
}

// ---- blockIO: v1 blkio, cgroup2 io ----

// The blkio weight range (v1 blkio.weight, CFQ; BFQ takes 1-1000).
const (
	minBlkioWeight = 10
	maxBlkioWeight = 1000
)

// blkioToIOWeight converts a blkio weight [10, 1000] to a cgroup2 io.weight
// [1, 10000], linearly, as runc and crun do.
func blkioToIOWeight(w uint16) uint64 {
	return 1 + (uint64(w)-minBlkioWeight)*9999/(maxBlkioWeight-minBlkioWeight)
}

func blockIOSet(b *specs.LinuxBlockIO) bool {
	return b != nil && (b.Weight != nil || b.LeafWeight != nil || len(b.WeightDevice) > 0 ||
		len(b.ThrottleReadBpsDevice) > 0 || len(b.ThrottleWriteBpsDevice) > 0 ||
		len(b.ThrottleReadIOPSDevice) > 0 || len(b.ThrottleWriteIOPSDevice) > 0)
}

func u16(p *uint16) uint16 {
	if p == nil {
		return 0
	}
	return *p
}

// blockDev formats a block device number as "major:minor", after checking
// that it is one (Linux: 12-bit major, 20-bit minor).
func blockDev(field string, d specs.LinuxBlockIODevice) (string, error) {
	if d.Major < 0 || d.Major >= 1<<12 || d.Minor < 0 || d.Minor >= 1<<20 {
		return "", fmt.Errorf("cgroups: linux.resources.%s: %d:%d is not a device number", field, d.Major, d.Minor)
	}
	return strconv.FormatInt(d.Major, 10) + ":" + strconv.FormatInt(d.Minor, 10), nil
}

func checkBlkioWeight(field string, w uint16) error {
	if w != 0 && (w < minBlkioWeight || w > maxBlkioWeight) {
		return fmt.Errorf("cgroups: linux.resources.%s: %d is out of range %d-%d", field, w, minBlkioWeight, maxBlkioWeight)
	}
	return nil
}

// throttle is one throttle list of blockIO, with its v1 file and its io.max
// key.
type throttle struct {
	field, v1File, key string
	devs               []specs.LinuxThrottleDevice
}

func throttles(b *specs.LinuxBlockIO) []throttle {
	return []throttle{
		{"blockIO.throttleReadBpsDevice", "blkio.throttle.read_bps_device", "rbps", b.ThrottleReadBpsDevice},
		{"blockIO.throttleWriteBpsDevice", "blkio.throttle.write_bps_device", "wbps", b.ThrottleWriteBpsDevice},
		{"blockIO.throttleReadIOPSDevice", "blkio.throttle.read_iops_device", "riops", b.ThrottleReadIOPSDevice},
		{"blockIO.throttleWriteIOPSDevice", "blkio.throttle.write_iops_device", "wiops", b.ThrottleWriteIOPSDevice},
	}
}

// checkBlockIO validates b: weights 0 (unset) or 10-1000, device numbers,
// and a weight or a leaf weight in each weightDevice entry.
func checkBlockIO(b *specs.LinuxBlockIO) error {
	if err := checkBlkioWeight("blockIO.weight", u16(b.Weight)); err != nil {
		return err
	}
	if err := checkBlkioWeight("blockIO.leafWeight", u16(b.LeafWeight)); err != nil {
		return err
	}
	for i, d := range b.WeightDevice {
		f := fmt.Sprintf("blockIO.weightDevice[%d]", i)
		if _, err := blockDev(f, d.LinuxBlockIODevice); err != nil {
			return err
		}
		if d.Weight == nil && d.LeafWeight == nil {
			return fmt.Errorf("cgroups: linux.resources.%s: neither weight nor leafWeight", f)
		}
		if err := checkBlkioWeight(f+".weight", u16(d.Weight)); err != nil {
			return err
		}
		if err := checkBlkioWeight(f+".leafWeight", u16(d.LeafWeight)); err != nil {
			return err
		}
	}
	for _, t := range throttles(b) {
		for i, d := range t.devs {
			if _, err := blockDev(fmt.Sprintf("%s[%d]", t.field, i), d.LinuxBlockIODevice); err != nil {
				return err
			}
		}
	}
	return nil
}

// wantsWeight reports whether b sets a weight, cgroup-wide or per device.
func wantsWeight(b *specs.LinuxBlockIO) bool {
	if u16(b.Weight) != 0 {
		return true
	}
	for _, d := range b.WeightDevice {
		if u16(d.Weight) != 0 {
			return true
		}
	}
	return false
}

// wantsLeafWeight reports whether b sets a leaf weight.
func wantsLeafWeight(b *specs.LinuxBlockIO) bool {
	if u16(b.LeafWeight) != 0 {
		return true
	}
	for _, d := range b.WeightDevice {
		if u16(d.LeafWeight) != 0 {
			return true
		}
	}
	return false
}

// blkioV1 writes the v1 blkio files: the weight (blkio.weight, CFQ, else
// blkio.bfq.weight, BFQ, whichever the cgroup has, as runc), the leaf weight
// (CFQ only), the per-device weights ("MAJ:MIN W" to the weight_device file
// of the same scheduler, blkio.leaf_weight_device), then each throttle entry
// ("MAJ:MIN RATE", one write each; a rate of 0 removes the device's limit).
// A weight of 0 is unset, as in runc.
func blkioV1(r *specs.LinuxResources, cur reader) ([]fileWrite, error) {
	b := r.BlockIO
	if !blockIOSet(b) {
		return nil, nil
	}
	if err := checkBlockIO(b); err != nil {
		return nil, err
	}
	weightFile, weightDevFile := "blkio.weight", "blkio.weight_device"
	if wantsWeight(b) {
		cfq, err := exists(cur, weightFile)
		if err != nil {
			return nil, err
		}
		if !cfq {
			if err := need(cur, "blkio.bfq.weight", "blockIO.weight", "nor blkio.weight: no proportional-weight IO scheduler, CFQ or BFQ, in the kernel"); err != nil {
				return nil, err
			}
			weightFile, weightDevFile = "blkio.bfq.weight", "blkio.bfq.weight_device"
		}
	}
	if wantsLeafWeight(b) {
		if err := need(cur, "blkio.leaf_weight", "blockIO.leafWeight", "leaf weights were CFQ's, removed in Linux 5.0"); err != nil {
			return nil, err
		}
	}
	var ws []fileWrite
	if w := u16(b.Weight); w != 0 {
		ws = append(ws, fileWrite{weightFile, strconv.Itoa(int(w))})
	}
	if w := u16(b.LeafWeight); w != 0 {
		ws = append(ws, fileWrite{"blkio.leaf_weight", strconv.Itoa(int(w))})
	}
	for _, d := range b.WeightDevice {
		dev, _ := blockDev("", d.LinuxBlockIODevice)
		if w := u16(d.Weight); w != 0 {
			ws = append(ws, fileWrite{weightDevFile, dev + " " + strconv.Itoa(int(w))})
		}
		if w := u16(d.LeafWeight); w != 0 {
			ws = append(ws, fileWrite{"blkio.leaf_weight_device", dev + " " + strconv.Itoa(int(w))})
		}
	}
	for _, t := range throttles(b) {
		if len(t.devs) == 0 {
			continue
		}
		if err := need(cur, t.v1File, t.field, "a kernel without CONFIG_BLK_DEV_THROTTLING"); err != nil {
			return nil, err
		}
		for _, d := range t.devs {
			dev, _ := blockDev("", d.LinuxBlockIODevice)
			ws = append(ws, fileWrite{t.v1File, dev + " " + strconv.FormatUint(d.Rate, 10)})
		}
	}
	return ws, nil
}

// ioV2 writes the cgroup2 io files: the weight to io.bfq.weight as is if
// the cgroup has it (BFQ), else to io.weight converted (blkioToIOWeight), as
// runc; the per-device weights likewise ("MAJ:MIN W"); then one io.max line
// per device, "MAJ:MIN rbps=… wbps=… riops=… wiops=…" with the keys given
// (a device listed twice in a list: the last wins), a rate of 0 written as
// "max", no limit, as in v1. cgroup2 has no leaf weights: asking for one is
// an error.
func ioV2(r *specs.LinuxResources, cur reader) ([]fileWrite, error) {
	b := r.BlockIO
	if !blockIOSet(b) {
		return nil, nil
	}
	if err := checkBlockIO(b); err != nil {
		return nil, err
	}
	if wantsLeafWeight(b) {
		return nil, fmt.Errorf("cgroups: linux.resources.blockIO.leafWeight: cgroup v2 has no leaf weight (it was CFQ's, in v1): %w", errors.ErrUnsupported)
	}
	bfq := false
	if wantsWeight(b) {
		var err error
		if bfq, err = exists(cur, "io.bfq.weight"); err != nil {
			return nil, err
		}
		if !bfq {
			if err := need(cur, "io.weight", "blockIO.weight", "nor io.bfq.weight: neither BFQ nor iocost in the kernel"); err != nil {
				return nil, err
			}
		}
	}
	weight := func(w uint16) (string, string) {
		if bfq {
			return "io.bfq.weight", strconv.Itoa(int(w))
		}
		return "io.weight", strconv.FormatUint(blkioToIOWeight(w), 10)
	}
	var ws []fileWrite
	if w := u16(b.Weight); w != 0 {
		f, v := weight(w)
		ws = append(ws, fileWrite{f, v})
	}
	for _, d := range b.WeightDevice {
		if w := u16(d.Weight); w != 0 {
			dev, _ := blockDev("", d.LinuxBlockIODevice)
			f, v := weight(w)
			ws = append(ws, fileWrite{f, dev + " " + v})
		}
	}
	var order []string              // devices, by first appearance
	limits := map[string][]string{} // device -> "key=value", in key order
	for _, t := range throttles(b) {
		for _, d := range t.devs {
			dev, _ := blockDev("", d.LinuxBlockIODevice)
			if _, ok := limits[dev]; !ok {
				order = append(order, dev)
			}
			v := "max"
			if d.Rate != 0 {
				v = strconv.FormatUint(d.Rate, 10)
			}
			kv := t.key + "=" + v
			if i := slices.IndexFunc(limits[dev], func(s string) bool { return strings.HasPrefix(s, t.key+"=") }); i >= 0 {
				limits[dev][i] = kv
			} else {
				limits[dev] = append(limits[dev], kv)
			}
		}
	}
	if len(order) > 0 {
		if err := need(cur, "io.max", "blockIO.throttle*", "a kernel without CONFIG_BLK_DEV_THROTTLING"); err != nil {
			return nil, err
		}
	}
	for _, dev := range order {
		ws = append(ws, fileWrite{"io.max", dev + " " + strings.Join(limits[dev], " ")})
	}
	return ws, nil
}

// ---- hugepageLimits: hugetlb ----

// hugepagesDir lists the huge page sizes the kernel offers, one directory
// hugepages-<N>kB each; a variable so that tests can point it at a fixture.
var hugepagesDir = "/sys/kernel/mm/hugepages"

// hugePageSizes returns the huge page sizes of the host, in bytes.
func hugePageSizes() ([]uint64, error) {
	ents, err := os.ReadDir(hugepagesDir)
	if err != nil {
		return nil, err
	}
	var sizes []uint64
	for _, e := range ents {
		s, ok := strings.CutPrefix(e.Name(), "hugepages-")
		if !ok {
			continue
		}
		s, ok = strings.CutSuffix(s, "kB")
		if !ok {
			continue
		}
		kb, err := strconv.ParseUint(s, 10, 64)
		if err != nil || kb == 0 || kb > math.MaxUint64>>10 {
			continue
		}
		sizes = append(sizes, kb<<10)
	}
	slices.Sort(sizes)
	return sizes, nil
}

// hugePageName is the name the hugetlb controller gives a page size in its
// files (the kernel's mem_fmt): "64KB", "2MB", "1GB".
func hugePageName(size uint64) string {
	switch {
	case size >= 1<<30:
		return strconv.FormatUint(size>>30, 10) + "GB"
	case size >= 1<<20:
		return strconv.FormatUint(size>>20, 10) + "MB"
	}
	return strconv.FormatUint(size>>10, 10) + "KB"
}

// parsePageSize parses the spec's pageSize, "<size><unit-prefix>B" with the
// prefix K, M, G or T taken base 1024 ("2MB", "2048KB", "1GB").
func parsePageSize(s string) (uint64, bool) {
	num, ok := strings.CutSuffix(s, "B")
	if !ok || len(num) < 2 {
		return 0, false
	}
	shift := strings.IndexByte("KMGT", num[len(num)-1]&^0x20) // upper case
	if shift < 0 {
		return 0, false
	}
	n, err := strconv.ParseUint(num[:len(num)-1], 10, 64)
	bits := uint(10 * (shift + 1))
	if err != nil || n == 0 || n > math.MaxUint64>>bits || num[0] == '+' {
		return 0, false
	}
	return n << bits, true
}

// hugetlbWrites writes, for each page size, its limit to
// hugetlb.<size><limit> (page faults) and, if the cgroup has the file, the
// same limit to hugetlb.<size><rsvd> (reservations, Linux 5.7): the spec's
// one limit is of reservations where the kernel has them, and runc writes
// both so. The page size must be one the host has (hugepagesDir), whatever
// the limit: a limit of 0 on a page size the host lacks is an error, as it is
// in runc (whose write finds no file). It may be given in any unit; the
// file is named as the kernel names the size ("2048KB" writes hugetlb.2MB.*).
// The kernel rounds a limit down to a whole number of pages.
func hugetlbWrites(limitSuffix, rsvdSuffix string) planner {
	return func(r *specs.LinuxResources, cur reader) ([]fileWrite, error) {
		if len(r.HugepageLimits) == 0 {
			return nil, nil
		}
		sizes, serr := hugePageSizes()
		var have []string
		for _, s := range sizes {
			have = append(have, hugePageName(s))
		}
		seen := map[uint64]int{}
		var names []string
		for i, l := range r.HugepageLimits {
			f := fmt.Sprintf("cgroups: linux.resources.hugepageLimits[%d].pageSize", i)
			size, ok := parsePageSize(l.Pagesize)
			switch {
			case !ok:
				return nil, fmt.Errorf("%s: %q is not a size such as 2MB or 1GB", f, l.Pagesize)
			case serr != nil:
				return nil, fmt.Errorf("%s: %q: the host has no huge pages: %w", f, l.Pagesize, serr)
			case !slices.Contains(sizes, size):
				return nil, fmt.Errorf("%s: the host has no %s huge pages (it has %s in %s)", f, l.Pagesize, strings.Join(have, ", "), hugepagesDir)
			}
			if j, dup := seen[size]; dup {
				return nil, fmt.Errorf("%s: %s is the page size of hugepageLimits[%d] again", f, l.Pagesize, j)
			}
			seen[size] = i
			names = append(names, hugePageName(size))
		}
		var ws []fileWrite
		for i, l := range r.HugepageLimits {
			v := strconv.FormatUint(l.Limit, 10)
			prefix := "hugetlb." + names[i]
			ws = append(ws, fileWrite{prefix + limitSuffix, v})
			rsvd, err := exists(cur, prefix+rsvdSuffix)
			if err != nil {
				return nil, err
			}
			if rsvd {
				ws = append(ws, fileWrite{prefix + rsvdSuffix, v})
			}
		}
		return ws, nil
	}
}

var (
	hugetlbV1 = hugetlbWrites(".limit_in_bytes", ".rsvd.limit_in_bytes")
	hugetlbV2 = hugetlbWrites(".max", ".rsvd.max")
)

// ---- rdma: the same file in v1 and cgroup2 ----

// rdmaWrites writes one rdma.max line per device, in device name order:
// "DEV hca_handle=N hca_object=M" with the limits given (at least one).
func rdmaWrites(r *specs.LinuxResources, _ reader) ([]fileWrite, error) {
	if len(r.Rdma) == 0 {
		return nil, nil
	}
	devs := make([]string, 0, len(r.Rdma))
	for d := range r.Rdma {
		devs = append(devs, d)
	}
	sort.Strings(devs)
	var ws []fileWrite
	for _, d := range devs {
		l := r.Rdma[d]
		f := fmt.Sprintf("cgroups: linux.resources.rdma[%q]", d)
		if d == "" || strings.ContainsFunc(d, func(c rune) bool { return c <= ' ' || c == 0x7f }) {
			return nil, fmt.Errorf("%s: not a device name", f)
		}
		if l.HcaHandles == nil && l.HcaObjects == nil {
			return nil, fmt.Errorf("%s: neither hcaHandles nor hcaObjects", f)
		}
		line := d
		for _, v := range []struct {
			name, key string
			p         *uint32
		}{{"hcaHandles", "hca_handle", l.HcaHandles}, {"hcaObjects", "hca_object", l.HcaObjects}} {
			if v.p == nil {
				continue
			}
			if *v.p > math.MaxInt32 { // the kernel takes an int
				return nil, fmt.Errorf("%s.%s: %d is above %d", f, v.name, *v.p, math.MaxInt32)
			}
			line += " " + v.key + "=" + strconv.FormatUint(uint64(*v.p), 10)
		}
		ws = append(ws, fileWrite{"rdma.max", line})
	}
	return ws, nil
}

// ---- network: v1 net_cls and net_prio, none in cgroup2 ----

// netClsV1 writes net_cls.classid. A classID of 0 is unset, as in runc.
func netClsV1(r *specs.LinuxResources, _ reader) ([]fileWrite, error) {
	if r.Network == nil || r.Network.ClassID == nil || *r.Network.ClassID == 0 {
		return nil, nil
	}
	return []fileWrite{{"net_cls.classid", strconv.FormatUint(uint64(*r.Network.ClassID), 10)}}, nil
}

// netPrioV1 writes one net_prio.ifpriomap line per interface, "NAME PRIO".
func netPrioV1(r *specs.LinuxResources, _ reader) ([]fileWrite, error) {
	if r.Network == nil {
		return nil, nil
	}
	var ws []fileWrite
	for i, p := range r.Network.Priorities {
		if p.Name == "" || len(p.Name) >= unix.IFNAMSIZ || strings.ContainsFunc(p.Name, func(c rune) bool { return c <= ' ' || c == '/' || c == 0x7f }) {
			return nil, fmt.Errorf("cgroups: linux.resources.network.priorities[%d].name: %q is not an interface name", i, p.Name)
		}
		ws = append(ws, fileWrite{"net_prio.ifpriomap", p.Name + " " + strconv.FormatUint(uint64(p.Priority), 10)})
	}
	return ws, nil
}

// netV2 is the cgroup2 side of net_cls and net_prio: there is none, so a
// classID or priorities is an error (runc ignores them on cgroup2; the spec
// wants an error where a v1 setting cannot be converted).
func netV2(field string) planner {
	return func(r *specs.LinuxResources, _ reader) ([]fileWrite, error) {
		n := r.Network
		if n == nil || (field == "classID" && (n.ClassID == nil || *n.ClassID == 0)) || (field == "priorities" && len(n.Priorities) == 0) {
			return nil, nil
		}
		return nil, fmt.Errorf("cgroups: linux.resources.network.%s: cgroup v2 has no net_cls or net_prio controller (tag or prioritise traffic by cgroup with nftables or BPF instead): %w", field, errors.ErrUnsupported)
	}
}

// ---- unified: cgroup2 files as given ----

// ownedFiles are the cgroup2 core files that unified may not write: Create,
// Enter, Kill, Freeze and Thaw own them (process membership, the controllers
// enabled below, the cgroup type, kill and freeze).
var ownedFiles = []string{"cgroup.procs", "cgroup.threads", "cgroup.subtree_control", "cgroup.type", "cgroup.kill", "cgroup.freeze"}

// unifiedWrites writes the unified map, keys in order: each key must be the
// plain name of a file the cgroup2 directory dir has (else, if the part
// before the dot is a controller not in cgroup.controllers, an error naming
// it) and not one of ownedFiles. Each value is written as given, one line
// per write(2) if it has several (runc's WriteFileByLine; cgroupfs takes one
// entry per write, as io.max does). Only in V2 mode: in V1 and Hybrid modes
// unified is an error, as in runc (whose hybrid mode is its v1 manager).
func unifiedWrites(u map[string]string, mode Mode, dir string, cur reader) ([]fileWrite, error) {
	if len(u) == 0 {
		return nil, nil
	}
	if mode != V2 {
		return nil, fmt.Errorf("cgroups: linux.resources.unified: cgroup v2 files cannot be set in %v cgroup mode (runc refuses it too: invalid configuration): %w", mode, errors.ErrUnsupported)
	}
	keys := make([]string, 0, len(u))
	for k := range u {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var ws []fileWrite
	for _, k := range keys {
		f := fmt.Sprintf("cgroups: linux.resources.unified[%q]", k)
		switch {
		case k == "" || k == "." || k == ".." || strings.ContainsAny(k, "/\x00"):
			return nil, fmt.Errorf("%s: not a file name", f)
		case slices.Contains(ownedFiles, k):
			return nil, fmt.Errorf("%s: the runtime manages %s itself (unified may not set %s)", f, k, strings.Join(ownedFiles, ", "))
		}
		ok, err := exists(cur, k)
		if err != nil {
			return nil, err
		}
		if !ok {
			ctrl, _, dot := strings.Cut(k, ".")
			if avail, err := cur("cgroup.controllers"); dot && ctrl != "cgroup" && err == nil && !slices.Contains(strings.Fields(avail), ctrl) {
				return nil, fmt.Errorf("%s: %s controller not enabled in %s (cgroup.controllers has %q)", f, ctrl, dir, strings.TrimSpace(avail))
			}
			return nil, fmt.Errorf("%s: no such file in %s", f, dir)
		}
		v := u[k]
		if !strings.Contains(v, "\n") {
			ws = append(ws, fileWrite{k, v})
			continue
		}
		for _, line := range strings.Split(v, "\n") {
			if line != "" {
				ws = append(ws, fileWrite{k, line})
			}
		}
	}
	return ws, nil
}
