package stage

import (
	"encoding/json"
	"errors"
	"fmt"
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
	if len(os.Args) == 3 && os.Args[2] == msg.WatchGroup {
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

// watched is one container of a group watcher.
type watched struct {
	wait   int  // its msg.Watch.WaitFD
	events bool // wait is its cgroup.events, else init's pidfd
	cg     *cgroups.Cgroup
}

// kill kills the container: by its cgroup, or without one by init's pidfd
// (the pid namespace dies with it).
func (w *watched) kill() error {
	if w.cg != nil {
		return w.cg.Kill()
	}
	return unix.PidfdSendSignal(w.wait, unix.SIGKILL, nil, 0)
}

// empty reads whether the container is empty, once its wait fd is ready.
func (w *watched) empty() bool {
	if !w.events {
		return true // init is gone, and with it the pid namespace
	}
	// Read from the fd polled: that re-arms it. ENODEV: the cgroup is gone.
	ev, err := cgroups.ReadEvents(w.wait)
	return err != nil || !ev.Populated
}

// runWatchGroup is a watcher of many containers (msg.WatchGroup): each
// comes on the socket msg.WatchHoldFD as a msg.Watch with its wait fd, and
// is forgotten once empty; when the socket ends (its holder closed it or
// died), it kills those it still watches, having read every one sent.
func runWatchGroup() error {
	var ws []*watched
	for {
		fds := []unix.PollFd{{Fd: msg.WatchHoldFD, Events: unix.POLLIN}}
		for _, w := range ws {
			ev := int16(unix.POLLIN)
			if w.events {
				ev = unix.POLLPRI
			}
			fds = append(fds, unix.PollFd{Fd: int32(w.wait), Events: ev})
		}
		if _, err := unix.Poll(fds, -1); err != nil {
			if err == unix.EINTR {
				continue
			}
			return fmt.Errorf("poll: %w", err)
		}
		kept := ws[:0]
		for i, w := range ws {
			if fds[i+1].Revents != 0 && w.empty() {
				unix.Close(w.wait)
				continue
			}
			kept = append(kept, w)
		}
		ws = kept
		if fds[0].Revents == 0 {
			continue
		}
		var order msg.Watch
		fd, err := msg.Recv(msg.WatchHoldFD, &order)
		if err == nil && fd < 0 {
			err = errors.New("a container to watch without its wait fd")
		}
		if err != nil {
			// The end (ErrEOF), or a holder that cannot be understood:
			// either way nobody holds them any more.
			var errs []error
			for _, w := range ws {
				if kerr := w.kill(); kerr != nil {
					errs = append(errs, kerr)
				}
			}
			if !errors.Is(err, msg.ErrEOF) {
				errs = append(errs, err)
			}
			return errors.Join(errs...)
		}
		w := &watched{wait: fd, events: order.Kind == "events"}
		var paths cgroups.Paths
		if err := json.Unmarshal(order.Paths, &paths); err != nil {
			return fmt.Errorf("cgroup paths: %w", err)
		}
		if len(paths) > 0 {
			if w.cg, err = cgroups.Open(paths); err != nil {
				return err
			}
		}
		ws = append(ws, w)
	}
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
