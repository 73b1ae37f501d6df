package main

import (
	"errors"
	"fmt"

	"github.com/containerfd/containerfd/internal/bundle"
	cfd "github.com/containerfd/containerfd/libcontainerfd"
	"github.com/urfave/cli/v2"
	"golang.org/x/sys/unix"
)

var killCommand = &cli.Command{
	Name:      "kill",
	Usage:     "send a signal (default SIGTERM) to a container's init, or with --all to all its processes",
	ArgsUsage: "<container-id> [signal]",
	Flags: []cli.Flag{
		&cli.BoolFlag{Name: "all", Aliases: []string{"a"}, Usage: "send the signal to every process of the container"},
	},
	Before: argsBetween(1, 2),
	Action: onContainer(func(c *cli.Context, ctr *cfd.Container) error {
		sig := unix.SIGTERM
		if s := c.Args().Get(1); s != "" {
			var err error
			if sig, err = parseSignal(s); err != nil {
				return err
			}
		}
		st, err := ctr.Status()
		if err != nil {
			return err
		}
		// runc's wording: containerd's shim (checkKillError) takes
		// "container not running" as "process already finished"; any
		// other text is an error, on which CRI's StopContainer fails.
		notRunning := fmt.Errorf("cannot signal container %s that is %s: container not running", ctr.ID(), st)
		switch {
		case st == cfd.Creating:
			return notRunning
		// With --all, a stopped container may still have processes: its
		// init is gone, but without a pid namespace of its own (or in a
		// pod's) its children stay in its cgroup. containerd's shim kills
		// them so once init exits, as runc lets it.
		case c.Bool("all") && sig == unix.SIGKILL:
			return ctr.KillAll()
		case c.Bool("all"):
			return bundle.SignalAll(ctr, sig)
		case st == cfd.Stopped && (sig != unix.SIGKILL || !ctr.SharedPidNS() || ctr.Cgroup() == nil):
			// Without a pid namespace of its own, SIGKILL still reaches
			// what init left in the cgroup (Kill).
			return notRunning
		}
		err = ctr.Kill(sig)
		if errors.Is(err, cfd.ErrNotRunning) {
			return notRunning // init died since Status
		}
		return err
	}),
}

var pauseCommand = &cli.Command{
	Name:      "pause",
	Usage:     "freeze every process of a container",
	ArgsUsage: "<container-id>",
	Before:    argsBetween(1, 1),
	Action: onContainer(func(c *cli.Context, ctr *cfd.Container) error {
		if st, err := ctr.Status(); err != nil {
			return err
		} else if st != cfd.Running && st != cfd.Created {
			return fmt.Errorf("container %s is not running", ctr.ID())
		}
		return ctr.Freeze()
	}),
}

var resumeCommand = &cli.Command{
	Name:      "resume",
	Usage:     "thaw a paused container",
	ArgsUsage: "<container-id>",
	Before:    argsBetween(1, 1),
	Action: onContainer(func(c *cli.Context, ctr *cfd.Container) error {
		if st, err := ctr.Status(); err != nil {
			return err
		} else if st != cfd.Paused {
			return fmt.Errorf("container %s is not paused", ctr.ID())
		}
		return ctr.Thaw()
	}),
}
