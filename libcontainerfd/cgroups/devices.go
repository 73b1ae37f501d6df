package cgroups

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// The device allowed list (linux.resources.devices), without the kernel:
// the OCI rules are applied in order to a deviceFilter, the state a v1
// devices cgroup would be in; from it come the writes to devices.deny and
// devices.allow (devicesV1Writes) and the BPF_PROG_TYPE_CGROUP_DEVICE
// program for cgroup2 (deviceFilter.program). The kernel side is in
// devices_bpf.go and in Set.
//
// Semantics, as the v1 device controller and runc's emulator have them:
//
//   - A filter is a default (allow or deny every device) plus exceptions,
//     each a type (c or b), a major and a minor (either may be the wildcard
//     *) and a set of accesses (r read, w write, m mknod). Every exception
//     has the action opposite to the default.
//   - The filter starts as "deny everything": a list of allow rules only is
//     an allowed list, as in runc. An empty list leaves the cgroup alone.
//   - A rule of type a (or no type) with wildcard major and minor and access
//     rwm resets the filter: its action becomes the default and every
//     exception goes. Any other type-a rule stands for the same rule for c
//     and for b (the spec's "all"); v1 and runc would widen it to "every
//     device", which a narrower rule never asks for.
//   - A rule whose action is not the default adds its accesses to the
//     exception of exactly its type:major:minor.
//   - A rule whose action is the default takes its accesses away from every
//     exception it covers (later rules win). If it overlaps an exception
//     that it does not cover and that has some of its accesses (deny c 1:3 m
//     after allow c *:* m), it would have to punch a hole that the v1
//     controller cannot express: that is an error, as in runc.
//   - A request (an open for read and/or write, a mknod) is allowed in a
//     deny-by-default filter if one exception matches the device and holds
//     every access asked; in an allow-by-default one if no exception that
//     matches the device holds any access asked (the v1 kernel's
//     match_exception and match_exception_partial).

// devAccess is a set of device accesses, with the bits of
// BPF_DEVCG_ACC_*.
type devAccess uint8

const (
	accMknod devAccess = unix.BPF_DEVCG_ACC_MKNOD
	accRead  devAccess = unix.BPF_DEVCG_ACC_READ
	accWrite devAccess = unix.BPF_DEVCG_ACC_WRITE
	accAll             = accRead | accWrite | accMknod
)

// String returns the accesses as the kernel writes them: "rwm", "r", "m" …
func (a devAccess) String() string {
	var b strings.Builder
	for _, x := range []struct {
		bit devAccess
		c   byte
	}{{accRead, 'r'}, {accWrite, 'w'}, {accMknod, 'm'}} {
		if a&x.bit != 0 {
			b.WriteByte(x.c)
		}
	}
	return b.String()
}

// parseAccess parses a non-empty composition of r, w and m.
func parseAccess(s string) (devAccess, error) {
	if s == "" {
		return 0, fmt.Errorf("empty (want a composition of r, w and m)")
	}
	var a devAccess
	for _, c := range s {
		switch c {
		case 'r':
			a |= accRead
		case 'w':
			a |= accWrite
		case 'm':
			a |= accMknod
		default:
			return 0, fmt.Errorf("%q: %q is not r, w or m", s, c)
		}
	}
	return a, nil
}

// wildcard is the major or minor number that matches any.
const wildcard = -1

// devKey names the devices an exception is about: a type, 'c' or 'b', and
// a major and a minor number, each a number or wildcard.
type devKey struct {
	typ          byte
	major, minor int64
}

func devNum(n int64) string {
	if n == wildcard {
		return "*"
	}
	return strconv.FormatInt(n, 10)
}

// String returns the key as the kernel writes it: "c 1:3", "b *:*".
func (k devKey) String() string {
	return string(k.typ) + " " + devNum(k.major) + ":" + devNum(k.minor)
}

// covers reports whether every device o names is one k names.
func (k devKey) covers(o devKey) bool {
	return k.typ == o.typ && (k.major == wildcard || k.major == o.major) && (k.minor == wildcard || k.minor == o.minor)
}

// overlaps reports whether some device is named by both k and o.
func (k devKey) overlaps(o devKey) bool {
	num := func(a, b int64) bool { return a == wildcard || b == wildcard || a == b }
	return k.typ == o.typ && num(k.major, o.major) && num(k.minor, o.minor)
}

// matches reports whether the device typ major:minor is one k names.
func (k devKey) matches(typ byte, major, minor uint32) bool {
	return k.covers(devKey{typ, int64(major), int64(minor)})
}

// devException is one exception of a filter.
type devException struct {
	devKey
	access devAccess
}

// String returns the exception as a devices.list line: "c 1:3 rwm".
func (e devException) String() string { return e.devKey.String() + " " + e.access.String() }

// deviceFilter is the state of a device cgroup: a default and exceptions to
// it.
type deviceFilter struct {
	defaultAllow bool
	exceptions   map[devKey]devAccess // never holds a 0 access
	// order holds the keys of exceptions in the order the rules first
	// made them (config-linux.md: "entries in the listed order"); the v1
	// kernel lists exceptions in the order they were written.
	order []devKey
}

// newDeviceFilter applies rules, in order, to a filter that denies
// everything. Errors name the rule by its index in
// linux.resources.devices.
func newDeviceFilter(rules []specs.LinuxDeviceCgroup) (*deviceFilter, error) {
	f := &deviceFilter{exceptions: map[devKey]devAccess{}}
	for i, r := range rules {
		if err := f.apply(r); err != nil {
			return nil, fmt.Errorf("cgroups: linux.resources.devices[%d]: %w", i, err)
		}
	}
	return f, nil
}

// devRuleNum checks a rule's major or minor number: unset and -1 are the
// wildcard; else it must fit the kernel's 32 bits.
func devRuleNum(name string, p *int64) (int64, error) {
	if p == nil || *p == wildcard {
		return wildcard, nil
	}
	if *p < 0 || *p > math.MaxUint32 {
		return 0, fmt.Errorf("%s %d is neither -1 (all) nor a device number", name, *p)
	}
	return *p, nil
}

// apply applies one OCI rule.
func (f *deviceFilter) apply(r specs.LinuxDeviceCgroup) error {
	var types []byte
	switch r.Type {
	case "", "a":
		types = []byte{'c', 'b'}
	case "c", "b":
		types = []byte{r.Type[0]}
	default:
		return fmt.Errorf("type %q is not a (all), c (char) or b (block)", r.Type)
	}
	major, err := devRuleNum("major", r.Major)
	if err != nil {
		return err
	}
	minor, err := devRuleNum("minor", r.Minor)
	if err != nil {
		return err
	}
	if r.Access == "" {
		return fmt.Errorf("access empty (want a composition of r, w and m)")
	}
	// As runc, letters other than r, w and m grant and take nothing: "rwa"
	// is "rw" (runc's emulator keeps the known letters of a rule).
	known := strings.Map(func(c rune) rune {
		if strings.ContainsRune("rwm", c) {
			return c
		}
		return -1
	}, r.Access)
	if known == "" {
		return nil
	}
	access, err := parseAccess(known)
	if err != nil {
		return fmt.Errorf("access %w", err)
	}
	if len(types) == 2 && major == wildcard && minor == wildcard && access == accAll {
		f.defaultAllow = r.Allow
		clear(f.exceptions)
		f.order = nil
		return nil
	}
	for _, typ := range types {
		key := devKey{typ, major, minor}
		if r.Allow != f.defaultAllow {
			if f.exceptions[key] == 0 {
				f.order = append(f.order, key)
			}
			f.exceptions[key] |= access
			continue
		}
		for _, e := range f.sorted() {
			shared := e.access & access
			switch {
			case shared == 0:
			case key.covers(e.devKey):
				if left := e.access &^ access; left != 0 {
					f.exceptions[e.devKey] = left
				} else {
					delete(f.exceptions, e.devKey)
					f.order = slices.DeleteFunc(f.order, func(k devKey) bool { return k == e.devKey })
				}
			case key.overlaps(e.devKey):
				return fmt.Errorf("%s %s %s would punch a hole in the earlier %s %s, which the device controller cannot express: list the devices one by one",
					action(r.Allow), key, access, action(!r.Allow), e)
			}
		}
	}
	return nil
}

func action(allow bool) string {
	if allow {
		return "allow"
	}
	return "deny"
}

// sorted returns the exceptions in a fixed order: by type (c before b),
// major, minor, wildcards first.
func (f *deviceFilter) sorted() []devException {
	out := make([]devException, 0, len(f.exceptions))
	for k, a := range f.exceptions {
		out = append(out, devException{k, a})
	}
	slices.SortFunc(out, func(a, b devException) int {
		switch {
		case a.typ != b.typ:
			return int(b.typ) - int(a.typ) // 'c' > 'b': c first
		case a.major != b.major:
			return cmpInt(a.major, b.major)
		}
		return cmpInt(a.minor, b.minor)
	})
	return out
}

// listed returns the exceptions in the order the rules made them; any
// exception the order does not hold (a filter built otherwise) follows,
// sorted.
func (f *deviceFilter) listed() []devException {
	out := make([]devException, 0, len(f.exceptions))
	seen := make(map[devKey]bool, len(f.order))
	for _, k := range f.order {
		if a := f.exceptions[k]; a != 0 && !seen[k] {
			seen[k] = true
			out = append(out, devException{k, a})
		}
	}
	for _, e := range f.sorted() {
		if !seen[e.devKey] {
			out = append(out, e)
		}
	}
	return out
}

func cmpInt(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// String describes the filter: "deny all; allow c 1:3 rwm; allow c *:* m".
func (f *deviceFilter) String() string {
	parts := []string{action(f.defaultAllow) + " all"}
	for _, e := range f.sorted() {
		parts = append(parts, action(!f.defaultAllow)+" "+e.String())
	}
	return strings.Join(parts, "; ")
}

// equal reports whether f and g are the same state.
func (f *deviceFilter) equal(g *deviceFilter) bool {
	if f.defaultAllow != g.defaultAllow || len(f.exceptions) != len(g.exceptions) {
		return false
	}
	for k, a := range f.exceptions {
		if g.exceptions[k] != a {
			return false
		}
	}
	return true
}

// allows decides a request as the filter says: the reference the program
// and the v1 writes are checked against.
func (f *deviceFilter) allows(typ byte, major, minor uint32, access devAccess) bool {
	for k, a := range f.exceptions {
		if !k.matches(typ, major, minor) {
			continue
		}
		if f.defaultAllow && a&access != 0 {
			return false
		}
		if !f.defaultAllow && access&^a == 0 {
			return true
		}
	}
	return f.defaultAllow
}

// ---- v1: devices.list, devices.allow, devices.deny ----

// parseDevicesList reads a v1 devices.list. A cgroup that allows by default
// lists only "a *:* rwm", whatever it denies: the filter returned then has
// no exceptions, and the caller must not take them as known. One that
// denies by default lists its exceptions, one a line.
func parseDevicesList(s string) (*deviceFilter, error) {
	f := &deviceFilter{exceptions: map[devKey]devAccess{}}
	for _, line := range strings.Split(s, "\n") {
		if line = strings.TrimSpace(line); line == "" {
			continue
		}
		bad := fmt.Errorf("cgroups: parse devices.list: malformed line %q", line)
		fs := strings.Fields(line)
		if len(fs) != 3 {
			return nil, bad
		}
		maj, min, ok := strings.Cut(fs[1], ":")
		if !ok {
			return nil, bad
		}
		access, err := parseAccess(fs[2])
		if err != nil {
			return nil, bad
		}
		if fs[0] == "a" {
			f.defaultAllow = true
			continue
		}
		if fs[0] != "c" && fs[0] != "b" {
			return nil, bad
		}
		key := devKey{typ: fs[0][0]}
		for _, n := range []struct {
			s string
			p *int64
		}{{maj, &key.major}, {min, &key.minor}} {
			if n.s == "*" {
				*n.p = wildcard
				continue
			}
			v, err := strconv.ParseUint(n.s, 10, 32)
			if err != nil {
				return nil, bad
			}
			*n.p = int64(v)
		}
		f.exceptions[key] |= access
	}
	if f.defaultAllow {
		clear(f.exceptions)
	}
	return f, nil
}

// devicesV1Writes returns the writes that take a v1 devices cgroup from
// the state cur (parsed from its devices.list) to target.
//
// When both deny by default (every update of a usual container), it takes
// away the accesses target drops and then adds those it gains, exception by
// exception, never touching the default: no moment denies what both the old
// and the new list allow, and the kernel accepts it while the cgroup has
// children. Otherwise (at create, where a new cgroup allows everything; or
// when the default changes; or when cur allows by default, whose deny
// exceptions devices.list does not show) it first writes "a" to
// devices.deny (or devices.allow), which resets the cgroup to that default
// and drops every exception, and then writes each exception of target.
// Exceptions are added in the order the rules made them, so devices.list
// shows linux.resources.devices in its order, runc's own allow rules last
// (runc itself writes them sorted).
// While processes run, that reset is a short window in which they lose (or,
// for an allow-by-default target, gain) the excepted accesses; the kernel
// refuses it (EINVAL) once the cgroup has child cgroups.
func devicesV1Writes(cur, target *deviceFilter) []fileWrite {
	var ws []fileWrite
	old := cur.exceptions
	if cur.defaultAllow || cur.defaultAllow != target.defaultAllow {
		file := "devices.deny"
		if target.defaultAllow {
			file = "devices.allow"
		}
		ws = append(ws, fileWrite{file, "a"})
		old = nil
	}
	add, remove := "devices.allow", "devices.deny"
	if target.defaultAllow {
		add, remove = remove, add
	}
	o := &deviceFilter{exceptions: old}
	for _, e := range o.sorted() {
		if dropped := e.access &^ target.exceptions[e.devKey]; dropped != 0 {
			ws = append(ws, fileWrite{remove, devException{e.devKey, dropped}.String()})
		}
	}
	for _, e := range target.listed() {
		if gained := e.access &^ old[e.devKey]; gained != 0 {
			ws = append(ws, fileWrite{add, devException{e.devKey, gained}.String()})
		}
	}
	return ws
}

// ---- cgroup2: the BPF program ----

// The fields of struct bpf_cgroup_dev_ctx, the program's input (R1): u32
// access_type (device type in the low 16 bits, BPF_DEVCG_DEV_*; accesses
// asked in the high 16, BPF_DEVCG_ACC_*), u32 major, u32 minor.
const (
	devCtxAccessType = 0
	devCtxMajor      = 4
	devCtxMinor      = 8
)

// bpfDevType returns BPF_DEVCG_DEV_* for 'c' or 'b'.
func bpfDevType(typ byte) int32 {
	if typ == 'b' {
		return unix.BPF_DEVCG_DEV_BLOCK
	}
	return unix.BPF_DEVCG_DEV_CHAR
}

// program compiles the filter into a BPF_PROG_TYPE_CGROUP_DEVICE program,
// which returns 1 to allow a request and 0 to deny it (EPERM):
//
//	R2 = type, R3 = accesses asked, R4 = major, R5 = minor
//	for each exception, in sorted order (each "next" a jump forward to
//	the next exception's block):
//	    if R2 != type: next
//	    allow exception (default deny), unless its accesses are rwm:
//	        if R3 & accesses != R3: next      (all asked must be held)
//	    deny exception (default allow), unless its accesses are rwm:
//	        if R3 & accesses == 0: next       (any asked is one too many)
//	    if major is not *: if R4 != major: next
//	    if minor is not *: if R5 != minor: next
//	    return !default
//	return default
//
// Every exception has the same action, so their order does not matter. The
// comparisons are 32-bit (JMP32): device numbers are u32.
func (f *deviceFilter) program() []bpfInsn {
	ret := func(allow bool) []bpfInsn {
		v := int32(0)
		if allow {
			v = 1
		}
		return []bpfInsn{alu32Imm(unix.BPF_MOV, bpfR0, v), exit()}
	}
	insts := []bpfInsn{
		ldxW(bpfR2, bpfR1, devCtxAccessType),
		alu32Imm(unix.BPF_AND, bpfR2, 0xffff),
		ldxW(bpfR3, bpfR1, devCtxAccessType),
		alu32Imm(unix.BPF_RSH, bpfR3, 16),
		ldxW(bpfR4, bpfR1, devCtxMajor),
		ldxW(bpfR5, bpfR1, devCtxMinor),
	}
	for _, e := range f.sorted() {
		// Each jump goes to the next exception: to the end of this
		// block, whose length is known once it is whole.
		var jumps []int
		block := []bpfInsn{jmp32Imm(unix.BPF_JNE, bpfR2, bpfDevType(e.typ), 0)}
		jumps = append(jumps, 0)
		if e.access != accAll {
			block = append(block,
				mov32Reg(bpfR1, bpfR3),
				alu32Imm(unix.BPF_AND, bpfR1, int32(e.access)))
			jumps = append(jumps, len(block))
			if f.defaultAllow {
				block = append(block, jmp32Imm(unix.BPF_JEQ, bpfR1, 0, 0))
			} else {
				block = append(block, jmp32Reg(unix.BPF_JNE, bpfR1, bpfR3, 0))
			}
		}
		if e.major != wildcard {
			jumps = append(jumps, len(block))
			block = append(block, jmp32Imm(unix.BPF_JNE, bpfR4, int32(uint32(e.major)), 0))
		}
		if e.minor != wildcard {
			jumps = append(jumps, len(block))
			block = append(block, jmp32Imm(unix.BPF_JNE, bpfR5, int32(uint32(e.minor)), 0))
		}
		block = append(block, ret(!f.defaultAllow)...)
		for _, j := range jumps {
			block[j].Off = int16(len(block) - j - 1)
		}
		insts = append(insts, block...)
	}
	return append(insts, ret(f.defaultAllow)...)
}
