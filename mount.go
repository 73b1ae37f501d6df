package main

import (
	"errors"
	"os"
	"strings"

	cfd "github.com/containerfd/containerfd/libcontainerfd"
	"github.com/containerfd/containerfd/spec"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/urfave/cli/v2"
)

var mountCommand = &cli.Command{
	Name:  "mount",
	Usage: "mount a filesystem or a host directory into a running container, from outside",
	UsageText: `containerfd mount ID [--type TYPE] [--source SOURCE] [-o OPTIONS] [--ro] TARGET
containerfd mount ID --bind HOSTPATH [-o OPTIONS] [--ro] TARGET`,
	Description: `The mount is made outside the container with the new mount API and
attached by fd to the target, which is resolved inside the container's root:
a symlink in the container cannot send it anywhere else. Options are
config.json's (ro, nosuid, idmap, size=…). Flags may come before or after
the container id and the target.`,
	Flags: []cli.Flag{
		&cli.StringFlag{Name: "type", Value: "tmpfs", Usage: "filesystem type"},
		&cli.StringFlag{Name: "source", Usage: "source name (default: the type)"},
		&cli.StringFlag{Name: "options", Aliases: []string{"o"}, Usage: "comma-separated mount options"},
		&cli.StringFlag{Name: "bind", Usage: "a host path to bind instead (recursively)"},
		&cli.BoolFlag{Name: "ro", Usage: "read-only"},
	},
	Action: onContainer(func(c *cli.Context, ctr *cfd.Container) error {
		target := c.Args().Get(1)
		if target == "" {
			return errors.New("mount: no target")
		}
		m := specs.Mount{Destination: target, Type: c.String("type"), Source: c.String("source")}
		if o := c.String("options"); o != "" {
			m.Options = strings.Split(o, ",")
		}
		if b := c.String("bind"); b != "" {
			m.Type, m.Source = "bind", b
			m.Options = append(m.Options, "rbind")
		}
		if m.Source == "" {
			m.Source = m.Type
		}
		if c.Bool("ro") {
			m.Options = append(m.Options, "ro")
		}
		wd, err := os.Getwd()
		if err != nil {
			return err
		}
		mt, err := spec.TranslateMount(m, wd)
		if err != nil {
			return err
		}
		return ctr.Mount(mt)
	}),
}

var umountCommand = &cli.Command{
	Name:      "umount",
	Usage:     "detach a mount from a running container, from outside",
	UsageText: "containerfd umount ID TARGET",
	Action: onContainer(func(c *cli.Context, ctr *cfd.Container) error {
		target := c.Args().Get(1)
		if target == "" {
			return errors.New("umount: no target")
		}
		return ctr.Unmount(target)
	}),
}
