// Package libcontainerfd is a container you hold by a file descriptor, in
// user space: the object of the 2019 "containers as kernel objects" proposal
// built on pidfd, clone3, the new mount API, openat2, cgroup2 and keyctl.
//
// Create makes the object (its cgroup, keyring and state); ForkInit starts
// its one init, which builds nothing itself: its mount tree is made outside
// and attached by fd. Exec joins further processes to it, Socket and OpenAt
// and Mount reach into it from outside, and Wait (or PollFD) tells when its
// last process is gone. Save and Load carry it from one process to the next.
//
// A program that uses this package runs its own binary as the container's
// first stage: the package's init function takes over when the binary is
// started as a stage, before main runs.
package libcontainerfd

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/containerfd/containerfd/libcontainerfd/internal/msg"

	"github.com/containerfd/containerfd/internal/stopat"
	"github.com/containerfd/containerfd/libcontainerfd/cgroups"
	"github.com/containerfd/containerfd/libcontainerfd/internal/procid"
	"github.com/containerfd/containerfd/libcontainerfd/internal/randhex"
	"github.com/containerfd/containerfd/libcontainerfd/keyring"
	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// Errors callers test for with errors.Is.
var (
	ErrExist        = errors.New("container already exists")
	ErrNotExist     = errors.New("container does not exist")
	ErrInitStarted  = errors.New("init already started")
	ErrNotRunning   = errors.New("container has no running init")
	ErrAlreadyStart = errors.New("container already started")
)

// Status is a container's state as runtime.md names it.
type Status string

const (
	Creating Status = "creating"
	Created  Status = "created"
	Running  Status = "running"
	Paused   Status = "paused"
	Stopped  Status = "stopped"
)

// Container is one container. It holds fds: its cgroup, its init's pidfd,
// its state directory; Close releases them.
type Container struct {
	id  string
	dir string // state directory, <root>/<id>
	st  state

	cgroup    cgroupCase
	initPidfd int // -1: no init, or init gone
	lockFD    int
	holdFD    int      // KillOnClose: write end of the watcher's pipe
	watcher   *Watcher // KillOnClose with a shared watcher: Close kills

	// Only in the process that called Create.
	cfg *Config

	// NotifyState, if set, gives the container state sent with a seccomp
	// notify fd to the profile's listenerPath (the runtime knows the bundle
	// and annotations the library does not).
	NotifyState func() specs.State
}

// ID returns the container's name.
func (c *Container) ID() string { return c.id }

// Labels returns the labels given at Create.
func (c *Container) Labels() map[string]string { return c.st.Labels }

// Created returns when Create made the container.
func (c *Container) Created() time.Time { return c.st.Created }

// InitPid returns the pid of init in the caller's pid namespace, or 0.
func (c *Container) InitPid() int { return c.st.Init.Pid }

// Cgroup returns the container's cgroup, nil if it has none.
func (c *Container) Cgroup() *cgroups.Cgroup { return c.cgroup.own() }

// Dir returns the container's state directory.
func (c *Container) Dir() string { return c.dir }

func validID(id string) error {
	if id == "" || id == "." || id == ".." || len(id) > 1024 {
		return fmt.Errorf("invalid container id %q", id)
	}
	for _, r := range id {
		if r == '/' || r == 0 || r < ' ' {
			return fmt.Errorf("invalid container id %q: contains %q", id, r)
		}
	}
	return nil
}

// Create makes a container named id with its state under root: its state
// directory, its cgroup, its resctrl groups (cfg.IntelRdt) and (unless
// cfg.NoNewKeyring) its keyring. It starts
// no process; ForkInit does. On error nothing is left behind.
func Create(root, id string, cfg *Config) (_ *Container, err error) {
	if err := validID(id); err != nil {
		return nil, err
	}
	if cfg.Cgroup == "" && !cfg.Rootless {
		return nil, fmt.Errorf("container %s: no cgroup path", id)
	}
	if cfg.Rootless {
		if err := checkRootless(cfg); err != nil {
			return nil, fmt.Errorf("container %s: %w", id, err)
		}
	}
	if cfg.Flags&NewEmptyFS != 0 && !cfg.hasNS(unix.CLONE_NEWNS) {
		// The tree goes on the rootfs in the caller's mount namespace,
		// which the container shares.
		switch {
		case cfg.Rootless:
			return nil, fmt.Errorf("container %s: rootless: a container without a mount namespace of its own would mount in the caller's, which it cannot", id)
		case cfg.EmptyRoot:
			return nil, fmt.Errorf("container %s: EmptyRoot needs a mount namespace of the container's own", id)
		case !filepath.IsAbs(cfg.Rootfs):
			return nil, fmt.Errorf("container %s: Rootfs %q: must be absolute without a mount namespace of the container's own", id, cfg.Rootfs)
		}
	}
	for _, ns := range cfg.Namespaces {
		if nsName(ns.Type) == "" {
			return nil, fmt.Errorf("container %s: unknown namespace type %#x", id, ns.Type)
		}
	}
	if err := checkKeyHandler(cfg); err != nil {
		return nil, fmt.Errorf("container %s: %w", id, err)
	}
	c := &Container{id: id, dir: filepath.Join(root, id), initPidfd: -1, lockFD: -1, holdFD: -1, cfg: cfg}
	c.cgroup = cgroupGone{c: c} // not made yet
	c.st = state{
		ID:           id,
		Created:      time.Now().UTC(),
		Flags:        cfg.Flags,
		Labels:       cfg.Labels,
		Seccomp:      cfg.Seccomp,
		Personality:  cfg.Personality,
		MemoryPolicy: cfg.MemoryPolicy,
		Rootless:     cfg.Rootless,
		AlwaysStage:  cfg.AlwaysStage,
	}
	for _, ns := range cfg.Namespaces {
		c.st.Namespaces |= ns.Type
	}
	c.st.SharedPidNS = !cfg.newNS(unix.CLONE_NEWPID)
	if !cfg.NoNewKeyring {
		c.st.Keyring = "containerfd." + id + "." + randhex.String(16)
		c.st.KeyHandler = cfg.KeyHandler
	}
	// The state names the cgroup before it exists, so whatever stops us
	// from here on, delete finds everything to remove.
	if cfg.Rootless {
		c.resolveRootlessCgroup()
	} else if c.st.Cgroup, err = cgroups.Resolve(cfg.Cgroup); err != nil {
		return nil, fmt.Errorf("container %s: %w", id, err)
	}
	c.st.CgroupExisted = existingDirs(c.st.Cgroup)
	if cfg.Systemd != nil {
		p, err := cfg.Systemd.CgroupPath()
		if err != nil {
			return nil, fmt.Errorf("container %s: %w", id, err)
		}
		if p != cfg.Cgroup {
			return nil, fmt.Errorf("container %s: cgroup path %q is not that of systemd unit %s (%s)", id, cfg.Cgroup, cfg.Systemd.Name, p)
		}
		c.st.SystemdUnit = cfg.Systemd.Name
	}
	if c.st.RegistryEntry, err = entryPath(root, id); err != nil {
		return nil, err
	}
	if err := c.publish(root); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			c.destroy()
			c.Close()
		}
	}()
	if err := c.register(); err != nil {
		return nil, err
	}
	stopat.Point("create:registered")
	if err := c.Lock(); err != nil {
		return nil, err
	}
	defer c.Unlock()
	stopat.Point("create:state-saved")

	if cfg.Rootless {
		if err := c.createRootlessCgroup(); err != nil {
			return nil, fmt.Errorf("container %s: %w", id, err)
		}
		stopat.Point("create:cgroup")
		return c, nil
	}
	cg, err := cgroups.Create(cfg.Cgroup)
	if err != nil {
		if errors.Is(err, cgroups.ErrInUse) {
			// Someone else's: not ours to remove.
			c.st.Cgroup, c.st.SystemdUnit = nil, ""
		}
		return nil, fmt.Errorf("container %s: create cgroup: %w", id, err)
	}
	c.cgroup = &cgroupOwn{c: c, cg: cg}
	if err := c.recordExisted(cg.Existed()); err != nil {
		return nil, err
	}
	// With systemd, the limits go with the unit, started around init.
	if cfg.Resources != nil && cfg.Systemd == nil {
		if err := cg.Set(cfg.Resources); err != nil {
			return nil, fmt.Errorf("container %s: %w", id, err)
		}
	}
	stopat.Point("create:cgroup")
	if r := cfg.IntelRdt; r != nil {
		if err := c.makeRdt(r); err != nil {
			return nil, fmt.Errorf("container %s: intelRdt: %w", id, err)
		}
	}
	stopat.Point("create:intelrdt")
	return c, nil
}

// existingDirs returns the directories of p that exist.
func existingDirs(p cgroups.Paths) []string {
	var out []string
	for _, d := range p {
		if _, err := os.Stat(d); err == nil && !slices.Contains(out, d) {
			out = append(out, d)
		}
	}
	slices.Sort(out)
	return out
}

// recordExisted records the directories the cgroup's Create found there
// already, if they are not those the state names already (one came or went
// in between).
func (c *Container) recordExisted(existed []string) error {
	slices.Sort(existed)
	if slices.Equal(existed, c.st.CgroupExisted) {
		return nil
	}
	c.st.CgroupExisted = existed
	return c.Save()
}

// publish makes the state directory with its first state.json in one step:
// written in a directory of its own, then renamed into place, so a
// container either exists with a state or not at all, and of two creates of
// one id exactly one wins.
func (c *Container) publish(root string) error {
	if err := os.MkdirAll(root, 0o700); err != nil {
		return fmt.Errorf("container %s: state root: %w", c.id, err)
	}
	tmp, err := os.MkdirTemp(root, ".creating-")
	if err != nil {
		return fmt.Errorf("container %s: state dir: %w", c.id, err)
	}
	final := c.dir
	c.dir = tmp
	err = c.Save()
	c.dir = final
	if err == nil {
		err = unix.Renameat2(unix.AT_FDCWD, tmp, unix.AT_FDCWD, final, unix.RENAME_NOREPLACE)
		if err == unix.EEXIST {
			err = fmt.Errorf("container %q: %w", c.id, ErrExist)
		} else if err != nil {
			err = fmt.Errorf("container %s: state dir: %w", c.id, err)
		}
	}
	if err != nil {
		os.RemoveAll(tmp)
	}
	return err
}

// hasNS tells whether the container gets a namespace of type t of its own,
// new or joined.
func (cfg *Config) hasNS(t int) bool {
	return slices.ContainsFunc(cfg.Namespaces, func(ns Namespace) bool { return ns.Type == t })
}

// joinsNS tells whether the container joins an existing namespace of type t.
func (cfg *Config) joinsNS(t int) bool {
	return slices.ContainsFunc(cfg.Namespaces, func(ns Namespace) bool { return ns.Type == t && ns.Path != "" })
}

// sharesMountNS tells whether the container's tree is attached in the
// runtime's own mount namespace (NewEmptyFS without a mount namespace).
func (c *Container) sharesMountNS() bool {
	return c.st.Flags&NewEmptyFS != 0 && c.st.Namespaces&unix.CLONE_NEWNS == 0
}

func (cfg *Config) newNS(t int) bool {
	for _, ns := range cfg.Namespaces {
		if ns.Type == t && ns.Path == "" {
			return true
		}
	}
	return false
}

// Status reports the container's state, checked against the kernel: a
// container whose init is gone is stopped whatever the state file says.
func (c *Container) Status() (Status, error) {
	if c.st.Init.Pid == 0 {
		return Creating, nil
	}
	if !c.initAlive() || c.cgroup.gone() {
		return Stopped, nil
	}
	if frozen, err := c.cgroup.frozen(); err != nil {
		return "", fmt.Errorf("container %s: %w", c.id, err)
	} else if frozen {
		return Paused, nil
	}
	if c.st.Started || !c.initWaiting() {
		return Running, nil
	}
	return Created, nil
}

// initWaiting reports whether init still is our stage, waiting for start:
// the state file may not say yet that a start went through.
func (c *Container) initWaiting() bool {
	proc := "/proc/" + strconv.Itoa(c.st.Init.Pid)
	if c.st.DirectInit {
		// Our fork, named at its gate (the kernel keeps 15 bytes).
		b, err := os.ReadFile(proc + "/comm")
		return err == nil && string(b) == msg.StageInit[:15]+"\n"
	}
	b, err := os.ReadFile(proc + "/cmdline")
	return err == nil && strings.HasPrefix(string(b), msg.StageInit+"\x00")
}

func (c *Container) initAlive() bool {
	if c.initPidfd < 0 {
		return false
	}
	if err := unix.PidfdSendSignal(c.initPidfd, 0, nil, 0); err != nil {
		return false
	}
	// A zombie still takes signals: look at its state.
	b, err := os.ReadFile("/proc/" + strconv.Itoa(c.st.Init.Pid) + "/stat")
	if err != nil {
		return false
	}
	if i := lastIndex(b, ')'); i >= 0 && i+2 < len(b) && b[i+2] == 'Z' {
		return false
	}
	return true
}

func lastIndex(b []byte, c byte) int {
	for i := len(b) - 1; i >= 0; i-- {
		if b[i] == c {
			return i
		}
	}
	return -1
}

// Signal sends sig to init. An init still waiting for start ends on the
// signals that end runc's waiting init (a Go program: SIGHUP, SIGINT,
// SIGTERM and their kind), whichever way it was started (spawn's gate
// watches for them).
func (c *Container) Signal(sig unix.Signal) error {
	if c.initPidfd < 0 {
		return fmt.Errorf("container %s: signal %v: %w", c.id, sig, ErrNotRunning)
	}
	if err := unix.PidfdSendSignal(c.initPidfd, sig, nil, 0); err != nil {
		return fmt.Errorf("container %s: signal %v to init: %w", c.id, sig, err)
	}
	return nil
}

// SharedPidNS reports whether the container has no pid namespace of its
// own: it shares the runtime's, or joined another's.
func (c *Container) SharedPidNS() bool { return c.st.SharedPidNS }

// KillAll sends SIGKILL to every process of the container.
func (c *Container) KillAll() error { return c.cgroup.kill() }

// Kill sends sig to the container as runc's kill does. SIGKILL to a
// container without a pid namespace of its own goes to every process of its
// cgroup, init gone or not: killing its init would leave the rest (exec'd
// processes, init's children) running. Any other signal, or any signal to a
// container with a pid namespace of its own or without a cgroup, goes to
// init, which must be alive; SIGKILL then also thaws a paused container, in
// which a v1-frozen init could not die.
func (c *Container) Kill(sig unix.Signal) error {
	if sig == unix.SIGKILL && c.st.SharedPidNS && c.cgroup.own() != nil {
		return c.cgroup.kill()
	}
	if !c.initAlive() {
		return fmt.Errorf("container %s: signal %v: %w", c.id, sig, ErrNotRunning)
	}
	if err := c.Signal(sig); err != nil {
		return err
	}
	if sig == unix.SIGKILL {
		if frozen, _ := c.cgroup.frozen(); frozen {
			return c.Thaw()
		}
	}
	return nil
}

// Freeze stops every process of the container; Thaw resumes them.
func (c *Container) Freeze() error {
	if err := c.cgroup.freeze(); err != nil {
		return fmt.Errorf("container %s: freeze: %w", c.id, err)
	}
	return nil
}

// Thaw resumes a frozen container.
func (c *Container) Thaw() error {
	if err := c.cgroup.thaw(); err != nil {
		return fmt.Errorf("container %s: thaw: %w", c.id, err)
	}
	return nil
}

// Pids lists the processes of the container.
func (c *Container) Pids() ([]int, error) { return c.cgroup.pids() }

// Close releases the container's fds. With KillOnClose, the container dies.
func (c *Container) Close() error {
	var kerr error
	if w := c.watcher; w != nil {
		// A shared watcher kills it only when the holder goes: we do. A
		// cgroup removed meanwhile has nothing left to kill.
		c.watcher = nil
		if err := c.cgroup.kill(); err != nil && !errors.Is(err, fs.ErrNotExist) {
			kerr = err
		}
		kerr = errors.Join(kerr, w.forget(c))
	}
	for _, fd := range []*int{&c.initPidfd, &c.holdFD, &c.lockFD} {
		if *fd >= 0 {
			unix.Close(*fd)
			*fd = -1
		}
	}
	return errors.Join(kerr, c.cgroup.close())
}

// Destroy kills every process of the container, waits for them to go, and
// removes its cgroup, the resctrl groups it made, keyring and state. The
// Container is closed. It also finishes a container whose create or delete
// was stopped halfway.
func (c *Container) Destroy() error {
	err := c.Lock()
	switch {
	case errors.Is(err, ErrNotExist):
		// Destroyed by another process since it was loaded (a
		// foreground run whose init a delete --force killed): done.
		err = nil
	case err != nil:
		return errors.Join(err, c.Close())
	default:
		err = c.destroy()
	}
	if w := c.watcher; w != nil && err == nil {
		// Killed and gone; should destroy fail, the watcher kills what
		// is left when the holder goes.
		c.watcher = nil
		err = w.forget(c)
	}
	return errors.Join(err, c.Close())
}

func (c *Container) destroy() error {
	var errs []error
	if err := c.cgroup.stop(10 * time.Second); err != nil {
		errs = append(errs, err)
	}
	if c.st.SystemdUnit != "" {
		// Stopped and reset, so that no unit is left, failed or not;
		// systemd removes the directories it made.
		if err := cgroups.StopUnit(c.st.SystemdUnit); err != nil {
			errs = append(errs, fmt.Errorf("container %s: %w", c.id, err))
		}
	}
	if err := c.cgroup.remove(); err != nil {
		errs = append(errs, fmt.Errorf("container %s: remove cgroup: %w", c.id, err))
	}
	stopat.Point("delete:cgroup-removed")
	if h := c.st.HostRoot; h != nil {
		if err := h.detach(); err != nil {
			errs = append(errs, fmt.Errorf("container %s: %w", c.id, err))
		}
	}
	if err := c.removeRdt(); err != nil {
		errs = append(errs, err)
	}
	// A keyring made but not yet recorded dies with the container's
	// processes: nothing else holds it.
	if err := c.unregisterKeyHandler(); err != nil {
		errs = append(errs, err)
	}
	if serial := c.st.KeyringSerial; serial != 0 {
		if err := keyring.Remove(serial); err != nil {
			errs = append(errs, fmt.Errorf("container %s: %w", c.id, err))
		}
	}
	if err := os.RemoveAll(c.dir); err != nil {
		errs = append(errs, fmt.Errorf("container %s: remove state: %w", c.id, err))
	}
	// Last, and only when all else is gone: while anything of the
	// container is left, the list shows it.
	if len(errs) == 0 {
		if err := c.unregister(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Lock takes the container's lock (flock on its state directory), for
// commands that change it; Unlock releases it. A container destroyed by
// another process since it was loaded, its state directory gone, gives an
// error that errors.Is ErrNotExist.
func (c *Container) Lock() error {
	if c.lockFD < 0 {
		fd, err := unix.Open(c.dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err == unix.ENOENT {
			return fmt.Errorf("container %s: %w", c.id, ErrNotExist)
		}
		if err != nil {
			return fmt.Errorf("container %s: lock: %w", c.id, err)
		}
		c.lockFD = fd
	}
	for {
		err := unix.Flock(c.lockFD, unix.LOCK_EX)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return fmt.Errorf("container %s: lock: %w", c.id, err)
		}
		break
	}
	// Removed while we waited (its destroyer held the lock).
	var st unix.Stat_t
	if err := unix.Fstat(c.lockFD, &st); err != nil {
		c.Unlock()
		return fmt.Errorf("container %s: lock: %w", c.id, err)
	}
	if st.Nlink == 0 {
		c.Unlock()
		return fmt.Errorf("container %s: %w", c.id, ErrNotExist)
	}
	return nil
}

// Unlock releases the lock taken by Lock.
func (c *Container) Unlock() {
	if c.lockFD >= 0 {
		unix.Flock(c.lockFD, unix.LOCK_UN)
	}
}

// identify records init's identity after ForkInit.
func (c *Container) identify(pid, pidfd int) error {
	id, err := procid.Of(pid, pidfd)
	if err != nil {
		return fmt.Errorf("container %s: identify init: %w", c.id, err)
	}
	c.st.Init = id
	return nil
}

// Update changes the limits of the container's cgroup.
func (c *Container) Update(r *specs.LinuxResources) error {
	if err := c.cgroup.set(r); err != nil {
		return fmt.Errorf("container %s: update: %w", c.id, err)
	}
	return nil
}

// Stats reads the container's cgroup usage and limits.
func (c *Container) Stats() (*cgroups.Stats, error) {
	s, err := c.cgroup.stats()
	if err != nil {
		return nil, fmt.Errorf("container %s: stats: %w", c.id, err)
	}
	return s, nil
}
