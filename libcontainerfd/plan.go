package libcontainerfd

import (
	"fmt"
	"path"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/containerfd/containerfd/libcontainerfd/idmap"
	"github.com/containerfd/containerfd/libcontainerfd/internal/msg"
	"github.com/containerfd/containerfd/libcontainerfd/internal/rootfs"
	"github.com/containerfd/containerfd/libcontainerfd/nsenter"
	"github.com/containerfd/containerfd/libcontainerfd/pathrs"

	"github.com/containerfd/containerfd/libcontainerfd/cgroups"
	"github.com/containerfd/containerfd/libcontainerfd/mounttree"
	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// expandMounts turns the config's mounts and devices into what init
// attaches and creates: a "cgroup" mount becomes the container's own cgroup
// hierarchy, and inside a user namespace or rootless, where mknod is not allowed,
// devices become binds of the host's nodes.
func (c *Container) expandMounts() ([]mounttree.Mount, []specs.LinuxDevice, []rootfs.Link) {
	cfg := c.cfg
	var (
		ms    []mounttree.Mount
		links []rootfs.Link
	)
	for _, m := range cfg.Mounts {
		if m.Type != "cgroup" {
			ms = append(ms, m)
			continue
		}
		cms, cls := c.cgroupMounts(m)
		ms, links = append(ms, cms...), append(links, cls...)
	}
	// A bind is a clone of its source, and a clone of a shared mount (a
	// systemd host's, dockerd's data root) joins its peer group: a mount
	// then made on it in the container, by the runtime or by a process,
	// would show on the host. Binds start as the root does (rootfs.Setup);
	// one that asks to be shared is, with runc, a peer of the host's only
	// under an rshared root (Kubernetes' Bidirectional), and else a slave
	// of it with a peer group of its own.
	for i := range ms {
		switch {
		case ms[i].Type != "bind":
		case ms[i].Propagation == 0:
			ms[i].Propagation = rootfs.StartPropagation(cfg.RootPropagation)
		case ms[i].Propagation == unix.MS_SHARED && cfg.RootPropagation != unix.MS_SHARED:
			ms[i].PropagationFirst = rootfs.StartPropagation(cfg.RootPropagation)
		}
	}
	userns := c.st.Namespaces&unix.CLONE_NEWUSER != 0
	if !userns && !cfg.Rootless {
		return ms, cfg.Devices, links
	}
	if userns && !cfg.buildInside() { // else init makes them inside, where ids need no mapping
		for i := range ms {
			ms[i] = mapOwner(ms[i], cfg.UIDMappings, cfg.GIDMappings)
		}
	}
	// runc binds inside the user namespace, where the kernel locks the
	// flags the source has; the runtime binds outside it (or, rootless,
	// inside, where the kernel does the same), and keeps them as runc.
	for i := range ms {
		if userns && ms[i].Type == "bind" {
			ms[i].Locked = true
		}
	}
	// A plain bind, as runc's: the host node's mount flags as they are.
	for _, d := range cfg.Devices {
		ms = append(ms, mounttree.Mount{Type: "bind", Source: d.Path, Target: d.Path, KeepAtime: true})
	}
	return ms, nil, links
}

// mapOwner gives a filesystem that we make outside a user namespace the
// owner the container expects: its uid= and gid= options are ids inside the
// container, so they are mapped to the host's, and a tmpfs without them is
// owned by the container's root, not the host's.
func mapOwner(m mounttree.Mount, uids, gids idmap.Map) mounttree.Mount {
	if m.Type != "tmpfs" && m.Type != "devpts" {
		return m
	}
	data := make([]string, 0, len(m.Data)+2)
	seen := map[string]bool{}
	for _, o := range m.Data {
		k, v, ok := strings.Cut(o, "=")
		maps := uids
		if k == "gid" {
			maps = gids
		}
		if ok && (k == "uid" || k == "gid") {
			if id, err := strconv.ParseUint(v, 10, 32); err == nil {
				if h, ok := maps.ToHost(uint32(id)); ok {
					o = k + "=" + strconv.FormatUint(uint64(h), 10)
				}
			}
			seen[k] = true
		}
		data = append(data, o)
	}
	if m.Type == "tmpfs" {
		for k, maps := range map[string]idmap.Map{"uid": uids, "gid": gids} {
			if h, ok := maps.ToHost(0); ok && !seen[k] {
				data = append(data, k+"="+strconv.FormatUint(uint64(h), 10))
			}
		}
	}
	m.Data = data
	return m
}

// cgroupMounts is what a "cgroup" mount means here: with cgroup2 alone (a
// pure cgroup2 host, or a rootless cgroup in a delegated subtree), with a
// cgroup namespace, a cgroup2 mount (its root is the
// container's cgroup), and without one, a bind of the container's own
// cgroup2 directory. On a v1 or hybrid host, as runc does, a tmpfs with
// the container's own directory of each v1 hierarchy bound below it, named
// as the hierarchy (controllers mounted together, "cpu,cpuacct", get a
// link per controller); a hybrid host's cgroup2, which holds no
// controllers, is not shown, so programs read their limits where v1 puts
// them (/sys/fs/cgroup/memory/memory.limit_in_bytes).
func (c *Container) cgroupMounts(m mounttree.Mount) ([]mounttree.Mount, []rootfs.Link) {
	cg := c.Cgroup()
	if cg == nil {
		// No cgroup of its own (rootless): with a cgroup namespace, cgroup2
		// shows the caller's cgroup as its root; without one, the host's
		// hierarchy is bound, read-only whatever the config says
		// (CVE-2023-25809).
		if c.cfg.newNS(unix.CLONE_NEWCGROUP) {
			m.Type = "cgroup2"
			return []mounttree.Mount{m}, nil
		}
		m.Type, m.Source, m.Recursive = "bind", "/sys/fs/cgroup", true
		m.Attr |= unix.MOUNT_ATTR_RDONLY
		m.RecAttr |= unix.MOUNT_ATTR_RDONLY
		m.RecClearAttr &^= unix.MOUNT_ATTR_RDONLY
		return []mounttree.Mount{m}, nil
	}
	paths := cg.Paths()
	if dir, ok := paths[cgroups.KeyUnified]; ok && len(paths) == 1 {
		if c.cfg.newNS(unix.CLONE_NEWCGROUP) {
			m.Type = "cgroup2"
			return []mounttree.Mount{m}, nil
		}
		m.Type, m.Source = "bind", dir
		return []mounttree.Mount{m}, nil
	}
	tmpfs := m
	tmpfs.Type, tmpfs.Source, tmpfs.Data = "tmpfs", "tmpfs", []string{"mode=755"}
	// runc's tmpfs is writable whatever the config says; the hierarchies
	// below it take the config's flags.
	tmpfs.Attr &^= unix.MOUNT_ATTR_RDONLY
	ms := []mounttree.Mount{tmpfs}
	byDir := map[string][]string{}
	for ctrl, dir := range paths {
		if ctrl != cgroups.KeyUnified {
			byDir[dir] = append(byDir[dir], strings.TrimPrefix(ctrl, "name="))
		}
	}
	var links []rootfs.Link
	// In the order of the host's mount table, as runc binds them.
	for _, dir := range cg.V1Dirs() {
		ctrls := byDir[dir]
		sort.Strings(ctrls)
		name := strings.Join(ctrls, ",")
		ms = append(ms, mounttree.Mount{Type: "bind", Source: dir, Target: path.Join(m.Target, name),
			Attr: m.Attr, ClearAttr: m.ClearAttr, Propagation: m.Propagation})
		if ctrls := strings.Split(name, ","); len(ctrls) > 1 {
			for _, ctrl := range ctrls {
				links = append(links, rootfs.Link{Path: path.Join(m.Target, ctrl), Target: name})
			}
		}
	}
	return ms, links
}

// initMessage is init's orders for ForkInit of a process pc: with
// NewEmptyFS, the plan of its root (rootPlan), whose trees openPlan opens
// here unless init must (rootless); its names; and what a rootless init
// does itself in its namespaces.
func (c *Container) initMessage(pc *msg.Process) msg.Init {
	cfg := c.cfg
	ic := msg.Init{WaitBeforePivot: cfg.BeforePivot != nil, Process: *pc}
	if cfg.newNS(unix.CLONE_NEWUTS) || cfg.Hostname != "" {
		if cfg.Hostname != "" {
			ic.Hostname = &cfg.Hostname
		}
		if cfg.Domainname != "" {
			ic.Domainname = &cfg.Domainname
		}
	}
	if cfg.buildInside() {
		ic.LoopbackUp = cfg.newNS(unix.CLONE_NEWNET)
		ic.Sysctl = cfg.Sysctl
	}
	if cfg.Flags&NewEmptyFS != 0 {
		plan := c.rootPlan()
		if !cfg.EmptyRoot { // filled after create: the cwd comes with it
			plan.Cwd = pc.Cwd
		}
		plan.Console = pc.Terminal
		ic.Root = &plan
		ic.LateLookup = cfg.EmptyRoot
	}
	return ic
}

// rootPlan is the container's root file system: its rootfs (or, with
// EmptyRoot, a tmpfs to fill from outside after create, which takes no
// mount, mask nor link), every mount, device and link of the config, the
// masked and read-only paths. A rootless runtime cannot build mounts (see
// rootless.go): init opens them all itself then (Plan.Inside).
func (c *Container) rootPlan() rootfs.Plan {
	cfg := c.cfg
	p := rootfs.Plan{
		Root:         mounttree.Mount{Type: "bind", Source: cfg.Rootfs, Target: "/", Recursive: true, KeepAtime: true},
		RootReadonly: cfg.RootReadonly && !cfg.EmptyRoot, // an empty root must take mount points
		Propagation:  cfg.RootPropagation,
		NoPivot:      cfg.NoPivot,
		Inside:       cfg.buildInside(),
	}
	if cfg.EmptyRoot {
		p.Root = mounttree.Mount{Type: "tmpfs", Source: "containerfd", Target: "/", Data: []string{"mode=755"}}
		// Made inside the user namespace, it is its root's already.
		if c.st.Namespaces&unix.CLONE_NEWUSER != 0 && !p.Inside {
			p.Root = mapOwner(p.Root, cfg.UIDMappings, cfg.GIDMappings)
		}
		return p
	}
	if c.st.Namespaces&unix.CLONE_NEWUSER != 0 && !p.Inside {
		uid, uok := cfg.UIDMappings.ToHost(0)
		gid, gok := cfg.GIDMappings.ToHost(0)
		if uok && gok {
			p.Owner = &rootfs.Owner{UID: int(uid), GID: int(gid)}
		}
	}
	ms, devices, links := c.expandMounts()
	rootfsFD := -1
	defer func() {
		if rootfsFD >= 0 {
			unix.Close(rootfsFD)
		}
	}()
	p.Links = links
	for _, l := range cfg.Links {
		p.Links = append(p.Links, rootfs.Link{Path: l.Path, Target: l.Target})
	}
	p.Masked, p.Readonly = cfg.MaskedPaths, cfg.ReadonlyPaths
	for _, m := range ms {
		// A destination given as a host path under root.path is that place
		// in the root, as runc strips the root from it.
		if rel, ok := strings.CutPrefix(path.Clean(m.Target), path.Clean(cfg.Rootfs)+"/"); ok {
			m.Target = "/" + rel
		}
		if m.Type == "tmpfs" && !covered(p.Mounts, m.Target) {
			m.Data = inheritMode(&rootfsFD, cfg.Rootfs, m)
		}
		pm := rootfs.Mount{Mount: m}
		// A bind from under root.path: runc binds it after the mounts
		// before it, which may have made it (an idmapped one takes the
		// user namespace the runtime opens for it; a rootless init, which
		// opens every mount itself before any is attached, cannot).
		if rel, ok := strings.CutPrefix(path.Clean(m.Source), path.Clean(cfg.Rootfs)+"/"); ok && m.Type == "bind" && (!m.IDMap || !p.Inside) {
			pm.Source, pm.InRoot = "/"+rel, true
		}
		p.Mounts = append(p.Mounts, pm)
	}
	p.Devices = devices
	if p.Inside {
		// Not to be made (they are binds among the mounts): to name them
		// in errors.
		p.Devices = cfg.Devices
	}
	return p
}

// openPlan opens p's trees here (rootfs.Open), in init's namespaces; a
// rootless init opens them itself. sysfs, mqueue and cgroup2 belong to
// the namespaces of the thread that makes them: one thread joins them all
// (planNamespaces), rather than one per mount, unless joined says the
// calling thread has already; and a mount namespace the container joins,
// where paths are resolved.
func (c *Container) openPlan(pid int, p *rootfs.Plan, joined bool) (*rootfs.FDs, error) {
	if p.Inside {
		return rootfs.NoFDs(p), nil
	}
	ns, closeNS, err := c.nsFDs(pid)
	if err != nil {
		return nil, err
	}
	defer closeNS()
	userns := func(m mounttree.Mount) (int, error) { return usernsFD(m.UIDMappings, m.GIDMappings) }
	var f *rootfs.FDs
	open := func() (err error) {
		f, err = rootfs.Open(p, ns, userns)
		return err
	}
	join := c.planNamespaces()
	if c.cfg.joinsNS(unix.CLONE_NEWNS) {
		// Sources resolve in the mount namespace the container joins, as
		// runc's init resolves them there.
		join |= unix.CLONE_NEWNS
	}
	switch {
	case joined && join&unix.CLONE_NEWNS == 0:
		ns.Net, ns.IPC, ns.Cgroup = -1, -1, -1
		err = open()
	case join != 0:
		ns.Net, ns.IPC, ns.Cgroup = -1, -1, -1
		err = nsenter.Do([]nsenter.Namespace{{FD: c.initPidfd, Type: join}}, open)
	default:
		err = open()
	}
	if err != nil {
		return nil, fmt.Errorf("container %s: %w", c.id, err)
	}
	return f, nil
}

// planNamespaces are init's namespaces that openPlan's mounts belong to.
func (c *Container) planNamespaces() int {
	return c.st.Namespaces & (unix.CLONE_NEWNET | unix.CLONE_NEWIPC | unix.CLONE_NEWCGROUP)
}

// sendInit sends a stage's init its orders and fds: the start listener
// first (init takes it before building its root), then the root plan's,
// opened here.
func (c *Container) sendInit(sock, pid int, pc *msg.Process) error {
	ic := c.initMessage(pc)
	var fds []int
	if ic.Root != nil {
		if c.st.Namespaces&unix.CLONE_NEWUSER != 0 {
			// The stage, root only of the container's user namespace,
			// cannot make an idmapped mount: the runtime opens those
			// binds here, from the rootfs as it is before any mount.
			ic.Root.IDMapOutside()
		}
		f, err := c.openPlan(pid, ic.Root, false)
		if err != nil {
			return err
		}
		defer f.Close()
		fds = f.List()
		if c.sharesMountNS() {
			root, err := c.setupHostRoot(pid, ic.Root, f)
			if err != nil {
				return err
			}
			defer unix.Close(root)
			ic.Root, ic.Chroot, ic.WaitBeforePivot, fds = nil, true, false, []int{root}
		}
	}
	listener, err := c.listenStart()
	if err != nil {
		return err
	}
	defer unix.Close(listener)
	ic.FDs = 1 + len(fds)
	if err := msg.SendJSON(sock, &ic); err != nil {
		return fmt.Errorf("container %s: send init config: %w", c.id, err)
	}
	if err := msg.SendFDs(sock, append([]int{listener}, fds...)); err != nil {
		return fmt.Errorf("container %s: send fds to init: %w", c.id, err)
	}
	return nil
}

// covered reports whether a mount of ms is at target or above it: what is
// at target then is that mount's, not the rootfs's.
func covered(ms []rootfs.Mount, target string) bool {
	for _, m := range ms {
		if t := path.Clean(m.Target); t == "/" || t == target || strings.HasPrefix(target, t+"/") {
			return true
		}
	}
	return false
}

// inheritMode gives a tmpfs without mode= the mode of the rootfs's
// directory it covers, as an option, as runc passes it (mountinfo shows
// it); the executor chmods its root where the directory is not there yet.
// *root is the rootfs, opened on first use.
func inheritMode(root *int, rootfsPath string, m mounttree.Mount) []string {
	if slices.ContainsFunc(m.Data, func(o string) bool { return strings.HasPrefix(o, "mode=") }) {
		return m.Data
	}
	if *root < 0 {
		fd, err := unix.Open(rootfsPath, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			return m.Data
		}
		*root = fd
	}
	dir, err := pathrs.OpenInRoot(*root, m.Target, unix.O_PATH|unix.O_DIRECTORY, 0)
	if err != nil {
		return m.Data
	}
	defer unix.Close(dir)
	var st unix.Stat_t
	if unix.Fstat(dir, &st) != nil {
		return m.Data
	}
	return append(slices.Clip(m.Data), fmt.Sprintf("mode=%o", st.Mode&0o7777))
}
