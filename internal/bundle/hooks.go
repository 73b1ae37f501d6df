package bundle

import (
	"os"
	"os/exec"
	"strconv"
	"strings"

	"github.com/containerfd/containerfd/hooks"
	cfd "github.com/containerfd/containerfd/libcontainerfd"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// runCreateHooks runs, while init waits before pivot_root, the prestart and
// createRuntime hooks (on the host) and the createContainer hooks (in the
// container's namespaces, program found on the host).
func runCreateHooks(ctr *cfd.Container, h *specs.Hooks, pid int) error {
	if h == nil {
		return nil
	}
	st, err := hookState(ctr, specs.StateCreating, pid)
	if err != nil {
		return err
	}
	for _, k := range []hooks.Kind{hooks.Prestart, hooks.CreateRuntime, hooks.CreateContainer} {
		if err := runHooks(ctr, k, h, st, cfd.PathOnHost); err != nil {
			return err
		}
	}
	return nil
}

// runStartHooks runs the startContainer hooks: in the container's
// namespaces, program found in the container.
func runStartHooks(ctr *cfd.Container) error {
	h, err := savedHooks(ctr)
	if err != nil || h == nil || len(h.StartContainer) == 0 {
		return err
	}
	st, err := hookState(ctr, specs.StateCreated, ctr.InitPid())
	if err != nil {
		return err
	}
	// A hook without an env of its own gets the process's, as runc runs
	// it in init, whose environment that is by then.
	if p, err := Process(ctr); err == nil && p != nil {
		for i := range h.StartContainer {
			if hk := &h.StartContainer[i]; hk.Env == nil {
				if hk.Env, err = ctr.ProcessEnv(p.Env, p.User.UID); err != nil {
					return err
				}
			}
		}
	}
	return runHooks(ctr, hooks.StartContainer, h, st, cfd.PathInContainer)
}

func runPoststartHooks(ctr *cfd.Container) error {
	h, err := savedHooks(ctr)
	if err != nil || h == nil || len(h.Poststart) == 0 {
		return err
	}
	st, err := hookState(ctr, specs.StateRunning, ctr.InitPid())
	if err != nil {
		return err
	}
	return runHooks(ctr, hooks.Poststart, h, st, "")
}

// runPoststopHooks runs the poststop hooks.
func runPoststopHooks(ctr *cfd.Container) error {
	h, err := savedHooks(ctr)
	if err != nil || h == nil || len(h.Poststop) == 0 {
		return err
	}
	st, err := hookState(ctr, specs.StateStopped, 0)
	if err != nil {
		return err
	}
	return runHooks(ctr, hooks.Poststop, h, st, "")
}

func runHooks(ctr *cfd.Container, k hooks.Kind, h *specs.Hooks, st *specs.State, where string) error {
	list := k.From(h)
	if len(list) == 0 {
		return nil
	}
	var prepare hooks.Prepare
	if k.ContainerNamespace() {
		prepare = func(cmd *exec.Cmd) error { return ctr.Enter(cmd, where) }
		if k == hooks.StartContainer {
			// In the container's seccomp filter, as runc runs it.
			prepare = func(cmd *exec.Cmd) error { return ctr.EnterFiltered(cmd, where) }
		}
		// The state's pid is as the container sees it.
		nsst := *st
		nsst.Pid = nsPid(st.Pid)
		st = &nsst
	}
	return hooks.RunIn(k, list, st, prepare)
}

func hookState(ctr *cfd.Container, status specs.ContainerState, pid int) (*specs.State, error) {
	s, err := StateOf(ctr)
	if err != nil {
		return nil, err
	}
	st := s.State
	st.Status, st.Pid = status, pid
	return &st, nil
}

// nsPid is pid as its own (innermost) pid namespace sees it, from the NSpid
// line of /proc/<pid>/status.
func nsPid(pid int) int {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return pid
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "NSpid:"); ok {
			f := strings.Fields(v)
			if n, err := strconv.Atoi(f[len(f)-1]); err == nil {
				return n
			}
		}
	}
	return pid
}
