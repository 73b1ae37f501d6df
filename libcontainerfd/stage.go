package libcontainerfd

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"

	"github.com/containerfd/containerfd/libcontainerfd/mounttree"
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
	default:
		return
	}
	// Credentials and capabilities are per thread: keep to one.
	runtime.LockOSThread()
	if err := run(); err != nil {
		fmt.Fprintf(os.Stderr, "containerfd: %s: %v\n", os.Args[0], err)
		os.Exit(1)
	}
	os.Exit(0)
}

// processConfig is a Process as a stage receives it.
type processConfig struct {
	Args   []string `json:"args"`
	Env    []string `json:"env"`
	Cwd    string   `json:"cwd"`
	UID    uint32   `json:"uid"`
	GID    uint32   `json:"gid"`
	Groups []uint32 `json:"groups,omitempty"`
	Umask  *uint32  `json:"umask,omitempty"`
	NNP    bool     `json:"noNewPrivileges,omitempty"`
	// Files is how many fds from 0 the process keeps.
	Files int `json:"files"`
}

func newProcessConfig(p *Process) processConfig {
	return processConfig{
		Args: p.Args, Env: p.Env, Cwd: p.Cwd, UID: p.UID, GID: p.GID,
		Groups: p.AdditionalGids, Umask: p.Umask, NNP: p.NoNewPrivileges,
		Files: 3 + len(p.ExtraFiles),
	}
}

// initConfig is what init receives first. The fds follow, one per message:
// the root tree (with NewEmptyFS), one per mount not marked Inside, and the
// start listener.
type initConfig struct {
	NewEmptyFS   bool              `json:"newEmptyFS"`
	RootReadonly bool              `json:"rootReadonly,omitempty"`
	NoPivot      bool              `json:"noPivot,omitempty"`
	Mounts       []mounttree.Mount `json:"mounts,omitempty"`
	// Inside marks mounts init must make itself, from inside the pid
	// namespace (proc where the kernel cannot take pidns=).
	Inside     []bool        `json:"inside,omitempty"`
	Hostname   *string       `json:"hostname,omitempty"`
	Domainname *string       `json:"domainname,omitempty"`
	Process    processConfig `json:"process"`
}

func stageSock() (int, error) {
	fd, err := strconv.Atoi(os.Args[1])
	if err != nil {
		return -1, fmt.Errorf("bad socket fd %q", os.Args[1])
	}
	return fd, nil
}

func runInit() error {
	sock, err := stageSock()
	if err != nil {
		return err
	}
	var cfg initConfig
	if err := recvJSON(sock, &cfg); err != nil {
		return fmt.Errorf("read config: %w", err)
	}
	path, err := setupInit(sock, &cfg)
	if err != nil {
		sendJSON(sock, stageReply{Error: err.Error()})
		// Take what is still queued, so closing does not reset the
		// connection before the runtime has read the error.
		for {
			fd, rerr := recvFD(sock)
			if rerr != nil {
				break
			}
			unix.Close(fd)
		}
		return err
	}
	listener, err := recvFD(sock)
	if err != nil {
		return fmt.Errorf("receive start listener: %w", err)
	}
	if err := sendJSON(sock, stageReply{}); err != nil {
		return fmt.Errorf("report ready: %w", err)
	}
	unix.Close(sock)

	// Created: wait for start.
	conn, _, err := unix.Accept4(listener, unix.SOCK_CLOEXEC)
	if err != nil {
		return fmt.Errorf("wait for start: %w", err)
	}
	unix.Close(listener)
	var order string
	if err := recvJSON(conn, &order); err != nil || order != "start" {
		return fmt.Errorf("wait for start: unexpected %q: %v", order, err)
	}
	err = execProcess(&cfg.Process, path)
	sendJSON(conn, stageReply{Error: err.Error()})
	return err
}

// setupInit builds the container's root and returns the program to run.
func setupInit(sock int, cfg *initConfig) (string, error) {
	if cfg.NewEmptyFS {
		if err := setupRoot(sock, cfg); err != nil {
			return "", err
		}
	}
	if cfg.Hostname != nil {
		if err := unix.Sethostname([]byte(*cfg.Hostname)); err != nil {
			return "", fmt.Errorf("set hostname %q: %w", *cfg.Hostname, err)
		}
	}
	if cfg.Domainname != nil {
		if err := unix.Setdomainname([]byte(*cfg.Domainname)); err != nil {
			return "", fmt.Errorf("set domainname %q: %w", *cfg.Domainname, err)
		}
	}
	return lookPath(&cfg.Process)
}

func setupRoot(sock int, cfg *initConfig) error {
	// Nothing done in this mount namespace may reach the host's.
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("make / private: %w", err)
	}
	tree, err := recvFD(sock)
	if err != nil {
		return fmt.Errorf("receive root tree: %w", err)
	}
	// Stack the tree on /, then step onto it: ".." from / crosses into the
	// mount on top.
	if err := unix.MoveMount(tree, "", unix.AT_FDCWD, "/", unix.MOVE_MOUNT_F_EMPTY_PATH); err != nil {
		return fmt.Errorf("attach root: move_mount: %w", err)
	}
	unix.Close(tree)
	if err := unix.Chdir("/.."); err != nil {
		return fmt.Errorf("enter root: %w", err)
	}
	root, err := unix.Open(".", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open root: %w", err)
	}
	defer unix.Close(root)

	for i, m := range cfg.Mounts {
		var fd int
		if i < len(cfg.Inside) && cfg.Inside[i] {
			fd, err = mounttree.Open(m, mounttree.Namespaces{Net: -1, IPC: -1, Cgroup: -1, PID: -1})
		} else {
			fd, err = recvFD(sock)
		}
		if err != nil {
			return fmt.Errorf("mount %s on %s: %w", m.Type, m.Target, err)
		}
		err = mounttree.Attach(root, m, fd)
		unix.Close(fd)
		if err != nil {
			return err
		}
	}
	if cfg.RootReadonly {
		attr := &unix.MountAttr{Attr_set: unix.MOUNT_ATTR_RDONLY}
		if err := unix.MountSetattr(root, "", unix.AT_EMPTY_PATH, attr); err != nil {
			return fmt.Errorf("make root read-only: %w", err)
		}
	}
	if cfg.NoPivot {
		if err := unix.Chroot("."); err != nil {
			return fmt.Errorf("chroot into root: %w", err)
		}
	} else {
		if err := unix.PivotRoot(".", "."); err != nil {
			return fmt.Errorf("pivot_root: %w", err)
		}
		if err := unix.Unmount(".", unix.MNT_DETACH); err != nil {
			return fmt.Errorf("detach old root: %w", err)
		}
	}
	if err := unix.Chdir("/"); err != nil {
		return fmt.Errorf("chdir /: %w", err)
	}
	return nil
}

func runExec() error {
	sock, err := stageSock()
	if err != nil {
		return err
	}
	var pc processConfig
	if err := recvJSON(sock, &pc); err != nil {
		return fmt.Errorf("read config: %w", err)
	}
	err = func() error {
		// Joining the mount namespace put us at its root; the container's
		// root may be a chroot below it (NoPivot), so take init's.
		root, err := recvFD(sock)
		if err != nil {
			return fmt.Errorf("receive root: %w", err)
		}
		if err := unix.Fchdir(root); err != nil {
			return fmt.Errorf("enter root: %w", err)
		}
		unix.Close(root)
		if err := unix.Chroot("."); err != nil {
			return fmt.Errorf("chroot into root: %w", err)
		}
		path, err := lookPath(&pc)
		if err != nil {
			return err
		}
		return execProcess(&pc, path)
	}()
	sendJSON(sock, stageReply{Error: err.Error()})
	return err
}

// execProcess takes on the process's identity and execs it; it returns only
// on failure.
func execProcess(pc *processConfig, path string) error {
	if pc.Umask != nil {
		unix.Umask(int(*pc.Umask))
	}
	cwd := pc.Cwd
	if cwd == "" {
		cwd = "/"
	}
	if err := unix.Chdir(cwd); err != nil {
		return fmt.Errorf("chdir to cwd %q: %w", cwd, err)
	}
	// A cwd reached through a leaked fd lies outside the root
	// (CVE-2024-21626); getcwd says so.
	if wd, err := unix.Getwd(); err != nil || !strings.HasPrefix(wd, "/") {
		return fmt.Errorf("cwd %q is outside the container root (%q, %v)", cwd, wd, err)
	}
	groups := make([]int, len(pc.Groups))
	for i, g := range pc.Groups {
		groups[i] = int(g)
	}
	if err := unix.Setgroups(groups); err != nil && !(len(groups) == 0 && err == unix.EPERM) {
		return fmt.Errorf("setgroups %v: %w", pc.Groups, err)
	}
	if err := unix.Setresgid(int(pc.GID), int(pc.GID), int(pc.GID)); err != nil {
		return fmt.Errorf("setgid %d: %w", pc.GID, err)
	}
	if err := unix.Setresuid(int(pc.UID), int(pc.UID), int(pc.UID)); err != nil {
		return fmt.Errorf("setuid %d: %w", pc.UID, err)
	}
	if pc.NNP {
		if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
			return fmt.Errorf("set no_new_privs: %w", err)
		}
	}
	// Nothing but the process's own fds may cross the exec.
	if err := unix.CloseRange(uint(pc.Files), ^uint(0), unix.CLOSE_RANGE_CLOEXEC); err != nil {
		return fmt.Errorf("close fds: %w", err)
	}
	err := unix.Exec(path, pc.Args, pc.Env)
	return fmt.Errorf("exec %s: %w", path, err)
}

// defaultPath is the search path when the process's environment has none.
const defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// lookPath finds the program inside the container root, with the process's
// own PATH. Its errors use the words callers match on ("no such file or
// directory", "executable file not found in $PATH").
func lookPath(pc *processConfig) (string, error) {
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
	if st.Mode&unix.S_IFMT == unix.S_IFDIR {
		return unix.EISDIR
	}
	if st.Mode&0o111 == 0 {
		return unix.EACCES
	}
	return nil
}
