package seccomp

import (
	"encoding/binary"

	"golang.org/x/sys/unix"
)

// Allows reports whether prog, a program compiled here, lets the running
// architecture's system call nr with args through (SECCOMP_RET_ALLOW or
// _LOG), as the kernel would run it. Pointer arguments the caller cannot
// know are best given as 0; a profile that conditions on them is odd.
func Allows(prog []unix.SockFilter, nr uintptr, args ...uint64) bool {
	ar := nativeArch()
	if ar == nil {
		return false
	}
	c := call{arch: ar.audit, nr: uint32(nr)}
	copy(c.args[:], args)
	if binary.NativeEndian.Uint16([]byte{0, 1}) == 1 {
		// run reads an argument's low half first, where big-endian
		// seccomp_data holds the high one.
		for i, x := range c.args {
			c.args[i] = x<<32 | x>>32
		}
	}
	_, ret := run(prog, c)
	act := ret & unix.SECCOMP_RET_ACTION_FULL
	return act == unix.SECCOMP_RET_ALLOW || act == unix.SECCOMP_RET_LOG
}

// call is one syscall as the filter sees it (struct seccomp_data).
type call struct {
	arch uint32
	nr   uint32
	args [6]uint64
}

// run interprets p for c, on the opcodes the compiler emits, and returns
// how many instructions ran and the verdict. Anything else (or running off
// the end) kills, as the kernel's checker would have refused it.
func run(p []unix.SockFilter, c call) (n int, ret uint32) {
	var a uint32
	word := func(off uint32) uint32 {
		switch {
		case off == offNr:
			return c.nr
		case off == offArch:
			return c.arch
		case off >= offArgs && off < offArgs+8*6:
			x := c.args[(off-offArgs)/8]
			if (off-offArgs)%8 == 4 {
				return uint32(x >> 32)
			}
			return uint32(x)
		}
		return 0
	}
	for pc := 0; pc < len(p); pc++ {
		in := p[pc]
		n++
		jump := func(cond bool) {
			if cond {
				pc += int(in.Jt)
			} else {
				pc += int(in.Jf)
			}
		}
		switch in.Code {
		case opLdAbsW:
			a = word(in.K)
		case opAndK:
			a &= in.K
		case opJa:
			pc += int(in.K)
		case opJeqK:
			jump(a == in.K)
		case opJgtK:
			jump(a > in.K)
		case opJgeK:
			jump(a >= in.K)
		case opJsetK:
			jump(a&in.K != 0)
		case opRetK:
			return n, in.K
		default:
			return n, unix.SECCOMP_RET_KILL_PROCESS
		}
	}
	return n, unix.SECCOMP_RET_KILL_PROCESS
}
