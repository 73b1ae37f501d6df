package libcontainerfd

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"

	"github.com/containerfd/containerfd/libcontainerfd/internal/spawn"
	"github.com/containerfd/containerfd/libcontainerfd/lsm"
	"github.com/containerfd/containerfd/libcontainerfd/rlimit"
	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// The library's own binary runs as a short stage inside the container before
// the user's program replaces it: as init (attach the mount tree, pivot_root,
// wait for start), as an exec'd process (take its credentials), or outside,
// as the watcher of a KillOnClose container. A stage is recognised by argv[0];
// it reads its orders from the socket whose fd is argv[1].
const (
	stageInit  = "containerfd-init"
	stageExec  = "containerfd-exec"
	stageWatch = "containerfd-watch"
)

func init() {
	if len(os.Args) < 2 {
		return
	}
	var run func() error
	switch os.Args[0] {
	case stageInit:
		run = runInit
	case stageExec:
		run = runExec
	case stageWatch:
		run = runWatch
	case stageEnter:
		run = runEnter
	case stageUserns:
		run = runUserns
	default:
		return
	}
	// Credentials and capabilities are per thread: keep to one. A stage
	// lives for milliseconds (the watcher aside): no garbage collection.
	runtime.LockOSThread()
	if os.Args[0] != stageWatch {
		debug.SetGCPercent(-1)
	}
	if err := run(); err != nil {
		fmt.Fprintf(os.Stderr, "containerfd: %s: %v\n", os.Args[0], err)
		os.Exit(1)
	}
	os.Exit(0)
}

// processConfig is a Process as a stage receives it.
type processConfig struct {
	Args            []string                 `json:"args"`
	Env             []string                 `json:"env"`
	Cwd             string                   `json:"cwd"`
	UID             uint32                   `json:"uid"`
	GID             uint32                   `json:"gid"`
	Groups          []uint32                 `json:"groups,omitempty"`
	Umask           *uint32                  `json:"umask,omitempty"`
	NNP             bool                     `json:"noNewPrivileges,omitempty"`
	Capabilities    *specs.LinuxCapabilities `json:"capabilities,omitempty"`
	Terminal        bool                     `json:"terminal,omitempty"`
	ConsoleSize     *specs.Box               `json:"consoleSize,omitempty"`
	Scheduler       *unix.SchedAttr          `json:"scheduler,omitempty"`
	IOPriority      *int                     `json:"ioPriority,omitempty"`
	Personality     *uint                    `json:"personality,omitempty"`
	MemoryPolicy    *MemoryPolicy            `json:"memoryPolicy,omitempty"`
	AppArmorProfile string                   `json:"apparmorProfile,omitempty"`
	SELinuxLabel    string                   `json:"selinuxLabel,omitempty"`
	// FinalCPUs is the cpu list the process runs on once it execs.
	FinalCPUs string `json:"finalCPUs,omitempty"`
	// Seccomp is the compiled filter to load before exec.
	Seccomp *seccompProgram `json:"seccomp,omitempty"`
	// KeepNofile: the runtime set RLIMIT_NOFILE, which Go's exec would
	// otherwise put back to what the stage started with.
	KeepNofile bool `json:"keepNofile,omitempty"`
	// Files is how many fds from 0 the process keeps.
	Files int `json:"files"`
}

func newProcessConfig(p *Process) processConfig {
	return processConfig{
		Args: p.Args, Env: p.Env, Cwd: p.Cwd, UID: p.UID, GID: p.GID,
		Groups: p.AdditionalGids, Umask: p.Umask, NNP: p.NoNewPrivileges,
		Capabilities: p.Capabilities, Terminal: p.Terminal, ConsoleSize: p.ConsoleSize,
		KeepNofile:      hasNofile(p.Rlimits),
		Scheduler:       p.Scheduler,
		IOPriority:      p.IOPriority,
		AppArmorProfile: p.AppArmorProfile,
		SELinuxLabel:    p.SELinuxLabel,
		Files:           3 + len(p.ExtraFiles),
	}
}

func hasNofile(rs []specs.POSIXRlimit) bool {
	for _, r := range rs {
		if r.Type == "RLIMIT_NOFILE" {
			return true
		}
	}
	return false
}

func stageSock() (int, error) {
	fd, err := strconv.Atoi(os.Args[1])
	if err != nil {
		return -1, fmt.Errorf("bad socket fd %q", os.Args[1])
	}
	return fd, nil
}

// joinLateCgroup moves the calling thread into the cgroup whose tasks file
// is open as fd argv[2], if there is one (see startStage). Called first
// thing from the main thread, the thread group leader: /proc/<pid>/cgroup
// then names the new cgroup (containerd's shim reads it after create), and
// memory is charged by the leader's cgroup, so the Go runtime's start stays
// the runtime's and everything from here on is the container's.
func joinLateCgroup() error {
	if len(os.Args) < 3 {
		return nil
	}
	fd, err := strconv.Atoi(os.Args[2])
	if err != nil {
		return fmt.Errorf("bad cgroup tasks fd %q", os.Args[2])
	}
	if _, err := unix.Write(fd, []byte("0")); err != nil {
		return fmt.Errorf("join memory cgroup: %w", err)
	}
	return nil
}

// fail reports err to the runtime, then takes what is still queued so that
// closing the socket does not reset it before the runtime has read the
// error.
func fail(sock int, err error) error {
	reply := stageReply{Error: err.Error()}
	var ce *spawn.ChildError
	if errors.As(err, &ce) {
		reply.Step, reply.Errno = ce.Step, int(ce.Err)
	}
	sendJSON(sock, reply)
	for {
		fd, rerr := recv(sock, &struct{}{})
		if rerr != nil {
			break
		}
		if fd >= 0 {
			unix.Close(fd)
		}
	}
	return err
}

func runExec() error {
	sock, err := stageSock()
	if err != nil {
		return err
	}
	if err := joinLateCgroup(); err != nil {
		return fail(sock, err)
	}
	var pc processConfig
	if err := recvJSON(sock, &pc); err != nil {
		return fmt.Errorf("read config: %w", err)
	}
	// Joining the mount namespace put us at its root; the container's root
	// may be a chroot below it (NoPivot), so take init's.
	root, err := recvFD(sock)
	if err != nil {
		return fail(sock, fmt.Errorf("receive root: %w", err))
	}
	if err := unix.Fchdir(root); err != nil {
		return fail(sock, fmt.Errorf("enter root: %w", err))
	}
	unix.Close(root)
	if err := unix.Chroot("."); err != nil {
		return fail(sock, fmt.Errorf("chroot into root: %w", err))
	}
	path, err := lookPath(&pc, executable)
	if err != nil {
		return fail(sock, err)
	}
	tty := -1
	if pc.Terminal {
		master, peer, err := newPty("/", pc.ConsoleSize)
		if err != nil {
			return fail(sock, err)
		}
		err = send(sock, stageReply{Console: true}, master)
		unix.Close(master)
		if err != nil {
			return fail(sock, fmt.Errorf("send pty master: %w", err))
		}
		tty = peer
	}
	return fail(sock, execProcess(&pc, path, tty, sock))
}

// seccompProgram is a compiled seccomp filter on its way to a stage.
type seccompProgram struct {
	Program []unix.SockFilter `json:"program"`
	Flags   uint              `json:"flags"`
}

// execProcess takes on the process's identity and execs it; it returns only
// on failure. tty, if not -1, becomes its stdio and controlling terminal;
// sock is the runtime, for a seccomp listener.
//
// The steps are a direct child's (spawn.Steps), in its order and with its
// errors. What only Go can do comes around them: the LSM labels, and
// handing on a notify listener when the filter makes one.
func execProcess(pc *processConfig, path string, tty, sock int) error {
	// The labels take effect at exec; writing them needs the capabilities
	// to clone /proc's mount (package lsm), and a seccomp profile could
	// forbid the syscalls: before every step.
	if pc.AppArmorProfile != "" {
		if err := lsm.SetExec(lsm.AppArmor, pc.AppArmorProfile); err != nil {
			return err
		}
	}
	if pc.SELinuxLabel != "" {
		if err := lsm.SetExec(lsm.SELinux, pc.SELinuxLabel); err != nil {
			return err
		}
	}
	if pc.KeepNofile {
		if err := rlimit.KeepNofile(); err != nil {
			return err
		}
	}
	sp, err := pc.spawnProc(path, tty)
	if err != nil {
		return err
	}
	steps, err := spawn.NewSteps(sp)
	if err != nil {
		return err
	}
	for {
		listener, err := steps.Run(pc.Args, pc.Env)
		if err != nil {
			return childError(err, pc.stepWords(path))
		}
		err = handOnListener(sock, listener)
		unix.Close(listener)
		if err != nil {
			return err
		}
	}
}

// handOnListener sends the process's seccomp notify listener to the
// runtime over sock, and waits until the runtime has passed it on: from
// then on the process's calls may wait for it.
func handOnListener(sock, fd int) error {
	if err := send(sock, stageReply{Seccomp: true}, fd); err != nil {
		return fmt.Errorf("hand on seccomp listener: %w", err)
	}
	var ack string
	if err := recvJSON(sock, &ack); err != nil || ack != "ok" {
		return fmt.Errorf("hand on seccomp listener: %q %v", ack, err)
	}
	return nil
}

// defaultPath is the search path when the process's environment has none.
const defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// lookPath finds the program inside the container root, with the process's
// own PATH; executable checks a candidate. Its errors use the words callers
// match on ("no such file or directory", "executable file not found in
// $PATH").
func lookPath(pc *processConfig, executable func(string) error) (string, error) {
	if len(pc.Args) == 0 {
		return "", errors.New("process has no args")
	}
	name := pc.Args[0]
	if strings.Contains(name, "/") {
		if !filepath.IsAbs(name) {
			cwd := pc.Cwd
			if cwd == "" {
				cwd = "/"
			}
			name = filepath.Join(cwd, name)
		}
		if err := executable(name); err != nil {
			return "", fmt.Errorf("exec %q: %w", pc.Args[0], err)
		}
		return name, nil
	}
	search := defaultPath
	for _, kv := range pc.Env {
		if v, ok := strings.CutPrefix(kv, "PATH="); ok {
			search = v
		}
	}
	for _, dir := range filepath.SplitList(search) {
		if dir == "" {
			dir = "."
		}
		p := filepath.Join(dir, name)
		if executable(p) == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("exec %q: executable file not found in $PATH", name)
}

func executable(path string) error {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return err
	}
	return executableMode(st.Mode)
}

func executableMode(mode uint32) error {
	if mode&unix.S_IFMT == unix.S_IFDIR {
		return unix.EISDIR
	}
	if mode&0o111 == 0 {
		return unix.EACCES
	}
	return nil
}
