package cgroups

import (
	"fmt"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// CreateUnified is Create in the cgroup2 hierarchy alone, whatever the mode:
// for a caller without privilege, who can only have a cgroup2 subtree
// delegated to it (v1 hierarchies cannot be delegated safely).
func CreateUnified(path string) (*Cgroup, error) { return createIn(path, true) }

// ResolveUnified is Resolve for CreateUnified.
func ResolveUnified(path string) (Paths, error) { return resolve(path, true) }

// Delegated checks that the caller may move processes from its own cgroup
// into c's cgroup2 directory, as CLONE_INTO_CGROUP and cgroup.procs require
// of a caller without privilege: write access to cgroup.procs of c and of
// the nearest common ancestor of c and the caller's own cgroup (cgroup v2's
// delegation containment). It is what makes a subtree delegated: a
// systemd user session's, or a directory chowned to the user with its
// cgroup.procs, cgroup.threads and cgroup.subtree_control, and the caller
// already in it.
func (c *Cgroup) Delegated() error {
	if c.v2 == "" {
		return fmt.Errorf("cgroups: no cgroup2 directory")
	}
	l, err := detect()
	if err != nil {
		return err
	}
	if l.v2 == nil {
		return fmt.Errorf("cgroups: no cgroup2 hierarchy is mounted")
	}
	own, err := readSelfCgroup()
	if err != nil {
		return err
	}
	mine, err := l.v2.dirOf(own)
	if err != nil {
		return fmt.Errorf("cgroups: %w", err)
	}
	if err := unix.Access(filepath.Join(c.v2, "cgroup.procs"), unix.W_OK); err != nil {
		return fmt.Errorf("cgroups: %s/cgroup.procs: %w", c.v2, err)
	}
	anc := commonAncestor(mine, c.v2)
	if err := unix.Access(filepath.Join(anc, "cgroup.procs"), unix.W_OK); err != nil {
		return fmt.Errorf("cgroups: cannot move processes from the caller's cgroup %s to %s: cgroup.procs of their common ancestor %s: %w", mine, c.v2, anc, err)
	}
	return nil
}

// commonAncestor returns the longest common directory of two clean
// absolute paths.
func commonAncestor(a, b string) string {
	as, bs := strings.Split(a, "/"), strings.Split(b, "/")
	n := 0
	for n < len(as) && n < len(bs) && as[n] == bs[n] {
		n++
	}
	if n <= 1 {
		return "/"
	}
	return strings.Join(as[:n], "/")
}
