package libcontainerfd

import (
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/containerfd/containerfd/libcontainerfd/internal/msg"

	"github.com/containerfd/containerfd/libcontainerfd/internal/spawn"
	"github.com/containerfd/containerfd/libcontainerfd/selfexe"
	"golang.org/x/sys/unix"
)

// startWatcher starts the process that kills the container when its holder
// closes it or dies (KillOnClose): our own binary as msg.StageWatch,
// outside the container, holding the read end of a pipe whose write end
// the Container holds (or, with Config.HolderPid, a pidfd of the holder).
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
		Argv:     []string{msg.StageWatch, strconv.Itoa(msg.WatchHoldFD), string(paths), kind},
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
	go proc.Wait()
	return nil
}
