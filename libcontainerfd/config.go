package libcontainerfd

import (
	"os"
	"time"

	"github.com/containerfd/containerfd/libcontainerfd/cgroups"
	"github.com/containerfd/containerfd/libcontainerfd/idmap"
	"github.com/containerfd/containerfd/libcontainerfd/mounttree"
	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// Flags choose how a container behaves, as container_create's flags did.
type Flags uint

const (
	// KillOnClose kills every process of the container when the Container
	// that created it is closed, or when the process holding it dies (or,
	// with Config.HolderPid, when that process dies).
	KillOnClose Flags = 1 << iota
	// NewEmptyFS builds the container's tree from nothing: Config.Rootfs
	// as / and Config.Mounts on it, in a new mount namespace, or in the
	// one it joins (which, as runc does, then has it as its root). Without
	// a mount namespace of its own the container shares the caller's, as
	// runc runs it: the tree is attached on Rootfs there, init chroots
	// into it, and Destroy detaches it.
	NewEmptyFS
)

// Namespace is one namespace of a container. Namespaces a Config does not
// list are inherited from the caller.
type Namespace struct {
	Type int    // one unix.CLONE_NEW* flag
	Path string // empty: a new namespace; otherwise join the one at Path
}

// IDMap maps a range of ids inside a user namespace to ids outside: the
// runtime-spec's own type, a range of an idmap.Map.
type IDMap = specs.LinuxIDMapping

// Config is what Create needs: the plan a runtime derives from its own
// configuration format.
type Config struct {
	Flags      Flags
	Namespaces []Namespace
	// UIDMappings and GIDMappings apply to a new user namespace.
	UIDMappings, GIDMappings idmap.Map
	// Cgroup is the absolute cgroup path of the container. With Rootless
	// it may be empty: the container then has no cgroup.
	Cgroup string
	// Systemd, if set, makes the cgroup a transient unit of the system
	// manager (see cgroups.Cgroup.StartUnit): Cgroup must then be the unit's
	// own path (Unit.CgroupPath), where init is cloned before the unit is
	// started around it.
	Systemd *cgroups.Unit
	// SystemdDescription is the unit's Description.
	SystemdDescription string
	// Rootless is for a caller without privilege in the initial user
	// namespace: a user who is not root, or root of a user namespace of
	// its own (rootless podman runs the runtime so). Devices are bound
	// from the host, never made. The cgroup is made in the cgroup2
	// hierarchy alone and must be delegated to the caller (see
	// cgroups.Cgroup.Delegated); if it cannot be made there and Resources
	// asks for no limit, the container runs without one (CgroupSkipped
	// says why).
	//
	// A caller who is not root at all must give the container a new user
	// namespace, which it then owns. Nothing that needs CAP_SYS_ADMIN over
	// the caller's own mount namespace can be done from outside then: init
	// builds the mount tree itself, from inside the container's user
	// namespace, and brings up lo and writes the sysctls there too. Id
	// maps beyond the caller's own id go through newuidmap and newgidmap.
	Rootless bool
	// Rootfs is the host directory that becomes / (with NewEmptyFS); in a
	// mount namespace the container joins, it is resolved there.
	Rootfs       string
	RootReadonly bool
	// Mounts are built outside the container and attached in order.
	Mounts []mounttree.Mount
	// NoPivot uses chroot instead of pivot_root, for roots pivot_root refuses
	// (a ramfs initrd); the old root then stays reachable under it.
	NoPivot    bool
	Hostname   string
	Domainname string
	// NoNewKeyring keeps the caller's session keyring instead of giving the
	// container one of its own.
	NoNewKeyring bool
	// KeyHandler, an absolute path on the host, answers the key requests
	// (request_key(2), and those the kernel makes for them) of the
	// container's processes for keys they lack: it runs outside the
	// container with the key's type, description, callout data and the
	// container's id, and what it prints instantiates the key; its
	// failure rejects it (package keyreq, docs/beyond-runc.md "Key
	// requests"). It needs the container's own keyring, root, and the host
	// side that `make install` installs. KeyHandlerTimeout bounds a run (default
	// keyreq.DefaultTimeout).
	KeyHandler        string
	KeyHandlerTimeout time.Duration
	// RootPropagation is the propagation of the container's mounts:
	// unix.MS_PRIVATE (the default), MS_SLAVE, MS_SHARED or MS_UNBINDABLE,
	// applied recursively from /.
	RootPropagation int
	// Devices are created in the container (mknod; inside a user namespace,
	// a bind of the host's node) after the mounts.
	Devices []specs.LinuxDevice
	// Links are symlinks made inside the root after the mounts and devices
	// ("/dev/fd" -> "/proc/self/fd"); an existing path is left alone.
	Links []Link
	// MaskedPaths are hidden (an empty read-only tmpfs on a directory,
	// /dev/null on anything else); ReadonlyPaths become read-only binds.
	// A path that does not exist is skipped.
	MaskedPaths, ReadonlyPaths []string
	// NetDevices moves host network interfaces (keys) into the container's
	// new network namespace, named as the values say ("" keeps the name),
	// with their addresses.
	NetDevices map[string]string
	// Sysctl values are written in the container's namespaces, from
	// outside, before init runs.
	Sysctl map[string]string
	// Resources are the limits of the container's cgroup.
	Resources *specs.LinuxResources
	// Seccomp, if set, filters the system calls of init's process and of
	// every process Exec starts.
	Seccomp *specs.LinuxSeccomp
	// TimeOffsets shift the clocks ("monotonic", "boottime") of a new time
	// namespace.
	TimeOffsets map[string]specs.LinuxTimeOffset
	// MemoryPolicy, if set, is the NUMA memory policy (set_mempolicy(2)) of
	// init's process and of every process Exec starts.
	MemoryPolicy *MemoryPolicy
	// Personality, if set, is the execution domain (personality(2)) of
	// init's process and of every process Exec starts.
	Personality *uint
	// IntelRdt, if set, puts every process of the container in a resctrl
	// control group (and with EnableMonitoring, a monitoring group of the
	// container's own in it) with the given schemata; see makeRdt for which
	// group, and which groups the container owns.
	IntelRdt *specs.LinuxIntelRdt
	// HolderPid, with KillOnClose, names the process whose death kills the
	// container instead of the caller (a command-line runtime's caller).
	HolderPid int
	// Watcher, with KillOnClose, is the watcher process to share with the
	// caller's other containers instead of one of the container's own.
	Watcher *Watcher `json:"-"`
	// EmptyRoot, with NewEmptyFS, gives the container an empty tmpfs as its
	// root instead of Rootfs, and no mounts, devices or links: its tree is
	// filled only from outside (Mount) before Start, which is when the
	// program is looked up. It stays writable (RootReadonly is ignored), or
	// no mount point could be made in it.
	EmptyRoot bool
	// BeforePivot, if set, runs while init waits with every mount attached
	// but before pivot_root (OCI's createRuntime and createContainer hooks
	// run there). pid is init's. An error fails ForkInit.
	BeforePivot func(pid int) error `json:"-"`
	// AlwaysStage starts every process of the container, init and each
	// Exec, through the Go stage. By default a process starts directly
	// where it can: the spawned child takes on the process with system
	// calls alone and execs the program, without a Go runtime in between.
	// The stage is the other start path, one the library also takes where
	// a process needs it; AlwaysStage is for tests and for comparing the
	// two. It is saved with the container, so processes started after Load
	// follow it too.
	AlwaysStage bool
	// Labels are saved with the container for its owner (a runtime keeps its
	// bundle path and annotations there).
	Labels map[string]string
}

// MemoryPolicy is a set_mempolicy(2) mode (with its MPOL_F_* flags) and a
// node list ("0-1,3").
type MemoryPolicy struct {
	Mode  int
	Nodes string
}

// CPUAffinity is a process's CPU pinning before and after its exec.
type CPUAffinity struct {
	Initial, Final string
}

// Link is a symlink to make inside the container's root.
type Link struct {
	Path   string // where, inside the root
	Target string // what it points to
}

// Process describes a process to run in a container: its init or one joined
// later with Exec. After Start it also is the handle of the running process.
type Process struct {
	Args []string
	Env  []string
	// Cwd is the working directory inside the container ("/" if empty).
	Cwd             string
	UID, GID        uint32
	AdditionalGids  []uint32
	Umask           *uint32
	NoNewPrivileges bool
	// Capabilities, when set, are the process's five capability sets
	// (names such as "CAP_KILL"); nil keeps the stage's (all of root's).
	Capabilities *specs.LinuxCapabilities
	Rlimits      []specs.POSIXRlimit
	OOMScoreAdj  *int
	// Terminal gives the process a new pty of the container's devpts as
	// its stdio and controlling terminal; the master comes back in Console.
	Terminal    bool
	ConsoleSize *specs.Box
	// ClearONLCR turns the pty's "\n" to "\r\n" translation off before the
	// process runs: for a caller that copies its output to a terminal of
	// its own (which translates again), as runc does in the foreground.
	ClearONLCR bool
	// Scheduler is set with sched_setattr(2) and IOPriority (class<<13 |
	// level) with ioprio_set(2), before capabilities are dropped.
	Scheduler  *unix.SchedAttr
	IOPriority *int
	// CPUAffinity pins the process: Initial from outside as soon as it
	// exists, Final before its seccomp filter and credentials (cpu lists
	// such as "0-3,7"). Without either, the process runs on every CPU its
	// cpuset has, whatever the caller's own affinity.
	CPUAffinity *CPUAffinity
	// SubCgroups, for Exec, puts the process in existing sub-cgroups of
	// the container's instead of its own (runc's exec --cgroup): a v1
	// controller's name, or "" for every other hierarchy (cgroup2), to a
	// path below the container's cgroup there.
	SubCgroups map[string]string
	// AppArmorProfile and SELinuxLabel are what the process execs under
	// (see package lsm); setting one where the LSM is not active fails.
	AppArmorProfile string
	SELinuxLabel    string
	// Stdin, Stdout and Stderr become fds 0-2 (nil: /dev/null is not
	// opened for you; the fd is left closed). ExtraFiles become 3, 4, …
	Stdin, Stdout, Stderr *os.File
	ExtraFiles            []*os.File

	// Pid and Pidfd are set once the process runs. Pid is as seen from the
	// caller's pid namespace. Console is the pty master with Terminal; the
	// caller owns it.
	Pid     int
	Pidfd   int
	Console *os.File
}
