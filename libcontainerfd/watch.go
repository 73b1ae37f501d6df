package libcontainerfd

import (
	"encoding/json"
	"fmt"
	"net"
	"strconv"
	"sync"

	"github.com/containerfd/containerfd/libcontainerfd/internal/msg"

	"github.com/containerfd/containerfd/libcontainerfd/internal/spawn"
	"github.com/containerfd/containerfd/libcontainerfd/selfexe"
	"golang.org/x/sys/unix"
)

// startWatcher starts the process that kills the container when its holder
// closes it or dies (KillOnClose): our own binary as msg.StageWatch,
// outside the container, holding the read end of a pipe whose write end
// the Container holds (or, with Config.HolderPid, a pidfd of the holder).
// With Config.Watcher, that shared watcher takes the container instead.
func (c *Container) startWatcher() error {
	if c.cfg.Watcher != nil {
		return c.cfg.Watcher.watch(c)
	}
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
	w, err := c.watchOrder()
	if err != nil {
		unix.Close(p[1])
		return err
	}
	defer unix.Close(w.WaitFD)
	proc, err := spawn.Start(&spawn.Attr{
		ExecFD:   exe,
		Argv:     []string{msg.StageWatch, strconv.Itoa(msg.WatchHoldFD), string(w.Paths), w.Kind},
		Files:    []int{-1, -1, -1, p[0], w.WaitFD},
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

// watchOrder is what a watcher needs to watch c: its cgroup paths, and the
// fd that says when it is empty ("events": its cgroup.events; "pidfd":
// init's pidfd, without a cgroup), which the caller closes.
func (c *Container) watchOrder() (msg.Watch, error) {
	w := msg.Watch{Kind: "events"}
	var err error
	w.WaitFD, err = c.cgroup.eventsFD()
	if err != nil {
		w.Kind = "pidfd"
		w.WaitFD, err = unix.FcntlInt(uintptr(c.initPidfd), unix.F_DUPFD_CLOEXEC, 3)
	}
	if err != nil {
		return w, fmt.Errorf("container %s: watcher: %w", c.id, err)
	}
	if w.Paths, err = json.Marshal(c.st.Cgroup); err != nil {
		unix.Close(w.WaitFD)
		return w, err
	}
	return w, nil
}

// A Watcher is one watcher process for many KillOnClose containers of one
// holder (Config.Watcher), where each would otherwise start its own: a
// shim holding a pod's containers needs one. It kills every container it
// watches when Close is called or its maker exits, and forgets each
// container once it is empty. A container that has it is killed at once
// by its own Close.
type Watcher struct {
	mu   sync.Mutex
	sock int // ours; the watcher holds the other end
}

// NewWatcher starts a watcher process.
func NewWatcher() (*Watcher, error) {
	exe, err := selfexe.FD()
	if err != nil {
		return nil, err
	}
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("watcher: socketpair: %w", err)
	}
	defer unix.Close(fds[1])
	proc, err := spawn.Start(&spawn.Attr{
		ExecFD:   exe,
		Argv:     []string{msg.StageWatch, strconv.Itoa(msg.WatchHoldFD), msg.WatchGroup},
		Files:    []int{-1, -1, -1, fds[1]},
		CgroupFD: -1,
	})
	if err != nil {
		unix.Close(fds[0])
		return nil, fmt.Errorf("start watcher: %w", err)
	}
	go proc.Wait()
	return &Watcher{sock: fds[0]}, nil
}

// watch hands c to the watcher. A message sent is the watcher's even if we
// die right after: it reads what is queued before it sees the end.
func (w *Watcher) watch(c *Container) error {
	order, err := c.watchOrder()
	if err != nil {
		return err
	}
	defer unix.Close(order.WaitFD)
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.sock < 0 {
		return fmt.Errorf("container %s: watcher: %w", c.id, net.ErrClosed)
	}
	if err := msg.Send(w.sock, order, order.WaitFD); err != nil {
		return fmt.Errorf("container %s: watcher: %w", c.id, err)
	}
	c.watcher = w
	return nil
}

// Close ends the watcher, which kills every container it still watches.
func (w *Watcher) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.sock < 0 {
		return nil
	}
	err := unix.Close(w.sock)
	w.sock = -1
	return err
}
