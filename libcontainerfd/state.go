package libcontainerfd

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/containerfd/containerfd/libcontainerfd/internal/msg"

	"github.com/containerfd/containerfd/libcontainerfd/cgroups"
	"github.com/containerfd/containerfd/libcontainerfd/internal/procid"
	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

const stateFile = "state.json"

// state is what a container keeps in <root>/<id>/state.json between
// processes.
type state struct {
	ID      string    `json:"id"`
	Created time.Time `json:"created"`
	Flags   Flags     `json:"flags"`
	// Namespaces holds the CLONE_NEW* flags of every namespace the
	// container does not share with the runtime (new or joined).
	Namespaces int `json:"namespaces"`
	// SharedPidNS: the container has no pid namespace of its own (it
	// shares the runtime's or joined another), so its init is not the
	// namespace's init and takes no process with it when killed.
	SharedPidNS bool      `json:"sharedPidns,omitempty"`
	Init        procid.ID `json:"init"`
	Started     bool      `json:"started,omitempty"`
	// DirectInit: init is our forked child, not the init stage; it takes
	// on the process itself when started (startDirectInit).
	DirectInit bool `json:"directInit,omitempty"`
	// AlwaysStage: no process starts directly (Config.AlwaysStage).
	AlwaysStage bool `json:"alwaysStage,omitempty"`
	// InitStep is what a direct init's failed step is worded with at
	// start: init reports only the step and the errno.
	InitStep *msg.StepWords `json:"initStep,omitempty"`
	Cgroup   cgroups.Paths  `json:"cgroup"`
	// CgroupExisted lists the directories of Cgroup that were there before
	// the container (a caller made them, as runc lets it): delete leaves
	// them. Known before they are used, so that delete never takes them
	// for ours whatever stopped create.
	CgroupExisted []string `json:"cgroupExisted,omitempty"`
	// SystemdUnit names the container's systemd unit, with the systemd
	// cgroup driver: recorded before the unit is started, so that delete
	// stops it whatever stopped create.
	SystemdUnit string `json:"systemdUnit,omitempty"`
	// Rootless: made by a caller without privilege (Config.Rootless);
	// NoCgroup: it has no cgroup at all.
	Rootless      bool   `json:"rootless,omitempty"`
	NoCgroup      bool   `json:"noCgroup,omitempty"`
	Keyring       string `json:"keyring,omitempty"`
	KeyringSerial int    `json:"keyringSerial,omitempty"`
	// KeyHandler: the keyring is (or is about to be) in keyreq's table.
	KeyHandler string            `json:"keyHandler,omitempty"`
	Labels     map[string]string `json:"labels,omitempty"`
	// Seccomp is the profile for every process of the container.
	Seccomp *specs.LinuxSeccomp `json:"seccomp,omitempty"`
	// Personality applies to every process of the container too.
	Personality  *uint         `json:"personality,omitempty"`
	MemoryPolicy *MemoryPolicy `json:"memoryPolicy,omitempty"`
	// Rdt is the container's resctrl groups (Config.IntelRdt).
	Rdt *rdtState `json:"intelRdt,omitempty"`
	// HostRoot is the tree of a container without a mount namespace of
	// its own, attached in the runtime's (hostroot.go).
	HostRoot *hostRoot `json:"hostRoot,omitempty"`
	// RegistryEntry is the container's entry in the host-wide list
	// (register.go), named before it is written.
	RegistryEntry string `json:"registry,omitempty"`
}

// Save writes the container's state atomically: to a temporary file, then
// renamed over state.json. It does not fsync: the state describes processes,
// and a crash that could lose the write ends them too (runc and crun do not
// either); on a disk-backed root each fsync cost 0.5-4 ms of every command.
func (c *Container) Save() error {
	b, err := json.Marshal(&c.st)
	if err != nil {
		return fmt.Errorf("container %s: encode state: %w", c.id, err)
	}
	f, err := os.CreateTemp(c.dir, ".state-*")
	if err != nil {
		return fmt.Errorf("container %s: save state: %w", c.id, err)
	}
	defer os.Remove(f.Name())
	_, err = f.Write(b)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), filepath.Join(c.dir, stateFile))
	}
	if err != nil {
		return fmt.Errorf("container %s: save state: %w", c.id, err)
	}
	return nil
}

// Load gets back the container id saved under root by an earlier process.
// Init is checked to be the same process, not one that reused its pid: if it
// is gone the container is Stopped.
func Load(root, id string) (*Container, error) {
	if err := validID(id); err != nil {
		return nil, err
	}
	c := &Container{id: id, dir: filepath.Join(root, id), initPidfd: -1, lockFD: -1, holdFD: -1}
	b, err := os.ReadFile(filepath.Join(c.dir, stateFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("container %q: %w", id, ErrNotExist)
	}
	if err != nil {
		return nil, fmt.Errorf("container %s: read state: %w", id, err)
	}
	if err := json.Unmarshal(b, &c.st); err != nil {
		return nil, fmt.Errorf("container %s: parse %s: %w", id, stateFile, err)
	}
	// A create or delete stopped halfway may have left no cgroup: the
	// container can still be looked at and destroyed.
	if err := c.openCgroup(); err != nil {
		return nil, fmt.Errorf("container %s: open cgroup: %w", id, err)
	}
	if c.st.Init.Pid != 0 {
		pidfd, err := procid.Open(c.st.Init)
		switch {
		case err == nil:
			c.initPidfd = pidfd
		case errors.Is(err, unix.ESRCH), errors.Is(err, procid.ErrReused), errors.Is(err, os.ErrNotExist):
			// Stopped.
		default:
			c.Close()
			return nil, fmt.Errorf("container %s: find init: %w", id, err)
		}
	}
	return c, nil
}

// List returns the ids of the containers saved under root.
func List(root string) ([]string, error) {
	ents, err := os.ReadDir(root)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list containers: %w", err)
	}
	var ids []string
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), ".") {
			continue // a create in progress (or stopped before it finished)
		}
		if _, err := os.Stat(filepath.Join(root, e.Name(), stateFile)); err == nil {
			ids = append(ids, e.Name())
		}
	}
	return ids, nil
}
