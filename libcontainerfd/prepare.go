package libcontainerfd

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/containerfd/containerfd/libcontainerfd/caps"
	"github.com/containerfd/containerfd/libcontainerfd/internal/msg"
	"github.com/containerfd/containerfd/libcontainerfd/internal/spawn"

	"github.com/containerfd/containerfd/libcontainerfd/internal/procfs"
	"github.com/containerfd/containerfd/libcontainerfd/lsm"
	"github.com/containerfd/containerfd/libcontainerfd/nsenter"
	"github.com/containerfd/containerfd/libcontainerfd/rlimit"
	"github.com/containerfd/containerfd/libcontainerfd/seccomp"
	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// prepare sets, from outside, what a stage cannot change for itself once it
// runs as the container's user: its rlimits and OOM score.
func (c *Container) prepare(pid int, p *Process) error {
	return c.prepareBut(pid, p, -1)
}

// prepareBut is prepare without the rlimit of resource later (-1: none),
// for setRlimit to set later.
func (c *Container) prepareBut(pid int, p *Process, later int) error {
	if err := c.applyRlimits(pid, p, func(l rlimit.Limit) bool { return l.Resource != later }); err != nil {
		return err
	}
	if p.CPUAffinity != nil {
		if err := setAffinity(pid, p.CPUAffinity.Initial); err != nil {
			return fmt.Errorf("container %s: %w", c.id, err)
		}
	}
	if p.OOMScoreAdj != nil {
		if c.st.Rootless {
			if err := checkOOMScoreAdj(*p.OOMScoreAdj); err != nil {
				return fmt.Errorf("container %s: %w", c.id, err)
			}
		}
		path := "/proc/" + strconv.Itoa(pid) + "/oom_score_adj"
		if err := procfs.WriteFile(path, []byte(strconv.Itoa(*p.OOMScoreAdj))); err != nil {
			return fmt.Errorf("container %s: set oom_score_adj to %d: %w", c.id, *p.OOMScoreAdj, err)
		}
	}
	return nil
}

// setRlimit sets p's rlimit of resource, if p has one, on pid.
func (c *Container) setRlimit(pid int, p *Process, resource int) error {
	return c.applyRlimits(pid, p, func(l rlimit.Limit) bool { return l.Resource == resource })
}

func (c *Container) applyRlimits(pid int, p *Process, keep func(rlimit.Limit) bool) error {
	if len(p.Rlimits) == 0 {
		return nil
	}
	ls, err := rlimit.Parse(p.Rlimits)
	if err != nil {
		return fmt.Errorf("container %s: %w", c.id, err)
	}
	if err := rlimit.Apply(pid, slices.DeleteFunc(ls, func(l rlimit.Limit) bool { return !keep(l) })); err != nil {
		return fmt.Errorf("container %s: %w", c.id, err)
	}
	return nil
}

// processConfig is p as its stage gets it (and its identity steps, as a
// direct child takes them): the container's seccomp filter compiled, its
// memory policy and p's final CPUs parsed, here, where a bad profile is an
// error of the caller's.
func (c *Container) processConfig(p *Process) (msg.Process, error) {
	pc := msg.Process{
		Args: p.Args, Env: dedupEnv(p.Env), Cwd: p.Cwd, UID: p.UID, GID: p.GID,
		Groups: p.AdditionalGids, Umask: p.Umask, NNP: p.NoNewPrivileges,
		Capabilities: p.Capabilities, Terminal: p.Terminal, ConsoleSize: p.ConsoleSize,
		ClearONLCR:      p.ClearONLCR,
		KeepNofile:      hasNofile(p.Rlimits),
		Scheduler:       p.Scheduler,
		IOPriority:      p.IOPriority,
		AppArmorProfile: p.AppArmorProfile,
		SELinuxLabel:    p.SELinuxLabel,
		Files:           3 + len(p.ExtraFiles),
	}
	// Here, where /sys is the host's: the stage inside sees no securityfs.
	for _, l := range []struct{ lsm, label string }{{lsm.AppArmor, p.AppArmorProfile}, {lsm.SELinux, p.SELinuxLabel}} {
		if l.label == "" {
			continue
		}
		if err := lsm.Check(l.lsm); err != nil {
			return pc, fmt.Errorf("container %s: %s label %q: %w", c.id, l.lsm, l.label, err)
		}
	}
	// In the runtime's user namespace a capability the runtime lacks fails
	// the capset at start: refuse it here, naming it, where runc fails its
	// create.
	if c.st.Namespaces&unix.CLONE_NEWUSER == 0 {
		cs, err := caps.Parse(p.Capabilities)
		if err == nil {
			err = cs.CheckHeld()
		}
		if err != nil {
			return pc, fmt.Errorf("container %s: process.capabilities: %w", c.id, err)
		}
	}
	pc.Personality = c.st.Personality
	if mp := c.st.MemoryPolicy; mp != nil {
		pc.MemPolicy = &spawn.MemPolicy{Mode: mp.Mode}
		if mp.Nodes != "" {
			nodes, err := ParseNodeList(mp.Nodes)
			if err != nil {
				return pc, fmt.Errorf("container %s: memory policy nodes %q: %w", c.id, mp.Nodes, err)
			}
			pc.MemPolicy.Nodes = nodes
		}
	}
	// As runc (1.2 and later): the caller's own pinning must not reach the
	// process, unless the process is pinned itself.
	pc.AllCPUs = p.CPUAffinity == nil || *p.CPUAffinity == CPUAffinity{}
	if p.CPUAffinity != nil && p.CPUAffinity.Final != "" {
		set, err := ParseCPUList(p.CPUAffinity.Final)
		if err != nil {
			return pc, fmt.Errorf("container %s: cpu affinity %q: %w", c.id, p.CPUAffinity.Final, err)
		}
		pc.FinalCPUs = set
	}
	if c.st.Seccomp == nil {
		return pc, nil
	}
	f, err := seccomp.Compile(c.st.Seccomp)
	if err != nil {
		return pc, fmt.Errorf("container %s: %w", c.id, err)
	}
	if f.NotifyRequested && c.st.Seccomp.ListenerPath == "" {
		return pc, fmt.Errorf("container %s: linux.seccomp: SCMP_ACT_NOTIFY needs a listenerPath", c.id)
	}
	pc.Seccomp = &msg.Seccomp{Program: f.Program, Flags: f.Flags}
	return pc, nil
}

// handOnNotify sends a process's seccomp notify fd to the profile's
// listenerPath, as runc does: one message on a stream socket, the
// ContainerProcessState as JSON with the fd attached (named "seccompFd").
func (c *Container) handOnNotify(fd, pid int) error {
	sc := c.st.Seccomp
	st := specs.ContainerProcessState{
		Version:  specs.Version,
		Fds:      []string{"seccompFd"},
		Pid:      pid,
		Metadata: sc.ListenerMetadata,
		State:    specs.State{Version: specs.Version, ID: c.id, Status: specs.StateCreating, Pid: c.st.Init.Pid},
	}
	if c.NotifyState != nil {
		st.State = c.NotifyState()
	}
	b, err := json.Marshal(&st)
	if err != nil {
		return err
	}
	conn, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("seccomp listener %s: %w", sc.ListenerPath, err)
	}
	defer unix.Close(conn)
	if err := unix.Connect(conn, &unix.SockaddrUnix{Name: sc.ListenerPath}); err != nil {
		// runc's words, which its users match, then the path.
		return fmt.Errorf("failed to connect with seccomp agent: listenerPath %s: %w", sc.ListenerPath, err)
	}
	if err := unix.Sendmsg(conn, b, unix.UnixRights(fd), nil, 0); err != nil {
		return fmt.Errorf("seccomp listener %s: %w", sc.ListenerPath, err)
	}
	return nil
}

// checkSysctl refuses sysctls the container may not set.
func (c *Container) checkSysctl() error {
	for key := range c.cfg.Sysctl {
		ns := sysctlNamespace(key)
		if ns == 0 {
			return fmt.Errorf("container %s: sysctl %q is not namespaced", c.id, key)
		}
		if c.st.Namespaces&ns == 0 {
			return fmt.Errorf("container %s: sysctl %q: the container shares the host's %s namespace", c.id, key, nsName(ns))
		}
	}
	return nil
}

// sysctlNamespace is the namespace a sysctl key belongs to, or 0 for keys
// that are not namespaced (which a container may not set).
func sysctlNamespace(key string) int {
	switch {
	case strings.HasPrefix(key, "net."):
		return unix.CLONE_NEWNET
	case strings.HasPrefix(key, "fs.mqueue."), strings.HasPrefix(key, "kernel.shm"),
		strings.HasPrefix(key, "kernel.msg"), key == "kernel.sem", key == "kernel.sem_next_id":
		return unix.CLONE_NEWIPC
	case key == "kernel.hostname", key == "kernel.domainname":
		return unix.CLONE_NEWUTS
	}
	return 0
}

// writeSysctl writes the config's sysctls from outside, on a thread that
// joined the namespace each one belongs to: /proc/sys/net and friends show
// the namespaces of the thread that opens them.
func (c *Container) writeSysctl() error {
	if err := c.checkSysctl(); err != nil {
		return err
	}
	for key, val := range c.cfg.Sysctl {
		ns := sysctlNamespace(key)
		path := "/proc/sys/" + strings.ReplaceAll(key, ".", "/")
		err := nsenter.Do([]nsenter.Namespace{{FD: c.initPidfd, Type: ns}}, func() error {
			return procfs.WriteFile(path, []byte(val))
		})
		if err != nil {
			return fmt.Errorf("container %s: sysctl %s=%s: %w", c.id, key, val, err)
		}
	}
	return nil
}

func hasNofile(rs []specs.POSIXRlimit) bool {
	for _, r := range rs {
		if r.Type == "RLIMIT_NOFILE" {
			return true
		}
	}
	return false
}

// dedupEnv keeps the last of each variable an environment sets, in the
// order of those last ones, as os/exec and runc do: a caller's override
// (exec -e, an engine's env after the image's) wins and is set once. An
// entry without "=" is kept as it is.
func dedupEnv(env []string) []string {
	if env == nil {
		return nil
	}
	out := make([]string, 0, len(env))
	seen := make(map[string]bool, len(env))
	for i := len(env) - 1; i >= 0; i-- {
		key, _, _ := strings.Cut(env[i], "=")
		if seen[key] {
			continue
		}
		seen[key] = true
		out = append(out, env[i])
	}
	slices.Reverse(out)
	return out
}
