package main

import (
	"errors"
	"fmt"

	"github.com/containerfd/containerfd/internal/bundle"
	cfd "github.com/containerfd/containerfd/libcontainerfd"
	"github.com/urfave/cli/v2"
)

var deleteCommand = &cli.Command{
	Name:      "delete",
	Usage:     "delete a stopped (or, with --force, any) container and everything it holds",
	ArgsUsage: "<container-id>",
	Flags: []cli.Flag{
		&cli.BoolFlag{Name: "force", Aliases: []string{"f"}, Usage: "kill the container first if it is running or paused"},
	},
	Before: argsBetween(1, 1),
	Action: func(c *cli.Context) error {
		ctr, err := load(c)
		if err != nil {
			if c.Bool("force") && errors.Is(err, cfd.ErrNotExist) {
				// Its state may have been removed under it (its root
				// deleted): what the host-wide list knows of it goes.
				// runc: delete --force of a missing container succeeds.
				if err := cfd.DestroyLost(stateRoot(c), c.Args().First()); !errors.Is(err, cfd.ErrNotExist) {
					return err
				}
				return nil
			}
			return err
		}
		st, err := ctr.Status()
		if err != nil {
			ctr.Close()
			return err
		}
		if (st == cfd.Running || st == cfd.Paused) && !c.Bool("force") {
			ctr.Close()
			return fmt.Errorf("cannot delete container %s that is %s: stop it first or use --force", ctr.ID(), st)
		}
		return destroy(ctr, st != cfd.Creating)
	},
}

// destroy kills what is left of the container, runs its poststop hooks
// (whose failures are only logged) and removes it.
func destroy(ctr *cfd.Container, poststop bool) error {
	return bundle.Destroy(ctr, poststop, func(err error) { logs.Warn("%v", err) })
}
