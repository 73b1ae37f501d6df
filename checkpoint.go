package main

import "github.com/urfave/cli/v2"

// The flags checkpoint and restore share with runc, in its words.
var (
	imagePathFlag   = &cli.StringFlag{Name: "image-path", Usage: "path for saving criu image files"}
	workPathFlag    = &cli.StringFlag{Name: "work-path", Usage: "path for saving work files and logs"}
	tcpFlag         = &cli.BoolFlag{Name: "tcp-established", Usage: "allow open tcp connections"}
	extUnixSkFlag   = &cli.BoolFlag{Name: "ext-unix-sk", Usage: "allow external unix sockets"}
	shellJobFlag    = &cli.BoolFlag{Name: "shell-job", Usage: "allow shell jobs"}
	lazyPagesFlag   = &cli.BoolFlag{Name: "lazy-pages", Usage: "use userfaultfd to lazily restore memory pages"}
	fileLocksFlag   = &cli.BoolFlag{Name: "file-locks", Usage: "handle file locks, for safety"}
	cgroupsModeFlag = &cli.StringFlag{Name: "manage-cgroups-mode", Value: "soft", Usage: "cgroups mode: soft|full|strict|ignore"}
	emptyNSFlag     = &cli.StringSliceFlag{Name: "empty-ns", Usage: "create a namespace, but don't restore its properties"}
	autoDedupFlag   = &cli.BoolFlag{Name: "auto-dedup", Usage: "enable auto deduplication of memory images"}
	checkpointFlags = []cli.Flag{
		imagePathFlag, workPathFlag,
		&cli.StringFlag{Name: "parent-path", Usage: "path for previous criu image files in pre-dump"},
		&cli.BoolFlag{Name: "leave-running", Usage: "leave the process running after checkpointing"},
		tcpFlag,
		&cli.BoolFlag{Name: "tcp-skip-in-flight", Usage: "skip in-flight tcp connections"},
		&cli.BoolFlag{Name: "link-remap", Usage: "allow one to link unlinked files back when possible"},
		extUnixSkFlag, shellJobFlag, lazyPagesFlag,
		&cli.IntFlag{Name: "status-fd", Value: -1, Usage: "criu writes \\0 to this FD once lazy-pages is ready"},
		&cli.StringFlag{Name: "page-server", Usage: "ADDRESS:PORT of the page server"},
		fileLocksFlag,
		&cli.BoolFlag{Name: "pre-dump", Usage: "dump container's memory information only, leave the container running after this"},
		cgroupsModeFlag, emptyNSFlag, autoDedupFlag,
	}
)

var checkpointCommand = &cli.Command{
	Name:      "checkpoint",
	Usage:     "checkpoint a running container",
	ArgsUsage: "<container-id>",
	Description: `The checkpoint command saves the state of the container's processes with
CRIU (docs/checkpoint.md), as runc's does: into --image-path (default
./checkpoint), after which the container is gone unless --leave-running or
--pre-dump. 'containerfd restore' brings it back.`,
	Flags:  checkpointFlags,
	Action: checkpointAction,
}
