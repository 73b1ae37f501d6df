package bundle

import (
	"errors"
	"fmt"

	"github.com/containerfd/containerfd/internal/stopat"
	cfd "github.com/containerfd/containerfd/libcontainerfd"
	"golang.org/x/sys/unix"
)

// Start runs the startContainer hooks, lets init exec and runs the
// poststart hooks; a poststart failure fails the container (spec 1.3).
// beforeExec, if set, runs between the hooks and init's exec (the CLI
// binds the container's sd_notify socket there, so that no message is
// lost).
func Start(ctr *cfd.Container, beforeExec func() error) error {
	st, err := ctr.Status()
	if err != nil {
		return err
	}
	if st != cfd.Created {
		return fmt.Errorf("cannot start a container that is %s", st)
	}
	if err := runStartHooks(ctr); err != nil {
		return err
	}
	if beforeExec != nil {
		if err := beforeExec(); err != nil {
			return err
		}
	}
	if err := ctr.Start(); err != nil {
		return err
	}
	if err := runPoststartHooks(ctr); err != nil {
		ctr.KillAll()
		return err
	}
	return nil
}

// Destroy kills what is left of the container, runs its poststop hooks
// (whose failures only go to warn) and removes it.
func Destroy(ctr *cfd.Container, poststop bool, warn func(error)) error {
	if err := ctr.KillAll(); err != nil {
		warn(err)
	}
	if err := ctr.Wait(); err != nil {
		warn(err)
	}
	stopat.Point("delete:killed")
	if poststop {
		if err := runPoststopHooks(ctr); err != nil {
			warn(err)
		}
	}
	return ctr.Destroy()
}

// SignalAll sends sig to every process of the container, each by pidfd so
// a pid reused in between is never hit.
func SignalAll(ctr *cfd.Container, sig unix.Signal) error {
	pids, err := ctr.Pids()
	if err != nil {
		return err
	}
	var errs []error
	for _, pid := range pids {
		fd, err := unix.PidfdOpen(pid, 0)
		if err != nil {
			continue // gone
		}
		if err := unix.PidfdSendSignal(fd, sig, nil, 0); err != nil && err != unix.ESRCH {
			errs = append(errs, fmt.Errorf("signal %d: %w", pid, err))
		}
		unix.Close(fd)
	}
	return errors.Join(errs...)
}
