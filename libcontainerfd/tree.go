package libcontainerfd

import (
	"fmt"
	"path"
	"sort"
	"strconv"
	"strings"

	"github.com/containerfd/containerfd/libcontainerfd/cgroups"
	"github.com/containerfd/containerfd/libcontainerfd/mounttree"
	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// expandMounts turns the config's mounts and devices into what init
// attaches and creates: a "cgroup" mount becomes the container's own cgroup
// hierarchy, and inside a user namespace or rootless, where mknod is not allowed,
// devices become binds of the host's nodes.
func (c *Container) expandMounts() ([]mounttree.Mount, []specs.LinuxDevice) {
	cfg := c.cfg
	var ms []mounttree.Mount
	for _, m := range cfg.Mounts {
		if m.Type != "cgroup" {
			ms = append(ms, m)
			continue
		}
		ms = append(ms, c.cgroupMounts(m)...)
	}
	// A bind is a clone of its source, and a clone of a shared mount (a
	// systemd host's, dockerd's data root) joins its peer group: a mount
	// then made on it in the container, by the runtime or by a process,
	// would show on the host. Binds start as the root does (setupRoot).
	for i := range ms {
		if ms[i].Type == "bind" && ms[i].Propagation == 0 {
			ms[i].Propagation = startPropagation(cfg.RootPropagation)
		}
	}
	userns := c.st.Namespaces&unix.CLONE_NEWUSER != 0
	if !userns && !cfg.Rootless {
		return ms, cfg.Devices
	}
	if userns && !cfg.buildInside() { // else init makes them inside, where ids need no mapping
		for i := range ms {
			ms[i] = mapOwner(ms[i], cfg.UIDMappings, cfg.GIDMappings)
		}
	}
	for _, d := range cfg.Devices {
		ms = append(ms, mounttree.Mount{Type: "bind", Source: d.Path, Target: d.Path,
			Attr: unix.MOUNT_ATTR_NOSUID | unix.MOUNT_ATTR_NOEXEC})
	}
	return ms, nil
}

// mapOwner gives a filesystem that we make outside a user namespace the
// owner the container expects: its uid= and gid= options are ids inside the
// container, so they are mapped to the host's, and a tmpfs without them is
// owned by the container's root, not the host's.
func mapOwner(m mounttree.Mount, uids, gids []IDMap) mounttree.Mount {
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
				if h, ok := hostID(maps, uint32(id)); ok {
					o = k + "=" + strconv.FormatUint(uint64(h), 10)
				}
			}
			seen[k] = true
		}
		data = append(data, o)
	}
	if m.Type == "tmpfs" {
		for k, maps := range map[string][]IDMap{"uid": uids, "gid": gids} {
			if h, ok := hostID(maps, 0); ok && !seen[k] {
				data = append(data, k+"="+strconv.FormatUint(uint64(h), 10))
			}
		}
	}
	m.Data = data
	return m
}

// hostID maps id inside a user namespace to the host.
func hostID(maps []IDMap, id uint32) (uint32, bool) {
	for _, m := range maps {
		if id >= m.ContainerID && id-m.ContainerID < m.Size {
			return m.HostID + id - m.ContainerID, true
		}
	}
	return 0, false
}

// cgroupMounts is what a "cgroup" mount means here: with a cgroup namespace
// and cgroup2, a cgroup2 mount (its root is the container's cgroup); without
// a namespace, a bind of the container's own cgroup2 directory; with cgroup
// v1 only, a tmpfs with a bind of the container's directory per controller.
func (c *Container) cgroupMounts(m mounttree.Mount) []mounttree.Mount {
	cg := c.Cgroup()
	if cg == nil {
		// No cgroup of its own (rootless): with a cgroup namespace, cgroup2
		// shows the caller's cgroup as its root; without one, the host's
		// hierarchy is bound, read-only whatever the config says
		// (CVE-2023-25809).
		if c.cfg.newNS(unix.CLONE_NEWCGROUP) {
			m.Type = "cgroup2"
			return []mounttree.Mount{m}
		}
		m.Type, m.Source, m.Recursive = "bind", "/sys/fs/cgroup", true
		m.Attr |= unix.MOUNT_ATTR_RDONLY
		return []mounttree.Mount{m}
	}
	paths := cg.Paths()
	if dir, ok := paths[cgroups.KeyUnified]; ok {
		if c.cfg.newNS(unix.CLONE_NEWCGROUP) {
			m.Type = "cgroup2"
			return []mounttree.Mount{m}
		}
		m.Type, m.Source = "bind", dir
		return []mounttree.Mount{m}
	}
	tmpfs := m
	tmpfs.Type, tmpfs.Source, tmpfs.Data = "tmpfs", "tmpfs", []string{"mode=755"}
	tmpfs.Attr &^= unix.MOUNT_ATTR_RDONLY // binds go in first; see below
	ms := []mounttree.Mount{tmpfs}
	ctrls := make([]string, 0, len(paths))
	for ctrl := range paths {
		ctrls = append(ctrls, ctrl)
	}
	sort.Strings(ctrls)
	for _, ctrl := range ctrls {
		name := strings.TrimPrefix(ctrl, "name=")
		ms = append(ms, mounttree.Mount{Type: "bind", Source: paths[ctrl], Target: path.Join(m.Target, name), Attr: m.Attr})
	}
	return ms
}

// devNull returns a detached bind of the host's /dev/null, checked to be
// the null device, to mask paths with (CVE-2025-31133).
func devNull() (int, error) {
	src, err := unix.Open("/dev/null", unix.O_PATH|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, err
	}
	defer unix.Close(src)
	var st unix.Stat_t
	if err := unix.Fstat(src, &st); err != nil {
		return -1, err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFCHR || unix.Major(st.Rdev) != 1 || unix.Minor(st.Rdev) != 3 {
		return -1, fmt.Errorf("/dev/null is not the null device")
	}
	return mounttree.OpenBindFD(src, mounttree.Mount{Type: "bind", Source: "/dev/null", Target: "/dev/null"})
}
