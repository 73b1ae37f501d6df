package libcontainerfd

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"time"

	"github.com/containerfd/containerfd/libcontainerfd/cgroups"
	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// A rootless runtime (Config.Rootless) has no capability in the initial
// user namespace. The kernel still gives it every capability over the user
// namespace it creates for the container, and over the namespaces that one
// owns, but the new mount API (fsopen, fsmount, open_tree with
// OPEN_TREE_CLONE, move_mount) checks CAP_SYS_ADMIN over the *caller's*
// mount namespace, which belongs to the host, and a multithreaded Go
// process cannot setns into the container's user namespace to get it. So
// the tree cannot be built from outside: init, which is root in the
// container's user namespace and alone in its new mount namespace, opens
// the same mounts itself (rootfs.Plan.Inside) before it attaches them.
// What the runtime does from outside on a thread that joined a namespace
// (lo up, sysctls) needs CAP_SYS_ADMIN in the caller's own user namespace
// for setns, so init does it too. Exec joins the pid namespace in its child
// (spawn.Attr.Unprivileged), after the user namespace.

// buildInside says whether init must build the mount tree: the caller
// is not root even of its own user namespace, so it has no privilege over
// its mount namespace.
func (cfg *Config) buildInside() bool { return cfg.Rootless && os.Geteuid() != 0 }

// checkRootless refuses what a rootless container cannot have, saying why.
func checkRootless(cfg *Config) error {
	if !cfg.newNS(unix.CLONE_NEWUSER) && os.Geteuid() != 0 {
		return errors.New("rootless: a container made without privilege needs a new user namespace (linux.namespaces: user), which the caller owns")
	}
	if cfg.newNS(unix.CLONE_NEWUSER) && (len(cfg.UIDMappings) == 0 || len(cfg.GIDMappings) == 0) {
		return errors.New("rootless: the user namespace needs uid and gid mappings (linux.uidMappings, linux.gidMappings)")
	}
	if len(cfg.NetDevices) > 0 {
		return errors.New("rootless: linux.netDevices: moving a host interface needs CAP_NET_ADMIN in the initial user namespace")
	}
	if cfg.IntelRdt != nil {
		return errors.New("rootless: linux.intelRdt: resctrl groups are made and joined in /sys/fs/resctrl, which only root may write")
	}
	for _, m := range cfg.Mounts {
		if m.IDMap {
			return fmt.Errorf("rootless: mount on %s: an idmapped mount needs CAP_SYS_ADMIN in the user namespace of the filesystem (the host's)", m.Target)
		}
	}
	return nil
}

// resolveRootlessCgroup records the cgroup2 directory a rootless container
// will try to have, before it is made.
func (c *Container) resolveRootlessCgroup() {
	if c.cfg.Cgroup == "" {
		c.st.NoCgroup = true
		return
	}
	p, err := cgroups.ResolveUnified(c.cfg.Cgroup)
	if err != nil {
		c.st.NoCgroup = true
		c.cgroupSkipped = err
		return
	}
	c.st.Cgroup = p
}

// createRootlessCgroup makes the container's cgroup in a delegated cgroup2
// subtree, or goes without one when the caller has none there, unless the
// config asks for a limit, which could then not be enforced.
func (c *Container) createRootlessCgroup() error {
	if !c.st.NoCgroup {
		cg, err := cgroups.CreateUnified(c.cfg.Cgroup)
		if errors.Is(err, fs.ErrExist) {
			c.st.Cgroup = nil // someone else's: not ours to remove
			return fmt.Errorf("create cgroup: %w", err)
		}
		if err == nil {
			if err = cg.Delegated(); err != nil {
				cg.Destroy()
				cg.Close()
			}
		}
		if err != nil && !isPermission(err) {
			return fmt.Errorf("create cgroup: %w", err)
		}
		if err != nil {
			c.cgroupSkipped = err
			c.st.Cgroup, c.st.NoCgroup = nil, true
		} else {
			c.cg = cg
		}
	}
	if c.cg == nil {
		if c.cgroupSkipped == nil {
			c.cgroupSkipped = errors.New("no cgroup path")
		}
		if what := limits(c.cfg.Resources); what != "" {
			return fmt.Errorf("linux.resources.%s: cannot be enforced without a cgroup, and this rootless container has none (%v)", what, c.cgroupSkipped)
		}
		return c.Save()
	}
	if c.cfg.Resources != nil {
		// Device access is bounded by the user namespace: nodes can only
		// be bound from the host, with the host's permissions. A device
		// program on cgroup2 would need CAP_SYS_ADMIN for bpf(2).
		r := *c.cfg.Resources
		r.Devices = nil
		if err := c.cg.Set(&r); err != nil {
			return err
		}
	}
	return nil
}

// CgroupSkipped says why a rootless container runs without a cgroup; nil
// if it has one (or is not rootless).
func (c *Container) CgroupSkipped() error {
	if !c.st.NoCgroup {
		return nil
	}
	if c.cgroupSkipped == nil {
		return errors.New("no cgroup")
	}
	return c.cgroupSkipped
}

func isPermission(err error) bool {
	return errors.Is(err, unix.EACCES) || errors.Is(err, unix.EPERM) || errors.Is(err, unix.EROFS)
}

// limits names the first resource limit r asks for, or "".
func limits(r *specs.LinuxResources) string {
	switch {
	case r == nil:
		return ""
	case r.Memory != nil:
		return "memory"
	case r.CPU != nil:
		return "cpu"
	case r.Pids != nil:
		return "pids"
	case r.BlockIO != nil:
		return "blockIO"
	case len(r.HugepageLimits) > 0:
		return "hugepageLimits"
	case r.Network != nil:
		return "network"
	case len(r.Rdma) > 0:
		return "rdma"
	case len(r.Unified) > 0:
		return "unified"
	}
	return ""
}

func bytesTrim(b []byte) string {
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == ' ') {
		b = b[:len(b)-1]
	}
	return string(b)
}

// cgroupGone reports whether the container's cgroup was there and is no
// longer: a create or delete stopped halfway. A container made with no
// cgroup never had one.
func (c *Container) cgroupGone() bool { return c.cg == nil && !c.st.NoCgroup }

// needCgroup is the error of what only a cgroup can do.
func (c *Container) needCgroup() error {
	const why = "the container has no cgroup: it runs rootless without a delegated cgroup2 subtree"
	if c.cgroupSkipped != nil {
		return fmt.Errorf("%s (%v)", why, c.cgroupSkipped)
	}
	return errors.New(why)
}

// killAllNoCgroup kills a container without a cgroup: SIGKILL to init
// takes every process of its own pid namespace with it.
func (c *Container) killAllNoCgroup() error {
	if c.initPidfd < 0 {
		return nil
	}
	if c.st.Namespaces&unix.CLONE_NEWPID == 0 {
		return fmt.Errorf("container %s: kill all: %w, nor a pid namespace of its own, so its processes cannot be told from the caller's", c.id, c.needCgroup())
	}
	if err := unix.PidfdSendSignal(c.initPidfd, unix.SIGKILL, nil, 0); err != nil && err != unix.ESRCH {
		return fmt.Errorf("container %s: kill init: %w", c.id, err)
	}
	return nil
}

// waitInit waits for init to be gone (with a pid namespace of its own, the
// kernel kills the rest with it). A negative timeout waits for ever.
func (c *Container) waitInit(timeout time.Duration) error {
	if c.initPidfd < 0 {
		return nil
	}
	ms := -1
	if timeout >= 0 {
		ms = int(timeout / time.Millisecond)
	}
	deadline := time.Now().Add(timeout)
	for {
		n, err := unix.Poll([]unix.PollFd{{Fd: int32(c.initPidfd), Events: unix.POLLIN}}, ms)
		if err == unix.EINTR {
			if timeout >= 0 {
				ms = max(int(time.Until(deadline)/time.Millisecond), 0)
			}
			continue
		}
		if err != nil {
			return fmt.Errorf("container %s: wait: %w", c.id, err)
		}
		if n == 0 {
			return fmt.Errorf("container %s: wait for processes to exit: %w", c.id, errTimeout)
		}
		return nil
	}
}

// pidsNoCgroup lists the processes of a container without a cgroup: those
// in init's pid namespace, or init alone without one.
func (c *Container) pidsNoCgroup() ([]int, error) {
	if !c.initAlive() {
		return nil, nil
	}
	if c.st.Namespaces&unix.CLONE_NEWPID == 0 {
		return []int{c.st.Init.Pid}, nil
	}
	var want unix.Stat_t
	if err := unix.Stat("/proc/"+strconv.Itoa(c.st.Init.Pid)+"/ns/pid", &want); err != nil {
		return nil, fmt.Errorf("container %s: pids: %w", c.id, err)
	}
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil, fmt.Errorf("container %s: pids: %w", c.id, err)
	}
	var pids []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		var st unix.Stat_t
		if unix.Stat("/proc/"+e.Name()+"/ns/pid", &st) == nil && st.Ino == want.Ino && st.Dev == want.Dev {
			pids = append(pids, pid)
		}
	}
	return pids, nil
}

// checkOOMScoreAdj refuses an OOM score below the caller's: lowering it
// needs CAP_SYS_RESOURCE in the initial user namespace.
func checkOOMScoreAdj(v int) error {
	b, err := os.ReadFile("/proc/self/oom_score_adj")
	if err != nil {
		return fmt.Errorf("process.oomScoreAdj: %w", err)
	}
	own, err := strconv.Atoi(bytesTrim(b))
	if err != nil {
		return fmt.Errorf("process.oomScoreAdj: own oom_score_adj %q: %w", b, err)
	}
	if v < own {
		return fmt.Errorf("process.oomScoreAdj %d is below the caller's %d: lowering it needs CAP_SYS_RESOURCE in the initial user namespace, which a rootless runtime lacks", v, own)
	}
	return nil
}
