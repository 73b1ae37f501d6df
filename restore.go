package main

import (
	"errors"
	"os"

	"github.com/containerfd/containerfd/internal/bundle"
	cfd "github.com/containerfd/containerfd/libcontainerfd"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/urfave/cli/v2"
)

var restoreCommand = &cli.Command{
	Name:      "restore",
	Usage:     "restore a container from a previous checkpoint",
	ArgsUsage: "<container-id>",
	Description: `The restore command makes the container the bundle describes and restores
into it the processes a checkpoint saved in --image-path (default
./checkpoint), as runc's does; without --detach it waits for the restored
init as run does (docs/checkpoint.md).`,
	Flags: []cli.Flag{
		&cli.StringFlag{Name: "console-socket", Usage: "path to an AF_UNIX socket which will receive a file descriptor referencing the master end of the console's pseudoterminal"},
		&cli.StringFlag{Name: "image-path", Usage: "path to criu image files for restoring"},
		workPathFlag, tcpFlag, extUnixSkFlag, shellJobFlag, fileLocksFlag, cgroupsModeFlag,
		&cli.StringFlag{Name: "bundle", Aliases: []string{"b"}, Usage: "path to the root of the bundle directory"},
		&cli.BoolFlag{Name: "detach", Aliases: []string{"d"}, Usage: "detach from the container's process"},
		&cli.StringFlag{Name: "pid-file", Usage: "specify the file to write the process id to"},
		&cli.BoolFlag{Name: "no-subreaper", Usage: "accepted for runc compatibility; containerfd never becomes a subreaper"},
		&cli.BoolFlag{Name: "no-pivot", Usage: "accepted for runc compatibility: CRIU restores the root as it was dumped"},
		emptyNSFlag, autoDedupFlag, lazyPagesFlag,
		&cli.StringFlag{Name: "lsm-profile", Usage: "Specify an LSM profile to be used during restore in the form of TYPE:NAME."},
		&cli.StringFlag{Name: "lsm-mount-context", Usage: "Specify an LSM mount context to be used during restore."},
	},
	Action: func(c *cli.Context) error {
		id, err := containerID(c)
		if err != nil {
			return err
		}
		detach := c.Bool("detach")
		var sigs chan os.Signal
		if !detach {
			sigs = catchSignals()
		}
		ro := &cfd.RestoreOpts{
			ImagePath:       c.String("image-path"),
			WorkPath:        c.String("work-path"),
			TCPEstablished:  c.Bool("tcp-established"),
			ExtUnixSk:       c.Bool("ext-unix-sk"),
			ShellJob:        c.Bool("shell-job"),
			FileLocks:       c.Bool("file-locks"),
			AutoDedup:       c.Bool("auto-dedup"),
			LazyPages:       c.Bool("lazy-pages"),
			CgroupsMode:     cfd.CgroupsMode(c.String("manage-cgroups-mode")),
			LSMProfile:      c.String("lsm-profile"),
			LSMMountContext: c.String("lsm-mount-context"),
		}
		if ro.ImagePath, err = defaultImagePath(ro.ImagePath); err != nil {
			return err
		}
		if ro.EmptyNS, err = emptyNS(c); err != nil {
			return err
		}
		bundleDir := c.String("bundle")
		if bundleDir == "" {
			if bundleDir, err = os.Getwd(); err != nil {
				return err
			}
		}
		consoleSocket := c.String("console-socket")
		opts := &bundle.Options{
			Root:     stateRoot(c),
			ID:       id,
			Bundle:   bundleDir,
			Rootless: rootless(c),
			NoPivot:  c.Bool("no-pivot"),
			Warn:     func(msg string) { logs.Warn("%s", msg) },
			Prepare: func(_ *specs.Spec, _ *cfd.Config, proc *cfd.Process) error {
				if proc.Terminal && consoleSocket == "" && detach {
					return errors.New("process.terminal is set: --console-socket is required")
				}
				if !proc.Terminal {
					// In place of the pipes init had, as runc gives its own.
					proc.Stdin, proc.Stdout, proc.Stderr = os.Stdin, os.Stdout, os.Stderr
				}
				return nil
			},
		}
		if c.Bool("systemd-cgroup") {
			opts.Systemd = "--systemd-cgroup"
		}
		if opts.AlwaysStage, err = bundle.AlwaysStage(); err != nil {
			return err
		}
		ctr, proc, err := bundle.Restore(opts, ro)
		if err != nil {
			return err
		}
		defer ctr.Close()
		fail := func(err error) error {
			ctr.KillAll()
			proc.Wait()
			destroy(ctr, false)
			return err
		}
		stopProxy := func() {}
		if proc.Console != nil {
			if consoleSocket != "" {
				err = sendConsole(consoleSocket, proc.Console)
				proc.Console.Close()
				proc.Console = nil
			} else {
				stopProxy, err = proxyConsole(proc.Console)
			}
			if err != nil {
				return fail(err)
			}
		}
		if err := writePidFile(c.String("pid-file"), proc.Pid); err != nil {
			return fail(err)
		}
		logs.Debugf("%s: restored, init is pid %d", id, proc.Pid)
		if detach {
			return nil
		}
		code, err := waitForeground(proc, sigs)
		stopProxy()
		if err != nil {
			return err
		}
		if err := destroy(ctr, true); err != nil {
			logs.Error(err)
		}
		return cli.Exit("", code)
	},
}
