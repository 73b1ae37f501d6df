package main

import (
	"github.com/containerfd/containerfd/spec"
	"github.com/urfave/cli/v2"
)

var featuresCommand = &cli.Command{
	Name:  "features",
	Usage: "print what this runtime implements, as JSON (OCI features.md)",
	Action: func(c *cli.Context) error {
		return printJSON(spec.Features(map[string]string{
			"io.github.containerfd.version": version,
			"io.github.containerfd.commit":  commit,
		}))
	},
}
