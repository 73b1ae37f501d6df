package shim

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	eventstypes "github.com/containerd/containerd/api/events"
	taskAPI "github.com/containerd/containerd/api/runtime/task/v3"
	"github.com/containerd/containerd/api/types/runc/options"
	"github.com/containerd/containerd/api/types/task"
	"github.com/containerd/containerd/v2/core/events"
	"github.com/containerd/containerd/v2/core/mount"
	"github.com/containerd/containerd/v2/core/runtime"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/containerd/containerd/v2/pkg/protobuf"
	ptypes "github.com/containerd/containerd/v2/pkg/protobuf/types"
	ctdshim "github.com/containerd/containerd/v2/pkg/shim"
	"github.com/containerd/containerd/v2/pkg/shutdown"
	"github.com/containerd/containerd/v2/plugins"
	"github.com/containerd/errdefs"
	"github.com/containerd/errdefs/pkg/errgrpc"
	"github.com/containerd/log"
	"github.com/containerd/plugin"
	"github.com/containerd/plugin/registry"
	"github.com/containerd/ttrpc"
	"github.com/containerd/typeurl/v2"
	"github.com/containerfd/containerfd/internal/bundle"
	cfd "github.com/containerfd/containerfd/libcontainerfd"
	"github.com/containerfd/containerfd/spec"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// registerService registers the task service as the shim library's TTRPC
// plugin, with the event publisher and the shutdown service it needs.
func registerService() {
	registry.Register(&plugin.Registration{
		Type:     plugins.TTRPCPlugin,
		ID:       "task",
		Requires: []plugin.Type{plugins.EventPlugin, plugins.InternalPlugin},
		InitFn: func(ic *plugin.InitContext) (any, error) {
			pp, err := ic.GetByID(plugins.EventPlugin, "publisher")
			if err != nil {
				return nil, err
			}
			sd, err := ic.GetByID(plugins.InternalPlugin, "shutdown")
			if err != nil {
				return nil, err
			}
			return newService(ic.Context, pp.(ctdshim.Publisher), sd.(shutdown.Service)), nil
		},
	})
}

// container is one task: a libcontainerfd container the shim holds open
// (kill-on-close: if the shim dies, so does it) and its processes.
type container struct {
	id, bundle string
	ctr        *cfd.Container
	init       *process
	rootfs     string        // where Create mounted the rootfs, "" if it did not
	stop       chan struct{} // ends the OOM watcher

	mu       sync.Mutex
	execs    map[string]*process
	started  bool
	paused   bool
	initGone bool
	running  sync.WaitGroup // execs that run: init's exit is published after theirs
}

func (c *container) process(id string) (*process, error) {
	if id == "" {
		return c.init, nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	p := c.execs[id]
	if p == nil {
		return nil, errgrpc.ToGRPCf(errdefs.ErrNotFound, "process %s of container %s", id, c.id)
	}
	return p, nil
}

// service is containerd's task service over libcontainerfd.
type service struct {
	ctx    context.Context
	sd     shutdown.Service
	events chan any
	// stopEvents ends forward at shutdown, which waits for it to have
	// published what was sent: the last (a TaskDelete) comes just before.
	stopEvents chan struct{}

	mu         sync.Mutex
	containers map[string]*container

	// watcher kills every container when the shim goes (kill-on-close):
	// one process for all of them, made with the first.
	watcher *cfd.Watcher

	// reapMu is held from a process's start until its pid is tracked, and
	// by reapOrphans, which reaps only what is not tracked.
	reapMu  sync.Mutex
	tracked map[int]bool
}

func newService(ctx context.Context, publisher ctdshim.Publisher, sd shutdown.Service) *service {
	s := &service{ctx: ctx, sd: sd, events: make(chan any, 128), stopEvents: make(chan struct{}),
		containers: map[string]*container{}, tracked: map[int]bool{}}
	published := make(chan struct{})
	go func() {
		s.forward(publisher)
		close(published)
	}()
	sd.RegisterCallback(func(ctx context.Context) error {
		close(s.stopEvents)
		select {
		case <-published:
		case <-ctx.Done():
		}
		return nil
	})
	go s.reapOrphans()
	if addr, err := os.ReadFile("address"); err == nil {
		sd.RegisterCallback(func(context.Context) error { return ctdshim.RemoveSocket(string(addr)) })
	}
	return s
}

// RegisterTTRPC serves the task API under both names containerd calls it:
// task v3 (containerd 2.x) and task v2 (containerd 1.x), the same messages.
func (s *service) RegisterTTRPC(server *ttrpc.Server) error {
	taskAPI.RegisterTTRPCTaskService(server, s)
	registerTaskV2(server, s)
	return nil
}

// send queues an event; forward publishes them in the order sent.
func (s *service) send(e any) {
	select {
	case s.events <- e:
	case <-s.stopEvents:
	}
}

func (s *service) forward(publisher ctdshim.Publisher) {
	ctx := context.WithoutCancel(s.ctx)
	defer publisher.Close()
	publish := func(e any) {
		if err := publisher.Publish(ctx, runtime.GetTopic(e), e.(events.Event)); err != nil {
			log.G(ctx).WithError(err).Error("publish event")
		}
	}
	for {
		select {
		case e := <-s.events:
			publish(e)
		case <-s.stopEvents:
			for {
				select {
				case e := <-s.events:
					publish(e)
				default:
					return
				}
			}
		}
	}
}

func (s *service) container(id string) (*container, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.containers[id]
	if c == nil {
		return nil, errgrpc.ToGRPCf(errdefs.ErrNotFound, "container %s not created", id)
	}
	return c, nil
}

// process finds a container's process: init for execID "", else the exec.
func (s *service) process(id, execID string) (*container, *process, error) {
	c, err := s.container(id)
	if err != nil {
		return nil, nil, err
	}
	p, err := c.process(execID)
	if err != nil {
		return nil, nil, err
	}
	return c, p, nil
}

func (s *service) warn(err error) { log.G(s.ctx).WithError(err).Warn("containerfd") }

// Create makes the container from its bundle, with the rootfs mounts
// containerd gives (as runc's shim mounts them on <bundle>/rootfs), up to
// init waiting for Start.
func (s *service) Create(ctx context.Context, r *taskAPI.CreateTaskRequest) (_ *taskAPI.CreateTaskResponse, err error) {
	ns, err := namespaces.NamespaceRequired(ctx)
	if err != nil {
		return nil, err
	}
	if r.Checkpoint != "" || r.ParentCheckpoint != "" {
		return nil, errgrpc.ToGRPCf(errdefs.ErrNotImplemented, "containerfd: restoring from a checkpoint is not supported")
	}
	o, err := readOptions(r.Options)
	if err != nil {
		return nil, errgrpc.ToGRPC(fmt.Errorf("%w: %w", errdefs.ErrInvalidArgument, err))
	}
	if err := writeOptions(r.Bundle, o); err != nil {
		return nil, err
	}
	watcher, err := s.sharedWatcher()
	if err != nil {
		return nil, errgrpc.ToGRPC(err)
	}
	c := &container{id: r.ID, bundle: r.Bundle, execs: map[string]*process{}, stop: make(chan struct{})}
	var mounts []mount.Mount
	for _, m := range r.Rootfs {
		mounts = append(mounts, mount.Mount{Type: m.Type, Source: m.Source, Target: m.Target, Options: m.Options})
	}
	if len(mounts) > 0 {
		c.rootfs = filepath.Join(r.Bundle, "rootfs")
		if err := os.Mkdir(c.rootfs, 0o711); err != nil && !os.IsExist(err) {
			return nil, err
		}
		if err := mount.All(mounts, c.rootfs); err != nil {
			return nil, fmt.Errorf("mount the rootfs: %w", err)
		}
		defer func() {
			if err != nil {
				if uerr := mount.UnmountRecursive(c.rootfs, 0); uerr != nil {
					s.warn(uerr)
				}
			}
		}()
	}
	c.init = newProcess("", stdio{r.Stdin, r.Stdout, r.Stderr, r.Terminal})
	opts := &bundle.Options{
		Root: o.root(ns), ID: r.ID, Bundle: r.Bundle,
		NoPivot: o.NoPivotRoot, NoNewKeyring: o.NoNewKeyring,
		// The shim holds every container: if it dies, they die (see
		// docs/compat.md, "containerd shim").
		KillOnClose: true,
		Watcher:     watcher,
		Warn:        func(msg string) { log.G(ctx).Warn(msg) },
	}
	if o.SystemdCgroup {
		opts.Systemd = "SystemdCgroup"
	}
	if opts.AlwaysStage, err = bundle.AlwaysStage(); err != nil {
		return nil, err
	}
	opts.Prepare = func(_ *specs.Spec, cfg *cfd.Config, proc *cfd.Process) error {
		uid, gid := ioOwner(o, cfg)
		c.init.stdio.terminal = proc.Terminal
		c.init.io, err = newIO(ctx, r.ID, ns, c.init.stdio, uid, gid, proc)
		return err
	}
	s.reapMu.Lock()
	ctr, proc, err := bundle.Create(opts)
	if err == nil {
		s.tracked[proc.Pid] = true
	}
	s.reapMu.Unlock()
	if err != nil {
		if c.init.io != nil {
			c.init.io.Close()
		}
		return nil, errgrpc.ToGRPC(err)
	}
	c.ctr = ctr
	c.init.proc = proc
	c.init.io.started()
	if proc.Console != nil {
		if err := c.init.io.attachConsole(ctx, proc.Console, r.Stdout); err != nil {
			s.warn(err)
		}
		proc.Console = nil
	}
	s.mu.Lock()
	s.containers[r.ID] = c
	s.mu.Unlock()
	s.send(&eventstypes.TaskCreate{
		ContainerID: r.ID, Bundle: r.Bundle, Rootfs: r.Rootfs, Pid: uint32(proc.Pid), Checkpoint: r.Checkpoint,
		IO: &eventstypes.TaskIO{Stdin: r.Stdin, Stdout: r.Stdout, Stderr: r.Stderr, Terminal: r.Terminal},
	})
	// From create on: a process can run out of memory before start.
	if cg := ctr.Cgroup(); cg != nil {
		if err := cg.WatchOOM(c.stop, func() { s.send(&eventstypes.TaskOOM{ContainerID: r.ID}) }); err != nil {
			log.G(ctx).WithError(err).Debug("no OOM events")
		}
	}
	go s.watch(c, c.init)
	return &taskAPI.CreateTaskResponse{Pid: uint32(proc.Pid)}, nil
}

// sharedWatcher is the shim's watcher, started with the first container.
// It holds the read end of a pipe the shim holds: whatever ends the shim,
// it kills the containers the shim still has.
func (s *service) sharedWatcher() (*cfd.Watcher, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.watcher == nil {
		w, err := cfd.NewWatcher()
		if err != nil {
			return nil, err
		}
		s.watcher = w
	}
	return s.watcher, nil
}

// ioOwner is who owns a process's stdio pipes: the IoUid/IoGid options,
// else the container's root on the host.
func ioOwner(o *Options, cfg *cfd.Config) (int, int) {
	uid, gid := bundle.HostRoot(cfg)
	if o.IoUID != 0 {
		uid = int(o.IoUID)
	}
	if o.IoGID != 0 {
		gid = int(o.IoGID)
	}
	return uid, gid
}

// watch waits for p to exit and publishes it. Init's exit comes last of
// the container's: when init is gone, a container without a pid namespace
// of its own loses what it left running (runc's shim kills it so too), and
// the execs still running are waited for first.
func (s *service) watch(c *container, p *process) {
	ws, err := waitExit(p.proc)
	status := cfd.ExitCode(ws)
	if err != nil {
		s.warn(err)
		status = 255
	}
	at := time.Now()
	s.reapMu.Lock()
	delete(s.tracked, p.proc.Pid)
	s.reapMu.Unlock()
	if p == c.init {
		c.mu.Lock()
		c.initGone = true
		c.mu.Unlock()
		if c.ctr.SharedPidNS() {
			if err := c.ctr.KillAll(); err != nil {
				s.warn(err)
			}
		}
		c.running.Wait()
		if err := writeExit(c.bundle, exitRecord{Pid: p.proc.Pid, Status: status, At: at}); err != nil {
			s.warn(err)
		}
	}
	p.mu.Lock()
	p.status, p.exitedAt = status, at
	p.mu.Unlock()
	close(p.done)
	s.send(&eventstypes.TaskExit{ContainerID: c.id, ID: processID(c, p), Pid: uint32(p.proc.Pid),
		ExitStatus: uint32(status), ExitedAt: protobuf.ToTimestamp(at)})
	if p != c.init {
		c.running.Done()
	}
}

// processID is the ID of a TaskExit: the exec's id, or for init the
// container's, as runc's shim has it.
func processID(c *container, p *process) string {
	if p == c.init {
		return c.id
	}
	return p.id
}

// Start lets init exec its process, or starts an exec.
func (s *service) Start(ctx context.Context, r *taskAPI.StartRequest) (*taskAPI.StartResponse, error) {
	c, err := s.container(r.ID)
	if err != nil {
		return nil, err
	}
	if r.ExecID == "" {
		if err := bundle.Start(c.ctr, nil); err != nil {
			return nil, errgrpc.ToGRPC(err)
		}
		c.mu.Lock()
		c.started = true
		c.mu.Unlock()
		pid := c.init.pid()
		s.send(&eventstypes.TaskStart{ContainerID: c.id, Pid: uint32(pid)})
		return &taskAPI.StartResponse{Pid: uint32(pid)}, nil
	}
	p, err := c.process(r.ExecID)
	if err != nil {
		return nil, err
	}
	pid, err := s.startExec(ctx, c, p)
	if err != nil {
		return nil, errgrpc.ToGRPC(err)
	}
	s.send(&eventstypes.TaskExecStarted{ContainerID: c.id, ExecID: p.id, Pid: uint32(pid)})
	return &taskAPI.StartResponse{Pid: uint32(pid)}, nil
}

func (s *service) startExec(ctx context.Context, c *container, p *process) (int, error) {
	ns, err := namespaces.NamespaceRequired(ctx)
	if err != nil {
		return 0, err
	}
	c.mu.Lock()
	if c.initGone {
		c.mu.Unlock()
		return 0, fmt.Errorf("container %s: init is not running: %w", c.id, errdefs.ErrFailedPrecondition)
	}
	if p.started {
		c.mu.Unlock()
		return 0, fmt.Errorf("exec %s started already: %w", p.id, errdefs.ErrFailedPrecondition)
	}
	p.started = true
	c.running.Add(1)
	c.mu.Unlock()
	proc, err := spec.TranslateProcess(p.spec)
	if err == nil {
		var uid, gid int
		if uid, gid, err = c.hostRoot(); err == nil {
			p.io, err = newIO(ctx, c.id, ns, p.stdio, uid, gid, proc)
		}
	}
	if err == nil {
		s.reapMu.Lock()
		if err = c.ctr.Exec(proc); err == nil {
			s.tracked[proc.Pid] = true
		}
		s.reapMu.Unlock()
	}
	if err != nil {
		c.running.Done()
		if p.io != nil {
			p.io.Close()
			p.io = nil
		}
		// Its Wait ends: containerd waits for an exec before it starts
		// it, and after a failed start deletes it only once that wait
		// ends (runc's shim ends it so too).
		p.mu.Lock()
		p.status, p.exitedAt = 255, time.Now()
		p.mu.Unlock()
		close(p.done)
		return 0, err
	}
	p.mu.Lock()
	p.proc = proc
	p.mu.Unlock()
	p.io.started()
	if proc.Console != nil {
		if err := p.io.attachConsole(ctx, proc.Console, p.stdio.stdout); err != nil {
			s.warn(err)
		}
		proc.Console = nil
	}
	go s.watch(c, p)
	return proc.Pid, nil
}

// hostRoot is who the container's root is on the host, from its init's
// uid_map (an exec's stdio is given to it, as init's).
func (c *container) hostRoot() (int, int, error) {
	ids := [2]int{os.Geteuid(), os.Getegid()}
	for i, f := range []string{"uid_map", "gid_map"} {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/%s", c.init.pid(), f))
		if err != nil {
			return 0, 0, err
		}
		for _, line := range strings.Split(string(b), "\n") {
			if v := strings.Fields(line); len(v) == 3 && v[0] == "0" {
				ids[i], _ = strconv.Atoi(v[1])
			}
		}
	}
	return ids[0], ids[1], nil
}

// Delete removes an exited exec, or the container with what is left of it.
func (s *service) Delete(ctx context.Context, r *taskAPI.DeleteRequest) (*taskAPI.DeleteResponse, error) {
	c, err := s.container(r.ID)
	if err != nil {
		return nil, err
	}
	if r.ExecID != "" {
		p, err := c.process(r.ExecID)
		if err != nil {
			return nil, err
		}
		if p.proc != nil && !p.exited() {
			return nil, errgrpc.ToGRPCf(errdefs.ErrFailedPrecondition, "exec %s of container %s is running", p.id, c.id)
		}
		if p.io != nil {
			p.io.Close()
		}
		c.mu.Lock()
		delete(c.execs, p.id)
		c.mu.Unlock()
		return &taskAPI.DeleteResponse{Pid: uint32(p.pid()), ExitStatus: uint32(p.status), ExitedAt: protobuf.ToTimestamp(p.exitedAt)}, nil
	}
	c.mu.Lock()
	started := c.started
	c.mu.Unlock()
	if started && !c.init.exited() {
		return nil, errgrpc.ToGRPCf(errdefs.ErrFailedPrecondition, "container %s is running: kill it first", c.id)
	}
	if err := bundle.Destroy(c.ctr, started, s.warn); err != nil {
		s.warn(err)
	}
	<-c.init.done
	close(c.stop)
	c.init.io.Close()
	c.mu.Lock()
	for _, p := range c.execs {
		if p.io != nil {
			p.io.Close()
		}
	}
	c.mu.Unlock()
	if c.rootfs != "" {
		if err := mount.UnmountRecursive(c.rootfs, 0); err != nil {
			s.warn(err)
		}
	}
	s.mu.Lock()
	delete(s.containers, c.id)
	s.mu.Unlock()
	p := c.init
	s.send(&eventstypes.TaskDelete{ContainerID: c.id, Pid: uint32(p.pid()), ExitStatus: uint32(p.status), ExitedAt: protobuf.ToTimestamp(p.exitedAt)})
	return &taskAPI.DeleteResponse{Pid: uint32(p.pid()), ExitStatus: uint32(p.status), ExitedAt: protobuf.ToTimestamp(p.exitedAt)}, nil
}

// Exec adds a process to the container, to start with Start.
func (s *service) Exec(ctx context.Context, r *taskAPI.ExecProcessRequest) (*ptypes.Empty, error) {
	c, err := s.container(r.ID)
	if err != nil {
		return nil, err
	}
	var sp specs.Process
	if err := json.Unmarshal(r.Spec.GetValue(), &sp); err != nil {
		return nil, errgrpc.ToGRPCf(errdefs.ErrInvalidArgument, "exec %s: process spec: %v", r.ExecID, err)
	}
	p := newProcess(r.ExecID, stdio{r.Stdin, r.Stdout, r.Stderr, r.Terminal})
	p.spec = &sp
	c.mu.Lock()
	if _, ok := c.execs[r.ExecID]; ok {
		c.mu.Unlock()
		return nil, errgrpc.ToGRPCf(errdefs.ErrAlreadyExists, "exec %s", r.ExecID)
	}
	c.execs[r.ExecID] = p
	c.mu.Unlock()
	s.send(&eventstypes.TaskExecAdded{ContainerID: c.id, ExecID: r.ExecID})
	return &ptypes.Empty{}, nil
}

// ResizePty sets the window size of a process's terminal.
func (s *service) ResizePty(ctx context.Context, r *taskAPI.ResizePtyRequest) (*ptypes.Empty, error) {
	_, p, err := s.process(r.ID, r.ExecID)
	if err != nil {
		return nil, err
	}
	if p.io == nil || p.io.console == nil {
		return nil, errgrpc.ToGRPCf(errdefs.ErrFailedPrecondition, "process %s has no terminal", r.ExecID)
	}
	ws := &unix.Winsize{Row: uint16(r.Height), Col: uint16(r.Width)}
	if err := unix.IoctlSetWinsize(int(p.io.console.Fd()), unix.TIOCSWINSZ, ws); err != nil {
		return nil, errgrpc.ToGRPC(fmt.Errorf("resize pty: %w", err))
	}
	return &ptypes.Empty{}, nil
}

// State reports a process's state.
func (s *service) State(ctx context.Context, r *taskAPI.StateRequest) (*taskAPI.StateResponse, error) {
	c, p, err := s.process(r.ID, r.ExecID)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	started, paused := c.started, c.paused
	c.mu.Unlock()
	if p != c.init {
		started = p.pid() != 0
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	st := &taskAPI.StateResponse{
		ID: r.ExecID, Bundle: c.bundle, Status: p.state(started, paused),
		Stdin: p.stdio.stdin, Stdout: p.stdio.stdout, Stderr: p.stdio.stderr, Terminal: p.stdio.terminal,
		ExitStatus: uint32(p.status), ExitedAt: protobuf.ToTimestamp(p.exitedAt),
	}
	if r.ExecID == "" {
		st.ID = c.id
	}
	if p.proc != nil {
		st.Pid = uint32(p.proc.Pid)
	}
	return st, nil
}

// Pause freezes the container.
func (s *service) Pause(ctx context.Context, r *taskAPI.PauseRequest) (*ptypes.Empty, error) {
	return s.setPaused(r.ID, true)
}

// Resume thaws the container.
func (s *service) Resume(ctx context.Context, r *taskAPI.ResumeRequest) (*ptypes.Empty, error) {
	return s.setPaused(r.ID, false)
}

func (s *service) setPaused(id string, paused bool) (*ptypes.Empty, error) {
	c, err := s.container(id)
	if err != nil {
		return nil, err
	}
	change, event := c.ctr.Thaw, any(&eventstypes.TaskResumed{ContainerID: c.id})
	if paused {
		change, event = c.ctr.Freeze, &eventstypes.TaskPaused{ContainerID: c.id}
	}
	if err := change(); err != nil {
		return nil, errgrpc.ToGRPC(err)
	}
	c.mu.Lock()
	c.paused = paused
	c.mu.Unlock()
	s.send(event)
	return &ptypes.Empty{}, nil
}

// errFinished is what containerd takes as a signal to a process that is
// gone already (runc's shim answers so).
var errFinished = errgrpc.ToGRPCf(errdefs.ErrNotFound, "process already finished")

// Kill signals a process, or with All every process of the container.
func (s *service) Kill(ctx context.Context, r *taskAPI.KillRequest) (*ptypes.Empty, error) {
	c, err := s.container(r.ID)
	if err != nil {
		return nil, err
	}
	sig := unix.Signal(r.Signal)
	if r.ExecID != "" {
		p, err := c.process(r.ExecID)
		if err != nil {
			return nil, err
		}
		if p.proc == nil || p.exited() {
			return nil, errFinished
		}
		if err := p.proc.Signal(sig); err != nil {
			if errors.Is(err, unix.ESRCH) || errors.Is(err, cfd.ErrNotRunning) {
				return nil, errFinished
			}
			return nil, errgrpc.ToGRPC(err)
		}
		return &ptypes.Empty{}, nil
	}
	switch {
	case r.All && sig == unix.SIGKILL:
		err = c.ctr.KillAll()
	case r.All:
		err = bundle.SignalAll(c.ctr, sig)
	case c.init.exited() && (sig != unix.SIGKILL || !c.ctr.SharedPidNS()):
		return nil, errFinished
	default:
		err = c.ctr.Kill(sig)
	}
	if errors.Is(err, cfd.ErrNotRunning) || errors.Is(err, unix.ESRCH) {
		return nil, errFinished
	}
	if err != nil {
		return nil, errgrpc.ToGRPC(err)
	}
	return &ptypes.Empty{}, nil
}

// Pids lists the container's processes; execs carry their exec id.
func (s *service) Pids(ctx context.Context, r *taskAPI.PidsRequest) (*taskAPI.PidsResponse, error) {
	c, err := s.container(r.ID)
	if err != nil {
		return nil, err
	}
	pids, err := c.ctr.Pids()
	if err != nil {
		return nil, errgrpc.ToGRPC(err)
	}
	execs := map[int]string{}
	c.mu.Lock()
	for id, p := range c.execs {
		if pid := p.pid(); pid != 0 {
			execs[pid] = id
		}
	}
	c.mu.Unlock()
	var ps []*task.ProcessInfo
	for _, pid := range pids {
		info := &task.ProcessInfo{Pid: uint32(pid)}
		if id, ok := execs[pid]; ok {
			if info.Info, err = typeurl.MarshalAnyToProto(&options.ProcessDetails{ExecID: id}); err != nil {
				return nil, err
			}
		}
		ps = append(ps, info)
	}
	return &taskAPI.PidsResponse{Processes: ps}, nil
}

// CloseIO closes a process's stdin.
func (s *service) CloseIO(ctx context.Context, r *taskAPI.CloseIORequest) (*ptypes.Empty, error) {
	_, p, err := s.process(r.ID, r.ExecID)
	if err != nil {
		return nil, err
	}
	if r.Stdin && p.io != nil {
		p.io.closeStdin()
	}
	return &ptypes.Empty{}, nil
}

// Checkpoint is not supported by the shim yet: the library can (Container.Checkpoint,
// docs/checkpoint.md), but containerd's checkpoints are not wired to it.
func (s *service) Checkpoint(ctx context.Context, r *taskAPI.CheckpointTaskRequest) (*ptypes.Empty, error) {
	return nil, errgrpc.ToGRPCf(errdefs.ErrNotImplemented, "containerfd: checkpoint is not supported")
}

// Update changes the container's resources (a JSON linux.resources).
func (s *service) Update(ctx context.Context, r *taskAPI.UpdateTaskRequest) (*ptypes.Empty, error) {
	c, err := s.container(r.ID)
	if err != nil {
		return nil, err
	}
	var res specs.LinuxResources
	if err := json.Unmarshal(r.Resources.GetValue(), &res); err != nil {
		return nil, errgrpc.ToGRPCf(errdefs.ErrInvalidArgument, "update: resources: %v", err)
	}
	if err := c.ctr.Update(&res); err != nil {
		return nil, errgrpc.ToGRPC(err)
	}
	return &ptypes.Empty{}, nil
}

// Wait waits for a process to exit.
func (s *service) Wait(ctx context.Context, r *taskAPI.WaitRequest) (*taskAPI.WaitResponse, error) {
	_, p, err := s.process(r.ID, r.ExecID)
	if err != nil {
		return nil, err
	}
	select {
	case <-p.done:
	case <-ctx.Done():
		return nil, errgrpc.ToGRPC(ctx.Err())
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return &taskAPI.WaitResponse{ExitStatus: uint32(p.status), ExitedAt: protobuf.ToTimestamp(p.exitedAt)}, nil
}

// Stats reads the container's cgroup counters.
func (s *service) Stats(ctx context.Context, r *taskAPI.StatsRequest) (*taskAPI.StatsResponse, error) {
	c, err := s.container(r.ID)
	if err != nil {
		return nil, err
	}
	cg := c.ctr.Cgroup()
	if cg == nil {
		return nil, errgrpc.ToGRPCf(errdefs.ErrNotFound, "container %s has no cgroup", c.id)
	}
	st, err := c.ctr.Stats()
	if err != nil {
		return nil, errgrpc.ToGRPC(err)
	}
	a, err := typeurl.MarshalAnyToProto(metrics(cg.Mode(), st))
	if err != nil {
		return nil, err
	}
	return &taskAPI.StatsResponse{Stats: a}, nil
}

// Connect tells containerd the shim's and the task's pids.
func (s *service) Connect(ctx context.Context, r *taskAPI.ConnectRequest) (*taskAPI.ConnectResponse, error) {
	resp := &taskAPI.ConnectResponse{ShimPid: uint32(os.Getpid())}
	if c, err := s.container(r.ID); err == nil {
		resp.TaskPid = uint32(c.init.pid())
	}
	return resp, nil
}

// Shutdown ends the shim once it serves no container.
func (s *service) Shutdown(ctx context.Context, r *taskAPI.ShutdownRequest) (*ptypes.Empty, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.containers) == 0 {
		s.sd.Shutdown()
	}
	return &ptypes.Empty{}, nil
}

// reapOrphans reaps the processes of containers that their parent left to
// the shim, the subreaper (a container without a pid namespace of its own
// leaves them so): zombie children of ours in a container's cgroup that no
// watch waits for. Children the shim started itself (hooks, a logging
// program, libcontainerfd's helpers) are not in a container's cgroup, and
// are left to whoever waits for them.
//
// A SIGCHLD names no child, and waitid can only peek at one zombie (the
// first, which may be a tracked process's that hides the others), so the
// children are listed from /proc; but only when waitid says some child is
// a zombie at all, and only the untracked ones are looked at.
func (s *service) reapOrphans() {
	ch := make(chan os.Signal, 16)
	signal.Notify(ch, unix.SIGCHLD)
	for range ch {
		if !anyZombie() {
			continue
		}
		s.mu.Lock()
		var dirs []string
		for _, c := range s.containers {
			if cg := c.ctr.Cgroup(); cg != nil {
				for _, d := range cg.Paths() {
					dirs = append(dirs, d)
				}
			}
		}
		s.mu.Unlock()
		s.reapMu.Lock()
		for _, pid := range children() {
			if !s.tracked[pid] && zombie(pid) && inCgroups(pid, dirs) {
				var ws unix.WaitStatus
				unix.Wait4(pid, &ws, unix.WNOHANG, nil)
			}
		}
		s.reapMu.Unlock()
	}
}

// anyZombie reports whether a child of ours has exited and is not reaped
// yet, without reaping it (WNOWAIT).
func anyZombie() bool {
	var info unix.Siginfo
	err := unix.Waitid(unix.P_ALL, 0, &info, unix.WEXITED|unix.WNOHANG|unix.WNOWAIT, nil)
	// With none, the kernel leaves info zeroed.
	return err == nil && info.Signo == int32(unix.SIGCHLD)
}

// children lists our children, those of every thread.
func children() []int {
	var pids []int
	tasks, _ := filepath.Glob("/proc/self/task/*/children")
	for _, t := range tasks {
		b, _ := os.ReadFile(t)
		for _, f := range strings.Fields(string(b)) {
			if pid, err := strconv.Atoi(f); err == nil {
				pids = append(pids, pid)
			}
		}
	}
	return pids
}

// zombie reports whether process pid has exited and is not reaped.
func zombie(pid int) bool {
	st, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	// The state follows the command's closing parenthesis.
	i := bytes.LastIndexByte(st, ')')
	return err == nil && i > 0 && i+2 < len(st) && st[i+2] == 'Z'
}

// inCgroups reports whether pid is in, or below, one of the cgroup
// directories dirs.
func inCgroups(pid int, dirs []string) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cgroup")
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.SplitN(line, ":", 3)
		if len(f) != 3 {
			continue
		}
		for p := f[2]; p != "/" && p != "."; p = filepath.Dir(p) {
			for _, d := range dirs {
				if strings.HasSuffix(d, p) {
					return true
				}
			}
		}
	}
	return false
}
