package libcontainerfd

import (
	"errors"
	"fmt"
	"os"
	"strconv"

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
		c.goWithoutCgroup(errors.New("no cgroup path"))
		return
	}
	p, err := cgroups.ResolveUnified(c.cfg.Cgroup)
	if err != nil {
		c.goWithoutCgroup(err)
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
		if errors.Is(err, cgroups.ErrInUse) {
			c.st.Cgroup = nil // someone else's: not ours to remove
			return fmt.Errorf("create cgroup: %w", err)
		}
		if err == nil {
			if err = cg.Delegated(); err != nil {
				cgroups.Remove(cg.Paths().Without(cg.Existed()))
				cg.Close()
			}
		}
		if err != nil && !isPermission(err) {
			return fmt.Errorf("create cgroup: %w", err)
		}
		if err != nil {
			c.goWithoutCgroup(err)
		} else {
			c.cgroup = &cgroupOwn{c: c, cg: cg}
			if err := c.recordExisted(cg.Existed()); err != nil {
				return err
			}
		}
	}
	cg := c.cgroup.own()
	if cg == nil {
		if what := limits(c.cfg.Resources); what != "" {
			return fmt.Errorf("linux.resources.%s: cannot be enforced without a cgroup, and this rootless container has none (%v)", what, c.cgroup.skipped())
		}
		return c.Save()
	}
	if c.cfg.Resources != nil {
		// Device access is bounded by the user namespace: nodes can only
		// be bound from the host, with the host's permissions. A device
		// program on cgroup2 would need CAP_SYS_ADMIN for bpf(2).
		r := *c.cfg.Resources
		r.Devices = nil
		if err := cg.Set(&r); err != nil {
			return err
		}
	}
	return nil
}

// CgroupSkipped says why a rootless container runs without a cgroup; nil
// if it has one (or is not rootless).
func (c *Container) CgroupSkipped() error { return c.cgroup.skipped() }

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
