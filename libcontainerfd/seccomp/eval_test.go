package seccomp

import (
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// TestAllows: the verdict for one call of the native architecture, with
// argument conditions, a denying default and the ENOSYS stub above the
// highest syscall a profile names.
func TestAllows(t *testing.T) {
	errno := func(names ...string) specs.LinuxSyscall {
		return specs.LinuxSyscall{Names: names, Action: specs.ActErrno}
	}
	for _, tc := range []struct {
		name string
		s    specs.LinuxSeccomp
		nr   uintptr
		args []uint64
		want bool
	}{
		{"default allow", specs.LinuxSeccomp{DefaultAction: specs.ActAllow}, unix.SYS_EXECVEAT, nil, true},
		{"denied by name", specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{errno("execveat")}}, unix.SYS_EXECVEAT, nil, false},
		{"log", specs.LinuxSeccomp{DefaultAction: specs.ActLog}, unix.SYS_FCNTL, nil, true},
		{"allowed by name", specs.LinuxSeccomp{DefaultAction: specs.ActErrno, Syscalls: []specs.LinuxSyscall{{Names: []string{"execveat", "close_range"}, Action: specs.ActAllow}}}, unix.SYS_EXECVEAT, nil, true},
		{"newer than the profile", specs.LinuxSeccomp{DefaultAction: specs.ActErrno, Syscalls: []specs.LinuxSyscall{{Names: []string{"read", "write"}, Action: specs.ActAllow}}}, unix.SYS_EXECVEAT, nil, false},
		{"argument matches", specs.LinuxSeccomp{DefaultAction: specs.ActErrno, Syscalls: []specs.LinuxSyscall{{
			Names: []string{"fcntl"}, Action: specs.ActAllow,
			Args: []specs.LinuxSeccompArg{{Index: 1, Value: unix.F_SETFD, Op: specs.OpEqualTo}},
		}}}, unix.SYS_FCNTL, []uint64{3, unix.F_SETFD, 1}, true},
		{"argument differs", specs.LinuxSeccomp{DefaultAction: specs.ActErrno, Syscalls: []specs.LinuxSyscall{{
			Names: []string{"fcntl"}, Action: specs.ActAllow,
			Args: []specs.LinuxSeccompArg{{Index: 1, Value: unix.F_GETFD, Op: specs.OpEqualTo}},
		}}}, unix.SYS_FCNTL, []uint64{3, unix.F_SETFD, 1}, false},
	} {
		f := mustCompile(t, &tc.s)
		if got := Allows(f.Program, tc.nr, tc.args...); got != tc.want {
			t.Errorf("%s: Allows = %v, want %v", tc.name, got, tc.want)
		}
	}
}
