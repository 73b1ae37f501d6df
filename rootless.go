package main

import (
	"os"
	"path/filepath"
	"strings"

	cfd "github.com/containerfd/containerfd/libcontainerfd"
	"github.com/containerfd/containerfd/libcontainerfd/idmap"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/urfave/cli/v2"
)

// defaultRoot is where state goes without --root: /run/containerfd for
// root, $XDG_RUNTIME_DIR/containerfd for anyone else, since only root may
// write to /run. Root of a user namespace of its own (rootless podman calls
// the runtime so, without --root) counts as anyone else unless $USER says
// root: runc's rule.
func defaultRoot() string {
	xdg := os.Getenv("XDG_RUNTIME_DIR")
	if xdg != "" && (os.Geteuid() != 0 || (idmap.InUserNS() && os.Getenv("USER") != "root")) {
		return filepath.Join(xdg, "containerfd")
	}
	return "/run/containerfd"
}

// rootless says whether containers are made without privilege (--rootless
// true|false|auto; auto: when not root, or root of a user namespace that is
// not the initial one, as rootless podman runs the runtime).
func rootless(c *cli.Context) bool {
	switch c.String("rootless") {
	case "true":
		return true
	case "false":
		return false
	}
	return os.Geteuid() != 0 || idmap.InUserNS()
}

// warnRootless says once, at create, what a rootless container goes
// without.
func warnRootless(ctr *cfd.Container, s *specs.Spec) {
	if err := ctr.CgroupSkipped(); err != nil {
		logs.Warn("rootless: the container has no cgroup, so no cgroup limits, and pause, update and stats are refused: %v", err)
	}
	if s.Linux != nil && len(s.Linux.Devices) > 0 {
		var paths []string
		for _, d := range s.Linux.Devices {
			paths = append(paths, d.Path)
		}
		logs.Warn("rootless: linux.devices: mknod needs CAP_MKNOD in the initial user namespace; the host's %s bound instead", strings.Join(paths, ", "))
	}
}
