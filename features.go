package main

import (
	"github.com/containerfd/containerfd/hooks"
	"github.com/containerfd/containerfd/libcontainerfd/caps"
	"github.com/containerfd/containerfd/libcontainerfd/cgroups"
	"github.com/containerfd/containerfd/libcontainerfd/seccomp"
	"github.com/containerfd/containerfd/spec"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/opencontainers/runtime-spec/specs-go/features"
	"github.com/urfave/cli/v2"
)

var featuresCommand = &cli.Command{
	Name:  "features",
	Usage: "print what this runtime implements, as JSON (OCI features.md)",
	Action: func(c *cli.Context) error {
		return printJSON(featureSet())
	},
}

// featureSet lists only what works: a field left out means "not known to
// work", an explicit false means "not supported".
func featureSet() *features.Features {
	yes, no := true, false
	mode, _ := cgroups.DetectMode()
	v1 := mode == cgroups.V1 || mode == cgroups.Hybrid
	v2 := mode == cgroups.V2 || mode == cgroups.Hybrid
	return &features.Features{
		OCIVersionMin: "1.0.0",
		OCIVersionMax: specs.Version,
		Hooks: []string{string(hooks.Prestart), string(hooks.CreateRuntime), string(hooks.CreateContainer),
			string(hooks.StartContainer), string(hooks.Poststart), string(hooks.Poststop)},
		MountOptions: spec.MountOptions(),
		Linux: &features.Linux{
			Namespaces:   []string{"cgroup", "ipc", "mount", "network", "pid", "time", "user", "uts"},
			Capabilities: knownCaps(),
			Cgroup:       &features.Cgroup{V1: &v1, V2: &v2, Systemd: &yes, SystemdUser: &no, Rdma: &yes},
			Seccomp:      seccomp.Features(),
			Apparmor:     &features.Apparmor{Enabled: &yes},
			Selinux:      &features.Selinux{Enabled: &yes},
			IntelRdt:     &features.IntelRdt{Enabled: &yes, Schemata: &yes, Monitoring: &yes},
			MountExtensions: &features.MountExtensions{
				IDMap: &features.IDMap{Enabled: &yes},
			},
			NetDevices: &features.NetDevices{Enabled: &yes},
		},
		Annotations: map[string]string{
			"io.github.containerfd.version": version,
			"io.github.containerfd.commit":  commit,
		},
	}
}

// knownCaps lists the capabilities both we and the running kernel know.
func knownCaps() []string {
	names, err := caps.Known()
	if err != nil {
		return nil
	}
	return names
}
