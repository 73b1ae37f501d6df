package libcontainerfd

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/containerfd/containerfd/libcontainerfd/internal/procid"
	"github.com/containerfd/containerfd/libcontainerfd/registry"
	"golang.org/x/sys/unix"
)

// The host-wide list (package registry): Create names the container's entry
// in its state before the state directory exists, writes it once the
// directory is there, ForkInit adds init and the holder, and destroy
// removes it, so that whatever stops a command, delete finds it.

// entryPath returns the path of the registry entry of the container id
// under root, "" where the caller has no registry.
func entryPath(root, id string) (string, error) {
	dir := registry.Dir()
	if dir == "" {
		return "", nil
	}
	abs, err := filepath.Abs(root)
	if err != nil {
		return "", fmt.Errorf("container %s: state root: %w", id, err)
	}
	return filepath.Join(dir, registry.Name(abs, id)), nil
}

// entry is what the registry keeps of c; holder is the KillOnClose
// holder's identity, if any.
func (c *Container) entry(holder procid.ID) *registry.Entry {
	dir, _ := filepath.Abs(c.dir)
	return &registry.Entry{
		ID: c.id, Root: filepath.Dir(dir), Dir: dir, Owner: os.Geteuid(), Created: c.st.Created,
		Cgroup: c.st.Cgroup, CgroupExisted: c.st.CgroupExisted, SystemdUnit: c.st.SystemdUnit,
		Namespaces: c.st.Namespaces, SharedPidNS: c.st.SharedPidNS,
		Init: c.st.Init, Holder: holder,
	}
}

// register writes c's entry at create. An entry of an earlier container of
// the same root and id whose init still runs (its state directory was
// removed under it) is not replaced: delete --force removes that one
// first.
func (c *Container) register() error {
	path := c.st.RegistryEntry
	if path == "" {
		return nil
	}
	if old, err := registry.Read(path); err == nil && !old.Created.Equal(c.st.Created) && old.Init.Pid != 0 {
		if fd, err := procid.Open(old.Init); err == nil {
			unix.Close(fd)
			return fmt.Errorf("container %q: %w: an earlier one of that id under %s lost its state directory and its init (pid %d) still runs: delete --force it", c.id, ErrExist, old.Root, old.Init.Pid)
		}
	}
	return c.writeEntry(procid.ID{})
}

func (c *Container) writeEntry(holder procid.ID) error {
	if c.st.RegistryEntry == "" {
		return nil
	}
	if err := registry.Write(filepath.Dir(c.st.RegistryEntry), c.entry(holder)); err != nil {
		return fmt.Errorf("container %s: %w", c.id, err)
	}
	return nil
}

// registerInit adds init, and the holder of a KillOnClose container, to
// c's entry once ForkInit has started init.
func (c *Container) registerInit() error {
	var holder procid.ID
	if c.cfg.Flags&KillOnClose != 0 {
		pid := c.cfg.HolderPid
		if pid == 0 {
			pid = os.Getpid()
		}
		pidfd, err := unix.PidfdOpen(pid, 0)
		if err != nil {
			return fmt.Errorf("container %s: holder %d: %w", c.id, pid, err)
		}
		holder, err = procid.Of(pid, pidfd)
		unix.Close(pidfd)
		if err != nil {
			return fmt.Errorf("container %s: holder: %w", c.id, err)
		}
	}
	return c.writeEntry(holder)
}

// unregister removes c's entry, if it is still c's.
func (c *Container) unregister() error {
	if c.st.RegistryEntry == "" {
		return nil
	}
	if err := registry.Remove(c.st.RegistryEntry, c.st.Created); err != nil {
		return fmt.Errorf("container %s: %w", c.id, err)
	}
	return nil
}

// DestroyLost destroys the container id of root whose state directory was
// removed under it, from its registry entry: it kills its processes and
// removes its cgroup (but the directories that were there before it) and
// systemd unit, and the entry. Its keyring goes with its processes; its
// resctrl groups and a tree attached in the host's mount namespace (a
// container without a mount namespace of its own), which only the state
// named, are left. Only the caller's own registry (registry.Dir) is read.
// Without such an entry it returns an error that errors.Is ErrNotExist;
// with a state directory, Load it instead.
func DestroyLost(root, id string) error {
	if err := validID(id); err != nil {
		return err
	}
	abs, err := filepath.Abs(root)
	if err != nil {
		return fmt.Errorf("container %s: state root: %w", id, err)
	}
	// Only the caller's own registry: another user's entry names what
	// that user chose, not what the caller may kill.
	dir := registry.Dir()
	if dir == "" {
		return fmt.Errorf("container %q: %w", id, ErrNotExist)
	}
	e, err := registry.Read(filepath.Join(dir, registry.Name(abs, id)))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			err = ErrNotExist
		}
		return fmt.Errorf("container %q: %w", id, err)
	}
	if _, err := os.Lstat(filepath.Join(e.Dir, stateFile)); !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("container %s: DestroyLost: its state is still in %s", id, e.Dir)
	}
	c := lostContainer(e)
	if err := c.openCgroup(); err != nil {
		return fmt.Errorf("container %s: open cgroup: %w", id, err)
	}
	if pidfd, err := procid.Open(e.Init); err == nil {
		c.initPidfd = pidfd
	}
	return errors.Join(c.destroy(), c.Close())
}

// lostContainer is the Container an entry describes, its state lost.
func lostContainer(e *registry.Entry) *Container {
	return &Container{id: e.ID, dir: e.Dir, initPidfd: -1, lockFD: -1, holdFD: -1, st: state{
		ID: e.ID, Created: e.Created, Cgroup: e.Cgroup, CgroupExisted: e.CgroupExisted,
		NoCgroup: len(e.Cgroup) == 0, SystemdUnit: e.SystemdUnit, Namespaces: e.Namespaces,
		SharedPidNS: e.SharedPidNS, Init: e.Init, RegistryEntry: e.Path,
	}}
}
