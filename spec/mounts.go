package spec

import (
	"fmt"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/containerfd/containerfd/libcontainerfd/mounttree"
)

// How the OCI mount options ("Linux mount options" in config.md) map onto
// mounttree.Mount. The options are read in order and a later option undoes
// an earlier contrary one ("ro,rw" is rw), as mount(8) and runc do.

// attrOptions are the per-mount flags: option → MOUNT_ATTR_* and whether the
// option sets or clears it. The "r"-prefixed forms (rro, rnosuid, …: config.md
// footnote 3, mount_setattr with AT_RECURSIVE) map to the same flags; they
// differ on an rbind, where the plain ones change the top mount only (as
// mount(8) and runc do: "ro" leaves a submount writable) and the "r" ones
// every mount of the tree.
var attrOptions = map[string]struct {
	flag  uint64
	clear bool
}{
	"ro":          {unix.MOUNT_ATTR_RDONLY, false},
	"rw":          {unix.MOUNT_ATTR_RDONLY, true},
	"nosuid":      {unix.MOUNT_ATTR_NOSUID, false},
	"suid":        {unix.MOUNT_ATTR_NOSUID, true},
	"nodev":       {unix.MOUNT_ATTR_NODEV, false},
	"dev":         {unix.MOUNT_ATTR_NODEV, true},
	"noexec":      {unix.MOUNT_ATTR_NOEXEC, false},
	"exec":        {unix.MOUNT_ATTR_NOEXEC, true},
	"nodiratime":  {unix.MOUNT_ATTR_NODIRATIME, false},
	"diratime":    {unix.MOUNT_ATTR_NODIRATIME, true},
	"nosymfollow": {unix.MOUNT_ATTR_NOSYMFOLLOW, false},
	"symfollow":   {unix.MOUNT_ATTR_NOSYMFOLLOW, true},
}

// atimeOptions change the atime setting, an enum in mount_setattr(2):
// MOUNT_ATTR_RELATIME (0, the kernel's default), NOATIME or STRICTATIME.
// The "no" forms only undo the matching setting, as clearing MS_NOATIME,
// MS_RELATIME or MS_STRICTATIME does for runc and crun: the kernel then
// falls back to relatime. So "norelatime" alone leaves relatime, as it does
// with mount(2) on any kernel since 2.6.30 (use "strictatime" to update atime
// on every access).
var atimeOptions = map[string]func(cur uint64) uint64{
	"atime":         func(cur uint64) uint64 { return unless(cur, unix.MOUNT_ATTR_NOATIME) },
	"noatime":       func(uint64) uint64 { return unix.MOUNT_ATTR_NOATIME },
	"relatime":      func(uint64) uint64 { return unix.MOUNT_ATTR_RELATIME },
	"norelatime":    func(cur uint64) uint64 { return cur },
	"strictatime":   func(uint64) uint64 { return unix.MOUNT_ATTR_STRICTATIME },
	"nostrictatime": func(cur uint64) uint64 { return unless(cur, unix.MOUNT_ATTR_STRICTATIME) },
}

// atimeFlagOptions are the atime options as runc reads them for a bind:
// each sets or clears one of MS_NOATIME, MS_RELATIME and MS_STRICTATIME,
// and a bind keeps its source's atime setting unless one is left set
// ("noatime,atime" keeps it, as does "atime" on a noatime source).
var atimeFlagOptions = map[string]struct {
	flag  uint64
	clear bool
}{
	"noatime": {unix.MS_NOATIME, false}, "atime": {unix.MS_NOATIME, true},
	"relatime": {unix.MS_RELATIME, false}, "norelatime": {unix.MS_RELATIME, true},
	"strictatime": {unix.MS_STRICTATIME, false}, "nostrictatime": {unix.MS_STRICTATIME, true},
}

// unless returns the default (relatime) if cur is the setting to undo.
func unless(cur, undo uint64) uint64 {
	if cur == undo {
		return unix.MOUNT_ATTR_RELATIME
	}
	return cur
}

// propagationOptions set the mount's propagation. mounttree applies it to
// the whole tree of a Recursive (rbind) mount and to the one mount
// otherwise, so the "r" forms and the plain ones differ only on an rbind,
// where mounttree makes even "private" recursive (runc would change only
// the top mount). A plain bind and a new filesystem are a single mount, where
// both forms mean the same.
var propagationOptions = map[string]int{
	"private":     unix.MS_PRIVATE,
	"rprivate":    unix.MS_PRIVATE,
	"slave":       unix.MS_SLAVE,
	"rslave":      unix.MS_SLAVE,
	"shared":      unix.MS_SHARED,
	"rshared":     unix.MS_SHARED,
	"unbindable":  unix.MS_UNBINDABLE,
	"runbindable": unix.MS_UNBINDABLE,
}

// ignoredOptions are accepted and have no effect:
//   - defaults: mount(8)'s "rw,suid,dev,exec,auto,nouser,async", which is
//     what a mount gets when nothing else is said (runc: no flag).
//   - iversion, noiversion: MS_I_VERSION; filesystems with a change counter
//     keep it unconditionally today and fsconfig has no parameter for it.
//   - silent, loud: MS_SILENT only quiets the kernel log while mounting.
var ignoredOptions = map[string]bool{
	"defaults": true, "iversion": true, "noiversion": true, "silent": true, "loud": true,
}

// unsupportedOptions are refused until the library implements them:
//   - remount: change the flags of a mount that already exists at the
//     destination; every mount of our tree is new, so there is nothing to
//     remount, and making a new one instead is not what was asked.
var unsupportedOptions = map[string]bool{
	"remount": true,
}

// superblockOptions are the superblock flags fsconfig takes for any
// filesystem (see parseMountOptions); they travel as filesystem data.
var superblockOptions = []string{"sync", "async", "dirsync", "lazytime", "nolazytime", "mand", "nomand"}

// MountOptions lists, sorted, the mount options that Translate understands
// (for `containerfd features`): the ones config.md names, less those it
// refuses (remount), plus tmpcopyup (a runc/crun extension: the tmpfs
// starts with a copy of what the directory it covers holds). Any other
// option is passed to the filesystem as data.
func MountOptions() []string {
	var out []string
	for o := range attrOptions {
		out = append(out, o, "r"+o)
	}
	for o := range atimeOptions {
		out = append(out, o, "r"+o)
	}
	for o := range propagationOptions {
		out = append(out, o)
	}
	for o := range ignoredOptions {
		out = append(out, o)
	}
	out = append(out, superblockOptions...)
	out = append(out, "bind", "rbind", "idmap", "ridmap", "tmpcopyup")
	slices.Sort(out)
	return out
}

// mountOptions is what a mount's options say.
type mountOptions struct {
	bind, rbind bool
	// idmap asks for an idmapped bind; ridmap for its whole tree.
	idmap, ridmap bool
	// copyUp (tmpcopyup) fills a new tmpfs with a copy of what the
	// directory it goes on holds.
	copyUp bool
	// set and clear are MOUNT_ATTR_* flags to set and clear, the plain and
	// the "r" forms read in order: what a single mount gets. On an rbind,
	// topSet and topClear (the plain forms) go on the top mount, recSet
	// and recClear (the "r" forms) on the whole tree.
	set, clear, topSet, topClear, recSet, recClear uint64
	atime                                          uint64
	// recAtime: an "r" atime option ("rnoatime") puts the atime setting on
	// the whole tree of an rbind. atimeFlags are the plain atime options
	// read as runc reads them (atimeFlagOptions).
	recAtime   bool
	atimeFlags uint64
	// named: a plain flag or atime option, set or cleared: a bind's top
	// mount then gets the named flags and no others (runc's remount).
	named       bool
	propagation int
	// data are filesystem options for fsconfig (with the superblock flags,
	// in the order given); they mean nothing to a bind.
	data []string
}

// parseMountOptions reads opts of mounts[i]; refused options are reported
// to p.
func parseMountOptions(p *problems, i int, opts []string) mountOptions {
	var mo mountOptions
	for j, o := range opts {
		if f, ok := attrOptions[o]; ok {
			mo.apply(f.flag, f.clear, true)
			mo.named = true
			continue
		}
		// The recursive forms: "rro", "rnosuid", "ratime", …
		if r, ok := strings.CutPrefix(o, "r"); ok {
			if f, ok := attrOptions[r]; ok {
				mo.apply(f.flag, f.clear, false)
				continue
			}
			if f, ok := atimeOptions[r]; ok {
				mo.atime = f(mo.atime)
				mo.recAtime = true
				continue
			}
		}
		if f, ok := atimeOptions[o]; ok {
			mo.atime = f(mo.atime)
			mo.named = true
			if f := atimeFlagOptions[o]; f.clear {
				mo.atimeFlags &^= f.flag
			} else {
				mo.atimeFlags |= f.flag
			}
			continue
		}
		if prop, ok := propagationOptions[o]; ok {
			mo.propagation = prop
			continue
		}
		switch {
		case o == "bind":
			mo.bind = true
		case o == "rbind":
			mo.bind, mo.rbind = true, true
		case o == "idmap":
			mo.idmap = true
		case o == "ridmap":
			mo.idmap, mo.ridmap = true, true
		case o == "tmpcopyup":
			mo.copyUp = true
		case ignoredOptions[o]:
		case unsupportedOptions[o]:
			p.add(fmt.Errorf("mounts[%d].options[%d] %q: %w", i, j, o, ErrNotSupported))
		case o == "":
			p.addf("mounts[%d].options[%d]: empty", i, j)
		default:
			// Everything else is an option of the filesystem (config.md:
			// "Runtimes SHOULD treat unknown options as filesystem-specific
			// ones"), given to fsconfig, which rejects what the filesystem
			// does not know. That includes the flags of the superblock
			// rather than the mount ("sync", "async", "dirsync", "lazytime",
			// "nolazytime", "mand", "nomand"): mount_setattr has no
			// MOUNT_ATTR for them, but fsconfig(FSCONFIG_SET_FLAG) takes
			// them for any filesystem (checked on Linux 6.18 with tmpfs,
			// proc, sysfs, mqueue and devpts). On a bind they are dropped
			// with the other filesystem options (see translateMount): the
			// bind shares its superblock with the host.
			mo.data = append(mo.data, o)
		}
	}
	return mo
}

// apply records one flag option; plain tells "rw" from "rrw".
func (mo *mountOptions) apply(flag uint64, clear, plain bool) {
	setClear(&mo.set, &mo.clear, flag, clear)
	if plain {
		setClear(&mo.topSet, &mo.topClear, flag, clear)
	} else {
		setClear(&mo.recSet, &mo.recClear, flag, clear)
	}
}

// setClear records flag in set, or in clear, and takes it out of the other.
func setClear(set, clear *uint64, flag uint64, isClear bool) {
	if isClear {
		*set &^= flag
		*clear |= flag
		return
	}
	*set |= flag
	*clear &^= flag
}

// isBind tells whether m is a bind mount: config.md says a mount is a bind
// if its options have "bind" or "rbind"; like runc and crun we also take
// type "bind" (without those options: a non-recursive bind).
func isBind(m specs.Mount) bool {
	if m.Type == "bind" {
		return true
	}
	for _, o := range m.Options {
		if o == "bind" || o == "rbind" {
			return true
		}
	}
	return false
}

// Warnings are what s has that runc warns about and takes: a relative
// mount destination (deprecated), which is relative to /, and what
// ProcessWarnings lists.
func Warnings(s *specs.Spec) []string {
	w := ProcessWarnings(s.Process)
	for i, m := range s.Mounts {
		if m.Destination != "" && !path.IsAbs(m.Destination) {
			w = append(w, fmt.Sprintf("mounts[%d].destination %q: not absolute, taken as relative to / (deprecated)", i, m.Destination))
		}
	}
	return w
}

// checkMount reports the problems of mounts[i].
func checkMount(p *problems, i int, m specs.Mount) {
	field := fmt.Sprintf("mounts[%d]", i)
	switch {
	case m.Destination == "":
		p.addf("%s.destination: empty", field)
	case strings.IndexByte(m.Destination, 0) >= 0:
		p.addf("%s.destination %q: contains a NUL byte", field, m.Destination)
	case path.Join("/", m.Destination) == "/":
		// runc refuses it too: the root is root.path.
		p.addf("%s.destination %q: cannot mount over the root (that is root.path)", field, m.Destination)
	}
	bind := isBind(m)
	switch {
	case bind && m.Source == "":
		p.addf("%s.source: empty (a bind mount needs one)", field)
	case !bind && m.Type == "":
		p.addf("%s.type: empty (a filesystem type, or \"bind\"/\"rbind\" in options for a bind mount)", field)
	}
	if strings.IndexByte(m.Source, 0) >= 0 || strings.IndexByte(m.Type, 0) >= 0 {
		p.addf("%s: source or type contains a NUL byte", field)
	}
	mo := parseMountOptions(p, i, m.Options)
	// config.md: mappings on a mount make it idmapped; runc takes them on
	// binds only, and both or neither.
	if (mo.idmap || len(m.UIDMappings) > 0 || len(m.GIDMappings) > 0) && !bind {
		p.addf("%s: idmapped mounts are bind mounts only", field)
	}
	// tmpcopyup: runc and crun copy up into tmpfs mounts only.
	if mo.copyUp && (bind || m.Type != "tmpfs") {
		p.addf("%s: tmpcopyup is for tmpfs mounts only", field)
	}
	if (len(m.UIDMappings) > 0) != (len(m.GIDMappings) > 0) {
		p.addf("%s: uidMappings and gidMappings go together", field)
	}
	for j, r := range append(slices.Clone(m.UIDMappings), m.GIDMappings...) {
		if r.Size == 0 {
			p.addf("%s: mapping %d has size 0", field, j)
		}
	}
}

// TranslateMount checks and translates one mount, for a mount made later
// in a running container; a relative bind source is taken relative to dir.
func TranslateMount(m specs.Mount, dir string) (mounttree.Mount, error) {
	p := &problems{}
	checkMount(p, 0, m)
	if err := p.err(); err != nil {
		return mounttree.Mount{}, err
	}
	return translateMount(dir, 0, m), nil
}

// translateMount turns a valid mounts[i] into a mounttree.Mount; bundle is
// absolute.
func translateMount(bundle string, i int, m specs.Mount) mounttree.Mount {
	mo := parseMountOptions(&problems{}, i, m.Options)
	out := mounttree.Mount{
		Type:   m.Type,
		Source: m.Source,
		// config.md allows a relative destination for old tools; runc
		// takes it as relative to / and warns (Warnings).
		Target:      path.Join("/", m.Destination),
		Propagation: mo.propagation,
		Attr:        mo.set | mo.atime,
	}
	if !isBind(m) {
		// A new filesystem starts with no flags: there is nothing to clear,
		// and mounttree takes no ClearAttr for it.
		out.Data = mo.data
		out.CopyUp = mo.copyUp
		return out
	}
	// Whatever the type says, it is a bind (config.md: the type of a bind is
	// a dummy, often "none").
	out.Type = "bind"
	out.Recursive = mo.rbind
	out.IDMap = mo.idmap || len(m.UIDMappings) > 0
	out.RecursiveIDMap = mo.ridmap
	out.UIDMappings = append(out.UIDMappings, m.UIDMappings...)
	out.GIDMappings = append(out.GIDMappings, m.GIDMappings...)
	// config.md: bind sources are absolute or relative to the bundle.
	if !filepath.IsAbs(out.Source) {
		out.Source = filepath.Join(bundle, out.Source)
	}
	// On an rbind the plain options go on the top mount and the "r" ones
	// on the tree ("ro" leaves a submount writable, "rro" does not), as
	// runc does; a plain bind is one mount, which gets them all in order.
	out.ClearAttr = mo.clear
	if mo.rbind {
		out.Attr = mo.topSet | mo.atime
		out.ClearAttr = mo.topClear
		out.RecAttr, out.RecClearAttr, out.RecAtime = mo.recSet, mo.recClear, mo.recAtime
	}
	// As runc: a bind that names a flag gets those it names and no others
	// (Exact); one without an atime option keeps the source's.
	out.Exact = mo.named
	out.KeepAtime = mo.atimeFlags == 0 && !mo.recAtime
	// Filesystem options mean nothing to a bind; runc passes them to a bind
	// mount(2), which ignores them, and so do we.
	return out
}
