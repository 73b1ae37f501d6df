package libcontainerfd

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/containerfd/containerfd/internal/stopat"
	"github.com/containerfd/containerfd/libcontainerfd/cgroups"
	"github.com/opencontainers/runtime-spec/specs-go"

	"github.com/containerfd/containerfd/libcontainerfd/internal/procid"
	"github.com/containerfd/containerfd/libcontainerfd/internal/spawn"
	"github.com/containerfd/containerfd/libcontainerfd/keyring"
	"github.com/containerfd/containerfd/libcontainerfd/mounttree"
	"github.com/containerfd/containerfd/libcontainerfd/nsenter"
	"github.com/containerfd/containerfd/libcontainerfd/selfexe"
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
		UIDMap: idMapString(cfg.UIDMappings),
		GIDMap: idMapString(cfg.GIDMappings),
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
	if c.st.Keyring != "" {
		attr.OnThread = func() error {
			serial, err := keyring.Create(c.st.Keyring)
			c.st.KeyringSerial = serial
			return err
		}
	}
	s, err := c.startStage(stageInit, p, attr)
	if c.st.KeyringSerial != 0 {
		// Saved now so a failure below removes the keyring too.
		if serr := c.Save(); err == nil && serr != nil {
			s.kill()
			err = serr
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
	stopat.Point("forkinit:spawned")
	if cfg.Flags&KillOnClose != 0 {
		if err := c.startWatcher(); err != nil {
			return err
		}
	}
	if err := c.prepare(proc.Pid, p); err != nil {
		return err
	}
	if err := c.writeSysctl(); err != nil {
		return err
	}
	if err := c.sendInit(sock, proc.Pid, p); err != nil {
		return err
	}
	onMounted := func() error { return cfg.BeforePivot(proc.Pid) }
	if err := readStage(sock, p, true, onMounted); err != nil {
		if p.Console != nil {
			p.Console.Close()
			p.Console = nil
		}
		return fmt.Errorf("container %s: init: %w", c.id, err)
	}
	stopat.Point("forkinit:created")
	if err := c.Save(); err != nil {
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

func idMapString(m []IDMap) string {
	var sb strings.Builder
	for _, e := range m {
		fmt.Fprintf(&sb, "%d %d %d\n", e.ContainerID, e.HostID, e.Size)
	}
	return sb.String()
}

// nsFDs opens the namespaces of init that filesystems are tied to.
func (c *Container) nsFDs(pid int) (mounttree.Namespaces, func(), error) {
	ns := mounttree.Namespaces{Net: -1, IPC: -1, Cgroup: -1, PID: -1}
	var opened []int
	closeAll := func() {
		for _, fd := range opened {
			unix.Close(fd)
		}
	}
	for _, x := range []struct {
		flag int
		fd   *int
	}{{unix.CLONE_NEWNET, &ns.Net}, {unix.CLONE_NEWIPC, &ns.IPC}, {unix.CLONE_NEWCGROUP, &ns.Cgroup}, {unix.CLONE_NEWPID, &ns.PID}} {
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

// sendInit builds the mount tree and sends init its orders and fds.
func (c *Container) sendInit(sock, pid int, p *Process) error {
	cfg := c.cfg
	ic := initConfig{
		NewEmptyFS:      cfg.Flags&NewEmptyFS != 0,
		RootReadonly:    cfg.RootReadonly,
		NoPivot:         cfg.NoPivot,
		Links:           cfg.Links,
		MaskedPaths:     cfg.MaskedPaths,
		ReadonlyPaths:   cfg.ReadonlyPaths,
		RootPropagation: cfg.RootPropagation,
		WaitBeforePivot: cfg.BeforePivot != nil,
	}
	var err error
	if ic.Process, err = c.processConfig(p); err != nil {
		return err
	}
	if cfg.newNS(unix.CLONE_NEWUTS) || cfg.Hostname != "" {
		if cfg.Hostname != "" {
			ic.Hostname = &cfg.Hostname
		}
		if cfg.Domainname != "" {
			ic.Domainname = &cfg.Domainname
		}
	}
	// The start listener goes first: init takes it before building its root.
	listener, err := c.listenStart()
	if err != nil {
		return err
	}
	fds := []int{listener}
	defer func() {
		for _, fd := range fds {
			unix.Close(fd)
		}
	}()
	if ic.NewEmptyFS {
		ns, closeNS, err := c.nsFDs(pid)
		if err != nil {
			return err
		}
		defer closeNS()
		root, err := mounttree.Open(mounttree.Mount{Type: "bind", Source: cfg.Rootfs, Target: "/", Recursive: true}, ns)
		if err != nil {
			return fmt.Errorf("container %s: root %s: %w", c.id, cfg.Rootfs, err)
		}
		fds = append(fds, root)
		ic.Mounts, ic.Devices = c.expandMounts()
		ic.Inside = make([]bool, len(ic.Mounts))
		for i, m := range ic.Mounts {
			fd, err := mounttree.Open(m, ns)
			if errors.Is(err, mounttree.ErrProcNeedsPidns) {
				ic.Inside[i] = true
				continue
			}
			if err != nil {
				return fmt.Errorf("container %s: %w", c.id, err)
			}
			fds = append(fds, fd)
		}
		for range cfg.MaskedPaths {
			fd, err := devNull()
			if err != nil {
				return fmt.Errorf("container %s: mask paths: %w", c.id, err)
			}
			fds = append(fds, fd)
		}
	}
	if err := sendJSON(sock, &ic); err != nil {
		return fmt.Errorf("container %s: send init config: %w", c.id, err)
	}
	for _, fd := range fds {
		if err := sendFD(sock, fd); err != nil {
			return fmt.Errorf("container %s: send fd to init: %w", c.id, err)
		}
	}
	return nil
}

// expandMounts turns the config's mounts and devices into what init
// attaches and creates: a "cgroup" mount becomes the container's own cgroup
// hierarchy, and inside a user namespace, where mknod is not allowed,
// devices become binds of the host's nodes.
func (c *Container) expandMounts() ([]mounttree.Mount, []specs.LinuxDevice) {
	cfg := c.cfg
	var ms []mounttree.Mount
	for _, m := range cfg.Mounts {
		if m.Type != "cgroup" {
			ms = append(ms, m)
			continue
		}
		ms = append(ms, c.cgroupMounts(m)...)
	}
	if c.st.Namespaces&unix.CLONE_NEWUSER == 0 {
		return ms, cfg.Devices
	}
	for i := range ms {
		ms[i] = mapOwner(ms[i], cfg.UIDMappings, cfg.GIDMappings)
	}
	for _, d := range cfg.Devices {
		ms = append(ms, mounttree.Mount{Type: "bind", Source: d.Path, Target: d.Path,
			Attr: unix.MOUNT_ATTR_NOSUID | unix.MOUNT_ATTR_NOEXEC})
	}
	return ms, nil
}

// mapOwner gives a filesystem that we make outside a user namespace the
// owner the container expects: its uid= and gid= options are ids inside the
// container, so they are mapped to the host's, and a tmpfs without them is
// owned by the container's root, not the host's.
func mapOwner(m mounttree.Mount, uids, gids []IDMap) mounttree.Mount {
	if m.Type != "tmpfs" && m.Type != "devpts" {
		return m
	}
	data := make([]string, 0, len(m.Data)+2)
	seen := map[string]bool{}
	for _, o := range m.Data {
		k, v, ok := strings.Cut(o, "=")
		maps := uids
		if k == "gid" {
			maps = gids
		}
		if ok && (k == "uid" || k == "gid") {
			if id, err := strconv.ParseUint(v, 10, 32); err == nil {
				if h, ok := hostID(maps, uint32(id)); ok {
					o = k + "=" + strconv.FormatUint(uint64(h), 10)
				}
			}
			seen[k] = true
		}
		data = append(data, o)
	}
	if m.Type == "tmpfs" {
		for k, maps := range map[string][]IDMap{"uid": uids, "gid": gids} {
			if h, ok := hostID(maps, 0); ok && !seen[k] {
				data = append(data, k+"="+strconv.FormatUint(uint64(h), 10))
			}
		}
	}
	m.Data = data
	return m
}

// hostID maps id inside a user namespace to the host.
func hostID(maps []IDMap, id uint32) (uint32, bool) {
	for _, m := range maps {
		if id >= m.ContainerID && id-m.ContainerID < m.Size {
			return m.HostID + id - m.ContainerID, true
		}
	}
	return 0, false
}

// cgroupMounts is what a "cgroup" mount means here: with a cgroup namespace
// and cgroup2, a cgroup2 mount (its root is the container's cgroup); without
// a namespace, a bind of the container's own cgroup2 directory; with cgroup
// v1 only, a tmpfs with a bind of the container's directory per controller.
func (c *Container) cgroupMounts(m mounttree.Mount) []mounttree.Mount {
	paths := c.cg.Paths()
	if dir, ok := paths[cgroups.KeyUnified]; ok {
		if c.cfg.newNS(unix.CLONE_NEWCGROUP) {
			m.Type = "cgroup2"
			return []mounttree.Mount{m}
		}
		m.Type, m.Source = "bind", dir
		return []mounttree.Mount{m}
	}
	tmpfs := m
	tmpfs.Type, tmpfs.Source, tmpfs.Data = "tmpfs", "tmpfs", []string{"mode=755"}
	tmpfs.Attr &^= unix.MOUNT_ATTR_RDONLY // binds go in first; see below
	ms := []mounttree.Mount{tmpfs}
	ctrls := make([]string, 0, len(paths))
	for ctrl := range paths {
		ctrls = append(ctrls, ctrl)
	}
	sort.Strings(ctrls)
	for _, ctrl := range ctrls {
		name := strings.TrimPrefix(ctrl, "name=")
		ms = append(ms, mounttree.Mount{Type: "bind", Source: paths[ctrl], Target: path.Join(m.Target, name), Attr: m.Attr})
	}
	return ms
}

// devNull returns a detached bind of the host's /dev/null, checked to be
// the null device, to mask paths with (CVE-2025-31133).
func devNull() (int, error) {
	src, err := unix.Open("/dev/null", unix.O_PATH|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, err
	}
	defer unix.Close(src)
	var st unix.Stat_t
	if err := unix.Fstat(src, &st); err != nil {
		return -1, err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFCHR || unix.Major(st.Rdev) != 1 || unix.Minor(st.Rdev) != 3 {
		return -1, fmt.Errorf("/dev/null is not the null device")
	}
	return mounttree.OpenBindFD(src, mounttree.Mount{Type: "bind", Source: "/dev/null", Target: "/dev/null"})
}

// listenStart makes the socket Start connects to, in the state directory.
// Paths are reached through /proc/self/fd so their length never matters.
func (c *Container) listenStart() (int, error) {
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("container %s: start socket: %w", c.id, err)
	}
	path := fmt.Sprintf("/proc/self/fd/%d/%s", c.lockFD, startSocket)
	if err := unix.Bind(fd, &unix.SockaddrUnix{Name: path}); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("container %s: bind start socket: %w", c.id, err)
	}
	if err := unix.Listen(fd, 1); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("container %s: listen on start socket: %w", c.id, err)
	}
	return fd, nil
}

// Start lets init exec its process. It returns the exec's error, if any.
func (c *Container) Start() error {
	if err := c.Lock(); err != nil {
		return err
	}
	defer c.Unlock()
	if c.st.Started {
		return fmt.Errorf("container %s: %w", c.id, ErrAlreadyStart)
	}
	if !c.initAlive() {
		return fmt.Errorf("container %s: start: %w", c.id, ErrNotRunning)
	}
	path := filepath.Join(c.dir, startSocket)
	pfd, err := unix.Open(path, unix.O_PATH|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("container %s: start: %w", c.id, err)
	}
	defer unix.Close(pfd)
	conn, err := unix.Socket(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("container %s: start: %w", c.id, err)
	}
	defer unix.Close(conn)
	if err := unix.Connect(conn, &unix.SockaddrUnix{Name: fmt.Sprintf("/proc/self/fd/%d", pfd)}); err != nil {
		return fmt.Errorf("container %s: start: connect to init: %w", c.id, err)
	}
	if err := sendJSON(conn, "start"); err != nil {
		return fmt.Errorf("container %s: start: %w", c.id, err)
	}
	var reply stageReply
	err = recvJSON(conn, &reply)
	if err != nil && err != errEOF {
		return fmt.Errorf("container %s: start: %w", c.id, err)
	}
	if reply.Error != "" {
		return fmt.Errorf("container %s: start: %s", c.id, reply.Error)
	}
	os.Remove(path)
	stopat.Point("start:started")
	c.st.Started = true
	return c.Save()
}

// startWatcher starts the process that kills the container when its holder
// closes it or dies (KillOnClose).
func (c *Container) startWatcher() error {
	exe, err := selfexe.FD()
	if err != nil {
		return err
	}
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		return fmt.Errorf("container %s: watcher pipe: %w", c.id, err)
	}
	defer unix.Close(p[0])
	kind := "events"
	waitFD, err := c.cg.EventsFD()
	if err != nil {
		kind = "pidfd"
		waitFD, err = unix.FcntlInt(uintptr(c.initPidfd), unix.F_DUPFD_CLOEXEC, 3)
	}
	if err != nil {
		unix.Close(p[1])
		return fmt.Errorf("container %s: watcher: %w", c.id, err)
	}
	defer unix.Close(waitFD)
	paths, err := json.Marshal(c.st.Cgroup)
	if err != nil {
		unix.Close(p[1])
		return err
	}
	proc, err := spawn.Start(&spawn.Attr{
		ExecFD:   exe,
		Argv:     []string{stageWatch, strconv.Itoa(watchHoldFD), string(paths), kind},
		Files:    []int{-1, -1, -1, p[0], waitFD},
		CgroupFD: -1,
	})
	if err != nil {
		unix.Close(p[1])
		return fmt.Errorf("container %s: start watcher: %w", c.id, err)
	}
	c.holdFD = p[1]
	// The watcher outlives neither the container nor its holder by much;
	// reap it whenever it leaves.
	go func() {
		var ws unix.WaitStatus
		for {
			if _, err := unix.Wait4(proc.Pid, &ws, 0, nil); err != unix.EINTR {
				break
			}
		}
		unix.Close(proc.Pidfd)
	}()
	return nil
}
