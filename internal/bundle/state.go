package bundle

import (
	"encoding/json"
	"fmt"
	"os"
	"os/user"
	"strconv"
	"time"

	cfd "github.com/containerfd/containerfd/libcontainerfd"
	"github.com/containerfd/containerfd/spec"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Labels a runtime keeps with each container (libcontainerfd.Config.Labels).
const (
	LabelBundle      = "bundle"
	LabelRootfs      = "rootfs"
	LabelAnnotations = "annotations" // JSON object
	LabelHooks       = "hooks"       // JSON specs.Hooks
	LabelOwner       = "owner"
)

func labelsFor(s *specs.Spec, bundle, rootfs string) (map[string]string, error) {
	labels := map[string]string{LabelBundle: bundle, LabelRootfs: rootfs, LabelOwner: ownerName()}
	if len(s.Annotations) > 0 {
		b, err := json.Marshal(s.Annotations)
		if err != nil {
			return nil, err
		}
		labels[LabelAnnotations] = string(b)
	}
	if s.Hooks != nil {
		b, err := json.Marshal(s.Hooks)
		if err != nil {
			return nil, err
		}
		labels[LabelHooks] = string(b)
	}
	return labels, nil
}

func ownerName() string {
	if u, err := user.LookupId(strconv.Itoa(os.Getuid())); err == nil {
		return u.Username
	}
	return "#" + strconv.Itoa(os.Getuid())
}

// State is a container's state as `state` prints it: runtime.md's state
// plus runc's rootfs, created and owner.
type State struct {
	specs.State
	Rootfs  string    `json:"rootfs"`
	Created time.Time `json:"created"`
	Owner   string    `json:"owner"`
}

// StateOf reads ctr's state, checked against the kernel.
func StateOf(ctr *cfd.Container) (*State, error) {
	st, err := ctr.Status()
	if err != nil {
		return nil, err
	}
	labels := ctr.Labels()
	s := &State{
		State: specs.State{
			Version: specs.Version,
			ID:      ctr.ID(),
			Status:  specs.ContainerState(st),
			Bundle:  labels[LabelBundle],
		},
		Rootfs:  labels[LabelRootfs],
		Created: ctr.Created(),
		Owner:   labels[LabelOwner],
	}
	if st != cfd.Stopped && st != cfd.Creating {
		s.Pid = ctr.InitPid()
	}
	if a := labels[LabelAnnotations]; a != "" {
		if err := json.Unmarshal([]byte(a), &s.Annotations); err != nil {
			return nil, fmt.Errorf("container %s: saved annotations: %w", ctr.ID(), err)
		}
	}
	return s, nil
}

// WithNotifyState makes the state a seccomp listener gets the full one.
func WithNotifyState(ctr *cfd.Container) {
	ctr.NotifyState = func() specs.State {
		s, err := StateOf(ctr)
		if err != nil {
			return specs.State{Version: specs.Version, ID: ctr.ID()}
		}
		return s.State
	}
}

// Process is the process of the container's own config.json (nil if it has
// none), the base of what exec runs.
func Process(ctr *cfd.Container) (*specs.Process, error) {
	return spec.LoadProcess(ctr.Labels()[LabelBundle])
}

func savedHooks(ctr *cfd.Container) (*specs.Hooks, error) {
	h := ctr.Labels()[LabelHooks]
	if h == "" {
		return nil, nil
	}
	var hooks specs.Hooks
	if err := json.Unmarshal([]byte(h), &hooks); err != nil {
		return nil, fmt.Errorf("container %s: saved hooks: %w", ctr.ID(), err)
	}
	return &hooks, nil
}

// HostRoot is who the container's root is on the host: ourselves, unless
// a user namespace maps it to another. The stdio a runtime gives the
// process is owned by it, as runc's.
func HostRoot(cfg *cfd.Config) (uid, gid int) {
	uid, gid = os.Geteuid(), os.Getegid()
	if u, ok := cfg.UIDMappings.ToHost(0); ok {
		uid = int(u)
	}
	if g, ok := cfg.GIDMappings.ToHost(0); ok {
		gid = int(g)
	}
	return uid, gid
}
