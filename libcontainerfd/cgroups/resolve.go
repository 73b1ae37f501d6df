package cgroups

import (
	"fmt"
	"path/filepath"
)

// Resolve returns the Paths that Create(path) makes, without making them:
// a runtime records them before it creates the cgroup, so that whatever
// stops it in between, its state names what to remove.
func Resolve(path string) (Paths, error) {
	comps, relative, err := splitPath(path)
	if err != nil {
		return nil, err
	}
	l, err := detect()
	if err != nil {
		return nil, err
	}
	var own map[string]string
	if relative {
		if own, err = readSelfCgroup(); err != nil {
			return nil, fmt.Errorf("cgroups: resolve %q: %w", path, err)
		}
	}
	paths := Paths{}
	for _, h := range l.all() {
		dir := h.mount
		if relative {
			if dir, err = h.dirOf(own); err != nil {
				return nil, fmt.Errorf("cgroups: resolve %q: %w", path, err)
			}
		}
		dir = filepath.Join(append([]string{dir}, comps...)...)
		for _, k := range h.keys {
			paths[k] = dir
		}
	}
	return paths, nil
}
