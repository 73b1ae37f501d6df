package seccomp

import (
	"math/rand"
	"runtime"
	"slices"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

func TestTables(t *testing.T) {
	for _, a := range knownArches {
		if !slices.IsSortedFunc(a.table, func(x, y sysEntry) int { return strings.Compare(x.name, y.name) }) {
			t.Errorf("%s: table not sorted", a.name)
		}
		for i := 1; i < len(a.table); i++ {
			if a.table[i].name == a.table[i-1].name {
				t.Errorf("%s: %q twice", a.name, a.table[i].name)
			}
		}
	}
	for _, tc := range []struct {
		a    *arch
		name string
		want uint32
	}{
		{archX86_64, "read", 0}, {archX86_64, "mkdir", 83}, {archX86_64, "personality", 135},
		{archX86_64, "clone3", 435}, {archX86_64, "arch_prctl", 158}, {archX86_64, "_sysctl", 156},
		{archX86, "read", 3}, {archX86, "socketcall", 102}, {archX86, "_llseek", 140}, {archX86, "clone3", 435},
		{archX32, "read", x32SyscallBit + 0}, {archX32, "rt_sigaction", x32SyscallBit + 512},
		{archX32, "execve", x32SyscallBit + 520}, {archX32, "clone3", x32SyscallBit + 435},
		{archX32, "cachestat", x32SyscallBit + 451},
		{archAArch64, "read", 63}, {archAArch64, "clone3", 435},
		{archARM, "read", 3}, {archARM, "set_tls", 0x0f0005}, {archARM, "breakpoint", 0x0f0001},
		{archRISCV64, "read", 63}, {archS390X, "read", 3}, {archPPC64LE, "read", 3},
	} {
		if got := nr(t, tc.a, tc.name); got != tc.want {
			t.Errorf("%s %s = %d, want %d", tc.a.name, tc.name, got, tc.want)
		}
	}
	for _, tc := range []struct {
		a    *arch
		name string
	}{
		{archX86_64, "socketcall"}, {archX86_64, "mmap2"}, {archX32, "map_shadow_stack"},
		{archX32, "uretprobe"}, {archAArch64, "open"}, {archX86, "epoll_ctl_old"},
	} {
		if _, ok := tc.a.table.lookup(tc.name); ok {
			t.Errorf("%s has %s", tc.a.name, tc.name)
		}
	}
	// The native table agrees with x/sys's SYS_* constants compiled in.
	if runtime.GOARCH == "amd64" {
		for name, want := range map[string]uintptr{
			"read": unix.SYS_READ, "openat2": unix.SYS_OPENAT2, "pidfd_open": unix.SYS_PIDFD_OPEN,
			"mount_setattr": unix.SYS_MOUNT_SETATTR, "close_range": unix.SYS_CLOSE_RANGE,
		} {
			if got := nr(t, nativeArch(), name); uintptr(got) != want {
				t.Errorf("native %s = %d, want %d", name, got, want)
			}
		}
	}
}

func TestCompileErrors(t *testing.T) {
	ok := specs.LinuxSyscall{Names: []string{"read"}, Action: specs.ActAllow}
	for _, tc := range []struct {
		name string
		s    specs.LinuxSeccomp
		want string
	}{
		{"no default", specs.LinuxSeccomp{}, "linux.seccomp.defaultAction: missing"},
		{"bad default", specs.LinuxSeccomp{DefaultAction: "SCMP_ACT_FOO"}, `linux.seccomp.defaultAction "SCMP_ACT_FOO": unknown action`},
		{"notify default", specs.LinuxSeccomp{DefaultAction: specs.ActNotify}, `linux.seccomp.defaultAction "SCMP_ACT_NOTIFY": cannot be the default action`},
		{"notify write", specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{{Names: []string{"mkdir", "write"}, Action: specs.ActNotify}}},
			"linux.seccomp.syscalls[0]: SCMP_ACT_NOTIFY cannot be used for the write syscall"},
		{"default errno on allow", specs.LinuxSeccomp{DefaultAction: specs.ActAllow, DefaultErrnoRet: uptr(1)}, "linux.seccomp.defaultErrnoRet: only SCMP_ACT_ERRNO and SCMP_ACT_TRACE"},
		{"bad arch", specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Architectures: []specs.Arch{"SCMP_ARCH_X86_64", "SCMP_ARCH_VAX"}}, `linux.seccomp.architectures[1] "SCMP_ARCH_VAX": unknown architecture`},
		{"bad flag", specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Flags: []specs.LinuxSeccompFlag{"SECCOMP_FILTER_FLAG_FOO"}}, `linux.seccomp.flags[0] "SECCOMP_FILTER_FLAG_FOO": unknown flag`},
		{"bad action", specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{ok, ok, ok, {Names: []string{"read"}, Action: "SCMP_ACT_FOO"}}}, `linux.seccomp.syscalls[3].action "SCMP_ACT_FOO": unknown action`},
		{"no action", specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{{Names: []string{"read"}}}}, `linux.seccomp.syscalls[0].action: missing`},
		{"no names", specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{{Action: specs.ActErrno}}}, `linux.seccomp.syscalls[0].names: must name at least one syscall`},
		{"empty name", specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{{Names: []string{"read", ""}, Action: specs.ActErrno}}}, `linux.seccomp.syscalls[0].names[1]: empty syscall name`},
		{"errno on allow", specs.LinuxSeccomp{DefaultAction: specs.ActErrno, Syscalls: []specs.LinuxSyscall{{Names: []string{"read"}, Action: specs.ActAllow, ErrnoRet: uptr(1)}}}, `linux.seccomp.syscalls[0].errnoRet: only SCMP_ACT_ERRNO and SCMP_ACT_TRACE take one, not SCMP_ACT_ALLOW`},
		{"errno too big", specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{{Names: []string{"read"}, Action: specs.ActErrno, ErrnoRet: uptr(70000)}}}, `linux.seccomp.syscalls[0].errnoRet 70000: larger than 65535`},
		{"bad op", specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{{Names: []string{"read"}, Action: specs.ActErrno, Args: []specs.LinuxSeccompArg{{Index: 0, Op: "SCMP_CMP_FOO"}}}}}, `linux.seccomp.syscalls[0].args[0].op "SCMP_CMP_FOO": unknown operator`},
		{"bad index", specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{{Names: []string{"read"}, Action: specs.ActErrno, Args: []specs.LinuxSeccompArg{{Index: 6, Op: specs.OpEqualTo}}}}}, `linux.seccomp.syscalls[0].args[0].index 6: a syscall has 6 arguments (0 to 5)`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := compile(&tc.s, archX86_64, false)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
		})
	}
	if _, err := compile(nil, archX86_64, false); err == nil {
		t.Fatal("nil profile compiled")
	}
	// All problems are reported at once.
	_, err := compile(&specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{
		{Names: []string{"read"}, Action: "X"}, {Names: []string{"read"}, Action: "Y"},
	}}, archX86_64, false)
	if err == nil || !strings.Contains(err.Error(), "syscalls[0]") || !strings.Contains(err.Error(), "syscalls[1]") {
		t.Fatalf("error %v, want both rules named", err)
	}
}

func TestWarnings(t *testing.T) {
	f := mustCompile(t, &specs.LinuxSeccomp{
		DefaultAction: specs.ActErrno,
		Architectures: []specs.Arch{"SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_MIPS"},
		Flags:         []specs.LinuxSeccompFlag{specs.LinuxSeccompFlagWaitKillableRecv},
		Syscalls: []specs.LinuxSyscall{
			{Names: []string{"read", "no_such_call", "socketcall", "arch_prctl"}, Action: specs.ActAllow},
			{Names: []string{"personality"}, Action: specs.ActAllow, Args: []specs.LinuxSeccompArg{
				{Index: 0, Op: specs.OpGreaterEqual, Value: 3}, {Index: 0, Op: specs.OpLessEqual, Value: 1},
			}},
		},
	})
	got := strings.Join(f.Warnings, "\n")
	for _, want := range []string{
		`linux.seccomp.architectures[2] "SCMP_ARCH_MIPS": no syscall table for this architecture, skipped`,
		`linux.seccomp.syscalls[0].names[1] "no_such_call": unknown syscall, skipped`,
		`linux.seccomp.syscalls[1].args: several conditions on one argument are OR'ed`,
		`SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV without an SCMP_ACT_NOTIFY rule`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("warnings lack %q:\n%s", want, got)
		}
	}
	// Names known on one of the arches only are no warning.
	for _, w := range f.Warnings {
		if strings.Contains(w, "socketcall") || strings.Contains(w, "arch_prctl") {
			t.Errorf("unexpected warning %q", w)
		}
	}
	if f.Flags != 0 {
		t.Errorf("flags %#x, want 0", f.Flags)
	}
	v := newVM(t, f, false)
	// OR'ed: personality(5) (>= 3) and personality(0) (<= 1) pass, 2 does not.
	for arg, want := range map[uint64]uint32{5: retAllow, 0: retAllow, 1: retAllow, 2: retEPERM} {
		if got := v.run(call{arch: archX86_64.audit, nr: nr(t, archX86_64, "personality"), args: [6]uint64{arg}}); got != want {
			t.Errorf("personality(%d) = %s, want %s", arg, actionString(got), actionString(want))
		}
	}
}

func TestFlags(t *testing.T) {
	all := []specs.LinuxSeccompFlag{"SECCOMP_FILTER_FLAG_TSYNC", specs.LinuxSeccompFlagLog, specs.LinuxSeccompFlagSpecAllow, specs.LinuxSeccompFlagWaitKillableRecv}
	f := mustCompile(t, &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Flags: all,
		Syscalls: []specs.LinuxSyscall{{Names: []string{"mkdir"}, Action: specs.ActNotify}}})
	want := uint(unix.SECCOMP_FILTER_FLAG_TSYNC | unix.SECCOMP_FILTER_FLAG_LOG | unix.SECCOMP_FILTER_FLAG_SPEC_ALLOW |
		unix.SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV | unix.SECCOMP_FILTER_FLAG_NEW_LISTENER | unix.SECCOMP_FILTER_FLAG_TSYNC_ESRCH)
	if f.Flags != want || !f.NotifyRequested {
		t.Fatalf("flags %s notify %v, want %s", flagString(f.Flags), f.NotifyRequested, flagString(want))
	}
	f = mustCompile(t, &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Flags: all[:1]})
	if f.Flags != unix.SECCOMP_FILTER_FLAG_TSYNC || f.NotifyRequested {
		t.Fatalf("flags %s notify %v", flagString(f.Flags), f.NotifyRequested)
	}
	// No flags field: SPEC_ALLOW where the kernel has it, as runc sets it;
	// an empty list: none (runc's seccomp.bats "SECCOMP_FILTER_FLAG_*").
	f = mustCompile(t, &specs.LinuxSeccomp{DefaultAction: specs.ActAllow})
	if want := uint(0); specAllowAvailable() && f.Flags != unix.SECCOMP_FILTER_FLAG_SPEC_ALLOW || !specAllowAvailable() && f.Flags != want {
		t.Errorf("no flags field: flags %s", flagString(f.Flags))
	}
	f = mustCompile(t, &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Flags: []specs.LinuxSeccompFlag{}})
	if f.Flags != 0 {
		t.Errorf("an empty flags list: flags %s, want none", flagString(f.Flags))
	}
}

func TestActions(t *testing.T) {
	cases := []struct {
		act   specs.LinuxSeccompAction
		errno *uint
		want  uint32
	}{
		{specs.ActKill, nil, retKillThread},
		{specs.ActKillThread, nil, retKillThread},
		{specs.ActKillProcess, nil, retKillProc},
		{specs.ActTrap, nil, retTrap},
		{specs.ActErrno, nil, retEPERM},
		{specs.ActErrno, uptr(38), retENOSYS},
		{specs.ActErrno, uptr(0), unix.SECCOMP_RET_ERRNO},
		{specs.ActTrace, nil, unix.SECCOMP_RET_TRACE | 1},
		{specs.ActTrace, uptr(42), unix.SECCOMP_RET_TRACE | 42},
		{specs.ActAllow, nil, retAllow},
		{specs.ActLog, nil, retLog},
		{specs.ActNotify, nil, retNotify},
	}
	var rules []specs.LinuxSyscall
	names := []string{"read", "write", "open", "close", "stat", "fstat", "lstat", "poll", "lseek", "mmap", "mprotect", "munmap"}
	for i, tc := range cases {
		rules = append(rules, specs.LinuxSyscall{Names: []string{names[i]}, Action: tc.act, ErrnoRet: tc.errno})
	}
	// The default differs from every rule's action, so none is dropped.
	f := mustCompile(t, &specs.LinuxSeccomp{DefaultAction: specs.ActErrno, DefaultErrnoRet: uptr(13), Syscalls: rules})
	v := newVM(t, f, false)
	for i, tc := range cases {
		if got := v.run(call{arch: archX86_64.audit, nr: nr(t, archX86_64, names[i])}); got != tc.want {
			t.Errorf("%s(%v): %s, want %s", tc.act, tc.errno, actionString(got), actionString(tc.want))
		}
	}
	// brk (12) is above every number the profile names (0 to 11).
	if got := v.run(call{arch: archX86_64.audit, nr: nr(t, archX86_64, "brk")}); got != retENOSYS {
		t.Errorf("brk: %s", actionString(got))
	}
	// Each default action.
	for _, tc := range cases {
		if tc.act == specs.ActNotify {
			continue
		}
		f := mustCompile(t, &specs.LinuxSeccomp{DefaultAction: tc.act, DefaultErrnoRet: tc.errno})
		if got := newVM(t, f, false).run(call{arch: archX86_64.audit, nr: 0}); got != tc.want {
			t.Errorf("default %s(%v): %s, want %s", tc.act, tc.errno, actionString(got), actionString(tc.want))
		}
	}
}

// TestRulePrecedence: an unconditional rule beats conditional ones in either
// order; conditional rules go in profile order; a rule equal to the default
// is dropped, so it does not shadow a conditional one.
func TestRulePrecedence(t *testing.T) {
	eq := func(i uint, v uint64) []specs.LinuxSeccompArg {
		return []specs.LinuxSeccompArg{{Index: i, Op: specs.OpEqualTo, Value: v}}
	}
	f := mustCompile(t, &specs.LinuxSeccomp{DefaultAction: specs.ActErrno, Syscalls: []specs.LinuxSyscall{
		{Names: []string{"read"}, Action: specs.ActErrno, ErrnoRet: uptr(5), Args: eq(0, 3)},
		{Names: []string{"read"}, Action: specs.ActAllow},
		{Names: []string{"write"}, Action: specs.ActAllow},
		{Names: []string{"write"}, Action: specs.ActErrno, ErrnoRet: uptr(5), Args: eq(0, 3)},
		{Names: []string{"close"}, Action: specs.ActErrno, ErrnoRet: uptr(6), Args: eq(1, 4)},
		{Names: []string{"close"}, Action: specs.ActErrno, ErrnoRet: uptr(5), Args: eq(0, 3)},
		{Names: []string{"open"}, Action: specs.ActAllow, Args: eq(0, 3)},
		{Names: []string{"open"}, Action: specs.ActErrno}, // = default: dropped
	}})
	v := newVM(t, f, false)
	for _, tc := range []struct {
		name string
		args [6]uint64
		want uint32
	}{
		{"read", [6]uint64{3}, retAllow},
		{"write", [6]uint64{3}, retAllow},
		{"close", [6]uint64{3, 4}, retErrno(6)},
		{"close", [6]uint64{3, 5}, retErrno(5)},
		{"close", [6]uint64{2, 5}, retEPERM},
		{"open", [6]uint64{3}, retAllow},
		{"open", [6]uint64{4}, retEPERM},
	} {
		if got := v.run(call{arch: archX86_64.audit, nr: nr(t, archX86_64, tc.name), args: tc.args}); got != tc.want {
			t.Errorf("%s%v: %s, want %s", tc.name, tc.args[:2], actionString(got), actionString(tc.want))
		}
	}
}

// interesting are argument values around the edges of both halves.
var interesting = []uint64{
	0, 1, 2, 3, 0x7f, 0x80, 0xfffffffe, 0xffffffff, 1 << 32, 1<<32 + 1, 1<<32 + 3, 2 << 32,
	0x7fffffffffffffff, 0x8000000000000000, 0xffffffff00000000, 0xfffffffffffffffe, 0xffffffffffffffff,
	0x123456789abcdef0, 0x00000003ffffffff,
}

// TestArgConditions checks every operator on 64-bit and 32-bit ABIs, for
// values and arguments on both sides of every edge, against the model.
func TestArgConditions(t *testing.T) {
	ops := []specs.LinuxSeccompOperator{specs.OpEqualTo, specs.OpNotEqual, specs.OpGreaterThan,
		specs.OpGreaterEqual, specs.OpLessThan, specs.OpLessEqual, specs.OpMaskedEqual}
	masks := [][2]uint64{{0xff, 0x3}, {0xffffffff00000000, 1 << 32}, {0x0000ffff0000ffff, 0x0000000100000003},
		{0xff, 1 << 32}, {0, 0}, {0xffffffffffffffff, 3}}
	for _, bigEndian := range []bool{false, true} {
		for _, op := range ops {
			var s specs.LinuxSeccomp
			s.DefaultAction = specs.ActErrno
			s.Architectures = []specs.Arch{"SCMP_ARCH_X86", "SCMP_ARCH_X32", "SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"}
			// One syscall per value (or mask), compared on argument 2.
			names := []string{}
			for _, e := range archX86.table {
				if _, ok := archX86_64.table.lookup(e.name); ok {
					if _, ok := archAArch64.table.lookup(e.name); ok {
						if _, ok := archX32.table.lookup(e.name); ok {
							if _, ok := archARM.table.lookup(e.name); ok {
								names = append(names, e.name)
							}
						}
					}
				}
			}
			n := len(interesting)
			if op == specs.OpMaskedEqual {
				n = len(masks)
			}
			for i := 0; i < n; i++ {
				a := specs.LinuxSeccompArg{Index: 2, Op: op}
				if op == specs.OpMaskedEqual {
					a.Value, a.ValueTwo = masks[i][0], masks[i][1]
				} else {
					a.Value = interesting[i]
				}
				s.Syscalls = append(s.Syscalls, specs.LinuxSyscall{Names: []string{names[i]}, Action: specs.ActAllow,
					Args: []specs.LinuxSeccompArg{a, {Index: 5, Op: specs.OpNotEqual, Value: 0xdead}}})
			}
			f, err := compile(&s, archX86_64, bigEndian)
			if err != nil {
				t.Fatal(err)
			}
			v := newVM(t, f, bigEndian)
			for _, ar := range []*arch{archX86_64, archX86, archX32, archAArch64, archARM} {
				for i := 0; i < n; i++ {
					for _, x := range interesting {
						for _, a5 := range []uint64{0, 0xdead, 1<<32 | 0xdead} {
							c := call{arch: ar.audit, nr: nr(t, ar, names[i]), args: [6]uint64{0, 0, x, 0, 0, a5}}
							want := model(&s, archX86_64, c)
							if got := v.run(c); got != want {
								t.Fatalf("%s big-endian=%v %s %v: %s, want %s\nrule %+v", ar.name, bigEndian, names[i], c,
									actionString(got), actionString(want), s.Syscalls[i].Args)
							}
						}
					}
				}
			}
		}
	}
}

func TestEnosys(t *testing.T) {
	rules := []specs.LinuxSyscall{
		{Names: []string{"read", "write"}, Action: specs.ActAllow},
		{Names: []string{"mkdir"}, Action: specs.ActErrno, ErrnoRet: uptr(1)}, // = default below: dropped, still counts
	}
	maxNr := nr(t, archX86_64, "mkdir") // 83
	for _, tc := range []struct {
		def    specs.LinuxSeccompAction
		errno  *uint
		enosys bool
	}{
		{specs.ActErrno, nil, true},
		{specs.ActErrno, uptr(13), true},
		{specs.ActErrno, uptr(38), false}, // the default already says ENOSYS
		{specs.ActKill, nil, true},
		{specs.ActKillProcess, nil, true},
		{specs.ActTrap, nil, true},
		{specs.ActAllow, nil, false},
		{specs.ActLog, nil, false},
		{specs.ActTrace, nil, false},
	} {
		s := &specs.LinuxSeccomp{DefaultAction: tc.def, DefaultErrnoRet: tc.errno, Syscalls: rules}
		f := mustCompile(t, s)
		v := newVM(t, f, false)
		def, _ := parseAction(tc.def, tc.errno)
		for _, n := range []uint32{2, 50, maxNr, maxNr + 1, 334, 435, 1000, x32SyscallBit - 1} {
			want := def
			switch {
			case n == maxNr:
				want = retEPERM // the mkdir rule, or the same default
			case tc.enosys && n > maxNr:
				want = retENOSYS
			}
			if got := v.run(call{arch: archX86_64.audit, nr: n}); got != want {
				t.Errorf("default %s(%v) nr %d: %s, want %s", tc.def, tc.errno, n, actionString(got), actionString(want))
			}
		}
	}

	// The bound is per architecture: i386's numbers differ.
	s := &specs.LinuxSeccomp{DefaultAction: specs.ActErrno, Architectures: []specs.Arch{"SCMP_ARCH_X86", "SCMP_ARCH_X32"},
		Syscalls: []specs.LinuxSyscall{{Names: []string{"read", "arch_prctl", "rt_sigaction"}, Action: specs.ActAllow}}}
	v := newVM(t, mustCompile(t, s), false)
	for _, tc := range []struct {
		c    call
		want uint32
	}{
		{call{arch: archX86_64.audit, nr: 158}, retAllow},                        // arch_prctl
		{call{arch: archX86_64.audit, nr: 157}, retEPERM},                        // below
		{call{arch: archX86_64.audit, nr: 159}, retENOSYS},                       // above arch_prctl
		{call{arch: archX86.audit, nr: 3}, retAllow},                             // read
		{call{arch: archX86.audit, nr: 175}, retEPERM},                           // below arch_prctl (384)
		{call{arch: archX86.audit, nr: 385}, retENOSYS},                          // above
		{call{arch: archX32.audit, nr: x32SyscallBit + 158}, retAllow},           // arch_prctl
		{call{arch: archX32.audit, nr: x32SyscallBit + 157}, retEPERM},           // below arch_prctl
		{call{arch: archX32.audit, nr: x32SyscallBit + 451}, retENOSYS},          // above arch_prctl, highest of the common band
		{call{arch: archX32.audit, nr: x32SyscallBit + 511}, retENOSYS},          // same band, below 512
		{call{arch: archX32.audit, nr: x32SyscallBit + 513}, retENOSYS},          // above
		{call{arch: archX32.audit, nr: 0xffffffff}, retENOSYS},                   // x32, huge
		{call{arch: archAArch64.audit, nr: 63}, retKillThread},                   // not in the filter
		{call{arch: unix.AUDIT_ARCH_X86_64 &^ 0x40000000, nr: 0}, retKillThread}, // garbage arch
	} {
		if got := v.run(tc.c); got != tc.want {
			t.Errorf("%v: %s, want %s", tc.c, actionString(got), actionString(tc.want))
		}
	}
}

// TestEnosysBands: ARM's private syscalls (0x0f0000 up) have their own
// bound, so naming set_tls does not hide new syscalls from ENOSYS.
func TestEnosysBands(t *testing.T) {
	s := &specs.LinuxSeccomp{DefaultAction: specs.ActErrno, Architectures: []specs.Arch{"SCMP_ARCH_ARM"},
		Syscalls: []specs.LinuxSyscall{{Names: []string{"read", "openat", "set_tls"}, Action: specs.ActAllow}}}
	f, err := compile(s, archAArch64, false)
	if err != nil {
		t.Fatal(err)
	}
	v := newVM(t, f, false)
	for n, want := range map[uint32]uint32{
		3: retAllow, 100: retEPERM, 322: retAllow, 323: retENOSYS, 451: retENOSYS, 0xeffff: retENOSYS,
		0xf0001: retEPERM, 0xf0005: retAllow, 0xf0006: retENOSYS, 0xffffffff: retENOSYS,
	} {
		c := call{arch: archARM.audit, nr: n}
		if got := v.run(c); got != want {
			t.Errorf("arm nr %#x: %s, want %s", n, actionString(got), actionString(want))
		}
		if m := model(s, archAArch64, c); m != want {
			t.Errorf("model: arm nr %#x: %s", n, actionString(m))
		}
	}
}

func TestArchDispatch(t *testing.T) {
	allowRead := []specs.LinuxSyscall{{Names: []string{"read"}, Action: specs.ActAllow},
		{Names: []string{"clone3"}, Action: specs.ActErrno}} // = default: dropped, sets the ENOSYS bound
	x64, x86, x32, a64, arm := archX86_64.audit, archX86.audit, archX32.audit, archAArch64.audit, archARM.audit
	for _, tc := range []struct {
		native *arch
		arches []specs.Arch
		calls  map[call]uint32
	}{
		{archX86_64, nil, map[call]uint32{
			{arch: x64, nr: 0}: retAllow, {arch: x64, nr: 1}: retEPERM,
			{arch: x32, nr: x32SyscallBit}: retKillThread, {arch: x64, nr: 0xffffffff}: retEPERM, // -1: the default
			{arch: x86, nr: 3}: retKillThread, {arch: a64, nr: 63}: retKillThread,
		}},
		{archX86_64, []specs.Arch{"SCMP_ARCH_X86_64", "SCMP_ARCH_X86"}, map[call]uint32{
			{arch: x64, nr: 0}: retAllow, {arch: x86, nr: 3}: retAllow, {arch: x86, nr: 0}: retEPERM,
			{arch: x32, nr: x32SyscallBit}: retKillThread,
		}},
		{archX86_64, []specs.Arch{"SCMP_ARCH_X32"}, map[call]uint32{
			{arch: x64, nr: 0}: retAllow, {arch: x32, nr: x32SyscallBit}: retAllow,
			{arch: x32, nr: x32SyscallBit + 1}: retEPERM, {arch: x86, nr: 3}: retKillThread,
		}},
		{archAArch64, []specs.Arch{"SCMP_ARCH_ARM", "SCMP_ARCH_X32"}, map[call]uint32{
			{arch: a64, nr: 63}: retAllow, {arch: arm, nr: 3}: retAllow, {arch: arm, nr: 63}: retEPERM,
			{arch: x32, nr: x32SyscallBit}: retAllow, {arch: x64, nr: 0}: retKillThread, // x32 alone
		}},
	} {
		s := &specs.LinuxSeccomp{DefaultAction: specs.ActErrno, Architectures: tc.arches, Syscalls: allowRead}
		f, err := compile(s, tc.native, false)
		if err != nil {
			t.Fatal(err)
		}
		v := newVM(t, f, false)
		for c, want := range tc.calls {
			if got := v.run(c); got != want {
				t.Errorf("native %s %v %v: %s, want %s", tc.native.name, tc.arches, c, actionString(got), actionString(want))
			}
			if m := model(s, tc.native, c); m != want {
				t.Errorf("model disagrees on %v: %s", c, actionString(m))
			}
		}
	}
}

// steps counts the instructions a call executes.
func steps(p []unix.SockFilter, c call) (n int, ret uint32) { return run(p, c) }

// TestSearchTree: with every syscall in its own range, a call is decided
// in about log2(ranges) comparisons, far jumps included.
func TestSearchTree(t *testing.T) {
	var s specs.LinuxSeccomp
	s.DefaultAction = specs.ActErrno
	acts := []specs.LinuxSeccompAction{specs.ActAllow, specs.ActLog, specs.ActTrap}
	for i, e := range archX86_64.table {
		s.Syscalls = append(s.Syscalls, specs.LinuxSyscall{Names: []string{e.name}, Action: acts[i%3]})
	}
	f := mustCompile(t, &s)
	segs := mustCompiler(t, &s).segments(archX86_64, 0)
	depth := 0
	for 1<<depth < len(segs) {
		depth++
	}
	v := newVM(t, f, false)
	worst := 0
	for n := uint32(0); n < 600; n++ {
		c := call{arch: archX86_64.audit, nr: n}
		k, ret := steps(f.Program, c)
		if got := v.run(c); got != ret {
			t.Fatalf("nr %d: vm %s, steps %s", n, actionString(got), actionString(ret))
		}
		if want := model(&s, archX86_64, c); ret != want {
			t.Fatalf("nr %d: %s, want %s", n, actionString(ret), actionString(want))
		}
		if k > worst {
			worst = k
		}
	}
	far := 0
	for _, in := range f.Program {
		if in.Code == opJa {
			far++
		}
	}
	t.Logf("%d syscalls, %d ranges, %d instructions (%d trampolines), at most %d executed", len(archX86_64.table), len(segs), len(f.Program), far, worst)
	// ld arch, jeq, ld nr, jge x32, then the tree: depth comparisons plus
	// trampolines on the way, then ret.
	if worst > 4+2*depth+1 {
		t.Errorf("worst path %d instructions for %d ranges", worst, len(segs))
	}
	if far == 0 {
		t.Errorf("no far jumps in a program of %d instructions: the test does not test them", len(f.Program))
	}
}

func mustCompiler(t *testing.T, s *specs.LinuxSeccomp) *compiler {
	t.Helper()
	c := &compiler{rules: map[*arch]map[uint32][]rule{}, named: map[*arch]map[uint32]bool{}, arches: []*arch{archX86_64}}
	c.defAction, _ = parseAction(s.DefaultAction, s.DefaultErrnoRet)
	c.enosys = denies(c.defAction)
	for i := range s.Syscalls {
		c.addSyscall(i, &s.Syscalls[i], &Filter{})
	}
	return c
}

func TestAssemblerFarJumps(t *testing.T) {
	var a assembler
	far, near := a.newLabel(), a.newLabel()
	a.load(offNr)
	a.jcond(opJeqK, 7, far, near) // jt far, jf next
	a.mark(near)
	done := a.newLabel()
	a.jcond(opJeqK, 8, done, far) // both far
	for i := 0; i < 300; i++ {
		a.ret(uint32(1000 + i))
	}
	a.mark(far)
	a.ret(retAllow)
	a.mark(done)
	a.ret(retLog)
	p, err := a.assemble()
	if err != nil {
		t.Fatal(err)
	}
	f := &Filter{Program: p}
	checkSeccompProgram(t, p)
	for nr, want := range map[uint32]uint32{7: retAllow, 8: retLog, 9: retAllow} {
		if _, got := steps(p, call{nr: nr}); got != want {
			t.Errorf("nr %d: %s, want %s\n%s", nr, actionString(got), actionString(want), f.Disassemble())
		}
		if got := newVM(t, f, false).run(call{nr: nr}); got != want {
			t.Errorf("vm nr %d: %s", nr, actionString(got))
		}
	}
}

// TestRandomProfiles compares compiled programs with the model on random
// profiles and calls.
func TestRandomProfiles(t *testing.T) {
	rnd := rand.New(rand.NewSource(1))
	names := []string{"read", "write", "open", "close", "mkdir", "personality", "clone", "socket", "ioctl",
		"arch_prctl", "socketcall", "rt_sigaction", "set_tls", "openat2", "clone3", "no_such_call"}
	acts := []specs.LinuxSeccompAction{specs.ActAllow, specs.ActErrno, specs.ActKillProcess, specs.ActTrap, specs.ActLog, specs.ActKill, specs.ActTrace}
	ops := []specs.LinuxSeccompOperator{specs.OpEqualTo, specs.OpNotEqual, specs.OpGreaterThan,
		specs.OpGreaterEqual, specs.OpLessThan, specs.OpLessEqual, specs.OpMaskedEqual}
	arches := []specs.Arch{"SCMP_ARCH_X86", "SCMP_ARCH_X32", "SCMP_ARCH_ARM", "SCMP_ARCH_AARCH64", "SCMP_ARCH_X86_64"}
	val := func() uint64 { return interesting[rnd.Intn(len(interesting))] }
	for iter := 0; iter < 300; iter++ {
		s := &specs.LinuxSeccomp{DefaultAction: acts[rnd.Intn(len(acts))]}
		if s.DefaultAction == specs.ActErrno && rnd.Intn(2) == 0 {
			s.DefaultErrnoRet = uptr(uint(rnd.Intn(40)))
		}
		for _, a := range arches {
			if rnd.Intn(2) == 0 {
				s.Architectures = append(s.Architectures, a)
			}
		}
		for r := rnd.Intn(12); r > 0; r-- {
			sc := specs.LinuxSyscall{Action: acts[rnd.Intn(len(acts))]}
			if sc.Action == specs.ActErrno && rnd.Intn(2) == 0 {
				sc.ErrnoRet = uptr(uint(rnd.Intn(40)))
			}
			for k := 1 + rnd.Intn(3); k > 0; k-- {
				sc.Names = append(sc.Names, names[rnd.Intn(len(names))])
			}
			for k := rnd.Intn(4); k > 0; k-- {
				sc.Args = append(sc.Args, specs.LinuxSeccompArg{Index: uint(rnd.Intn(3)), Op: ops[rnd.Intn(len(ops))], Value: val(), ValueTwo: val()})
			}
			s.Syscalls = append(s.Syscalls, sc)
		}
		native := []*arch{archX86_64, archAArch64}[rnd.Intn(2)]
		bigEndian := rnd.Intn(4) == 0
		f, err := compile(s, native, bigEndian)
		if err != nil {
			t.Fatal(err)
		}
		v := newVM(t, f, bigEndian)
		for k := 0; k < 300; k++ {
			ar := knownArches[rnd.Intn(5)]
			var c call
			c.arch = ar.audit
			switch rnd.Intn(3) {
			case 0:
				if n, ok := ar.table.lookup(names[rnd.Intn(len(names))]); ok {
					c.nr = n
				}
			case 1:
				c.nr = uint32(rnd.Intn(1000))
			case 2:
				c.nr = uint32(val())
			}
			if ar.x32 && rnd.Intn(4) != 0 {
				c.nr |= x32SyscallBit
			}
			for i := range c.args {
				c.args[i] = val()
			}
			if got, want := v.run(c), model(s, native, c); got != want {
				t.Fatalf("profile %+v\nnative %s big-endian %v\n%v: %s, want %s\n%s", *s, native.name, bigEndian, c,
					actionString(got), actionString(want), f.Disassemble())
			}
		}
	}
}
