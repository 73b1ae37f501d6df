package main

import (
	"fmt"
	"net"
	"os"
	"os/signal"

	"github.com/containerfd/containerfd/internal/bundle"
	cfd "github.com/containerfd/containerfd/libcontainerfd"
	"github.com/urfave/cli/v2"
	"golang.org/x/sys/unix"
)

var startCommand = &cli.Command{
	Name:      "start",
	Usage:     "run the process of a created container",
	ArgsUsage: "<container-id>",
	Action: onContainer(func(c *cli.Context, ctr *cfd.Container) error {
		notify, err := start(ctr)
		if err != nil || notify == nil {
			return err
		}
		return forwardReady(ctr, notify)
	}),
}

// start runs the container's process (bundle.Start). With NOTIFY_SOCKET it
// returns the container's notify socket, for the caller to wait on READY=1.
func start(ctr *cfd.Container) (*net.UnixConn, error) {
	var notify *net.UnixConn
	err := bundle.Start(ctr, func() (err error) {
		notify, err = listenNotify(ctr)
		return err
	})
	if err != nil && notify != nil {
		notify.Close()
		notify = nil
	}
	if err == nil {
		logs.Debugf("%s: started", ctr.ID())
	}
	return notify, err
}

var runCommand = &cli.Command{
	Name:      "run",
	Usage:     "create and start a container, and wait for it unless --detach",
	ArgsUsage: "<container-id>",
	Flags: append(createFlags[:len(createFlags):len(createFlags)],
		&cli.BoolFlag{Name: "detach", Aliases: []string{"d"}, Usage: "detach from the container's process"},
		&cli.BoolFlag{Name: "keep", Usage: "do not delete the container after it exits"},
		&cli.BoolFlag{Name: "no-subreaper", Usage: "accepted for runc compatibility; containerfd never becomes a subreaper"},
	),
	Action: func(c *cli.Context) error {
		var sigs chan os.Signal
		if !c.Bool("detach") {
			sigs = catchSignals()
		}
		var pipes *stdioPipes
		if !c.Bool("detach") {
			pipes = &stdioPipes{}
		}
		ctr, proc, err := create(c, pipes)
		if err != nil {
			return err
		}
		defer ctr.Close()
		stopProxy := func() {}
		if proc.Console != nil {
			if stopProxy, err = proxyConsole(proc.Console); err != nil {
				ctr.KillAll()
				proc.Wait()
				destroy(ctr, true)
				return err
			}
		}
		notify, err := start(ctr)
		if err != nil {
			ctr.KillAll()
			proc.Wait()
			stopProxy()
			destroy(ctr, true)
			if !c.Bool("detach") {
				return execFailure(err)
			}
			return err
		}
		if c.Bool("detach") {
			if notify != nil {
				return forwardReady(ctr, notify)
			}
			return nil
		}
		if notify != nil {
			go func() {
				if err := forwardReady(ctr, notify); err != nil {
					logs.Warn("%v", err)
				}
			}()
		}
		code, err := waitForeground(proc, sigs)
		stopProxy()
		if err != nil {
			return err
		}
		if !c.Bool("keep") {
			if err := destroy(ctr, true); err != nil {
				logs.Error(err)
			}
		}
		pipes.wait()
		return cli.Exit("", code)
	},
}

// execFailure is err, unless it is the program of a process run in the
// foreground failing to execute: then, as with runc, whose init prints it on
// the process's stderr, the reason alone goes to stderr and the command exits
// 255, as that process would; a --log file still gets the whole error.
func execFailure(err error) error {
	reason, ok := cfd.ExecFailed(err)
	if !ok {
		return err
	}
	if logs.w != os.Stderr {
		logs.write("error", err.Error())
	}
	fmt.Fprintln(os.Stderr, reason)
	return cli.Exit("", 255)
}

// catchSignals catches every signal from now on, as runc does, for
// waitForeground to pass on: one that comes while the container is made
// reaches it once it runs, and one that comes while it is torn down does not
// cut that short. signal.Notify hands the 65 signals to the runtime's signal
// thread one at a time (~1 ms in all): it runs beside create.
func catchSignals() chan os.Signal {
	sigs := make(chan os.Signal, 16)
	go signal.Notify(sigs)
	return sigs
}

// waitForeground passes the signals caught on sigs to the process and
// returns its exit code, as a shell would (128+N for a signal). The signals
// stay caught until we exit (signal.Stop would cost another ~1 ms).
func waitForeground(proc *cfd.Process, sigs chan os.Signal) (int, error) {
	// A pidfd of our own, open until we exit: Wait closes proc's while
	// signals may still come.
	pidfd, err := unix.FcntlInt(uintptr(proc.Pidfd), unix.F_DUPFD_CLOEXEC, 3)
	if err != nil {
		return 0, fmt.Errorf("wait for process %d: %w", proc.Pid, err)
	}
	go func() {
		for s := range sigs {
			sig, ok := s.(unix.Signal)
			if !ok || sig == unix.SIGCHLD || sig == unix.SIGWINCH || sig == unix.SIGURG {
				continue
			}
			unix.PidfdSendSignal(pidfd, sig, nil, 0)
		}
	}()
	ws, err := proc.Wait()
	if err != nil {
		return 0, err
	}
	return cfd.ExitCode(ws), nil
}
