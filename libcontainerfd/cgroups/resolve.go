package cgroups

import (
	"fmt"
	"path/filepath"
)

// placement is where a cgroup path goes: its components, and the directory
// each hierarchy makes them under (its mount, or for a relative path our own
// cgroup in it).
type placement struct {
	comps       []string
	hierarchies []hierarchy
	bases       []string
}

func place(path, op string, unifiedOnly bool) (*placement, error) {
	comps, relative, err := splitPath(path)
	if err != nil {
		return nil, err
	}
	l, err := detect()
	if err != nil {
		return nil, err
	}
	if unifiedOnly {
		if l.v2 == nil {
			return nil, fmt.Errorf("cgroups: %s %q: no cgroup2 hierarchy is mounted", op, path)
		}
		l = &layout{mode: V2, v2: l.v2}
	}
	var own map[string]string // Paths key -> our own cgroup, for a relative path
	if relative {
		if own, err = readSelfCgroup(); err != nil {
			return nil, fmt.Errorf("cgroups: %s %q: %w", op, path, err)
		}
	}
	pl := &placement{comps: comps, hierarchies: l.all()}
	for _, h := range pl.hierarchies {
		dir := h.mount
		if relative {
			if dir, err = h.dirOf(own); err != nil {
				return nil, fmt.Errorf("cgroups: %s %q: %w", op, path, err)
			}
		}
		pl.bases = append(pl.bases, dir)
	}
	return pl, nil
}

// Resolve returns the Paths that Create(path) makes, without making them:
// a runtime records them before it creates the cgroup, so that whatever
// stops it in between, its state names what to remove.
func Resolve(path string) (Paths, error) {
	return resolve(path, false)
}

func resolve(path string, unifiedOnly bool) (Paths, error) {
	pl, err := place(path, "resolve", unifiedOnly)
	if err != nil {
		return nil, err
	}
	paths := Paths{}
	for i, h := range pl.hierarchies {
		dir := filepath.Join(append([]string{pl.bases[i]}, pl.comps...)...)
		for _, k := range h.keys {
			paths[k] = dir
		}
	}
	return paths, nil
}
