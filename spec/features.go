package spec

import (
	"github.com/containerfd/containerfd/hooks"
	"github.com/containerfd/containerfd/libcontainerfd/caps"
	"github.com/containerfd/containerfd/libcontainerfd/cgroups"
	"github.com/containerfd/containerfd/libcontainerfd/seccomp"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/opencontainers/runtime-spec/specs-go/features"
)

// Features is what this runtime implements (OCI features.md), on this host,
// with the caller's annotations (its version): what `containerfd features`
// prints and the shim tells containerd. It lists only what works: a field
// left out means "not known to work", an explicit false "not supported".
func Features(annotations map[string]string) *features.Features {
	yes, no := true, false
	mode, _ := cgroups.DetectMode()
	v1 := mode == cgroups.V1 || mode == cgroups.Hybrid
	v2 := mode == cgroups.V2 || mode == cgroups.Hybrid
	return &features.Features{
		OCIVersionMin: "1.0.0",
		OCIVersionMax: specs.Version,
		Hooks: []string{string(hooks.Prestart), string(hooks.CreateRuntime), string(hooks.CreateContainer),
			string(hooks.StartContainer), string(hooks.Poststart), string(hooks.Poststop)},
		MountOptions: MountOptions(),
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
		Annotations: annotations,
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
