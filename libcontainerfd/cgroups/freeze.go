package cgroups

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/containerfd/containerfd/libcontainerfd/kernfeat"
)

// freezeTimeout bounds how long Freeze waits for every process to stop.
var freezeTimeout = 5 * time.Second

// killTimeout bounds the freeze-and-kill loop of Kill.
var killTimeout = 10 * time.Second

// Freeze stops every process in the cgroup and below it, and waits until they
// all are stopped: with cgroup.freeze where there is cgroup2 (V2 and Hybrid)
// and with the v1 freezer where there is one (V1 and Hybrid). In Hybrid mode
// it freezes both, as tools on such hosts read freezer.state (runc freezes
// there through the v1 freezer alone), cgroup2 first: a task stopped by the
// v1 freezer could not reach cgroup2's freezer trap. If that takes longer
// than a few seconds it thaws the cgroup again and fails. Freezing a frozen
// cgroup is a no-op.
func (c *Cgroup) Freeze() error {
	if err := c.freeze(freezeTimeout); err != nil {
		if terr := c.Thaw(); terr != nil {
			return errors.Join(err, terr)
		}
		return err
	}
	return nil
}

func (c *Cgroup) freeze(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	if c.v2 != "" {
		if err := c.freezeV2(deadline, timeout); err != nil {
			return err
		}
	}
	dir, ok := c.paths["freezer"]
	if !ok {
		if c.v2 != "" {
			return nil
		}
		return fmt.Errorf("cgroups: freeze: no cgroup2 and no v1 freezer hierarchy: %w", errors.ErrUnsupported)
	}
	if err := writeFile(dir, "freezer.state", "FROZEN"); err != nil {
		return fmt.Errorf("cgroups: freeze: %w", err)
	}
	last := time.Now()
	for delay := 100 * time.Microsecond; ; delay = min(2*delay, 10*time.Millisecond) {
		s, err := readFile(dir, "freezer.state")
		if err != nil {
			return fmt.Errorf("cgroups: freeze: %w", err)
		}
		if strings.TrimSpace(s) == "FROZEN" {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("cgroups: freeze %s: still %s after %v: %w", dir, strings.TrimSpace(s), timeout, os.ErrDeadlineExceeded)
		}
		time.Sleep(delay)
		// A task that was busy in the kernel can miss the first request;
		// asking again makes the freezer try each unfrozen task once more.
		if time.Since(last) > 100*time.Millisecond {
			if err := writeFile(dir, "freezer.state", "FROZEN"); err != nil {
				return fmt.Errorf("cgroups: freeze: %w", err)
			}
			last = time.Now()
		}
	}
}

func (c *Cgroup) freezeV2(deadline time.Time, timeout time.Duration) error {
	fd, err := c.EventsFD()
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	if err := writeFile(c.v2, "cgroup.freeze", "1"); err != nil {
		return fmt.Errorf("cgroups: freeze: %w", err)
	}
	for {
		ev, err := ReadEvents(fd) // also re-arms POLLPRI
		if err != nil {
			return err
		}
		if ev.Frozen {
			return nil
		}
		left := time.Until(deadline)
		if left <= 0 {
			return fmt.Errorf("cgroups: freeze %s: not frozen after %v: %w", c.v2, timeout, os.ErrDeadlineExceeded)
		}
		fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLPRI}}
		if _, err := unix.Poll(fds, int(left/time.Millisecond)+1); err != nil && err != unix.EINTR {
			return fmt.Errorf("cgroups: freeze: poll %s/cgroup.events: %w", c.v2, err)
		}
	}
}

// Thaw lets the processes of a frozen cgroup run again, in every freezer
// Freeze uses (the v1 one first, in the reverse order of Freeze). Thawing a
// cgroup that is not frozen is a no-op.
func (c *Cgroup) Thaw() error {
	dir, v1 := c.paths["freezer"]
	if !v1 && c.v2 == "" {
		return fmt.Errorf("cgroups: thaw: no cgroup2 and no v1 freezer hierarchy: %w", errors.ErrUnsupported)
	}
	if v1 {
		if err := writeFile(dir, "freezer.state", "THAWED"); err != nil {
			return fmt.Errorf("cgroups: thaw: %w", err)
		}
	}
	if c.v2 != "" {
		if err := writeFile(c.v2, "cgroup.freeze", "0"); err != nil {
			return fmt.Errorf("cgroups: thaw: %w", err)
		}
	}
	return nil
}

// Frozen reports whether the cgroup is completely frozen, by either freezer
// it has: cgroup.freeze 1 and "frozen 1" in cgroup.events, or "FROZEN" in
// the v1 freezer.state (not "FREEZING"); in Hybrid mode another tool may
// have used either. cgroup.freeze is read first, as runc reads it: the
// kernel may leave "frozen 1" in cgroup.events of a cgroup thawed while its
// last tasks exited.
func (c *Cgroup) Frozen() (bool, error) {
	if c.v2 != "" {
		want, err := readFile(c.v2, "cgroup.freeze")
		if err != nil {
			return false, fmt.Errorf("cgroups: %w", err)
		}
		if strings.TrimSpace(want) == "1" {
			ev, err := c.Events()
			if err != nil || ev.Frozen {
				return ev.Frozen, err
			}
		}
	}
	dir, ok := c.paths["freezer"]
	if !ok {
		if c.v2 != "" {
			return false, nil
		}
		return false, fmt.Errorf("cgroups: no cgroup2 and no v1 freezer hierarchy: %w", errors.ErrUnsupported)
	}
	s, err := readFile(dir, "freezer.state")
	if err != nil {
		return false, fmt.Errorf("cgroups: %w", err)
	}
	return strings.TrimSpace(s) == "FROZEN", nil
}

// CgroupKill is cgroup.kill (Linux 5.14, so on every kernel we run on):
// without it, Kill freezes the cgroup and signals each process.
var CgroupKill = kernfeat.Register("cgroup-kill",
	"cgroup.kill kills a cgroup2 container at once (Linux 5.14); without it, the cgroup is frozen and each process signalled",
	nil)

// Kill sends SIGKILL to every process in the cgroup and below it. With
// cgroup2 it writes cgroup.kill, when the kernel has it and
// CgroupKill is not disabled, and thaws a v1 freezer (Hybrid mode), whose
// frozen tasks would not die until thawed. Otherwise it freezes the cgroup (so
// nothing can fork), signals each process, and thaws it, round after round,
// until a round finds no process it has not signalled already. It does not
// wait for the processes to be gone: poll EventsFD (or Populated) for that.
func (c *Cgroup) Kill() error {
	if c.gone() {
		return nil // removed (systemd drops an emptied scope): no process left
	}
	if c.v2 != "" && CgroupKill.Available() {
		err := writeFile(c.v2, "cgroup.kill", "1")
		if errors.Is(err, unix.ENODEV) || c.gone() {
			return nil // removed meanwhile, nothing to kill
		}
		if err == nil {
			// A task the v1 freezer holds dies only once thawed.
			if dir, ok := c.paths["freezer"]; ok {
				if err := writeFile(dir, "freezer.state", "THAWED"); err != nil && !errors.Is(err, unix.ENODEV) && !c.gone() {
					return fmt.Errorf("cgroups: kill: thaw: %w", err)
				}
			}
			return nil
		}
		if !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("cgroups: kill: %w", err)
		}
		// Before Linux 5.14: no cgroup.kill.
	}
	return c.killEach()
}

// killEach is Kill without cgroup.kill. Each process is signalled through a
// pidfd opened while the cgroup is frozen, so a pid reused after its process
// died cannot be hit by mistake, and a pid seen again in a later round is
// signalled again only if the process signalled before has exited.
func (c *Cgroup) killEach() error {
	deadline := time.Now().Add(killTimeout)
	signalled := map[int]int{} // pid -> pidfd
	defer func() {
		for _, fd := range signalled {
			unix.Close(fd)
		}
	}()
	canFreeze := c.v2 != "" || c.paths["freezer"] != ""
	for delay := 100 * time.Microsecond; ; delay = min(2*delay, 20*time.Millisecond) {
		// If the freeze does not complete (a task stuck in the kernel), go on
		// anyway, but then only an empty cgroup ends the loop.
		frozen := canFreeze && c.freeze(time.Second) == nil
		pids, err := c.Pids()
		if err != nil {
			return errors.Join(fmt.Errorf("cgroups: kill: %w", err), c.thawIf(canFreeze))
		}
		fresh := 0
		var errs []error
		for _, pid := range pids {
			if fd, ok := signalled[pid]; ok {
				if !exited(fd) {
					continue // signalled and on its way out
				}
				unix.Close(fd)
				delete(signalled, pid)
			}
			fd, err := unix.PidfdOpen(pid, 0)
			if err == unix.ESRCH || err == unix.EINVAL {
				// Gone meanwhile (EINVAL before Linux 6.9: its pid
				// lives on as a session or group id).
				continue
			}
			if err != nil {
				errs = append(errs, fmt.Errorf("cgroups: kill: pidfd_open %d: %w", pid, err))
				continue
			}
			signalled[pid] = fd
			fresh++
			if err := unix.PidfdSendSignal(fd, unix.SIGKILL, nil, 0); err != nil && err != unix.ESRCH {
				errs = append(errs, fmt.Errorf("cgroups: kill: signal process %d: %w", pid, err))
			}
		}
		if err := c.thawIf(canFreeze); err != nil {
			errs = append(errs, err)
		}
		if len(errs) > 0 {
			return errors.Join(errs...)
		}
		if len(pids) == 0 || (fresh == 0 && frozen) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("cgroups: kill: processes %v still in %s after %v", pids, c.pidsDirs()[0], killTimeout)
		}
		if fresh == 0 {
			time.Sleep(delay)
		}
	}
}

func (c *Cgroup) thawIf(canFreeze bool) error {
	if !canFreeze {
		return nil
	}
	return c.Thaw()
}

// exited reports whether the process of a pidfd has exited.
func exited(pidfd int) bool {
	fds := []unix.PollFd{{Fd: int32(pidfd), Events: unix.POLLIN}}
	n, err := unix.Poll(fds, 0)
	return err == nil && n > 0
}
