package libcontainerfd

import (
	"errors"
	"fmt"

	"github.com/containerfd/containerfd/internal/stopat"
	"github.com/containerfd/containerfd/libcontainerfd/caps"
	"github.com/containerfd/containerfd/libcontainerfd/cgroups"
	"github.com/containerfd/containerfd/libcontainerfd/internal/spawn"
	"github.com/containerfd/containerfd/libcontainerfd/kernfeat"
	"github.com/containerfd/containerfd/libcontainerfd/pathrs"
	"golang.org/x/sys/unix"
)

// A process is started directly when the spawned child can take on its
// identity with system calls alone (spawn.Proc): no Go stage runs between
// the clone and the program, which spares a Go runtime's start (~2 ms of
// CPU and ~1.5 MB charged to the container) per process. What needs the
// stage: an LSM label (written through a checked /proc, package lsm) and a
// seccomp notify listener (handed on over the stage's socket).
func canStartDirect(pc *processConfig) bool {
	if kernfeat.Disabled(kernfeat.DirectExec) {
		return false
	}
	if pc.AppArmorProfile != "" || pc.SELinuxLabel != "" {
		return false
	}
	return pc.Seccomp == nil || pc.Seccomp.Flags&unix.SECCOMP_FILTER_FLAG_NEW_LISTENER == 0
}

// spawnProc is pc for a child that execs path itself, with tty (or -1) as
// its terminal.
func (pc *processConfig) spawnProc(path string, tty int) (*spawn.Proc, error) {
	sp := &spawn.Proc{
		Path: path, Umask: 0o022, Cwd: pc.Cwd, TTY: tty,
		Scheduler: pc.Scheduler, IOPriority: pc.IOPriority, Personality: pc.Personality,
		Groups: pc.Groups, UID: pc.UID, GID: pc.GID,
		NoNewPrivs: pc.NNP, CloseFrom: pc.Files,
	}
	if pc.Umask != nil {
		sp.Umask = int(*pc.Umask)
	}
	if mp := pc.MemoryPolicy; mp != nil {
		sp.MemPolicy = &spawn.MemPolicy{Mode: mp.Mode}
		if mp.Nodes != "" {
			nodes, err := ParseNodeList(mp.Nodes)
			if err != nil {
				return nil, fmt.Errorf("memory policy nodes %q: %w", mp.Nodes, err)
			}
			sp.MemPolicy.Nodes = nodes
		}
	}
	if pc.Seccomp != nil {
		sp.Seccomp, sp.SeccompFlags = pc.Seccomp.Program, pc.Seccomp.Flags
	}
	if pc.Capabilities != nil {
		cs, err := caps.Parse(pc.Capabilities)
		if err != nil {
			return nil, err
		}
		drop, err := cs.Dropped()
		if err != nil {
			return nil, err
		}
		for _, c := range drop {
			sp.BoundingDrop = append(sp.BoundingDrop, uintptr(c))
		}
		data := cs.Data()
		sp.Caps = &data
		for _, c := range cs.Ambient.Caps() {
			sp.Ambient = append(sp.Ambient, uintptr(c))
		}
	}
	if pc.FinalCPUs != "" {
		set, err := ParseCPUList(pc.FinalCPUs)
		if err != nil {
			return nil, fmt.Errorf("cpu affinity %q: %w", pc.FinalCPUs, err)
		}
		sp.Affinity = set
	}
	return sp, nil
}

// execDirect starts p in the container without a stage: lookPath and the
// pty are done here, through root, and the child does the rest (Exec has
// filled in attr's namespaces and cgroup).
func (c *Container) execDirect(p *Process, pc *processConfig, root int, attr spawn.Attr) (err error) {
	path, err := lookPath(pc, func(name string) error { return executableIn(root, name) })
	if err != nil {
		return err
	}
	tty := -1
	if pc.Terminal {
		master, peer, err := newPtyIn(root, pc.ConsoleSize)
		if err != nil {
			return err
		}
		defer unix.Close(peer)
		defer func() {
			if err != nil {
				unix.Close(master)
			} else {
				p.Console = newFile(master, "pty master")
			}
		}()
		tty = peer
	}
	if attr.Proc, err = pc.spawnProc(path, tty); err != nil {
		return err
	}
	files, closeFiles, err := processFiles(p)
	defer closeFiles()
	if err != nil {
		return err
	}
	if c.cg != nil { // none: rootless without a delegated cgroup
		tasks, _, err := c.cg.OpenV1Tasks(cgroups.KeyUnified)
		if err != nil {
			return fmt.Errorf("join cgroup: %w", err)
		}
		defer func() {
			for _, fd := range tasks {
				unix.Close(fd)
			}
		}()
		attr.CgroupTasks = tasks
	}
	attr.Argv, attr.Env, attr.Files = pc.Args, pc.Env, files
	attr.RootFD, attr.UseRootFD = root, true
	attr.RootInUserns = c.st.Namespaces&unix.CLONE_NEWUSER != 0
	attr.Unprivileged = c.st.Rootless && unix.Geteuid() != 0
	attr.Prepare = func(pid int) error {
		stopat.Point("exec:spawned")
		if err := c.enterRdt(pid); err != nil {
			return fmt.Errorf("join intelRdt group: %w", err)
		}
		return c.prepare(pid, p)
	}
	proc, err := spawn.Start(&attr)
	if err != nil {
		return childError(err, pc, path)
	}
	p.Pid, p.Pidfd = proc.Pid, proc.Pidfd
	return nil
}

// childError words a failed step of a direct child as the stage words it.
func childError(err error, pc *processConfig, path string) error {
	var ce *spawn.ChildError
	if !errors.As(err, &ce) {
		return err
	}
	cwd := pc.Cwd
	if cwd == "" {
		cwd = "/"
	}
	switch ce.Step {
	case "chdir to cwd":
		return fmt.Errorf("chdir to cwd %q: %w", cwd, ce.Err)
	case "cwd is outside the root":
		return fmt.Errorf("cwd %q is outside the container root: %w", cwd, ce.Err)
	case "setgroups":
		return fmt.Errorf("setgroups %v: %w", pc.Groups, ce.Err)
	case "setgid":
		return fmt.Errorf("setgid %d: %w", pc.GID, ce.Err)
	case "setuid":
		return fmt.Errorf("setuid %d: %w", pc.UID, ce.Err)
	case "execve":
		return fmt.Errorf("exec %s: %w", path, ce.Err)
	}
	return err
}

// executableIn is executable for a path resolved inside root.
func executableIn(root int, name string) error {
	fd, err := pathrs.OpenInRoot(root, name, unix.O_PATH, 0)
	if err != nil {
		if errors.Is(err, unix.ENOENT) {
			return unix.ENOENT
		}
		return err
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return err
	}
	return executableMode(st.Mode)
}
