// Package kernfeat names the kernel features newer than containerfd's minimum
// (Linux 5.14) that the library uses when present, and lets tests switch each
// one off to exercise its fallback.
//
// CONTAINERFD_DISABLE holds a comma-separated list of feature names; a listed
// feature is treated as missing even where the kernel has it.
package kernfeat

import (
	"os"
	"strings"
)

// Feature names accepted in CONTAINERFD_DISABLE.
const (
	// ProcPidns is fsconfig(FSCONFIG_SET_FD, "pidns") for proc (Linux 6.18):
	// without it, /proc is mounted by init from inside the pid namespace.
	ProcPidns = "proc-pidns"
	// PidfsHandle is a file handle of a pidfd (pidfs, Linux 6.9): without it,
	// pid reuse is detected from the start time in /proc/<pid>/stat.
	PidfsHandle = "pidfs-handle"
	// CgroupKill is cgroup.kill (Linux 5.14): without it, a cgroup is frozen
	// and each of its processes signalled.
	CgroupKill = "cgroup-kill"
	// ExeBind is a read-only detached bind mount of our own binary used to run
	// the init stage: without it, a sealed memfd copy is used.
	ExeBind = "exe-bind"
	// MemfdExec is executing a memfd (refused with vm.memfd_noexec=2): a
	// directly started child execs the program through a trampoline in a
	// sealed memfd, so that /proc/self/exe never leads to the runtime's
	// binary. Without it, processes start through the stage, and the stage
	// runs from a read-only bind of the binary.
	MemfdExec = "memfd-exec"
)

// EnvDisable is the environment variable read by Disabled.
const EnvDisable = "CONTAINERFD_DISABLE"

// Disabled reports whether feature was switched off in CONTAINERFD_DISABLE.
// The environment is read on every call (it is cheap), so that tests can
// switch a feature off and on with t.Setenv.
func Disabled(feature string) bool {
	for _, f := range strings.Split(os.Getenv(EnvDisable), ",") {
		if f = strings.TrimSpace(f); f != "" && f == feature {
			return true
		}
	}
	return false
}
