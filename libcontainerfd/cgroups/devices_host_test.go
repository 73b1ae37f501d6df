package cgroups

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/link"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// Tests of the device list on the real kernel: a process in the cgroup
// (this test binary, run as a probe) opens and makes device nodes, in every
// mode: V1 (the v1 devices controller alone), V2 forced (the BPF program on
// the cgroup2 directory alone; its v1 devices cgroup stays the caller's)
// and Hybrid (both).

// devProbeEnv, set, makes the test binary a probe (see devProbeMain).
const devProbeEnv = "CFD_TEST_DEVICE_PROBE"

// devProbeMain reads commands from stdin, one a line, and answers each
// with "ok" or the errno's name (EPERM …):
//
//	open PATH r|w|rw
//	mknod PATH c|b MAJOR MINOR
//
// It does nothing before its first command, so that the test can move it
// into the cgroup first.
func devProbeMain() int {
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		f := strings.Fields(in.Text())
		var err error
		switch {
		case len(f) == 3 && f[0] == "open":
			flags := map[string]int{"r": unix.O_RDONLY, "w": unix.O_WRONLY, "rw": unix.O_RDWR}[f[2]]
			var fd int
			if fd, err = unix.Open(f[1], flags|unix.O_CLOEXEC|unix.O_NOCTTY|unix.O_NONBLOCK, 0); err == nil {
				unix.Close(fd)
			}
		case len(f) == 5 && f[0] == "mknod":
			maj, _ := strconv.ParseUint(f[3], 10, 32)
			min, _ := strconv.ParseUint(f[4], 10, 32)
			mode := uint32(unix.S_IFCHR)
			if f[2] == "b" {
				mode = unix.S_IFBLK
			}
			err = unix.Mknod(f[1], mode|0o600, int(unix.Mkdev(uint32(maj), uint32(min))))
		default:
			err = fmt.Errorf("bad command %q", in.Text())
		}
		var errno unix.Errno
		switch {
		case err == nil:
			fmt.Println("ok")
		case errors.As(err, &errno):
			fmt.Println(unix.ErrnoName(errno))
		default:
			fmt.Println(err)
		}
	}
	return 0
}

// probe is a running devProbeMain in a cgroup.
type probe struct {
	cmd *exec.Cmd
	in  io.Writer
	out *bufio.Scanner
}

// startProbe starts a probe in c, as start does: cloned into the cgroup2
// directory where there is one and then moved into the v1 ones, else moved
// into every hierarchy after it started; it waits on stdin until then.
// Cleanup kills and waits for it.
func startProbe(t *testing.T, c *Cgroup) *probe {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), devProbeEnv+"=1")
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	startIn(t, c, cmd)
	return &probe{cmd: cmd, in: in, out: bufio.NewScanner(out)}
}

// do runs one probe command and returns its answer.
func (p *probe) do(t *testing.T, command string) string {
	t.Helper()
	if _, err := fmt.Fprintln(p.in, command); err != nil {
		t.Fatalf("probe: %v", err)
	}
	if !p.out.Scan() {
		t.Fatalf("probe: no answer to %q: %v", command, p.out.Err())
	}
	return p.out.Text()
}

// expect runs commands ("open /dev/null w=ok", "open /dev/full r=EPERM";
// "!EPERM" for anything but EPERM) and reports each wrong answer.
func (p *probe) expect(t *testing.T, step string, checks ...string) {
	t.Helper()
	for _, c := range checks {
		command, want, _ := strings.Cut(c, "=")
		got := p.do(t, command)
		if not, ok := strings.CutPrefix(want, "!"); ok && got == not || !ok && got != want {
			t.Errorf("%s: %s: %s, want %s", step, command, got, want)
		}
	}
}

// nodeDir makes a directory for device nodes, with a node "blk" of a block
// device, made from outside the cgroup: the device of the root file system,
// or else loop0 (7:0), whichever this process may open (a sandbox may deny
// the root disk to everyone).
func nodeDir(t *testing.T) (dir, blk string) {
	t.Helper()
	dir = t.TempDir()
	blk = filepath.Join(dir, "blk")
	var cands [][2]uint32
	var st unix.Stat_t
	if err := unix.Stat("/", &st); err == nil && unix.Major(st.Dev) != 0 {
		cands = append(cands, [2]uint32{unix.Major(st.Dev), unix.Minor(st.Dev)})
	}
	cands = append(cands, [2]uint32{7, 0})
	for _, d := range cands {
		if err := unix.Mknod(blk, unix.S_IFBLK|0o600, int(unix.Mkdev(d[0], d[1]))); err != nil {
			t.Fatal(err)
		}
		fd, err := unix.Open(blk, unix.O_RDONLY|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
		if err == nil {
			unix.Close(fd)
		}
		if err != unix.EPERM && err != unix.EACCES {
			return dir, blk
		}
		os.Remove(blk)
	}
	t.Skipf("no block device this process may open (tried %v)", cands)
	return "", ""
}

// devicesList reads the v1 devices.list of c as a sorted set of lines.
func devicesList(t *testing.T, c *Cgroup) []string {
	t.Helper()
	s := get(t, c, "devices.list")
	lines := strings.Split(s, "\n")
	slices.Sort(lines)
	return lines
}

// devPrograms returns the ids of the BPF_CGROUP_DEVICE programs attached to
// c's cgroup2 directory, and which of them are ours.
func devPrograms(t *testing.T, c *Cgroup) (all, ours []ebpf.ProgramID) {
	t.Helper()
	fd, err := c.cgroupDirFD()
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	ids, err := attachedDevicePrograms(fd)
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range ids {
		all = append(all, ebpf.ProgramID(id))
	}
	for _, id := range all {
		p, err := ebpf.NewProgramFromID(id)
		if err != nil {
			t.Fatal(err)
		}
		info, err := p.Info()
		p.Close()
		if err != nil {
			t.Fatal(err)
		}
		if info.Name == devProgName {
			ours = append(ours, id)
		}
	}
	return all, ours
}

// checkOneProgram checks, where c has a cgroup2 directory, that exactly one
// program is attached there and that it is ours, and returns its id.
func checkOneProgram(t *testing.T, c *Cgroup, step string) ebpf.ProgramID {
	t.Helper()
	if c.Paths()[KeyUnified] == "" {
		return 0
	}
	all, ours := devPrograms(t, c)
	if len(all) != 1 || len(ours) != 1 {
		t.Errorf("%s: device programs attached %v, ours %v; want one of ours", step, all, ours)
		return 0
	}
	return ours[0]
}

// TestDevicesHost: the allowed list of a usual container, seen from a
// process in the cgroup, in every mode; an update that allows one more
// device, seen by the same running process; and an update with the process
// in a child cgroup (as a container with its own cgroups), which v1 takes
// only without resetting the default.
func TestDevicesHost(t *testing.T) {
	forEachMode(t, func(t *testing.T, mode Mode) {
		c := create(t, testParentNamed(t, "dev")+"/ctr")
		dir, blk := nodeDir(t)
		p := startProbe(t, c)
		full := filepath.Join(dir, "full")
		p.expect(t, "before Set", "open /dev/full w=ok", "open /dev/zero w=ok", "open "+blk+" r=!EPERM")

		rules := devs("deny rwm", "allow c 1:3 rwm", "allow c 1:5 r", "allow c *:* m")
		set(t, c, &specs.LinuxResources{Devices: rules})
		p.expect(t, "create",
			"open /dev/null w=ok", "open /dev/null rw=ok",
			"open /dev/zero r=ok", "open /dev/zero w=EPERM", "open /dev/zero rw=EPERM",
			"open /dev/full r=EPERM", "open /dev/full w=EPERM",
			"mknod "+full+" c 1 7=ok", "open "+full+" r=EPERM",
			"mknod "+filepath.Join(dir, "loop")+" b 7 0=EPERM",
			"open "+blk+" r=EPERM")
		if mode != V2 {
			if got, want := devicesList(t, c), []string{"c *:* m", "c 1:3 rwm", "c 1:5 r"}; !slices.Equal(got, want) {
				t.Errorf("devices.list %q, want %q", got, want)
			}
		}
		first := checkOneProgram(t, c, "create")

		set(t, c, &specs.LinuxResources{Devices: append(slices.Clone(rules), dev("allow c 1:7 rwm"))})
		p.expect(t, "update", "open /dev/full w=ok", "open "+full+" r=ok",
			"open /dev/null rw=ok", "open /dev/zero w=EPERM", "open "+blk+" r=EPERM")
		if second := checkOneProgram(t, c, "update"); second == first && first != 0 {
			t.Errorf("update: program %d not replaced", first)
		}

		// Into a child cgroup; then take /dev/full back.
		for _, d := range mkChild(t, c, "sub") {
			if err := writeFile(d, "cgroup.procs", strconv.Itoa(p.cmd.Process.Pid)); err != nil {
				t.Fatal(err)
			}
		}
		set(t, c, &specs.LinuxResources{Devices: rules})
		p.expect(t, "update with a child cgroup", "open /dev/full w=EPERM", "open "+full+" r=EPERM",
			"open /dev/null rw=ok", "open /dev/zero r=ok", "open /dev/zero w=EPERM", "open "+blk+" r=EPERM")
		checkOneProgram(t, c, "update with a child cgroup")
	})
}

// TestDevicesListsHost: a list with no deny-all first is still an allowed
// list; a list that starts by allowing all is a denied list; switching from
// one to the other; a list Set refuses changes nothing.
func TestDevicesListsHost(t *testing.T) {
	forEachMode(t, func(t *testing.T, mode Mode) {
		c := create(t, testParentNamed(t, "dev")+"/ctr")
		dir, blk := nodeDir(t)
		p := startProbe(t, c)

		set(t, c, &specs.LinuxResources{Devices: devs("allow c 1:3 rw", "allow c 1:5 r")})
		p.expect(t, "allowed list", "open /dev/null rw=ok", "open /dev/zero r=ok", "open /dev/zero w=EPERM",
			"open /dev/full r=EPERM", "mknod "+filepath.Join(dir, "n1")+" c 1 3=EPERM", "open "+blk+" r=EPERM")
		if mode != V2 {
			if got, want := devicesList(t, c), []string{"c 1:3 rw", "c 1:5 r"}; !slices.Equal(got, want) {
				t.Errorf("devices.list %q, want %q", got, want)
			}
		}
		checkOneProgram(t, c, "allowed list")

		set(t, c, &specs.LinuxResources{Devices: devs("allow rwm", "deny c 1:7 w", "deny b *:* rwm")})
		p.expect(t, "denied list", "open /dev/full r=ok", "open /dev/full w=EPERM", "open /dev/full rw=EPERM",
			"open /dev/zero rw=ok", "mknod "+filepath.Join(dir, "n2")+" c 1 7=ok",
			"open "+blk+" r=EPERM", "mknod "+filepath.Join(dir, "n3")+" b 7 0=EPERM")
		if mode != V2 {
			if got := devicesList(t, c); !slices.Equal(got, []string{"a *:* rwm"}) {
				t.Errorf("devices.list %q, want allow all", got)
			}
		}
		checkOneProgram(t, c, "denied list")

		set(t, c, &specs.LinuxResources{Devices: devs("deny rwm", "allow c 1:7 r")})
		p.expect(t, "back to an allowed list", "open /dev/full r=ok", "open /dev/full w=EPERM", "open /dev/null r=EPERM")

		// Refused: nothing changes, in v1 or in the program.
		err := c.Set(&specs.LinuxResources{Devices: devs("deny rwm", "allow c *:* m", "deny c 1:3 m")})
		if err == nil || !strings.Contains(err.Error(), "punch a hole") {
			t.Errorf("hole punching: %v", err)
		}
		// A good list with a bad cpu value: refused before any write.
		err = c.Set(&specs.LinuxResources{Devices: devs("deny rwm", "allow c 1:3 rw"), CPU: &specs.LinuxCPU{Shares: ptr[uint64](1)}})
		if err == nil || !strings.Contains(err.Error(), "cpu.shares") {
			t.Errorf("cpu shares 1: %v", err)
		}
		p.expect(t, "after refused lists", "open /dev/full r=ok", "open /dev/null r=EPERM")
		checkOneProgram(t, c, "after refused lists")

		// No devices: left as they are.
		set(t, c, &specs.LinuxResources{})
		p.expect(t, "no devices", "open /dev/full r=ok", "open /dev/null r=EPERM")
	})
}

// TestDeviceProgramReplaceHost: updates replace our program, never pile
// up, leave programs of others alone, and clean up after an update that
// left two of ours.
func TestDeviceProgramReplaceHost(t *testing.T) {
	forEachMode(t, func(t *testing.T, mode Mode) {
		if mode == V1 {
			t.Skip("no cgroup2 in v1 mode")
		}
		c := create(t, testParentNamed(t, "dev")+"/ctr")
		var ids []ebpf.ProgramID
		for i := range 4 {
			rules := devs("deny rwm", "allow c 1:3 rwm")
			if i%2 == 1 {
				rules = append(rules, dev("allow c 1:5 r"))
			}
			set(t, c, &specs.LinuxResources{Devices: rules})
			id := checkOneProgram(t, c, fmt.Sprintf("Set %d", i))
			if slices.Contains(ids, id) {
				t.Errorf("Set %d: program %d again", i, id)
			}
			ids = append(ids, id)
		}

		fd, err := c.cgroupDirFD()
		if err != nil {
			t.Fatal(err)
		}
		defer unix.Close(fd)
		attach := func(prog *ebpf.Program) {
			t.Helper()
			err := link.RawAttachProgram(link.RawAttachProgramOptions{Target: fd, Program: prog, Attach: ebpf.AttachCGroupDevice, Flags: unix.BPF_F_ALLOW_MULTI})
			if err != nil {
				t.Fatal(err)
			}
		}
		// Someone else's program (allows everything: harmless).
		foreign, err := ebpf.NewProgram(&ebpf.ProgramSpec{Name: "foreign", Type: ebpf.CGroupDevice, License: devProgLicense,
			Instructions: asm.Instructions{asm.Mov.Imm32(asm.R0, 1), asm.Return()}})
		if err != nil {
			t.Fatal(err)
		}
		defer foreign.Close()
		attach(foreign)
		info, err := foreign.Info()
		if err != nil {
			t.Fatal(err)
		}
		foreignID, _ := info.ID()
		set(t, c, &specs.LinuxResources{Devices: devs("deny rwm", "allow c 1:9 r")})
		all, ours := devPrograms(t, c)
		if len(all) != 2 || len(ours) != 1 || !slices.Contains(all, foreignID) {
			t.Errorf("with a foreign program: attached %v, ours %v, want ours and %d", all, ours, foreignID)
		}

		// A second one of ours, as an interrupted Set could leave.
		f, err := newDeviceFilter(devs("deny rwm"))
		if err != nil {
			t.Fatal(err)
		}
		extraFD, err := loadDeviceProgram(f)
		if err != nil {
			t.Fatal(err)
		}
		extra, err := ebpf.NewProgramFromFD(extraFD)
		if err != nil {
			t.Fatal(err)
		}
		defer extra.Close()
		attach(extra)
		if _, ours := devPrograms(t, c); len(ours) != 2 {
			t.Fatalf("ours %v, want two", ours)
		}
		set(t, c, &specs.LinuxResources{Devices: devs("deny rwm", "allow c 1:3 rwm")})
		all, ours = devPrograms(t, c)
		if len(all) != 2 || len(ours) != 1 || !slices.Contains(all, foreignID) {
			t.Errorf("after two of ours: attached %v, ours %v, want one of ours and %d", all, ours, foreignID)
		}
		// Nothing asked of devices: nothing touched.
		set(t, c, &specs.LinuxResources{})
		if all2, _ := devPrograms(t, c); !slices.Equal(all, all2) {
			t.Errorf("Set without devices: attached %v, was %v", all2, all)
		}
	})
}
