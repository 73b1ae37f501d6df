package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/containerfd/containerfd/internal/bundle"
	cfd "github.com/containerfd/containerfd/libcontainerfd"
	"github.com/containerfd/containerfd/spec"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/urfave/cli/v2"
)

var execCommand = &cli.Command{
	Name:      "exec",
	Usage:     "run a new process in a running container",
	ArgsUsage: "<container-id> [command [args...]]",
	Flags: []cli.Flag{
		&cli.StringFlag{Name: "process", Aliases: []string{"p"}, Usage: "path to a process.json (an OCI process object); the command line then gives no command"},
		&cli.StringFlag{Name: "console-socket", Usage: "path to an AF_UNIX socket which will receive the pty master"},
		&cli.StringFlag{Name: "cwd", Usage: "current working directory in the container"},
		&cli.StringSliceFlag{Name: "env", Aliases: []string{"e"}, Usage: "set an environment variable (KEY=value)"},
		&cli.BoolFlag{Name: "tty", Aliases: []string{"t"}, Usage: "allocate a pseudo-TTY"},
		&cli.StringFlag{Name: "user", Aliases: []string{"u"}, Usage: "UID (format: <uid>[:<gid>])"},
		&cli.Int64SliceFlag{Name: "additional-gids", Aliases: []string{"g"}, Usage: "additional gids"},
		&cli.BoolFlag{Name: "detach", Aliases: []string{"d"}, Usage: "detach from the process"},
		&cli.StringFlag{Name: "pid-file", Usage: "file to write the process's pid to"},
		&cli.StringFlag{Name: "pidfd-socket", Usage: "send a pidfd of the process over the AF_UNIX socket at this path"},
		&cli.StringFlag{Name: "process-label", Usage: "SELinux label of the process (an error where SELinux is not enabled)"},
		&cli.StringFlag{Name: "apparmor", Usage: "AppArmor profile of the process (an error where AppArmor is not enabled)"},
		&cli.BoolFlag{Name: "no-new-privs", Usage: "set no_new_privs for the process"},
		&cli.StringSliceFlag{Name: "cap", Aliases: []string{"c"}, Usage: "add a capability to the bounding, effective and permitted sets"},
		&cli.IntFlag{Name: "preserve-fds", Usage: "pass N more fds (3 to 3+N-1) to the process"},
		&cli.StringSliceFlag{Name: "cgroup", Usage: "run the process in existing sub-cgroups of the container's: PATH (cgroup2), or CONTROLLER[,CONTROLLER]:PATH, once per v1 hierarchy"},
		&cli.BoolFlag{Name: "ignore-paused", Usage: "allow exec in a paused container"},
	},
	Action: func(c *cli.Context) error {
		sub, err := subCgroups(c.StringSlice("cgroup"))
		if err != nil {
			return err
		}
		var sigs chan os.Signal
		if !c.Bool("detach") {
			sigs = catchSignals()
		}
		ctr, err := load(c)
		if err != nil {
			return err
		}
		defer ctr.Close()
		st, err := ctr.Status()
		if err != nil {
			return err
		}
		switch {
		case st == cfd.Paused && !c.Bool("ignore-paused"):
			return fmt.Errorf("cannot exec in a paused container %s (use --ignore-paused)", ctr.ID())
		case st != cfd.Running && st != cfd.Created && st != cfd.Paused:
			return fmt.Errorf("cannot exec in a container that is %s", st)
		}
		sp, err := execProcess(c, ctr)
		if err != nil {
			return err
		}
		proc, err := spec.TranslateProcess(sp)
		if err != nil {
			return err
		}
		for _, w := range spec.ProcessWarnings(sp) {
			logs.Warn("%s", w)
		}
		consoleSocket := c.String("console-socket")
		if proc.Terminal && consoleSocket == "" && c.Bool("detach") {
			return errors.New("a terminal needs --console-socket with --detach")
		}
		if !proc.Terminal {
			proc.Stdin, proc.Stdout, proc.Stderr = os.Stdin, os.Stdout, os.Stderr
		}
		// Without a console socket the pty is copied to our terminal.
		proc.ClearONLCR = proc.Terminal && consoleSocket == ""
		proc.ExtraFiles, _ = inheritedFiles(c.Int("preserve-fds"))
		proc.SubCgroups = sub
		if err := ctr.Exec(proc); err != nil {
			if !c.Bool("detach") {
				return execFailure(err)
			}
			return err
		}
		logs.Debugf("%s: exec'd %s as pid %d", ctr.ID(), proc.Args[0], proc.Pid)
		stopProxy := func() {}
		if proc.Console != nil {
			if consoleSocket != "" {
				err = sendConsole(consoleSocket, proc.Console)
				proc.Console.Close()
			} else {
				stopProxy, err = proxyConsole(proc.Console)
			}
		}
		if err == nil {
			err = writePidFile(c.String("pid-file"), proc.Pid)
		}
		if path := c.String("pidfd-socket"); err == nil && path != "" {
			err = sendFD(path, proc.Pidfd, "pidfd")
		}
		if err != nil {
			proc.Signal(9)
			proc.Wait()
			if stopProxy != nil {
				stopProxy()
			}
			return err
		}
		if c.Bool("detach") {
			return nil
		}
		code, err := waitForeground(proc, sigs)
		stopProxy()
		if err != nil {
			return err
		}
		return cli.Exit("", code)
	},
}

// execProcess is the process exec runs: --process FILE as it is, or the
// container's own process from its config.json with the command line's
// command and changes, as runc does.
func execProcess(c *cli.Context, ctr *cfd.Container) (*specs.Process, error) {
	if path := c.String("process"); path != "" {
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("exec --process: %w", err)
		}
		var p specs.Process
		if err := json.Unmarshal(b, &p); err != nil {
			return nil, fmt.Errorf("exec --process %s: %w", path, err)
		}
		if p.Capabilities == nil || p.ExecCPUAffinity == nil {
			// The container's, as runc gives them: not all of root's
			// capabilities, and its execCPUAffinity.
			cp, err := bundle.Process(ctr)
			if err != nil {
				return nil, err
			}
			if cp != nil && p.Capabilities == nil {
				p.Capabilities = cp.Capabilities
			}
			if cp != nil && p.ExecCPUAffinity == nil {
				p.ExecCPUAffinity = cp.ExecCPUAffinity
			}
		}
		return &p, nil
	}
	if c.Args().Len() < 2 {
		return nil, errors.New("exec: no command given (and no --process)")
	}
	p, err := bundle.Process(ctr)
	if err != nil {
		return nil, err
	}
	if p == nil {
		p = &specs.Process{}
	}
	p.Args = c.Args().Tail()
	p.Env = append(p.Env, c.StringSlice("env")...)
	if cwd := c.String("cwd"); cwd != "" {
		p.Cwd = cwd
	}
	p.Terminal = c.Bool("tty")
	p.NoNewPrivileges = p.NoNewPrivileges || c.Bool("no-new-privs")
	if l := c.String("apparmor"); l != "" {
		p.ApparmorProfile = l
	}
	if l := c.String("process-label"); l != "" {
		p.SelinuxLabel = l
	}
	if u := c.String("user"); u != "" {
		uid, gid, hasGID := strings.Cut(u, ":")
		n, err := strconv.ParseUint(uid, 10, 32)
		if err != nil {
			return nil, fmt.Errorf("exec --user %q: uid must be a number", u)
		}
		p.User.UID = uint32(n)
		if hasGID {
			n, err := strconv.ParseUint(gid, 10, 32)
			if err != nil {
				return nil, fmt.Errorf("exec --user %q: gid must be a number", u)
			}
			p.User.GID = uint32(n)
		}
	}
	for _, g := range c.Int64Slice("additional-gids") {
		p.User.AdditionalGids = append(p.User.AdditionalGids, uint32(g))
	}
	if caps := c.StringSlice("cap"); len(caps) > 0 {
		if p.Capabilities == nil {
			p.Capabilities = &specs.LinuxCapabilities{}
		}
		pc := p.Capabilities
		for _, cp := range caps {
			pc.Bounding = append(pc.Bounding, cp)
			pc.Effective = append(pc.Effective, cp)
			pc.Permitted = append(pc.Permitted, cp)
			// Never inheritable (CVE-2022-29162); ambient only where the
			// config already grants inheritable ones, as runc does.
			if pc.Inheritable != nil {
				pc.Ambient = append(pc.Ambient, cp)
			}
		}
	}
	return p, nil
}

// subCgroups reads exec's --cgroup values as runc does: one PATH alone (for
// cgroup2, or every hierarchy), or CONTROLLER[,CONTROLLER...]:PATH each.
func subCgroups(args []string) (map[string]string, error) {
	if len(args) == 0 {
		return nil, nil
	}
	sub := make(map[string]string, len(args))
	for _, a := range args {
		ctrls, path, ok := strings.Cut(a, ":")
		if !ok {
			if len(args) != 1 {
				return nil, fmt.Errorf("exec --cgroup %s: more than one --cgroup, so each needs a CONTROLLER: prefix", a)
			}
			sub[""] = a
			continue
		}
		for _, ctrl := range strings.Split(ctrls, ",") {
			if ctrl == "" {
				return nil, fmt.Errorf("exec --cgroup %s: an empty controller name", a)
			}
			if _, dup := sub[ctrl]; dup {
				return nil, fmt.Errorf("exec --cgroup %s: controller %s given twice", a, ctrl)
			}
			sub[ctrl] = path
		}
	}
	return sub, nil
}
