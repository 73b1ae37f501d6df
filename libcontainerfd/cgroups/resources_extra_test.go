package cgroups

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// fakeHugepages points hugepagesDir, for the test, at a directory with the
// given hugepages-<N>kB entries.
func fakeHugepages(t *testing.T, kbs ...string) {
	t.Helper()
	dir := t.TempDir()
	for _, kb := range kbs {
		if err := os.Mkdir(filepath.Join(dir, "hugepages-"+kb+"kB"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	old := hugepagesDir
	hugepagesDir = dir
	t.Cleanup(func() { hugepagesDir = old })
}

func blkio(b specs.LinuxBlockIO) *specs.LinuxResources { return &specs.LinuxResources{BlockIO: &b} }
func huge(l ...specs.LinuxHugepageLimit) *specs.LinuxResources {
	return &specs.LinuxResources{HugepageLimits: l}
}
func unified(kv ...string) *specs.LinuxResources {
	u := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		u[kv[i]] = kv[i+1]
	}
	return &specs.LinuxResources{Unified: u}
}

func wdev(maj, min int64, w, lw *uint16) specs.LinuxWeightDevice {
	return specs.LinuxWeightDevice{LinuxBlockIODevice: specs.LinuxBlockIODevice{Major: maj, Minor: min}, Weight: w, LeafWeight: lw}
}

func tdev(maj, min int64, rate uint64) specs.LinuxThrottleDevice {
	return specs.LinuxThrottleDevice{LinuxBlockIODevice: specs.LinuxBlockIODevice{Major: maj, Minor: min}, Rate: rate}
}

func TestBlkioToIOWeight(t *testing.T) {
	for w, want := range map[uint16]uint64{10: 1, 100: 910, 500: 4950, 1000: 10000, 11: 11} {
		if got := blkioToIOWeight(w); got != want {
			t.Errorf("blkioToIOWeight(%d) = %d, want %d", w, got, want)
		}
	}
}

func TestPageSizes(t *testing.T) {
	for s, want := range map[string]uint64{"2MB": 2 << 20, "1GB": 1 << 30, "64KB": 64 << 10, "2048KB": 2 << 20, "2mB": 2 << 20,
		"32MB": 32 << 20, "1TB": 1 << 40, "": 0, "2M": 0, "MB": 0, "0MB": 0, "-2MB": 0, "+2MB": 0, "2XB": 0, "2 MB": 0,
		"18014398509481984KB": 0} {
		got, ok := parsePageSize(s)
		if got != want || ok != (want != 0) {
			t.Errorf("parsePageSize(%q) = %d, %v; want %d", s, got, ok, want)
		}
	}
	for size, want := range map[uint64]string{64 << 10: "64KB", 2 << 20: "2MB", 32 << 20: "32MB", 1 << 30: "1GB", 16 << 30: "16GB", 512 << 20: "512MB"} {
		if got := hugePageName(size); got != want {
			t.Errorf("hugePageName(%d) = %q, want %q", size, got, want)
		}
	}
	fakeHugepages(t, "2048", "1048576", "junk")
	os.Mkdir(filepath.Join(hugepagesDir, "other"), 0o755)
	sizes, err := hugePageSizes()
	if err != nil || !reflect.DeepEqual(sizes, []uint64{2 << 20, 1 << 30}) {
		t.Errorf("hugePageSizes: %v, %v", sizes, err)
	}
}

// extraCases are the blockIO, hugepageLimits, rdma, network and unified
// cases common to v1 and cgroup2 where the files are the same.
func commonExtraCases() []planCase {
	return []planCase{
		{name: "empty blockIO and network", r: &specs.LinuxResources{BlockIO: &specs.LinuxBlockIO{}, Network: &specs.LinuxNetwork{}}},
		{name: "blkio weight 9", r: blkio(specs.LinuxBlockIO{Weight: ptr[uint16](9)}), err: "linux.resources.blockIO.weight: 9 is out of range 10-1000"},
		{name: "blkio weight 1001", r: blkio(specs.LinuxBlockIO{Weight: ptr[uint16](1001)}), err: "linux.resources.blockIO.weight: 1001 is out of range"},
		{name: "blkio leaf weight 5", r: blkio(specs.LinuxBlockIO{LeafWeight: ptr[uint16](5)}), err: "linux.resources.blockIO.leafWeight: 5 is out of range"},
		{name: "weight device without weights", r: blkio(specs.LinuxBlockIO{WeightDevice: []specs.LinuxWeightDevice{wdev(8, 0, nil, nil)}}),
			err: "linux.resources.blockIO.weightDevice[0]: neither weight nor leafWeight"},
		{name: "weight device weight 2000", r: blkio(specs.LinuxBlockIO{WeightDevice: []specs.LinuxWeightDevice{wdev(8, 0, nil, nil), wdev(8, 0, ptr[uint16](2000), nil)}[1:]}),
			err: "linux.resources.blockIO.weightDevice[0].weight: 2000 is out of range"},
		{name: "bad device number", r: blkio(specs.LinuxBlockIO{ThrottleWriteIOPSDevice: []specs.LinuxThrottleDevice{tdev(8, 0, 1), tdev(-1, 0, 1)}}),
			err: "linux.resources.blockIO.throttleWriteIOPSDevice[1]: -1:0 is not a device number"},
		{name: "minor too big", r: blkio(specs.LinuxBlockIO{WeightDevice: []specs.LinuxWeightDevice{wdev(8, 1<<20, ptr[uint16](100), nil)}}),
			err: "linux.resources.blockIO.weightDevice[0]: 8:1048576 is not a device number"},

		// hugetlb: this fixture has 2MB and 1GB pages
		{name: "hugetlb unknown size", r: huge(specs.LinuxHugepageLimit{Pagesize: "2MB"}, specs.LinuxHugepageLimit{Pagesize: "64KB"}),
			err: "linux.resources.hugepageLimits[1].pageSize: the host has no 64KB huge pages (it has 2MB, 1GB in "},
		{name: "hugetlb bad size", r: huge(specs.LinuxHugepageLimit{Pagesize: "2 MB"}),
			err: `linux.resources.hugepageLimits[0].pageSize: "2 MB" is not a size such as 2MB or 1GB`},
		{name: "hugetlb same size twice", r: huge(specs.LinuxHugepageLimit{Pagesize: "2MB"}, specs.LinuxHugepageLimit{Pagesize: "2048KB"}),
			err: "linux.resources.hugepageLimits[1].pageSize: 2048KB is the page size of hugepageLimits[0] again"},

		// rdma: the same file everywhere
		{name: "rdma", r: &specs.LinuxResources{Rdma: map[string]specs.LinuxRdma{
			"mlx5_1": {HcaObjects: ptr[uint32](100)},
			"mlx5_0": {HcaHandles: ptr[uint32](2), HcaObjects: ptr[uint32](1000)},
			"hfi1_0": {HcaHandles: ptr[uint32](0)},
		}}, want: ws("rdma.max", "hfi1_0 hca_handle=0", "rdma.max", "mlx5_0 hca_handle=2 hca_object=1000", "rdma.max", "mlx5_1 hca_object=100")},
		{name: "rdma without limits", r: &specs.LinuxResources{Rdma: map[string]specs.LinuxRdma{"mlx5_0": {}}},
			err: `linux.resources.rdma["mlx5_0"]: neither hcaHandles nor hcaObjects`},
		{name: "rdma bad name", r: &specs.LinuxResources{Rdma: map[string]specs.LinuxRdma{"mlx5_0 hca_handle=1\nx": {HcaHandles: ptr[uint32](1)}}},
			err: "not a device name"},
		{name: "rdma too big", r: &specs.LinuxResources{Rdma: map[string]specs.LinuxRdma{"mlx5_0": {HcaObjects: ptr[uint32](1 << 31)}}},
			err: `linux.resources.rdma["mlx5_0"].hcaObjects: 2147483648 is above 2147483647`},
	}
}

// TestPlanExtraV2: blockIO, hugepageLimits, rdma, network and unified on
// cgroup2.
func TestPlanExtraV2(t *testing.T) {
	fakeHugepages(t, "2048", "1048576")
	defaults := map[string]string{
		"cgroup.controllers": "cpu io memory hugetlb pids rdma", "cgroup.max.depth": "max", "memory.high": "max",
		"io.weight": "default 100", "io.bfq.weight": "default 100", "io.max": "",
		"hugetlb.2MB.max": "max", "hugetlb.2MB.rsvd.max": "max", "hugetlb.1GB.max": "max", "hugetlb.1GB.rsvd.max": "max",
		"rdma.max": "",
	}
	noBFQ := with(defaults, "io.bfq.weight", "")
	cases := append(commonExtraCases(), []planCase{
		// io: BFQ's weight as is, else io.weight converted
		{name: "weight, BFQ", r: blkio(specs.LinuxBlockIO{Weight: ptr[uint16](500)}), want: ws("io.bfq.weight", "500")},
		{name: "weight, io.weight", r: blkio(specs.LinuxBlockIO{Weight: ptr[uint16](500)}), files: noBFQ, want: ws("io.weight", "4950")},
		{name: "weight 10 and 1000", r: blkio(specs.LinuxBlockIO{Weight: ptr[uint16](10), WeightDevice: []specs.LinuxWeightDevice{wdev(8, 16, ptr[uint16](1000), nil)}}),
			files: noBFQ, want: ws("io.weight", "1", "io.weight", "8:16 10000")},
		{name: "weight 0 is unset", r: blkio(specs.LinuxBlockIO{Weight: ptr[uint16](0)})},
		{name: "device weights, BFQ", r: blkio(specs.LinuxBlockIO{WeightDevice: []specs.LinuxWeightDevice{wdev(8, 0, ptr[uint16](300), nil), wdev(8, 16, ptr[uint16](0), nil)}}),
			want: ws("io.bfq.weight", "8:0 300")},
		{name: "no weight file", r: blkio(specs.LinuxBlockIO{Weight: ptr[uint16](500)}), files: with(noBFQ, "io.weight", ""),
			err: "linux.resources.blockIO.weight: the cgroup has no io.weight (nor io.bfq.weight", unsup: true},
		{name: "leaf weight", r: blkio(specs.LinuxBlockIO{LeafWeight: ptr[uint16](500)}), err: "linux.resources.blockIO.leafWeight: cgroup v2 has no leaf weight", unsup: true},
		{name: "device leaf weight", r: blkio(specs.LinuxBlockIO{WeightDevice: []specs.LinuxWeightDevice{wdev(8, 0, ptr[uint16](100), ptr[uint16](100))}}),
			err: "cgroup v2 has no leaf weight", unsup: true},
		{name: "io.max, one line per device", r: blkio(specs.LinuxBlockIO{
			ThrottleReadBpsDevice:   []specs.LinuxThrottleDevice{tdev(8, 0, 1048576), tdev(254, 0, 0)},
			ThrottleWriteBpsDevice:  []specs.LinuxThrottleDevice{tdev(254, 0, 2097152)},
			ThrottleReadIOPSDevice:  []specs.LinuxThrottleDevice{tdev(8, 0, 100), tdev(8, 0, 200)},
			ThrottleWriteIOPSDevice: []specs.LinuxThrottleDevice{tdev(7, 0, 50)},
		}), want: ws("io.max", "8:0 rbps=1048576 riops=200", "io.max", "254:0 rbps=max wbps=2097152", "io.max", "7:0 wiops=50")},
		{name: "no io.max", r: blkio(specs.LinuxBlockIO{ThrottleReadBpsDevice: []specs.LinuxThrottleDevice{tdev(8, 0, 1)}}), files: with(defaults, "io.max", ""),
			err: "the cgroup has no io.max", unsup: true},
		{name: "all io", r: blkio(specs.LinuxBlockIO{Weight: ptr[uint16](100), WeightDevice: []specs.LinuxWeightDevice{wdev(8, 0, ptr[uint16](200), nil)},
			ThrottleWriteBpsDevice: []specs.LinuxThrottleDevice{tdev(8, 0, 4096)}}), files: noBFQ,
			want: ws("io.weight", "910", "io.weight", "8:0 1920", "io.max", "8:0 wbps=4096")},

		// hugetlb
		{name: "hugetlb, kubelet style", r: huge(specs.LinuxHugepageLimit{Pagesize: "2MB", Limit: 0}, specs.LinuxHugepageLimit{Pagesize: "1GB", Limit: 0}),
			want: ws("hugetlb.2MB.max", "0", "hugetlb.2MB.rsvd.max", "0", "hugetlb.1GB.max", "0", "hugetlb.1GB.rsvd.max", "0")},
		{name: "hugetlb in KB, no rsvd", r: huge(specs.LinuxHugepageLimit{Pagesize: "2048KB", Limit: 4 << 20}),
			files: with(defaults, "hugetlb.2MB.rsvd.max", ""), want: ws("hugetlb.2MB.max", "4194304")},

		// network: none in cgroup2
		{name: "net_prio", r: &specs.LinuxResources{Network: &specs.LinuxNetwork{Priorities: []specs.LinuxInterfacePriority{{Name: "eth0", Priority: 1}}}},
			err: "linux.resources.network.priorities: cgroup v2 has no net_cls or net_prio controller", unsup: true},
		{name: "classID 0 is unset", r: &specs.LinuxResources{Network: &specs.LinuxNetwork{ClassID: ptr[uint32](0)}}},

		// unified
		{name: "unified", r: unified("memory.high", "1048576", "cgroup.max.depth", "3", "io.max", "8:0 rbps=1\n8:16 wbps=2\n"),
			want: ws("cgroup.max.depth", "3", "io.max", "8:0 rbps=1", "io.max", "8:16 wbps=2", "memory.high", "1048576")},
		{name: "unified empty value", r: unified("memory.high", ""), want: ws("memory.high", "")},
		{name: "unified wins, written last", r: &specs.LinuxResources{Pids: &specs.LinuxPids{Limit: ptr[int64](5)}, Unified: map[string]string{"memory.high": "max"}},
			want: ws("pids.max", "5", "memory.high", "max")},
		{name: "unified slash", r: unified("../x", "1"), err: `linux.resources.unified["../x"]: not a file name`},
		{name: "unified dot dot", r: unified("..", "1"), err: "not a file name"},
		{name: "unified empty key", r: unified("", "1"), err: "not a file name"},
		{name: "unified cgroup.procs", r: unified("cgroup.procs", "1"), err: `linux.resources.unified["cgroup.procs"]: the runtime manages cgroup.procs itself`},
		{name: "unified cgroup.kill", r: unified("cgroup.kill", "1"), err: "manages cgroup.kill itself"},
		{name: "unified subtree_control", r: unified("cgroup.subtree_control", "+memory"), err: "manages cgroup.subtree_control itself"},
		{name: "unified freeze", r: unified("cgroup.freeze", "1"), err: "manages cgroup.freeze itself"},
		{name: "unified controller missing", r: unified("misc.max", "x 1"),
			err: `linux.resources.unified["misc.max"]: misc controller not enabled in  (cgroup.controllers has "cpu io memory hugetlb pids rdma")`},
		{name: "unified no such file", r: unified("memory.nosuch", "1"), err: `linux.resources.unified["memory.nosuch"]: no such file in`},
		{name: "unified no such cgroup file", r: unified("cgroup.nosuch", "1"), err: "no such file in"},
	}...)
	runPlanCases(t, true, defaults, cases)
}

// TestPlanExtraV1: blockIO, hugepageLimits, rdma, network and unified in
// v1 hierarchies.
func TestPlanExtraV1(t *testing.T) {
	fakeHugepages(t, "2048", "1048576")
	defaults := map[string]string{ // a kernel with BFQ, no CFQ
		"blkio.bfq.weight": "100", "blkio.bfq.weight_device": "",
		"blkio.throttle.read_bps_device": "", "blkio.throttle.write_bps_device": "",
		"blkio.throttle.read_iops_device": "", "blkio.throttle.write_iops_device": "",
		"hugetlb.2MB.limit_in_bytes": "9223372036854771712", "hugetlb.2MB.rsvd.limit_in_bytes": "9223372036854771712",
		"hugetlb.1GB.limit_in_bytes": "9223372036854771712", "hugetlb.1GB.rsvd.limit_in_bytes": "9223372036854771712",
		"rdma.max": "", "net_cls.classid": "0", "net_prio.ifpriomap": "lo 0",
	}
	cfq := with(defaults, "blkio.bfq.weight", "", "blkio.weight", "500", "blkio.weight_device", "", "blkio.leaf_weight", "500", "blkio.leaf_weight_device", "")
	cases := append(commonExtraCases(), []planCase{
		{name: "weight, BFQ", r: blkio(specs.LinuxBlockIO{Weight: ptr[uint16](500), WeightDevice: []specs.LinuxWeightDevice{wdev(8, 0, ptr[uint16](300), nil)}}),
			want: ws("blkio.bfq.weight", "500", "blkio.bfq.weight_device", "8:0 300")},
		{name: "weights, CFQ", r: blkio(specs.LinuxBlockIO{Weight: ptr[uint16](500), LeafWeight: ptr[uint16](200),
			WeightDevice: []specs.LinuxWeightDevice{wdev(8, 0, ptr[uint16](300), ptr[uint16](100)), wdev(8, 16, nil, ptr[uint16](50))}}), files: cfq,
			want: ws("blkio.weight", "500", "blkio.leaf_weight", "200", "blkio.weight_device", "8:0 300", "blkio.leaf_weight_device", "8:0 100",
				"blkio.leaf_weight_device", "8:16 50")},
		{name: "leaf weight without CFQ", r: blkio(specs.LinuxBlockIO{LeafWeight: ptr[uint16](200)}),
			err: "linux.resources.blockIO.leafWeight: the cgroup has no blkio.leaf_weight (leaf weights were CFQ's", unsup: true},
		{name: "no weight scheduler", r: blkio(specs.LinuxBlockIO{Weight: ptr[uint16](200)}), files: with(defaults, "blkio.bfq.weight", ""),
			err: "linux.resources.blockIO.weight: the cgroup has no blkio.bfq.weight (nor blkio.weight", unsup: true},
		{name: "throttle", r: blkio(specs.LinuxBlockIO{
			ThrottleReadBpsDevice:   []specs.LinuxThrottleDevice{tdev(8, 0, 1048576), tdev(254, 0, 0)},
			ThrottleWriteBpsDevice:  []specs.LinuxThrottleDevice{tdev(254, 0, 2097152)},
			ThrottleReadIOPSDevice:  []specs.LinuxThrottleDevice{tdev(8, 0, 100)},
			ThrottleWriteIOPSDevice: []specs.LinuxThrottleDevice{tdev(7, 0, 50)},
		}), want: ws("blkio.throttle.read_bps_device", "8:0 1048576", "blkio.throttle.read_bps_device", "254:0 0",
			"blkio.throttle.write_bps_device", "254:0 2097152", "blkio.throttle.read_iops_device", "8:0 100",
			"blkio.throttle.write_iops_device", "7:0 50")},
		{name: "no throttling", r: blkio(specs.LinuxBlockIO{ThrottleReadBpsDevice: []specs.LinuxThrottleDevice{tdev(8, 0, 1)}}),
			files: with(defaults, "blkio.throttle.read_bps_device", ""), err: "the cgroup has no blkio.throttle.read_bps_device", unsup: true},

		{name: "hugetlb", r: huge(specs.LinuxHugepageLimit{Pagesize: "1GB", Limit: 1 << 30}, specs.LinuxHugepageLimit{Pagesize: "2MB", Limit: 0}),
			want: ws("hugetlb.1GB.limit_in_bytes", "1073741824", "hugetlb.1GB.rsvd.limit_in_bytes", "1073741824",
				"hugetlb.2MB.limit_in_bytes", "0", "hugetlb.2MB.rsvd.limit_in_bytes", "0")},
		{name: "hugetlb, no rsvd", r: huge(specs.LinuxHugepageLimit{Pagesize: "2MB", Limit: 2 << 20}),
			files: with(defaults, "hugetlb.2MB.rsvd.limit_in_bytes", ""), want: ws("hugetlb.2MB.limit_in_bytes", "2097152")},

		{name: "network", r: &specs.LinuxResources{Network: &specs.LinuxNetwork{ClassID: ptr[uint32](0x100001),
			Priorities: []specs.LinuxInterfacePriority{{Name: "eth0", Priority: 5}, {Name: "lo", Priority: 0}}}},
			want: ws("net_cls.classid", "1048577", "net_prio.ifpriomap", "eth0 5", "net_prio.ifpriomap", "lo 0")},
		{name: "bad interface", r: &specs.LinuxResources{Network: &specs.LinuxNetwork{Priorities: []specs.LinuxInterfacePriority{{Name: "eth0 1\nlo"}}}},
			err: `linux.resources.network.priorities[0].name: "eth0 1\nlo" is not an interface name`},
		{name: "long interface", r: &specs.LinuxResources{Network: &specs.LinuxNetwork{Priorities: []specs.LinuxInterfacePriority{{Name: "abcdefghijklmnop"}}}},
			err: "is not an interface name"},

		{name: "unified", r: unified("memory.high", "1"), err: "linux.resources.unified: cgroup v2 files cannot be set in v1 cgroup mode", unsup: true},
	}...)
	runPlanCases(t, false, defaults, cases)
}

// fakeDir makes a plain directory with the given files.
func fakeDir(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for f, v := range files {
		if err := os.WriteFile(filepath.Join(dir, f), []byte(v+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// TestSetExtraFakeDirs runs Set against fake directories in each mode: each
// controller's writes land in its own directory, v1 where it is mounted,
// else in the cgroup2 one where it is enabled, else an error naming it.
func TestSetExtraFakeDirs(t *testing.T) {
	fakeHugepages(t, "2048", "1048576")
	all := &specs.LinuxResources{
		BlockIO:        &specs.LinuxBlockIO{Weight: ptr[uint16](100), ThrottleReadBpsDevice: []specs.LinuxThrottleDevice{tdev(7, 0, 1048576)}},
		HugepageLimits: []specs.LinuxHugepageLimit{{Pagesize: "2MB", Limit: 0}, {Pagesize: "1GB", Limit: 1 << 30}},
		Rdma:           map[string]specs.LinuxRdma{"mlx5_0": {HcaHandles: ptr[uint32](3)}},
	}

	// V2: the same directory for everything.
	v2dir := fakeDir(t, map[string]string{"cgroup.controllers": "io hugetlb rdma", "io.weight": "default 100", "io.max": "",
		"hugetlb.2MB.max": "max", "hugetlb.1GB.max": "max", "hugetlb.1GB.rsvd.max": "max", "rdma.max": "", "cgroup.max.depth": "max"})
	c := &Cgroup{mode: V2, paths: Paths{KeyUnified: v2dir}, v2: v2dir, cloneFD: -1}
	if err := c.Set(all); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"io.weight": "910", "io.max": "7:0 rbps=1048576", "hugetlb.2MB.max": "0", "hugetlb.1GB.max": "1073741824",
		"hugetlb.1GB.rsvd.max": "1073741824", "rdma.max": "mlx5_0 hca_handle=3", "cgroup.max.depth": "max"}
	if got := readFiles(t, v2dir, keys(want)...); !reflect.DeepEqual(got, want) {
		t.Errorf("v2:\n got %v\nwant %v", got, want)
	}
	if err := c.Set(unified("cgroup.max.depth", "4")); err != nil {
		t.Fatal(err)
	}
	if got := readFiles(t, v2dir, "cgroup.max.depth")["cgroup.max.depth"]; got != "4" {
		t.Errorf("cgroup.max.depth %q after unified", got)
	}
	if err := c.Set(unified("memory.high", "1")); err == nil || !strings.Contains(err.Error(), `memory controller not enabled in `+v2dir+` (cgroup.controllers has "io hugetlb rdma")`) {
		t.Errorf("unified memory.high: %v", err)
	}
	if err := c.Set(&specs.LinuxResources{Network: &specs.LinuxNetwork{ClassID: ptr[uint32](1)}}); !errors.Is(err, errors.ErrUnsupported) ||
		!strings.Contains(err.Error(), "cgroup v2 has no net_cls") {
		t.Errorf("network on v2: %v", err)
	}
	bare := fakeDir(t, map[string]string{"cgroup.controllers": ""})
	cb := &Cgroup{mode: V2, paths: Paths{KeyUnified: bare}, v2: bare, cloneFD: -1}
	for _, tc := range []struct {
		r    *specs.LinuxResources
		want string
	}{
		{blkio(specs.LinuxBlockIO{Weight: ptr[uint16](100)}), "cgroups: io controller not enabled in " + bare + ` (cgroup.controllers has "")`},
		{huge(specs.LinuxHugepageLimit{Pagesize: "2MB"}), "cgroups: hugetlb controller not enabled in " + bare},
		{&specs.LinuxResources{Rdma: map[string]specs.LinuxRdma{"mlx5_0": {HcaHandles: ptr[uint32](3)}}}, "cgroups: rdma controller not enabled in " + bare},
		// validation first
		{huge(specs.LinuxHugepageLimit{Pagesize: "3MB"}), "cgroups: linux.resources.hugepageLimits[0].pageSize: the host has no 3MB huge pages"},
	} {
		if err := cb.Set(tc.r); err == nil || !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("Set: %v\nwant an error starting %q", err, tc.want)
		}
	}

	// A directory without cgroup.controllers: its error, not "no io.weight".
	none := fakeDir(t, map[string]string{"io.max": ""})
	cn := &Cgroup{mode: V2, paths: Paths{KeyUnified: none}, v2: none, cloneFD: -1}
	if err := cn.Set(blkio(specs.LinuxBlockIO{Weight: ptr[uint16](100)})); err == nil || errors.Is(err, errors.ErrUnsupported) ||
		!strings.HasPrefix(err.Error(), "cgroups: io controller: open "+none+"/cgroup.controllers: ") {
		t.Errorf("no cgroup.controllers: %v", err)
	}

	// Hybrid: blkio in v1, hugetlb in cgroup2 (as on a fresh machine where
	// the host enabled it there), rdma nowhere; net_cls not mounted.
	blk := fakeDir(t, map[string]string{"blkio.bfq.weight": "100", "blkio.throttle.read_bps_device": ""})
	uni := fakeDir(t, map[string]string{"cgroup.controllers": "hugetlb", "hugetlb.2MB.max": "max", "hugetlb.1GB.max": "max", "cgroup.max.depth": "max"})
	ch := &Cgroup{mode: Hybrid, paths: Paths{KeyUnified: uni, "blkio": blk}, v2: uni, v1: []string{blk}, cloneFD: -1}
	r := *all
	r.Rdma = nil
	if err := ch.Set(&r); err != nil {
		t.Fatal(err)
	}
	want = map[string]string{"blkio.bfq.weight": "100", "blkio.throttle.read_bps_device": "7:0 1048576"}
	if got := readFiles(t, blk, keys(want)...); !reflect.DeepEqual(got, want) {
		t.Errorf("hybrid blkio:\n got %v\nwant %v", got, want)
	}
	want = map[string]string{"hugetlb.2MB.max": "0", "hugetlb.1GB.max": "1073741824"}
	if got := readFiles(t, uni, keys(want)...); !reflect.DeepEqual(got, want) {
		t.Errorf("hybrid hugetlb:\n got %v\nwant %v", got, want)
	}
	for _, tc := range []struct {
		r    *specs.LinuxResources
		want string
	}{
		{&specs.LinuxResources{Rdma: all.Rdma}, "cgroups: rdma controller not enabled in " + uni + ` (cgroup.controllers has "hugetlb"), nor mounted as a v1 hierarchy`},
		{&specs.LinuxResources{Network: &specs.LinuxNetwork{ClassID: ptr[uint32](1)}}, "cgroups: net_cls controller: no v1 hierarchy of it is mounted (cgroup v2 has no net_cls)"},
		{&specs.LinuxResources{Network: &specs.LinuxNetwork{Priorities: []specs.LinuxInterfacePriority{{Name: "lo"}}}}, "cgroups: net_prio controller: no v1 hierarchy"},
		{unified("cgroup.max.depth", "2"), "cgroups: linux.resources.unified: cgroup v2 files cannot be set in hybrid cgroup mode"},
	} {
		if err := ch.Set(tc.r); err == nil || !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("Set: %v\nwant an error starting %q", err, tc.want)
		}
	}
	// Without blkio in v1, io in cgroup2 is looked for.
	ch2 := &Cgroup{mode: Hybrid, paths: Paths{KeyUnified: uni}, v2: uni, cloneFD: -1}
	if err := ch2.Set(blkio(specs.LinuxBlockIO{Weight: ptr[uint16](100)})); err == nil ||
		!strings.HasPrefix(err.Error(), "cgroups: io controller not enabled in "+uni+` (cgroup.controllers has "hugetlb"), nor blkio mounted as a v1 hierarchy`) {
		t.Errorf("hybrid without blkio: %v", err)
	}

	// V1: each controller in its own directory.
	dirs := map[string]string{
		"blkio":    fakeDir(t, map[string]string{"blkio.weight": "500", "blkio.throttle.read_bps_device": ""}),
		"hugetlb":  fakeDir(t, map[string]string{"hugetlb.2MB.limit_in_bytes": "0", "hugetlb.1GB.limit_in_bytes": "0", "hugetlb.1GB.rsvd.limit_in_bytes": "0"}),
		"rdma":     fakeDir(t, map[string]string{"rdma.max": ""}),
		"net_cls":  fakeDir(t, map[string]string{"net_cls.classid": "0"}),
		"net_prio": fakeDir(t, map[string]string{"net_prio.ifpriomap": ""}),
	}
	c1 := &Cgroup{mode: V1, paths: Paths(dirs), cloneFD: -1}
	for _, d := range dirs {
		c1.v1 = append(c1.v1, d)
	}
	r = *all
	r.Network = &specs.LinuxNetwork{ClassID: ptr[uint32](42), Priorities: []specs.LinuxInterfacePriority{{Name: "lo", Priority: 3}}}
	if err := c1.Set(&r); err != nil {
		t.Fatal(err)
	}
	for ctrl, want := range map[string]map[string]string{
		"blkio":    {"blkio.weight": "100", "blkio.throttle.read_bps_device": "7:0 1048576"},
		"hugetlb":  {"hugetlb.2MB.limit_in_bytes": "0", "hugetlb.1GB.limit_in_bytes": "1073741824", "hugetlb.1GB.rsvd.limit_in_bytes": "1073741824"},
		"rdma":     {"rdma.max": "mlx5_0 hca_handle=3"},
		"net_cls":  {"net_cls.classid": "42"},
		"net_prio": {"net_prio.ifpriomap": "lo 3"},
	} {
		if got := readFiles(t, dirs[ctrl], keys(want)...); !reflect.DeepEqual(got, want) {
			t.Errorf("v1 %s:\n got %v\nwant %v", ctrl, got, want)
		}
	}
	if err := c1.Set(unified("memory.high", "1")); err == nil || !strings.HasPrefix(err.Error(), "cgroups: linux.resources.unified: cgroup v2 files cannot be set in v1 cgroup mode") {
		t.Errorf("unified in v1: %v", err)
	}
	delete(c1.paths, "hugetlb")
	if err := c1.Set(huge(specs.LinuxHugepageLimit{Pagesize: "2MB"})); err == nil || !strings.HasPrefix(err.Error(), "cgroups: hugetlb controller: no v1 hierarchy of it is mounted") {
		t.Errorf("hugetlb not mounted: %v", err)
	}
}

func keys(m map[string]string) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	return ks
}
