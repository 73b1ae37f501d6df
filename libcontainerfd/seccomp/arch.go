package seccomp

import (
	"runtime"
	"sort"

	"golang.org/x/sys/unix"
)

// x32SyscallBit marks an x32 syscall number (__X32_SYSCALL_BIT): x32 shares
// AUDIT_ARCH_X86_64 with x86_64 and is told apart by this bit of the number.
const x32SyscallBit = 0x40000000

// sysEntry is one row of a generated syscall table.
type sysEntry struct {
	name string
	nr   uint32
}

// sysTable is a syscall table sorted by name (zsyscalls.go).
type sysTable []sysEntry

func (t sysTable) lookup(name string) (uint32, bool) {
	i := sort.Search(len(t), func(i int) bool { return t[i].name >= name })
	if i < len(t) && t[i].name == name {
		return t[i].nr, true
	}
	return 0, false
}

// arch is an architecture the compiler has a table for.
type arch struct {
	name  string // SCMP_ARCH_*
	audit uint32 // AUDIT_ARCH_*, what the kernel puts in seccomp_data.arch
	table sysTable
	// bits32 means arguments are compared on their low 32 bits only, as
	// libseccomp does for 32-bit ABIs (x86, x32, arm).
	bits32 bool
	// x32 means numbers carry x32SyscallBit (the table's do not).
	x32 bool
	// bands are the starts of numbering ranges after the first: x32's own
	// syscalls from 512, ARM's private ones from 0x0f0000. The ENOSYS bound
	// is per band, so that a profile naming set_tls does not leave every
	// newer ARM syscall below its bound.
	bands []uint32
}

var (
	archX86_64  = &arch{name: "SCMP_ARCH_X86_64", audit: unix.AUDIT_ARCH_X86_64, table: sysX86_64}
	archX86     = &arch{name: "SCMP_ARCH_X86", audit: unix.AUDIT_ARCH_I386, table: sysX86, bits32: true}
	archX32     = &arch{name: "SCMP_ARCH_X32", audit: unix.AUDIT_ARCH_X86_64, table: sysX32, bits32: true, x32: true, bands: []uint32{x32SyscallBit + 512}}
	archAArch64 = &arch{name: "SCMP_ARCH_AARCH64", audit: unix.AUDIT_ARCH_AARCH64, table: sysAArch64}
	archARM     = &arch{name: "SCMP_ARCH_ARM", audit: unix.AUDIT_ARCH_ARM, table: sysARM, bits32: true, bands: []uint32{0x0f0000}}
	archRISCV64 = &arch{name: "SCMP_ARCH_RISCV64", audit: unix.AUDIT_ARCH_RISCV64, table: sysRISCV64}
	archS390X   = &arch{name: "SCMP_ARCH_S390X", audit: unix.AUDIT_ARCH_S390X, table: sysS390X}
	archPPC64LE = &arch{name: "SCMP_ARCH_PPC64LE", audit: unix.AUDIT_ARCH_PPC64LE, table: sysPPC64}
	archPPC64   = &arch{name: "SCMP_ARCH_PPC64", audit: unix.AUDIT_ARCH_PPC64, table: sysPPC64}
)

// knownArches are the architectures with a syscall table, in the order their
// checks appear in a program (after the native one).
var knownArches = []*arch{archX86_64, archX86, archX32, archAArch64, archARM, archRISCV64, archS390X, archPPC64LE, archPPC64}

// specArches are the other SCMP_ARCH_* names of the runtime spec (libseccomp
// 2.6): valid in a profile, but without a table here. A filter cannot meet
// them on the machines containerfd runs on unless one is the native
// architecture, so they are skipped with a warning.
var specArches = map[string]bool{
	"SCMP_ARCH_MIPS": true, "SCMP_ARCH_MIPS64": true, "SCMP_ARCH_MIPS64N32": true,
	"SCMP_ARCH_MIPSEL": true, "SCMP_ARCH_MIPSEL64": true, "SCMP_ARCH_MIPSEL64N32": true,
	"SCMP_ARCH_PPC": true, "SCMP_ARCH_S390": true, "SCMP_ARCH_PARISC": true,
	"SCMP_ARCH_PARISC64": true, "SCMP_ARCH_LOONGARCH64": true, "SCMP_ARCH_M68K": true,
	"SCMP_ARCH_SH": true, "SCMP_ARCH_SHEB": true,
}

func archByName(name string) *arch {
	for _, a := range knownArches {
		if a.name == name {
			return a
		}
	}
	return nil
}

// nativeArch is the architecture of the running binary, which every filter
// includes (as libseccomp's seccomp_init does).
func nativeArch() *arch {
	return archForGOARCH(runtime.GOARCH)
}

func archForGOARCH(goarch string) *arch {
	switch goarch {
	case "amd64":
		return archX86_64
	case "386":
		return archX86
	case "arm64":
		return archAArch64
	case "arm":
		return archARM
	case "riscv64":
		return archRISCV64
	case "s390x":
		return archS390X
	case "ppc64le":
		return archPPC64LE
	case "ppc64":
		return archPPC64
	}
	return nil
}

// archNames lists the SCMP_ARCH_* names the compiler accepts.
func archNames() []string {
	var names []string
	for _, a := range knownArches {
		names = append(names, a.name)
	}
	for n := range specArches {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}
