package main

import (
	"strconv"

	"github.com/containerfd/containerfd/spec"
	"github.com/urfave/cli/v2"
)

var featuresCommand = &cli.Command{
	Name:  "features",
	Usage: "print what this runtime implements, as JSON (OCI features.md)",
	Action: func(c *cli.Context) error {
		// Whether checkpoint and restore work here (runc says only that
		// they are built in): CRIU's version, or why not, in its words.
		criu, err := criuStatus()
		if err != nil {
			criu = "unusable: " + err.Error()
		}
		return printJSON(spec.Features(map[string]string{
			"io.github.containerfd.version":            version,
			"io.github.containerfd.commit":             commit,
			"io.github.containerfd.checkpoint.enabled": strconv.FormatBool(err == nil),
			"io.github.containerfd.criu":               criu,
		}))
	},
}
