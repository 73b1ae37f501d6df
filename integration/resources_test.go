package integration

import (
	"crypto/rand"
	byteorder "encoding/binary" // the package has a var binary
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// wholeDisk returns a block device of the host (a disk, not a partition)
// for a test container's own io limits, which change nothing for anyone
// else, as "major:minor".
func wholeDisk(t *testing.T) (major, minor int64) {
	t.Helper()
	major, minor, ok := firstDisk(t)
	if !ok {
		t.Skip("no block device in /proc/partitions to set io limits on")
	}
	return major, minor
}

// firstDisk returns the first whole disk /proc/partitions lists.
func firstDisk(t *testing.T) (major, minor int64, ok bool) {
	t.Helper()
	b, err := os.ReadFile("/proc/partitions")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) != 4 || f[0] == "major" {
			continue
		}
		dev := f[0] + ":" + f[1]
		if _, err := os.Stat(filepath.Join("/sys/dev/block", dev, "partition")); err == nil {
			continue
		}
		major, _ = strconv.ParseInt(f[0], 10, 64)
		minor, _ = strconv.ParseInt(f[1], 10, 64)
		return major, minor, true
	}
	return 0, 0, false
}

func readIn(t *testing.T, dir, file string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, file))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// TestResourcesBlockIOHugetlbRdma: the limits whose controllers this host
// may lack (io, hugetlb, rdma) are written to a real container's cgroup from
// config.json at create and from `update --resources -` (as containerd sends
// them), and read back from the kernel's files: cgroup v1 files where the
// controller is a v1 hierarchy (this host's blkio), cgroup2 ones where it is
// on cgroup2 (hugetlb here; every controller in the VM of `make test-vm`).
// A controller the host lacks skips its part, naming it.
func TestResourcesBlockIOHugetlbRdma(t *testing.T) {
	e := newEnv(t, "sleep", "100")
	major, minor := wholeDisk(t)
	dev := strconv.FormatInt(major, 10) + ":" + strconv.FormatInt(minor, 10)
	ioDir, ioV2 := cgroupDir(t, "blkio", "io", e.cgroup)
	hugeDir, hugeV2 := cgroupDir(t, "hugetlb", "hugetlb", e.cgroup)
	rdmaDir, _ := cgroupDir(t, "rdma", "rdma", e.cgroup)
	const hugeFile = "/sys/kernel/mm/hugepages/hugepages-2048kB"
	_, hugeErr := os.Stat(hugeFile)

	s := e.spec()
	r := &specs.LinuxResources{}
	if ioDir != "" {
		r.BlockIO = &specs.LinuxBlockIO{
			ThrottleReadBpsDevice:   []specs.LinuxThrottleDevice{{LinuxBlockIODevice: specs.LinuxBlockIODevice{Major: major, Minor: minor}, Rate: 1048576}},
			ThrottleWriteIOPSDevice: []specs.LinuxThrottleDevice{{LinuxBlockIODevice: specs.LinuxBlockIODevice{Major: major, Minor: minor}, Rate: 100}},
		}
	}
	if hugeDir != "" && hugeErr == nil {
		r.HugepageLimits = []specs.LinuxHugepageLimit{{Pagesize: "2MB", Limit: 2 << 21}}
	}
	s.Linux.Resources = r
	e.writeSpec(s)
	e.ok("run", "-d", "-b", e.bundle, e.id)

	t.Run("io", func(t *testing.T) {
		if ioDir == "" {
			t.Skip("no io controller: neither a cgroup v1 blkio hierarchy nor io on cgroup2")
		}
		if ioV2 {
			if got := readIn(t, ioDir, "io.max"); got != dev+" rbps=1048576 wbps=max riops=max wiops=100" {
				t.Errorf("io.max = %q after create", got)
			}
		} else {
			if got := readIn(t, ioDir, "blkio.throttle.read_bps_device"); got != dev+" 1048576" {
				t.Errorf("blkio.throttle.read_bps_device = %q after create", got)
			}
			if got := readIn(t, ioDir, "blkio.throttle.write_iops_device"); got != dev+" 100" {
				t.Errorf("blkio.throttle.write_iops_device = %q after create", got)
			}
		}
		// Update: a new read rate, the write rate removed (0), and a
		// weight where the kernel has a weight file (BFQ or iocost).
		weightFile, want := "", ""
		for _, c := range []struct{ file, want string }{
			{"io.bfq.weight", "default 300"}, {"io.weight", "default 2930"}, // 1+(300-10)*9999/990
			{"blkio.weight", "300"}, {"blkio.bfq.weight", "300"},
		} {
			if _, err := os.Stat(filepath.Join(ioDir, c.file)); err == nil {
				weightFile, want = c.file, c.want
				break
			}
		}
		upd := map[string]any{"blockIO": map[string]any{
			"throttleReadBpsDevice":   []map[string]any{{"major": major, "minor": minor, "rate": 2097152}},
			"throttleWriteIOPSDevice": []map[string]any{{"major": major, "minor": minor, "rate": 0}},
		}}
		if weightFile != "" {
			upd["blockIO"].(map[string]any)["weight"] = 300
		} else {
			// No proportional-weight scheduler here (a fresh Debian 12 on
			// cgroup v1: no CFQ, no BFQ loaded): a weight is refused, naming
			// the files it needs, and the update changes nothing.
			want := "linux.resources.blockIO.weight: the cgroup has no blkio.bfq.weight (nor blkio.weight: no proportional-weight IO scheduler, CFQ or BFQ, in the kernel)"
			if ioV2 {
				want = "linux.resources.blockIO.weight: the cgroup has no io.weight (nor io.bfq.weight: neither BFQ nor iocost in the kernel)"
			}
			js := `{"blockIO":{"weight":300,"throttleReadBpsDevice":[{"major":` + strconv.FormatInt(major, 10) + `,"minor":` + strconv.FormatInt(minor, 10) + `,"rate":2097152}]}}`
			if r := e.cfdIn([]byte(js), "update", "--resources", "-", e.id); r.code == 0 || !strings.Contains(r.stderr, want) {
				t.Errorf("update with a weight and no weight file in %s: %v, want an error with %q", ioDir, r, want)
			}
			file, was := "blkio.throttle.read_bps_device", dev+" 1048576"
			if ioV2 {
				file, was = "io.max", dev+" rbps=1048576 wbps=max riops=max wiops=100"
			}
			if got := readIn(t, ioDir, file); got != was {
				t.Errorf("%s = %q after a refused update, want it unchanged, %q", file, got, was)
			}
		}
		js, _ := json.Marshal(upd)
		if r := e.cfdIn(js, "update", "--resources", "-", e.id); r.code != 0 {
			t.Fatalf("update --resources - %s: %v", js, r)
		}
		if ioV2 {
			if got := readIn(t, ioDir, "io.max"); got != dev+" rbps=2097152 wbps=max riops=max wiops=max" {
				t.Errorf("io.max = %q after update", got)
			}
		} else {
			if got := readIn(t, ioDir, "blkio.throttle.read_bps_device"); got != dev+" 2097152" {
				t.Errorf("blkio.throttle.read_bps_device = %q after update", got)
			}
			if got := readIn(t, ioDir, "blkio.throttle.write_iops_device"); got != "" {
				t.Errorf("blkio.throttle.write_iops_device = %q after rate 0, want it empty", got)
			}
		}
		if weightFile != "" {
			if got := readIn(t, ioDir, weightFile); got != want {
				t.Errorf("%s = %q after update, want %q", weightFile, got, want)
			}
		}
	})

	t.Run("hugetlb", func(t *testing.T) {
		switch {
		case hugeDir == "":
			t.Skip("no hugetlb controller: neither a cgroup v1 hugetlb hierarchy nor hugetlb on cgroup2")
		case hugeErr != nil:
			t.Skipf("no 2 MiB huge pages: %v", hugeErr)
		}
		file := "hugetlb.2MB.limit_in_bytes"
		if hugeV2 {
			file = "hugetlb.2MB.max"
		}
		if got := readIn(t, hugeDir, file); got != strconv.Itoa(2<<21) {
			t.Errorf("%s = %q after create, want %d", file, got, 2<<21)
		}
		js := `{"hugepageLimits":[{"pageSize":"2MB","limit":8388608}]}`
		if r := e.cfdIn([]byte(js), "update", "--resources", "-", e.id); r.code != 0 {
			t.Fatalf("update --resources - %s: %v", js, r)
		}
		if got := readIn(t, hugeDir, file); got != "8388608" {
			t.Errorf("%s = %q after update, want 8388608", file, got)
		}
	})

	t.Run("rdma", func(t *testing.T) {
		if rdmaDir == "" {
			t.Skip("no rdma controller: neither a cgroup v1 rdma hierarchy nor rdma on cgroup2")
		}
		// A device the kernel does not have: it refuses the limit, and
		// the runtime must say so, not drop it.
		js := `{"rdma":{"cfdtest0":{"hcaHandles":1}}}`
		if r := e.cfdIn([]byte(js), "update", "--resources", "-", e.id); r.code == 0 || !strings.Contains(r.stderr, "rdma.max") {
			t.Errorf("rdma limit for a device that is not there: %v, want an error naming rdma.max", r)
		}
		hca, why := softRoCE(t)
		if hca == "" {
			t.Skipf("rdma controller present but no RDMA device of the test's own: %s", why)
		}
		js = `{"rdma":{"` + hca + `":{"hcaHandles":3,"hcaObjects":100}}}`
		if r := e.cfdIn([]byte(js), "update", "--resources", "-", e.id); r.code != 0 {
			t.Fatalf("update --resources - %s: %v", js, r)
		}
		if got := readIn(t, rdmaDir, "rdma.max"); !strings.Contains(got, hca+" hca_handle=3 hca_object=100") {
			t.Errorf("rdma.max = %q, want %s hca_handle=3 hca_object=100", got, hca)
		}
	})
}

// softRoCE makes an RDMA device of the test's own: a soft-RoCE (rdma_rxe)
// link on a veth pair of its own, as `rdma link add NAME type rxe netdev
// VETH` does (iproute2's rdma is not in busybox, so the netlink request is
// sent here). Deleting the veth after the test removes the device. Without
// rdma_rxe loaded it returns "" and why (hack/vm.sh loads it in the VM).
func softRoCE(t *testing.T) (name, why string) {
	t.Helper()
	if _, err := os.Stat("/sys/module/rdma_rxe"); err != nil {
		return "", "the rdma_rxe module (soft-RoCE) is not loaded"
	}
	b := make([]byte, 3)
	rand.Read(b)
	veth, name := "cfdrxe"+hex.EncodeToString(b), "cfdrdma"+hex.EncodeToString(b)
	vethPair(t, veth)
	if out, err := exec.Command("ip", "link", "set", veth, "up").CombinedOutput(); err != nil {
		t.Fatalf("ip link set %s up: %v\n%s", veth, err, out)
	}
	if err := rdmaNewLink(name, "rxe", veth); err != nil {
		t.Fatalf("rdma link add %s type rxe netdev %s: %v", name, veth, err)
	}
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if _, err := os.Stat("/sys/class/infiniband/" + name); err == nil {
			return name, ""
		}
		if time.Now().After(deadline) {
			t.Fatalf("rdma link %s: no /sys/class/infiniband/%s after 5s", name, name)
		}
	}
}

// rdmaNewLink sends RDMA_NLDEV_CMD_NEWLINK on a NETLINK_RDMA socket and
// waits for the kernel's answer.
func rdmaNewLink(name, linkType, netdev string) error {
	const (
		rdmaNLNLDev       = 5  // RDMA_NL_NLDEV
		nldevCmdNewLink   = 3  // RDMA_NLDEV_CMD_NEWLINK
		nldevAttrDevName  = 2  // RDMA_NLDEV_ATTR_DEV_NAME
		nldevAttrNdevName = 51 // RDMA_NLDEV_ATTR_NDEV_NAME
		nldevAttrLinkType = 65 // RDMA_NLDEV_ATTR_LINK_TYPE
	)
	var attrs []byte
	for _, a := range []struct {
		typ uint16
		val string
	}{{nldevAttrDevName, name}, {nldevAttrLinkType, linkType}, {nldevAttrNdevName, netdev}} {
		n := 4 + len(a.val) + 1 // NUL-terminated
		buf := make([]byte, (n+3)&^3)
		byteorder.NativeEndian.PutUint16(buf[0:], uint16(n))
		byteorder.NativeEndian.PutUint16(buf[2:], a.typ)
		copy(buf[4:], a.val)
		attrs = append(attrs, buf...)
	}
	msg := make([]byte, unix.NLMSG_HDRLEN, unix.NLMSG_HDRLEN+len(attrs))
	byteorder.NativeEndian.PutUint32(msg[0:], uint32(unix.NLMSG_HDRLEN+len(attrs)))
	byteorder.NativeEndian.PutUint16(msg[4:], rdmaNLNLDev<<10|nldevCmdNewLink)
	byteorder.NativeEndian.PutUint16(msg[6:], unix.NLM_F_REQUEST|unix.NLM_F_ACK)
	byteorder.NativeEndian.PutUint32(msg[8:], 1) // sequence
	msg = append(msg, attrs...)

	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_RDMA)
	if err != nil {
		return fmt.Errorf("socket NETLINK_RDMA: %w", err)
	}
	defer unix.Close(fd)
	if err := unix.Sendto(fd, msg, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return fmt.Errorf("send: %w", err)
	}
	buf := make([]byte, 4096)
	n, _, err := unix.Recvfrom(fd, buf, 0)
	if err != nil {
		return fmt.Errorf("receive: %w", err)
	}
	msgs, err := syscall.ParseNetlinkMessage(buf[:n])
	if err != nil {
		return err
	}
	for _, m := range msgs {
		if m.Header.Type == unix.NLMSG_ERROR && len(m.Data) >= 4 {
			if code := int32(byteorder.NativeEndian.Uint32(m.Data)); code != 0 {
				return unix.Errno(-code)
			}
			return nil
		}
	}
	return errors.New("no answer from the kernel")
}
