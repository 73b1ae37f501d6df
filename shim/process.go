package shim

import (
	"encoding/json"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/containerd/containerd/api/types/task"
	cfd "github.com/containerfd/containerfd/libcontainerfd"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// process is one process of a task: its init (id "") or an exec.
type process struct {
	id    string
	stdio stdio
	spec  *specs.Process // an exec's, until it starts
	// started: Start was called for the exec (under its container's mu);
	// done is closed once it exited or failed to start.
	started bool

	mu       sync.Mutex
	proc     *cfd.Process // once it runs
	io       *processIO
	status   int
	exitedAt time.Time
	done     chan struct{} // closed once it exited and its exit is published
}

func newProcess(id string, s stdio) *process {
	return &process{id: id, stdio: s, done: make(chan struct{})}
}

func (p *process) pid() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.proc == nil {
		return 0
	}
	return p.proc.Pid
}

func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// state is the process's status as containerd knows them.
func (p *process) state(started, paused bool) task.Status {
	switch {
	case p.exited():
		return task.Status_STOPPED
	case !started:
		return task.Status_CREATED
	case paused:
		return task.Status_PAUSED
	}
	return task.Status_RUNNING
}

// waitExit waits for p to exit, on its pidfd through Go's poller (no thread
// blocked per process), then reaps it: its exact status, by pid, which its
// zombie holds until then.
func waitExit(p *cfd.Process) (unix.WaitStatus, error) {
	if fd, err := unix.FcntlInt(uintptr(p.Pidfd), unix.F_DUPFD_CLOEXEC, 3); err == nil {
		unix.SetNonblock(fd, true)
		f := os.NewFile(uintptr(fd), "pidfd")
		if rc, err := f.SyscallConn(); err == nil {
			rc.Read(func(fd uintptr) bool {
				n, _ := unix.Poll([]unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}, 0)
				return n > 0
			})
		}
		f.Close()
	}
	return p.Wait()
}

// exitRecord is init's exit, kept in the bundle for the shim's delete
// command, which answers containerd with it after the shim died.
type exitRecord struct {
	Pid    int       `json:"pid"`
	Status int       `json:"status"`
	At     time.Time `json:"exited_at"`
}

const exitFile = "exit.json"

func writeExit(bundle string, e exitRecord) error {
	b, err := json.Marshal(e)
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(bundle, exitFile), b, 0o600)
}

func readExit(bundle string) (exitRecord, error) {
	var e exitRecord
	b, err := os.ReadFile(filepath.Join(bundle, exitFile))
	if err != nil {
		return e, err
	}
	return e, json.Unmarshal(b, &e)
}
