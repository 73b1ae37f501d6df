//go:build seccomp_oracle

// Differential tests against libseccomp (go test -tags seccomp_oracle, with
// cgo and libseccomp-dev): our programs must give the verdicts of
// libseccomp's, with runc's ENOSYS stub applied on top, as runc loads them.

package seccomp

import (
	"encoding/json"
	"math/rand"
	"slices"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

var oracleArches = []*arch{archX86_64, archX86, archX32, archAArch64, archARM}

// TestOracleTables compares our syscall tables with libseccomp's.
func TestOracleTables(t *testing.T) {
	for _, a := range oracleArches {
		differ, newer := 0, 0
		for _, e := range a.table {
			want := e.nr
			if a.x32 {
				want |= x32SyscallBit
			}
			got, ok := libseccompResolve(a, e.name)
			if ok && a.x32 && got < x32SyscallBit {
				got |= x32SyscallBit
			}
			switch {
			case !ok:
				newer++ // unknown to this libseccomp (newer syscalls, or names it lacks)
				t.Logf("%s: %s (%d) unknown to libseccomp", a.name, e.name, e.nr)
			case got != want:
				differ++
				t.Errorf("%s: %s is %d here, %d in libseccomp", a.name, e.name, want, got)
			}
		}
		t.Logf("%s: %d names, %d unknown to libseccomp, %d differ", a.name, len(a.table), newer, differ)
	}
}

// oracle returns the verdict runc would give: libseccomp's program, behind
// runc's stub (a denying default answers ENOSYS above the highest number the
// profile names on each listed architecture), with our one extension of the
// stub: the bound is also kept per band of numbers (x32's own syscalls from
// 512, ARM's private ones), where runc has one bound for all.
type oracle struct {
	v      *vm
	stub   bool
	max    map[*arch]uint32
	band   map[*arch]map[int]uint32
	arches []*arch
}

func bandOf(a *arch, n uint32) int {
	i := 0
	for j, b := range a.bands {
		if n >= b {
			i = j + 1
		}
	}
	return i
}

func newOracle(t *testing.T, s *specs.LinuxSeccomp) *oracle {
	t.Helper()
	prog, err := libseccompProgram(s, nativeArch())
	if err != nil {
		t.Fatalf("libseccomp: %v", err)
	}
	o := &oracle{v: newVM(t, &Filter{Program: prog}, false), max: map[*arch]uint32{}, band: map[*arch]map[int]uint32{}}
	def, _ := parseAction(s.DefaultAction, s.DefaultErrnoRet)
	o.stub = denies(def)
	for _, n := range s.Architectures {
		a := archByName(string(n))
		o.arches = append(o.arches, a)
		for _, sc := range s.Syscalls {
			for _, name := range sc.Names {
				if nr, ok := libseccompResolve(a, name); ok {
					if a.x32 {
						nr |= x32SyscallBit
					}
					o.max[a] = max(o.max[a], nr)
					if o.band[a] == nil {
						o.band[a] = map[int]uint32{}
					}
					o.band[a][bandOf(a, nr)] = max(o.band[a][bandOf(a, nr)], nr)
				}
			}
		}
	}
	return o
}

func (o *oracle) run(c call) uint32 {
	if o.stub {
		for _, a := range o.arches {
			if a.audit == c.arch && (a.audit != unix.AUDIT_ARCH_X86_64 || a.x32 == (c.nr >= x32SyscallBit)) {
				if m, ok := o.max[a]; ok && c.nr > m {
					return retENOSYS
				}
				if m, ok := o.band[a][bandOf(a, c.nr)]; ok && c.nr > m {
					return retENOSYS
				}
			}
		}
	}
	return o.v.run(c)
}

// agreeOnNames drops the names our tables and libseccomp's resolve
// differently on any of the arches, so that both filters mean the same.
func agreeOnNames(t *testing.T, s *specs.LinuxSeccomp) *specs.LinuxSeccomp {
	out := *s
	out.Syscalls = nil
	for _, sc := range s.Syscalls {
		var keep []string
		for _, name := range sc.Names {
			same := true
			for _, n := range s.Architectures {
				a := archByName(string(n))
				ours, ok1 := a.table.lookup(name)
				theirs, ok2 := libseccompResolve(a, name)
				if a.x32 {
					ours |= x32SyscallBit
					theirs |= x32SyscallBit
				}
				if ok1 != ok2 || ok1 && ours != theirs {
					same = false
				}
			}
			if same {
				keep = append(keep, name)
			} else {
				t.Logf("dropping %q: the tables differ", name)
			}
		}
		if len(keep) > 0 {
			sc.Names = keep
			out.Syscalls = append(out.Syscalls, sc)
		}
	}
	return &out
}

func compareWithOracle(t *testing.T, s *specs.LinuxSeccomp, calls []call) {
	t.Helper()
	f, err := Compile(s)
	if err != nil {
		t.Fatal(err)
	}
	o := newOracle(t, s)
	v := newVM(t, f, false)
	bad := 0
	defer func() {
		if bad > 0 {
			b, _ := json.Marshal(s)
			t.Fatalf("%d calls differ; profile %s\nours:\n%s\nlibseccomp:\n%s", bad, b, f.Disassemble(), o.v.f.Disassemble())
		}
	}()
	for _, c := range calls {
		if got, want := v.run(c), o.run(c); got != want {
			t.Errorf("%v: ours %s, libseccomp+runc %s", c, actionString(got), actionString(want))
			bad++
		}
	}
}

func gridCalls(arches []*arch, argSets [][6]uint64) []call {
	var calls []call
	for _, a := range arches {
		base := uint32(0)
		if a.x32 {
			base = x32SyscallBit
		}
		for n := base; n < base+1100; n++ {
			for _, args := range argSets {
				calls = append(calls, call{arch: a.audit, nr: n, args: args})
			}
		}
		calls = append(calls, call{arch: a.audit, nr: 0xffffffff}, call{arch: a.audit, nr: base | 0x0f0005})
	}
	calls = append(calls, call{arch: unix.AUDIT_ARCH_MIPS, nr: 1})
	return calls
}

func TestOracleMoby(t *testing.T) {
	if nativeArch() != archX86_64 {
		t.Skip("x86_64 only")
	}
	argSets := [][6]uint64{{}, {unix.CLONE_NEWUSER | uint64(unix.SIGCHLD)}, {0xffffffff}, {8}, {unix.AF_VSOCK}, {1<<32 | unix.AF_VSOCK}, {0xffffffffffffffff}}
	for _, caps := range [][]string{dockerCaps, append(slices.Clone(dockerCaps), "CAP_SYS_ADMIN", "CAP_SYS_PTRACE", "CAP_SYS_NICE")} {
		s := agreeOnNames(t, mobyDefault(t, "amd64", caps, "6.18"))
		compareWithOracle(t, s, gridCalls([]*arch{archX86_64, archX86, archX32}, argSets))
	}
}

// TestOracleRandom compares random profiles that stay within the semantics
// both share and away from two libseccomp 2.5.4 bugs:
//   - no two conditional rules of one syscall with different actions
//     (libseccomp orders those by its own tree), and no names that x86
//     multiplexes through socketcall or ipc;
//   - at most one conditional rule per syscall: libseccomp merges several
//     into one tree and can then test a stale accumulator. With read
//     {arg2 >= 2^64-1, arg1 < 0x3ffffffff} or {arg1 > 0xfffffffe}, both
//     SCMP_ACT_LOG, arg1 = 2^32 does not match; with futex_waitv {arg1 >
//     0xfffffffe} or {arg2 < 2^64-2, arg1 >= 1}, both TRAP, (arg1 0x80,
//     arg2 2) does not either;
//   - more than 32 rules (filler ones), so that libseccomp builds its binary
//     tree, as runc has it do for every real profile: with few rules and
//     several arches its linear program can skip the load of the syscall
//     number in the second arch's block and compare the arch word instead
//     (x86_64+aarch64, clone(arg1 != 2^32) TRAP: every aarch64 clone gets
//     the default; x86_64+x32, close(arg2 != 0, arg1 < 2^32) TRAP, likewise).
func TestOracleRandom(t *testing.T) {
	if nativeArch() != archX86_64 {
		t.Skip("x86_64 only")
	}
	rnd := rand.New(rand.NewSource(2))
	names := []string{"read", "write", "close", "mkdir", "personality", "clone", "ioctl", "arch_prctl",
		"rt_sigaction", "openat", "clone3", "prctl", "getppid", "fchmodat", "faccessat2", "mount_setattr",
		"set_tls", "cacheflush", "futex_waitv"}
	acts := []specs.LinuxSeccompAction{specs.ActAllow, specs.ActErrno, specs.ActKillProcess, specs.ActTrap, specs.ActLog, specs.ActKill, specs.ActTrace}
	ops := []specs.LinuxSeccompOperator{specs.OpEqualTo, specs.OpNotEqual, specs.OpGreaterThan,
		specs.OpGreaterEqual, specs.OpLessThan, specs.OpLessEqual, specs.OpMaskedEqual}
	val := func() uint64 { return interesting[rnd.Intn(len(interesting))] }
	filler := []string{"getpid", "gettid", "getuid", "getgid", "geteuid", "getegid", "uname", "umask",
		"sync", "pause", "alarm", "chdir", "fchdir", "rmdir", "unlink", "rename", "link", "symlink",
		"readlink", "chmod", "fchmod", "chown", "fchown", "lchown", "truncate", "ftruncate", "fsync",
		"fdatasync", "flock", "dup", "dup3", "pipe2", "sched_yield"}
	for iter := 0; iter < 3000; iter++ {
		s := &specs.LinuxSeccomp{DefaultAction: acts[rnd.Intn(len(acts))],
			Architectures: []specs.Arch{"SCMP_ARCH_X86_64"}}
		for _, a := range []specs.Arch{"SCMP_ARCH_X86", "SCMP_ARCH_X32", "SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"} {
			if rnd.Intn(2) == 0 {
				s.Architectures = append(s.Architectures, a)
			}
		}
		conditional := map[string]bool{}
		for r := 1 + rnd.Intn(10); r > 0; r-- {
			sc := specs.LinuxSyscall{Action: acts[rnd.Intn(len(acts))]}
			name := names[rnd.Intn(len(names))]
			sc.Names = []string{name}
			for k := rnd.Intn(3); k > 0; k-- {
				// Distinct arguments: libseccomp merges conditions on one
				// argument of different rules into its own order.
				sc.Args = append(sc.Args, specs.LinuxSeccompArg{Index: uint(k), Op: ops[rnd.Intn(len(ops))], Value: val(), ValueTwo: val()})
			}
			if len(sc.Args) > 0 {
				if conditional[name] {
					continue
				}
				conditional[name] = true
			}
			s.Syscalls = append(s.Syscalls, sc)
		}
		// More than 32 rules, so that libseccomp builds its binary tree, as
		// runc asks it to for such profiles (all real ones).
		for i, name := range filler {
			s.Syscalls = append(s.Syscalls, specs.LinuxSyscall{Names: []string{name}, Action: acts[i%2]})
		}
		if _, err := libseccompProgram(s, nativeArch()); err != nil {
			t.Logf("libseccomp refuses profile %d: %v", iter, err)
			continue
		}
		var calls []call
		arches := []*arch{archX86_64, archX86, archX32, archAArch64, archARM}
		for k := 0; k < 400; k++ {
			a := arches[rnd.Intn(len(arches))]
			c := call{arch: a.audit}
			if n, ok := a.table.lookup(names[rnd.Intn(len(names))]); ok && rnd.Intn(4) != 0 {
				c.nr = n
			} else {
				c.nr = uint32(rnd.Intn(600))
				if a == archARM && rnd.Intn(3) == 0 {
					c.nr = 0x0f0000 + uint32(rnd.Intn(8))
				}
			}
			if a.x32 {
				c.nr |= x32SyscallBit
			}
			for i := range c.args {
				c.args[i] = val()
			}
			calls = append(calls, c)
		}
		compareWithOracle(t, s, calls)
	}
}

// TestOracleSize compares program sizes for the Docker profile.
func TestOracleSize(t *testing.T) {
	s := mobyDefault(t, "amd64", dockerCaps, "6.18")
	prog, err := libseccompProgram(s, nativeArch())
	if err != nil {
		t.Fatal(err)
	}
	f, err := Compile(s)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("Docker default, x86_64+x86+x32: libseccomp %d instructions (runc adds its stub), ours %d", len(prog), len(f.Program))
}
