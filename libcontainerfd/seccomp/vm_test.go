package seccomp

import (
	"encoding/binary"
	"fmt"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// Verdicts used in expectations.
const (
	retAllow      = unix.SECCOMP_RET_ALLOW
	retKillThread = unix.SECCOMP_RET_KILL_THREAD
	retKillProc   = unix.SECCOMP_RET_KILL_PROCESS
	retTrap       = unix.SECCOMP_RET_TRAP
	retLog        = unix.SECCOMP_RET_LOG
	retNotify     = unix.SECCOMP_RET_USER_NOTIF
	retEPERM      = unix.SECCOMP_RET_ERRNO | uint32(unix.EPERM)
	retENOSYS     = unix.SECCOMP_RET_ERRNO | uint32(unix.ENOSYS)
)

func retErrno(e unix.Errno) uint32 { return unix.SECCOMP_RET_ERRNO | uint32(e) }

func (c call) String() string {
	return fmt.Sprintf("arch=%#x nr=%#x args=%#x", c.arch, c.nr, c.args)
}

// vm runs a compiled program in golang.org/x/net/bpf's interpreter, an
// implementation independent of ours.
type vm struct {
	t         testing.TB
	f         *Filter
	m         *bpf.VM
	bigEndian bool
}

func newVM(t testing.TB, f *Filter, bigEndian bool) *vm {
	t.Helper()
	raw := make([]bpf.RawInstruction, len(f.Program))
	for i, in := range f.Program {
		raw[i] = bpf.RawInstruction{Op: in.Code, Jt: in.Jt, Jf: in.Jf, K: in.K}
	}
	insns, ok := bpf.Disassemble(raw)
	if !ok {
		t.Fatalf("x/net/bpf cannot decode the program:\n%s", f.Disassemble())
	}
	m, err := bpf.NewVM(insns)
	if err != nil {
		t.Fatalf("x/net/bpf rejects the program: %v\n%s", err, f.Disassemble())
	}
	checkSeccompProgram(t, f.Program)
	return &vm{t: t, f: f, m: m, bigEndian: bigEndian}
}

// run returns the filter's verdict for c. The x/net VM loads words big
// endian (network order) while the kernel loads seccomp_data in host order,
// so each 32-bit word is written big endian where the program reads it.
func (v *vm) run(c call) uint32 {
	v.t.Helper()
	buf := make([]byte, 64)
	put := func(off int, x uint32) { binary.BigEndian.PutUint32(buf[off:], x) }
	put(offNr, c.nr)
	put(offArch, c.arch)
	put(8, 0xdead)
	put(12, 0xbeef)
	for i, a := range c.args {
		lo, hi := offArgs+8*i, offArgs+8*i+4
		if v.bigEndian {
			lo, hi = hi, lo
		}
		put(lo, uint32(a))
		put(hi, uint32(a>>32))
	}
	r, err := v.m.Run(buf)
	if err != nil {
		v.t.Fatalf("run %v: %v", c, err)
	}
	return uint32(r)
}

// checkSeccompProgram applies the kernel's checks (seccomp_check_filter and
// bpf_check_classic): only the instructions seccomp allows, aligned loads
// inside seccomp_data, jumps in range, a return at the end.
func checkSeccompProgram(t testing.TB, p []unix.SockFilter) {
	t.Helper()
	if len(p) == 0 || len(p) > MaxInsns {
		t.Fatalf("program length %d", len(p))
	}
	for i, in := range p {
		switch in.Code {
		case opLdAbsW:
			if in.K >= 64 || in.K%4 != 0 {
				t.Fatalf("insn %d: load at %d", i, in.K)
			}
		case opAndK, opRetK:
		case opJa:
			if uint64(i)+1+uint64(in.K) >= uint64(len(p)) {
				t.Fatalf("insn %d: ja past the end", i)
			}
		case opJeqK, opJgtK, opJgeK, opJsetK:
			if i+1+int(in.Jt) >= len(p) || i+1+int(in.Jf) >= len(p) {
				t.Fatalf("insn %d: jump past the end", i)
			}
		default:
			t.Fatalf("insn %d: opcode %#x not allowed in seccomp", i, in.Code)
		}
	}
	if p[len(p)-1].Code != opRetK {
		t.Fatalf("program does not end with ret")
	}
}

// mustCompile compiles for an x86_64 little-endian host.
func mustCompile(t testing.TB, s *specs.LinuxSeccomp) *Filter {
	t.Helper()
	f, err := compile(s, archX86_64, false)
	if err != nil {
		t.Fatalf("compile: %v", err)
	}
	return f
}

func uptr(v uint) *uint { return &v }

// nr looks a syscall up in an arch's table, with the x32 bit.
func nr(t testing.TB, a *arch, name string) uint32 {
	t.Helper()
	n, ok := a.table.lookup(name)
	if !ok {
		t.Fatalf("no syscall %q on %s", name, a.name)
	}
	if a.x32 {
		n |= x32SyscallBit
	}
	return n
}
