package cgroups

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"golang.org/x/sys/unix"
)

// oomPoll bounds how long WatchOOM's goroutine sleeps in poll(2) before it
// looks whether it was stopped.
const oomPoll = time.Second

// WatchOOM calls f, from a goroutine of its own, each time the kernel's OOM
// killer kills in the cgroup, until stop is closed or the cgroup is
// removed. In a v1 memory hierarchy it listens on an eventfd registered for
// memory.oom_control (cgroup.event_control); in cgroup2 it polls
// memory.events for a change (POLLPRI) and counts oom_kill. A cgroup
// without the memory controller has nothing to watch: an error wrapping
// errors.ErrUnsupported.
func (c *Cgroup) WatchOOM(stop <-chan struct{}, f func()) error {
	dir, v2, ok := c.statsDir("memory")
	if ok && v2 {
		if _, err := os.Stat(filepath.Join(dir, "memory.events")); err != nil {
			ok = false
		}
	}
	if !ok {
		return fmt.Errorf("cgroups: watch OOM kills: no memory controller: %w", errors.ErrUnsupported)
	}
	if v2 {
		return watchOOMv2(dir, stop, f)
	}
	return watchOOMv1(dir, stop, f)
}

func watchOOMv1(dir string, stop <-chan struct{}, f func()) error {
	efd, err := unix.Eventfd(0, unix.EFD_CLOEXEC)
	if err != nil {
		return fmt.Errorf("cgroups: watch OOM kills: eventfd: %w", err)
	}
	ctl := filepath.Join(dir, "memory.oom_control")
	ofd, err := unix.Open(ctl, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		unix.Close(efd)
		return fmt.Errorf("cgroups: watch OOM kills: open %s: %w", ctl, err)
	}
	// The kernel holds the registration until the cgroup goes (and then
	// signals the eventfd once more); ours to close is only the control
	// file's fd.
	err = writeFile(dir, "cgroup.event_control", strconv.Itoa(efd)+" "+strconv.Itoa(ofd))
	unix.Close(ofd)
	if err != nil {
		unix.Close(efd)
		return fmt.Errorf("cgroups: watch OOM kills: %w", err)
	}
	go func() {
		defer unix.Close(efd)
		buf := make([]byte, 8)
		for pollIn(efd, unix.POLLIN, stop) {
			if _, err := unix.Read(efd, buf); err != nil && err != unix.EINTR {
				return
			}
			if _, err := os.Stat(ctl); err != nil {
				return // the cgroup was removed
			}
			f()
		}
	}()
	return nil
}

func watchOOMv2(dir string, stop <-chan struct{}, f func()) error {
	p := filepath.Join(dir, "memory.events")
	fd, err := unix.Open(p, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("cgroups: watch OOM kills: open %s: %w", p, err)
	}
	kills := func() (uint64, bool) {
		buf := make([]byte, 512)
		n, err := unix.Pread(fd, buf, 0)
		if err != nil {
			return 0, false
		}
		ev, err := parseKeyed(p, string(buf[:n]))
		return ev["oom_kill"], err == nil
	}
	seen, _ := kills()
	go func() {
		defer unix.Close(fd)
		for pollIn(fd, unix.POLLPRI, stop) {
			n, ok := kills()
			if !ok {
				return // the cgroup was removed
			}
			for ; seen < n; seen++ {
				f()
			}
		}
	}()
	return nil
}

// pollIn waits for events on fd, and reports false once stop is closed or
// fd fails.
func pollIn(fd int, events int16, stop <-chan struct{}) bool {
	for {
		select {
		case <-stop:
			return false
		default:
		}
		pfd := []unix.PollFd{{Fd: int32(fd), Events: events}}
		n, err := unix.Poll(pfd, int(oomPoll/time.Millisecond))
		switch {
		case err == unix.EINTR || n == 0:
			continue
		case err != nil || pfd[0].Revents&(unix.POLLNVAL|unix.POLLHUP) != 0:
			return false
		}
		return true
	}
}
