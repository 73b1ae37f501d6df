package spec

import (
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"math/bits"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/containerfd/containerfd/libcontainerfd"
	"github.com/containerfd/containerfd/libcontainerfd/idmap"
	"github.com/containerfd/containerfd/libcontainerfd/lsm"
	"github.com/containerfd/containerfd/libcontainerfd/resctrl"
	"github.com/containerfd/containerfd/libcontainerfd/seccomp"

	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// problems collects what is wrong with a configuration.
type problems struct{ errs []error }

func (p *problems) add(err error) { p.errs = append(p.errs, err) }

func (p *problems) addf(format string, a ...any) { p.add(fmt.Errorf(format, a...)) }

// notSupported reports a field the library cannot honour yet.
func (p *problems) notSupported(field string) {
	p.add(fmt.Errorf("%s: %w", field, ErrNotSupported))
}

func (p *problems) err() error {
	if len(p.errs) == 0 {
		return nil
	}
	return &InvalidError{Problems: p.errs}
}

// namespaceTypes are the namespaces of config-linux.md and their clone
// flags.
var namespaceTypes = map[specs.LinuxNamespaceType]int{
	specs.PIDNamespace:     unix.CLONE_NEWPID,
	specs.NetworkNamespace: unix.CLONE_NEWNET,
	specs.MountNamespace:   unix.CLONE_NEWNS,
	specs.IPCNamespace:     unix.CLONE_NEWIPC,
	specs.UTSNamespace:     unix.CLONE_NEWUTS,
	specs.UserNamespace:    unix.CLONE_NEWUSER,
	specs.CgroupNamespace:  unix.CLONE_NEWCGROUP,
	specs.TimeNamespace:    unix.CLONE_NEWTIME,
}

// namespaces are the namespaces a configuration lists: type → path ("" for
// a new one). A type listed twice keeps its first entry.
type namespaces map[specs.LinuxNamespaceType]string

func namespacesOf(s *specs.Spec) namespaces {
	ns := namespaces{}
	if s.Linux == nil {
		return ns
	}
	for _, n := range s.Linux.Namespaces {
		if _, dup := ns[n.Type]; !dup {
			ns[n.Type] = n.Path
		}
	}
	return ns
}

// has tells whether the container gets a namespace of type t of its own
// (new or joined), rather than the runtime's.
func (ns namespaces) has(t specs.LinuxNamespaceType) bool { _, ok := ns[t]; return ok }

// isNew tells whether the container gets a new namespace of type t.
func (ns namespaces) isNew(t specs.LinuxNamespaceType) bool { p, ok := ns[t]; return ok && p == "" }

// rlimitTypes are the RLIMIT_* names of getrlimit(2).
var rlimitTypes = map[string]bool{
	"RLIMIT_AS": true, "RLIMIT_CORE": true, "RLIMIT_CPU": true, "RLIMIT_DATA": true,
	"RLIMIT_FSIZE": true, "RLIMIT_LOCKS": true, "RLIMIT_MEMLOCK": true, "RLIMIT_MSGQUEUE": true,
	"RLIMIT_NICE": true, "RLIMIT_NOFILE": true, "RLIMIT_NPROC": true, "RLIMIT_RSS": true,
	"RLIMIT_RTPRIO": true, "RLIMIT_RTTIME": true, "RLIMIT_SIGPENDING": true, "RLIMIT_STACK": true,
}

// propagations are the values of linux.rootfsPropagation: config-linux.md
// names shared, slave, private and unbindable; runc also takes the "r"
// forms, which we take too (the library applies the setting to the whole
// tree either way).
var propagations = map[string]int{
	"private": unix.MS_PRIVATE, "rprivate": unix.MS_PRIVATE,
	"slave": unix.MS_SLAVE, "rslave": unix.MS_SLAVE,
	"shared": unix.MS_SHARED, "rshared": unix.MS_SHARED,
	"unbindable": unix.MS_UNBINDABLE, "runbindable": unix.MS_UNBINDABLE,
}

// Validate checks s, loaded from bundle, and returns an *InvalidError with
// every problem found, each naming its field, or nil. It reads the file
// system for what config.md requires to exist: the root directory and the
// namespace files to join. Settings containerfd does not implement yet are
// problems that wrap ErrNotSupported.
//
// Where the spec leaves a choice, Validate follows runc: process is
// required (create and run need it), the hostname needs a UTS namespace,
// sysctls must belong to a namespace of the container.
func Validate(s *specs.Spec, bundle string) error {
	p := &problems{}
	if s == nil {
		p.addf("configuration: missing")
		return p.err()
	}
	bundle, err := filepath.Abs(bundle)
	if err != nil {
		p.addf("bundle %s: %v", bundle, err)
		return p.err()
	}
	ns := namespacesOf(s)

	checkVersion(p, s.Version)
	checkRoot(p, s.Root, bundle)
	for i, m := range s.Mounts {
		checkMount(p, i, m)
	}
	checkProcess(p, s, ns)
	checkUTS(p, "hostname", s.Hostname, ns)
	checkUTS(p, "domainname", s.Domainname, ns)
	checkHooks(p, s.Hooks)
	if _, ok := s.Annotations[""]; ok {
		p.addf("annotations: empty key")
	}
	checkLinux(p, s, ns)
	return p.err()
}

func checkVersion(p *problems, v string) {
	major, ok := semverMajor(v)
	switch {
	case v == "":
		p.addf("ociVersion: missing")
	case !ok:
		p.addf("ociVersion %q: not a SemVer 2.0.0 version", v)
	case major != strconv.Itoa(specs.VersionMajor):
		// config.md: compatible within a major version only.
		p.addf("ociVersion %q: unsupported major version (want %d.x)", v, specs.VersionMajor)
	}
}

// semverMajor returns the major version of v if v is a SemVer 2.0.0 version
// (semver.org's grammar). Written out rather than semver.org's regular
// expression, whose compilation at init cost every process 0.1 ms.
func semverMajor(v string) (string, bool) {
	v, build, ok := strings.Cut(v, "+")
	if ok && !semverIdents(build, false) {
		return "", false
	}
	core, pre, ok := strings.Cut(v, "-")
	if ok && !semverIdents(pre, true) {
		return "", false
	}
	nums := strings.Split(core, ".")
	if len(nums) != 3 {
		return "", false
	}
	for _, n := range nums {
		if !isDigits(n) || len(n) > 1 && n[0] == '0' {
			return "", false
		}
	}
	return nums[0], true
}

// semverIdents reports whether s is dot-separated non-empty identifiers of
// [0-9A-Za-z-]; in a pre-release, numeric ones have no leading zero.
func semverIdents(s string, pre bool) bool {
	for id := range strings.SplitSeq(s, ".") {
		if id == "" || strings.IndexFunc(id, func(r rune) bool {
			return !(r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r == '-')
		}) >= 0 {
			return false
		}
		if pre && isDigits(id) && len(id) > 1 && id[0] == '0' {
			return false
		}
	}
	return true
}

func isDigits(s string) bool {
	return s != "" && strings.Trim(s, "0123456789") == ""
}

func checkRoot(p *problems, root *specs.Root, bundle string) {
	if root == nil {
		p.addf("root: missing")
		return
	}
	if root.Path == "" {
		p.addf("root.path: empty")
		return
	}
	abs := rootPath(root, bundle)
	st, err := os.Stat(abs)
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		p.add(fmt.Errorf("root.path %q: %s: %w", root.Path, abs, err))
		return
	}
	if !st.IsDir() {
		p.add(fmt.Errorf("root.path %q: %s: %w", root.Path, abs, unix.ENOTDIR))
	}
}

// rootPath is root.path made absolute: config.md takes a relative path as
// relative to the bundle.
func rootPath(root *specs.Root, bundle string) string {
	if filepath.IsAbs(root.Path) {
		return filepath.Clean(root.Path)
	}
	return filepath.Join(bundle, root.Path)
}

func checkProcess(p *problems, s *specs.Spec, ns namespaces) {
	if s.Process == nil {
		// config.md makes process optional until start; runc requires it
		// for create (and run), and so do we.
		p.addf("process: missing")
		return
	}
	checkProcessFields(p, s.Process)
	checkUserMapped(p, s, ns)
}

// checkProcessFields checks what a process says by itself (for init, or for
// exec where the container's namespaces are not in view).
func checkProcessFields(p *problems, pr *specs.Process) {
	if len(pr.Args) == 0 {
		p.addf("process.args: empty")
	} else if pr.Args[0] == "" {
		p.addf("process.args[0]: empty")
	}
	for i, a := range pr.Args {
		if strings.IndexByte(a, 0) >= 0 {
			p.addf("process.args[%d] %q: contains a NUL byte", i, a)
		}
	}
	for i, e := range pr.Env {
		if k, _, ok := strings.Cut(e, "="); !ok || k == "" || strings.IndexByte(e, 0) >= 0 {
			p.addf("process.env[%d] %q: want KEY=value", i, e)
		}
	}
	switch {
	case pr.Cwd == "":
		p.addf("process.cwd: empty (want an absolute path)")
	case !path.IsAbs(pr.Cwd):
		p.addf("process.cwd %q: must be absolute", pr.Cwd)
	case strings.IndexByte(pr.Cwd, 0) >= 0:
		p.addf("process.cwd %q: contains a NUL byte", pr.Cwd)
	}
	if u := pr.User.Umask; u != nil && *u > 0o777 {
		p.addf("process.user.umask %#o: more than 0777", *u)
	}
	seen := map[string]bool{}
	for i, r := range pr.Rlimits {
		field := fmt.Sprintf("process.rlimits[%d]", i)
		switch {
		case !rlimitTypes[r.Type]:
			p.addf("%s.type %q: unknown rlimit", field, r.Type)
		case seen[r.Type]:
			p.addf("process.rlimits: %q listed twice", r.Type)
		case r.Soft > r.Hard:
			p.addf("%s %q: soft limit %d above hard limit %d", field, r.Type, r.Soft, r.Hard)
		}
		seen[r.Type] = true
	}
	if a := pr.OOMScoreAdj; a != nil && (*a < -1000 || *a > 1000) {
		p.addf("process.oomScoreAdj %d: out of range [-1000, 1000]", *a)
	}
	// Running without the label asked for would be running unconfined:
	// a host without the LSM is an error, as it is for crun.
	if pr.ApparmorProfile != "" {
		if err := lsm.Check(lsm.AppArmor); err != nil {
			p.addf("process.apparmorProfile %q: %v", pr.ApparmorProfile, err)
		}
	}
	if pr.SelinuxLabel != "" {
		if err := lsm.Check(lsm.SELinux); err != nil {
			p.addf("process.selinuxLabel %q: %v", pr.SelinuxLabel, err)
		}
	}
	if sc := pr.Scheduler; sc != nil {
		if _, ok := schedPolicies[sc.Policy]; !ok {
			p.addf("process.scheduler.policy %q: unknown policy", sc.Policy)
		}
		for i, f := range sc.Flags {
			if _, ok := schedFlags[f]; !ok {
				p.addf("process.scheduler.flags[%d] %q: unknown flag", i, f)
			}
		}
	}
	if io := pr.IOPriority; io != nil {
		if _, ok := ioClasses[io.Class]; !ok {
			p.addf("process.ioPriority.class %q: unknown class", io.Class)
		}
		if io.Priority < 0 || io.Priority > 7 {
			p.addf("process.ioPriority.priority %d: want 0 to 7", io.Priority)
		}
	}
	if a := pr.ExecCPUAffinity; a != nil {
		for field, list := range map[string]string{"initial": a.Initial, "final": a.Final} {
			if list == "" {
				continue
			}
			if _, err := libcontainerfd.ParseCPUList(list); err != nil {
				p.addf("process.execCPUAffinity.%s %q: %v", field, list, err)
			}
		}
	}
}

// checkUserMapped checks, in a new user namespace, that the process's ids
// are mapped: the kernel would refuse setuid/setgid to them later, with an
// error that names nothing.
func checkUserMapped(p *problems, s *specs.Spec, ns namespaces) {
	if !ns.isNew(specs.UserNamespace) || s.Linux == nil {
		return
	}
	u := s.Process.User
	if len(s.Linux.UIDMappings) > 0 && !mapped(s.Linux.UIDMappings, u.UID) {
		p.addf("process.user.uid %d: not mapped by linux.uidMappings", u.UID)
	}
	if len(s.Linux.GIDMappings) > 0 {
		if !mapped(s.Linux.GIDMappings, u.GID) {
			p.addf("process.user.gid %d: not mapped by linux.gidMappings", u.GID)
		}
		for i, g := range u.AdditionalGids {
			if !mapped(s.Linux.GIDMappings, g) {
				p.addf("process.user.additionalGids[%d] %d: not mapped by linux.gidMappings", i, g)
			}
		}
	}
}

func mapped(maps []specs.LinuxIDMapping, id uint32) bool {
	_, ok := idmap.Map(maps).ToHost(id)
	return ok
}

// checkUTS checks hostname or domainname: like runc, setting one needs a
// UTS namespace of the container's own (it would rename the host).
func checkUTS(p *problems, field, value string, ns namespaces) {
	if value == "" {
		return
	}
	if !ns.has(specs.UTSNamespace) {
		p.addf("%s %q: set without a uts namespace", field, value)
	}
	if len(value) > 64 { // __NEW_UTS_LEN
		p.addf("%s %q: longer than 64 bytes", field, value)
	}
}

func checkHooks(p *problems, h *specs.Hooks) {
	if h == nil {
		return
	}
	for _, list := range []struct {
		name  string
		hooks []specs.Hook
	}{
		{"prestart", h.Prestart}, //nolint:staticcheck // deprecated, still valid
		{"createRuntime", h.CreateRuntime},
		{"createContainer", h.CreateContainer},
		{"startContainer", h.StartContainer},
		{"poststart", h.Poststart},
		{"poststop", h.Poststop},
	} {
		for i, hk := range list.hooks {
			field := fmt.Sprintf("hooks.%s[%d]", list.name, i)
			if !path.IsAbs(hk.Path) {
				p.addf("%s.path %q: must be absolute", field, hk.Path)
			}
			if hk.Timeout != nil && *hk.Timeout <= 0 {
				p.addf("%s.timeout %d: must be greater than zero", field, *hk.Timeout)
			}
		}
	}
}

func checkLinux(p *problems, s *specs.Spec, ns namespaces) {
	l := s.Linux
	if l == nil {
		l = &specs.Linux{}
	}
	checkNamespaces(p, l.Namespaces)
	if !ns.has(specs.MountNamespace) {
		// runc's check: the paths would be masked in the runtime's mount
		// namespace, which the container shares.
		if len(l.MaskedPaths) > 0 {
			p.addf(`linux.maskedPaths: set without a "mount" namespace`)
		}
		if len(l.ReadonlyPaths) > 0 {
			p.addf(`linux.readonlyPaths: set without a "mount" namespace`)
		}
	}
	checkIDMappings(p, "uidMappings", l.UIDMappings, ns)
	checkIDMappings(p, "gidMappings", l.GIDMappings, ns)
	if len(l.TimeOffsets) > 0 && !ns.isNew(specs.TimeNamespace) {
		p.addf(`linux.timeOffsets: set without a new "time" namespace`)
	}
	for _, clock := range slices.Sorted(maps.Keys(l.TimeOffsets)) {
		if clock != "monotonic" && clock != "boottime" {
			p.addf(`linux.timeOffsets[%q]: want "monotonic" or "boottime"`, clock)
		} else if o := l.TimeOffsets[clock]; o.Nanosecs >= 1e9 {
			p.addf(`linux.timeOffsets[%q].nanosecs %d: must be below 1e9`, clock, o.Nanosecs)
		}
	}
	checkDevices(p, l.Devices)
	if len(l.NetDevices) > 0 && !ns.isNew(specs.NetworkNamespace) {
		p.addf(`linux.netDevices: set without a new "network" namespace`)
	}
	for _, dev := range slices.Sorted(maps.Keys(l.NetDevices)) {
		// The kernel's dev_valid_name; an empty name keeps the host's.
		for i, name := range []string{dev, l.NetDevices[dev].Name} {
			if (i == 0 || name != "") && (name == "" || name == "." || name == ".." ||
				len(name) >= unix.IFNAMSIZ || strings.ContainsAny(name, "/: \t\n")) {
				p.addf("linux.netDevices[%q]: %q is not an interface name", dev, name)
			}
		}
	}
	keys := make([]string, 0, len(l.Sysctl))
	for k := range l.Sysctl {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		checkSysctl(p, k, ns)
	}
	if r := l.Resources; r != nil {
		for i, d := range r.Devices {
			field := fmt.Sprintf("linux.resources.devices[%d]", i)
			switch d.Type {
			case "", "a", "b", "c":
			default:
				p.addf(`%s.type %q: want "a", "b" or "c"`, field, d.Type)
			}
			// Other letters are ignored, as runc ignores them ("rwa" is "rw").
			if d.Access == "" {
				p.addf("%s.access: empty (want letters of \"rwm\")", field)
			}
		}
	}
	// runc takes a seccomp object with neither a default action nor rules
	// as no seccomp at all; so do we. The profile itself is checked when it
	// is compiled (its errors name the field).
	if sc := l.Seccomp; sc != nil && (sc.DefaultAction != "" || len(sc.Syscalls) > 0) {
		if _, err := seccomp.Compile(sc); err != nil {
			p.addf("%v", err)
		}
	}
	if rp := l.RootfsPropagation; rp != "" {
		if _, ok := propagations[rp]; !ok {
			p.addf("linux.rootfsPropagation %q: unknown propagation", rp)
		}
	}
	checkAbsPaths(p, "linux.maskedPaths", l.MaskedPaths)
	checkAbsPaths(p, "linux.readonlyPaths", l.ReadonlyPaths)
	if l.MountLabel != "" {
		if err := lsm.Check(lsm.SELinux); err != nil {
			p.addf("linux.mountLabel %q: %v", l.MountLabel, err)
		}
	}
	if r := l.IntelRdt; r != nil {
		checkIntelRdt(p, r)
	}
	if mp := l.MemoryPolicy; mp != nil {
		checkMemoryPolicy(p, mp)
	}
	if pe := l.Personality; pe != nil {
		if _, ok := personalities[pe.Domain]; !ok {
			p.addf("linux.personality.domain %q: want LINUX or LINUX32", pe.Domain)
		}
	}
}

// checkMemoryPolicy checks linux.memoryPolicy as runc does, in runc's
// words after the field's name ("invalid memory policy mode", "mode
// requires 0 nodes"), which runc's tests and users match on: set_mempolicy
// would refuse the same, but only once the container is half made.
func checkMemoryPolicy(p *problems, mp *specs.LinuxMemoryPolicy) {
	if _, ok := mempolModes[mp.Mode]; !ok {
		p.addf("linux.memoryPolicy.mode %q: invalid memory policy mode", mp.Mode)
	}
	for i, f := range mp.Flags {
		if _, ok := mempolFlags[f]; !ok {
			p.addf("linux.memoryPolicy.flags[%d] %q: invalid memory policy flag", i, f)
		}
	}
	nodes := 0
	if mp.Nodes != "" {
		mask, err := libcontainerfd.ParseNodeList(mp.Nodes)
		if err != nil {
			p.addf("linux.memoryPolicy.nodes %q: invalid memory policy nodes: %v", mp.Nodes, err)
			return
		}
		for _, w := range mask {
			nodes += bits.OnesCount64(w)
		}
	}
	switch mp.Mode {
	case specs.MpolDefault, specs.MpolLocal:
		if nodes != 0 {
			p.addf("linux.memoryPolicy.nodes %q: memory policy mode requires 0 nodes but got %d (%s)", mp.Nodes, nodes, mp.Mode)
		}
	case specs.MpolBind, specs.MpolInterleave, specs.MpolPreferredMany, specs.MpolWeightedInterleave:
		if nodes == 0 {
			p.addf("linux.memoryPolicy.nodes: memory policy mode requires at least one node but got 0 (%s)", mp.Mode)
		}
	}
}

// resctrlRoot finds the resctrl mount; a variable so that tests can stand
// in for the host.
var resctrlRoot = resctrl.Root

// checkIntelRdt checks linux.intelRdt as config-linux.md says: closID one
// directory name ("/" for the default group), l3CacheSchema a line that
// starts with "L3:", memBwSchema one with "MB:", schemata one line each;
// and that the host has resctrl mounted.
func checkIntelRdt(p *problems, r *specs.LinuxIntelRdt) {
	if _, err := resctrlRoot(); err != nil {
		p.addf("linux.intelRdt: %v (Intel RDT / AMD PQoS)", err)
	}
	if r.ClosID != "" {
		if err := resctrl.CheckName(r.ClosID); err != nil {
			p.addf("linux.intelRdt.closID: %v", err)
		}
	}
	if _, err := resctrl.Schemata(r.L3CacheSchema, "", nil); err != nil {
		p.addf("linux.intelRdt.l3CacheSchema: %v", err)
	}
	if _, err := resctrl.Schemata("", r.MemBwSchema, nil); err != nil {
		p.addf("linux.intelRdt.memBwSchema: %v", err)
	}
	for i, line := range r.Schemata {
		if err := resctrl.CheckLine(line); err != nil {
			p.addf("linux.intelRdt.schemata[%d]: %v", i, err)
		}
	}
}

// The names the spec gives scheduling policies and flags, I/O priority
// classes and personality domains, and their kernel values.
var (
	schedPolicies = map[specs.LinuxSchedulerPolicy]uint32{
		specs.SchedOther: 0, specs.SchedFIFO: 1, specs.SchedRR: 2, specs.SchedBatch: 3,
		specs.SchedISO: 4, specs.SchedIdle: 5, specs.SchedDeadline: 6,
	}
	schedFlags = map[specs.LinuxSchedulerFlag]uint64{
		specs.SchedFlagResetOnFork: 0x01, specs.SchedFlagReclaim: 0x02, specs.SchedFlagDLOverrun: 0x04,
		specs.SchedFlagKeepPolicy: 0x08, specs.SchedFlagKeepParams: 0x10, specs.SchedFlagUtilClampMin: 0x20,
		specs.SchedFlagUtilClampMax: 0x40,
	}
	mempolModes = map[specs.MemoryPolicyModeType]int{
		specs.MpolDefault: 0, specs.MpolPreferred: 1, specs.MpolBind: 2, specs.MpolInterleave: 3,
		specs.MpolLocal: 4, specs.MpolPreferredMany: 5, specs.MpolWeightedInterleave: 6,
	}
	mempolFlags = map[specs.MemoryPolicyFlagType]int{
		specs.MpolFNumaBalancing: 1 << 13, specs.MpolFRelativeNodes: 1 << 14, specs.MpolFStaticNodes: 1 << 15,
	}
	ioClasses     = map[specs.IOPriorityClass]int{specs.IOPRIO_CLASS_RT: 1, specs.IOPRIO_CLASS_BE: 2, specs.IOPRIO_CLASS_IDLE: 3}
	personalities = map[specs.LinuxPersonalityDomain]uint{specs.PerLinux: 0x0000, specs.PerLinux32: 0x0008}
)

func checkNamespaces(p *problems, list []specs.LinuxNamespace) {
	seen := map[specs.LinuxNamespaceType]bool{}
	for i, n := range list {
		field := fmt.Sprintf("linux.namespaces[%d]", i)
		flag, ok := namespaceTypes[n.Type]
		if !ok {
			p.addf("%s.type %q: unknown namespace type", field, n.Type)
			continue
		}
		if seen[n.Type] {
			p.addf("linux.namespaces: %q listed twice", n.Type)
			continue
		}
		seen[n.Type] = true
		if n.Path == "" {
			continue
		}
		if !path.IsAbs(n.Path) {
			p.addf("%s.path %q: must be absolute", field, n.Path)
			continue
		}
		// config-linux.md: an error if the path is not a namespace of that
		// type.
		if got, err := nsType(n.Path); err != nil {
			p.addf("%s.path %q: %v", field, n.Path, err)
		} else if got != flag {
			p.addf("%s.path %q: is a %s namespace, not %q", field, n.Path, nsName(got), n.Type)
		}
	}
}

// nsType returns the CLONE_NEW* type of the namespace file at name.
func nsType(name string) (int, error) {
	fd, err := unix.Open(name, unix.O_RDONLY|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
	if err != nil {
		return 0, fmt.Errorf("open: %w", err)
	}
	defer unix.Close(fd)
	t, err := unix.IoctlRetInt(fd, unix.NS_GET_NSTYPE)
	if err != nil {
		return 0, fmt.Errorf("not a namespace file: %w", err)
	}
	return t, nil
}

func nsName(flag int) string {
	for name, f := range namespaceTypes {
		if f == flag {
			return strconv.Quote(string(name))
		}
	}
	return fmt.Sprintf("%#x", flag)
}

func checkIDMappings(p *problems, name string, maps []specs.LinuxIDMapping, ns namespaces) {
	field := "linux." + name
	switch {
	case len(maps) > 0 && !ns.has(specs.UserNamespace):
		p.addf("%s: set without a user namespace", field)
	case len(maps) == 0 && ns.isNew(specs.UserNamespace):
		p.addf("%s: missing (a new user namespace needs them)", field)
	}
	// With a user namespace to join, runc checks that given mappings are
	// the namespace's (containerd and CRI-O pass both); we do not yet, and
	// the library ignores mappings for a namespace it joins.
	for i, m := range maps {
		if m.Size == 0 {
			p.addf("%s[%d]: size 0", field, i)
		}
	}
}

func checkDevices(p *problems, devs []specs.LinuxDevice) {
	seen := map[string]bool{}
	for i, d := range devs {
		field := fmt.Sprintf("linux.devices[%d]", i)
		switch d.Type {
		case "c", "b", "u", "p":
		default:
			p.addf(`%s.type %q: want "c", "b", "u" or "p"`, field, d.Type)
		}
		clean := path.Clean(d.Path)
		switch {
		case d.Path == "":
			p.addf("%s.path: empty", field)
		case !path.IsAbs(d.Path):
			p.addf("%s.path %q: must be absolute", field, d.Path)
		case !strings.HasPrefix(clean, "/dev/"):
			// config-linux.md allows devices anywhere; we keep them in
			// /dev, the tmpfs the runtime owns, rather than make nodes in
			// the image's directories.
			p.addf("%s.path %q: must be under /dev", field, d.Path)
		case seen[clean]:
			p.addf("linux.devices: %q listed twice", clean)
		}
		seen[clean] = true
		if d.Type != "p" {
			switch {
			case d.Major < 0 || d.Minor < 0:
				p.addf("%s %q: negative major or minor", field, d.Path)
			case d.Major == 0 && d.Minor == 0:
				// 0:0 is no device: the numbers were left out.
				p.addf("%s %q: type %q needs major and minor", field, d.Path, d.Type)
			}
		}
	}
}

func checkAbsPaths(p *problems, field string, paths []string) {
	for i, x := range paths {
		if !path.IsAbs(x) {
			p.addf("%s[%d] %q: must be absolute", field, i, x)
		}
	}
}

// ipcSysctls are the sysctls of the IPC namespace besides fs.mqueue.*
// (runc's list).
var ipcSysctls = map[string]bool{
	"kernel.msgmax": true, "kernel.msgmnb": true, "kernel.msgmni": true, "kernel.sem": true,
	"kernel.shmall": true, "kernel.shmmax": true, "kernel.shmmni": true, "kernel.shm_rmid_forced": true,
}

// checkSysctl allows, as runc does, only sysctls that belong to a namespace
// of the container's own: anything else would be written to the host's
// kernel.
func checkSysctl(p *problems, key string, ns namespaces) {
	field := fmt.Sprintf("linux.sysctl[%q]", key)
	// sysctl(8): with a '/' the key is '/'-separated and '.' is part of a
	// name ("net/ipv4/conf/eth0.100/forwarding").
	sep := "."
	if strings.Contains(key, "/") {
		sep = "/"
	}
	parts := strings.Split(key, sep)
	if slices.ContainsFunc(parts, func(s string) bool { return s == "" || s == "." || s == ".." }) ||
		strings.IndexByte(key, 0) >= 0 {
		p.addf("%s: not a sysctl name", field)
		return
	}
	norm := strings.Join(parts, ".")
	var need specs.LinuxNamespaceType
	switch {
	case ipcSysctls[norm] || strings.HasPrefix(norm, "fs.mqueue."):
		need = specs.IPCNamespace
	case strings.HasPrefix(norm, "net."):
		need = specs.NetworkNamespace
	case norm == "kernel.domainname":
		need = specs.UTSNamespace
	case norm == "kernel.hostname":
		p.addf("%s: conflicts with the hostname field (use it)", field)
		return
	case strings.HasPrefix(norm, "user."):
		need = specs.UserNamespace
	default:
		p.addf("%s: not in a namespace of the container (it would change the host)", field)
		return
	}
	if !ns.has(need) {
		p.addf("%s: needs a %s namespace (it would change the host's)", field, need)
		return
	}
	if need == specs.NetworkNamespace && ns[need] != "" && sameFile(ns[need], "/proc/self/ns/net") {
		p.addf("%s: the network namespace to join is the host's", field)
	}
}

func sameFile(a, b string) bool {
	sa, err1 := os.Stat(a)
	sb, err2 := os.Stat(b)
	return err1 == nil && err2 == nil && os.SameFile(sa, sb)
}
