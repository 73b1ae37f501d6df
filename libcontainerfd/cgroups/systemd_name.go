package cgroups

import (
	"fmt"
	"path"
	"strings"

	sddbus "github.com/coreos/go-systemd/v22/dbus"
)

// DefaultSlice is the slice a systemd unit goes in when cgroupsPath names
// none, as runc has it for root.
const DefaultSlice = "system.slice"

// Unit is a container's systemd unit, named by a cgroupsPath of the form
// "slice:prefix:name" (config-linux.md, runc's --systemd-cgroup): a
// transient scope "prefix-name.scope" in slice, or, when name ends in
// ".slice", a transient slice of that name.
type Unit struct {
	Name  string // "containerfd-web.scope", or "web.slice"
	Slice string // "system.slice", "machine-ctrs.slice" …
	// Properties are set on the unit when it starts, after (and so over)
	// those of the runtime: from AnnotationProperties.
	Properties []sddbus.Property
}

// IsSlice reports whether the unit is a slice rather than a scope.
func (u Unit) IsSlice() bool { return strings.HasSuffix(u.Name, ".slice") }

// ParseUnit parses a systemd cgroupsPath "slice:prefix:name". An empty
// slice is DefaultSlice; an empty prefix leaves the scope named
// "name.scope". The name is checked as systemd checks unit names, so that a
// bad id fails here, naming the field, and not in systemd.
func ParseUnit(cgroupsPath string) (Unit, error) {
	parts := strings.Split(cgroupsPath, ":")
	if len(parts) != 3 {
		return Unit{}, fmt.Errorf("cgroups: linux.cgroupsPath %q: the systemd driver wants \"slice:prefix:name\" (such as \"system.slice:containerfd:web\")", cgroupsPath)
	}
	slice, prefix, name := parts[0], parts[1], parts[2]
	if slice == "" {
		slice = DefaultSlice
	}
	if _, err := ExpandSlice(slice); err != nil {
		return Unit{}, fmt.Errorf("cgroups: linux.cgroupsPath %q: %w", cgroupsPath, err)
	}
	if name == "" {
		return Unit{}, fmt.Errorf("cgroups: linux.cgroupsPath %q: empty name", cgroupsPath)
	}
	u := Unit{Slice: slice}
	switch {
	case strings.HasSuffix(name, ".slice"):
		// A slice of its own, which must sit in slice: "a-b.slice" in
		// "a.slice".
		if _, err := ExpandSlice(name); err != nil {
			return Unit{}, fmt.Errorf("cgroups: linux.cgroupsPath %q: %w", cgroupsPath, err)
		}
		u.Name = name
	case prefix == "":
		u.Name = name + ".scope"
	default:
		u.Name = prefix + "-" + name + ".scope"
	}
	if err := checkUnitName(u.Name); err != nil {
		return Unit{}, fmt.Errorf("cgroups: linux.cgroupsPath %q: %w", cgroupsPath, err)
	}
	return u, nil
}

// checkUnitName checks name as systemd's unit_name_is_valid does for a plain
// unit: at most 255 bytes of ASCII letters, digits and ":-_.\".
func checkUnitName(name string) error {
	if len(name) > 255 {
		return fmt.Errorf("unit name %q is longer than systemd's 255 bytes", name)
	}
	for _, r := range name {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune(":-_.\\", r)
		if !ok {
			return fmt.Errorf("unit name %q: systemd allows no %q in a unit name", name, r)
		}
	}
	return nil
}

// ExpandSlice returns the cgroup path systemd gives the slice unit slice,
// from the root of its hierarchy: every "-" in a slice name is a level, so
// "a-b-c.slice" is "/a.slice/a-b.slice/a-b-c.slice", and "-.slice" (the root
// slice) is "/".
func ExpandSlice(slice string) (string, error) {
	base, ok := strings.CutSuffix(slice, ".slice")
	if !ok || base == "" || strings.Contains(slice, "/") {
		return "", fmt.Errorf("slice %q: not a slice unit name (NAME.slice, no \"/\")", slice)
	}
	if base == "-" {
		return "/", nil
	}
	dir := "/"
	for i, comp := range strings.Split(base, "-") {
		if comp == "" {
			return "", fmt.Errorf("slice %q: an empty level (a leading, trailing or doubled \"-\")", slice)
		}
		dir = path.Join(dir, strings.Join(strings.Split(base, "-")[:i+1], "-")+".slice")
	}
	return dir, nil
}

// CgroupPath returns the cgroup path, from each hierarchy's root, systemd
// puts the unit at: the slice's path and the unit's name under it. A slice
// unit must be a child of the slice it is named in ("a-b.slice" in
// "a.slice").
func (u Unit) CgroupPath() (string, error) {
	parent, err := ExpandSlice(u.Slice)
	if err != nil {
		return "", err
	}
	if !u.IsSlice() {
		return path.Join(parent, u.Name), nil
	}
	p, err := ExpandSlice(u.Name)
	if err != nil {
		return "", err
	}
	if path.Dir(p) != parent {
		return "", fmt.Errorf("slice %s is not a child of %s: systemd would put it at %s", u.Name, u.Slice, p)
	}
	return p, nil
}
