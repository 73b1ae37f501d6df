// Package cgroups manages one container's cgroup across the mounted cgroup
// hierarchies, through cgroupfs: pure cgroup v2, v1 controllers alone, or the
// hybrid of both (v1 controllers plus a controller-less cgroup2 tree, usually
// at /sys/fs/cgroup/unified, used for cgroup.kill, cgroup.freeze (beside the
// v1 freezer) and cgroup.events).
//
// A cgroup is named by a path. An absolute one such as "/ctrs/web-1" is the
// same in every hierarchy, relative to where each hierarchy is mounted; a
// relative one such as "ctrs/web-1" is taken, in each hierarchy, from the
// cgroup the calling process is in there, as runc does with cgroupfs. Its host
// directories are kept as Paths, which a caller saves (state.json) and hands
// to Open in the next command.
//
// Set applies the resource limits of an OCI config (linux.resources),
// including the device allowed list (v1 devices.allow/devices.deny, and on
// cgroup2 a BPF_PROG_TYPE_CGROUP_DEVICE program loaded with bpf(2) directly),
// and Stats reads the usage back.
//
// Every file is opened O_CLOEXEC, and every value is written to a cgroup file
// with a single write(2), as cgroupfs expects.
package cgroups

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// EnvMode, when set to v1, v2 or hybrid, forces the mode instead of detecting
// it: v2 uses only the cgroup2 hierarchy (wherever it is mounted), v1 only
// the v1 hierarchies, hybrid both. Tests use it to cover every mode on one
// machine.
const EnvMode = "CONTAINERFD_CGROUP_MODE"

// KeyUnified is the Paths key of the cgroup2 directory.
const KeyUnified = "unified"

// Mode is the way cgroup hierarchies are mounted on the host.
type Mode int

const (
	// V1 has only cgroup v1 hierarchies, one or more controllers each.
	V1 Mode = iota + 1
	// V2 has the single cgroup2 hierarchy, holding every controller.
	V2
	// Hybrid has v1 controller hierarchies plus a cgroup2 hierarchy (usually
	// without controllers) for process tracking, kill and freeze.
	Hybrid
)

// String returns "v1", "v2" or "hybrid".
func (m Mode) String() string {
	switch m {
	case V1:
		return "v1"
	case V2:
		return "v2"
	case Hybrid:
		return "hybrid"
	}
	return "Mode(" + strconv.Itoa(int(m)) + ")"
}

// DetectMode reports how cgroups are mounted, from /proc/self/mountinfo and
// statfs(2) of /sys/fs/cgroup, unless EnvMode forces a mode.
func DetectMode() (Mode, error) {
	l, err := detect()
	if err != nil {
		return 0, err
	}
	return l.mode, nil
}

// Paths maps KeyUnified to the cgroup's cgroup2 directory and each v1
// controller ("cpu", "memory", "name=systemd" …) to its v1 directory, all
// absolute host paths. Controllers mounted together share one directory.
type Paths map[string]string

// mode infers the mode a set of paths was made in.
func (p Paths) mode() Mode {
	_, v2 := p[KeyUnified]
	switch {
	case v2 && len(p) == 1:
		return V2
	case v2:
		return Hybrid
	}
	return V1
}

// Without returns p less the entries whose directory is one of dirs: the
// paths to remove of a cgroup some of whose directories Create found there
// already (Cgroup.Existed).
func (p Paths) Without(dirs []string) Paths {
	q := Paths{}
	for k, d := range p {
		if !slices.Contains(dirs, d) {
			q[k] = d
		}
	}
	return q
}

// dirs returns the distinct directories, the v2 one first.
func (p Paths) dirs() []string {
	var out []string
	if d, ok := p[KeyUnified]; ok {
		out = append(out, d)
	}
	return append(out, p.v1Dirs()...)
}

// v1Dirs returns the distinct v1 directories, sorted.
func (p Paths) v1Dirs() []string {
	seen := map[string]bool{}
	var out []string
	for k, d := range p {
		if k != KeyUnified && !seen[d] {
			seen[d] = true
			out = append(out, d)
		}
	}
	sort.Strings(out)
	return out
}

// Cgroup is one container's cgroup in every hierarchy of its mode. It holds
// an fd of the cgroup2 directory (see CloneFD) until Close.
type Cgroup struct {
	mode    Mode
	paths   Paths
	v2      string   // cgroup2 directory, "" in V1 mode
	v1      []string // distinct v1 directories: Create's in the mount table's order, Open's sorted
	cloneFD int      // O_PATH fd of v2, or -1
	existed []string // the directories Create found there already
}

// Create makes the cgroup path in the cgroup2 hierarchy, if the mode has one,
// and in every v1 hierarchy, if it has any, with parents as needed.
//
// An absolute path such as "/ctrs/web-1" is taken from the root of each
// hierarchy. A relative path such as "ctrs/web-1" is taken, in each
// hierarchy, from the cgroup the calling process is in there (its line of
// /proc/self/cgroup), as the OCI runtime spec and runc have it: so it may land
// at different places in different hierarchies. Either way Paths records the
// directories made, so that Open needs no such lookup.
//
// A cgroup that already exists in a hierarchy is taken as it is, as runc
// takes it (a caller may make the directory and set limits on it first),
// unless it or a cgroup below it holds a process or it is frozen: then
// Create fails with an error wrapping ErrInUse, for two containers never
// share a cgroup. Existed lists those directories, which the cgroup's
// owner should leave when it removes the rest (see Remove). On any failure
// Create removes the directories it made, and nothing else.
//
// In V2 and Hybrid modes, every cgroup2 ancestor below the hierarchy root
// that Create makes or passes through gets the controllers it has available
// enabled in its cgroup.subtree_control, best effort (a cgroup with processes
// of its own, for one, refuses). The root's subtree_control is left as the
// host set it: in Hybrid mode it usually enables nothing, but a host that
// leaves a controller such as hugetlb to cgroup2 and enables it there gets it
// in the container's cgroup2 directory, where Set uses it. In
// the v1 cpuset hierarchy, each directory on the path that has no
// cpuset.cpus or cpuset.mems gets its parent's, or processes could not join.
func Create(path string) (*Cgroup, error) { return createIn(path, false) }

func createIn(path string, unifiedOnly bool) (_ *Cgroup, err error) {
	pl, err := place(path, "create", unifiedOnly)
	if err != nil {
		return nil, err
	}
	comps := pl.comps
	var made []string // in creation order
	defer func() {
		if err != nil {
			if rerr := rollback(made); rerr != nil {
				err = errors.Join(err, rerr)
			}
		}
	}()
	paths := Paths{}
	var existed []string
	for i, h := range pl.hierarchies {
		dir := pl.bases[i]
		for i, name := range comps {
			if h.v2 && dir != h.mount {
				enableControllers(dir)
			}
			parent := dir
			dir = filepath.Join(dir, name)
			err := unix.Mkdir(dir, 0o755)
			switch {
			case err == nil:
				made = append(made, dir)
				if hasKey(h.keys, "cpuset") {
					if err := copyCpuset(h.mount, parent, dir); err != nil {
						return nil, fmt.Errorf("cgroups: create %q: %w", path, err)
					}
				}
			case err == unix.EEXIST && i < len(comps)-1:
				// An existing ancestor: pass through. Another runtime may
				// have just made it and not yet given it cpus and mems,
				// without which our child's would be refused (EACCES).
				if hasKey(h.keys, "cpuset") {
					if err := copyCpuset(h.mount, parent, dir); err != nil {
						return nil, fmt.Errorf("cgroups: create %q: %w", path, err)
					}
				}
			case err == unix.EEXIST:
				if err := checkUnused(dir, h); err != nil {
					return nil, fmt.Errorf("cgroups: create %q: %w", path, err)
				}
				if hasKey(h.keys, "cpuset") {
					if err := copyCpuset(h.mount, parent, dir); err != nil {
						return nil, fmt.Errorf("cgroups: create %q: %w", path, err)
					}
				}
				existed = append(existed, dir)
			default:
				return nil, fmt.Errorf("cgroups: create %q: mkdir %q: %w", path, dir, err)
			}
		}
		for _, k := range h.keys {
			paths[k] = dir
		}
	}
	c, err := open(paths)
	if err != nil {
		return nil, err
	}
	c.existed = existed
	c.v1 = c.v1[:0]
	for _, h := range pl.hierarchies {
		if d := paths[h.keys[0]]; !h.v2 && !slices.Contains(c.v1, d) {
			c.v1 = append(c.v1, d)
		}
	}
	return c, nil
}

// ErrInUse is what Create says of a cgroup that exists and holds processes
// or is frozen: another container's, most likely.
var ErrInUse = errors.New("cgroup in use")

// checkUnused checks that the existing cgroup dir of hierarchy h is one a
// container may take: no process in it or below it, and not frozen. runc's
// words, which callers and its tests match.
func checkUnused(dir string, h hierarchy) error {
	var pids []int
	if err := walkProcs(dir, true, &pids); err != nil {
		return err
	}
	if len(pids) > 0 {
		return fmt.Errorf("%s: container's cgroup is not empty: %d process(es) found: %w", dir, len(pids), ErrInUse)
	}
	var frozen bool
	switch {
	case h.v2:
		s, err := readFile(dir, "cgroup.freeze")
		frozen = err == nil && strings.TrimSpace(s) == "1"
	case hasKey(h.keys, "freezer"):
		s, err := readFile(dir, "freezer.state")
		frozen = err == nil && strings.TrimSpace(s) != "THAWED"
	}
	if frozen {
		return fmt.Errorf("%s: container's cgroup unexpectedly frozen: %w", dir, ErrInUse)
	}
	return nil
}

// Existed returns the directories of the cgroup that Create found made
// already, rather than made itself.
func (c *Cgroup) Existed() []string { return slices.Clone(c.existed) }

// splitPath checks a cgroup path and returns its components, and whether it
// is relative.
func splitPath(path string) (comps []string, relative bool, err error) {
	for _, c := range strings.Split(path, "/") {
		switch c {
		case "", ".":
		case "..":
			return nil, false, fmt.Errorf("cgroups: cgroup path %q: contains ..", path)
		default:
			comps = append(comps, c)
		}
	}
	relative = !strings.HasPrefix(path, "/")
	switch {
	case path == "":
		return nil, false, fmt.Errorf("cgroups: cgroup path %q: empty", path)
	case len(comps) == 0 && relative:
		return nil, false, fmt.Errorf("cgroups: cgroup path %q: names the caller's own cgroup, which cannot belong to a container", path)
	case len(comps) == 0:
		return nil, false, fmt.Errorf("cgroups: cgroup path %q: the root cgroup cannot belong to a container", path)
	}
	return comps, relative, nil
}

// selfCgroupPath is read to find the caller's own cgroups; a variable so
// that tests can point it at a fixture.
var selfCgroupPath = "/proc/self/cgroup"

// readSelfCgroup parses selfCgroupPath into a map from Paths key (KeyUnified
// for the "0::" line, else each v1 controller of a line, "name=systemd" and
// so on) to the cgroup path, as seen from the hierarchy's root.
func readSelfCgroup() (map[string]string, error) {
	data, err := os.ReadFile(selfCgroupPath)
	if err != nil {
		return nil, fmt.Errorf("read own cgroups: %w", err)
	}
	return parseSelfCgroup(string(data))
}

func parseSelfCgroup(data string) (map[string]string, error) {
	own := map[string]string{}
	for _, line := range strings.Split(data, "\n") {
		if line == "" {
			continue
		}
		// hierarchy-ID:controller-list:cgroup-path; the path may hold ':'.
		f := strings.SplitN(line, ":", 3)
		if len(f) != 3 || !strings.HasPrefix(f[2], "/") {
			return nil, fmt.Errorf("parse %s: malformed line %q", selfCgroupPath, line)
		}
		if f[0] == "0" && f[1] == "" {
			own[KeyUnified] = f[2]
			continue
		}
		for _, k := range strings.Split(f[1], ",") {
			if k != "" {
				own[k] = f[2]
			}
		}
	}
	return own, nil
}

// dirOf returns the directory of h where the cgroup own lists for h is: that
// path made relative to the cgroup mounted at h.mount.
func (h *hierarchy) dirOf(own map[string]string) (string, error) {
	p, ok := own[h.keys[0]]
	if !ok {
		return "", fmt.Errorf("%s lists no cgroup of the hierarchy mounted at %s (%s)", selfCgroupPath, h.mount, strings.Join(h.keys, ","))
	}
	root := h.root
	if root == "" {
		root = "/"
	}
	rel, ok := strings.CutPrefix(p, root)
	if !ok || (rel != "" && root != "/" && !strings.HasPrefix(rel, "/")) {
		return "", fmt.Errorf("own cgroup %s of %s is outside the subtree %s mounted at %s", p, strings.Join(h.keys, ","), root, h.mount)
	}
	return filepath.Join(h.mount, rel), nil
}

// rollback removes the directories Create made, last first. A directory
// someone else has meanwhile put a cgroup in is left alone.
func rollback(made []string) error {
	var errs []error
	for i := len(made) - 1; i >= 0; i-- {
		err := unix.Rmdir(made[i])
		switch err {
		case nil, unix.ENOENT, unix.EBUSY, unix.ENOTEMPTY:
		default:
			errs = append(errs, fmt.Errorf("cgroups: undo create: rmdir %s: %w", made[i], err))
		}
	}
	return errors.Join(errs...)
}

func hasKey(keys []string, k string) bool {
	for _, x := range keys {
		if x == k {
			return true
		}
	}
	return false
}

// enableControllers enables, best effort, each controller available in dir
// (cgroup.controllers) for its children (cgroup.subtree_control), one write
// per controller so that one refusal does not block the rest.
func enableControllers(dir string) {
	avail, err := readFile(dir, "cgroup.controllers")
	if err != nil {
		return
	}
	on, _ := readFile(dir, "cgroup.subtree_control")
	enabled := map[string]bool{}
	for _, c := range strings.Fields(on) {
		enabled[c] = true
	}
	for _, c := range strings.Fields(avail) {
		if !enabled[c] {
			_ = writeFile(dir, "cgroup.subtree_control", "+"+c)
		}
	}
}

// copyCpuset gives a new v1 cpuset directory the cpus and mems of its
// nearest ancestor that has some (an empty cpuset refuses processes).
func copyCpuset(mount, parent, dir string) error {
	for _, f := range []string{"cpuset.cpus", "cpuset.mems"} {
		cur, err := readFile(dir, f)
		if err != nil {
			return err
		}
		if strings.TrimSpace(cur) != "" {
			continue
		}
		var val string
		for p := parent; ; p = filepath.Dir(p) {
			v, err := readFile(p, f)
			if err != nil {
				return err
			}
			if val = strings.TrimSpace(v); val != "" || p == mount || len(p) <= len(mount) {
				break
			}
		}
		if val == "" {
			return fmt.Errorf("no ancestor of %s has %s set", dir, f)
		}
		if err := writeFile(dir, f, val); err != nil {
			return err
		}
	}
	return nil
}

// Open returns the existing cgroup saved as p (from Paths, in an earlier
// command). The mode is that of p: V2 if it holds only KeyUnified, Hybrid if
// KeyUnified and v1 controllers, V1 if no KeyUnified. It fails with an error
// wrapping fs.ErrNotExist if a directory is missing.
func Open(p Paths) (*Cgroup, error) {
	if len(p) == 0 {
		return nil, fmt.Errorf("cgroups: open: no paths")
	}
	q := Paths{}
	for k, d := range p {
		if err := checkDir(k, d); err != nil {
			return nil, fmt.Errorf("cgroups: open: %w", err)
		}
		q[k] = d
	}
	return open(q)
}

// checkDir checks that d is an absolute clean path of an existing directory
// on the file system Paths key k calls for.
func checkDir(k, d string) error {
	if !filepath.IsAbs(d) || filepath.Clean(d) != d {
		return fmt.Errorf("%s path %q: not an absolute clean path", k, d)
	}
	var st unix.Statfs_t
	if err := unix.Statfs(d, &st); err != nil {
		return &fs.PathError{Op: "statfs", Path: d, Err: err}
	}
	want := int64(unix.CGROUP_SUPER_MAGIC)
	if k == KeyUnified {
		want = unix.CGROUP2_SUPER_MAGIC
	}
	if int64(st.Type) != want {
		return fmt.Errorf("%s path %s: not on a %s file system", k, d, map[bool]string{true: "cgroup2", false: "cgroup v1"}[k == KeyUnified])
	}
	return nil
}

// open builds a Cgroup from checked paths.
func open(p Paths) (*Cgroup, error) {
	c := &Cgroup{mode: p.mode(), paths: p, v2: p[KeyUnified], v1: p.v1Dirs(), cloneFD: -1}
	if c.v2 != "" {
		fd, err := unix.Open(c.v2, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			return nil, fmt.Errorf("cgroups: open %s: %w", c.v2, err)
		}
		c.cloneFD = fd
	}
	return c, nil
}

// Sub opens sub-cgroups of c that already exist, for a process to join
// instead of c (runc's exec --cgroup). sub maps a v1 controller's name to
// a path below c's directory of that controller, and "" to the path below
// every other directory (cgroup2's among them); "/" and "" are c's own. A
// path that leads out of c, a controller c has no hierarchy of, or a
// directory that is not there is an error. Sub makes nothing: close what
// it returns, never remove it.
func (c *Cgroup) Sub(sub map[string]string) (*Cgroup, error) {
	rel := make(map[string]string, len(sub))
	for k, path := range sub {
		if _, ok := c.paths[k]; k != "" && (!ok || k == KeyUnified) {
			return nil, fmt.Errorf("cgroups: sub-cgroup %q: unknown controller %q", path, k)
		}
		r := filepath.Clean(strings.TrimLeft(path, "/"))
		if !filepath.IsLocal(r) {
			return nil, fmt.Errorf("cgroups: bad sub cgroup path %q: it leads out of the container's cgroup", path)
		}
		rel[k] = r
	}
	q := Paths{}
	for k, d := range c.paths {
		r, ok := rel[k]
		if !ok || k == KeyUnified {
			r = rel[""]
		}
		q[k] = filepath.Join(d, r)
		if err := checkDir(k, q[k]); err != nil {
			return nil, fmt.Errorf("cgroups: adding pid to sub-cgroup %q of %s: %w", r, d, err)
		}
	}
	return open(q)
}

// Paths returns a copy of the cgroup's directories, to save and later Open.
func (c *Cgroup) Paths() Paths {
	p := make(Paths, len(c.paths))
	for k, v := range c.paths {
		p[k] = v
	}
	return p
}

// V1Dirs returns the cgroup's directory in each v1 hierarchy; for a cgroup
// made by Create, in the order the host's mount table lists the
// hierarchies, which is the order runc binds them in a container.
func (c *Cgroup) V1Dirs() []string { return slices.Clone(c.v1) }

// Mode returns the mode the cgroup was made in.
func (c *Cgroup) Mode() Mode { return c.mode }

// CloneFD returns an O_PATH|O_DIRECTORY|O_CLOEXEC fd of the cgroup2
// directory, to pass to clone3 with CLONE_INTO_CGROUP (the v1 hierarchies
// then by EnterV1 or OpenV1Tasks); -1 in V1 mode. It stays owned by c and is
// closed by Close.
func (c *Cgroup) CloneFD() int { return c.cloneFD }

// Enter moves process pid into the cgroup in every hierarchy, cgroup2 first.
func (c *Cgroup) Enter(pid int) error {
	if c.v2 != "" {
		if err := enter(c.v2, pid); err != nil {
			return err
		}
	}
	return c.EnterV1(pid)
}

// EnterV1 moves process pid into the cgroup in the v1 hierarchies only: for a
// process cloned into the cgroup2 directory with CLONE_INTO_CGROUP, which is
// there already. In V2 mode it does nothing.
func (c *Cgroup) EnterV1(pid int) error {
	for _, d := range c.v1 {
		if err := enter(d, pid); err != nil {
			return err
		}
	}
	return nil
}

// OpenV1Tasks opens the "tasks" file of each v1 directory for writing, for a
// new single-threaded process to move itself in (spawn.Attr.CgroupTasks):
// much faster than EnterV1, whose cgroup.procs write waits for the kernel's
// global threadgroup lock. The directory of controller late, if it has a v1
// one, is left out of fds and opened as lateFD (else -1), for the process
// to join later. None in V2 mode. The caller closes the fds.
func (c *Cgroup) OpenV1Tasks(late string) (fds []int, lateFD int, err error) {
	lateDir := "" // v1 controllers only: KeyUnified names no v1 directory
	if late != KeyUnified {
		lateDir = c.paths[late]
	}
	lateFD = -1
	defer func() {
		if err != nil {
			for _, fd := range append(fds, lateFD) {
				if fd >= 0 {
					unix.Close(fd)
				}
			}
			fds, lateFD = nil, -1
		}
	}()
	for _, d := range c.v1 {
		p := filepath.Join(d, "tasks")
		fd, err := unix.Open(p, unix.O_WRONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			return fds, lateFD, fmt.Errorf("cgroups: open %s: %w", p, err)
		}
		if d == lateDir {
			lateFD = fd
		} else {
			fds = append(fds, fd)
		}
	}
	return fds, lateFD, nil
}

func enter(dir string, pid int) error {
	if err := writeFile(dir, "cgroup.procs", strconv.Itoa(pid)); err != nil {
		return fmt.Errorf("cgroups: move process %d into %s: %w", pid, dir, err)
	}
	return nil
}

// pidsDirs are the directories whose processes count as the cgroup's: the
// cgroup2 one where there is cgroup2, else every v1 one. In V1 mode a process
// moved in by Enter while it runs may fork between two hierarchies and leave a
// child in only some of them; it still belongs to the container.
func (c *Cgroup) pidsDirs() []string {
	if c.v2 != "" {
		return []string{c.v2}
	}
	return c.v1
}

// Pids returns, sorted, the process ids in the cgroup and in every cgroup
// below it: in cgroup2 where there is cgroup2, else in any v1 hierarchy.
func (c *Cgroup) Pids() ([]int, error) {
	var pids []int
	for _, d := range c.pidsDirs() {
		if err := walkProcs(d, true, &pids); err != nil {
			return nil, err
		}
	}
	sort.Ints(pids)
	return slices.Compact(pids), nil
}

// walkProcs appends the processes of dir and its descendants. A descendant
// that vanishes on the way is skipped; the top one must exist.
func walkProcs(dir string, top bool, pids *[]int) error {
	data, err := readFile(dir, "cgroup.procs")
	if err != nil {
		if !top && errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return fmt.Errorf("cgroups: list processes: %w", err)
	}
	for _, f := range strings.Fields(data) {
		pid, err := strconv.Atoi(f)
		if err != nil {
			return fmt.Errorf("cgroups: list processes: %s/cgroup.procs: bad pid %q", dir, f)
		}
		*pids = append(*pids, pid)
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		if !top && errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return fmt.Errorf("cgroups: list processes: %w", err)
	}
	for _, e := range ents {
		if e.IsDir() {
			if err := walkProcs(filepath.Join(dir, e.Name()), false, pids); err != nil {
				return err
			}
		}
	}
	return nil
}

// Events is the state in a cgroup2 cgroup.events file.
type Events struct {
	Populated bool // a process is in the cgroup or below it
	Frozen    bool // the cgroup and everything below it is frozen
}

// parseEvents parses the lines "populated N" and "frozen N".
func parseEvents(s string) Events {
	var ev Events
	for _, line := range strings.Split(s, "\n") {
		k, v, _ := strings.Cut(line, " ")
		switch k {
		case "populated":
			ev.Populated = v == "1"
		case "frozen":
			ev.Frozen = v == "1"
		}
	}
	return ev
}

// Events reads the cgroup2 cgroup.events file; in V1 mode it fails with an
// error wrapping errors.ErrUnsupported.
func (c *Cgroup) Events() (Events, error) {
	if c.v2 == "" {
		return Events{}, fmt.Errorf("cgroups: cgroup.events: no cgroup2 hierarchy in v1 mode: %w", errors.ErrUnsupported)
	}
	s, err := readFile(c.v2, "cgroup.events")
	if err != nil {
		return Events{}, fmt.Errorf("cgroups: %w", err)
	}
	return parseEvents(s), nil
}

// EventsFD opens the cgroup2 cgroup.events file O_RDONLY|O_CLOEXEC, for the
// caller to own and close. poll(2) reports POLLPRI on it when the file changes
// after it was last read (or opened); read it with ReadEvents first, then
// poll, so that no change is lost. In V1 mode it fails with an error wrapping
// errors.ErrUnsupported.
func (c *Cgroup) EventsFD() (int, error) {
	if c.v2 == "" {
		return -1, fmt.Errorf("cgroups: cgroup.events: no cgroup2 hierarchy in v1 mode: %w", errors.ErrUnsupported)
	}
	p := filepath.Join(c.v2, "cgroup.events")
	fd, err := unix.Open(p, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("cgroups: open %s: %w", p, err)
	}
	return fd, nil
}

// ReadEvents reads and parses a cgroup.events fd from EventsFD, from its
// start, and re-arms it for poll.
func ReadEvents(fd int) (Events, error) {
	buf := make([]byte, 256)
	for {
		n, err := unix.Pread(fd, buf, 0)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return Events{}, fmt.Errorf("cgroups: read cgroup.events: %w", err)
		}
		return parseEvents(string(buf[:n])), nil
	}
}

// Populated reports whether any process is in the cgroup or below it: from
// cgroup.events where there is cgroup2, else from the v1 process lists.
//
// A cgroup removed meanwhile (systemd removes a unit's cgroup as soon as its
// last process is gone) is not populated.
func (c *Cgroup) Populated() (bool, error) {
	var pop bool
	var err error
	if c.v2 != "" {
		var ev Events
		ev, err = c.Events()
		pop = ev.Populated
	} else {
		var pids []int
		pids, err = c.Pids()
		pop = len(pids) > 0
	}
	// ENODEV: a file of a cgroup removed after it was opened.
	if err != nil && (errors.Is(err, unix.ENODEV) || c.gone()) {
		return false, nil
	}
	return pop, err
}

// gone reports whether every directory of the cgroup has been removed, as
// systemd removes a unit's cgroup once its last process has exited: a
// cgroup that is gone has no processes.
func (c *Cgroup) gone() bool {
	for _, d := range c.paths.dirs() {
		if _, err := os.Stat(d); !errors.Is(err, fs.ErrNotExist) {
			return false
		}
	}
	return true
}

// destroyTimeout bounds how long Destroy retries a busy directory.
var destroyTimeout = 2 * time.Second

// Destroy removes the cgroup, and any cgroup below it, from every hierarchy.
// A directory still busy (a process killed a moment ago may still be exiting)
// is retried for a short while. Missing directories are not an error, so
// Destroy may be called again after a partial failure. The cgroup's parents
// are left alone, even those Create made.
func (c *Cgroup) Destroy() error { return Remove(c.paths) }

// Remove removes the cgroup saved as p, like Destroy, without opening it: for
// cleaning up after a cgroup has partly gone.
func Remove(p Paths) error {
	var errs []error
	for k, d := range p {
		if err := checkDir(k, d); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, fmt.Errorf("cgroups: remove: %w", err))
		}
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	deadline := time.Now().Add(destroyTimeout)
	for _, d := range p.dirs() {
		if err := removeTree(d, deadline); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// removeTree removes the cgroup directory dir, its child cgroups first. The
// usual cgroup has none: its children are looked for only when rmdir says
// it is busy.
func removeTree(dir string, deadline time.Time) error {
	children := true
	for delay := time.Millisecond; ; delay = min(2*delay, 50*time.Millisecond) {
		err := unix.Rmdir(dir)
		switch {
		case err == nil || err == unix.ENOENT:
			return nil
		case err == unix.EBUSY && children:
			children = false
			if err := removeChildren(dir, deadline); err != nil {
				return err
			}
		case err == unix.EBUSY && time.Now().Before(deadline):
			time.Sleep(delay)
		case err == unix.EBUSY:
			return fmt.Errorf("cgroups: remove %s: still has processes after %v: %w", dir, destroyTimeout, err)
		default:
			return fmt.Errorf("cgroups: remove %s: %w", dir, err)
		}
	}
}

// removeChildren removes the child cgroups of dir.
func removeChildren(dir string, deadline time.Time) error {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("cgroups: remove: %w", err)
	}
	for _, e := range ents {
		if e.IsDir() {
			if err := removeTree(filepath.Join(dir, e.Name()), deadline); err != nil {
				return err
			}
		}
	}
	return nil
}

// Close closes the fd the cgroup holds. The cgroup itself stays.
func (c *Cgroup) Close() error {
	if c.cloneFD < 0 {
		return nil
	}
	err := unix.Close(c.cloneFD)
	c.cloneFD = -1
	if err != nil {
		return fmt.Errorf("cgroups: close %s: %w", c.v2, err)
	}
	return nil
}

// readFile reads a cgroup file.
func readFile(dir, name string) (string, error) {
	b, err := os.ReadFile(filepath.Join(dir, name))
	return string(b), err
}

// writeFile writes val to a cgroup file with one write(2), as cgroupfs
// wants: each write is one command.
func writeFile(dir, name, val string) error {
	p := filepath.Join(dir, name)
	err := writeRaw(p, val)
	switch err.(type) {
	case nil:
		return nil
	case *fs.PathError:
		return err
	}
	return fmt.Errorf("write %q to %s: %w", val, p, err)
}

// writeRaw writes val to the file p with one write(2). It returns a
// *fs.PathError if p cannot be opened, else the bare error of the write.
// O_TRUNC changes nothing on cgroupfs (runc opens its files so too), but lets
// the same code write to the plain files of a test fixture.
func writeRaw(p, val string) error {
	fd, err := unix.Open(p, unix.O_WRONLY|unix.O_TRUNC|unix.O_CLOEXEC, 0)
	if err != nil {
		return &fs.PathError{Op: "open", Path: p, Err: err}
	}
	defer unix.Close(fd)
	for {
		n, err := unix.Write(fd, []byte(val))
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return err
		}
		if n != len(val) {
			return fmt.Errorf("short write (%d of %d bytes)", n, len(val))
		}
		return nil
	}
}

// JoinFD returns an O_PATH fd of the cgroup2 directory a new process of the
// container should be cloned into (CLONE_INTO_CGROUP), for the caller to
// close, and whether it is another than CloneFD's. That is the cgroup's own
// directory, unless processes cannot join it: a cgroup that enables domain
// controllers for its children (cgroup.subtree_control), as systemd does
// when it runs in the container, may hold no process of its own. Then it is
// the directory init (pid) is in, as runc and crun do it, which must be the
// cgroup's or one below it. In V1 mode it is -1.
func (c *Cgroup) JoinFD(pid int) (fd int, other bool, err error) {
	if c.v2 == "" {
		return -1, false, nil
	}
	sub, err := readFile(c.v2, "cgroup.subtree_control")
	if err != nil || strings.TrimSpace(sub) == "" {
		// Unreadable: let the clone say what is wrong.
		return c.cloneFD, false, nil
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cgroup")
	if err != nil {
		return -1, false, fmt.Errorf("cgroups: %s enables %s for its children, so no process can join it; init's cgroup: %w", c.v2, strings.TrimSpace(sub), err)
	}
	own, err := parseSelfCgroup(string(b))
	if err != nil {
		return -1, false, fmt.Errorf("cgroups: init's cgroup: %w", err)
	}
	l, err := detect()
	if err != nil {
		return -1, false, err
	}
	if l.v2 == nil {
		return -1, false, fmt.Errorf("cgroups: init's cgroup: no cgroup2 hierarchy mounted")
	}
	dir, err := l.v2.dirOf(own)
	if err != nil {
		return -1, false, fmt.Errorf("cgroups: init's cgroup: %w", err)
	}
	if dir != c.v2 && !strings.HasPrefix(dir, c.v2+"/") {
		return -1, false, fmt.Errorf("cgroups: %s enables %s for its children, so no process can join it, and init is in %s, outside it", c.v2, strings.TrimSpace(sub), dir)
	}
	fd, err = unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, false, fmt.Errorf("cgroups: open init's cgroup %s: %w", dir, err)
	}
	return fd, true, nil
}

// OfProcess returns the directories of the cgroups of process pid in the
// hierarchies mounted here, keyed as Paths are: what tells which cgroup a
// process is in. A hierarchy where pid's cgroup is outside the subtree
// mounted is left out.
func OfProcess(pid int) (Paths, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		return nil, fmt.Errorf("cgroups: process %d: %w", pid, err)
	}
	own, err := parseSelfCgroup(string(data))
	if err != nil {
		return nil, fmt.Errorf("cgroups: process %d: %w", pid, err)
	}
	l, err := detect()
	if err != nil {
		return nil, err
	}
	paths := Paths{}
	for _, h := range l.all() {
		dir, err := h.dirOf(own)
		if err != nil {
			continue
		}
		for _, k := range h.keys {
			paths[k] = dir
		}
	}
	return paths, nil
}

// Within reports whether dir is one of the directories of p or below one.
func (p Paths) Within(dir string) bool {
	for _, d := range p {
		if dir == d || strings.HasPrefix(dir, d+"/") {
			return true
		}
	}
	return false
}
