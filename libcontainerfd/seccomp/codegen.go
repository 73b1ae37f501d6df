package seccomp

import (
	"sort"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// Offsets in struct seccomp_data.
const (
	offNr   = 0
	offArch = 4
	offArgs = 16
)

// badArchAction is what a call from an architecture outside the filter gets:
// libseccomp's default (SCMP_ACT_KILL), which runc and crun keep.
const badArchAction = unix.SECCOMP_RET_KILL_THREAD

// segment is a range of syscall numbers, from lo up to the next segment's lo,
// with one verdict: ret, or the rules of the one syscall it holds.
type segment struct {
	lo    uint32
	ret   uint32
	rules []rule // conditional rules of syscall lo; nil: return ret
}

// program generates the whole filter.
func (c *compiler) program() ([]unix.SockFilter, error) {
	var a assembler
	a.load(offArch)

	// One block per AUDIT_ARCH value; x86_64 and x32 share one.
	type block struct {
		audit      uint32
		start      label
		main, x32c *arch
	}
	var blocks []*block
	for _, ar := range c.arches {
		var b *block
		for _, x := range blocks {
			if x.audit == ar.audit {
				b = x
			}
		}
		if b == nil {
			b = &block{audit: ar.audit, start: a.newLabel()}
			blocks = append(blocks, b)
		}
		if ar.x32 {
			b.x32c = ar
		} else {
			b.main = ar
		}
	}
	for _, b := range blocks {
		next := a.newLabel()
		a.jcond(opJeqK, b.audit, b.start, next)
		a.mark(next)
	}
	a.ret(badArchAction)

	for _, b := range blocks {
		a.mark(b.start)
		a.load(offNr)
		switch {
		case b.x32c == nil:
			// Not x86_64, or x86_64 without x32: an x32 number is a bad
			// arch, except -1 (what a tracer sets to skip a call), which
			// gets the default action as libseccomp (and so runc) gives it.
			if b.main.audit == unix.AUDIT_ARCH_X86_64 {
				high, ok, bad, minus1 := a.newLabel(), a.newLabel(), a.newLabel(), a.newLabel()
				a.jcond(opJgeK, x32SyscallBit, high, ok)
				a.mark(ok)
				c.tree(&a, b.main, c.segments(b.main, 0))
				a.mark(high)
				a.jcond(opJeqK, 0xffffffff, minus1, bad)
				a.mark(bad)
				a.ret(badArchAction)
				a.mark(minus1)
				a.ret(c.defAction)
			} else {
				c.tree(&a, b.main, c.segments(b.main, 0))
			}
		case b.main == nil:
			// x32 alone: an x86_64 number is a bad arch.
			bad, ok := a.newLabel(), a.newLabel()
			a.jcond(opJgeK, x32SyscallBit, ok, bad)
			a.mark(bad)
			a.ret(badArchAction)
			a.mark(ok)
			c.tree(&a, b.x32c, c.segments(b.x32c, x32SyscallBit))
		default:
			x32, x64 := a.newLabel(), a.newLabel()
			a.jcond(opJgeK, x32SyscallBit, x32, x64)
			a.mark(x64)
			c.tree(&a, b.main, c.segments(b.main, 0))
			a.mark(x32)
			c.tree(&a, b.x32c, c.segments(b.x32c, x32SyscallBit))
		}
	}
	return a.assemble()
}

// segments splits the numbers from base up into ranges with one verdict each.
func (c *compiler) segments(ar *arch, base uint32) []segment {
	rules := c.rules[ar]
	enosys := c.enosysRanges(ar, base)
	fill := func(n uint64) uint32 {
		for _, r := range enosys {
			if n >= r[0] && n < r[1] {
				return unix.SECCOMP_RET_ERRNO | uint32(unix.ENOSYS)
			}
		}
		return c.defAction
	}
	// Where the verdict may change: each rule's number and the one after,
	// and the ends of the ENOSYS ranges.
	bounds := []uint64{uint64(base)}
	for nr := range rules {
		bounds = append(bounds, uint64(nr), uint64(nr)+1)
	}
	for _, r := range enosys {
		bounds = append(bounds, r[0], r[1])
	}
	sort.Slice(bounds, func(i, j int) bool { return bounds[i] < bounds[j] })

	var segs []segment
	for i, b := range bounds {
		if b > 0xffffffff || i > 0 && b == bounds[i-1] {
			continue
		}
		s := segment{lo: uint32(b)}
		if r, ok := rules[uint32(b)]; ok {
			s = c.verdict(ar, r)
			s.lo = uint32(b)
		} else {
			s.ret = fill(b)
		}
		if n := len(segs); n > 0 && s.rules == nil && segs[n-1].rules == nil && segs[n-1].ret == s.ret {
			continue // same verdict as the range before: extend it
		}
		segs = append(segs, s)
	}
	return segs
}

// enosysRanges returns the [lo, hi) ranges of numbers from base up that get
// ENOSYS: in each band of the arch's numbering, those above the highest
// number the profile names in that band, and every band above the highest
// named overall. Names whose rules were dropped count. Without a denying
// default, or without names on the arch, there are none.
func (c *compiler) enosysRanges(ar *arch, base uint32) [][2]uint64 {
	named := c.named[ar]
	if !c.enosys || len(named) == 0 {
		return nil
	}
	starts := []uint64{uint64(base)}
	for _, b := range ar.bands {
		if b > base {
			starts = append(starts, uint64(b))
		}
	}
	ends := append(starts[1:len(starts):len(starts)], 1<<32)
	maxIn := make([]int64, len(starts)) // -1: no name in the band
	top := -1                           // band of the highest name
	for i := range starts {
		maxIn[i] = -1
		for n := range named {
			if uint64(n) >= starts[i] && uint64(n) < ends[i] && int64(n) > maxIn[i] {
				maxIn[i] = int64(n)
			}
		}
		if maxIn[i] >= 0 {
			top = i
		}
	}
	var out [][2]uint64
	for i := range starts {
		switch {
		case i > top:
			out = append(out, [2]uint64{starts[i], ends[i]})
		case maxIn[i] >= 0 && uint64(maxIn[i])+1 < ends[i]:
			out = append(out, [2]uint64{uint64(maxIn[i]) + 1, ends[i]})
		}
	}
	return out
}

// verdict is the segment of a syscall with the given rules.
func (c *compiler) verdict(ar *arch, rules []rule) segment {
	var out []rule
	for _, r := range rules {
		r.conds = effective(ar, r.conds)
		if len(r.conds) == 0 {
			// An unconditional rule wins over conditional ones, as in libseccomp.
			return segment{ret: r.action}
		}
		out = append(out, r)
	}
	return segment{rules: out}
}

// effective drops the conditions that always hold on ar, as libseccomp
// does, which matters for precedence: SCMP_CMP_MASKED_EQ with a mask of 0
// (on a 32-bit ABI, with 0 in its low half).
func effective(ar *arch, conds []cond) []cond {
	var out []cond
	for _, cd := range conds {
		mask := cd.value
		if ar.bits32 {
			mask = uint64(uint32(mask))
		}
		if cd.op == specs.OpMaskedEqual && mask == 0 {
			continue
		}
		out = append(out, cd)
	}
	return out
}

// tree emits a balanced search over segs; the accumulator holds the number.
func (c *compiler) tree(a *assembler, ar *arch, segs []segment) {
	if len(segs) == 1 {
		c.leaf(a, ar, segs[0])
		return
	}
	mid := len(segs) / 2
	right, left := a.newLabel(), a.newLabel()
	a.jcond(opJgeK, segs[mid].lo, right, left)
	a.mark(left)
	c.tree(a, ar, segs[:mid])
	a.mark(right)
	c.tree(a, ar, segs[mid:])
}

func (c *compiler) leaf(a *assembler, ar *arch, s segment) {
	if s.rules == nil {
		a.ret(s.ret)
		return
	}
	for _, r := range s.rules {
		fail := a.newLabel()
		for _, cd := range r.conds {
			c.cond(a, ar, cd, fail)
		}
		a.ret(r.action)
		a.mark(fail)
	}
	a.ret(c.defAction)
}

// argOffsets returns where the low and high halves of argument i are.
func (c *compiler) argOffsets(i uint) (lo, hi uint32) {
	lo = offArgs + 8*uint32(i)
	hi = lo + 4
	if c.bigEndian {
		lo, hi = hi, lo
	}
	return lo, hi
}

// cond emits a test that falls through when cd holds and jumps to fail when
// it does not.
func (c *compiler) cond(a *assembler, ar *arch, cd cond, fail label) {
	offLo, offHi := c.argOffsets(cd.index)
	vlo, vhi := uint32(cd.value), uint32(cd.value>>32)
	pass := a.newLabel()
	defer a.mark(pass)

	if ar.bits32 {
		a.load(offLo)
		switch cd.op {
		case specs.OpEqualTo:
			a.jcond(opJeqK, vlo, pass, fail)
		case specs.OpNotEqual:
			a.jcond(opJeqK, vlo, fail, pass)
		case specs.OpGreaterThan:
			a.jcond(opJgtK, vlo, pass, fail)
		case specs.OpGreaterEqual:
			a.jcond(opJgeK, vlo, pass, fail)
		case specs.OpLessThan:
			a.jcond(opJgeK, vlo, fail, pass)
		case specs.OpLessEqual:
			a.jcond(opJgtK, vlo, fail, pass)
		case specs.OpMaskedEqual:
			a.and(vlo)
			a.jcond(opJeqK, uint32(cd.valueTwo)&vlo, pass, fail)
		}
		return
	}

	// 64 bits: decide on the high halves, and on the low ones when equal.
	lo := a.newLabel()
	switch cd.op {
	case specs.OpEqualTo:
		a.load(offHi)
		a.jcond(opJeqK, vhi, lo, fail)
		a.mark(lo)
		a.load(offLo)
		a.jcond(opJeqK, vlo, pass, fail)
	case specs.OpNotEqual:
		a.load(offHi)
		a.jcond(opJeqK, vhi, lo, pass)
		a.mark(lo)
		a.load(offLo)
		a.jcond(opJeqK, vlo, fail, pass)
	case specs.OpGreaterThan, specs.OpGreaterEqual:
		eq := a.newLabel()
		a.load(offHi)
		a.jcond(opJgtK, vhi, pass, eq)
		a.mark(eq)
		a.jcond(opJeqK, vhi, lo, fail)
		a.mark(lo)
		a.load(offLo)
		if cd.op == specs.OpGreaterThan {
			a.jcond(opJgtK, vlo, pass, fail)
		} else {
			a.jcond(opJgeK, vlo, pass, fail)
		}
	case specs.OpLessThan, specs.OpLessEqual:
		eq := a.newLabel()
		a.load(offHi)
		a.jcond(opJgtK, vhi, fail, eq)
		a.mark(eq)
		a.jcond(opJeqK, vhi, lo, pass)
		a.mark(lo)
		a.load(offLo)
		if cd.op == specs.OpLessThan {
			a.jcond(opJgeK, vlo, fail, pass)
		} else {
			a.jcond(opJgtK, vlo, fail, pass)
		}
	case specs.OpMaskedEqual:
		// libseccomp compares with the datum masked: (arg & m) == (d & m).
		mlo, mhi := uint32(cd.value), uint32(cd.value>>32)
		dlo, dhi := uint32(cd.valueTwo)&mlo, uint32(cd.valueTwo>>32)&mhi
		if mhi == 0 {
			a.mark(lo) // (hi & 0) == 0 always holds
		} else {
			a.load(offHi)
			a.and(mhi)
			a.jcond(opJeqK, dhi, lo, fail)
			a.mark(lo)
		}
		a.load(offLo)
		a.and(mlo)
		a.jcond(opJeqK, dlo, pass, fail)
	}
}
