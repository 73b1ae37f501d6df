package main

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/containerfd/containerfd/internal/bundle"
	cfd "github.com/containerfd/containerfd/libcontainerfd"
	"github.com/urfave/cli/v2"
	"golang.org/x/sys/unix"
)

// stateRoot is --root, or defaultRoot.
func stateRoot(c *cli.Context) string {
	if r := c.String("root"); r != "" {
		return r
	}
	return defaultRoot()
}

// containerID is the first argument, which every container command needs.
func containerID(c *cli.Context) (string, error) {
	id := c.Args().First()
	if id == "" {
		return "", fmt.Errorf("%s: container id cannot be empty", c.Command.Name)
	}
	return id, nil
}

// argsBetween is the Before of a command that takes from min to max
// arguments, as runc counts them: a word too many (a flag misspelt, or one
// runc does not know) fails rather than being ignored.
func argsBetween(min, max int) cli.BeforeFunc {
	return func(c *cli.Context) error {
		switch n := c.Args().Len(); {
		case min == max && n != min:
			return fmt.Errorf("%q requires exactly %d argument(s)", c.Command.Name, min)
		case n < min:
			return fmt.Errorf("%q requires a minimum of %d argument(s)", c.Command.Name, min)
		case n > max:
			return fmt.Errorf("%q requires a maximum of %d argument(s)", c.Command.Name, max)
		}
		return nil
	}
}

// load gets a container saved by create, with the message podman and
// containerd match on for a missing one.
func load(c *cli.Context) (*cfd.Container, error) {
	id, err := containerID(c)
	if err != nil {
		return nil, err
	}
	ctr, err := cfd.Load(stateRoot(c), id)
	if errors.Is(err, cfd.ErrNotExist) {
		return nil, notExistError(id)
	}
	return ctr, err
}

// onContainer is the Action of a command on one existing container: it
// loads the container the first argument names, runs f and closes it.
func onContainer(f func(c *cli.Context, ctr *cfd.Container) error) cli.ActionFunc {
	return func(c *cli.Context) error {
		ctr, err := load(c)
		if err != nil {
			return err
		}
		defer ctr.Close()
		bundle.WithNotifyState(ctr)
		return f(c, ctr)
	}
}

// notExistError words a missing container as podman and containerd match it.
type notExistError string

func (e notExistError) Error() string { return fmt.Sprintf("container %q does not exist", string(e)) }
func (e notExistError) Unwrap() error { return cfd.ErrNotExist }

// writePidFile writes pid as a bare integer without a newline (containerd
// and conmon parse it so), atomically.
func writePidFile(path string, pid int) error {
	if path == "" {
		return nil
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(strconv.Itoa(pid)), 0o644); err != nil {
		return fmt.Errorf("write pid file: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write pid file: %w", err)
	}
	return nil
}

// parseSignal takes "KILL", "SIGKILL", "kill", "9" or "0".
func parseSignal(s string) (unix.Signal, error) {
	if n, err := strconv.Atoi(s); err == nil {
		// 0, as runc takes it: init is only checked for.
		if n < 0 || n > 64 {
			return 0, fmt.Errorf("invalid signal %q", s)
		}
		return unix.Signal(n), nil
	}
	name := strings.ToUpper(s)
	if !strings.HasPrefix(name, "SIG") {
		name = "SIG" + name
	}
	if sig := unix.SignalNum(name); sig != 0 {
		return sig, nil
	}
	return 0, fmt.Errorf("invalid signal %q", s)
}
