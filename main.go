// Command containerfd is an OCI low-level container runtime, a drop-in
// alternative to runc and crun, built on libcontainerfd.
//
// This file holds the app and its global flags (the same as runc's, so
// containerd's shim and podman/conmon can call it unchanged); each command
// group lives in its own file beside it and only parses, calls the library
// and prints.
package main

import (
	"errors"
	"fmt"
	"os"
	"runtime"

	cfd "github.com/containerfd/containerfd/libcontainerfd"
	"github.com/containerfd/containerfd/libcontainerfd/kernfeat"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/urfave/cli/v2"
)

// Set with -ldflags "-X main.version=... -X main.commit=..." (see Makefile).
var (
	version = "0.1.0-dev"
	commit  = ""
)

const (
	usage       = "an OCI runtime whose core is a container object with a file descriptor"
	description = `containerfd runs containers from OCI bundles (a directory with config.json and
a root filesystem) and takes the same commands and flags as runc, so that
containerd, podman/conmon and other callers can use it in runc's place.`
)

func versionText() string {
	s := fmt.Sprintf("containerfd version %s\n", version)
	if commit != "" {
		s += fmt.Sprintf("commit: %s\n", commit)
	}
	s += fmt.Sprintf("spec: %s\ngo: %s", specs.Version, runtime.Version())
	return s
}

func newApp() *cli.App {
	cli.VersionPrinter = func(c *cli.Context) {
		fmt.Fprintln(c.App.Writer, versionText())
	}
	return &cli.App{
		Name:        "containerfd",
		Usage:       usage,
		Description: description,
		Version:     version,
		Flags: []cli.Flag{
			&cli.BoolFlag{
				Name:  "debug",
				Usage: "enable debug logging",
			},
			&cli.StringFlag{
				Name:  "log",
				Usage: "set the log file to write containerfd logs to (default is stderr)",
			},
			&cli.StringFlag{
				Name:  "log-format",
				Value: "text",
				Usage: "set the log format ('text' or 'json')",
			},
			&cli.StringFlag{
				Name:        "root",
				DefaultText: "/run/containerfd, or $XDG_RUNTIME_DIR/containerfd when not root",
				Usage:       "root directory for storage of container state (this should be located in tmpfs)",
			},
			&cli.BoolFlag{
				Name:  "systemd-cgroup",
				Usage: "enable systemd cgroup support, expects cgroupsPath to be of form \"slice:prefix:name\" for e.g. \"system.slice:runc:434234\"",
			},
			&cli.StringFlag{
				Name:  "rootless",
				Value: "auto",
				Usage: "make containers without privilege: user namespace owned by the caller, delegated cgroup2 or none ('true', 'false', or 'auto': when not root)",
			},
		},
		Before: func(c *cli.Context) error {
			if err := checkGlobalFlags(c); err != nil {
				return err
			}
			if err := kernfeat.CheckEnv(); err != nil {
				return err
			}
			return setupLog(c)
		},
		Commands: []*cli.Command{
			createCommand, startCommand, runCommand, stateCommand, killCommand,
			deleteCommand, listCommand, psCommand, execCommand, pauseCommand,
			resumeCommand, updateCommand, eventsCommand, specCommand, featuresCommand,
			socketCommand, mountCommand, umountCommand, waitCommand, keyringCommand, cpCommand,
		},
		// Errors are logged once, by main.
		ExitErrHandler: func(*cli.Context, error) {},
	}
}

// checkGlobalFlags rejects values runc would reject. Wiring the flags to
// logging, the state root and the cgroup driver comes with the commands.
func checkGlobalFlags(c *cli.Context) error {
	switch f := c.String("log-format"); f {
	case "text", "json":
	default:
		return fmt.Errorf("invalid --log-format %q: want text or json", f)
	}
	switch r := c.String("rootless"); r {
	case "true", "false", "auto":
	default:
		return fmt.Errorf("invalid --rootless %q: want true, false or auto", r)
	}
	return nil
}

func main() {
	// A process the library started from this binary (a stage) runs its
	// part here and exits; nothing of the CLI runs in it.
	cfd.Init()
	err := newApp().Run(os.Args)
	if err == nil {
		return
	}
	// A process's exit code (run, exec) is ours, with nothing to log.
	var exit cli.ExitCoder
	if errors.As(err, &exit) && exit.Error() == "" {
		os.Exit(exit.ExitCode())
	}
	logs.Error(err)
	os.Exit(1)
}
