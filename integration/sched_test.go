package integration

import (
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// process.scheduler, ioPriority, execCPUAffinity and linux.personality,
// seen from the host in /proc and from inside.
func TestSchedulingAndPersonality(t *testing.T) {
	e := newEnv(t, "sh", "-c", "uname -m; sleep 100")
	s := e.spec()
	s.Process.Scheduler = &specs.Scheduler{Policy: specs.SchedBatch, Nice: 5}
	s.Process.IOPriority = &specs.LinuxIOPriority{Class: specs.IOPRIO_CLASS_IDLE}
	s.Process.ExecCPUAffinity = &specs.CPUAffinity{Final: "1"}
	s.Linux.Personality = &specs.LinuxPersonality{Domain: specs.PerLinux32}
	e.writeSpec(s)
	e.ok("run", "-d", "-b", e.bundle, e.id)
	pid := strconv.Itoa(int(e.state()["pid"].(float64)))
	stat, _ := os.ReadFile("/proc/" + pid + "/stat")
	f := strings.Fields(string(stat)[strings.LastIndexByte(string(stat), ')')+2:])
	// Fields after ")": f[0] is field 3 (state); nice is 19, policy 41.
	if nice, policy := f[19-3], f[41-3]; nice != "5" || policy != "3" {
		t.Errorf("nice %s policy %s, want 5 and 3 (SCHED_BATCH)", nice, policy)
	}
	if out, err := exec.Command("ionice", "-p", pid).Output(); err != nil || strings.TrimSpace(string(out)) != "idle" {
		t.Errorf("ionice -p: %q %v, want idle", out, err)
	}
	status, _ := os.ReadFile("/proc/" + pid + "/status")
	if !strings.Contains(string(status), "Cpus_allowed_list:\t1\n") {
		t.Errorf("cpu affinity: %s", grepLine(string(status), "Cpus_allowed_list"))
	}
	if out := e.ok("exec", e.id, "uname", "-m"); out != "i686\n" {
		t.Errorf("personality LINUX32: exec'd uname -m says %q", out)
	}
}

func grepLine(s, prefix string) string {
	for _, l := range strings.Split(s, "\n") {
		if strings.HasPrefix(l, prefix) {
			return l
		}
	}
	return ""
}

// linux.timeOffsets: the container's clocks start where the config says.
func TestTimeOffsets(t *testing.T) {
	e := newEnv(t, "sh", "-c", "cut -d' ' -f1 /proc/uptime; echo $$")
	s := e.spec()
	s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.TimeNamespace})
	s.Linux.TimeOffsets = map[string]specs.LinuxTimeOffset{"boottime": {Secs: 86400 * 365}, "monotonic": {Secs: 1000}}
	e.writeSpec(s)
	r := e.cfd("run", "-b", e.bundle, e.id)
	lines := strings.Fields(r.stdout)
	if r.code != 0 || len(lines) != 2 {
		t.Fatalf("run: %v", r)
	}
	up, _ := strconv.ParseFloat(lines[0], 64)
	if up < 86400*365 || lines[1] != "1" {
		t.Errorf("uptime %s (want a year more than the host's), pid %s (want 1)", lines[0], lines[1])
	}
}

// linux.memoryPolicy: the process's NUMA policy, as numa_maps shows it.
func TestMemoryPolicy(t *testing.T) {
	e := newEnv(t, "sleep", "100")
	s := e.spec()
	s.Linux.MemoryPolicy = &specs.LinuxMemoryPolicy{Mode: specs.MpolBind, Nodes: "0"}
	e.writeSpec(s)
	e.ok("run", "-d", "-b", e.bundle, e.id)
	pid := strconv.Itoa(int(e.state()["pid"].(float64)))
	maps, err := os.ReadFile("/proc/" + pid + "/numa_maps")
	if err != nil {
		t.Skipf("no /proc/<pid>/numa_maps (a kernel without NUMA): %v", err)
	}
	if !strings.Contains(string(maps), "bind:0") {
		t.Errorf("numa_maps of init: %s", strings.SplitN(string(maps), "\n", 2)[0])
	}
	if out := e.ok("exec", e.id, "sh", "-c", "grep -c bind:0 /proc/self/numa_maps"); strings.TrimSpace(out) == "0" {
		t.Errorf("exec'd process not bound: %q", out)
	}
}

// linux.netDevices: host interfaces (ends of veth pairs) move into the
// container, renamed (by name and by the kernel's "%d" template), up, with
// their permanent global addresses.
func TestNetDevices(t *testing.T) {
	e := newEnv(t, "sh", "-c", `for i in eth7 cfd0; do ip -o link show $i | grep -q '<.*UP' && echo $i up; done
		ip -o -4 addr show eth7 | tr -s ' ' | cut -d' ' -f2,4; sleep 100`)
	n := strconv.Itoa(os.Getpid() % 100000)
	a, b := "cfdtestnda"+n, "cfdtestndb"+n
	for _, args := range [][]string{
		{"link", "add", a, "type", "veth", "peer", "name", a + "p"},
		{"link", "add", b, "type", "veth", "peer", "name", b + "p"},
		{"addr", "add", "10.250.7.1/24", "dev", a},
	} {
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Skipf("ip %v (veth pairs: iproute2 and the veth driver): %v: %s", args, err, out)
		}
		if args[0] == "link" {
			dev := args[2]
			t.Cleanup(func() { exec.Command("ip", "link", "del", dev).Run() })
		}
	}
	s := e.spec()
	s.Linux.NetDevices = map[string]specs.LinuxNetDevice{a: {Name: "eth7"}, b: {Name: "cfd%d"}}
	e.writeSpec(s)
	create, out, errf := e.startCmd("create", "--bundle", e.bundle, e.id)
	if err := create.Wait(); err != nil {
		t.Fatalf("create: %v: %s", err, readBack(t, errf))
	}
	for _, dev := range []string{a, b} {
		if _, err := net.InterfaceByName(dev); err == nil {
			t.Errorf("%s is still on the host", dev)
		}
	}
	e.ok("start", e.id)
	want := "eth7 up\ncfd0 up\neth7 10.250.7.1/24\n"
	for i := 0; i < 200 && readBack(t, out) != want; i++ {
		time.Sleep(10 * time.Millisecond)
	}
	if got := readBack(t, out); got != want {
		t.Errorf("inside: %q, want %q", got, want)
	}
}

// A netDevices entry for an interface the host does not have, or with a
// name the container has, fails create with the interface named, and
// leaves nothing behind (newEnv checks).
func TestNetDevicesMissing(t *testing.T) {
	e := newEnv(t, "true")
	e.edit(func(s *specs.Spec) {
		s.Linux.NetDevices = map[string]specs.LinuxNetDevice{"cfdtestnone0": {}}
	})
	r := e.cfd("create", "--bundle", e.bundle, e.id)
	if r.code == 0 || !strings.Contains(r.stderr, "net device cfdtestnone0") {
		t.Fatalf("create: %v", r)
	}
	// A name the container already has ("lo") fails before the move: the
	// interface stays on the host.
	dev := "cfdtestndl" + strconv.Itoa(os.Getpid()%100000)
	if out, err := exec.Command("ip", "link", "add", dev, "type", "veth", "peer", "name", dev+"p").CombinedOutput(); err != nil {
		t.Skipf("ip link add type veth (iproute2 and the veth driver): %v: %s", err, out)
	}
	t.Cleanup(func() { exec.Command("ip", "link", "del", dev).Run() })
	e.edit(func(s *specs.Spec) {
		s.Linux.NetDevices = map[string]specs.LinuxNetDevice{dev: {Name: "lo"}}
	})
	r = e.cfd("create", "--bundle", e.bundle, e.id)
	if r.code == 0 || !strings.Contains(r.stderr, "lo already exists in the container") {
		t.Fatalf("create: %v", r)
	}
	if _, err := net.InterfaceByName(dev); err != nil {
		t.Errorf("%s left the host: %v", dev, err)
	}
}
