package spec

import (
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/containerfd/containerfd/libcontainerfd"
	"github.com/containerfd/containerfd/libcontainerfd/caps"
	"github.com/containerfd/containerfd/libcontainerfd/mounttree"
)

// Translate validates s (see Validate) and turns it into the library's plan:
// the container's Config and its init Process (without stdio, which the
// caller sets). bundle is the directory config.json came from; relative
// paths in s are relative to it.
//
// Left to the caller: hooks and annotations (Config.Labels), the CLI-only
// settings (NoPivot, NoNewKeyring, KillOnClose), and the cgroup when
// linux.cgroupsPath is empty: the container id is not known here, and runc's
// default is the id, relative to the runtime's own cgroup, so Config.Cgroup
// is then left empty for the CLI to fill in. A non-empty cgroupsPath is
// copied as is (the systemd form "slice:prefix:name" too); what it means is
// the caller's and the library's business.
func Translate(s *specs.Spec, bundle string) (*libcontainerfd.Config, *libcontainerfd.Process, error) {
	if err := Validate(s, bundle); err != nil {
		return nil, nil, err
	}
	bundle, err := filepath.Abs(bundle)
	if err != nil {
		return nil, nil, fmt.Errorf("bundle %s: %w", bundle, err)
	}
	l := s.Linux
	if l == nil {
		l = &specs.Linux{}
	}
	cfg := &libcontainerfd.Config{
		// The root is built from nothing: in the container's mount
		// namespace, new or joined, or without one on the rootfs in ours.
		Flags:        libcontainerfd.NewEmptyFS,
		UIDMappings:  slices.Clone(l.UIDMappings),
		GIDMappings:  slices.Clone(l.GIDMappings),
		Cgroup:       l.CgroupsPath,
		Rootfs:       rootPath(s.Root, bundle),
		RootReadonly: s.Root.Readonly,
		Hostname:     s.Hostname,
		Domainname:   s.Domainname,
		// Empty is 0, the library's default (private). runc's default is
		// rslave, so that host mounts show up under binds of the host;
		// our tree is made of clones that start private, and we keep it so
		// unless asked. The library applies any setting recursively from
		// /, so "slave" and "rslave" are the same here.
		RootPropagation: propagations[l.RootfsPropagation],
		MaskedPaths:     cleanPaths(l.MaskedPaths),
		ReadonlyPaths:   cleanPaths(l.ReadonlyPaths),
		Sysctl:          maps.Clone(l.Sysctl),
	}
	if sc := l.Seccomp; sc != nil && (sc.DefaultAction != "" || len(sc.Syscalls) > 0) {
		cfg.Seccomp = sc
	}
	if r := l.IntelRdt; r != nil {
		rdt := *r
		rdt.Schemata = slices.Clone(r.Schemata)
		cfg.IntelRdt = &rdt
	}
	for dev, d := range l.NetDevices {
		if cfg.NetDevices == nil {
			cfg.NetDevices = map[string]string{}
		}
		cfg.NetDevices[dev] = d.Name
	}
	if len(l.TimeOffsets) > 0 {
		cfg.TimeOffsets = maps.Clone(l.TimeOffsets)
	}
	if mp := l.MemoryPolicy; mp != nil {
		mode := mempolModes[mp.Mode]
		for _, f := range mp.Flags {
			mode |= mempolFlags[f]
		}
		cfg.MemoryPolicy = &libcontainerfd.MemoryPolicy{Mode: mode, Nodes: mp.Nodes}
	}
	if pe := l.Personality; pe != nil {
		v := personalities[pe.Domain]
		cfg.Personality = &v
	}
	for _, n := range l.Namespaces {
		cfg.Namespaces = append(cfg.Namespaces, libcontainerfd.Namespace{Type: namespaceTypes[n.Type], Path: n.Path})
	}
	for i, m := range s.Mounts {
		cfg.Mounts = append(cfg.Mounts, translateMount(bundle, i, m))
	}
	labelMounts(cfg.Mounts, l.MountLabel)
	// runc creates no device nodes and no /dev links when /dev is a bind
	// mount (its needsSetupDev): the host's /dev would get them. Neither
	// do we; the listed devices are then the bound directory's business.
	if !devIsBind(cfg.Mounts) {
		cfg.Devices = translateDevices(l.Devices)
		cfg.Links = links(cfg.Mounts, l.Devices)
	}
	if cfg.Resources, err = translateResources(l.Resources, l.Devices); err != nil {
		return nil, nil, err
	}
	p := translateProcess(s.Process)
	// config.md: execCPUAffinity is not applicable to init; runc gives
	// it to the processes exec starts.
	p.CPUAffinity = nil
	return cfg, p, nil
}

// labelMounts gives the new filesystems among mounts the SELinux label
// (linux.mountLabel) by a "context=" option, as runc does: not binds, and
// not proc, sysfs and the cgroup filesystems, whose labels the policy sets.
func labelMounts(mounts []mounttree.Mount, label string) {
	if label == "" {
		return
	}
	for i, m := range mounts {
		switch m.Type {
		case "bind", "proc", "sysfs", "cgroup", "cgroup2":
			continue
		}
		mounts[i].Data = append(m.Data, "context="+label)
	}
}

func cleanPaths(in []string) []string {
	var out []string
	for _, p := range in {
		out = append(out, path.Clean(p))
	}
	return out
}

func devIsBind(mounts []mounttree.Mount) bool {
	for _, m := range mounts {
		if m.Target == "/dev" && m.Type == "bind" {
			return true
		}
	}
	return false
}

// defaultDevice is one of the devices every container gets
// (config-linux.md "Default Devices"; runc's AllowedDevices with a path).
type defaultDevice struct {
	path         string
	major, minor int64
}

// In runc's order, which is the order of the binds that stand for them in
// a container with a user namespace (mountinfo lists them so).
var defaultDevices = []defaultDevice{
	{"/dev/null", 1, 3},
	{"/dev/random", 1, 8},
	{"/dev/full", 1, 7},
	{"/dev/tty", 5, 0},
	{"/dev/zero", 1, 5},
	{"/dev/urandom", 1, 9},
}

// translateDevices returns the default devices, except those linux.devices
// lists by path (the listed one wins, as in runc), then linux.devices:
// paths cleaned, type "u" (unbuffered character, mknod(1)) as "c", and
// runc's defaults for what is left out: mode 0666 without file type bits,
// owner 0:0 (ids in the container).
func translateDevices(devs []specs.LinuxDevice) []specs.LinuxDevice {
	listed := listedDevices(devs)
	var out []specs.LinuxDevice
	for _, d := range defaultDevices {
		if !listed[d.path] {
			out = append(out, device(d.path, "c", d.major, d.minor, 0o666, 0, 0))
		}
	}
	for _, d := range devs {
		typ := d.Type
		if typ == "u" {
			typ = "c"
		}
		mode := os.FileMode(0o666)
		if d.FileMode != nil {
			mode = *d.FileMode &^ unix.S_IFMT
		}
		var uid, gid uint32
		if d.UID != nil {
			uid = *d.UID
		}
		if d.GID != nil {
			gid = *d.GID
		}
		out = append(out, device(path.Clean(d.Path), typ, d.Major, d.Minor, mode, uid, gid))
	}
	return out
}

func device(p, typ string, major, minor int64, mode os.FileMode, uid, gid uint32) specs.LinuxDevice {
	return specs.LinuxDevice{Path: p, Type: typ, Major: major, Minor: minor, FileMode: &mode, UID: &uid, GID: &gid}
}

func listedDevices(devs []specs.LinuxDevice) map[string]bool {
	listed := map[string]bool{}
	for _, d := range devs {
		listed[path.Clean(d.Path)] = true
	}
	return listed
}

// links are runc's /dev symlinks (its setupDevSymlinks and setupPtmx).
func links(mounts []mounttree.Mount, devs []specs.LinuxDevice) []libcontainerfd.Link {
	out := []libcontainerfd.Link{
		{Path: "/dev/fd", Target: "/proc/self/fd"},
		{Path: "/dev/stdin", Target: "/proc/self/fd/0"},
		{Path: "/dev/stdout", Target: "/proc/self/fd/1"},
		{Path: "/dev/stderr", Target: "/proc/self/fd/2"},
	}
	// config-linux.md: /dev/ptmx is a bind or symlink of the container's
	// /dev/pts/ptmx; only meaningful with a devpts there, and not when
	// linux.devices has a /dev/ptmx of its own.
	hasDevpts := slices.ContainsFunc(mounts, func(m mounttree.Mount) bool {
		return m.Target == "/dev/pts" && m.Type == "devpts"
	})
	if hasDevpts && !listedDevices(devs)["/dev/ptmx"] {
		out = append(out, libcontainerfd.Link{Path: "/dev/ptmx", Target: "pts/ptmx"})
	}
	// runc links /dev/core only on hosts that have /proc/kcore.
	if _, err := os.Lstat("/proc/kcore"); err == nil {
		out = append(out, libcontainerfd.Link{Path: "/dev/core", Target: "/proc/kcore"})
	}
	return out
}

// translateResources copies r (the Config must not share it with the spec)
// and gives its device cgroup rules runc's meaning. runc always applies the
// rules to a cgroup that allows no device (its emulator starts as an
// allow-list) and appends its own allow rules (AllowedDevices): mknod of
// any character or block device, the default devices that linux.devices
// does not override, every pty (136:*), /dev/ptmx (5:2) and /dev/net/tun
// (10:200, kept for compatibility). config-linux.md applies the list in
// order over what the cgroup inherits (usually: every device), so the same
// result takes a deny-all rule first, unless the list starts with one
// already (as Default's, containerd's and podman's do), and runc's allow
// rules last; without the latter, the usual deny-all would deny /dev/null.
//
// Without linux.resources the container gets no device rules at all (runc
// would still apply its allow-list): that is the rootless case, where the
// runtime cannot set device rules anyway.
func translateResources(r *specs.LinuxResources, devs []specs.LinuxDevice) (*specs.LinuxResources, error) {
	if r == nil {
		return nil, nil
	}
	data, err := json.Marshal(r)
	if err != nil {
		return nil, fmt.Errorf("linux.resources: %w", err)
	}
	var out specs.LinuxResources
	if err := json.Unmarshal(data, &out); err != nil {
		return nil, fmt.Errorf("linux.resources: %w", err)
	}
	rules := out.Devices[:0:0]
	if len(out.Devices) == 0 || !isDenyAll(out.Devices[0]) {
		rules = append(rules, specs.LinuxDeviceCgroup{Allow: false, Access: "rwm"})
	}
	rules = append(rules, out.Devices...)
	rules = append(rules,
		specs.LinuxDeviceCgroup{Allow: true, Type: "c", Access: "m"},
		specs.LinuxDeviceCgroup{Allow: true, Type: "b", Access: "m"})
	listed := listedDevices(devs)
	for _, d := range defaultDevices {
		if !listed[d.path] {
			rules = append(rules, deviceRule(d.major, d.minor))
		}
	}
	pts := deviceRule(136, 0)
	pts.Minor = nil // all
	out.Devices = append(rules, pts, deviceRule(5, 2), deviceRule(10, 200))
	return &out, nil
}

// isDenyAll tells whether rule denies every access to every device.
func isDenyAll(rule specs.LinuxDeviceCgroup) bool {
	return !rule.Allow && (rule.Type == "" || rule.Type == "a") && rule.Major == nil && rule.Minor == nil &&
		strings.ContainsRune(rule.Access, 'r') && strings.ContainsRune(rule.Access, 'w') && strings.ContainsRune(rule.Access, 'm')
}

func deviceRule(major, minor int64) specs.LinuxDeviceCgroup {
	return specs.LinuxDeviceCgroup{Allow: true, Type: "c", Major: &major, Minor: &minor, Access: "rwm"}
}

// TranslateProcess checks and translates a process to run in a container
// that exists (exec: runc's --process file, or the container's process
// changed by exec's flags) as Translate does the init process. Errors name
// the fields as "process.<field>", like Validate's; what depends on the
// container (are the ids mapped?) is left to the library.
func TranslateProcess(pr *specs.Process) (*libcontainerfd.Process, error) {
	p := &problems{}
	if pr == nil {
		p.addf("process: missing")
		return nil, p.err()
	}
	checkProcessFields(p, pr)
	if err := p.err(); err != nil {
		return nil, err
	}
	return translateProcess(pr), nil
}

// ProcessWarnings lists what the process's config asks for that it will
// not get, and that runc too leaves out with a warning rather than fail:
// capability names unknown here or to the running kernel, ambient
// capabilities that are not both permitted and inheritable.
func ProcessWarnings(pr *specs.Process) []string {
	if pr == nil || pr.Capabilities == nil {
		return nil
	}
	s, err := caps.Parse(pr.Capabilities)
	if err != nil {
		return nil // the library names it, at start
	}
	return s.Warnings
}

func translateProcess(pr *specs.Process) *libcontainerfd.Process {
	p := &libcontainerfd.Process{
		Args:            slices.Clone(pr.Args),
		Env:             slices.Clone(pr.Env),
		Cwd:             path.Clean(pr.Cwd),
		UID:             pr.User.UID,
		GID:             pr.User.GID,
		AdditionalGids:  slices.Clone(pr.User.AdditionalGids),
		NoNewPrivileges: pr.NoNewPrivileges,
		Rlimits:         slices.Clone(pr.Rlimits),
		Terminal:        pr.Terminal,
		AppArmorProfile: pr.ApparmorProfile,
		SELinuxLabel:    pr.SelinuxLabel,
	}
	if pr.User.Umask != nil {
		u := *pr.User.Umask
		p.Umask = &u
	}
	if sc := pr.Scheduler; sc != nil {
		attr := &unix.SchedAttr{Size: unix.SizeofSchedAttr, Policy: schedPolicies[sc.Policy],
			Nice: sc.Nice, Priority: uint32(sc.Priority), Runtime: sc.Runtime, Deadline: sc.Deadline, Period: sc.Period}
		for _, f := range sc.Flags {
			attr.Flags |= schedFlags[f]
		}
		p.Scheduler = attr
	}
	if io := pr.IOPriority; io != nil {
		v := ioClasses[io.Class]<<13 | io.Priority
		p.IOPriority = &v
	}
	if a := pr.ExecCPUAffinity; a != nil {
		p.CPUAffinity = &libcontainerfd.CPUAffinity{Initial: a.Initial, Final: a.Final}
	}
	if pr.OOMScoreAdj != nil {
		a := *pr.OOMScoreAdj
		p.OOMScoreAdj = &a
	}
	if c := pr.Capabilities; c != nil {
		p.Capabilities = &specs.LinuxCapabilities{
			Bounding:    slices.Clone(c.Bounding),
			Effective:   slices.Clone(c.Effective),
			Inheritable: slices.Clone(c.Inheritable),
			Permitted:   slices.Clone(c.Permitted),
			Ambient:     slices.Clone(c.Ambient),
		}
	}
	// config.md: consoleSize is ignored without a terminal.
	if pr.Terminal && pr.ConsoleSize != nil {
		b := *pr.ConsoleSize
		p.ConsoleSize = &b
	}
	return p
}
