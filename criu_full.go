//go:build !containerfd_nocriu

package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/containerfd/containerfd/internal/bundle"
	cfd "github.com/containerfd/containerfd/libcontainerfd"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/urfave/cli/v2"
	"golang.org/x/sys/unix"
)

// The actions of checkpoint and restore, in the build with CRIU's RPC
// (bin/containerfd-criu); bin/containerfd runs that binary for them
// (criu_exec.go).

var checkpointAction = onContainer(func(c *cli.Context, ctr *cfd.Container) error {
	cfg, err := bundle.CheckpointConfig(ctr)
	if err != nil {
		return err
	}
	o := &cfd.CheckpointOpts{
		Config:          cfg,
		ImagePath:       c.String("image-path"),
		WorkPath:        c.String("work-path"),
		ParentPath:      c.String("parent-path"),
		PreDump:         c.Bool("pre-dump"),
		LeaveRunning:    c.Bool("leave-running"),
		TCPEstablished:  c.Bool("tcp-established"),
		TCPSkipInFlight: c.Bool("tcp-skip-in-flight"),
		LinkRemap:       c.Bool("link-remap"),
		ExtUnixSk:       c.Bool("ext-unix-sk"),
		ShellJob:        c.Bool("shell-job"),
		FileLocks:       c.Bool("file-locks"),
		AutoDedup:       c.Bool("auto-dedup"),
		LazyPages:       c.Bool("lazy-pages"),
		StatusFD:        c.Int("status-fd"),
		PageServer:      c.String("page-server"),
		CgroupsMode:     cfd.CgroupsMode(c.String("manage-cgroups-mode")),
	}
	if o.ImagePath, err = defaultImagePath(o.ImagePath); err != nil {
		return err
	}
	if o.EmptyNS, err = emptyNS(c); err != nil {
		return err
	}
	if err := ctr.Checkpoint(o); err != nil {
		return err
	}
	if o.LeaveRunning || o.PreDump {
		return nil
	}
	// Dumped and killed, as with runc: the container is gone, to be
	// restored from the images.
	return destroy(ctr, true)
})

func restoreAction(c *cli.Context) error {
	id, err := containerID(c)
	if err != nil {
		return err
	}
	detach := c.Bool("detach")
	var sigs chan os.Signal
	if !detach {
		sigs = catchSignals()
	}
	ro := &cfd.RestoreOpts{
		ImagePath:       c.String("image-path"),
		WorkPath:        c.String("work-path"),
		TCPEstablished:  c.Bool("tcp-established"),
		ExtUnixSk:       c.Bool("ext-unix-sk"),
		ShellJob:        c.Bool("shell-job"),
		FileLocks:       c.Bool("file-locks"),
		AutoDedup:       c.Bool("auto-dedup"),
		LazyPages:       c.Bool("lazy-pages"),
		CgroupsMode:     cfd.CgroupsMode(c.String("manage-cgroups-mode")),
		LSMProfile:      c.String("lsm-profile"),
		LSMMountContext: c.String("lsm-mount-context"),
	}
	if ro.ImagePath, err = defaultImagePath(ro.ImagePath); err != nil {
		return err
	}
	if ro.EmptyNS, err = emptyNS(c); err != nil {
		return err
	}
	opts, err := bundleOptions(c, id)
	if err != nil {
		return err
	}
	consoleSocket := c.String("console-socket")
	opts.Prepare = func(_ *specs.Spec, _ *cfd.Config, proc *cfd.Process) error {
		if proc.Terminal && consoleSocket == "" && detach {
			return errors.New("process.terminal is set: --console-socket is required")
		}
		if !proc.Terminal {
			// In place of the pipes init had, as runc gives its own.
			proc.Stdin, proc.Stdout, proc.Stderr = os.Stdin, os.Stdout, os.Stderr
		}
		return nil
	}
	ctr, proc, err := bundle.Restore(opts, ro)
	if err != nil {
		return err
	}
	defer ctr.Close()
	fail := func(err error) error {
		ctr.KillAll()
		proc.Wait()
		destroy(ctr, false)
		return err
	}
	stopProxy := func() {}
	if proc.Console != nil {
		if consoleSocket != "" {
			err = sendConsole(consoleSocket, proc.Console)
			proc.Console.Close()
			proc.Console = nil
		} else {
			stopProxy, err = proxyConsole(proc.Console)
		}
		if err != nil {
			return fail(err)
		}
	}
	if err := writePidFile(c.String("pid-file"), proc.Pid); err != nil {
		return fail(err)
	}
	logs.Debugf("%s: restored, init is pid %d", id, proc.Pid)
	if detach {
		return nil
	}
	code, err := waitForeground(proc, sigs)
	stopProxy()
	if err != nil {
		return err
	}
	if err := destroy(ctr, true); err != nil {
		logs.Error(err)
	}
	return cli.Exit("", code)
}

// criuStatus is features' word on CRIU: its version, or why it is unusable.
func criuStatus() (string, error) { return cfd.CRIUStatus() }

// defaultImagePath is runc's: ./checkpoint.
func defaultImagePath(p string) (string, error) {
	if p != "" {
		return p, nil
	}
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	return filepath.Join(wd, "checkpoint"), nil
}

// emptyNS reads --empty-ns: namespace names as config.json has them.
func emptyNS(c *cli.Context) (int, error) {
	var flags int
	for _, n := range c.StringSlice("empty-ns") {
		f, ok := namespaceFlags[n]
		if !ok {
			return 0, fmt.Errorf("--empty-ns %q: not a namespace (network, pid, mount, ipc, uts, user, cgroup, time)", n)
		}
		flags |= f
	}
	return flags, nil
}

var namespaceFlags = map[string]int{
	"network": unix.CLONE_NEWNET, "pid": unix.CLONE_NEWPID, "mount": unix.CLONE_NEWNS,
	"ipc": unix.CLONE_NEWIPC, "uts": unix.CLONE_NEWUTS, "user": unix.CLONE_NEWUSER,
	"cgroup": unix.CLONE_NEWCGROUP, "time": unix.CLONE_NEWTIME,
}
