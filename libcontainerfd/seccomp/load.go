package seccomp

import (
	"fmt"
	"runtime"
	"sort"
	"strings"
	"sync"
	"unsafe"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/opencontainers/runtime-spec/specs-go/features"
	"golang.org/x/sys/unix"
)

// Load installs the filter on the calling thread (on every thread of the
// process with SECCOMP_FILTER_FLAG_TSYNC) with seccomp(2). The thread must
// have no_new_privs set or CAP_SYS_ADMIN in its user namespace; setting
// no_new_privs, as process.noNewPrivileges asks, is the caller's job. The
// caller holds its goroutine on the thread (runtime.LockOSThread) and execs
// from it.
//
// When NotifyRequested, Load returns the listener fd (close-on-exec) that
// receives SCMP_ACT_NOTIFY calls; otherwise -1. If the kernel refuses a flag,
// the error names it.
func (f *Filter) Load() (notifyFD int, err error) {
	if len(f.Program) == 0 || len(f.Program) > MaxInsns {
		return -1, fmt.Errorf("seccomp: cannot load a program of %d instructions", len(f.Program))
	}
	prog := unix.SockFprog{Len: uint16(len(f.Program)), Filter: &f.Program[0]}
	r, _, errno := unix.RawSyscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, uintptr(f.Flags), uintptr(unsafe.Pointer(&prog)))
	runtime.KeepAlive(f.Program)
	if errno != 0 {
		switch errno {
		case unix.EINVAL:
			if bad := unsupportedFlags(f.Flags); len(bad) > 0 {
				return -1, fmt.Errorf("seccomp: the kernel does not support %s: %w", strings.Join(bad, ", "), errno)
			}
		case unix.EACCES:
			return -1, fmt.Errorf("seccomp: loading a filter needs no_new_privs or CAP_SYS_ADMIN: %w", errno)
		}
		return -1, fmt.Errorf("seccomp(SECCOMP_SET_MODE_FILTER, %s): %w", flagString(f.Flags), errno)
	}
	if f.Flags&unix.SECCOMP_FILTER_FLAG_NEW_LISTENER != 0 {
		return int(r), nil
	}
	if f.Flags&unix.SECCOMP_FILTER_FLAG_TSYNC != 0 && r != 0 {
		// Without TSYNC_ESRCH the kernel returns the id of a thread it could
		// not synchronize (one with a diverging filter or in a seccomp mode).
		return -1, fmt.Errorf("seccomp: SECCOMP_FILTER_FLAG_TSYNC: thread %d cannot take the filter", r)
	}
	return -1, nil
}

// flagNames names the SECCOMP_FILTER_FLAG_* bits.
var flagNames = []struct {
	bit  uint
	name string
}{
	{unix.SECCOMP_FILTER_FLAG_TSYNC, "SECCOMP_FILTER_FLAG_TSYNC"},
	{unix.SECCOMP_FILTER_FLAG_LOG, "SECCOMP_FILTER_FLAG_LOG"},
	{unix.SECCOMP_FILTER_FLAG_SPEC_ALLOW, "SECCOMP_FILTER_FLAG_SPEC_ALLOW"},
	{unix.SECCOMP_FILTER_FLAG_NEW_LISTENER, "SECCOMP_FILTER_FLAG_NEW_LISTENER"},
	{unix.SECCOMP_FILTER_FLAG_TSYNC_ESRCH, "SECCOMP_FILTER_FLAG_TSYNC_ESRCH"},
	{unix.SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV, "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"},
}

func flagString(flags uint) string {
	var s []string
	for _, fl := range flagNames {
		if flags&fl.bit != 0 {
			s = append(s, fl.name)
		}
	}
	if len(s) == 0 {
		return "0"
	}
	return strings.Join(s, "|")
}

// unsupportedFlags returns the names of the bits of flags the kernel rejects.
func unsupportedFlags(flags uint) []string {
	var bad []string
	for _, fl := range flagNames {
		if flags&fl.bit != 0 && !flagAvailable(fl.bit) {
			bad = append(bad, fl.name)
		}
	}
	return bad
}

// specAllowAvailable reports, once, whether the kernel takes
// SECCOMP_FILTER_FLAG_SPEC_ALLOW (Linux 4.17).
var specAllowAvailable = sync.OnceValue(func() bool { return flagAvailable(unix.SECCOMP_FILTER_FLAG_SPEC_ALLOW) })

// flagAvailable probes one flag the way libseccomp does: seccomp(2) with the
// flag and no program fails with EFAULT once the kernel has accepted the
// flags, and with EINVAL when it does not know one. Nothing is loaded.
func flagAvailable(bit uint) bool {
	flags := bit
	switch bit {
	case unix.SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV, unix.SECCOMP_FILTER_FLAG_TSYNC_ESRCH:
		// Only valid together with a listener.
		flags |= unix.SECCOMP_FILTER_FLAG_NEW_LISTENER
	}
	_, _, errno := unix.RawSyscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, uintptr(flags), 0)
	return errno == unix.EFAULT
}

// FlagSupported reports whether the spec flag is known here and supported by
// the running kernel (nil) or why not.
func FlagSupported(flag string) error {
	for fl, bit := range flagBits {
		if string(fl) == flag {
			if !flagAvailable(bit) {
				return fmt.Errorf("seccomp flag %s is not supported by the kernel", flag)
			}
			return nil
		}
	}
	return fmt.Errorf("seccomp flag %s is not known", flag)
}

// ActionAvailable reports whether the kernel implements the action (a
// SCMP_ACT_* name), with SECCOMP_GET_ACTION_AVAIL.
func ActionAvailable(action string) (bool, error) {
	act, err := parseAction(specs.LinuxSeccompAction(action), nil)
	if err != nil {
		return false, err
	}
	v := act & unix.SECCOMP_RET_ACTION_FULL
	_, _, errno := unix.RawSyscall(unix.SYS_SECCOMP, unix.SECCOMP_GET_ACTION_AVAIL, 0, uintptr(unsafe.Pointer(&v)))
	switch errno {
	case 0:
		return true, nil
	case unix.EOPNOTSUPP:
		return false, nil
	}
	return false, fmt.Errorf("seccomp(SECCOMP_GET_ACTION_AVAIL): %w", errno)
}

// Features describes the seccomp support for the "features" command: what
// the compiler recognizes, and which flags the running kernel takes.
func Features() *features.Seccomp {
	yes := true
	fs := &features.Seccomp{
		Enabled: &yes,
		Actions: []string{
			"SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO", "SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS",
			"SCMP_ACT_KILL_THREAD", "SCMP_ACT_LOG", "SCMP_ACT_NOTIFY", "SCMP_ACT_TRACE", "SCMP_ACT_TRAP",
		},
		Archs: archNames(),
	}
	for op := range operators {
		fs.Operators = append(fs.Operators, string(op))
	}
	sort.Strings(fs.Operators)
	for fl, bit := range flagBits {
		fs.KnownFlags = append(fs.KnownFlags, string(fl))
		if flagAvailable(bit) {
			fs.SupportedFlags = append(fs.SupportedFlags, string(fl))
		}
	}
	sort.Strings(fs.KnownFlags)
	sort.Strings(fs.SupportedFlags)
	return fs
}
