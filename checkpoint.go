package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/containerfd/containerfd/internal/bundle"
	cfd "github.com/containerfd/containerfd/libcontainerfd"
	"github.com/urfave/cli/v2"
	"golang.org/x/sys/unix"
)

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
	Flags: checkpointFlags,
	Action: onContainer(func(c *cli.Context, ctr *cfd.Container) error {
		cfg, err := bundle.CheckpointConfig(ctr)
		if err != nil {
			return err
		}
		o := &cfd.CheckpointOpts{
			Config:          cfg,
			ImagePath:       c.String("image-path"),
			WorkPath:        c.String("work-path"),
			ParentPath:      c.String("parent-path"),
			PreDump:         c.Bool("pre-dump"),
			LeaveRunning:    c.Bool("leave-running"),
			TCPEstablished:  c.Bool("tcp-established"),
			TCPSkipInFlight: c.Bool("tcp-skip-in-flight"),
			LinkRemap:       c.Bool("link-remap"),
			ExtUnixSk:       c.Bool("ext-unix-sk"),
			ShellJob:        c.Bool("shell-job"),
			FileLocks:       c.Bool("file-locks"),
			AutoDedup:       c.Bool("auto-dedup"),
			LazyPages:       c.Bool("lazy-pages"),
			StatusFD:        c.Int("status-fd"),
			PageServer:      c.String("page-server"),
			CgroupsMode:     cfd.CgroupsMode(c.String("manage-cgroups-mode")),
		}
		if o.ImagePath, err = defaultImagePath(o.ImagePath); err != nil {
			return err
		}
		if o.EmptyNS, err = emptyNS(c); err != nil {
			return err
		}
		if err := ctr.Checkpoint(o); err != nil {
			return err
		}
		if o.LeaveRunning || o.PreDump {
			return nil
		}
		// Dumped and killed, as with runc: the container is gone, to be
		// restored from the images.
		return destroy(ctr, true)
	}),
}

// defaultImagePath is runc's: ./checkpoint.
func defaultImagePath(p string) (string, error) {
	if p != "" {
		return p, nil
	}
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	return filepath.Join(wd, "checkpoint"), nil
}

// emptyNS reads --empty-ns: namespace names as config.json has them.
func emptyNS(c *cli.Context) (int, error) {
	var flags int
	for _, n := range c.StringSlice("empty-ns") {
		f, ok := namespaceFlags[n]
		if !ok {
			return 0, fmt.Errorf("--empty-ns %q: not a namespace (network, pid, mount, ipc, uts, user, cgroup, time)", n)
		}
		flags |= f
	}
	return flags, nil
}

var namespaceFlags = map[string]int{
	"network": unix.CLONE_NEWNET, "pid": unix.CLONE_NEWPID, "mount": unix.CLONE_NEWNS,
	"ipc": unix.CLONE_NEWIPC, "uts": unix.CLONE_NEWUTS, "user": unix.CLONE_NEWUSER,
	"cgroup": unix.CLONE_NEWCGROUP, "time": unix.CLONE_NEWTIME,
}
