package libcontainerfd

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"time"

	"github.com/containerfd/containerfd/libcontainerfd/cgroups"
	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// A container's cgroup is one of three cases, chosen once, where the
// Container is made (Create, createRootlessCgroup) or loaded (Load):
//
//   - cgroupOwn: it has a cgroup of its own, which does everything.
//   - cgroupNone: it has none by design (rootless without a delegated
//     cgroup2 subtree): init's pidfd and pid namespace stand in for it where
//     they can, and the rest is refused.
//   - cgroupGone: it had one that is gone, or not made yet: a create or
//     delete stopped halfway. It has no process; only destroy has work.
//
// kill, stop, wait and pids word their errors in full, as the cases word
// them differently; the others return the cause, for the Container to say
// what it was doing.
type cgroupCase interface {
	// own returns the container's cgroup: nil but for cgroupOwn.
	own() *cgroups.Cgroup
	// skipped says why the container has no cgroup by design: nil but for
	// cgroupNone.
	skipped() error
	// gone reports that the container had a cgroup and has it no longer.
	gone() bool

	// kill sends SIGKILL to every process of the container.
	kill() error
	// wait waits for every process to be gone; a negative timeout waits
	// for ever.
	wait(timeout time.Duration) error
	// stop kills every process and waits up to timeout for them to go,
	// for destroy, whose words for a failed kill are its own.
	stop(timeout time.Duration) error
	pids() ([]int, error)
	frozen() (bool, error)
	freeze() error
	thaw() error
	set(r *specs.LinuxResources) error
	stats() (*cgroups.Stats, error)
	// remove removes the cgroup's directories, but those that were there
	// before the container.
	remove() error

	// What a new process joins the cgroup by: the fd of the cgroup2
	// directory to clone into (-1: none); the one for an exec, which may be
	// another (cgroups.Cgroup.JoinFD); the v1 tasks files
	// (cgroups.Cgroup.OpenV1Tasks); and cgroup.events to wait on.
	cloneFD() int
	joinFD(initPid int) (fd int, other bool, err error)
	// sub is sub-cgroups of the container's for one process to join
	// (cgroups.Cgroup.Sub); the caller closes it.
	sub(paths map[string]string) (cgroupCase, error)
	v1Tasks(late string) (fds []int, lateFD int, err error)
	eventsFD() (int, error)

	// close releases the fd of the cgroup2 directory.
	close() error
}

// errNoCgroup is what needs the cgroup says of a container whose create or
// delete stopped before the cgroup was made or after it was removed.
var errNoCgroup = errors.New("its cgroup is gone")

var errTimeout = errors.New("timed out")

// openCgroup chooses a loaded container's case from its state.
func (c *Container) openCgroup() error {
	if c.st.NoCgroup {
		c.cgroup = &cgroupNone{c: c}
		return nil
	}
	cg, err := cgroups.Open(c.st.Cgroup)
	if errors.Is(err, fs.ErrNotExist) {
		c.cgroup = cgroupGone{c: c}
		return nil
	}
	if err != nil {
		return err
	}
	c.cgroup = &cgroupOwn{c: c, cg: cg}
	return nil
}

// goWithoutCgroup makes c a container without a cgroup by design, for the
// reason why.
func (c *Container) goWithoutCgroup(why error) {
	c.st.Cgroup, c.st.NoCgroup = nil, true
	c.cgroup = &cgroupNone{c: c, why: why}
}

// cgroupOwn is a container with a cgroup of its own.
type cgroupOwn struct {
	c  *Container
	cg *cgroups.Cgroup
}

func (o *cgroupOwn) own() *cgroups.Cgroup { return o.cg }
func (o *cgroupOwn) skipped() error       { return nil }
func (o *cgroupOwn) gone() bool           { return false }

func (o *cgroupOwn) kill() error {
	if err := o.cg.Kill(); err != nil {
		return fmt.Errorf("container %s: kill all: %w", o.c.id, err)
	}
	return nil
}

// wait waits by cgroup.events where there is one, else by looking at the
// cgroup's processes every few milliseconds.
func (o *cgroupOwn) wait(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	efd, err := o.cg.EventsFD()
	if err == nil {
		defer unix.Close(efd)
	}
	for {
		pop, err := o.cg.Populated()
		if err != nil {
			return fmt.Errorf("container %s: wait: %w", o.c.id, err)
		}
		if !pop {
			return nil
		}
		ms := 10
		if timeout >= 0 {
			left := time.Until(deadline)
			if left <= 0 {
				return fmt.Errorf("container %s: wait for processes to exit: %w", o.c.id, errTimeout)
			}
			ms = min(int(left/time.Millisecond)+1, 1000)
		}
		if efd >= 0 {
			if timeout < 0 {
				ms = -1
			}
			unix.Poll([]unix.PollFd{{Fd: int32(efd), Events: unix.POLLPRI}}, ms)
		} else {
			time.Sleep(time.Duration(min(ms, 10)) * time.Millisecond)
		}
	}
}

func (o *cgroupOwn) stop(timeout time.Duration) error {
	var err error
	if e := o.cg.Kill(); e != nil {
		err = fmt.Errorf("container %s: kill: %w", o.c.id, e)
	}
	return errors.Join(err, o.wait(timeout))
}

func (o *cgroupOwn) pids() ([]int, error) {
	pids, err := o.cg.Pids()
	if err != nil {
		return nil, fmt.Errorf("container %s: %w", o.c.id, err)
	}
	return pids, nil
}

func (o *cgroupOwn) frozen() (bool, error) { return o.cg.Frozen() }
func (o *cgroupOwn) freeze() error         { return o.cg.Freeze() }
func (o *cgroupOwn) thaw() error           { return o.cg.Thaw() }

// set changes the limits, through the container's systemd unit if it has
// one.
func (o *cgroupOwn) set(r *specs.LinuxResources) error {
	if unit := o.c.st.SystemdUnit; unit != "" {
		return o.cg.SetUnit(unit, r)
	}
	return o.cg.Set(r)
}

func (o *cgroupOwn) stats() (*cgroups.Stats, error) { return o.cg.Stats() }
func (o *cgroupOwn) remove() error {
	return cgroups.Remove(o.cg.Paths().Without(o.c.st.CgroupExisted))
}
func (o *cgroupOwn) cloneFD() int                            { return o.cg.CloneFD() }
func (o *cgroupOwn) joinFD(initPid int) (int, bool, error)   { return o.cg.JoinFD(initPid) }
func (o *cgroupOwn) v1Tasks(late string) ([]int, int, error) { return o.cg.OpenV1Tasks(late) }
func (o *cgroupOwn) sub(paths map[string]string) (cgroupCase, error) {
	cg, err := o.cg.Sub(paths)
	if err != nil {
		return nil, err
	}
	return &cgroupOwn{c: o.c, cg: cg}, nil
}
func (o *cgroupOwn) eventsFD() (int, error) { return o.cg.EventsFD() }
func (o *cgroupOwn) close() error           { return o.cg.Close() }

// noCgroup is what the two cases without a cgroup share: nothing for a new
// process to join, nothing to close, never frozen.
type noCgroup struct{}

func (noCgroup) own() *cgroups.Cgroup               { return nil }
func (noCgroup) frozen() (bool, error)              { return false, nil }
func (noCgroup) cloneFD() int                       { return -1 }
func (noCgroup) joinFD(int) (int, bool, error)      { return -1, false, nil }
func (noCgroup) v1Tasks(string) ([]int, int, error) { return nil, -1, nil }
func (noCgroup) eventsFD() (int, error)             { return -1, errors.New("no cgroup") }
func (noCgroup) close() error                       { return nil }

// cgroupNone is a container without a cgroup by design: rootless without a
// delegated cgroup2 subtree.
type cgroupNone struct {
	noCgroup
	c *Container
	// why says why it has none; nil in a process that did not create it.
	why error
}

func (n *cgroupNone) skipped() error {
	if n.why == nil {
		return errors.New("no cgroup")
	}
	return n.why
}

func (n *cgroupNone) gone() bool { return false }

func (n *cgroupNone) sub(map[string]string) (cgroupCase, error) { return nil, n.need() }

// need is the error of what only a cgroup can do.
func (n *cgroupNone) need() error {
	const why = "the container has no cgroup: it runs rootless without a delegated cgroup2 subtree"
	if n.why != nil {
		return fmt.Errorf("%s (%v)", why, n.why)
	}
	return errors.New(why)
}

// kill sends SIGKILL to init, which takes every process of its own pid
// namespace with it.
func (n *cgroupNone) kill() error {
	c := n.c
	if c.initPidfd < 0 {
		return nil
	}
	if c.st.Namespaces&unix.CLONE_NEWPID == 0 {
		return fmt.Errorf("container %s: kill all: %w, nor a pid namespace of its own, so its processes cannot be told from the caller's", c.id, n.need())
	}
	if err := unix.PidfdSendSignal(c.initPidfd, unix.SIGKILL, nil, 0); err != nil && err != unix.ESRCH {
		return fmt.Errorf("container %s: kill init: %w", c.id, err)
	}
	return nil
}

// wait waits for init to be gone (with a pid namespace of its own, the
// kernel kills the rest with it).
func (n *cgroupNone) wait(timeout time.Duration) error {
	c := n.c
	if c.initPidfd < 0 {
		return nil
	}
	ms := -1
	if timeout >= 0 {
		ms = int(timeout / time.Millisecond)
	}
	deadline := time.Now().Add(timeout)
	for {
		nfd, err := unix.Poll([]unix.PollFd{{Fd: int32(c.initPidfd), Events: unix.POLLIN}}, ms)
		if err == unix.EINTR {
			if timeout >= 0 {
				ms = max(int(time.Until(deadline)/time.Millisecond), 0)
			}
			continue
		}
		if err != nil {
			return fmt.Errorf("container %s: wait: %w", c.id, err)
		}
		if nfd == 0 {
			return fmt.Errorf("container %s: wait for processes to exit: %w", c.id, errTimeout)
		}
		return nil
	}
}

func (n *cgroupNone) stop(timeout time.Duration) error {
	return errors.Join(n.kill(), n.wait(timeout))
}

// pids lists the processes in init's pid namespace, or init alone without
// one.
func (n *cgroupNone) pids() ([]int, error) {
	c := n.c
	if !c.initAlive() {
		return nil, nil
	}
	if c.st.Namespaces&unix.CLONE_NEWPID == 0 {
		return []int{c.st.Init.Pid}, nil
	}
	var want unix.Stat_t
	if err := unix.Stat("/proc/"+strconv.Itoa(c.st.Init.Pid)+"/ns/pid", &want); err != nil {
		return nil, fmt.Errorf("container %s: pids: %w", c.id, err)
	}
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil, fmt.Errorf("container %s: pids: %w", c.id, err)
	}
	var pids []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		var st unix.Stat_t
		if unix.Stat("/proc/"+e.Name()+"/ns/pid", &st) == nil && st.Ino == want.Ino && st.Dev == want.Dev {
			pids = append(pids, pid)
		}
	}
	return pids, nil
}

func (n *cgroupNone) freeze() error                   { return n.need() }
func (n *cgroupNone) thaw() error                     { return n.need() }
func (n *cgroupNone) set(*specs.LinuxResources) error { return n.need() }
func (n *cgroupNone) stats() (*cgroups.Stats, error)  { return nil, n.need() }
func (n *cgroupNone) remove() error                   { return nil } // none was made

// cgroupGone is a container whose create or delete stopped before its
// cgroup was made or after it was removed: no cgroup, so no process.
type cgroupGone struct {
	noCgroup
	c *Container
}

func (cgroupGone) skipped() error                            { return nil }
func (cgroupGone) gone() bool                                { return true }
func (cgroupGone) kill() error                               { return nil }
func (cgroupGone) wait(time.Duration) error                  { return nil }
func (cgroupGone) stop(time.Duration) error                  { return nil }
func (cgroupGone) pids() ([]int, error)                      { return nil, nil }
func (cgroupGone) freeze() error                             { return errNoCgroup }
func (cgroupGone) thaw() error                               { return errNoCgroup }
func (cgroupGone) set(*specs.LinuxResources) error           { return errNoCgroup }
func (cgroupGone) stats() (*cgroups.Stats, error)            { return nil, errNoCgroup }
func (cgroupGone) sub(map[string]string) (cgroupCase, error) { return nil, errNoCgroup }

// remove removes what the state names and is left (no longer fully there,
// or never made).
func (g cgroupGone) remove() error {
	if g.c.st.Cgroup == nil {
		return nil
	}
	return cgroups.Remove(g.c.st.Cgroup.Without(g.c.st.CgroupExisted))
}
