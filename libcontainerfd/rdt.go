package libcontainerfd

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"

	"github.com/containerfd/containerfd/libcontainerfd/resctrl"
	"github.com/opencontainers/runtime-spec/specs-go"
)

// rdtState is where a container's processes go in resctrl, and what of it
// the container made.
type rdtState struct {
	// Group is the control group directory every process joins: the
	// closID's, the container's own, or the resctrl root.
	Group string `json:"group"`
	// Mon is the container's monitoring group under Group, if any.
	Mon string `json:"mon,omitempty"`
	// Remove lists the directories delete removes, deepest first. Each is
	// recorded before it is made, so that whatever stops create, delete
	// finds it; one that then turns out to exist is dropped.
	Remove []string `json:"remove,omitempty"`
}

// makeRdt makes the container's resctrl groups for r (Config.IntelRdt) and
// writes their schemata. Processes join them in startStage.
//
// The control group is r.ClosID, or the container's id if that is empty.
// A closID group is shared: it is made if missing (then with the
// schemata), checked against the schemata if it exists, and must exist if
// r gives no schemata; it is never removed once init runs (see
// keepSharedRdt). The container's own group must not exist. With
// EnableMonitoring a monitoring group named after the container is made in
// the control group's mon_groups.
func (c *Container) makeRdt(r *specs.LinuxIntelRdt) error {
	root, err := resctrl.Root()
	if err != nil {
		return err
	}
	text, err := resctrl.Schemata(r.L3CacheSchema, r.MemBwSchema, r.Schemata)
	if err != nil {
		return err
	}
	name := r.ClosID
	if name == "" {
		name = c.id
	}
	if err := resctrl.CheckName(name); err != nil {
		return err
	}
	st := &rdtState{Group: root}
	c.st.Rdt = st
	if name != "/" {
		st.Group = filepath.Join(root, name)
	}
	made := false
	switch {
	case name == "/":
	case r.ClosID != "" && text == "":
		// A pre-configured group, which the spec says must exist.
		if _, err := os.Stat(filepath.Join(st.Group, "tasks")); err != nil {
			return fmt.Errorf("resctrl: closID group %s (no schemata given, so it must exist): %w", st.Group, err)
		}
	default:
		if made, err = c.mkdirRdt(st.Group); err != nil {
			return err
		}
		if !made && r.ClosID == "" {
			return fmt.Errorf("resctrl: group %s: %w (not this container's)", st.Group, fs.ErrExist)
		}
	}
	if text != "" {
		if made {
			err = resctrl.WriteSchemata(st.Group, text)
		} else {
			// Another's group (or the root): ours must be its schemata.
			err = resctrl.CheckSchemata(st.Group, text)
		}
		if err != nil {
			return err
		}
	}
	if r.EnableMonitoring {
		mon := filepath.Join(st.Group, "mon_groups", c.id)
		if made, err := c.mkdirRdt(mon); err != nil {
			return err
		} else if !made {
			return fmt.Errorf("resctrl: monitoring group %s: %w", mon, fs.ErrExist)
		}
		st.Mon = mon
	}
	return c.Save()
}

// mkdirRdt makes resctrl group dir, recorded in the state first.
func (c *Container) mkdirRdt(dir string) (bool, error) {
	st := c.st.Rdt
	st.Remove = slices.Insert(st.Remove, 0, dir)
	if err := c.Save(); err != nil {
		return false, err
	}
	made, err := resctrl.Mkdir(dir)
	if !made {
		st.Remove = slices.DeleteFunc(st.Remove, func(d string) bool { return d == dir })
		if err == nil {
			// Another's, that delete must not remove.
			err = c.Save()
		}
	}
	return made, err
}

// keepSharedRdt drops a closID group from what delete removes, once init
// runs: other containers may join it from now on. (Should create fail
// before, the group it made is removed.)
func (c *Container) keepSharedRdt() {
	if c.cfg.IntelRdt == nil || c.cfg.IntelRdt.ClosID == "" || c.st.Rdt == nil {
		return
	}
	st := c.st.Rdt
	st.Remove = slices.DeleteFunc(st.Remove, func(d string) bool { return d == st.Group })
}

// enterRdt moves pid, a new process of the container, into its resctrl
// groups: the control group, then the monitoring group in it.
func (c *Container) enterRdt(pid int) error {
	st := c.st.Rdt
	if st == nil {
		return nil
	}
	if err := resctrl.AddTask(st.Group, pid); err != nil {
		return err
	}
	if st.Mon != "" {
		return resctrl.AddTask(st.Mon, pid)
	}
	return nil
}

// removeRdt removes the resctrl groups the container made.
func (c *Container) removeRdt() error {
	if c.st.Rdt == nil {
		return nil
	}
	var errs []error
	for _, dir := range c.st.Rdt.Remove {
		if err := resctrl.Remove(dir); err != nil {
			errs = append(errs, fmt.Errorf("container %s: intelRdt: %w", c.id, err))
		}
	}
	return errors.Join(errs...)
}

// UpdateIntelRdt writes new L3 cache and memory bandwidth schemata ("L3:…",
// "MB:…"; either may be empty) to the container's resctrl control group.
func (c *Container) UpdateIntelRdt(l3CacheSchema, memBwSchema string) error {
	if c.st.Rdt == nil {
		return fmt.Errorf("container %s: update intelRdt: the container has no resctrl group", c.id)
	}
	text, err := resctrl.Schemata(l3CacheSchema, memBwSchema, nil)
	if err == nil && text != "" {
		err = resctrl.WriteSchemata(c.st.Rdt.Group, text)
	}
	if err != nil {
		return fmt.Errorf("container %s: update intelRdt: %w", c.id, err)
	}
	return nil
}
