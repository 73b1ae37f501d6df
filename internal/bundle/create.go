// Package bundle is what a runtime does with an OCI bundle over
// libcontainerfd, written once for the two runtimes of this repository: the
// containerfd command line and the containerd shim. It turns a bundle into a
// created container (spec.Load, Validate, Translate, the systemd cgroup, the
// labels a runtime keeps, the create hooks), starts it (startContainer and
// poststart hooks), gives its state as runtime.md has it, and removes it
// (poststop hooks). What differs between the two (flags, stdio, console
// sockets, sd_notify) stays with each caller, through Options' funcs.
package bundle

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	cfd "github.com/containerfd/containerfd/libcontainerfd"
	"github.com/containerfd/containerfd/libcontainerfd/cgroups"
	"github.com/containerfd/containerfd/spec"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Options say how to make a container from a bundle.
type Options struct {
	Root, ID string
	// Bundle is the bundle's directory; relative, it is taken from ours.
	Bundle string
	// Systemd, if set, makes the container's cgroup a systemd unit; it
	// names the caller's option for errors ("--systemd-cgroup").
	Systemd      string
	Rootless     bool
	NoPivot      bool
	NoNewKeyring bool
	EmptyFS      bool
	AlwaysStage  bool
	// KillOnClose kills the container when its holder dies: the process
	// holding the Container, or HolderPid if set.
	KillOnClose bool
	HolderPid   int
	// Watcher, with KillOnClose, is a watcher shared with the caller's
	// other containers (cfd.Config.Watcher).
	Watcher *cfd.Watcher
	// Prepare, if set, gives the process what the caller owns (stdio, a
	// terminal, extra files) once the bundle is translated, before
	// anything is made.
	Prepare func(s *specs.Spec, cfg *cfd.Config, proc *cfd.Process) error
	// Created, if set, runs once the container exists, before its init.
	Created func(ctr *cfd.Container, cfg *cfd.Config, proc *cfd.Process) error
	// Warn, if set, is told what the bundle asks that is not done as asked.
	Warn func(msg string)
}

// Create makes the container the bundle describes, up to init waiting for
// Start, and returns it with init's process. On error nothing is left behind.
func Create(o *Options) (*cfd.Container, *cfd.Process, error) {
	s, cfg, proc, err := translate(o)
	if err != nil {
		return nil, nil, err
	}
	var ctr *cfd.Container
	if h := s.Hooks; h != nil && len(h.Prestart)+len(h.CreateRuntime)+len(h.CreateContainer) > 0 { //nolint:staticcheck // Prestart is deprecated, still run
		cfg.BeforePivot = func(pid int) error {
			return runCreateHooks(ctr, s.Hooks, pid)
		}
	}
	if o.Warn != nil {
		for _, w := range spec.Warnings(s) {
			o.Warn(w)
		}
	}
	ctr, err = cfd.Create(o.Root, o.ID, cfg)
	if errors.Is(err, cfd.ErrExist) {
		return nil, nil, fmt.Errorf("container %q already exists", o.ID)
	}
	if err != nil {
		return nil, nil, err
	}
	fail := func(err error) (*cfd.Container, *cfd.Process, error) {
		if derr := ctr.Destroy(); derr != nil && o.Warn != nil {
			o.Warn(fmt.Sprintf("clean up after failed create: %v", derr))
		}
		return nil, nil, err
	}
	WithNotifyState(ctr)
	if o.Created != nil {
		if err := o.Created(ctr, cfg, proc); err != nil {
			return fail(err)
		}
	}
	if err := ctr.ForkInit(proc); err != nil {
		return fail(err)
	}
	return ctr, proc, nil
}

// systemdCgroup makes the container's cgroup a systemd unit: cgroupsPath is
// "slice:prefix:name" (runc's form; empty is ":containerfd:ID", a scope
// containerfd-ID.scope in system.slice), and the cgroup is where systemd puts
// that unit. Annotations "org.systemd.property.NAME" set more properties of
// the unit, as in runc. option names the caller's option in errors.
func systemdCgroup(cfg *cfd.Config, id string, annotations map[string]string, option string) error {
	path := cfg.Cgroup
	if path == "" {
		path = ":containerfd:" + id
	}
	u, err := cgroups.ParseUnit(path)
	if err != nil {
		return fmt.Errorf("%s: %w", option, err)
	}
	if cfg.Cgroup, err = u.CgroupPath(); err != nil {
		return fmt.Errorf("%s: linux.cgroupsPath %q: %w", option, path, err)
	}
	if u.Properties, err = cgroups.AnnotationProperties(annotations); err != nil {
		return fmt.Errorf("%s: %w", option, err)
	}
	cfg.Systemd = &u
	cfg.SystemdDescription = "containerfd container " + id
	return nil
}

// EnvStart chooses how the container's processes start, for the CLI and
// the shim alike: "stage" starts every one through the Go stage
// (cfd.Config.AlwaysStage), for tests and comparisons; unset, the library
// starts them directly where it can.
const EnvStart = "CONTAINERFD_START"

// AlwaysStage reads EnvStart.
func AlwaysStage() (bool, error) {
	switch v := os.Getenv(EnvStart); v {
	case "":
		return false, nil
	case "stage":
		return true, nil
	default:
		return false, fmt.Errorf("%s=%q: want stage, or unset", EnvStart, v)
	}
}

// translate turns the bundle into what the library takes, with the
// options applied and the caller's Prepare run.
func translate(o *Options) (*specs.Spec, *cfd.Config, *cfd.Process, error) {
	bundle, err := filepath.Abs(o.Bundle)
	if err != nil {
		return nil, nil, nil, err
	}
	s, err := spec.Load(bundle)
	if err != nil {
		return nil, nil, nil, err
	}
	if err := spec.Validate(s, bundle); err != nil {
		return nil, nil, nil, err
	}
	cfg, proc, err := spec.Translate(s, bundle)
	if err != nil {
		return nil, nil, nil, err
	}
	cfg.Rootless = o.Rootless
	if o.Systemd != "" && cfg.Rootless {
		return nil, nil, nil, fmt.Errorf("%s: a rootless container would need a systemd user manager, which is not supported yet; without the flag it uses a delegated cgroup2 subtree, or none", o.Systemd)
	}
	if o.Systemd != "" {
		if err := systemdCgroup(cfg, o.ID, s.Annotations, o.Systemd); err != nil {
			return nil, nil, nil, err
		}
	} else if cfg.Cgroup == "" {
		cfg.Cgroup = o.ID // runc's default: relative, under our own cgroup
	}
	cfg.NoPivot = cfg.NoPivot || o.NoPivot
	cfg.NoNewKeyring = o.NoNewKeyring
	if o.KillOnClose {
		cfg.Flags |= cfd.KillOnClose
		cfg.HolderPid = o.HolderPid
		cfg.Watcher = o.Watcher
	}
	cfg.EmptyRoot = o.EmptyFS
	cfg.AlwaysStage = o.AlwaysStage
	if cfg.Labels, err = labelsFor(s, bundle, cfg.Rootfs); err != nil {
		return nil, nil, nil, err
	}
	if o.Prepare != nil {
		if err := o.Prepare(s, cfg, proc); err != nil {
			return nil, nil, nil, err
		}
	}
	return s, cfg, proc, nil
}
