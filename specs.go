package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/containerfd/containerfd/spec"
	"github.com/urfave/cli/v2"
)

var specCommand = &cli.Command{
	Name:  "spec",
	Usage: "write a default config.json (busybox-friendly, as runc's) into the bundle",
	Flags: []cli.Flag{
		&cli.StringFlag{Name: "bundle", Aliases: []string{"b"}, Usage: "the bundle directory (default: the current directory)"},
		&cli.BoolFlag{Name: "rootless", Usage: "a config for a container run by a user who is not root"},
	},
	Action: func(c *cli.Context) error {
		dir := c.String("bundle")
		if dir == "" {
			dir = "."
		}
		path := filepath.Join(dir, "config.json")
		if _, err := os.Stat(path); err == nil {
			return fmt.Errorf("%s exists: remove it first", path)
		} else if !errors.Is(err, os.ErrNotExist) {
			return err
		}
		b, err := json.MarshalIndent(spec.ForHost(c.Bool("rootless")), "", "\t")
		if err != nil {
			return err
		}
		return os.WriteFile(path, append(b, '\n'), 0o666)
	},
}
