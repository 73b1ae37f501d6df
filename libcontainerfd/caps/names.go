package caps

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
)

// Cap is a capability number, as in <linux/capability.h>.
type Cap int

// names is the table of capability names, indexed by number. It ends at the
// last capability this package knows; a newer kernel may know more.
var names = [...]string{
	unix.CAP_CHOWN:              "CAP_CHOWN",
	unix.CAP_DAC_OVERRIDE:       "CAP_DAC_OVERRIDE",
	unix.CAP_DAC_READ_SEARCH:    "CAP_DAC_READ_SEARCH",
	unix.CAP_FOWNER:             "CAP_FOWNER",
	unix.CAP_FSETID:             "CAP_FSETID",
	unix.CAP_KILL:               "CAP_KILL",
	unix.CAP_SETGID:             "CAP_SETGID",
	unix.CAP_SETUID:             "CAP_SETUID",
	unix.CAP_SETPCAP:            "CAP_SETPCAP",
	unix.CAP_LINUX_IMMUTABLE:    "CAP_LINUX_IMMUTABLE",
	unix.CAP_NET_BIND_SERVICE:   "CAP_NET_BIND_SERVICE",
	unix.CAP_NET_BROADCAST:      "CAP_NET_BROADCAST",
	unix.CAP_NET_ADMIN:          "CAP_NET_ADMIN",
	unix.CAP_NET_RAW:            "CAP_NET_RAW",
	unix.CAP_IPC_LOCK:           "CAP_IPC_LOCK",
	unix.CAP_IPC_OWNER:          "CAP_IPC_OWNER",
	unix.CAP_SYS_MODULE:         "CAP_SYS_MODULE",
	unix.CAP_SYS_RAWIO:          "CAP_SYS_RAWIO",
	unix.CAP_SYS_CHROOT:         "CAP_SYS_CHROOT",
	unix.CAP_SYS_PTRACE:         "CAP_SYS_PTRACE",
	unix.CAP_SYS_PACCT:          "CAP_SYS_PACCT",
	unix.CAP_SYS_ADMIN:          "CAP_SYS_ADMIN",
	unix.CAP_SYS_BOOT:           "CAP_SYS_BOOT",
	unix.CAP_SYS_NICE:           "CAP_SYS_NICE",
	unix.CAP_SYS_RESOURCE:       "CAP_SYS_RESOURCE",
	unix.CAP_SYS_TIME:           "CAP_SYS_TIME",
	unix.CAP_SYS_TTY_CONFIG:     "CAP_SYS_TTY_CONFIG",
	unix.CAP_MKNOD:              "CAP_MKNOD",
	unix.CAP_LEASE:              "CAP_LEASE",
	unix.CAP_AUDIT_WRITE:        "CAP_AUDIT_WRITE",
	unix.CAP_AUDIT_CONTROL:      "CAP_AUDIT_CONTROL",
	unix.CAP_SETFCAP:            "CAP_SETFCAP",
	unix.CAP_MAC_OVERRIDE:       "CAP_MAC_OVERRIDE",
	unix.CAP_MAC_ADMIN:          "CAP_MAC_ADMIN",
	unix.CAP_SYSLOG:             "CAP_SYSLOG",
	unix.CAP_WAKE_ALARM:         "CAP_WAKE_ALARM",
	unix.CAP_BLOCK_SUSPEND:      "CAP_BLOCK_SUSPEND",
	unix.CAP_AUDIT_READ:         "CAP_AUDIT_READ",
	unix.CAP_PERFMON:            "CAP_PERFMON",
	unix.CAP_BPF:                "CAP_BPF",
	unix.CAP_CHECKPOINT_RESTORE: "CAP_CHECKPOINT_RESTORE",
}

// byName maps each name of the table to its number.
var byName = func() map[string]Cap {
	m := make(map[string]Cap, len(names))
	for c, n := range names {
		m[n] = Cap(c)
	}
	return m
}()

// maxCap is the highest capability a 64-bit mask can hold.
const maxCap = 63

// String returns the capability's name ("CAP_KILL"), or "CAP_<n>" for a
// number the table does not know.
func (c Cap) String() string {
	if c >= 0 && int(c) < len(names) {
		return names[c]
	}
	return "CAP_" + strconv.Itoa(int(c))
}

// FromName returns the capability called name. Names are as in
// <linux/capability.h>: upper case, with the CAP_ prefix, as runc requires.
func FromName(name string) (Cap, bool) {
	c, ok := byName[name]
	return c, ok
}

// Names returns the name of every capability this package knows, in
// number order, whether or not the running kernel supports it.
func Names() []string {
	return append([]string(nil), names[:]...)
}

// Known returns the names of the capabilities both this package and the
// running kernel know (up to Last), in number order: the list a runtime's
// `features` command reports.
func Known() ([]string, error) {
	last, err := Last()
	if err != nil {
		return nil, err
	}
	n := min(int(last)+1, len(names))
	return append([]string(nil), names[:n]...), nil
}

// Last returns the highest capability the running kernel supports, from
// /proc/sys/kernel/cap_last_cap, or, where /proc cannot be read, by probing
// the bounding set with PR_CAPBSET_READ (which fails with EINVAL above it).
// The answer is read once per process.
func Last() (Cap, error) {
	return lastCap()
}

var lastCap = sync.OnceValues(func() (Cap, error) {
	b, err := os.ReadFile("/proc/sys/kernel/cap_last_cap")
	if err == nil {
		n, perr := strconv.Atoi(strings.TrimSpace(string(b)))
		if perr == nil && n >= 0 && n <= maxCap {
			return Cap(n), nil
		}
		err = fmt.Errorf("unexpected content %q", b)
	}
	if c, perr := probeLast(); perr == nil {
		return c, nil
	}
	return 0, fmt.Errorf("caps: read /proc/sys/kernel/cap_last_cap: %w", err)
})

// probeLast finds the kernel's last capability without /proc.
func probeLast() (Cap, error) {
	for c := 0; c <= maxCap; c++ {
		_, err := unix.PrctlRetInt(unix.PR_CAPBSET_READ, uintptr(c), 0, 0, 0)
		if errors.Is(err, unix.EINVAL) {
			if c == 0 {
				return 0, err
			}
			return Cap(c - 1), nil
		}
		if err != nil {
			return 0, err
		}
	}
	return maxCap, nil
}

// Mask is a set of capabilities, bit n standing for capability n, as in
// the Cap* lines of /proc/<pid>/status.
type Mask uint64

// Has reports whether c is in m.
func (m Mask) Has(c Cap) bool {
	return c >= 0 && c <= maxCap && m&(1<<uint(c)) != 0
}

// Caps returns the capabilities in m, in number order.
func (m Mask) Caps() []Cap {
	var cs []Cap
	for c := Cap(0); c <= maxCap; c++ {
		if m.Has(c) {
			cs = append(cs, c)
		}
	}
	return cs
}

// String lists the names of the capabilities in m, comma-separated.
func (m Mask) String() string {
	var b strings.Builder
	for i, c := range m.Caps() {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(c.String())
	}
	return b.String()
}

func maskOf(c Cap) Mask { return 1 << uint(c) }
