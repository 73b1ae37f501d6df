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

// WatchOOM calls f, from a goroutine of its own, each time the kernel's OOM
// killer kills in the cgroup, until stop is closed (the caller closes it
// once done with the cgroup; v1 also stops when the cgroup is removed). The
// goroutine waits in Go's poller, with no thread held and nothing polled at
// intervals: a shim watches every container it holds. In a v1 memory
// hierarchy it reads an eventfd registered for memory.oom_control
// (cgroup.event_control), which the kernel signals on each OOM and once more
// when the cgroup goes; in cgroup2 it counts oom_kill in memory.events each
// time the kernel notifies a change of the file (watchFile). A cgroup
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
	// Non-blocking, so that os.NewFile puts it in Go's poller.
	efd, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
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
	file := os.NewFile(uintptr(efd), "eventfd")
	wait(file, stop, func() {
		buf := make([]byte, 8)
		for {
			if _, err := file.Read(buf); err != nil {
				return // file closed
			}
			select {
			case <-stop:
				return
			default:
			}
			if _, err := os.Stat(ctl); err != nil {
				return // the cgroup was removed
			}
			f()
		}
	})
	return nil
}

func watchOOMv2(dir string, stop <-chan struct{}, f func()) error {
	p := filepath.Join(dir, "memory.events")
	kills := func(b []byte, err error) (uint64, bool) {
		if err != nil {
			return 0, false // the cgroup was removed: ENODEV
		}
		ev, err := parseKeyed(p, string(b))
		return ev["oom_kill"], err == nil
	}
	var seen uint64
	err := watchFile(p, stop, func(b []byte, err error) {
		seen, _ = kills(b, err)
	}, func(b []byte, err error) bool {
		n, ok := kills(b, err)
		for ; ok && seen < n; seen++ {
			f()
		}
		return ok
	})
	if err != nil {
		return fmt.Errorf("cgroups: watch OOM kills: %w", err)
	}
	return nil
}

// watchFile watches the cgroup2 file path (cgroup.events, memory.events:
// files the kernel notifies a change of) from a goroutine of its own that
// waits in Go's poller. kernfs wakes a file's pollers on each change, and
// the poller's edge-triggered epoll takes each wake-up as the file being
// readable (it always is), so no thread is held and no interval polled.
// first gets the content once the file is in the poller; changed gets it
// after each wake-up (and may get it when nothing changed), until it
// returns false or stop is closed.
func watchFile(path string, stop <-chan struct{}, first func([]byte, error), changed func([]byte, error) bool) error {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
	if err != nil {
		return fmt.Errorf("open %s: %w", path, err)
	}
	file := os.NewFile(uintptr(fd), path) // non-blocking: in the poller
	// A file the poller does not take has no deadlines.
	if err := file.SetReadDeadline(time.Time{}); err != nil {
		file.Close()
		return fmt.Errorf("%s: not pollable: %w", path, err)
	}
	rc, err := file.SyscallConn()
	if err != nil {
		file.Close()
		return err
	}
	buf := make([]byte, 4096)
	read := func(fd uintptr) ([]byte, error) {
		n, err := unix.Pread(int(fd), buf, 0)
		if err != nil {
			return nil, err
		}
		return buf[:n], nil
	}
	rc.Control(func(fd uintptr) { first(read(fd)) })
	wait(file, stop, func() {
		// Read calls the function again after each wake-up until it
		// returns true, or fails once file is closed.
		rc.Read(func(fd uintptr) bool {
			select {
			case <-stop:
				return true
			default:
			}
			return !changed(read(fd))
		})
	})
	return nil
}

// wait runs watch in a goroutine of its own, which waits in the poller on
// file until stop is closed (which closes file and so ends the wait) or
// watch returns; then file is closed.
func wait(file *os.File, stop <-chan struct{}, watch func()) {
	done := make(chan struct{})
	go func() {
		select {
		case <-stop:
		case <-done:
		}
		file.Close()
	}()
	go func() {
		defer close(done)
		watch()
	}()
}
