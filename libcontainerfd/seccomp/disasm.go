package seccomp

import (
	"fmt"
	"strings"
)

// Disassemble returns the program as text, one instruction a line, with
// absolute jump targets and named seccomp_data fields and return values:
//
//	0012: jge #0x40000000  -> 0245 : 0013
//	0013: ld  [nr]
//	0020: ret ERRNO(EPERM)
func (f *Filter) Disassemble() string {
	var b strings.Builder
	for i, in := range f.Program {
		fmt.Fprintf(&b, "%04d: ", i)
		next := i + 1
		switch in.Code {
		case opLdAbsW:
			fmt.Fprintf(&b, "ld  [%s]", fieldName(in.K))
		case opAndK:
			fmt.Fprintf(&b, "and #%#x", in.K)
		case opJa:
			fmt.Fprintf(&b, "ja  %04d", next+int(in.K))
		case opJeqK, opJgtK, opJgeK, opJsetK:
			name := map[uint16]string{opJeqK: "jeq", opJgtK: "jgt", opJgeK: "jge", opJsetK: "jset"}[in.Code]
			fmt.Fprintf(&b, "%-4s#%#x -> %04d : %04d", name, in.K, next+int(in.Jt), next+int(in.Jf))
		case opRetK:
			fmt.Fprintf(&b, "ret %s", actionString(in.K))
		default:
			fmt.Fprintf(&b, "op=%#x jt=%d jf=%d k=%#x", in.Code, in.Jt, in.Jf, in.K)
		}
		b.WriteByte('\n')
	}
	return b.String()
}

func fieldName(off uint32) string {
	switch {
	case off == offNr:
		return "nr"
	case off == offArch:
		return "arch"
	case off >= offArgs && off < offArgs+6*8:
		return fmt.Sprintf("args[%d]+%d", (off-offArgs)/8, (off-offArgs)%8)
	}
	return fmt.Sprintf("%d", off)
}
