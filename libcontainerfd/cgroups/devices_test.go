package cgroups

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"

	"github.com/cilium/ebpf/asm"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Tests of the device list without the kernel: rules to a filter, the v1
// writes, and the BPF program (run by a small interpreter of the few
// instructions it uses, and compared with the filter's own verdict).

// dev builds a rule: "allow c 1:3 rwm", "deny a *:* rwm", "deny rwm" (no
// type), "allow c 1:* m"; "-" for an empty access.
func dev(s string) specs.LinuxDeviceCgroup {
	f := strings.Fields(s)
	r := specs.LinuxDeviceCgroup{Allow: f[0] == "allow"}
	f = f[1:]
	if len(f) == 3 {
		r.Type = f[0]
		maj, min, _ := strings.Cut(f[1], ":")
		if maj != "*" {
			var v int64
			fmt.Sscan(maj, &v)
			r.Major = &v
		}
		if min != "*" {
			var v int64
			fmt.Sscan(min, &v)
			r.Minor = &v
		}
		f = f[2:]
	}
	if f[0] != "-" {
		r.Access = f[0]
	}
	return r
}

func devs(ss ...string) []specs.LinuxDeviceCgroup {
	var out []specs.LinuxDeviceCgroup
	for _, s := range ss {
		out = append(out, dev(s))
	}
	return out
}

// runcDefault is the device list of `runc spec` plus the defaults containerd
// and docker add.
var runcDefault = devs("deny rwm",
	"allow c *:* m", "allow b *:* m",
	"allow c 1:3 rwm", "allow c 1:5 rwm", "allow c 1:7 rwm", "allow c 1:8 rwm", "allow c 1:9 rwm",
	"allow c 5:0 rwm", "allow c 5:1 rwm", "allow c 5:2 rwm", "allow c 136:* rwm", "allow c 10:200 rwm")

func TestDeviceFilter(t *testing.T) {
	for _, tc := range []struct {
		name  string
		rules []specs.LinuxDeviceCgroup
		want  string // String() of the filter, or an error
	}{
		{"deny all, then allow", devs("deny rwm", "allow c 1:3 rwm", "allow c 1:5 r", "allow c *:* m"),
			"deny all; allow c *:* m; allow c 1:3 rwm; allow c 1:5 r"},
		{"no deny-all first: still an allowed list", devs("allow c 1:3 rw", "allow c 1:5 r"),
			"deny all; allow c 1:3 rw; allow c 1:5 r"},
		{"type a spelled out", devs("deny a *:* rwm", "allow c 1:3 rwm"), "deny all; allow c 1:3 rwm"},
		{"allow all", devs("allow a *:* rwm"), "allow all"},
		{"allow all resets", devs("deny rwm", "allow c 1:3 rwm", "allow rwm"), "allow all"},
		{"deny all resets", devs("allow rwm", "deny c 1:3 rwm", "deny rwm", "allow b 8:0 r"), "deny all; allow b 8:0 r"},
		{"deny list", devs("allow rwm", "deny c 1:7 rwm", "deny b *:* r"), "allow all; deny c 1:7 rwm; deny b *:* r"},
		{"merged per device", devs("deny rwm", "allow c 1:3 r", "allow c 1:3 w", "allow c 1:3 r"), "deny all; allow c 1:3 rw"},
		{"later deny takes access away", devs("deny rwm", "allow c 1:3 rwm", "deny c 1:3 w"), "deny all; allow c 1:3 rm"},
		{"later deny removes", devs("deny rwm", "allow c 1:3 rw", "deny c 1:3 rwm"), "deny all"},
		{"wide deny covers narrow allows", devs("deny rwm", "allow c 1:3 rwm", "allow c 1:* r", "allow b 1:3 r", "deny c 1:* rw"),
			"deny all; allow c 1:3 m; allow b 1:3 r"},
		{"deny of what is not allowed", devs("deny rwm", "allow c *:* m", "deny c 1:3 rw"), "deny all; allow c *:* m"},
		{"later allow lifts a deny", devs("allow rwm", "deny c 1:7 rwm", "allow c 1:* w"), "allow all; deny c 1:7 rm"},
		{"partial type a is c and b", devs("deny rwm", "allow a *:* m", "allow a 8:* r"),
			"deny all; allow c *:* m; allow c 8:* r; allow b *:* m; allow b 8:* r"},
		{"partial type a deny", devs("allow rwm", "deny a *:* rw"), "allow all; deny c *:* rw; deny b *:* rw"},
		{"major -1 is a wildcard", []specs.LinuxDeviceCgroup{{Allow: true, Type: "c", Major: ptr[int64](-1), Minor: ptr[int64](3), Access: "r"}},
			"deny all; allow c *:3 r"},
		{"largest numbers", []specs.LinuxDeviceCgroup{{Allow: true, Type: "b", Major: ptr[int64](4294967295), Minor: ptr[int64](0), Access: "r"}},
			"deny all; allow b 4294967295:0 r"},
		{"runc default", runcDefault,
			"deny all; allow c *:* m; allow c 1:3 rwm; allow c 1:5 rwm; allow c 1:7 rwm; allow c 1:8 rwm; allow c 1:9 rwm; allow c 5:0 rwm; allow c 5:1 rwm; allow c 5:2 rwm; allow c 10:200 rwm; allow c 136:* rwm; allow b *:* m"},

		{"hole in an allow", devs("deny rwm", "allow c *:* m", "deny c 1:3 rwm"),
			"error: cgroups: linux.resources.devices[2]: deny c 1:3 rwm would punch a hole in the earlier allow c *:* m"},
		{"hole in a deny", devs("allow rwm", "deny b *:* rwm", "allow b 8:0 r"),
			"error: cgroups: linux.resources.devices[2]: allow b 8:0 r would punch a hole in the earlier deny b *:* rwm"},
		{"crossing wildcards", devs("deny rwm", "allow c 1:* r", "deny c *:3 r"),
			"error: cgroups: linux.resources.devices[2]: deny c *:3 r would punch a hole in the earlier allow c 1:* r"},
		{"empty access", devs("deny -"), "error: cgroups: linux.resources.devices[0]: access empty"},
		{"other letters ignored, as runc", devs("deny rwm", "allow c 1:11 rwa", "deny c 1:11 wx"), "deny all; allow c 1:11 r"},
		{"no known letter: no rule", devs("deny rwm", "allow c 1:11 a"), "deny all"},
		{"bad type", []specs.LinuxDeviceCgroup{{Type: "u", Access: "r"}}, `error: cgroups: linux.resources.devices[0]: type "u" is not a (all), c (char) or b (block)`},
		{"bad major", []specs.LinuxDeviceCgroup{{Type: "c", Major: ptr[int64](-2), Access: "r"}}, "error: cgroups: linux.resources.devices[0]: major -2 is neither -1 (all) nor a device number"},
		{"minor too big", []specs.LinuxDeviceCgroup{{Type: "c", Minor: ptr[int64](1 << 32), Access: "r"}}, "error: cgroups: linux.resources.devices[0]: minor 4294967296 is"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, err := newDeviceFilter(tc.rules)
			got := ""
			if err != nil {
				got = "error: " + err.Error()
			} else {
				got = f.String()
			}
			if want, isErr := strings.CutPrefix(tc.want, "error: "); isErr {
				if err == nil || !strings.HasPrefix(err.Error(), want) {
					t.Errorf("got %s\nwant an error starting %q", got, want)
				}
				return
			}
			if got != tc.want {
				t.Errorf("got  %s\nwant %s", got, tc.want)
			}
		})
	}
}

// TestDeviceFilterAllows checks the verdicts of a few filters, as the v1
// kernel gives them.
func TestDeviceFilterAllows(t *testing.T) {
	allowList, err := newDeviceFilter(devs("deny rwm", "allow c 1:3 rwm", "allow c 1:5 r", "allow c *:* m", "allow c 1:8 r", "allow c 1:8 w"))
	if err != nil {
		t.Fatal(err)
	}
	denyList, err := newDeviceFilter(devs("allow rwm", "deny c 1:7 w", "deny b *:* m"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		f     *deviceFilter
		typ   byte
		maj   uint32
		min   uint32
		acc   devAccess
		allow bool
	}{
		{allowList, 'c', 1, 3, accRead | accWrite, true},
		{allowList, 'c', 1, 5, accRead, true},
		{allowList, 'c', 1, 5, accWrite, false},
		{allowList, 'c', 1, 5, accRead | accWrite, false},
		{allowList, 'c', 1, 7, accRead, false},
		{allowList, 'c', 1, 7, accMknod, true},
		{allowList, 'b', 7, 0, accMknod, false},
		{allowList, 'b', 1, 3, accRead, false},
		{allowList, 'c', 1, 8, accRead | accWrite, true}, // merged: one exception holds both
		{denyList, 'c', 1, 7, accRead, true},
		{denyList, 'c', 1, 7, accRead | accWrite, false}, // any denied access denies
		{denyList, 'b', 8, 0, accRead, true},
		{denyList, 'b', 8, 0, accMknod, false},
		{denyList, 'c', 1, 3, accAll, true},
	} {
		if got := tc.f.allows(tc.typ, tc.maj, tc.min, tc.acc); got != tc.allow {
			t.Errorf("%s: %c %d:%d %s: %v, want %v", tc.f, tc.typ, tc.maj, tc.min, tc.acc, got, tc.allow)
		}
	}
}

func TestParseDevicesList(t *testing.T) {
	for _, tc := range []struct{ list, want string }{
		{"a *:* rwm\n", "allow all"},
		{"", "deny all"},
		{"c 1:3 rwm\nc *:* m\nb 7:* r\nc 136:* rw\n", "deny all; allow c *:* m; allow c 1:3 rwm; allow c 136:* rw; allow b 7:* r"},
		{"c 1:3 r\nc 1:3 w\n", "deny all; allow c 1:3 rw"},
		{"c 1:3\n", "error"},
		{"x 1:3 r\n", "error"},
		{"c 1-3 r\n", "error"},
		{"c 1:y r\n", "error"},
		{"c 1:3 q\n", "error"},
	} {
		f, err := parseDevicesList(tc.list)
		got := "error"
		if err == nil {
			got = f.String()
		}
		if got != tc.want {
			t.Errorf("parse %q: %s (%v), want %s", tc.list, got, err, tc.want)
		}
	}
}

// wsLines formats writes as "file: value" lines.
func wsLines(ws []fileWrite) string {
	var b strings.Builder
	for _, w := range ws {
		fmt.Fprintf(&b, "%s: %s\n", w.file, w.value)
	}
	return b.String()
}

func TestDevicesV1Writes(t *testing.T) {
	for _, tc := range []struct {
		name, list string
		rules      []specs.LinuxDeviceCgroup
		want       string
	}{
		{"create: deny all first", "a *:* rwm\n", devs("deny rwm", "allow c 1:3 rwm", "allow c 1:5 r", "allow c *:* m"),
			"devices.deny: a\ndevices.allow: c 1:3 rwm\ndevices.allow: c 1:5 r\ndevices.allow: c *:* m\n"},
		{"create: in the listed order", "a *:* rwm\n", devs("deny rwm", "allow c 10:229 rwm", "allow b 8:20 rw", "allow b 10:200 r", "allow c *:* m", "allow b *:* m"),
			"devices.deny: a\ndevices.allow: c 10:229 rwm\ndevices.allow: b 8:20 rw\ndevices.allow: b 10:200 r\ndevices.allow: c *:* m\ndevices.allow: b *:* m\n"},
		{"create: a rule emptied and made again goes last", "a *:* rwm\n", devs("deny rwm", "allow c 1:3 rwm", "allow c 1:5 r", "deny c 1:3 rwm", "allow c 1:3 r"),
			"devices.deny: a\ndevices.allow: c 1:5 r\ndevices.allow: c 1:3 r\n"},
		{"create: allowed list only", "a *:* rwm\n", devs("allow c 1:3 rw"),
			"devices.deny: a\ndevices.allow: c 1:3 rw\n"},
		{"create: deny list", "a *:* rwm\n", devs("allow rwm", "deny c 1:7 rwm", "deny b *:* r"),
			"devices.allow: a\ndevices.deny: c 1:7 rwm\ndevices.deny: b *:* r\n"},
		{"update: add one, no reset", "c *:* m\nc 1:3 rwm\nc 1:5 r\n", devs("deny rwm", "allow c 1:3 rwm", "allow c 1:5 r", "allow c *:* m", "allow c 1:7 rwm"),
			"devices.allow: c 1:7 rwm\n"},
		{"update: take away, then add", "c *:* m\nc 1:3 rwm\nc 1:5 r\nc 1:7 rwm\n", devs("deny rwm", "allow c 1:3 r", "allow c 1:5 rw", "allow c *:* m"),
			"devices.deny: c 1:3 wm\ndevices.deny: c 1:7 rwm\ndevices.allow: c 1:5 w\n"},
		{"update: the same", "c 1:3 rwm\n", devs("deny rwm", "allow c 1:3 rwm"), ""},
		{"update: to deny all", "c 1:3 rwm\n", devs("deny rwm"), "devices.deny: c 1:3 rwm\n"},
		{"update: deny list to allowed list", "a *:* rwm\n", devs("deny rwm", "allow c 1:3 rwm"),
			"devices.deny: a\ndevices.allow: c 1:3 rwm\n"},
		{"update: allowed list to allow all", "c 1:3 rwm\n", devs("allow rwm"), "devices.allow: a\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cur, err := parseDevicesList(tc.list)
			if err != nil {
				t.Fatal(err)
			}
			target, err := newDeviceFilter(tc.rules)
			if err != nil {
				t.Fatal(err)
			}
			if got := wsLines(devicesV1Writes(cur, target)); got != tc.want {
				t.Errorf("got\n%swant\n%s", got, tc.want)
			}
		})
	}
}

// v1Kernel models a v1 devices cgroup the way the kernel keeps it: "a"
// resets; an exception is added to (merging accesses) or taken from by its
// exact type:major:minor.
type v1Kernel struct {
	defaultAllow bool
	ex           map[devKey]devAccess
}

func (k *v1Kernel) write(t *testing.T, w fileWrite) {
	t.Helper()
	allow := w.file == "devices.allow"
	if w.value == "a" {
		*k = v1Kernel{defaultAllow: allow, ex: map[devKey]devAccess{}}
		return
	}
	f, err := parseDevicesList(w.value)
	if err != nil || len(f.exceptions) != 1 {
		t.Fatalf("bad write %v", w)
	}
	for key, a := range f.exceptions {
		if allow != k.defaultAllow {
			k.ex[key] |= a
		} else if k.ex[key] &^= a; k.ex[key] == 0 {
			delete(k.ex, key)
		}
	}
}

// list returns the kernel's devices.list.
func (k *v1Kernel) list() string {
	if k.defaultAllow {
		return "a *:* rwm\n"
	}
	var b strings.Builder
	for _, e := range (&deviceFilter{exceptions: k.ex}).sorted() {
		b.WriteString(e.String() + "\n")
	}
	return b.String()
}

// randomRules returns a random device list over a small set of devices, so
// that rules often meet.
func randomRules(r *rand.Rand) []specs.LinuxDeviceCgroup {
	num := func() *int64 {
		if r.IntN(3) == 0 {
			return nil
		}
		v := int64(r.IntN(3))
		return &v
	}
	var rules []specs.LinuxDeviceCgroup
	switch r.IntN(3) {
	case 0:
		rules = append(rules, specs.LinuxDeviceCgroup{Allow: false, Access: "rwm"})
	case 1:
		rules = append(rules, specs.LinuxDeviceCgroup{Allow: true, Access: "rwm"})
	}
	for range r.IntN(6) {
		rule := specs.LinuxDeviceCgroup{Allow: r.IntN(2) == 0, Type: []string{"c", "b", "a", ""}[r.IntN(4)], Major: num(), Minor: num()}
		for rule.Access == "" {
			for _, c := range "rwm" {
				if r.IntN(2) == 0 {
					rule.Access += string(c)
				}
			}
		}
		rules = append(rules, rule)
	}
	return rules
}

// TestDevicesV1WritesModel: from many random states to many random
// targets, the writes bring the modelled kernel exactly to the target, and
// an update between two allowed lists never writes "a".
func TestDevicesV1WritesModel(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	n := 0
	for n < 2000 {
		from, err1 := newDeviceFilter(randomRules(r))
		to, err2 := newDeviceFilter(randomRules(r))
		if err1 != nil || err2 != nil {
			continue
		}
		n++
		// The kernel after the first Set (from a new cgroup).
		k := &v1Kernel{defaultAllow: true, ex: map[devKey]devAccess{}}
		for _, w := range devicesV1Writes(&deviceFilter{defaultAllow: true}, from) {
			k.write(t, w)
		}
		cur, err := parseDevicesList(k.list())
		if err != nil {
			t.Fatal(err)
		}
		if !from.defaultAllow && !cur.equal(from) {
			t.Fatalf("create %s: kernel has %s", from, cur)
		}
		ws := devicesV1Writes(cur, to)
		for _, w := range ws {
			if w.value == "a" && !from.defaultAllow && !to.defaultAllow {
				t.Errorf("%s -> %s: resets the default: %v", from, to, ws)
			}
			k.write(t, w)
		}
		got := &deviceFilter{defaultAllow: k.defaultAllow, exceptions: k.ex}
		if !got.equal(to) {
			t.Fatalf("%s -> %s: writes %v leave %s", from, to, ws, got)
		}
	}
}

// ---- the BPF program ----

// decode turns the program into cilium/ebpf's instructions, to run and print.
func decode(t *testing.T, prog []bpfInsn) asm.Instructions {
	t.Helper()
	var buf bytes.Buffer
	if err := binary.Write(&buf, binary.LittleEndian, prog); err != nil {
		t.Fatal(err)
	}
	var insts asm.Instructions
	for buf.Len() > 0 {
		var ins asm.Instruction
		if err := ins.Unmarshal(&buf, binary.LittleEndian, "linux"); err != nil {
			t.Fatal(err)
		}
		insts = append(insts, ins)
	}
	return insts
}

// runDeviceProgram interprets the instructions program() emits, on the
// context (access_type, major, minor), and returns R0.
func runDeviceProgram(t *testing.T, insts asm.Instructions, ctx [3]uint32) uint64 {
	t.Helper()
	var reg [11]uint64
	ctxValid := true // R1 still points at the context
	for pc, steps := 0, 0; ; steps++ {
		if pc < 0 || pc >= len(insts) || steps > 10000 {
			t.Fatalf("program runs off at %d", pc)
		}
		ins := insts[pc]
		pc++
		op := ins.OpCode
		src := uint64(ins.Constant)
		if op.Source() == asm.RegSource {
			src = reg[ins.Src]
		}
		switch cls := op.Class(); {
		case cls == asm.LdXClass:
			if ins.Src != asm.R1 || !ctxValid || op.Size() != asm.Word || ins.Offset%4 != 0 || ins.Offset < 0 || ins.Offset > 8 {
				t.Fatalf("bad load %v", ins)
			}
			reg[ins.Dst] = uint64(ctx[ins.Offset/4])
		case cls == asm.ALUClass || cls == asm.ALU64Class:
			var v uint64
			switch op.ALUOp() {
			case asm.Mov:
				v = src
			case asm.And:
				v = reg[ins.Dst] & src
			case asm.RSh:
				v = reg[ins.Dst] >> (src & 63)
			default:
				t.Fatalf("unexpected instruction %v", ins)
			}
			if cls == asm.ALUClass {
				v = uint64(uint32(v))
			}
			reg[ins.Dst] = v
			if ins.Dst == asm.R1 {
				ctxValid = false
			}
		case cls == asm.JumpClass || cls == asm.Jump32Class:
			if op.JumpOp() == asm.Exit {
				return reg[asm.R0]
			}
			a, b := reg[ins.Dst], src
			if cls == asm.Jump32Class {
				a, b = uint64(uint32(a)), uint64(uint32(b))
			}
			var jump bool
			switch op.JumpOp() {
			case asm.JNE:
				jump = a != b
			case asm.JEq:
				jump = a == b
			default:
				t.Fatalf("unexpected instruction %v", ins)
			}
			if jump {
				if ins.Offset < 0 {
					t.Fatalf("backward jump at %d", pc-1)
				}
				pc += int(ins.Offset)
			}
		default:
			t.Fatalf("unexpected instruction %v", ins)
		}
	}
}

// checkProgram compares the program of f with f.allows on every device
// type, numbers around those f names, and every access set.
func checkProgram(t *testing.T, f *deviceFilter) {
	t.Helper()
	insts := decode(t, f.program())
	nums := map[uint32]bool{0: true, 1: true, 2: true, 3: true, 4294967295: true}
	for k := range f.exceptions {
		for _, n := range []int64{k.major, k.minor} {
			if n >= 0 {
				nums[uint32(n)], nums[uint32(n)+1] = true, true
			}
		}
	}
	for _, typ := range []byte{'c', 'b'} {
		for maj := range nums {
			for min := range nums {
				for acc := devAccess(1); acc <= accAll; acc++ {
					ctx := [3]uint32{uint32(bpfDevType(typ)) | uint32(acc)<<16, maj, min}
					got := runDeviceProgram(t, insts, ctx) == 1
					if want := f.allows(typ, maj, min, acc); got != want {
						t.Fatalf("%s: %c %d:%d %s: program says %v, filter %v\n%v", f, typ, maj, min, acc, got, want, insts)
					}
				}
			}
		}
	}
}

func TestDeviceProgram(t *testing.T) {
	for _, rules := range [][]specs.LinuxDeviceCgroup{
		devs("deny rwm"),
		devs("allow rwm"),
		devs("deny rwm", "allow c 1:3 rwm", "allow c 1:5 r", "allow c *:* m"),
		devs("allow rwm", "deny c 1:7 w", "deny b *:* m", "deny c 4294967295:* r"),
		runcDefault,
	} {
		f, err := newDeviceFilter(rules)
		if err != nil {
			t.Fatal(err)
		}
		checkProgram(t, f)
	}
	r := rand.New(rand.NewPCG(3, 4))
	for n := 0; n < 500; {
		f, err := newDeviceFilter(randomRules(r))
		if err != nil {
			continue
		}
		n++
		checkProgram(t, f)
	}
}

// TestDeviceProgramShape pins the program of a small list.
func TestDeviceProgramShape(t *testing.T) {
	f, err := newDeviceFilter(devs("deny rwm", "allow c 1:5 r", "allow c *:* m"))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, ins := range decode(t, f.program()) {
		got = append(got, fmt.Sprint(ins))
	}
	want := []string{
		"LdXMemW dst: r2 src: r1 off: 0 imm: 0",
		"AndImm32 dst: r2 imm: 65535",
		"LdXMemW dst: r3 src: r1 off: 0 imm: 0",
		"RShImm32 dst: r3 imm: 16",
		"LdXMemW dst: r4 src: r1 off: 4 imm: 0",
		"LdXMemW dst: r5 src: r1 off: 8 imm: 0",
		// allow c *:* m (its jumps go to the next exception)
		"JNE32Imm dst: r2 off: 5 imm: 2",
		"MovReg32 dst: r1 src: r3",
		"AndImm32 dst: r1 imm: 1",
		"JNE32Reg dst: r1 off: 2 src: r3",
		"MovImm32 dst: r0 imm: 1",
		"Exit",
		// allow c 1:5 r
		"JNE32Imm dst: r2 off: 7 imm: 2",
		"MovReg32 dst: r1 src: r3",
		"AndImm32 dst: r1 imm: 2",
		"JNE32Reg dst: r1 off: 4 src: r3",
		"JNE32Imm dst: r4 off: 3 imm: 1",
		"JNE32Imm dst: r5 off: 2 imm: 5",
		"MovImm32 dst: r0 imm: 1",
		"Exit",
		// default: deny
		"MovImm32 dst: r0 imm: 0",
		"Exit",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("program:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
