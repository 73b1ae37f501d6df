package seccomp

import (
	"errors"

	"golang.org/x/sys/unix"
)

// Classic BPF opcodes used by the compiler (linux/filter.h, linux/bpf_common.h).
const (
	opLdAbsW = unix.BPF_LD | unix.BPF_W | unix.BPF_ABS
	opAndK   = unix.BPF_ALU | unix.BPF_AND | unix.BPF_K
	opJa     = unix.BPF_JMP | unix.BPF_JA
	opJeqK   = unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K
	opJgtK   = unix.BPF_JMP | unix.BPF_JGT | unix.BPF_K
	opJgeK   = unix.BPF_JMP | unix.BPF_JGE | unix.BPF_K
	opJsetK  = unix.BPF_JMP | unix.BPF_JSET | unix.BPF_K
	opRetK   = unix.BPF_RET | unix.BPF_K
)

// label names a position in a program being assembled. Jumps go to labels,
// and the assembler works out the offsets.
type label int

// insn is an instruction before assembly. For a conditional jump, jt and jf
// are labels; every other instruction falls through (or returns).
type insn struct {
	code   uint16
	k      uint32
	jt, jf label
}

// assembler collects instructions and labels and resolves jumps. Classic BPF
// jumps only forward, and a conditional jump reaches at most 255 instructions:
// a target further away is reached through an unconditional "ja" trampoline
// (32-bit offset) placed right after the jump.
type assembler struct {
	insns []insn
	// at[l] is the index in insns that label l marks (-1 until placed).
	at []int
}

func (a *assembler) newLabel() label {
	a.at = append(a.at, -1)
	return label(len(a.at) - 1)
}

// mark places l at the next instruction.
func (a *assembler) mark(l label) {
	if a.at[l] != -1 {
		panic("seccomp: label placed twice")
	}
	a.at[l] = len(a.insns)
}

func (a *assembler) here() label {
	l := a.newLabel()
	a.mark(l)
	return l
}

func (a *assembler) load(off uint32) { a.insns = append(a.insns, insn{code: opLdAbsW, k: off}) }
func (a *assembler) and(k uint32)    { a.insns = append(a.insns, insn{code: opAndK, k: k}) }
func (a *assembler) ret(k uint32)    { a.insns = append(a.insns, insn{code: opRetK, k: k}) }
func (a *assembler) jump(to label)   { a.insns = append(a.insns, insn{code: opJa, jt: to}) }
func (a *assembler) jcond(code uint16, k uint32, jt, jf label) {
	a.insns = append(a.insns, insn{code: code, k: k, jt: jt, jf: jf})
}

// errTooLong is returned when a program exceeds what a conditional or
// unconditional jump can cover; it cannot happen below BPF_MAXINSNS.
var errTooLong = errors.New("program too long to assemble")

// assemble lays the program out and returns it. It starts with every jump
// short, lengthens those whose target is out of reach (adding trampolines
// moves targets further away, never closer), and repeats until nothing
// changes.
func (a *assembler) assemble() ([]unix.SockFilter, error) {
	for _, at := range a.at {
		if at == -1 {
			panic("seccomp: label never placed")
		}
	}
	n := len(a.insns)
	// far[i] bit 0: jt goes through a trampoline; bit 1: jf does.
	far := make([]uint8, n)
	pos := make([]int, n+1) // pos[n] is the end, for labels placed last
	for {
		p := 0
		for i := range a.insns {
			pos[i] = p
			p += 1 + trampolines(far[i])
		}
		pos[n] = p
		changed := false
		for i, in := range a.insns {
			if !isCond(in.code) {
				continue
			}
			if far[i]&1 == 0 && pos[a.at[in.jt]]-(pos[i]+1) > 255 {
				far[i] |= 1
				changed = true
			}
			if far[i]&2 == 0 && pos[a.at[in.jf]]-(pos[i]+1) > 255 {
				far[i] |= 2
				changed = true
			}
		}
		if !changed {
			break
		}
	}
	out := make([]unix.SockFilter, 0, pos[n])
	for i, in := range a.insns {
		switch {
		case in.code == opJa:
			off := pos[a.at[in.jt]] - (pos[i] + 1)
			if off < 0 {
				panic("seccomp: backward jump")
			}
			out = append(out, unix.SockFilter{Code: opJa, K: uint32(off)})
		case isCond(in.code):
			here := pos[i]
			tramp := here + 1 // where the next trampoline goes
			jt, jf := 0, 0
			var extra []unix.SockFilter
			for bit, target := range []label{in.jt, in.jf} {
				dst := pos[a.at[target]]
				off := dst - (here + 1)
				if far[i]&(1<<bit) != 0 {
					off = tramp - (here + 1)
					extra = append(extra, unix.SockFilter{Code: opJa, K: uint32(dst - (tramp + 1))})
					tramp++
				}
				if off < 0 || off > 255 {
					panic("seccomp: jump out of range")
				}
				if bit == 0 {
					jt = off
				} else {
					jf = off
				}
			}
			out = append(out, unix.SockFilter{Code: in.code, Jt: uint8(jt), Jf: uint8(jf), K: in.k})
			out = append(out, extra...)
		default:
			out = append(out, unix.SockFilter{Code: in.code, K: in.k})
		}
	}
	if len(out) > 1<<16-1 {
		return nil, errTooLong
	}
	return out, nil
}

func isCond(code uint16) bool {
	return code&0x07 == unix.BPF_JMP && code != opJa
}

func trampolines(f uint8) int {
	return int(f&1) + int(f>>1&1)
}
