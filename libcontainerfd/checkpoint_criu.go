//go:build !containerfd_nocriu

package libcontainerfd

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/checkpoint-restore/go-criu/v7/rpc"
	"github.com/containerfd/containerfd/libcontainerfd/cgroups"
	"github.com/containerfd/containerfd/libcontainerfd/keyring"
	"github.com/containerfd/containerfd/libcontainerfd/mounttree"
	"github.com/containerfd/containerfd/libcontainerfd/pathrs"
	"golang.org/x/sys/unix"
	"google.golang.org/protobuf/proto"
)

func (m CgroupsMode) rpc() (*rpc.CriuCgMode, error) {
	switch m {
	case "", "soft":
		return rpc.CriuCgMode_SOFT.Enum(), nil
	case "full":
		return rpc.CriuCgMode_FULL.Enum(), nil
	case "strict":
		return rpc.CriuCgMode_STRICT.Enum(), nil
	case "ignore":
		return rpc.CriuCgMode_IGNORE.Enum(), nil
	}
	return nil, fmt.Errorf("manage cgroups mode %q: want soft, full, strict or ignore", string(m))
}

// descriptorsFile lists, beside the images, what init's fds 0-2 were
// ("pipe:[1234]", "/dev/null"), as runc writes it: a restore gives its own
// stdio in place of the pipes.
const descriptorsFile = "descriptors.json"

// Checkpoint dumps the container's processes with CRIU into o.ImagePath,
// as runc's checkpoint does. Unless o.LeaveRunning or o.PreDump, they are
// gone afterwards and the container is stopped: its caller destroys it.
func (c *Container) Checkpoint(o *CheckpointOpts) error {
	keep := keepCgroup2Options()
	err := c.checkpoint(o)
	if kerr := keep(); kerr != nil {
		err = errors.Join(err, kerr)
	}
	if err != nil {
		return fmt.Errorf("container %s: checkpoint: %w", c.id, err)
	}
	return nil
}

func (c *Container) checkpoint(o *CheckpointOpts) error {
	if o.Config == nil {
		return errors.New("no Config to describe the container to CRIU")
	}
	if o.ImagePath == "" {
		return errors.New("no image path")
	}
	if c.st.Rootless {
		return errors.New("a rootless container cannot be checkpointed: CRIU needs root")
	}
	if err := c.Lock(); err != nil {
		return err
	}
	defer c.Unlock()
	switch st, err := c.Status(); {
	case err != nil:
		return err
	case st != Running && st != Paused:
		return fmt.Errorf("the container is %s: only a running or paused one can be", st)
	}
	mode, err := o.CgroupsMode.rpc()
	if err != nil {
		return err
	}
	if o.LazyPages {
		if err := criuFeatures(&rpc.CriuFeatures{LazyPages: proto.Bool(true)}, "lazy pages (userfaultfd)"); err != nil {
			return err
		}
	}
	if o.PreDump || o.ParentPath != "" {
		if err := criuFeatures(&rpc.CriuFeatures{MemTrack: proto.Bool(true)}, "memory tracking, which a pre-dump needs (soft-dirty bits)"); err != nil {
			return err
		}
	}
	images, err := openDir(o.ImagePath, true)
	if err != nil {
		return fmt.Errorf("image path: %w", err)
	}
	defer images.Close()
	opts := &rpc.CriuOpts{
		ImagesDirFd:       ourFD(images),
		LogLevel:          proto.Int32(4),
		LogFile:           proto.String("dump.log"),
		Root:              proto.String(o.Config.Rootfs),
		ManageCgroups:     proto.Bool(true),
		ManageCgroupsMode: mode,
		NotifyScripts:     proto.Bool(true),
		Pid:               proto.Int32(int32(c.st.Init.Pid)),
		ShellJob:          proto.Bool(o.ShellJob),
		LeaveRunning:      proto.Bool(o.LeaveRunning),
		TcpEstablished:    proto.Bool(o.TCPEstablished),
		TcpSkipInFlight:   proto.Bool(o.TCPSkipInFlight),
		LinkRemap:         proto.Bool(o.LinkRemap),
		ExtUnixSk:         proto.Bool(o.ExtUnixSk),
		FileLocks:         proto.Bool(o.FileLocks),
		EmptyNs:           proto.Uint32(uint32(o.EmptyNS)),
		OrphanPtsMaster:   proto.Bool(true),
		AutoDedup:         proto.Bool(o.AutoDedup),
		LazyPages:         proto.Bool(o.LazyPages),
	}
	logDir := images.Name()
	if o.WorkPath != "" {
		work, err := openDir(o.WorkPath, true)
		if err != nil {
			return fmt.Errorf("work path: %w", err)
		}
		defer work.Close()
		opts.WorkDirFd = ourFD(work)
		logDir = work.Name()
	}
	if o.StatusFD >= 0 && o.LazyPages {
		opts.StatusFd = proto.Int32(int32(o.StatusFD))
	}
	if o.PageServer != "" {
		host, port, err := net.SplitHostPort(o.PageServer)
		n, perr := strconv.ParseUint(port, 10, 16)
		if err != nil || perr != nil || n == 0 {
			return fmt.Errorf("page server %q: want ADDRESS:PORT", o.PageServer)
		}
		opts.Ps = &rpc.CriuPageServerInfo{Address: proto.String(host), Port: proto.Int32(int32(n))}
	}
	if o.PreDump || o.ParentPath != "" {
		opts.TrackMem = proto.Bool(true)
	}
	if o.ParentPath != "" {
		opts.ParentImg = proto.String(o.ParentPath)
	}
	if cg := c.Cgroup(); cg != nil {
		// CRIU freezes the container through its cgroup: every process at
		// once, none forking away meanwhile.
		p := cg.Paths()
		if d, ok := p["freezer"]; ok {
			opts.FreezeCgroup = proto.String(d)
		} else if d, ok := p[cgroups.KeyUnified]; ok && len(p) == 1 {
			opts.FreezeCgroup = proto.String(d)
		}
	}
	saved := c.cfg
	c.cfg = o.Config
	ms, _, _ := c.expandMounts()
	c.cfg = saved
	for _, m := range externalMounts(ms) {
		// Named in the images by where they are in the container.
		opts.ExtMnt = append(opts.ExtMnt, &rpc.ExtMountMap{Key: proto.String(m.Target), Val: proto.String(m.Target)})
	}
	// A masked file is a bind of /dev/null, which the restore binds from
	// the host's; a masked directory is a tmpfs, which CRIU dumps.
	for _, p := range o.Config.MaskedPaths {
		fi, err := os.Stat(fmt.Sprintf("/proc/%d/root%s", c.st.Init.Pid, p))
		if err != nil || fi.IsDir() {
			continue
		}
		opts.ExtMnt = append(opts.ExtMnt, &rpc.ExtMountMap{Key: proto.String(p), Val: proto.String("/dev/null")})
	}
	for _, ns := range o.Config.Namespaces {
		key, ok := externalNSKeys[ns.Type]
		if !ok || ns.Path == "" || o.EmptyNS&ns.Type != 0 {
			continue
		}
		var st unix.Stat_t
		if err := unix.Stat(ns.Path, &st); err != nil {
			return fmt.Errorf("%s namespace %s: %w", nsName(ns.Type), ns.Path, err)
		}
		// The namespace was joined, not made: the images name it, and
		// the restore joins it again (RestoreOpts gets it from Config).
		opts.External = append(opts.External, fmt.Sprintf("%s[%d]:%s", nsName(ns.Type), st.Ino, key))
	}
	typ := rpc.CriuReqType_DUMP
	if o.PreDump {
		typ = rpc.CriuReqType_PRE_DUMP
	} else if err := c.writeDescriptors(images.Name()); err != nil {
		return err
	}
	r, err := startCRIU(nil, [3]*os.File{}, nil)
	if err != nil {
		return err
	}
	r.logPath = filepath.Join(logDir, "dump.log")
	_, err = r.call(&rpc.CriuReq{Type: typ.Enum(), Opts: opts}, nil)
	if err != nil || o.PreDump {
		// After a pre-dump CRIU waits for the next one, or for the dump;
		// as runc, we make each a CRIU of its own and end this one.
		r.kill()
		return err
	}
	return r.close()
}

// externalNSKeys are the namespaces a container may join that CRIU takes as
// external, by the keys runc gives them.
var externalNSKeys = map[int]string{
	unix.CLONE_NEWNET: "extRootNetNS",
	unix.CLONE_NEWPID: "extRootPidNS",
}

// externalMounts are the mounts of the container whose source is outside it:
// binds (of host paths, of the container's cgroup directories, of device
// nodes in a user namespace). CRIU cannot dump them; it records their
// mountpoints and the restore binds them again.
func externalMounts(ms []mounttree.Mount) []mounttree.Mount {
	var out []mounttree.Mount
	for _, m := range ms {
		if m.Type == "bind" {
			out = append(out, m)
		}
	}
	return out
}

// writeDescriptors records what init's stdio is, for the restore.
func (c *Container) writeDescriptors(dir string) error {
	var ds []string
	for fd := 0; fd < 3; fd++ {
		l, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%d", c.st.Init.Pid, fd))
		if err != nil {
			l = "" // closed
		}
		ds = append(ds, l)
	}
	b, err := json.Marshal(ds)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, descriptorsFile), b, 0o600); err != nil {
		return fmt.Errorf("image path: %w", err)
	}
	return nil
}

// Restore makes the container id under root from cfg, as Create does (its
// state, cgroup and a new keyring: CRIU does not carry keyrings), and
// restores into it the processes CRIU dumped in o.ImagePath. p gives the
// restored init its stdio in place of the pipes it had (as runc does), and
// gets back init's Pid and Pidfd, and with a terminal the pty's master in
// Console. Init is our child. On error nothing is left behind.
func Restore(root, id string, cfg *Config, p *Process, o *RestoreOpts) (*Container, error) {
	if cfg.Rootless {
		return nil, fmt.Errorf("container %s: restore: a rootless container cannot be restored: CRIU needs root", id)
	}
	if o.ImagePath == "" {
		return nil, fmt.Errorf("container %s: restore: no image path", id)
	}
	if !filepath.IsAbs(cfg.Rootfs) || cfg.EmptyRoot {
		return nil, fmt.Errorf("container %s: restore: Rootfs %q: must be an absolute path to restore into", id, cfg.Rootfs)
	}
	images, err := openDir(o.ImagePath, false)
	if err != nil {
		return nil, fmt.Errorf("container %s: restore: image path: %w", id, err)
	}
	defer images.Close()
	c, err := Create(root, id, cfg)
	if err != nil {
		return nil, err
	}
	keep := keepCgroup2Options()
	err = c.restore(p, o, images)
	if kerr := keep(); kerr != nil {
		err = errors.Join(err, kerr)
	}
	if err != nil {
		if derr := c.Destroy(); derr != nil {
			err = errors.Join(err, derr)
		}
		return nil, fmt.Errorf("container %s: restore: %w", id, err)
	}
	return c, nil
}

func (c *Container) restore(p *Process, o *RestoreOpts, images *os.File) (err error) {
	if err := c.Lock(); err != nil {
		return err
	}
	defer c.Unlock()
	cfg := c.cfg
	mode, err := o.CgroupsMode.rpc()
	if err != nil {
		return err
	}
	if o.LazyPages {
		if err := criuFeatures(&rpc.CriuFeatures{LazyPages: proto.Bool(true)}, "lazy pages (userfaultfd)"); err != nil {
			return err
		}
	}
	var extra []*os.File
	opts := &rpc.CriuOpts{
		EvasiveDevices:    proto.Bool(true),
		LogLevel:          proto.Int32(4),
		LogFile:           proto.String("restore.log"),
		RstSibling:        proto.Bool(true),
		Root:              proto.String(cfg.Rootfs),
		ManageCgroups:     proto.Bool(true),
		ManageCgroupsMode: mode,
		NotifyScripts:     proto.Bool(true),
		ShellJob:          proto.Bool(o.ShellJob),
		ExtUnixSk:         proto.Bool(o.ExtUnixSk),
		TcpEstablished:    proto.Bool(o.TCPEstablished),
		FileLocks:         proto.Bool(o.FileLocks),
		EmptyNs:           proto.Uint32(uint32(o.EmptyNS)),
		OrphanPtsMaster:   proto.Bool(true),
		AutoDedup:         proto.Bool(o.AutoDedup),
		LazyPages:         proto.Bool(o.LazyPages),
	}
	if o.LSMProfile != "" {
		opts.LsmProfile = proto.String(o.LSMProfile)
	}
	if o.LSMMountContext != "" {
		opts.LsmMountContext = proto.String(o.LSMMountContext)
	}
	logDir := images.Name()
	if o.WorkPath != "" {
		work, err := openDir(o.WorkPath, true)
		if err != nil {
			return fmt.Errorf("work path: %w", err)
		}
		work.Close()
		logDir = work.Name()
	}
	ms, _, _ := c.expandMounts()
	ext := externalMounts(ms)
	if err := makeMountpoints(cfg.Rootfs, ms); err != nil {
		return err
	}
	for _, m := range ext {
		opts.ExtMnt = append(opts.ExtMnt, &rpc.ExtMountMap{Key: proto.String(m.Target), Val: proto.String(m.Source)})
	}
	if len(cfg.MaskedPaths) > 0 {
		opts.ExtMnt = append(opts.ExtMnt, &rpc.ExtMountMap{Key: proto.String("/dev/null"), Val: proto.String("/dev/null")})
	}
	for _, ns := range cfg.Namespaces {
		key, ok := externalNSKeys[ns.Type]
		if !ok || ns.Path == "" || o.EmptyNS&ns.Type != 0 {
			continue
		}
		f, err := os.Open(ns.Path)
		if err != nil {
			return fmt.Errorf("%s namespace: %w", nsName(ns.Type), err)
		}
		defer f.Close()
		opts.InheritFd = append(opts.InheritFd, &rpc.InheritFd{Key: proto.String(key), Fd: proto.Int32(extraFD(len(extra)))})
		extra = append(extra, f)
	}
	stdio := [3]*os.File{p.Stdin, p.Stdout, p.Stderr}
	if b, err := os.ReadFile(filepath.Join(images.Name(), descriptorsFile)); err == nil {
		var ds []string
		if err := json.Unmarshal(b, &ds); err != nil {
			return fmt.Errorf("image path: %s: %w", descriptorsFile, err)
		}
		for i, d := range ds {
			// The pipes init had are gone: ours take their place.
			if i < 3 && strings.HasPrefix(d, "pipe:") && stdio[i] != nil {
				opts.InheritFd = append(opts.InheritFd, &rpc.InheritFd{Key: proto.String(d), Fd: proto.Int32(int32(i))})
			}
		}
	}
	// CRIU runs, and forks what it restores, on a thread that has the
	// container's new keyring, in a mount namespace of its own where the
	// rootfs is a mount for it to pivot into: nothing of that is left on
	// the host whatever happens.
	var opened []*os.File
	defer func() {
		for _, f := range opened {
			f.Close()
		}
	}()
	onThread := func() error {
		if err := unix.Unshare(unix.CLONE_NEWNS | unix.CLONE_FS); err != nil {
			return fmt.Errorf("unshare mount namespace: %w", err)
		}
		// Slaves, not private: CRIU gives a restored bind the sharing of
		// its source, which it can copy only from a shared or slave mount.
		if err := unix.Mount("", "/", "", unix.MS_SLAVE|unix.MS_REC, ""); err != nil {
			return fmt.Errorf("make mounts slaves: %w", err)
		}
		if err := unix.Mount(cfg.Rootfs, cfg.Rootfs, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
			return fmt.Errorf("bind rootfs %s: %w", cfg.Rootfs, err)
		}
		// CRIU reaches the directories through our fds, and mounts its
		// cgroup yard in the work directory: opened here, they are in
		// its mount namespace.
		in, err := openDir(images.Name(), false)
		if err != nil {
			return fmt.Errorf("image path: %w", err)
		}
		opened = append(opened, in)
		opts.ImagesDirFd = ourFD(in)
		if o.WorkPath != "" {
			w, err := openDir(logDir, false)
			if err != nil {
				return fmt.Errorf("work path: %w", err)
			}
			opened = append(opened, w)
			opts.WorkDirFd = ourFD(w)
		}
		if c.st.Keyring == "" {
			return nil
		}
		serial, err := keyring.Create(c.st.Keyring)
		c.st.KeyringSerial = serial
		return err
	}
	r, err := startCRIU(extra, stdio, onThread)
	if err != nil {
		return err
	}
	r.logPath = filepath.Join(logDir, "restore.log")
	defer func() {
		if err != nil {
			r.kill()
		}
	}()
	if c.st.KeyringSerial != 0 {
		// Saved now so that a failure below removes the keyring too.
		if err := c.Save(); err != nil {
			return err
		}
	}
	if cg := c.Cgroup(); cg != nil {
		// CRIU restores the processes into its own cgroups, which are the
		// container's: the images' cgroup roots are mapped onto them.
		if err := cg.Enter(r.cmd.Process.Pid); err != nil {
			return err
		}
		roots, err := readProcCgroup(r.cmd.Process.Pid)
		if err != nil {
			return err
		}
		opts.CgRoot = roots
	}
	var console *os.File
	defer func() {
		if err != nil && console != nil {
			console.Close()
		}
	}()
	resp, err := r.call(&rpc.CriuReq{Type: rpc.CriuReqType_RESTORE.Enum(), Opts: opts}, func(script string, _ *rpc.CriuNotify, fd int) error {
		if script == "orphan-pts-master" && fd >= 0 {
			console = os.NewFile(uintptr(fd), "pty master")
		} else if fd >= 0 {
			unix.Close(fd)
		}
		return nil
	})
	if err != nil {
		return err
	}
	pid := int(resp.GetRestore().GetPid())
	pidfd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return fmt.Errorf("restored init %d: %w", pid, err)
	}
	c.initPidfd = pidfd
	if err := c.identify(pid, pidfd); err != nil {
		return err
	}
	c.st.Started = true
	if err := c.Save(); err != nil {
		return err
	}
	if c.st.KeyHandler != "" {
		if err := c.registerKeyHandler(); err != nil {
			return err
		}
	}
	if u := cfg.Systemd; u != nil {
		if err := c.Cgroup().StartUnit(*u, cfg.SystemdDescription, pid, cfg.Resources); err != nil {
			return err
		}
	}
	if cfg.Flags&KillOnClose != 0 {
		if err := c.startWatcher(); err != nil {
			return err
		}
	}
	if err := c.registerInit(); err != nil {
		return err
	}
	if err := r.close(); err != nil {
		return err
	}
	dup, err := unix.FcntlInt(uintptr(pidfd), unix.F_DUPFD_CLOEXEC, 3)
	if err != nil {
		return fmt.Errorf("dup pidfd: %w", err)
	}
	p.Pid, p.Pidfd, p.Console = pid, dup, console
	return nil
}

// makeMountpoints makes, in a rootfs that may not have them (another
// container's, restoring a copy), the mountpoints of the binds CRIU
// restores, as runc does: a directory for a directory, else a file. Those
// under a filesystem of the container's own (a bind of /dev/null in its
// /dev tmpfs) are CRIU's to make.
func makeMountpoints(rootfs string, ms []mounttree.Mount) error {
	root, err := unix.Open(rootfs, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("rootfs: %w", err)
	}
	defer unix.Close(root)
	for _, m := range externalMounts(ms) {
		if underOwnFS(m.Target, ms) {
			continue
		}
		var fd int
		if fi, err := os.Stat(m.Source); err == nil && !fi.IsDir() {
			fd, err = pathrs.CreateFileInRoot(root, m.Target, 0o644)
		} else {
			fd, err = pathrs.MkdirAllInRoot(root, m.Target, 0o755)
		}
		if err != nil {
			return fmt.Errorf("mountpoint %s: %w", m.Target, err)
		}
		unix.Close(fd)
	}
	return nil
}

func underOwnFS(target string, ms []mounttree.Mount) bool {
	for _, m := range ms {
		if m.Type != "bind" && strings.HasPrefix(target, strings.TrimSuffix(m.Target, "/")+"/") {
			return true
		}
	}
	return false
}

// readProcCgroup reads the cgroups of pid as CRIU's cgroup roots: one per
// hierarchy, named by its controllers ("" for cgroup2).
func readProcCgroup(pid int) ([]*rpc.CgroupRoot, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		return nil, err
	}
	var roots []*rpc.CgroupRoot
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		parts := strings.SplitN(l, ":", 3)
		if len(parts) != 3 {
			continue
		}
		roots = append(roots, &rpc.CgroupRoot{Ctrl: proto.String(parts[1]), Path: proto.String(parts[2])})
	}
	return roots, nil
}
