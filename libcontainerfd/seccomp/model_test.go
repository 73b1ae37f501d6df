package seccomp

import (
	"golang.org/x/sys/unix"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// model decides a call straight from the profile, written from the package
// documentation without the compiler's data structures: the expectation the
// generated programs are checked against.
func model(s *specs.LinuxSeccomp, native *arch, c call) uint32 {
	mustAction := func(a specs.LinuxSeccompAction, e *uint) uint32 {
		v, err := parseAction(a, e)
		if err != nil {
			panic(err)
		}
		return v
	}
	def := mustAction(s.DefaultAction, s.DefaultErrnoRet)

	arches := []*arch{native}
	for _, n := range s.Architectures {
		if a := archByName(string(n)); a != nil {
			arches = append(arches, a)
		}
	}
	var ar *arch
	for _, a := range arches {
		if a.audit == c.arch && (a.audit != unix.AUDIT_ARCH_X86_64 || a.x32 == (c.nr >= x32SyscallBit)) {
			ar = a
		}
	}
	if ar == nil {
		if c.arch == unix.AUDIT_ARCH_X86_64 && c.nr == 0xffffffff && containsArch(arches, archX86_64) {
			return def // -1 on x86_64 without x32
		}
		return unix.SECCOMP_RET_KILL_THREAD
	}

	number := func(name string) (uint32, bool) {
		n, ok := ar.table.lookup(name)
		if ar.x32 {
			n |= x32SyscallBit
		}
		return n, ok
	}
	// The ENOSYS bound: the highest number named overall, and the highest
	// named in the band (of ar.bands) the call's number is in.
	band := func(n uint32) int {
		i := 0
		for j, b := range ar.bands {
			if n >= b {
				i = j + 1
			}
		}
		return i
	}
	var max uint32
	bandMax := map[int]uint32{}
	named := false
	for _, sc := range s.Syscalls {
		for _, name := range sc.Names {
			if n, ok := number(name); ok {
				named = true
				max = maxU32(max, n)
				if m, ok := bandMax[band(n)]; !ok || n > m {
					bandMax[band(n)] = n
				}
			}
		}
	}
	aboveBound := c.nr > max
	if m, ok := bandMax[band(c.nr)]; ok && c.nr > m {
		aboveBound = true
	}

	holds := func(a specs.LinuxSeccompArg) bool {
		x, v, v2 := c.args[a.Index], a.Value, a.ValueTwo
		if ar.bits32 {
			x, v, v2 = uint64(uint32(x)), uint64(uint32(v)), uint64(uint32(v2))
		}
		switch a.Op {
		case specs.OpEqualTo:
			return x == v
		case specs.OpNotEqual:
			return x != v
		case specs.OpGreaterThan:
			return x > v
		case specs.OpGreaterEqual:
			return x >= v
		case specs.OpLessThan:
			return x < v
		case specs.OpLessEqual:
			return x <= v
		case specs.OpMaskedEqual:
			return x&v == v2&v
		}
		panic(a.Op)
	}

	var uncond *uint32
	var condAct *uint32
	for _, sc := range s.Syscalls {
		act := mustAction(sc.Action, sc.ErrnoRet)
		if act == def {
			continue
		}
		match := false
		for _, name := range sc.Names {
			if n, ok := number(name); ok && n == c.nr {
				match = true
			}
		}
		if !match {
			continue
		}
		var args []specs.LinuxSeccompArg
		for _, a := range sc.Args {
			mask := a.Value
			if ar.bits32 {
				mask = uint64(uint32(mask))
			}
			if a.Op != specs.OpMaskedEqual || mask != 0 {
				args = append(args, a)
			}
		}
		// A rule whose conditions on one argument were split and one of
		// them dropped is still several rules: the dropped one matches
		// everything, unconditionally.
		same := false
		seen := map[uint]bool{}
		for _, a := range sc.Args {
			same = same || seen[a.Index]
			seen[a.Index] = true
		}
		if len(args) == 0 || same && len(args) < len(sc.Args) {
			if uncond == nil {
				uncond = &act
			}
			continue
		}
		// Several conditions on one argument: OR, otherwise AND.
		ok := !same
		for _, a := range args {
			if same && holds(a) {
				ok = true
			}
			if !same && !holds(a) {
				ok = false
			}
		}
		if ok && condAct == nil {
			condAct = &act
		}
	}
	switch {
	case uncond != nil:
		return *uncond
	case condAct != nil:
		return *condAct
	}
	denying := true
	switch def & unix.SECCOMP_RET_ACTION_FULL {
	case unix.SECCOMP_RET_ALLOW, unix.SECCOMP_RET_LOG, unix.SECCOMP_RET_TRACE:
		denying = false
	}
	if denying && named && aboveBound && def != retENOSYS {
		return retENOSYS
	}
	return def
}

func maxU32(a, b uint32) uint32 {
	if a > b {
		return a
	}
	return b
}
