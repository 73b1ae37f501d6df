package libcontainerfd

import (
	"encoding/json"
	"fmt"
	"os"

	"github.com/containerfd/containerfd/libcontainerfd/cgroups"
	"golang.org/x/sys/unix"
)

// The watcher of a KillOnClose container runs outside it, holding the read
// end of a pipe whose write end the Container holds. When the holder closes
// it or dies, the pipe hangs up and the watcher kills the container. It leaves
// on its own when the container is empty.
//
// argv: containerfd-watch <pipe fd> <cgroup paths JSON> <wait fd kind>,
// where fd 4 is the container's cgroup.events ("events") or init's pidfd
// ("pidfd").
const (
	watchHoldFD = 3
	watchWaitFD = 4
)

func runWatch() error {
	if len(os.Args) != 4 {
		return fmt.Errorf("usage: %s FD PATHS KIND", stageWatch)
	}
	var paths cgroups.Paths
	if err := json.Unmarshal([]byte(os.Args[2]), &paths); err != nil {
		return fmt.Errorf("cgroup paths: %w", err)
	}
	cg, err := cgroups.Open(paths)
	if err != nil {
		return err
	}
	events := os.Args[3] == "events"
	waitEv := int16(unix.POLLIN)
	if events {
		waitEv = unix.POLLPRI
	}
	for {
		fds := []unix.PollFd{{Fd: watchHoldFD, Events: unix.POLLIN}, {Fd: watchWaitFD, Events: waitEv}}
		if _, err := unix.Poll(fds, -1); err != nil {
			if err == unix.EINTR {
				continue
			}
			return fmt.Errorf("poll: %w", err)
		}
		if fds[0].Revents != 0 {
			return cg.Kill()
		}
		if fds[1].Revents != 0 {
			if !events {
				return nil // init is gone, and with it the pid namespace
			}
			if pop, err := cg.Populated(); err != nil || !pop {
				return err
			}
		}
	}
}
