package libcontainerfd

import (
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/containerfd/containerfd/libcontainerfd/internal/msg"

	"github.com/containerfd/containerfd/internal/stopat"

	"github.com/containerfd/containerfd/libcontainerfd/idmap"
	"github.com/containerfd/containerfd/libcontainerfd/internal/procid"
	"github.com/containerfd/containerfd/libcontainerfd/internal/spawn"
	"github.com/containerfd/containerfd/libcontainerfd/keyring"
	"github.com/containerfd/containerfd/libcontainerfd/mounttree"
	"github.com/containerfd/containerfd/libcontainerfd/nsenter"
	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

const startSocket = "start.sock"

// ForkInit starts the container's one init, as fork_into_container did: in
// the container's new namespaces and cgroup, with its mount tree built here
// and attached by init, which then waits for Start before it execs p. It can
// be called once, by the process that called Create.
func (c *Container) ForkInit(p *Process) (err error) {
	if c.cfg == nil {
		return fmt.Errorf("container %s: ForkInit: only the creating process can start init", c.id)
	}
	if c.st.Init.Pid != 0 {
		return fmt.Errorf("container %s: ForkInit: %w", c.id, ErrInitStarted)
	}
	if err := c.Lock(); err != nil {
		return err
	}
	defer c.Unlock()
	cfg := c.cfg

	attr := spawn.Attr{
		UIDMap:      cfg.UIDMappings.String(),
		GIDMap:      cfg.GIDMappings.String(),
		TimeOffsets: timeOffsets(cfg.TimeOffsets),
	}
	defer func() {
		for _, ns := range attr.Join {
			unix.Close(ns.FD)
		}
	}()
	for _, n := range nsenter.Types {
		for _, ns := range cfg.Namespaces {
			if ns.Type != n.Flag {
				continue
			}
			if ns.Path == "" {
				attr.Cloneflags |= uint64(ns.Type)
				continue
			}
			fd, err := openNS(ns)
			if err != nil {
				return fmt.Errorf("container %s: %w", c.id, err)
			}
			attr.Join = append(attr.Join, spawn.Namespace{FD: fd, Flags: ns.Type})
		}
	}
	if cfg.buildInside() {
		attr.WriteIDMaps = func(pid int) error {
			return idmap.WriteUnprivileged(pid, cfg.UIDMappings, cfg.GIDMappings)
		}
	}
	if c.st.Keyring != "" {
		attr.OnThread = func() error {
			serial, err := keyring.Create(c.st.Keyring)
			c.st.KeyringSerial = serial
			return err
		}
	}
	attr.CgroupFD = c.cgroup.cloneFD()
	pc, err := c.processConfig(p)
	if err != nil {
		return err
	}
	procInside, direct, err := c.canInitDirect(&pc)
	if err != nil {
		return err
	}
	var s *child
	if direct {
		c.st.DirectInit = true
		s, err = c.startDirectInit(p, &pc, attr, procInside)
	} else {
		s, err = c.startStage(msg.StageInit, p, attr, c.cgroup)
	}
	if c.st.KeyringSerial != 0 {
		// Saved now so a failure below removes the keyring too.
		if serr := c.Save(); err == nil && serr != nil {
			s.kill()
			err = serr
		}
	}
	if err == nil && c.st.KeyHandler != "" {
		// After the save: whatever stops us now, delete finds the entry.
		if err = c.registerKeyHandler(); err != nil {
			s.kill()
		}
	}
	if err != nil {
		return fmt.Errorf("container %s: start init: %w", c.id, err)
	}
	proc, sock := s.Process, s.sock
	c.initPidfd = proc.Pidfd
	defer func() {
		if err != nil {
			s.kill()
			c.initPidfd = -1
			c.st.Init = procid.ID{}
			os.Remove(filepath.Join(c.dir, startSocket))
		} else {
			unix.Close(sock)
		}
	}()
	if err := c.identify(proc.Pid, proc.Pidfd); err != nil {
		return err
	}
	if cfg.joinsNS(unix.CLONE_NEWUSER) && len(cfg.UIDMappings) == 0 {
		// As runc: a joined user namespace's maps are its own, which what
		// the runtime makes for the container (/dev, devpts, mqueue) is
		// given to, as to a new one's.
		own := *cfg
		if own.UIDMappings, err = idmap.Read(fmt.Sprintf("/proc/%d/uid_map", proc.Pid)); err == nil {
			own.GIDMappings, err = idmap.Read(fmt.Sprintf("/proc/%d/gid_map", proc.Pid))
		}
		if err != nil {
			return fmt.Errorf("container %s: the joined user namespace's maps: %w", c.id, err)
		}
		c.cfg, cfg = &own, &own
	}
	stopat.Point("forkinit:spawned")
	if u := cfg.Systemd; u != nil {
		// Init is in the unit's cgroup already: start the unit around it,
		// before init does anything.
		if err := c.Cgroup().StartUnit(*u, cfg.SystemdDescription, proc.Pid, cfg.Resources); err != nil {
			if errors.Is(err, fs.ErrExist) {
				c.st.SystemdUnit = "" // another's: not ours to stop
			}
			return fmt.Errorf("container %s: %w", c.id, err)
		}
	}
	if cfg.Flags&KillOnClose != 0 {
		if err := c.startWatcher(); err != nil {
			return err
		}
	}
	// A stage's RLIMIT_NOFILE waits until it holds its root's fds: it
	// takes one per mount, more than a low limit lets it receive.
	nofileLater := -1
	if !c.st.DirectInit {
		nofileLater = unix.RLIMIT_NOFILE
	}
	if err := c.prepareBut(proc.Pid, p, nofileLater); err != nil {
		return err
	}
	if cfg.buildInside() {
		// Init does these, inside (see rootless.go).
		if err := c.checkSysctl(); err != nil {
			return err
		}
	} else {
		if cfg.newNS(unix.CLONE_NEWNET) {
			if !c.st.DirectInit { // else buildDirect does, on its thread
				if err := c.loopbackUp(); err != nil {
					return err
				}
			}
			if err := c.moveNetDevices(proc.Pid); err != nil {
				return err
			}
		}
		if err := c.writeSysctl(); err != nil {
			return err
		}
	}
	if c.st.DirectInit {
		if err := c.buildDirect(sock, proc.Pid, p, &pc, procInside); err != nil {
			return fmt.Errorf("container %s: init: %w", c.id, err)
		}
	} else {
		if err := c.sendInit(sock, proc.Pid, &pc); err != nil {
			return err
		}
		on := msg.Events{Console: p.setConsole, Mounted: func() error { return cfg.BeforePivot(proc.Pid) }}
		if err := msg.ReadReplies(sock, true, on); err != nil {
			if p.Console != nil {
				p.Console.Close()
				p.Console = nil
			}
			return fmt.Errorf("container %s: init: %w", c.id, err)
		}
		// At its gate now, its root built and the fds closed.
		if err := c.setRlimit(proc.Pid, p, unix.RLIMIT_NOFILE); err != nil {
			return err
		}
	}
	stopat.Point("forkinit:created")
	c.keepSharedRdt()
	if err := c.Save(); err != nil {
		return err
	}
	if err := c.registerInit(); err != nil {
		return err
	}
	pidfd, err := unix.FcntlInt(uintptr(proc.Pidfd), unix.F_DUPFD_CLOEXEC, 3)
	if err != nil {
		return fmt.Errorf("container %s: dup pidfd: %w", c.id, err)
	}
	p.Pid, p.Pidfd = proc.Pid, pidfd
	return nil
}

// openNS opens the namespace file of ns and checks it is one of that type.
func openNS(ns Namespace) (int, error) {
	fd, err := unix.Open(ns.Path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("open %s namespace %s: %w", nsName(ns.Type), ns.Path, err)
	}
	t, err := unix.IoctlRetInt(fd, unix.NS_GET_NSTYPE)
	if err == nil && t != ns.Type {
		err = fmt.Errorf("it is a %s namespace", nsName(t))
	}
	if err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("join %s namespace %s: %w", nsName(ns.Type), ns.Path, err)
	}
	return fd, nil
}

// processFiles lists the fds p starts with. A nil stdio file is /dev/null,
// as with os/exec; the returned func closes what was opened for that.
func processFiles(p *Process) ([]int, func(), error) {
	fds := make([]int, 0, 3+len(p.ExtraFiles))
	null := -1
	done := func() {
		if null >= 0 {
			unix.Close(null)
		}
	}
	for i, f := range append([]*os.File{p.Stdin, p.Stdout, p.Stderr}, p.ExtraFiles...) {
		switch {
		case f != nil:
			fds = append(fds, int(f.Fd()))
		case i < 3:
			if null < 0 {
				var err error
				if null, err = unix.Open("/dev/null", unix.O_RDWR|unix.O_CLOEXEC, 0); err != nil {
					return nil, done, fmt.Errorf("open /dev/null: %w", err)
				}
			}
			fds = append(fds, null)
		default:
			fds = append(fds, -1)
		}
	}
	return fds, done, nil
}

// timeOffsets is offsets in the format of /proc/<pid>/timens_offsets.
func timeOffsets(offsets map[string]specs.LinuxTimeOffset) string {
	var sb strings.Builder
	for _, clock := range slices.Sorted(maps.Keys(offsets)) {
		fmt.Fprintf(&sb, "%s %d %d\n", clock, offsets[clock].Secs, offsets[clock].Nanosecs)
	}
	return sb.String()
}

// nsFDs opens the namespaces of init that filesystems are tied to.
func (c *Container) nsFDs(pid int) (mounttree.Namespaces, func(), error) {
	ns := mounttree.OwnNamespaces()
	var opened []int
	closeAll := func() {
		for _, fd := range opened {
			unix.Close(fd)
		}
	}
	for _, x := range []struct {
		flag int
		fd   *int
	}{{unix.CLONE_NEWNET, &ns.Net}, {unix.CLONE_NEWIPC, &ns.IPC}, {unix.CLONE_NEWCGROUP, &ns.Cgroup}, {unix.CLONE_NEWPID, &ns.PID}, {unix.CLONE_NEWUSER, &ns.User}} {
		if c.st.Namespaces&x.flag == 0 {
			continue
		}
		path := fmt.Sprintf("/proc/%d/ns/%s", pid, nsName(x.flag))
		fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			closeAll()
			return ns, nil, fmt.Errorf("container %s: open %s: %w", c.id, path, err)
		}
		opened = append(opened, fd)
		*x.fd = fd
	}
	return ns, closeAll, nil
}

func closeFDs(fds []int) {
	for _, fd := range fds {
		unix.Close(fd)
	}
}
