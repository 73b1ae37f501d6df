// Package seccomp compiles the seccomp section of an OCI config
// (linux.seccomp) into a classic BPF program and loads it, in pure Go: no
// libseccomp, no cgo.
//
//	f, err := seccomp.Compile(spec.Linux.Seccomp) // pure; in the runtime
//	for _, w := range f.Warnings { log(w) }
//	...                                          // in the stage, thread locked, no_new_privs set:
//	fd, err := f.Load()                          // listener fd if f.NotifyRequested, else -1
//
// # Semantics
//
// They are libseccomp's as runc (and crun) drive it; the tests check them
// against libseccomp 2.5.4 itself (go test -tags seccomp_oracle).
//
//   - Actions: SCMP_ACT_KILL and SCMP_ACT_KILL_THREAD kill the thread,
//     SCMP_ACT_KILL_PROCESS the process; SCMP_ACT_ERRNO returns errnoRet
//     (default EPERM), SCMP_ACT_TRACE passes errnoRet (default EPERM) to the
//     tracer; SCMP_ACT_TRAP, SCMP_ACT_ALLOW, SCMP_ACT_LOG, SCMP_ACT_NOTIFY.
//     errnoRet on any other action is an error (the spec says so), and so is
//     one above 65535. NOTIFY cannot be the default action (runc refuses it).
//   - A rule whose action equals the default action is dropped, as runc and
//     crun drop it.
//   - Names unknown on every compiled architecture are skipped with a
//     warning (Filter.Warnings): profiles name syscalls of other
//     architectures and other kernel versions. A name may be known on some
//     architectures only; it applies where it is known.
//   - The conditions of a rule are AND'ed; rules for the same syscall are
//     OR'ed. A rule with several conditions on the same argument is split
//     into one rule per condition (OR'ed), as runc and crun do because
//     libseccomp refuses it; a warning says so.
//   - An unconditional rule for a syscall wins over its conditional rules
//     (libseccomp does the same); among unconditional rules the first wins.
//     Conditional rules are tried in profile order and the first whose
//     conditions all hold gives the action. (libseccomp orders overlapping
//     conditional rules with different actions by its own tree, or refuses
//     identical ones; profiles do not rely on either.)
//   - Arguments are compared as unsigned 64-bit values, high and low 32-bit
//     halves separately, on 64-bit ABIs; on 32-bit ABIs (x86, x32, arm) only
//     the low 32 bits of the argument and of the value count.
//     SCMP_CMP_MASKED_EQ takes the mask in value and the datum in valueTwo
//     and, like libseccomp, masks both sides: (arg & value) == (valueTwo &
//     value). With a mask of 0 (on a 32-bit ABI: 0 in its low half) the
//     condition always holds and is dropped, as libseccomp drops it, so a
//     rule left without conditions is unconditional there.
//   - Architectures: the native one is always in the filter; the listed ones
//     are added. A call from an architecture that is not in the filter kills
//     the thread (libseccomp's default "bad arch" action, which runc keeps).
//     x32 shares AUDIT_ARCH_X86_64 with x86_64 and is told by bit 30 of the
//     syscall number (__X32_SYSCALL_BIT): with x86_64 but not x32 in the
//     filter, a number with that bit kills like a bad architecture, except
//     -1 (what a tracer sets to skip a call), which gets the default action
//     as in libseccomp; with x32 but not x86_64, likewise the other way round.
//   - Pseudo-syscalls are not emulated: on x86 (i386), a rule on socket(2)
//     or semop(2) applies to the direct syscall only, not also to
//     socketcall(2)/ipc(2) with the matching call number as libseccomp adds;
//     "recv" and "send" (socketcall-only names) are unknown.
//
// # ENOSYS for syscalls newer than the profile
//
// With a default action that denies (SCMP_ACT_ERRNO with an errno other than
// ENOSYS, SCMP_ACT_KILL*, SCMP_ACT_TRAP), a syscall numbered above the
// highest number the profile names for that architecture returns ENOSYS
// instead of the default action, so that programs (glibc's clone3 and
// fchmodat2 fallbacks, for one) see "not implemented" and fall back rather
// than failing with EPERM. This is runc's "-ENOSYS stub" (runc #2151,
// libcontainer/seccomp/patchbpf). As there, the highest number counts every
// name of every rule in the profile, whatever its action (even rules dropped
// as equal to the default), and numbers below it that the profile does not
// name (holes, syscalls added out of order) get the default action. Unlike
// runc:
//   - the bound is computed for every architecture in the filter including
//     the implicit native one (runc only looks at the listed ones, so a
//     profile without "architectures" gets no stub there);
//   - the bound is kept per band of numbers where an ABI numbers two ranges:
//     x32's common syscalls (up to 511) and its own (512 up), ARM's and its
//     private ones (0x0f0000 up: breakpoint, cacheflush, set_tls...). A
//     profile naming set_tls still gets ENOSYS for ARM syscalls newer than
//     the highest it names below 0x0f0000; runc gives those the default;
//   - it is part of the search tree rather than a prefix.
//
// With SCMP_ACT_ALLOW, SCMP_ACT_LOG or SCMP_ACT_TRACE as default (a tracer
// handles new syscalls itself) there is no ENOSYS range.
//
// # Program layout
//
//	ld arch; jeq AUDIT_ARCH_<native> ...; jeq AUDIT_ARCH_<listed> ...; ret KILL_THREAD
//	per architecture: ld nr
//	  [x86_64] jge 0x40000000 → x32's tree (without x32: jeq -1 → default, else KILL_THREAD)
//	  balanced search tree: jge over the starts of ranges of numbers with one
//	  verdict (an allowed run, a hole, the ENOSYS range above the bound); a
//	  leaf returns the verdict, or for a syscall with conditional rules runs
//	  them (ld arg halves, and, jeq/jgt/jge) in order and returns the first
//	  match's action, else the default.
//
// Jumps longer than 255 instructions go through a "ja" trampoline. Docker's
// default profile compiles to 623 instructions for x86_64+x86+x32 (libseccomp
// makes 983 before runc's stub) and any syscall is decided in about ten
// comparisons.
package seccomp

//go:generate go run mksyscalls.go

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// MaxInsns is the largest program the kernel loads (BPF_MAXINSNS).
const MaxInsns = 4096

// Filter is a compiled seccomp filter.
type Filter struct {
	// Program is the classic BPF program, in host byte order.
	Program []unix.SockFilter
	// Flags are the SECCOMP_FILTER_FLAG_* bits Load passes to seccomp(2):
	// the ones the profile lists, plus NEW_LISTENER when NotifyRequested
	// (and TSYNC_ESRCH with TSYNC, which the kernel requires to combine
	// TSYNC with a listener).
	Flags uint
	// Warnings are things the profile asked for that the filter does not do
	// (unknown syscall names, architectures without a table) or does
	// differently than the profile reads; the runtime logs them.
	Warnings []string
	// NotifyRequested is true when a rule uses SCMP_ACT_NOTIFY: Load then
	// returns a listener fd.
	NotifyRequested bool
}

// Compile translates s into a filter for the machine it runs on. It makes no
// syscalls. Errors name the field at fault, e.g.
// `linux.seccomp.syscalls[3].action "SCMP_ACT_FOO": unknown action`.
func Compile(s *specs.LinuxSeccomp) (*Filter, error) {
	native := nativeArch()
	if native == nil {
		return nil, errors.New("linux.seccomp: no syscall table for this architecture")
	}
	return compile(s, native, binary.NativeEndian.Uint16([]byte{0, 1}) == 1)
}

// rule is one rule of a syscall on one architecture.
type rule struct {
	action uint32
	conds  []cond // all must hold; none: unconditional
}

type cond struct {
	index           uint
	op              specs.LinuxSeccompOperator
	value, valueTwo uint64
}

// compiler holds one compilation.
type compiler struct {
	bigEndian bool
	defAction uint32
	enosys    bool // numbers above the profile's highest get ENOSYS
	arches    []*arch
	// rules[arch][nr] in profile order; named[arch] every number a name
	// of the profile resolves to, for the ENOSYS bound.
	rules map[*arch]map[uint32][]rule
	named map[*arch]map[uint32]bool

	errs     []error
	warnings []string
}

func (c *compiler) errorf(format string, args ...any) {
	c.errs = append(c.errs, fmt.Errorf(format, args...))
}

func (c *compiler) warnf(format string, args ...any) {
	c.warnings = append(c.warnings, fmt.Sprintf(format, args...))
}

func compile(s *specs.LinuxSeccomp, native *arch, bigEndian bool) (*Filter, error) {
	if s == nil {
		return nil, errors.New("linux.seccomp: missing")
	}
	c := &compiler{
		bigEndian: bigEndian,
		rules:     map[*arch]map[uint32][]rule{},
		named:     map[*arch]map[uint32]bool{},
	}
	f := &Filter{}

	if s.DefaultAction == "" {
		c.errorf("linux.seccomp.defaultAction: missing")
	} else if s.DefaultAction == specs.ActNotify {
		c.errorf("linux.seccomp.defaultAction %q: cannot be the default action", s.DefaultAction)
	} else if act, err := parseAction(s.DefaultAction, s.DefaultErrnoRet); err != nil {
		// parseAction names a rule's fields; the default's have a prefix.
		msg := err.Error()
		if rest, ok := strings.CutPrefix(msg, "action"); ok {
			msg = "defaultAction" + rest
		} else if rest, ok := strings.CutPrefix(msg, "errnoRet"); ok {
			msg = "defaultErrnoRet" + rest
		}
		c.errorf("linux.seccomp.%s", msg)
	} else {
		c.defAction = act
		c.enosys = denies(act) && act != unix.SECCOMP_RET_ERRNO|uint32(unix.ENOSYS)
	}

	// Architectures: native first, then the listed ones in order.
	c.arches = []*arch{native}
	for i, name := range s.Architectures {
		field := fmt.Sprintf("linux.seccomp.architectures[%d] %q", i, name)
		a := archByName(string(name))
		switch {
		case a != nil:
			if !containsArch(c.arches, a) {
				c.arches = append(c.arches, a)
			}
		case specArches[string(name)]:
			c.warnf("%s: no syscall table for this architecture, skipped", field)
		default:
			c.errorf("%s: unknown architecture", field)
		}
	}

	// No flags field at all: SPEC_ALLOW, as runc and Docker set it, so
	// that a filter does not turn on the kernel's speculative store
	// bypass mitigation (and its cost) for the process; an empty list
	// asks for no flag.
	if s.Flags == nil && specAllowAvailable() {
		f.Flags |= unix.SECCOMP_FILTER_FLAG_SPEC_ALLOW
	}
	for i, fl := range s.Flags {
		bit, ok := flagBits[fl]
		if !ok {
			c.errorf("linux.seccomp.flags[%d] %q: unknown flag", i, fl)
			continue
		}
		f.Flags |= bit
	}

	for i := range s.Syscalls {
		c.addSyscall(i, &s.Syscalls[i], f)
	}

	if f.Flags&unix.SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV != 0 && !f.NotifyRequested {
		c.warnf("linux.seccomp.flags: SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV without an SCMP_ACT_NOTIFY rule has no meaning, dropped")
		f.Flags &^= unix.SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV
	}
	if f.NotifyRequested {
		f.Flags |= unix.SECCOMP_FILTER_FLAG_NEW_LISTENER
		if f.Flags&unix.SECCOMP_FILTER_FLAG_TSYNC != 0 {
			f.Flags |= unix.SECCOMP_FILTER_FLAG_TSYNC_ESRCH
		}
	}

	if len(c.errs) > 0 {
		return nil, errors.Join(c.errs...)
	}
	prog, err := c.program()
	if err != nil {
		return nil, fmt.Errorf("linux.seccomp: %w", err)
	}
	if len(prog) > MaxInsns {
		return nil, fmt.Errorf("linux.seccomp: the filter takes %d BPF instructions, more than the kernel's limit of %d", len(prog), MaxInsns)
	}
	f.Program = prog
	f.Warnings = c.warnings
	return f, nil
}

func containsArch(list []*arch, a *arch) bool {
	for _, b := range list {
		if b == a {
			return true
		}
	}
	return false
}

// addSyscall validates syscalls[i] and records its rules per architecture.
func (c *compiler) addSyscall(i int, sc *specs.LinuxSyscall, f *Filter) {
	field := fmt.Sprintf("linux.seccomp.syscalls[%d]", i)
	nerr := len(c.errs)
	if len(sc.Names) == 0 {
		c.errorf("%s.names: must name at least one syscall", field)
	}
	act, err := parseAction(sc.Action, sc.ErrnoRet)
	if err != nil {
		c.errorf("%s.%v", field, err)
	}
	if sc.Action == specs.ActNotify {
		f.NotifyRequested = true
		// The process's last steps write their failures after the
		// filter is in (runc's init does too, and refuses it in these
		// words): they would wait on an agent that has no fd yet.
		if slices.Contains(sc.Names, "write") {
			c.errorf("%s: SCMP_ACT_NOTIFY cannot be used for the write syscall", field)
		}
	}
	var conds []cond
	seen := map[uint]bool{}
	sameArg := false
	for j, a := range sc.Args {
		af := fmt.Sprintf("%s.args[%d]", field, j)
		if a.Index > 5 {
			c.errorf("%s.index %d: a syscall has 6 arguments (0 to 5)", af, a.Index)
		}
		if _, ok := operators[a.Op]; !ok {
			c.errorf("%s.op %q: unknown operator", af, a.Op)
		}
		if seen[a.Index] {
			sameArg = true
		}
		seen[a.Index] = true
		conds = append(conds, cond{index: a.Index, op: a.Op, value: a.Value, valueTwo: a.ValueTwo})
	}
	if len(c.errs) > nerr {
		return
	}

	// Resolve names on every architecture (for the ENOSYS bound too, even
	// when the rule itself is dropped below).
	type resolved struct {
		a  *arch
		nr uint32
	}
	var targets []resolved
	for j, name := range sc.Names {
		if name == "" {
			c.errorf("%s.names[%d]: empty syscall name", field, j)
			continue
		}
		known := false
		for _, a := range c.arches {
			nr, ok := a.table.lookup(name)
			if !ok {
				continue
			}
			if a.x32 {
				nr |= x32SyscallBit
			}
			known = true
			if c.named[a] == nil {
				c.named[a] = map[uint32]bool{}
			}
			c.named[a][nr] = true
			targets = append(targets, resolved{a, nr})
		}
		if !known {
			c.warnf("%s.names[%d] %q: unknown syscall, skipped", field, j, name)
		}
	}
	if len(c.errs) > nerr || act == c.defAction {
		return
	}

	var rules []rule
	if sameArg {
		c.warnf("%s.args: several conditions on one argument are OR'ed (each is a rule of its own), as runc and crun do", field)
		for _, cd := range conds {
			rules = append(rules, rule{action: act, conds: []cond{cd}})
		}
	} else {
		rules = []rule{{action: act, conds: conds}}
	}
	for _, t := range targets {
		m := c.rules[t.a]
		if m == nil {
			m = map[uint32][]rule{}
			c.rules[t.a] = m
		}
		m[t.nr] = append(m[t.nr], rules...)
	}
}

// flagBits maps the spec's flags to SECCOMP_FILTER_FLAG_* bits.
var flagBits = map[specs.LinuxSeccompFlag]uint{
	"SECCOMP_FILTER_FLAG_TSYNC":            unix.SECCOMP_FILTER_FLAG_TSYNC,
	specs.LinuxSeccompFlagLog:              unix.SECCOMP_FILTER_FLAG_LOG,
	specs.LinuxSeccompFlagSpecAllow:        unix.SECCOMP_FILTER_FLAG_SPEC_ALLOW,
	specs.LinuxSeccompFlagWaitKillableRecv: unix.SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV,
}

var operators = map[specs.LinuxSeccompOperator]bool{
	specs.OpNotEqual: true, specs.OpLessThan: true, specs.OpLessEqual: true,
	specs.OpEqualTo: true, specs.OpGreaterEqual: true, specs.OpGreaterThan: true,
	specs.OpMaskedEqual: true,
}

// parseAction returns the SECCOMP_RET_* value of an action. Its error starts
// with the field name relative to the rule ("action ...", "errnoRet ...").
func parseAction(a specs.LinuxSeccompAction, errnoRet *uint) (uint32, error) {
	data := uint32(unix.EPERM)
	if errnoRet != nil {
		if a != specs.ActErrno && a != specs.ActTrace {
			return 0, fmt.Errorf("errnoRet: only SCMP_ACT_ERRNO and SCMP_ACT_TRACE take one, not %s", a)
		}
		if *errnoRet > unix.SECCOMP_RET_DATA {
			return 0, fmt.Errorf("errnoRet %d: larger than %d", *errnoRet, unix.SECCOMP_RET_DATA)
		}
		data = uint32(*errnoRet)
	}
	switch a {
	case specs.ActKill, specs.ActKillThread:
		return unix.SECCOMP_RET_KILL_THREAD, nil
	case specs.ActKillProcess:
		return unix.SECCOMP_RET_KILL_PROCESS, nil
	case specs.ActTrap:
		return unix.SECCOMP_RET_TRAP, nil
	case specs.ActErrno:
		return unix.SECCOMP_RET_ERRNO | data, nil
	case specs.ActTrace:
		return unix.SECCOMP_RET_TRACE | data, nil
	case specs.ActAllow:
		return unix.SECCOMP_RET_ALLOW, nil
	case specs.ActLog:
		return unix.SECCOMP_RET_LOG, nil
	case specs.ActNotify:
		return unix.SECCOMP_RET_USER_NOTIF, nil
	case "":
		return 0, errors.New("action: missing")
	}
	return 0, fmt.Errorf("action %q: unknown action", a)
}

// denies reports whether a default action refuses a syscall (so that
// unknown-new syscalls should rather see ENOSYS).
func denies(act uint32) bool {
	switch act & unix.SECCOMP_RET_ACTION_FULL {
	case unix.SECCOMP_RET_ALLOW, unix.SECCOMP_RET_LOG, unix.SECCOMP_RET_TRACE:
		return false
	}
	return true
}

// actionString names a SECCOMP_RET_* value, for messages and disassembly.
func actionString(v uint32) string {
	data := v & unix.SECCOMP_RET_DATA
	switch v & unix.SECCOMP_RET_ACTION_FULL {
	case unix.SECCOMP_RET_KILL_PROCESS:
		return "KILL_PROCESS"
	case unix.SECCOMP_RET_KILL_THREAD:
		return "KILL_THREAD"
	case unix.SECCOMP_RET_TRAP:
		return "TRAP"
	case unix.SECCOMP_RET_ERRNO:
		name := unix.ErrnoName(unix.Errno(data))
		if name == "" {
			return fmt.Sprintf("ERRNO(%d)", data)
		}
		return fmt.Sprintf("ERRNO(%s)", strings.ToUpper(name))
	case unix.SECCOMP_RET_TRACE:
		return fmt.Sprintf("TRACE(%d)", data)
	case unix.SECCOMP_RET_USER_NOTIF:
		return "NOTIFY"
	case unix.SECCOMP_RET_LOG:
		return "LOG"
	case unix.SECCOMP_RET_ALLOW:
		return "ALLOW"
	}
	return fmt.Sprintf("%#x", v)
}
