package libcontainerfd

import (
	"encoding/json"
	"errors"
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
		// Without a cgroup, the container gets a watcher of its own.
		if err := c.cfg.Watcher.watch(c); !errors.Is(err, errNoGroupWatch) {
			return err
		}
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

// A Watcher kills the KillOnClose containers of one holder
// (Config.Watcher) when Close is called or its maker exits, where each
// would otherwise start a watcher process of its own: a shim holding a
// pod's containers needs one. Its process is spawn's waiter, a program of
// a few instructions and a page or two of memory, which holds the read end
// of a pipe whose write end is ours; when the pipe ends, it execs our own
// binary as msg.StageWatch, which kills the cgroups that the Watcher's
// list (a msg.WatchList) names. A container leaves the list when it is
// closed (which kills it) or destroyed. Where no waiter can run
// (spawn.WaiterFD), our binary waits itself.
type Watcher struct {
	mu   sync.Mutex
	hold int // the pipe's write end; -1 once closed
	list *msg.WatchList
	cgs  map[*Container]json.RawMessage // what list holds
}

// NewWatcher starts a watcher process.
func NewWatcher() (*Watcher, error) {
	exe, err := selfexe.FD()
	if err != nil {
		return nil, err
	}
	list, err := msg.NewWatchList()
	if err != nil {
		return nil, err
	}
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		list.Close()
		return nil, fmt.Errorf("watcher: pipe: %w", err)
	}
	defer unix.Close(p[0])
	attr := &spawn.Attr{
		Argv:     []string{msg.StageWatch, msg.StageWatch, msg.WatchGroup},
		Files:    []int{-1, -1, -1, p[0], exe, list.Fd()},
		CgroupFD: -1,
	}
	if attr.ExecFD, err = spawn.WaiterFD(); err != nil {
		attr.ExecFD, attr.Argv = exe, attr.Argv[1:]
	}
	proc, err := spawn.Start(attr)
	if err != nil {
		unix.Close(p[1])
		list.Close()
		return nil, fmt.Errorf("start watcher: %w", err)
	}
	go proc.Wait()
	return &Watcher{hold: p[1], list: list, cgs: map[*Container]json.RawMessage{}}, nil
}

// errNoGroupWatch: a container without a cgroup is killed through init's
// pidfd, which a Watcher's list cannot hold.
var errNoGroupWatch = errors.New("no cgroup to kill it by")

// watch adds c to the list.
func (w *Watcher) watch(c *Container) error {
	if len(c.st.Cgroup) == 0 {
		return errNoGroupWatch
	}
	paths, err := json.Marshal(c.st.Cgroup)
	if err != nil {
		return err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.hold < 0 {
		return fmt.Errorf("container %s: watcher: %w", c.id, net.ErrClosed)
	}
	w.cgs[c] = paths
	if err := w.store(); err != nil {
		delete(w.cgs, c)
		return fmt.Errorf("container %s: %w", c.id, err)
	}
	c.watcher = w
	return nil
}

// forget takes c off the list: killed or destroyed already.
func (w *Watcher) forget(c *Container) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if _, ok := w.cgs[c]; !ok || w.hold < 0 {
		return nil
	}
	delete(w.cgs, c)
	if err := w.store(); err != nil {
		return fmt.Errorf("container %s: %w", c.id, err)
	}
	return nil
}

func (w *Watcher) store() error {
	paths := make([]json.RawMessage, 0, len(w.cgs))
	for _, p := range w.cgs {
		paths = append(paths, p)
	}
	return w.list.Store(paths)
}

// Close ends the watcher, which kills every container it still watches.
func (w *Watcher) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.hold < 0 {
		return nil
	}
	err := unix.Close(w.hold)
	w.hold = -1
	return errors.Join(err, w.list.Close())
}
