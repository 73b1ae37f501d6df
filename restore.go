package main

import "github.com/urfave/cli/v2"

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
	Action: restoreAction,
}
