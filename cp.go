package main

import (
	"errors"
	"fmt"
	"strings"

	cfd "github.com/containerfd/containerfd/libcontainerfd"
	"github.com/urfave/cli/v2"
)

var cpCommand = &cli.Command{
	Name:  "cp",
	Usage: "copy files, directories and symlinks between a running container and the host",
	UsageText: `containerfd cp ID:PATH HOSTPATH
containerfd cp HOSTPATH ID:PATH`,
	Description: `Copy as "docker cp" does. The container's paths are resolved with its root
as /: symlinks and ".." inside the container can never reach a host file. The
last component of the source is not followed (a symlink is copied as a
symlink); directories are copied recursively, with owners (the ids the
container sees), modes and times.

If the destination is an existing directory, the source is copied into it
under its own name (its contents, if the source ends in "/."); otherwise it is
copied to the destination as a new name, replacing a file there. A host path
that contains ":" must start with "/" or "./".`,
	Action: func(c *cli.Context) error {
		if c.NArg() != 2 {
			return fmt.Errorf("cp: want 2 arguments, ID:PATH HOSTPATH or HOSTPATH ID:PATH, got %d", c.NArg())
		}
		src, dst := c.Args().Get(0), c.Args().Get(1)
		srcID, srcPath, srcIn := splitContainerPath(src)
		dstID, dstPath, dstIn := splitContainerPath(dst)
		switch {
		case srcIn && dstIn:
			return errors.New("cp: copying between containers is not supported: one side must be a host path")
		case !srcIn && !dstIn:
			return errors.New("cp: one of the paths must be ID:PATH, a path in a container")
		}
		id := srcID
		if dstIn {
			id = dstID
		}
		ctr, err := cfd.Load(stateRoot(c), id)
		if errors.Is(err, cfd.ErrNotExist) {
			return notExistError(id)
		}
		if err != nil {
			return err
		}
		defer ctr.Close()
		if srcIn {
			return ctr.CopyOut(srcPath, dst)
		}
		return ctr.CopyIn(src, dstPath)
	},
}

// splitContainerPath reads ID:PATH. A path starting with "/" or "." is a
// host path whatever it holds, as for docker cp.
func splitContainerPath(arg string) (id, path string, ok bool) {
	if strings.HasPrefix(arg, "/") || strings.HasPrefix(arg, ".") {
		return "", arg, false
	}
	id, path, ok = strings.Cut(arg, ":")
	if !ok || id == "" {
		return "", arg, false
	}
	return id, path, true
}
