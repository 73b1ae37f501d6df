package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	cfd "github.com/containerfd/containerfd/libcontainerfd"
	"github.com/containerfd/containerfd/libcontainerfd/cgroups"
	"github.com/containerfd/containerfd/libcontainerfd/seccomp"
	"github.com/containerfd/containerfd/spec"
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

// envStart chooses how the container's processes start: "stage" starts
// every one through the Go stage (cfd.Config.AlwaysStage), for tests and
// comparisons; unset, the library starts them directly where it can.
const envStart = "CONTAINERFD_START"

func alwaysStage() (bool, error) {
	switch v := os.Getenv(envStart); v {
	case "":
		return false, nil
	case "stage":
		return true, nil
	default:
		return false, fmt.Errorf("%s=%q: want stage, or unset", envStart, v)
	}
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
	bundle := c.String("bundle")
	if bundle == "" {
		if bundle, err = os.Getwd(); err != nil {
			return nil, nil, err
		}
	}
	if bundle, err = filepath.Abs(bundle); err != nil {
		return nil, nil, err
	}
	s, err := spec.Load(bundle)
	if err != nil {
		return nil, nil, err
	}
	if err := spec.Validate(s, bundle); err != nil {
		return nil, nil, err
	}
	logs.Debugf("%s: config.json of bundle %s (ociVersion %s)", id, bundle, s.Version)
	if logs.debug && s.Linux != nil && s.Linux.Seccomp != nil {
		if f, err := seccomp.Compile(s.Linux.Seccomp); err == nil {
			// In runc's words and count: TSYNC (moot for a process that
			// is one thread when it loads the filter) and the TSYNC_ESRCH
			// that goes with it are left out.
			logs.Debugf("seccomp filter flags: %d", f.Flags&^(unix.SECCOMP_FILTER_FLAG_TSYNC|unix.SECCOMP_FILTER_FLAG_TSYNC_ESRCH))
		}
	}
	cfg, proc, err := spec.Translate(s, bundle)
	if err != nil {
		return nil, nil, err
	}
	cfg.Rootless = rootless(c)
	if c.Bool("systemd-cgroup") && cfg.Rootless {
		return nil, nil, errors.New("--systemd-cgroup: a rootless container would need a systemd user manager, which is not supported yet; without the flag it uses a delegated cgroup2 subtree, or none")
	}
	if c.Bool("systemd-cgroup") {
		if err := systemdCgroup(cfg, id, s.Annotations); err != nil {
			return nil, nil, err
		}
	} else if cfg.Cgroup == "" {
		cfg.Cgroup = id // runc's default: relative, under our own cgroup
	}
	cfg.NoPivot = cfg.NoPivot || c.Bool("no-pivot")
	cfg.NoNewKeyring = c.Bool("no-new-keyring")
	if c.Bool("kill-on-close") {
		cfg.Flags |= cfd.KillOnClose
		// Our caller is the holder: we leave as soon as the container is
		// created (or, for run in the foreground, with it).
		if c.Command.Name != "run" || c.Bool("detach") {
			cfg.HolderPid = os.Getppid()
		}
	}
	cfg.EmptyRoot = c.Bool("empty-fs")
	if cfg.AlwaysStage, err = alwaysStage(); err != nil {
		return nil, nil, err
	}
	if cfg.Labels, err = labelsFor(s, bundle, cfg.Rootfs); err != nil {
		return nil, nil, err
	}
	consoleSocket := c.String("console-socket")
	if proc.Terminal && consoleSocket == "" && (c.Command.Name != "run" || c.Bool("detach")) {
		return nil, nil, errors.New("process.terminal is set: --console-socket is required")
	}
	if !proc.Terminal && consoleSocket != "" {
		return nil, nil, errors.New("--console-socket is given but process.terminal is not set")
	}
	switch {
	case proc.Terminal:
	case pipes != nil:
		uid, gid := hostRoot(cfg)
		if err := pipes.give(proc, uid, gid); err != nil {
			return nil, nil, err
		}
		defer pipes.started()
	default:
		proc.Stdin, proc.Stdout, proc.Stderr = os.Stdin, os.Stdout, os.Stderr
	}
	// run in the foreground copies the pty to our terminal (proxyConsole).
	proc.ClearONLCR = proc.Terminal && consoleSocket == ""
	extra, env := inheritedFiles(c.Int("preserve-fds"))
	proc.ExtraFiles = extra
	proc.Env = append(proc.Env, env...)

	var ctr *cfd.Container
	if h := s.Hooks; h != nil && len(h.Prestart)+len(h.CreateRuntime)+len(h.CreateContainer) > 0 { //nolint:staticcheck // Prestart is deprecated, still run
		cfg.BeforePivot = func(pid int) error {
			return runCreateHooks(ctr, s.Hooks, pid)
		}
	}
	for _, w := range spec.Warnings(s) {
		logs.Warn("%s", w)
	}
	ctr, err = cfd.Create(stateRoot(c), id, cfg)
	if errors.Is(err, cfd.ErrExist) {
		return nil, nil, fmt.Errorf("container %q already exists", id)
	}
	if err != nil {
		return nil, nil, err
	}
	if cfg.Rootless {
		warnRootless(ctr, s)
	}
	fail := func(err error) (*cfd.Container, *cfd.Process, error) {
		if derr := ctr.Destroy(); derr != nil {
			logs.Warn("clean up after failed create: %v", derr)
		}
		return nil, nil, err
	}
	withNotifyState(ctr)
	if err := setupNotify(ctr, cfg, proc); err != nil {
		return fail(err)
	}
	logs.Debugf("%s: created in %s, cgroup %s", id, stateRoot(c), cfg.Cgroup)
	if err := ctr.ForkInit(proc); err != nil {
		return fail(err)
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

// hostRoot is who the container's root is on the host: ourselves, unless
// a user namespace maps it to another.
func hostRoot(cfg *cfd.Config) (uid, gid int) {
	uid, gid = os.Geteuid(), os.Getegid()
	if u, ok := cfg.UIDMappings.ToHost(0); ok {
		uid = int(u)
	}
	if g, ok := cfg.GIDMappings.ToHost(0); ok {
		gid = int(g)
	}
	return uid, gid
}

func labelsFor(s *specs.Spec, bundle, rootfs string) (map[string]string, error) {
	labels := map[string]string{labelBundle: bundle, labelRootfs: rootfs, labelOwner: ownerName()}
	if len(s.Annotations) > 0 {
		b, err := json.Marshal(s.Annotations)
		if err != nil {
			return nil, err
		}
		labels[labelAnnotations] = string(b)
	}
	if s.Hooks != nil {
		b, err := json.Marshal(s.Hooks)
		if err != nil {
			return nil, err
		}
		labels[labelHooks] = string(b)
	}
	return labels, nil
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

// systemdCgroup makes the container's cgroup a systemd unit: cgroupsPath is
// "slice:prefix:name" (runc's form; empty is ":containerfd:ID", a scope
// containerfd-ID.scope in system.slice), and the cgroup is where systemd puts
// that unit. Annotations "org.systemd.property.NAME" set more properties of
// the unit, as in runc.
func systemdCgroup(cfg *cfd.Config, id string, annotations map[string]string) error {
	path := cfg.Cgroup
	if path == "" {
		path = ":containerfd:" + id
	}
	u, err := cgroups.ParseUnit(path)
	if err != nil {
		return fmt.Errorf("--systemd-cgroup: %w", err)
	}
	if cfg.Cgroup, err = u.CgroupPath(); err != nil {
		return fmt.Errorf("--systemd-cgroup: linux.cgroupsPath %q: %w", path, err)
	}
	if u.Properties, err = cgroups.AnnotationProperties(annotations); err != nil {
		return fmt.Errorf("--systemd-cgroup: %w", err)
	}
	cfg.Systemd = &u
	cfg.SystemdDescription = "containerfd container " + id
	return nil
}
