package bundle

import (
	"errors"
	"fmt"

	cfd "github.com/containerfd/containerfd/libcontainerfd"
)

// CheckpointConfig is the configuration ctr was made from, derived again
// from its bundle: what Checkpoint tells CRIU of its mounts and namespaces.
func CheckpointConfig(ctr *cfd.Container) (*cfd.Config, error) {
	_, cfg, _, err := translate(&Options{ID: ctr.ID(), Bundle: ctr.Labels()[LabelBundle]})
	if err != nil {
		return nil, fmt.Errorf("container %s: bundle: %w", ctr.ID(), err)
	}
	return cfg, nil
}

// Restore makes the container the bundle describes, as Create does, and
// restores into it the processes CRIU dumped (cfd.Restore): the restored
// init runs, and is returned; there is no start. The create and start hooks
// do not run: the processes they were for are restored, not started. On
// error nothing is left behind.
func Restore(o *Options, ro *cfd.RestoreOpts) (*cfd.Container, *cfd.Process, error) {
	_, cfg, proc, err := translate(o)
	if err != nil {
		return nil, nil, err
	}
	ctr, err := cfd.Restore(o.Root, o.ID, cfg, proc, ro)
	if errors.Is(err, cfd.ErrExist) {
		return nil, nil, fmt.Errorf("container %q already exists", o.ID)
	}
	if err != nil {
		return nil, nil, err
	}
	WithNotifyState(ctr)
	return ctr, proc, nil
}
