// Package procid tells one process from another that later got the same pid.
//
// A pid alone is not an identity: after a process exits its pid is reused.
// The identity kept here is the pidfs file handle of the process (Linux 6.9,
// unique for the life of the system) or, without pidfs handles, the start
// time from /proc/<pid>/stat, which together with the pid is unique.
package procid

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/containerfd/containerfd/libcontainerfd/kernfeat"
	"golang.org/x/sys/unix"
)

// ErrReused is returned by Open when the pid now belongs to another process.
var ErrReused = errors.New("pid reused by another process")

// ID identifies a process: by its pidfs handle where the kernel gives one,
// else by its start time.
type ID struct {
	Pid        int    `json:"pid"`
	HandleType int32  `json:"handleType,omitempty"`
	Handle     []byte `json:"handle,omitempty"`
	StartTime  uint64 `json:"startTime,omitempty"`
}

// PidfsHandle is a file handle of a pidfd (pidfs), probed on our own.
var PidfsHandle = kernfeat.Register("pidfs-handle",
	"a pidfs file handle tells a process from one that reused its pid (Linux 6.9); without it, the start time in /proc/<pid>/stat does",
	func() bool {
		fd, err := unix.PidfdOpen(os.Getpid(), 0)
		if err != nil {
			return false
		}
		defer unix.Close(fd)
		_, _, err = unix.NameToHandleAt(fd, "", unix.AT_EMPTY_PATH)
		return err == nil
	})

// Of returns the identity of the process that pidfd refers to.
func Of(pid, pidfd int) (ID, error) {
	st, err := startTime(pid)
	if err != nil {
		return ID{}, err
	}
	// The pidfd still refers to pid: make sure it did not exit in between,
	// or the start time read may be another process's.
	if err := unix.PidfdSendSignal(pidfd, 0, nil, 0); err != nil {
		return ID{}, fmt.Errorf("procid: process %d: %w", pid, err)
	}
	id := ID{Pid: pid, StartTime: st}
	if PidfsHandle.Available() {
		if fh, _, err := unix.NameToHandleAt(pidfd, "", unix.AT_EMPTY_PATH); err == nil {
			id.HandleType, id.Handle = fh.Type(), fh.Bytes()
		}
	}
	return id, nil
}

// Open returns a pidfd for the process id names. It fails with unix.ESRCH
// when no process has the pid and with ErrReused when another one has.
func Open(id ID) (int, error) {
	pidfd, err := unix.PidfdOpen(id.Pid, 0)
	if err == unix.EINVAL {
		// Before pidfs (Linux 6.9), a pid that outlives its process as
		// the id of a session or process group (init led its own; its
		// orphans keep them) gives EINVAL: no process has it.
		err = unix.ESRCH
	}
	if err != nil {
		return -1, fmt.Errorf("procid: pidfd_open %d: %w", id.Pid, err)
	}
	now, err := Of(id.Pid, pidfd)
	if err == nil && !id.same(now) {
		err = fmt.Errorf("procid: process %d: %w", id.Pid, ErrReused)
	}
	if err != nil {
		unix.Close(pidfd)
		return -1, err
	}
	return pidfd, nil
}

func (id ID) same(o ID) bool {
	if id.Handle != nil && o.Handle != nil {
		return id.HandleType == o.HandleType && bytes.Equal(id.Handle, o.Handle)
	}
	return id.StartTime == o.StartTime
}

// startTime reads field 22 of /proc/<pid>/stat: the start time in clock ticks
// after boot. The command name (field 2) may hold spaces and parentheses, so
// fields are counted after its closing parenthesis.
func startTime(pid int) (uint64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, fmt.Errorf("procid: %w", err)
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("procid: /proc/%d/stat: no command field", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state), so field 22 is f[19].
	if len(f) < 20 {
		return 0, fmt.Errorf("procid: /proc/%d/stat: too few fields", pid)
	}
	st, err := strconv.ParseUint(f[19], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("procid: /proc/%d/stat start time: %w", pid, err)
	}
	return st, nil
}
