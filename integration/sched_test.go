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
	"golang.org/x/sys/unix"
)

// process.scheduler, ioPriority, execCPUAffinity and linux.personality,
// seen from the host in /proc and from inside.
func TestSchedulingAndPersonality(t *testing.T) {
	e := newEnv(t, "sh", "-c", "uname -m; sleep 100")
	// The last CPU we may run on: a host may have only CPU 0.
	var allowed unix.CPUSet
	if err := unix.SchedGetaffinity(0, &allowed); err != nil {
		t.Fatal(err)
	}
	cpu := 0
	for i := range len(allowed) * 64 {
		if allowed.IsSet(i) {
			cpu = i
		}
	}
	s := e.spec()
	s.Process.Scheduler = &specs.Scheduler{Policy: specs.SchedBatch, Nice: 5}
	s.Process.IOPriority = &specs.LinuxIOPriority{Class: specs.IOPRIO_CLASS_IDLE}
	s.Process.ExecCPUAffinity = &specs.CPUAffinity{Final: strconv.Itoa(cpu)}
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
	// execCPUAffinity is for exec'd processes, not init (config.md).
	if out := e.ok("exec", e.id, "grep", "Cpus_allowed_list:", "/proc/self/status"); out != "Cpus_allowed_list:\t"+strconv.Itoa(cpu)+"\n" {
		t.Errorf("cpu affinity of an exec'd process: %q, want %d", out, cpu)
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
	if _, err := os.Stat("/proc/self/numa_maps"); err != nil {
		t.Skipf("no /proc/self/numa_maps: a kernel without NUMA, which has no memory policies: %v", err)
	}
	e := newEnv(t, "sleep", "100")
	s := e.spec()
	s.Linux.MemoryPolicy = &specs.LinuxMemoryPolicy{Mode: specs.MpolBind, Nodes: "0"}
	e.writeSpec(s)
	e.ok("run", "-d", "-b", e.bundle, e.id)
	pid := strconv.Itoa(int(e.state()["pid"].(float64)))
	maps, err := os.ReadFile("/proc/" + pid + "/numa_maps")
	if err != nil {
		t.Fatal(err)
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
	a, b := "cfdnda"+n, "cfdndb"+n
	vethPair(t, a)
	vethPair(t, b)
	if out, err := exec.Command("ip", "addr", "add", "10.250.7.1/24", "dev", a).CombinedOutput(); err != nil {
		t.Fatalf("ip addr add 10.250.7.1/24 dev %s: %v: %s", a, err, out)
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
	dev := "cfdndl" + strconv.Itoa(os.Getpid()%100000)
	vethPair(t, dev)
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

// vethPair makes a veth pair of the test's own on the host, name and
// name+"p" (names of at most 15 bytes), and deletes it after the test:
// deleting the peer, which stays on the host, also takes the end a
// container took. It skips, naming what is missing, without ip(8) or
// where the kernel has no veth driver (built in, or a module it loads).
func vethPair(t *testing.T, name string) {
	t.Helper()
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("needs ip(8) (iproute2; hack/deps.sh installs it)")
	}
	out, err := exec.Command("ip", "link", "add", name, "type", "veth", "peer", "name", name+"p").CombinedOutput()
	if err != nil {
		// The kernel's answer (EOPNOTSUPP) where no driver has the kind.
		if strings.Contains(string(out), "Unknown device type") {
			t.Skipf("the kernel has no veth driver: ip link add %s type veth: %s", name, out)
		}
		t.Fatalf("ip link add %s type veth peer name %sp: %v: %s", name, name, err, out)
	}
	t.Cleanup(func() {
		if _, err := net.InterfaceByName(name + "p"); err != nil {
			return // gone with the network namespace of its other end
		}
		if out, err := exec.Command("ip", "link", "del", name+"p").CombinedOutput(); err != nil {
			t.Errorf("ip link del %sp: %v: %s", name, err, out)
		}
	})
}

// SCHED_DEADLINE needs every CPU of the system in the process's affinity;
// a cpuset that leaves one out makes sched_setattr fail with EPERM, which
// the error explains in runc's words.
func TestSchedDeadlineWithCpuset(t *testing.T) {
	var allowed unix.CPUSet
	if err := unix.SchedGetaffinity(0, &allowed); err != nil {
		t.Fatal(err)
	}
	if allowed.Count() < 2 {
		t.Skip("needs two CPUs: a cpuset of CPU 0 must leave one out")
	}
	e := newEnv(t, "true")
	s := e.spec()
	s.Linux.Resources.CPU = &specs.LinuxCPU{Cpus: "0"}
	s.Process.Scheduler = &specs.Scheduler{Policy: specs.SchedDeadline, Runtime: 42000, Deadline: 1000000, Period: 1000000}
	e.writeSpec(s)
	r := e.cfd("run", "-b", e.bundle, e.id)
	if r.code == 0 || !strings.Contains(r.stderr, "set scheduler: operation not permitted") ||
		!strings.Contains(r.stderr, "process scheduler can't be used together with AllowedCPUs") {
		t.Errorf("run: %v, want the scheduler step's EPERM explained", r)
	}
}
