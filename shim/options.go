package shim

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/containerd/containerd/api/types/runc/options"
	runtimeoptions "github.com/containerd/containerd/api/types/runtimeoptions/v1"
	"github.com/containerd/typeurl/v2"
	"github.com/pelletier/go-toml/v2"
	"google.golang.org/protobuf/types/known/anypb"
)

// DefaultRoot is where containers' state goes without a Root option; the
// shim adds the containerd namespace, as runc's does.
const DefaultRoot = "/run/containerd/containerfd"

// Options are the runtime options the shim honours: runc's own names, so
// that a configuration written for runc's shim reads the same.
//
// containerd hands runc's options.Options only to runc's runtime type; any
// other type gets runtimeoptions.Options, whose ConfigPath names a TOML file:
// there the shim reads these same keys. BinaryName, ShimCgroup and the CRIU
// paths are runc's and ignored: no runtime binary is run, and checkpoints
// are not supported.
type Options struct {
	Root          string `toml:"Root" json:"root,omitempty"`
	SystemdCgroup bool   `toml:"SystemdCgroup" json:"systemd_cgroup,omitempty"`
	NoPivotRoot   bool   `toml:"NoPivotRoot" json:"no_pivot_root,omitempty"`
	NoNewKeyring  bool   `toml:"NoNewKeyring" json:"no_new_keyring,omitempty"`
	IoUID         uint32 `toml:"IoUid" json:"io_uid,omitempty"`
	IoGID         uint32 `toml:"IoGid" json:"io_gid,omitempty"`
}

// readOptions decodes a task's runtime options: runc's, a ConfigPath, or
// none.
func readOptions(a *anypb.Any) (*Options, error) {
	o := &Options{}
	if a.GetValue() == nil {
		return o, nil
	}
	v, err := typeurl.UnmarshalAny(a)
	if err != nil {
		return nil, fmt.Errorf("runtime options %s: %w", a.GetTypeUrl(), err)
	}
	switch v := v.(type) {
	case *options.Options:
		*o = Options{Root: v.Root, SystemdCgroup: v.SystemdCgroup, NoPivotRoot: v.NoPivotRoot,
			NoNewKeyring: v.NoNewKeyring, IoUID: v.IoUid, IoGID: v.IoGid}
	case *runtimeoptions.Options:
		if v.ConfigPath == "" {
			return o, nil
		}
		b, err := os.ReadFile(v.ConfigPath)
		if err != nil {
			return nil, fmt.Errorf("runtime options: ConfigPath: %w", err)
		}
		d := toml.NewDecoder(bytes.NewReader(b))
		d.DisallowUnknownFields()
		if err := d.Decode(o); err != nil {
			return nil, fmt.Errorf("runtime options: ConfigPath %s: %w", v.ConfigPath, err)
		}
	default:
		return nil, fmt.Errorf("runtime options: %s is neither runc's options nor a ConfigPath", a.GetTypeUrl())
	}
	return o, nil
}

// root is the state root of the containers of namespace ns.
func (o *Options) root(ns string) string {
	r := o.Root
	if r == "" {
		r = DefaultRoot
	}
	return filepath.Join(r, ns)
}

// The options are kept in the bundle for the shim's delete command, which
// containerd runs after the shim died (runc's shim keeps options.json so).
const optionsFile = "options.json"

func writeOptions(bundle string, o *Options) error {
	b, err := json.Marshal(o)
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(bundle, optionsFile), b, 0o600)
}

func loadOptions(bundle string) (*Options, error) {
	o := &Options{}
	b, err := os.ReadFile(filepath.Join(bundle, optionsFile))
	if os.IsNotExist(err) {
		return o, nil
	}
	if err != nil {
		return nil, err
	}
	return o, json.Unmarshal(b, o)
}
