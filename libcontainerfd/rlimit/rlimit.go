// Package rlimit sets a container process's resource limits (OCI
// process.rlimits).
//
// The runtime sets them from outside with prlimit(2) on the stage, before the
// stage execs the user's program, which inherits them. From outside, the
// runtime's own CAP_SYS_RESOURCE (in the initial user namespace, where the
// kernel checks it) lets it raise a hard limit even for a stage in a user
// namespace of its own, which could not raise it itself.
//
// A stage written in Go must call KeepNofile before it execs: Go's runtime
// raises its own soft RLIMIT_NOFILE at start and syscall.Exec puts back the
// value it found, which would undo an RLIMIT_NOFILE set from outside.
package rlimit

import (
	"fmt"
	"strconv"

	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// Limit is one resource limit, ready to apply.
type Limit struct {
	Type     string // as in the config: "RLIMIT_NOFILE"
	Resource int    // unix.RLIMIT_NOFILE
	Soft     uint64
	Hard     uint64
}

// Infinity is RLIM_INFINITY, "unlimited".
const Infinity = unix.RLIM_INFINITY

// resources maps each type the runtime spec lists to its number.
var resources = map[string]int{
	"RLIMIT_AS":         unix.RLIMIT_AS,
	"RLIMIT_CORE":       unix.RLIMIT_CORE,
	"RLIMIT_CPU":        unix.RLIMIT_CPU,
	"RLIMIT_DATA":       unix.RLIMIT_DATA,
	"RLIMIT_FSIZE":      unix.RLIMIT_FSIZE,
	"RLIMIT_LOCKS":      unix.RLIMIT_LOCKS,
	"RLIMIT_MEMLOCK":    unix.RLIMIT_MEMLOCK,
	"RLIMIT_MSGQUEUE":   unix.RLIMIT_MSGQUEUE,
	"RLIMIT_NICE":       unix.RLIMIT_NICE,
	"RLIMIT_NOFILE":     unix.RLIMIT_NOFILE,
	"RLIMIT_NPROC":      unix.RLIMIT_NPROC,
	"RLIMIT_RSS":        unix.RLIMIT_RSS,
	"RLIMIT_RTPRIO":     unix.RLIMIT_RTPRIO,
	"RLIMIT_RTTIME":     unix.RLIMIT_RTTIME,
	"RLIMIT_SIGPENDING": unix.RLIMIT_SIGPENDING,
	"RLIMIT_STACK":      unix.RLIMIT_STACK,
}

// Parse translates the config's rlimits, in order. An unknown type, a type
// given twice (the spec forbids it) and a soft limit above its hard limit
// (the kernel refuses it) are errors naming the type.
func Parse(rs []specs.POSIXRlimit) ([]Limit, error) {
	if len(rs) == 0 {
		return nil, nil
	}
	ls := make([]Limit, 0, len(rs))
	seen := make(map[string]bool, len(rs))
	for _, r := range rs {
		res, ok := resources[r.Type]
		if !ok {
			return nil, fmt.Errorf("rlimit: unknown type %q", r.Type)
		}
		if seen[r.Type] {
			return nil, fmt.Errorf("rlimit: %s given more than once", r.Type)
		}
		seen[r.Type] = true
		if r.Soft > r.Hard {
			return nil, fmt.Errorf("rlimit: %s: soft limit %s above hard limit %s", r.Type, format(r.Soft), format(r.Hard))
		}
		ls = append(ls, Limit{Type: r.Type, Resource: res, Soft: r.Soft, Hard: r.Hard})
	}
	return ls, nil
}

// Apply sets each limit on process pid with prlimit(2), in order, stopping
// at the first that fails. Raising a hard limit needs CAP_SYS_RESOURCE.
// Apply must be done before pid calls execve, not during it: execve puts
// back the RLIMIT_STACK it found when it began.
// The error names the limit and the values:
//
//	set RLIMIT_NOFILE to soft 1024 hard 4096: operation not permitted
func Apply(pid int, ls []Limit) error {
	for _, l := range ls {
		lim := unix.Rlimit{Cur: l.Soft, Max: l.Hard}
		if err := unix.Prlimit(pid, l.Resource, &lim, nil); err != nil {
			return fmt.Errorf("set %s to soft %s hard %s: %w", l.name(), format(l.Soft), format(l.Hard), err)
		}
	}
	return nil
}

// KeepNofile makes the calling process's present RLIMIT_NOFILE the one its
// next exec keeps. Go raises the soft limit when a program starts and
// syscall.Exec (and so unix.Exec) sets back the limit it found then, which
// would undo an RLIMIT_NOFILE that Apply set on the process from outside. A Go
// stage calls it after the runtime's Apply and before it execs, when the
// config has an RLIMIT_NOFILE; without one, leave Go's restore alone, so the
// program gets the soft limit the stage was started with, as under runc.
func KeepNofile() error {
	var lim unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
		return fmt.Errorf("get RLIMIT_NOFILE: %w", err)
	}
	// Setting it to itself changes nothing but tells Go not to restore.
	if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
		return fmt.Errorf("set RLIMIT_NOFILE to soft %s hard %s: %w", format(lim.Cur), format(lim.Max), err)
	}
	return nil
}

func (l Limit) name() string {
	if l.Type != "" {
		return l.Type
	}
	for t, r := range resources {
		if r == l.Resource {
			return t
		}
	}
	return "resource " + strconv.Itoa(l.Resource)
}

func format(v uint64) string {
	if v == Infinity {
		return "unlimited"
	}
	return strconv.FormatUint(v, 10)
}
