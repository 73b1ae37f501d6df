//go:build seccomp_oracle

// This file exists only with the seccomp_oracle build tag: it builds filters
// with libseccomp (cgo, libseccomp-dev) so that oracle_test.go can compare
// them with ours. The package itself never uses libseccomp.

package seccomp

/*
#cgo LDFLAGS: -lseccomp
#include <errno.h>
#include <stdlib.h>
#include <unistd.h>
#include <seccomp.h>
*/
import "C"

import (
	"encoding/binary"
	"fmt"
	"os"
	"unsafe"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

var libseccompArch = map[*arch]C.uint32_t{
	archX86_64: C.SCMP_ARCH_X86_64, archX86: C.SCMP_ARCH_X86, archX32: C.SCMP_ARCH_X32,
	archAArch64: C.SCMP_ARCH_AARCH64, archARM: C.SCMP_ARCH_ARM, archRISCV64: C.SCMP_ARCH_RISCV64,
	archS390X: C.SCMP_ARCH_S390X, archPPC64LE: C.SCMP_ARCH_PPC64LE, archPPC64: C.SCMP_ARCH_PPC64,
}

var libseccompOp = map[specs.LinuxSeccompOperator]C.enum_scmp_compare{
	specs.OpNotEqual: C.SCMP_CMP_NE, specs.OpLessThan: C.SCMP_CMP_LT, specs.OpLessEqual: C.SCMP_CMP_LE,
	specs.OpEqualTo: C.SCMP_CMP_EQ, specs.OpGreaterEqual: C.SCMP_CMP_GE, specs.OpGreaterThan: C.SCMP_CMP_GT,
	specs.OpMaskedEqual: C.SCMP_CMP_MASKED_EQ,
}

// libseccompResolve returns libseccomp's number for name on a, and whether
// it is a real syscall there (not an error or a negative pseudo number).
func libseccompResolve(a *arch, name string) (uint32, bool) {
	cs := C.CString(name)
	defer C.free(unsafe.Pointer(cs))
	n := C.seccomp_syscall_resolve_name_arch(libseccompArch[a], cs)
	if n < 0 {
		return 0, false
	}
	return uint32(n), true
}

// libseccompProgram builds s with libseccomp the way runc's InitSeccomp does
// (native arch plus the listed ones, rules equal to the default dropped,
// names unknown to libseccomp skipped, several conditions on one argument
// split into rules, the binary tree optimization for long profiles) and
// exports the program. runc's ENOSYS stub is not included.
func libseccompProgram(s *specs.LinuxSeccomp, native *arch) ([]unix.SockFilter, error) {
	def, err := parseAction(s.DefaultAction, s.DefaultErrnoRet)
	if err != nil {
		return nil, err
	}
	ctx := C.seccomp_init(C.uint32_t(def))
	if ctx == nil {
		return nil, fmt.Errorf("seccomp_init failed")
	}
	defer C.seccomp_release(ctx)
	if native != nativeArch() {
		return nil, fmt.Errorf("libseccomp builds for the native arch only")
	}
	for _, name := range s.Architectures {
		a := archByName(string(name))
		if a == nil {
			continue
		}
		if r := C.seccomp_arch_add(ctx, libseccompArch[a]); r < 0 && r != -C.EEXIST {
			return nil, fmt.Errorf("seccomp_arch_add %s: %d", name, r)
		}
	}
	if len(s.Syscalls) > 32 {
		C.seccomp_attr_set(ctx, C.SCMP_FLTATR_CTL_OPTIMIZE, 2)
	}
	for i, sc := range s.Syscalls {
		act, err := parseAction(sc.Action, sc.ErrnoRet)
		if err != nil {
			return nil, err
		}
		if act == def {
			continue
		}
		var conds [][]C.struct_scmp_arg_cmp
		seen := map[uint]bool{}
		same := false
		var all []C.struct_scmp_arg_cmp
		for _, a := range sc.Args {
			same = same || seen[a.Index]
			seen[a.Index] = true
			all = append(all, C.struct_scmp_arg_cmp{arg: C.uint(a.Index), op: libseccompOp[a.Op],
				datum_a: C.scmp_datum_t(a.Value), datum_b: C.scmp_datum_t(a.ValueTwo)})
		}
		if same {
			for _, c := range all {
				conds = append(conds, []C.struct_scmp_arg_cmp{c})
			}
		} else {
			conds = [][]C.struct_scmp_arg_cmp{all}
		}
		for _, name := range sc.Names {
			cs := C.CString(name)
			nr := C.seccomp_syscall_resolve_name(cs)
			C.free(unsafe.Pointer(cs))
			if nr == C.__NR_SCMP_ERROR {
				continue
			}
			for _, cc := range conds {
				var p *C.struct_scmp_arg_cmp
				if len(cc) > 0 {
					p = &cc[0]
				}
				if r := C.seccomp_rule_add_array(ctx, C.uint32_t(act), nr, C.uint(len(cc)), p); r < 0 {
					return nil, fmt.Errorf("syscalls[%d] %s: seccomp_rule_add_array: %v", i, name, unix.Errno(-r))
				}
			}
		}
	}
	fd, err := unix.MemfdCreate("bpf", unix.MFD_CLOEXEC)
	if err != nil {
		return nil, err
	}
	f := os.NewFile(uintptr(fd), "bpf")
	defer f.Close()
	if r := C.seccomp_export_bpf(ctx, C.int(fd)); r < 0 {
		return nil, fmt.Errorf("seccomp_export_bpf: %v", unix.Errno(-r))
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/self/fd/%d", fd))
	if err != nil {
		return nil, err
	}
	prog := make([]unix.SockFilter, len(b)/8)
	for i := range prog {
		x := b[8*i:]
		prog[i] = unix.SockFilter{Code: binary.NativeEndian.Uint16(x), Jt: x[2], Jf: x[3], K: binary.NativeEndian.Uint32(x[4:])}
	}
	return prog, nil
}
