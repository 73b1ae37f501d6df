// Package caps gives a container process the capability sets of its OCI
// config (process.capabilities).
//
// The capability calls themselves are one of the identity steps a container
// process takes (libcontainerfd/internal/spawn, steps.go), written once for
// both start paths; this package says what the sets are (Parse) and gives
// them in the form those calls take (Raw). The order is runc's: the bounding
// set is dropped first, because dropping needs CAP_SETPCAP in the effective
// set, which a uid change to non-zero clears; PR_SET_KEEPCAPS keeps the
// permitted set through that change; capset and the ambient raise come after
// it, since the change clears the effective and ambient sets whatever
// KEEPCAPS says.
//
// The inheritable set is exactly the one asked for, never widened: giving
// inheritable capabilities nobody asked for was CVE-2022-29162 (runc) and
// CVE-2022-27650 (crun). Capabilities in an exec'd program follow the
// kernel's rules (capabilities(7)): as uid 0 the program gets the bounding
// set (plus the inheritable one) whatever the permitted set was, so the
// bounding set is what limits root; as any other uid it gets only its ambient
// set. A capability is made ambient only if it is also permitted and
// inheritable, as the kernel requires; Parse drops the others with a warning,
// as runc and crun skip them.
package caps

import (
	"fmt"
	"strings"

	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// Set is the five capability sets of a process, ready to apply. It travels
// to the stage as JSON.
type Set struct {
	Bounding    Mask `json:"bounding"`
	Effective   Mask `json:"effective"`
	Inheritable Mask `json:"inheritable"`
	Permitted   Mask `json:"permitted"`
	Ambient     Mask `json:"ambient"`
	// Warnings say what Parse left out: capabilities the running kernel
	// does not support, and ambient capabilities the kernel would refuse.
	// The runtime logs them (runc logs the first kind at level warning).
	Warnings []string `json:"-"`
}

// Parse translates an OCI capabilities section into a Set. Names are as in
// <linux/capability.h> ("CAP_KILL"); a name this package does not know, and
// a capability the running kernel does not (above
// /proc/sys/kernel/cap_last_cap), are left out with a warning naming it and
// its set, as runc does, so one config serves old and new kernels. An effective capability that is not permitted, or an inheritable
// one not in the bounding set, is an error: the kernel would refuse it.
//
// A nil c gives a nil Set, whose Apply methods do nothing: the process keeps
// the stage's capabilities (which a change to a non-zero uid then clears).
func Parse(c *specs.LinuxCapabilities) (*Set, error) {
	if c == nil {
		return nil, nil
	}
	last, err := Last()
	if err != nil {
		return nil, err
	}
	return parse(c, last)
}

func parse(c *specs.LinuxCapabilities, last Cap) (*Set, error) {
	s := &Set{}
	var (
		unsupported []string            // names above last, in order of appearance
		where       map[string][]string // name -> sets it was in
	)
	for _, f := range []struct {
		set   string
		names []string
		mask  *Mask
	}{
		{"bounding", c.Bounding, &s.Bounding},
		{"effective", c.Effective, &s.Effective},
		{"inheritable", c.Inheritable, &s.Inheritable},
		{"permitted", c.Permitted, &s.Permitted},
		{"ambient", c.Ambient, &s.Ambient},
	} {
		for _, name := range f.names {
			cp, ok := FromName(name)
			if !ok {
				// runc leaves out a name it does not know, with a
				// warning: configs written for newer kernels name
				// capabilities older runtimes have never heard of.
				s.Warnings = append(s.Warnings, unknownWarning(name, f.set))
				continue
			}
			if cp > last {
				if where == nil {
					where = make(map[string][]string)
				}
				if _, seen := where[name]; !seen {
					unsupported = append(unsupported, name)
				}
				if w := where[name]; len(w) == 0 || w[len(w)-1] != f.set {
					where[name] = append(w, f.set)
				}
				continue
			}
			*f.mask |= maskOf(cp)
		}
	}
	for _, name := range unsupported {
		s.Warnings = append(s.Warnings, fmt.Sprintf("ignoring %s (%s): not supported by the running kernel, whose last capability is %s",
			name, strings.Join(where[name], ", "), last))
	}
	if m := s.Effective &^ s.Permitted; m != 0 {
		return nil, fmt.Errorf("caps: effective %s not in the permitted set", m)
	}
	if m := s.Inheritable &^ s.Bounding; m != 0 {
		return nil, fmt.Errorf("caps: inheritable %s not in the bounding set", m)
	}
	// The kernel raises an ambient capability only when it is permitted and
	// inheritable; runc tries, and warns in these words when it cannot.
	if m := s.Ambient &^ (s.Permitted & s.Inheritable); m != 0 {
		for _, c := range m.Caps() {
			s.Warnings = append(s.Warnings, fmt.Sprintf("can't raise ambient capability %s: not both permitted and inheritable; left out", c))
		}
		s.Ambient &^= m
	}
	return s, nil
}

func unknownWarning(name, set string) string {
	hint := ""
	up := strings.ToUpper(strings.TrimSpace(name))
	for _, try := range []string{up, "CAP_" + up} {
		if _, ok := FromName(try); ok && try != name {
			hint = fmt.Sprintf(" (did you mean %q?)", try)
			break
		}
	}
	return fmt.Sprintf("ignoring unknown capability %q in the %s set%s", name, set, hint)
}

// Data is s's effective, permitted and inheritable sets as capset(2)
// (_LINUX_CAPABILITY_VERSION_3) takes them.
func (s *Set) Data() [2]unix.CapUserData {
	var data [2]unix.CapUserData
	for i := range data {
		shift := 32 * uint(i)
		data[i].Effective = uint32(s.Effective >> shift)
		data[i].Permitted = uint32(s.Permitted >> shift)
		data[i].Inheritable = uint32(s.Inheritable >> shift)
	}
	return data
}

// Dropped lists the capabilities of the running kernel that are not in the
// bounding set, for a process that drops them itself (PR_CAPBSET_DROP of a
// capability already out of the set is no error).
func (s *Set) Dropped() ([]Cap, error) {
	last, err := Last()
	if err != nil {
		return nil, err
	}
	var out []Cap
	for c := Cap(0); c <= last; c++ {
		if !s.Bounding.Has(c) {
			out = append(out, c)
		}
	}
	return out, nil
}

// Raw is s as the identity steps take it: the capabilities to drop from
// the bounding set, the capset(2) data, and the ambient capabilities to
// raise.
func (s *Set) Raw() (drop []uintptr, data [2]unix.CapUserData, ambient []uintptr, err error) {
	dropped, err := s.Dropped()
	if err != nil {
		return nil, data, nil, err
	}
	for _, c := range dropped {
		drop = append(drop, uintptr(c))
	}
	for _, c := range s.Ambient.Caps() {
		ambient = append(ambient, uintptr(c))
	}
	return drop, s.Data(), ambient, nil
}

// CheckHeld tells, for a process that stays in the caller's user
// namespace, whether the kernel would grant s: it never adds to the
// permitted set, and takes an inheritable capability only from the old
// inheritable set or the bounding set (capset(2): EPERM). The process is
// either a clone of the caller (same sets) or a program the caller execs
// as root (permitted = bounding): a capability refused on either start
// path is named, so that both behave the same.
func (s *Set) CheckHeld() error {
	if s == nil {
		return nil
	}
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return fmt.Errorf("caps: read the runtime's capabilities: %w", err)
	}
	held := Mask(data[0].Permitted) | Mask(data[1].Permitted)<<32
	inh := Mask(data[0].Inheritable) | Mask(data[1].Inheritable)<<32
	bset := boundingNow()
	var why []string
	if m := s.Permitted &^ (held & bset); m != 0 {
		why = append(why, fmt.Sprintf("permitted %s", m))
	}
	if m := s.Inheritable &^ (inh | bset); m != 0 {
		why = append(why, fmt.Sprintf("inheritable %s", m))
	}
	if len(why) == 0 {
		return nil
	}
	return fmt.Errorf("caps: %s: not held by the runtime (its permitted and bounding sets), and the kernel grants no capability its caller lacks: %w",
		strings.Join(why, "; "), unix.EPERM)
}

// boundingNow reads the calling thread's bounding set.
func boundingNow() Mask {
	var m Mask
	for c := Cap(0); c <= maxCap; c++ {
		in, err := unix.PrctlRetInt(unix.PR_CAPBSET_READ, uintptr(c), 0, 0, 0)
		if err != nil {
			break
		}
		if in == 1 {
			m |= maskOf(c)
		}
	}
	return m
}
