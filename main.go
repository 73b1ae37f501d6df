// Command containerfd is an OCI low-level container runtime, a drop-in
// alternative to runc and crun, built on libcontainerfd.
//
// This file holds the app and its global flags (the same as runc's, so
// containerd's shim and podman/conmon can call it unchanged); each command
// group lives in its own file beside it and only parses, calls the library
// and prints.
package main

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strings"

	cfd "github.com/containerfd/containerfd/libcontainerfd"
	"github.com/containerfd/containerfd/libcontainerfd/kernfeat"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/urfave/cli/v2"
)

// Set with -ldflags "-X main.version=... -X main.commit=..." (see Makefile).
var (
	version = "0.1.0-dev"
	commit  = ""
)

const (
	usage       = "an OCI runtime whose core is a container object with a file descriptor"
	description = `containerfd runs containers from OCI bundles (a directory with config.json and
a root filesystem) and takes the same commands and flags as runc, so that
containerd, podman/conmon and other callers can use it in runc's place.`
)

func versionText() string {
	s := fmt.Sprintf("containerfd version %s\n", version)
	if commit != "" {
		s += fmt.Sprintf("commit: %s\n", commit)
	}
	s += fmt.Sprintf("spec: %s\ngo: %s", specs.Version, runtime.Version())
	return s
}

func newApp() *cli.App {
	cli.VersionPrinter = func(c *cli.Context) {
		fmt.Fprintln(c.App.Writer, versionText())
	}
	return &cli.App{
		// One value per flag, commas and all, as runc's urfave/cli v1 takes
		// them: `exec -e A=x,y` sets A to "x,y", `exec --cgroup cpu,cpuacct:sub`
		// names two controllers.
		DisableSliceFlagSeparator: true,
		Name:                      "containerfd",
		Usage:                     usage,
		Description:               description,
		Version:                   version,
		Flags: []cli.Flag{
			&cli.BoolFlag{
				Name:  "debug",
				Usage: "enable debug logging",
			},
			&cli.StringFlag{
				Name:  "log",
				Usage: "set the log file to write containerfd logs to (default is stderr)",
			},
			&cli.StringFlag{
				Name:  "log-format",
				Value: "text",
				Usage: "set the log format ('text' or 'json')",
			},
			&cli.StringFlag{
				Name:        "root",
				DefaultText: "/run/containerfd, or $XDG_RUNTIME_DIR/containerfd when not root",
				Usage:       "root directory for storage of container state (this should be located in tmpfs)",
			},
			&cli.BoolFlag{
				Name:  "systemd-cgroup",
				Usage: "enable systemd cgroup support, expects cgroupsPath to be of form \"slice:prefix:name\" for e.g. \"system.slice:runc:434234\"",
			},
			&cli.StringFlag{
				Name:  "rootless",
				Value: "auto",
				Usage: "make containers without privilege: user namespace owned by the caller, delegated cgroup2 or none ('true', 'false', or 'auto': when not root)",
			},
		},
		Before: func(c *cli.Context) error {
			if err := checkGlobalFlags(c); err != nil {
				return err
			}
			if err := kernfeat.CheckEnv(); err != nil {
				return err
			}
			return setupLog(c)
		},
		Commands: []*cli.Command{
			createCommand, startCommand, runCommand, stateCommand, killCommand,
			deleteCommand, listCommand, psCommand, execCommand, pauseCommand,
			resumeCommand, updateCommand, eventsCommand, specCommand, featuresCommand,
			checkpointCommand, restoreCommand,
			socketCommand, mountCommand, umountCommand, waitCommand, keyringCommand, cpCommand,
			keyUpcallCommand,
		},
		// Errors are logged once, by main.
		ExitErrHandler: func(*cli.Context, error) {},
	}
}

// checkGlobalFlags rejects values runc would reject. Wiring the flags to
// logging, the state root and the cgroup driver comes with the commands.
func checkGlobalFlags(c *cli.Context) error {
	switch f := c.String("log-format"); f {
	case "text", "json":
	default:
		return fmt.Errorf("invalid --log-format %q: want text or json", f)
	}
	switch r := c.String("rootless"); r {
	case "true", "false", "auto":
	default:
		return fmt.Errorf("invalid --rootless %q: want true, false or auto", r)
	}
	return nil
}

func main() {
	// A process the library started from this binary (a stage) runs its
	// part here and exits; nothing of the CLI runs in it.
	cfd.Init()
	app := newApp()
	args := reorderArgs(app, os.Args)
	err := app.Run(args)
	if err == nil {
		return
	}
	// A process's exit code (run, exec) is ours, with nothing to log.
	var exit cli.ExitCoder
	if errors.As(err, &exit) && exit.Error() == "" {
		os.Exit(exit.ExitCode())
	}
	logs.Error(err)
	// As runc: exec's own failures exit 255, set apart from the exit
	// codes of the process it runs; every other failure exits 1.
	if commandOf(app, args) == execCommand {
		os.Exit(255)
	}
	os.Exit(1)
}

// reorderArgs moves a command's flags given after its arguments before
// them, as runc's command line (urfave/cli v1) does: callers and scripts
// write `runc update ID --memory 64m`, which cli v2 would take as three
// arguments and no flag. Up to a "--", an argument of runc's commands is
// moved if it names a flag of the command, with the next one if that flag
// takes a value. exec and ps are left as they are: what follows their
// container id is a command line of its own. Of containerfd's own verbs
// (ownVerbs), every argument that looks like a flag is moved, so that one
// it does not have is refused rather than taken as an argument, and socket's
// only up to the host command that follows the container id.
func reorderArgs(app *cli.App, args []string) []string {
	i := commandIndex(app, args)
	if i >= len(args) {
		return args
	}
	cmd := app.Command(args[i])
	if cmd == nil {
		return args
	}
	order, own := ownVerbs[cmd.Name]
	if !own && !runcReorders[cmd.Name] || order == parsesItself {
		return args
	}
	out := append([]string{}, args[:i+1]...)
	var rest []string
	tail := args[i+1:]
	for j := 0; j < len(tail); j++ {
		a := tail[j]
		if a == "--" {
			rest = append(append([]string{"--"}, rest...), tail[j+1:]...)
			break
		}
		f := lookupFlag(cmd.Flags, a)
		if f == nil && !(own && isFlagLike(a)) {
			if order == flagsBeforeCommand && len(rest) == 1 {
				// The container id, then the command and its arguments.
				rest = append(append([]string{"--"}, rest...), tail[j:]...)
				break
			}
			rest = append(rest, a)
			continue
		}
		out = append(out, a)
		if f != nil && takesValue(f) && !strings.Contains(a, "=") && j+1 < len(tail) {
			j++
			out = append(out, tail[j])
		}
	}
	return append(out, rest...)
}

// argOrder is where a verb of containerfd's own takes its flags.
type argOrder int

const (
	// flagsAnywhere: before, between or after the arguments, up to "--".
	flagsAnywhere argOrder = iota
	// flagsBeforeCommand: before the container id or after it, up to the
	// host command that follows it, or "--".
	flagsBeforeCommand
	// parsesItself: the command takes its arguments unparsed (keyring).
	parsesItself
)

// ownVerbs are containerfd's verbs that runc does not have. Their flags may
// follow the container id too, and their usage lines are the synopsis lines
// of docs/beyond-runc.md (main_test.go checks both).
var ownVerbs = map[string]argOrder{
	"socket": flagsBeforeCommand, "mount": flagsAnywhere, "umount": flagsAnywhere,
	"wait": flagsAnywhere, "keyring": parsesItself, "cp": flagsAnywhere,
}

// isFlagLike reports whether arg looks like a flag: "-" alone is stdin,
// a file or an argument.
func isFlagLike(arg string) bool { return len(arg) > 1 && arg[0] == '-' }

// commandIndex returns the index in args of the command's name: the first
// argument after the global flags and their values (len(args) if none).
func commandIndex(app *cli.App, args []string) int {
	i := 1
	for i < len(args) && strings.HasPrefix(args[i], "-") && args[i] != "--" {
		f := lookupFlag(app.Flags, args[i])
		i++
		if f != nil && takesValue(f) && !strings.Contains(args[i-1], "=") {
			i++
		}
	}
	return i
}

// commandOf returns the command args run, or nil.
func commandOf(app *cli.App, args []string) *cli.Command {
	if i := commandIndex(app, args); i < len(args) {
		return app.Command(args[i])
	}
	return nil
}

// runcReorders names the commands whose flags runc takes after the
// arguments too.
var runcReorders = map[string]bool{
	"create": true, "start": true, "run": true, "state": true, "kill": true,
	"delete": true, "list": true, "pause": true, "resume": true, "update": true,
	"events": true, "spec": true, "features": true, "checkpoint": true, "restore": true,
}

// lookupFlag returns the flag of flags that arg ("-f", "--flag",
// "--flag=value") names, or nil.
func lookupFlag(flags []cli.Flag, arg string) cli.Flag {
	if arg == "-" || !strings.HasPrefix(arg, "-") {
		return nil
	}
	name, _, _ := strings.Cut(strings.TrimPrefix(strings.TrimPrefix(arg, "-"), "-"), "=")
	for _, f := range flags {
		if slices.Contains(f.Names(), name) {
			return f
		}
	}
	return nil
}

func takesValue(f cli.Flag) bool {
	v, ok := f.(cli.DocGenerationFlag)
	return ok && v.TakesValue()
}
