package main

import (
	"fmt"

	cfd "github.com/containerfd/containerfd/libcontainerfd"
	"github.com/urfave/cli/v2"
)

var waitCommand = &cli.Command{
	Name:      "wait",
	Usage:     "wait until the last process of a container is gone",
	ArgsUsage: "<container-id>",
	Description: `wait returns once the container's cgroup is empty: not only init, but
every process the container started. It works from any process, not only
the one that started the container.`,
	Action: onContainer(func(c *cli.Context, ctr *cfd.Container) error {
		if err := ctr.Wait(); err != nil {
			return err
		}
		fmt.Println("stopped")
		return nil
	}),
}
