package cgroups

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// testBlockDev returns a block device of the host to throttle in a test
// cgroup of ours (which changes nothing for anyone else): loop0 (7:0) if
// there is one, else the first of /proc/partitions; and its current IO
// scheduler.
func testBlockDev(t *testing.T) (major, minor int64, sched string) {
	t.Helper()
	dev := ""
	if _, err := os.Stat("/sys/dev/block/7:0"); err == nil {
		dev = "7:0"
	} else if b, err := os.ReadFile("/proc/partitions"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			f := strings.Fields(line)
			if len(f) == 4 && f[0] != "major" {
				dev = f[0] + ":" + f[1]
				break
			}
		}
	}
	if dev == "" {
		t.Skip("no block device to throttle")
	}
	a, b, _ := strings.Cut(dev, ":")
	major, _ = strconv.ParseInt(a, 10, 64)
	minor, _ = strconv.ParseInt(b, 10, 64)
	s, _ := os.ReadFile(filepath.Join("/sys/dev/block", dev, "queue/scheduler"))
	if _, cur, ok := strings.Cut(string(s), "["); ok {
		sched, _, _ = strings.Cut(cur, "]")
	}
	return major, minor, sched
}

// controllerHere returns where controller ctrl (cgroup2 name v2ctrl) of c
// is: its v1 directory, or the cgroup2 one if enabled there, or "".
func controllerHere(t *testing.T, c *Cgroup, ctrl, v2ctrl string) (dir string, v2 bool) {
	t.Helper()
	if d, ok := c.Paths()[ctrl]; ok {
		return d, false
	}
	if d, ok := c.Paths()[KeyUnified]; ok {
		avail, err := readFile(d, "cgroup.controllers")
		if err != nil {
			t.Fatal(err)
		}
		if slicesContains(strings.Fields(avail), v2ctrl) {
			return d, true
		}
	}
	return "", false
}

// weightFileHere returns the file of cgroup dir that takes a blockIO
// weight, the one Set picks (v1: blkio.weight, CFQ, else blkio.bfq.weight,
// BFQ; cgroup2: io.bfq.weight, BFQ, else io.weight, iocost), or "" and the
// error Set gives for a weight where the kernel has no such scheduler.
func weightFileHere(t *testing.T, dir string, v2 bool) (file, noWeight string) {
	t.Helper()
	files := []string{"blkio.weight", "blkio.bfq.weight"}
	noWeight = "cgroups: linux.resources.blockIO.weight: the cgroup has no blkio.bfq.weight (nor blkio.weight: no proportional-weight IO scheduler, CFQ or BFQ, in the kernel): unsupported operation"
	if v2 {
		files = []string{"io.bfq.weight", "io.weight"}
		noWeight = "cgroups: linux.resources.blockIO.weight: the cgroup has no io.weight (nor io.bfq.weight: neither BFQ nor iocost in the kernel): unsupported operation"
	}
	for _, f := range files {
		_, err := os.Stat(filepath.Join(dir, f))
		if err == nil {
			return f, ""
		}
		if !errors.Is(err, fs.ErrNotExist) {
			t.Fatal(err)
		}
	}
	return "", noWeight
}

func readTrim(t *testing.T, dir, file string) string {
	t.Helper()
	s, err := readFile(dir, file)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(s)
}

// TestSetExtraHost: blockIO, hugepageLimits, rdma, network and unified on
// the host's cgroups, in every mode it has. Where a controller is there (v1
// blkio here), the values are read back from the kernel's files; where it is
// not (hugetlb, rdma, net_cls, net_prio here, and every controller of the
// controller-less cgroup2), Set must fail naming it. A blkio weight is
// checked likewise against the scheduler files the cgroup has.
func TestSetExtraHost(t *testing.T) {
	forEachMode(t, func(t *testing.T, mode Mode) {
		c := create(t, testParentNamed(t, "res2")+"/ctr")
		major, minor, sched := testBlockDev(t)
		dev := strconv.FormatInt(major, 10) + ":" + strconv.FormatInt(minor, 10)

		// blockIO
		t.Run("blockIO", func(t *testing.T) {
			dir, v2 := controllerHere(t, c, "blkio", "io")
			r := blkio(specs.LinuxBlockIO{Weight: ptr[uint16](300),
				ThrottleReadBpsDevice:   []specs.LinuxThrottleDevice{tdev(major, minor, 1048576)},
				ThrottleWriteIOPSDevice: []specs.LinuxThrottleDevice{tdev(major, minor, 100)}})
			if dir == "" {
				want := "cgroups: io controller not enabled in " + c.Paths()[KeyUnified]
				if mode == V1 {
					want = "cgroups: blkio controller: no v1 hierarchy of it is mounted"
				}
				if err := c.Set(r); err == nil || !strings.HasPrefix(err.Error(), want) {
					t.Errorf("Set: %v\nwant an error starting %q", err, want)
				}
				return
			}
			// A weight needs a proportional-weight scheduler, whose files
			// the cgroup has only where the kernel has one loaded (a fresh
			// Debian 12 has no CFQ, since 5.0, and no BFQ until something
			// loads it). Without one, Set must say so, and the throttle
			// limits, which need none, must still work.
			weightFile, noWeight := weightFileHere(t, dir, v2)
			if weightFile == "" {
				t.Logf("%s has no weight file: no proportional-weight scheduler here", dir)
				if err := c.Set(r); !errors.Is(err, errors.ErrUnsupported) || err.Error() != noWeight {
					t.Errorf("Set with a weight: %v\nwant %q", err, noWeight)
				}
				throttle := "blkio.throttle.read_bps_device"
				if v2 {
					throttle = "io.max"
				}
				if got := readTrim(t, dir, throttle); got != "" {
					t.Errorf("%s = %q after a refused Set, want it unchanged (empty)", throttle, got)
				}
				r.BlockIO.Weight = nil
			}
			if v2 {
				set(t, c, r)
				if got := readTrim(t, dir, "io.max"); !strings.HasPrefix(got, dev+" rbps=1048576 wbps=max riops=max wiops=100") {
					t.Errorf("io.max = %q", got)
				}
				if weightFile == "" {
					return
				}
				// "default W", then a line per device weight (none here).
				want := "default 300"
				if weightFile == "io.weight" {
					want = "default " + strconv.FormatUint(blkioToIOWeight(300), 10)
				}
				if got, _, _ := strings.Cut(readTrim(t, dir, weightFile), "\n"); got != want {
					t.Errorf("%s = %q, want %q", weightFile, got, want)
				}
				return
			}
			set(t, c, r)
			if weightFile != "" {
				if got := readTrim(t, dir, weightFile); got != "300" {
					t.Errorf("%s = %q, want 300", weightFile, got)
				}
			}
			if got := readTrim(t, dir, "blkio.throttle.read_bps_device"); got != dev+" 1048576" {
				t.Errorf("read_bps_device = %q", got)
			}
			if got := readTrim(t, dir, "blkio.throttle.write_iops_device"); got != dev+" 100" {
				t.Errorf("write_iops_device = %q", got)
			}
			// Update: a new rate replaces the old; 0 removes it.
			u := blkio(specs.LinuxBlockIO{
				ThrottleReadBpsDevice:   []specs.LinuxThrottleDevice{tdev(major, minor, 0)},
				ThrottleWriteIOPSDevice: []specs.LinuxThrottleDevice{tdev(major, minor, 50)}})
			if weightFile != "" {
				u.BlockIO.Weight = ptr[uint16](1000)
			}
			set(t, c, u)
			if weightFile != "" {
				if got := readTrim(t, dir, weightFile); got != "1000" {
					t.Errorf("%s = %q, want 1000", weightFile, got)
				}
			}
			if got := readTrim(t, dir, "blkio.throttle.read_bps_device"); got != "" {
				t.Errorf("read_bps_device = %q after rate 0, want it empty", got)
			}
			if got := readTrim(t, dir, "blkio.throttle.write_iops_device"); got != dev+" 50" {
				t.Errorf("write_iops_device = %q", got)
			}
			// A device weight needs the scheduler's files, and the device
			// to use that scheduler.
			err := c.Set(blkio(specs.LinuxBlockIO{WeightDevice: []specs.LinuxWeightDevice{wdev(major, minor, ptr[uint16](200), nil)}}))
			devFile := strings.Replace(weightFile, "weight", "weight_device", 1)
			switch {
			case weightFile == "":
				if !errors.Is(err, errors.ErrUnsupported) || err.Error() != noWeight {
					t.Errorf("weight device: %v\nwant %q", err, noWeight)
				}
			case sched == "bfq" || (weightFile == "blkio.weight" && sched == "cfq"):
				if err != nil {
					t.Errorf("weight device with %s: %v", sched, err)
				}
			default:
				if want := "cgroups: set " + devFile + " to " + dev + " 200 in " + dir + ": "; err == nil || !strings.HasPrefix(err.Error(), want) {
					t.Errorf("weight device with scheduler %q: %v\nwant an error starting %q", sched, err, want)
				} else {
					t.Logf("device %s uses %q: %v", dev, sched, err)
				}
			}
			// The kernel refuses a device that is not there.
			if err := c.Set(blkio(specs.LinuxBlockIO{ThrottleReadBpsDevice: []specs.LinuxThrottleDevice{tdev(4095, 1<<20-1, 1)}})); err == nil ||
				!strings.Contains(err.Error(), "blkio.throttle.read_bps_device to 4095:1048575 1") {
				t.Errorf("missing device: %v", err)
			}
			// No leaf weights without CFQ.
			if weightFile != "blkio.weight" {
				if err := c.Set(blkio(specs.LinuxBlockIO{LeafWeight: ptr[uint16](100)})); !errors.Is(err, errors.ErrUnsupported) {
					t.Errorf("leaf weight: %v", err)
				}
			}
		})

		// hugepageLimits: as kubelet sends them, 0 for every page size.
		t.Run("hugepageLimits", func(t *testing.T) {
			sizes, err := hugePageSizes()
			if err != nil || len(sizes) == 0 {
				t.Skipf("no huge page sizes: %v", err)
			}
			var ls []specs.LinuxHugepageLimit
			for _, s := range sizes {
				ls = append(ls, specs.LinuxHugepageLimit{Pagesize: hugePageName(s), Limit: 0})
			}
			dir, v2 := controllerHere(t, c, "hugetlb", "hugetlb")
			if dir == "" {
				want := map[Mode]string{
					V1:     "cgroups: hugetlb controller: no v1 hierarchy of it is mounted",
					V2:     "cgroups: hugetlb controller not enabled in " + c.Paths()[KeyUnified],
					Hybrid: "cgroups: hugetlb controller not enabled in " + c.Paths()[KeyUnified],
				}[mode]
				if err := c.Set(huge(ls...)); err == nil || !strings.HasPrefix(err.Error(), want) {
					t.Errorf("Set: %v\nwant an error starting %q", err, want)
				} else {
					t.Logf("as expected: %v", err)
				}
				return
			}
			set(t, c, huge(ls...))
			suffix := ".limit_in_bytes"
			if v2 {
				suffix = ".max"
			}
			for _, l := range ls {
				if got := readTrim(t, dir, "hugetlb."+l.Pagesize+suffix); got != "0" {
					t.Errorf("hugetlb.%s%s = %q", l.Pagesize, suffix, got)
				}
			}
			two := specs.LinuxHugepageLimit{Pagesize: ls[0].Pagesize, Limit: 2 * sizes[0]}
			set(t, c, huge(two))
			if got := readTrim(t, dir, "hugetlb."+two.Pagesize+suffix); got != strconv.FormatUint(two.Limit, 10) {
				t.Errorf("hugetlb.%s%s = %q", two.Pagesize, suffix, got)
			}
		})

		t.Run("rdma", func(t *testing.T) {
			r := &specs.LinuxResources{Rdma: map[string]specs.LinuxRdma{"cfdtest0": {HcaHandles: ptr[uint32](1)}}}
			dir, _ := controllerHere(t, c, "rdma", "rdma")
			err := c.Set(r)
			if dir != "" { // the kernel refuses a device it does not have
				if want := "cgroups: set rdma.max to cfdtest0 hca_handle=1 in " + dir; err == nil || !strings.HasPrefix(err.Error(), want) {
					t.Errorf("Set: %v\nwant an error starting %q", err, want)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), "rdma controller") {
				t.Errorf("Set: %v, want an error naming the rdma controller", err)
			}
		})

		t.Run("network", func(t *testing.T) {
			for ctrl, r := range map[string]*specs.LinuxResources{
				"net_cls":  {Network: &specs.LinuxNetwork{ClassID: ptr[uint32](0x100001)}},
				"net_prio": {Network: &specs.LinuxNetwork{Priorities: []specs.LinuxInterfacePriority{{Name: "lo", Priority: 3}}}},
			} {
				err := c.Set(r)
				dir, ok := c.Paths()[ctrl]
				switch {
				case mode == V2:
					if !errors.Is(err, errors.ErrUnsupported) || !strings.Contains(err.Error(), "cgroup v2 has no net_cls or net_prio") {
						t.Errorf("%s: %v", ctrl, err)
					}
				case ok:
					if err != nil {
						t.Errorf("%s: %v", ctrl, err)
					} else if ctrl == "net_cls" && readTrim(t, dir, "net_cls.classid") != "1048577" {
						t.Errorf("net_cls.classid = %q", readTrim(t, dir, "net_cls.classid"))
					}
				default:
					if want := "cgroups: " + ctrl + " controller: no v1 hierarchy of it is mounted"; err == nil || !strings.HasPrefix(err.Error(), want) {
						t.Errorf("%s: %v\nwant an error starting %q", ctrl, err, want)
					}
				}
			}
		})

		t.Run("unified", func(t *testing.T) {
			r := unified("cgroup.max.descendants", "5", "cgroup.max.depth", "2")
			if mode != V2 {
				if err := c.Set(r); !errors.Is(err, errors.ErrUnsupported) || !strings.Contains(err.Error(), "linux.resources.unified") {
					t.Errorf("unified in %v: %v", mode, err)
				}
				return
			}
			dir := c.Paths()[KeyUnified]
			set(t, c, r)
			if d, m := readTrim(t, dir, "cgroup.max.descendants"), readTrim(t, dir, "cgroup.max.depth"); d != "5" || m != "2" {
				t.Errorf("cgroup.max.descendants %q, cgroup.max.depth %q", d, m)
			}
			set(t, c, unified("cgroup.max.descendants", "max\n", "cgroup.max.depth", "max"))
			if d := readTrim(t, dir, "cgroup.max.descendants"); d != "max" {
				t.Errorf("cgroup.max.descendants %q", d)
			}
			// The kernel's refusal names file, value and directory.
			var errno unix.Errno
			if err := c.Set(unified("cgroup.max.depth", "x")); !errors.As(err, &errno) ||
				!strings.HasPrefix(err.Error(), "cgroups: set cgroup.max.depth to x in "+dir+": ") {
				t.Errorf("bad value: %v", err)
			}
			for k, want := range map[string]string{
				"cgroup.procs":    "the runtime manages cgroup.procs itself",
				"../cgroup.procs": "not a file name",
				"cgroup.nosuch":   "no such file in " + dir,
			} {
				if err := c.Set(unified(k, "1")); err == nil || !strings.Contains(err.Error(), want) {
					t.Errorf("unified %q: %v, want an error with %q", k, err, want)
				}
			}
			avail := readTrim(t, dir, "cgroup.controllers")
			if !slicesContains(strings.Fields(avail), "memory") {
				if err := c.Set(unified("memory.high", "1")); err == nil || !strings.Contains(err.Error(), "memory controller not enabled in "+dir) {
					t.Errorf("unified memory.high: %v", err)
				}
			}
		})
	})
}
