package libcontainerfd

import (
	"encoding/json"
	"fmt"
	"os"
	"strconv"

	"github.com/containerfd/containerfd/libcontainerfd/cgroups"
	"github.com/containerfd/containerfd/libcontainerfd/internal/spawn"
	"github.com/containerfd/containerfd/libcontainerfd/selfexe"
	"golang.org/x/sys/unix"
)

// The watcher of a KillOnClose container runs outside it, holding the read
// end of a pipe whose write end the Container holds (or, with
// Config.HolderPid, a pidfd of the holder). When the holder closes it or
// dies, the fd gets ready and the watcher kills the container. It leaves on
// its own when the container is empty.
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
	events := os.Args[3] == "events"
	kill := func() error {
		// No cgroup (rootless): init's pidfd; the pid namespace dies with it.
		return unix.PidfdSendSignal(watchWaitFD, unix.SIGKILL, nil, 0)
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
		fds := []unix.PollFd{{Fd: watchHoldFD, Events: unix.POLLIN}, {Fd: watchWaitFD, Events: waitEv}}
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
			if pop, err := cg.Populated(); err != nil || !pop {
				return err
			}
		}
	}
}

// startWatcher starts the process that kills the container when its holder
// closes it or dies (KillOnClose).
func (c *Container) startWatcher() error {
	exe, err := selfexe.FD()
	if err != nil {
		return err
	}
	// The watcher holds the read end of a pipe whose write end is ours, or
	// with HolderPid a pidfd of that process: either reads as ready when
	// the holder is gone.
	var p [2]int
	if c.cfg.HolderPid != 0 {
		pidfd, err := unix.PidfdOpen(c.cfg.HolderPid, 0)
		if err != nil {
			return fmt.Errorf("container %s: holder %d: %w", c.id, c.cfg.HolderPid, err)
		}
		p = [2]int{pidfd, -1}
	} else if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		return fmt.Errorf("container %s: watcher pipe: %w", c.id, err)
	}
	defer unix.Close(p[0])
	kind := "events"
	waitFD, err := c.cgroup.eventsFD()
	if err != nil {
		kind = "pidfd"
		waitFD, err = unix.FcntlInt(uintptr(c.initPidfd), unix.F_DUPFD_CLOEXEC, 3)
	}
	if err != nil {
		unix.Close(p[1])
		return fmt.Errorf("container %s: watcher: %w", c.id, err)
	}
	defer unix.Close(waitFD)
	paths, err := json.Marshal(c.st.Cgroup)
	if err != nil {
		unix.Close(p[1])
		return err
	}
	proc, err := spawn.Start(&spawn.Attr{
		ExecFD:   exe,
		Argv:     []string{stageWatch, strconv.Itoa(watchHoldFD), string(paths), kind},
		Files:    []int{-1, -1, -1, p[0], waitFD},
		CgroupFD: -1,
	})
	if err != nil {
		unix.Close(p[1])
		return fmt.Errorf("container %s: start watcher: %w", c.id, err)
	}
	c.holdFD = p[1]
	// The watcher outlives neither the container nor its holder by much;
	// reap it whenever it leaves.
	go func() {
		var ws unix.WaitStatus
		for {
			if _, err := unix.Wait4(proc.Pid, &ws, 0, nil); err != unix.EINTR {
				break
			}
		}
		unix.Close(proc.Pidfd)
	}()
	return nil
}
