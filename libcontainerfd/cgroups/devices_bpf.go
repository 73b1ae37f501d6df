package cgroups

import (
	"errors"
	"fmt"
	"io/fs"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// devProgName is the name our device programs are loaded with: how Set
// tells, among the BPF_CGROUP_DEVICE programs attached to a cgroup, its own
// (to replace) from those of others (left alone). BPF object names hold at
// most 15 characters.
const devProgName = "cfd_devices"

// devProgLicense is the program's license string (it calls no GPL-only
// helper).
const devProgLicense = "Apache-2.0"

// devicesPlan is what Set does with linux.resources.devices, made ready
// before Set writes anything.
type devicesPlan struct {
	target *deviceFilter
	v1dir  string      // the v1 devices directory, or ""
	v1     []fileWrite // in order, to v1dir
	prog   int         // the loaded program's fd, or -1
}

// planDevices compiles rules and prepares everything the kernel can refuse
// before any write: the v1 writes (from the current devices.list) where
// there is a v1 devices hierarchy, and the loaded (verified, not yet
// attached) program where there is a cgroup2 directory. It returns nil if
// rules is empty: the cgroup's devices are then left as they are.
func (c *Cgroup) planDevices(rules []specs.LinuxDeviceCgroup) (_ *devicesPlan, err error) {
	if len(rules) == 0 {
		return nil, nil
	}
	target, err := newDeviceFilter(rules)
	if err != nil {
		return nil, err
	}
	p := &devicesPlan{target: target, prog: -1}
	if d, ok := c.paths["devices"]; ok {
		list, err := readFile(d, "devices.list")
		if err != nil {
			return nil, fmt.Errorf("cgroups: devices controller: %w", err)
		}
		cur, err := parseDevicesList(list)
		if err != nil {
			return nil, fmt.Errorf("%w (in %s)", err, d)
		}
		p.v1dir, p.v1 = d, devicesV1Writes(cur, target)
	} else if c.v2 == "" {
		return nil, fmt.Errorf("cgroups: devices controller: no v1 hierarchy of it is mounted, and no cgroup2 to attach a device program to")
	}
	if c.v2 != "" {
		if p.prog, err = loadDeviceProgram(target); err != nil {
			return nil, err
		}
	}
	return p, nil
}

// close releases the loaded program (attached, it stays with the cgroup).
func (p *devicesPlan) close() {
	if p != nil && p.prog >= 0 {
		unix.Close(p.prog)
	}
}

// applyDevices makes the writes to the v1 devices cgroup and checks the
// outcome in devices.list, then attaches the program to the cgroup2
// directory.
func (c *Cgroup) applyDevices(p *devicesPlan) error {
	if p == nil {
		return nil
	}
	if p.v1dir != "" {
		for _, w := range p.v1 {
			if err := w.apply(p.v1dir); err != nil {
				if errors.Is(err, unix.EINVAL) && w.value == "a" {
					err = fmt.Errorf("%w (the kernel refuses to change the default of a devices cgroup that has child cgroups)", err)
				}
				return err
			}
		}
		// As runc: check that the kernel ended where we meant. A cgroup
		// that allows by default does not show its exceptions.
		list, err := readFile(p.v1dir, "devices.list")
		if err != nil {
			return fmt.Errorf("cgroups: devices controller: %w", err)
		}
		got, err := parseDevicesList(list)
		if err != nil {
			return fmt.Errorf("%w (in %s)", err, p.v1dir)
		}
		if got.defaultAllow != p.target.defaultAllow || (!got.defaultAllow && !got.equal(p.target)) {
			return fmt.Errorf("cgroups: devices controller: %s/devices.list says %q after the writes, want %q", p.v1dir, got, p.target)
		}
	}
	if p.prog >= 0 {
		if err := c.attachDeviceProgram(p.prog); err != nil {
			return err
		}
	}
	return nil
}

// loadDeviceProgram loads the program of f into the kernel, which verifies
// it; it is not attached anywhere yet.
func loadDeviceProgram(f *deviceFilter) (int, error) {
	fd, err := bpfProgLoad(unix.BPF_PROG_TYPE_CGROUP_DEVICE, devProgName, devProgLicense, f.program())
	if err != nil {
		return -1, fmt.Errorf("cgroups: load the device program (%s): %w", f, err)
	}
	return fd, nil
}

// cgroupDirFD opens the cgroup2 directory for BPF_PROG_ATTACH/QUERY, which
// want a real (not O_PATH) fd: from the O_PATH fd held since Create or Open,
// so that it is the same directory.
func (c *Cgroup) cgroupDirFD() (int, error) {
	if c.cloneFD < 0 {
		return -1, fmt.Errorf("cgroups: %s: cgroup closed or without cgroup2", c.v2)
	}
	fd, err := unix.Openat(c.cloneFD, ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, &fs.PathError{Op: "open", Path: c.v2, Err: err}
	}
	return fd, nil
}

// attachDeviceProgram attaches prog to the cgroup2 directory as a
// BPF_CGROUP_DEVICE program with BPF_F_ALLOW_MULTI (so that programs of
// the cgroup's ancestors keep running too, and a program a container
// attaches to a cgroup below cannot lift ours), in place of the one Set
// attached before:
//
//   - It lists, with BPF_PROG_QUERY, the programs attached to this very
//     directory, and takes as ours those named devProgName. Others are left
//     alone (they can only deny more).
//   - With exactly one of ours (every update), it attaches prog with
//     BPF_F_REPLACE and that program's fd: the kernel swaps them at once,
//     with no moment under neither or both.
//   - With none (create), it attaches prog. With more than one (which
//     only an interrupted earlier Set leaves), it attaches prog and then
//     detaches each old one: in between both run, which only denies more.
//
// An attached program stays with the cgroup, whatever becomes of our fds,
// until it is detached or the cgroup is removed.
func (c *Cgroup) attachDeviceProgram(prog int) error {
	dirfd, err := c.cgroupDirFD()
	if err != nil {
		return err
	}
	defer unix.Close(dirfd)
	ours, err := ourDevicePrograms(dirfd)
	if err != nil {
		return fmt.Errorf("cgroups: device program of %s: %w", c.v2, err)
	}
	defer func() {
		for _, fd := range ours {
			unix.Close(fd)
		}
	}()
	flags, replace, how := uint32(unix.BPF_F_ALLOW_MULTI), -1, "attach"
	if len(ours) == 1 {
		flags, replace, how = flags|unix.BPF_F_REPLACE, ours[0], "replace"
	}
	if err := bpfProgAttach(unix.BPF_PROG_ATTACH, dirfd, prog, unix.BPF_CGROUP_DEVICE, flags, replace); err != nil {
		return fmt.Errorf("cgroups: %s the device program of %s (BPF_PROG_ATTACH, BPF_CGROUP_DEVICE): %w", how, c.v2, err)
	}
	if len(ours) == 1 {
		return nil
	}
	for _, old := range ours {
		if err := bpfProgAttach(unix.BPF_PROG_DETACH, dirfd, old, unix.BPF_CGROUP_DEVICE, 0, -1); err != nil {
			return fmt.Errorf("cgroups: detach an old device program from %s (BPF_PROG_DETACH): %w", c.v2, err)
		}
	}
	return nil
}

// attachedDevicePrograms returns the ids of the BPF_CGROUP_DEVICE programs
// attached to the cgroup directory dirfd itself (not its ancestors).
func attachedDevicePrograms(dirfd int) ([]uint32, error) {
	ids, err := bpfProgQuery(dirfd, unix.BPF_CGROUP_DEVICE)
	if err != nil {
		return nil, fmt.Errorf("BPF_PROG_QUERY: %w", err)
	}
	return ids, nil
}

// ourDevicePrograms opens the programs attached to dirfd that are ours. A
// program the kernel (an LSM) does not let us open is not ours.
func ourDevicePrograms(dirfd int) (ours []int, err error) {
	ids, err := attachedDevicePrograms(dirfd)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			for _, fd := range ours {
				unix.Close(fd)
			}
			ours = nil
		}
	}()
	for _, id := range ids {
		fd, err := bpfProgByID(id)
		if errors.Is(err, fs.ErrPermission) || errors.Is(err, fs.ErrNotExist) {
			continue // not ours, or detached meanwhile
		}
		if err != nil {
			return nil, fmt.Errorf("program %d: BPF_PROG_GET_FD_BY_ID: %w", id, err)
		}
		typ, name, err := bpfProgInfo(fd)
		if err != nil {
			unix.Close(fd)
			return nil, fmt.Errorf("program %d: BPF_OBJ_GET_INFO_BY_FD: %w", id, err)
		}
		if typ == unix.BPF_PROG_TYPE_CGROUP_DEVICE && name == devProgName {
			ours = append(ours, fd)
		} else {
			unix.Close(fd)
		}
	}
	return ours, nil
}
