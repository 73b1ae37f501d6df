//go:build containerfd_nocriu

package libcontainerfd

import "fmt"

// Checkpoint, in a build without CRIU support, returns ErrNoCRIU.
func (c *Container) Checkpoint(o *CheckpointOpts) error {
	return fmt.Errorf("container %s: checkpoint: %w", c.id, ErrNoCRIU)
}

// Restore, in a build without CRIU support, returns ErrNoCRIU and makes
// nothing.
func Restore(root, id string, cfg *Config, p *Process, o *RestoreOpts) (*Container, error) {
	return nil, fmt.Errorf("container %s: restore: %w", id, ErrNoCRIU)
}
