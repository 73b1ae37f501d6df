package cgroups

import (
	"fmt"
	"os"
	"sort"
	"strings"

	"github.com/containerfd/containerfd/internal/mountinfo"
)

// mountinfoPath is read to find the cgroup hierarchies; a variable so that
// tests can point it at a fixture.
var mountinfoPath = "/proc/self/mountinfo"

// mountEntry is one line of /proc/self/mountinfo, reduced to what we use.
type mountEntry struct {
	dev        string // major:minor of the superblock: one per hierarchy
	root       string // the hierarchy path mounted here
	mountpoint string
	fstype     string
	superOpts  []string
}

// hierarchy is one mounted cgroup hierarchy.
type hierarchy struct {
	mount string   // mount point, e.g. /sys/fs/cgroup/memory
	root  string   // the cgroup mounted there: "/" unless a subtree is mounted
	v2    bool     // cgroup2
	keys  []string // Paths keys it serves: "unified", or its v1 controllers
}

// layout is the set of hierarchies a mode uses.
type layout struct {
	mode Mode
	v2   *hierarchy  // nil in V1 mode
	v1   []hierarchy // in the mount table's order; empty in V2 mode
}

// all returns the hierarchies in the order Create visits them: v2 first.
func (l *layout) all() []hierarchy {
	var hs []hierarchy
	if l.v2 != nil {
		hs = append(hs, *l.v2)
	}
	return append(hs, l.v1...)
}

// readMountinfo parses the cgroup and cgroup2 lines of mountinfoPath, plus
// every other line (needed to tell which mounts are shadowed).
func readMountinfo() ([]mountEntry, error) {
	es, err := mountinfo.Read(mountinfoPath)
	if err != nil {
		return nil, fmt.Errorf("cgroups: read mount table: %w", err)
	}
	out := make([]mountEntry, len(es))
	for i, e := range es {
		out[i] = mountEntry{dev: e.Dev, root: e.Root, mountpoint: e.Mountpoint, fstype: e.FSType,
			superOpts: strings.Split(e.SuperOptions, ",")}
	}
	return out, nil
}

// v1Options are the cgroup v1 mount options that are not controllers.
var v1Options = map[string]bool{
	"rw": true, "ro": true, "noprefix": true, "clone_children": true,
	"xattr": true, "cpuset_v2_mode": true, "favordynmods": true,
	"nofavordynmods": true, "none": true, "all": true,
}

// v1Controllers returns the controller keys of a v1 mount from its super
// options: "cpu", "cpuacct", "name=systemd" and so on.
func v1Controllers(opts []string) []string {
	var cs []string
	for _, o := range opts {
		switch {
		case v1Options[o]:
		case strings.HasPrefix(o, "name="):
			cs = append(cs, o)
		case strings.Contains(o, "="): // release_agent=…
		default:
			cs = append(cs, o)
		}
	}
	sort.Strings(cs)
	return cs
}

// cgroupMounts returns the visible cgroup2 mounts and one visible mount per
// v1 hierarchy, in the order the mount table first lists each (the order
// runc binds them in a container). A mount point covered by a later mount
// is not visible.
func cgroupMounts() (v2 []hierarchy, v1 []hierarchy, err error) {
	ms, err := readMountinfo()
	if err != nil {
		return nil, nil, err
	}
	top := map[string]int{} // mount point -> index of its last (visible) entry
	for i, m := range ms {
		top[m.mountpoint] = i
	}
	v1ByDev := map[string]mountEntry{}
	var devs []string     // each hierarchy once, in the table's order
	var v2Sub []hierarchy // cgroup2 subtree mounts, used only if nothing better
	for i, m := range ms {
		if top[m.mountpoint] != i {
			continue
		}
		switch m.fstype {
		case "cgroup2":
			h := hierarchy{mount: m.mountpoint, root: m.root, v2: true, keys: []string{KeyUnified}}
			if m.root != "/" {
				v2Sub = append(v2Sub, h)
				continue
			}
			v2 = append(v2, h)
		case "cgroup":
			old, seen := v1ByDev[m.dev]
			if !seen {
				devs = append(devs, m.dev)
			}
			if !seen || better(m, old) {
				v1ByDev[m.dev] = m
			}
		}
	}
	if len(v2) == 0 {
		v2 = v2Sub
	}
	for _, dev := range devs {
		m := v1ByDev[dev]
		cs := v1Controllers(m.superOpts)
		if len(cs) == 0 {
			continue
		}
		v1 = append(v1, hierarchy{mount: m.mountpoint, root: m.root, keys: cs})
	}
	return v2, v1, nil
}

// better reports whether a is a better mount of a v1 hierarchy than b: the
// whole hierarchy rather than a subtree, then the shorter mount point.
func better(a, b mountEntry) bool {
	if (a.root == "/") != (b.root == "/") {
		return a.root == "/"
	}
	return len(a.mountpoint) < len(b.mountpoint)
}

// pickV2 chooses among cgroup2 mounts: /sys/fs/cgroup, then
// /sys/fs/cgroup/unified, then the first.
func pickV2(v2 []hierarchy) *hierarchy {
	if len(v2) == 0 {
		return nil
	}
	for _, want := range []string{defaultRoot, defaultRoot + "/unified"} {
		for i := range v2 {
			if v2[i].mount == want {
				return &v2[i]
			}
		}
	}
	return &v2[0]
}

// defaultRoot is where cgroup file systems are mounted by convention.
const defaultRoot = "/sys/fs/cgroup"

// detect finds the mode and its hierarchies, honouring EnvMode.
func detect() (*layout, error) {
	v2s, v1s, err := cgroupMounts()
	if err != nil {
		return nil, err
	}
	v2 := pickV2(v2s)
	forced := os.Getenv(EnvMode)
	switch forced {
	case "":
		// Pure v2 when cgroup2 is what sits at /sys/fs/cgroup, whatever else
		// is mounted (some systems add a named v1 hierarchy for old guests).
		// The mount table says so (cgroupMounts keeps the visible mount of
		// each mount point, pickV2 prefers /sys/fs/cgroup): asking the live
		// /sys/fs/cgroup instead would judge a table by another machine.
		if v2 != nil && v2.mount == defaultRoot {
			return &layout{mode: V2, v2: v2}, nil
		}
		switch {
		case v2 != nil && len(v1s) > 0:
			return &layout{mode: Hybrid, v2: v2, v1: v1s}, nil
		case len(v1s) > 0:
			return &layout{mode: V1, v1: v1s}, nil
		case v2 != nil:
			return &layout{mode: V2, v2: v2}, nil
		}
		return nil, fmt.Errorf("cgroups: detect mode: no cgroup or cgroup2 file system in %s", mountinfoPath)
	case "v2":
		if v2 == nil {
			return nil, fmt.Errorf("cgroups: %s=v2: no cgroup2 file system in %s", EnvMode, mountinfoPath)
		}
		return &layout{mode: V2, v2: v2}, nil
	case "v1":
		if len(v1s) == 0 {
			return nil, fmt.Errorf("cgroups: %s=v1: no cgroup v1 hierarchy in %s", EnvMode, mountinfoPath)
		}
		return &layout{mode: V1, v1: v1s}, nil
	case "hybrid":
		if v2 == nil || len(v1s) == 0 {
			return nil, fmt.Errorf("cgroups: %s=hybrid: need both cgroup2 and cgroup v1 hierarchies in %s", EnvMode, mountinfoPath)
		}
		return &layout{mode: Hybrid, v2: v2, v1: v1s}, nil
	}
	return nil, fmt.Errorf("cgroups: %s=%q: want v1, v2 or hybrid", EnvMode, forced)
}
