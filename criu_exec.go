//go:build containerfd_nocriu

package main

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"

	cfd "github.com/containerfd/containerfd/libcontainerfd"
	"github.com/urfave/cli/v2"
	"golang.org/x/sys/unix"
)

// bin/containerfd is built without CRIU's RPC types, whose protobuf runtime
// every command would pay for at start (docs/checkpoint.md): checkpoint and
// restore are bin/containerfd-criu's, the same commands built with them.

// criuHelper is that binary, found beside this one (make install puts it
// there).
const criuHelper = "containerfd-criu"

var checkpointAction, restoreAction cli.ActionFunc = execCRIU, execCRIU

// execCRIU becomes containerfd-criu with our argv and environment: the pid,
// stdio, signals and exit status stay the caller's, and a foreground
// restore waits in this process as run does.
func execCRIU(c *cli.Context) error {
	p, err := criuHelperPath()
	if err != nil {
		return err
	}
	err = syscall.Exec(p, os.Args, os.Environ())
	return fmt.Errorf("%s: %w", c.Command.Name, missingHelper(p, err))
}

func criuHelperPath() (string, error) {
	exe, err := os.Executable()
	if err != nil {
		return "", fmt.Errorf("%s: %w", criuHelper, err)
	}
	return filepath.Join(filepath.Dir(exe), criuHelper), nil
}

func missingHelper(p string, err error) error {
	return fmt.Errorf("%s: %w (it does checkpoint and restore; make install puts it beside containerfd)", p, err)
}

// criuStatus is features' word on CRIU: its version, or why it is unusable
// here, containerfd-criu missing included.
func criuStatus() (string, error) {
	p, err := criuHelperPath()
	if err != nil {
		return "", err
	}
	if err := unix.Access(p, unix.X_OK); err != nil {
		return "", missingHelper(p, err)
	}
	return cfd.CRIUStatus()
}
