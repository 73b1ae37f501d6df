package libcontainerfd

import (
	"fmt"
	"runtime"
	"time"

	"github.com/containerfd/containerfd/libcontainerfd/kernfeat"
	"golang.org/x/sys/unix"
)

// Wait blocks until the last process of the container is gone — not only
// init: a process init left behind keeps the container alive.
func (c *Container) Wait() error { return c.cgroup.wait(-1) }

// PollFD returns an fd that polls POLLHUP once the container's last process
// is gone, as the proposed container fd did. The caller closes it.
func (c *Container) PollFD() (int, error) {
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		return -1, fmt.Errorf("container %s: poll fd: %w", c.id, err)
	}
	go func() {
		c.cgroup.wait(-1)
		unix.Close(p[1])
	}()
	return p[0], nil
}

// PidfdExit is PIDFD_GET_INFO with PIDFD_INFO_EXIT (Linux 6.15): a pidfd
// holder that is not the process's parent reads its exit status once it is
// reaped. Without it, WaitStatus reports no status.
var PidfdExit = kernfeat.Register("pidfd-exit",
	"a pidfd tells init's exit status to a waiter that is not its parent (Linux 6.15); without it, wait reports only that the container stopped",
	probePidfdExit)

// probePidfdExit asks for the exit status of a thread of ours that has
// ended: threads are reaped as they exit, so the kernel has recorded it if
// it records any. Thread pidfds (PIDFD_THREAD) are Linux 6.9, older than
// the feature.
func probePidfdExit() bool {
	fds := make(chan int)
	held := make(chan struct{})
	defer close(held)
	go endingThread(fds, held)
	fd := <-fds
	if fd < 0 {
		return false
	}
	defer unix.Close(fd)
	if reaped, err := awaitReaped(fd, time.Second); !reaped || err != nil {
		return false
	}
	info := unix.PidfdInfo{Mask: unix.PIDFD_INFO_EXIT}
	return unix.IoctlPidfdInfo(fd, &info) == nil && info.Mask&unix.PIDFD_INFO_EXIT != 0
}

// endingThread sends a pidfd of its thread (-1 if it cannot) and ends the
// thread: a goroutine that returns locked to its thread ends it. Go never
// ends the main thread, though: on it, endingThread keeps it locked until
// held is closed, so that the goroutine it starts in its place runs on
// another.
func endingThread(fds chan<- int, held <-chan struct{}) {
	runtime.LockOSThread()
	if unix.Gettid() == unix.Getpid() {
		go endingThread(fds, held)
		<-held
		runtime.UnlockOSThread()
		return
	}
	fd, err := unix.PidfdOpen(unix.Gettid(), unix.PIDFD_THREAD)
	if err != nil {
		fd = -1
	}
	fds <- fd
}

// reapGrace is how long WaitStatus waits, once the container stopped, for
// init's parent (the caller of create, or a subreaper) to reap it: the
// kernel keeps the status for a pidfd only then. A parent that reaps only
// after wait returns, or never, costs a waiter this much and no status.
const reapGrace = time.Second

// WaitStatus waits as Wait does, then returns init's wait status where the
// kernel can tell it (ok true): on Linux 6.15 and newer (PidfdExit), once
// init's parent has reaped it, within reapGrace of the container's end. It
// cannot tell without PidfdExit, when the container was loaded after init
// was reaped, or when init's parent has not reaped it by then (the process
// that called ForkInit is that parent: its Process.Wait reaps init and
// returns the status); ok is then false.
func (c *Container) WaitStatus() (ws unix.WaitStatus, ok bool, err error) {
	if err := c.Wait(); err != nil {
		return 0, false, err
	}
	if c.initPidfd < 0 {
		return 0, false, nil
	}
	if !PidfdExit.Available() {
		return 0, false, nil
	}
	reaped, err := awaitReaped(c.initPidfd, reapGrace)
	if err != nil {
		return 0, false, fmt.Errorf("container %s: wait for init to be reaped: %w", c.id, err)
	}
	if !reaped {
		return 0, false, nil
	}
	info := unix.PidfdInfo{Mask: unix.PIDFD_INFO_EXIT}
	if err := unix.IoctlPidfdInfo(c.initPidfd, &info); err != nil || info.Mask&unix.PIDFD_INFO_EXIT == 0 {
		return 0, false, nil
	}
	return unix.WaitStatus(info.Exit_code), true, nil
}

// awaitReaped reports whether the process pidfd refers to is reaped within
// timeout: the pidfd then polls POLLHUP, asked for or not. The kernel wakes
// pidfd pollers when the process exits, not when it is reaped: look every
// 10ms.
func awaitReaped(pidfd int, timeout time.Duration) (bool, error) {
	deadline := time.Now().Add(timeout)
	for {
		n, err := unix.Poll([]unix.PollFd{{Fd: int32(pidfd)}}, 10)
		if err != nil && err != unix.EINTR {
			return false, err
		}
		if n == 1 {
			return true, nil
		}
		if time.Now().After(deadline) {
			return false, nil
		}
	}
}
