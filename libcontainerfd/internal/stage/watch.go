package stage

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/containerfd/containerfd/libcontainerfd/cgroups"
	"github.com/containerfd/containerfd/libcontainerfd/internal/msg"
	"golang.org/x/sys/unix"
)

// runWatch is the watcher of a KillOnClose container: it holds
// msg.WatchHoldFD, the read end of a pipe whose write end the Container
// holds (or a pidfd of the holder); when it gets ready, the holder closed
// it or died, and the watcher kills the container. It leaves on its own
// when the container is empty: msg.WatchWaitFD, the cgroup's
// cgroup.events or init's pidfd, says so.
func runWatch() error {
	if len(os.Args) == 2 && os.Args[1] == msg.WatchGroup {
		return runWatchGroup()
	}
	if len(os.Args) != 4 {
		return fmt.Errorf("usage: %s FD PATHS KIND", msg.StageWatch)
	}
	var paths cgroups.Paths
	if err := json.Unmarshal([]byte(os.Args[2]), &paths); err != nil {
		return fmt.Errorf("cgroup paths: %w", err)
	}
	events := os.Args[3] == "events"
	kill := func() error {
		// No cgroup (rootless): init's pidfd; the pid namespace dies with it.
		return unix.PidfdSendSignal(msg.WatchWaitFD, unix.SIGKILL, nil, 0)
	}
	var cg *cgroups.Cgroup
	if len(paths) > 0 {
		var err error
		if cg, err = cgroups.Open(paths); err != nil {
			return err
		}
		kill = cg.Kill
	}
	waitEv := int16(unix.POLLIN)
	if events {
		waitEv = unix.POLLPRI
	}
	for {
		fds := []unix.PollFd{{Fd: msg.WatchHoldFD, Events: unix.POLLIN}, {Fd: msg.WatchWaitFD, Events: waitEv}}
		if _, err := unix.Poll(fds, -1); err != nil {
			if err == unix.EINTR {
				continue
			}
			return fmt.Errorf("poll: %w", err)
		}
		if fds[0].Revents != 0 {
			return kill()
		}
		if fds[1].Revents != 0 {
			if !events {
				return nil // init is gone, and with it the pid namespace
			}
			// Read from the fd polled: that re-arms it; otherwise poll
			// reports the same change again at once, for ever. ENODEV:
			// the cgroup is gone, so empty.
			ev, err := cgroups.ReadEvents(msg.WatchWaitFD)
			if err != nil && !errors.Is(err, unix.ENODEV) {
				return err
			}
			if err != nil || !ev.Populated {
				return nil
			}
		}
	}
}

// runWatchGroup is the end of a group watcher (libcontainerfd.Watcher):
// once msg.WatchHoldFD has ended (at once when spawn's waiter execs us: it
// waited for that), it kills the containers msg.WatchListFD lists. Those
// whose cgroup is gone have nothing left to kill.
func runWatchGroup() error {
	b := make([]byte, 1)
	for {
		n, err := unix.Read(msg.WatchHoldFD, b)
		if err != unix.EINTR && n <= 0 {
			break
		}
	}
	list, err := msg.ReadWatchList(msg.WatchListFD)
	if err != nil {
		return err
	}
	var errs []error
	for _, raw := range list {
		var paths cgroups.Paths
		if err := json.Unmarshal(raw, &paths); err != nil {
			errs = append(errs, fmt.Errorf("cgroup paths: %w", err))
			continue
		}
		for k, d := range paths {
			if _, err := os.Stat(d); errors.Is(err, fs.ErrNotExist) {
				delete(paths, k)
			}
		}
		if len(paths) == 0 {
			continue
		}
		cg, err := cgroups.Open(paths)
		if err == nil {
			err = cg.Kill()
			cg.Close()
		}
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// runUserns only holds a user namespace with the mapping an idmapped mount
// needs while the runtime opens it; it leaves when msg.UsernsHoldFD closes.
func runUserns() error {
	b := make([]byte, 1)
	for {
		if _, err := unix.Read(msg.UsernsHoldFD, b); err != unix.EINTR {
			return nil
		}
	}
}
