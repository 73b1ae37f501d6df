package main

import (
	"fmt"
	"os"

	"github.com/containerfd/containerfd/libcontainerfd/keyreq"
	"github.com/urfave/cli/v2"
)

// keyUpcallCommand is what the kernel's /sbin/request-key runs for a key
// request, through the request-key.d entry `make install` puts there
// (hack/install/request-key.conf.in): not for people.
var keyUpcallCommand = &cli.Command{
	Name:            keyreq.Command,
	Usage:           "answer a key request for /sbin/request-key (op key uid gid thread-keyring process-keyring session-keyring)",
	Hidden:          true,
	SkipFlagParsing: true,
	Action: func(c *cli.Context) error {
		code, err := keyreq.Upcall(c.Args().Slice())
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
		}
		os.Exit(code)
		return nil
	},
}
