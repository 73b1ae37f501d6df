package main

import (
	"fmt"

	cfd "github.com/containerfd/containerfd/libcontainerfd"
	"github.com/urfave/cli/v2"
	"golang.org/x/sys/unix"
)

var waitCommand = &cli.Command{
	Name:      "wait",
	Usage:     "wait until the last process of a container is gone, and tell init's exit status",
	UsageText: "containerfd wait ID",
	Description: `wait returns once the container's cgroup is empty: not only init, but
every process the container started. It works from any process, not only
the one that started the container. Where the kernel tells init's exit
status (Linux 6.15 and newer, once init's parent has reaped it), wait prints
"exit status N" or "signal N (NAME)" and exits with N, or 128+N for a
signal, as a shell does; where it cannot, it prints "stopped" and exits 0.`,
	Action: onContainer(func(c *cli.Context, ctr *cfd.Container) error {
		ws, ok, err := ctr.WaitStatus()
		if err != nil {
			return err
		}
		switch {
		case !ok:
			fmt.Println("stopped")
			return nil
		case ws.Signaled():
			fmt.Printf("signal %d (%s)\n", int(ws.Signal()), unix.SignalName(ws.Signal()))
		default:
			fmt.Printf("exit status %d\n", ws.ExitStatus())
		}
		if code := cfd.ExitCode(ws); code != 0 {
			return cli.Exit("", code)
		}
		return nil
	}),
}
