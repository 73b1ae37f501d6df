package main

import (
	"errors"
	"os"
	"strconv"

	"github.com/containerfd/containerfd/internal/bundle"
	cfd "github.com/containerfd/containerfd/libcontainerfd"
	"github.com/containerfd/containerfd/libcontainerfd/seccomp"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/urfave/cli/v2"
	"golang.org/x/sys/unix"
)

var createFlags = []cli.Flag{
	&cli.StringFlag{Name: "bundle", Aliases: []string{"b"}, Usage: "path to the root of the bundle directory (default: the current directory)"},
	&cli.StringFlag{Name: "console-socket", Usage: "path to an AF_UNIX socket which will receive the pty master of the container's terminal"},
	&cli.StringFlag{Name: "pid-file", Usage: "file to write the container's init pid to"},
	&cli.BoolFlag{Name: "no-pivot", Usage: "do not use pivot_root to enter the rootfs (chroot instead; the old root stays reachable)"},
	&cli.BoolFlag{Name: "no-new-keyring", Usage: "do not give the container a session keyring of its own"},
	&cli.IntFlag{Name: "preserve-fds", Usage: "pass N more fds (3 to 3+N-1) to the container, on top of LISTEN_FDS"},
	&cli.StringFlag{Name: "pidfd-socket", Usage: "send a pidfd of init over the AF_UNIX socket at this path"},
	&cli.BoolFlag{Name: "kill-on-close", Usage: "kill the container when the process that ran this command exits (even by SIGKILL)"},
	&cli.StringFlag{Name: "key-handler", Usage: "program on the host (absolute path) that answers the key requests (request_key) of the container's processes: docs/beyond-runc.md, \"Key requests\""},
	&cli.DurationFlag{Name: "key-handler-timeout", Usage: "how long the --key-handler may take per request (default 10s)"},
	&cli.BoolFlag{Name: "empty-fs", Usage: "start from an empty root filesystem, filled from outside with 'containerfd mount' before start"},
}

var createCommand = &cli.Command{
	Name:      "create",
	Usage:     "create a container",
	ArgsUsage: "<container-id>",
	Description: `The create command creates a container from the bundle: its namespaces,
cgroup and root filesystem, with init waiting for "start" to run the process.`,
	Flags: createFlags,
	Action: func(c *cli.Context) error {
		ctr, _, err := create(c, nil)
		if err != nil {
			return err
		}
		return ctr.Close()
	},
}

// bundleOptions is what create, run and restore take alike from the
// command line: the state root, the id, the bundle (default the current
// directory), and how the container is made.
func bundleOptions(c *cli.Context, id string) (*bundle.Options, error) {
	dir := c.String("bundle")
	if dir == "" {
		var err error
		if dir, err = os.Getwd(); err != nil {
			return nil, err
		}
	}
	opts := &bundle.Options{
		Root:     stateRoot(c),
		ID:       id,
		Bundle:   dir,
		Rootless: rootless(c),
		NoPivot:  c.Bool("no-pivot"),
		Warn:     func(msg string) { logs.Warn("%s", msg) },
	}
	if c.Bool("systemd-cgroup") {
		opts.Systemd = "--systemd-cgroup"
	}
	var err error
	if opts.AlwaysStage, err = bundle.AlwaysStage(); err != nil {
		return nil, err
	}
	return opts, nil
}

// create makes the container the command line asks for, up to init
// waiting for start. On error nothing is left behind.
//
// pipes, for `run` in the foreground, become the process's stdio unless it
// has a terminal; without, it has ours.
func create(c *cli.Context, pipes *stdioPipes) (*cfd.Container, *cfd.Process, error) {
	id, err := containerID(c)
	if err != nil {
		return nil, nil, err
	}
	opts, err := bundleOptions(c, id)
	if err != nil {
		return nil, nil, err
	}
	bundleDir := opts.Bundle
	consoleSocket := c.String("console-socket")
	opts.NoNewKeyring, opts.EmptyFS = c.Bool("no-new-keyring"), c.Bool("empty-fs")
	if c.Bool("kill-on-close") {
		opts.KillOnClose = true
		// Our caller is the holder: we leave as soon as the container is
		// created (or, for run in the foreground, with it).
		if c.Command.Name != "run" || c.Bool("detach") {
			opts.HolderPid = os.Getppid()
		}
	}
	var sp *specs.Spec
	opts.Prepare = func(s *specs.Spec, cfg *cfd.Config, proc *cfd.Process) error {
		sp = s
		cfg.KeyHandler, cfg.KeyHandlerTimeout = c.String("key-handler"), c.Duration("key-handler-timeout")
		logs.Debugf("%s: config.json of bundle %s (ociVersion %s)", id, bundleDir, s.Version)
		if logs.debug && s.Linux != nil && s.Linux.Seccomp != nil {
			if f, err := seccomp.Compile(s.Linux.Seccomp); err == nil {
				// In runc's words and count: TSYNC (moot for a process that
				// is one thread when it loads the filter) and the TSYNC_ESRCH
				// that goes with it are left out.
				logs.Debugf("seccomp filter flags: %d", f.Flags&^(unix.SECCOMP_FILTER_FLAG_TSYNC|unix.SECCOMP_FILTER_FLAG_TSYNC_ESRCH))
			}
		}
		if proc.Terminal && consoleSocket == "" && (c.Command.Name != "run" || c.Bool("detach")) {
			return errors.New("process.terminal is set: --console-socket is required")
		}
		if !proc.Terminal && consoleSocket != "" {
			return errors.New("--console-socket is given but process.terminal is not set")
		}
		switch {
		case proc.Terminal:
		case pipes != nil:
			uid, gid := bundle.HostRoot(cfg)
			if err := pipes.give(proc, uid, gid); err != nil {
				return err
			}
		default:
			proc.Stdin, proc.Stdout, proc.Stderr = os.Stdin, os.Stdout, os.Stderr
		}
		// run in the foreground copies the pty to our terminal (proxyConsole).
		proc.ClearONLCR = proc.Terminal && consoleSocket == ""
		extra, env := inheritedFiles(c.Int("preserve-fds"))
		proc.ExtraFiles = extra
		proc.Env = append(proc.Env, env...)
		return nil
	}
	if pipes != nil {
		defer pipes.started()
	}
	opts.Created = func(ctr *cfd.Container, cfg *cfd.Config, proc *cfd.Process) error {
		if cfg.Rootless {
			warnRootless(ctr, sp)
		}
		logs.Debugf("%s: created in %s, cgroup %s", id, stateRoot(c), cfg.Cgroup)
		return setupNotify(ctr, cfg, proc)
	}
	ctr, proc, err := bundle.Create(opts)
	if err != nil {
		return nil, nil, err
	}
	fail := func(err error) (*cfd.Container, *cfd.Process, error) {
		if derr := ctr.Destroy(); derr != nil {
			logs.Warn("clean up after failed create: %v", derr)
		}
		return nil, nil, err
	}
	logs.Debugf("%s: init is pid %d, waiting for start", id, proc.Pid)
	if proc.Console != nil && consoleSocket != "" {
		err := sendConsole(consoleSocket, proc.Console)
		proc.Console.Close()
		proc.Console = nil
		if err != nil {
			proc.Wait()
			return fail(err)
		}
	}
	if err := writePidFile(c.String("pid-file"), proc.Pid); err != nil {
		proc.Wait()
		return fail(err)
	}
	if path := c.String("pidfd-socket"); path != "" {
		if err := sendFD(path, proc.Pidfd, "pidfd"); err != nil {
			proc.Wait()
			return fail(err)
		}
	}
	return ctr, proc, nil
}

// inheritedFiles are the fds the container gets beyond stdio: LISTEN_FDS
// socket activation first (with the environment that tells the process),
// then --preserve-fds more.
func inheritedFiles(preserve int) ([]*os.File, []string) {
	var env []string
	listen := 0
	if n, err := strconv.Atoi(os.Getenv("LISTEN_FDS")); err == nil && n > 0 {
		listen = n
		env = append(env, "LISTEN_FDS="+strconv.Itoa(n), "LISTEN_PID=1")
		if names := os.Getenv("LISTEN_FDNAMES"); names != "" {
			env = append(env, "LISTEN_FDNAMES="+names)
		}
	}
	var files []*os.File
	for fd := 3; fd < 3+listen+preserve; fd++ {
		files = append(files, os.NewFile(uintptr(fd), "fd "+strconv.Itoa(fd)))
	}
	return files, env
}
