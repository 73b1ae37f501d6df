//go:build containerfd_gendocs

// The documentation generator: built from this package with the
// containerfd_gendocs tag (make man), it writes the man pages and the shell
// completions of newApp() into a directory and exits before main runs, so
// that a verb added to the app gets its page and its completion with no
// change here. The normal binary has none of it.
package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/containerfd/containerfd/internal/bundle"
	"github.com/containerfd/containerfd/libcontainerfd/cgroups"
	"github.com/containerfd/containerfd/libcontainerfd/kernfeat"
	"github.com/urfave/cli/v2"
)

// init runs after the package's variables (the commands) are set: in the
// generator it is the whole program.
func init() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: gendocs DIR (writes DIR/man/*.8, DIR/completion/containerfd.bash and DIR/completion/_containerfd)")
		os.Exit(2)
	}
	if err := genDocs(newApp(), os.Args[1]); err != nil {
		fmt.Fprintln(os.Stderr, "gendocs:", err)
		os.Exit(1)
	}
	os.Exit(0)
}

func genDocs(app *cli.App, dir string) error {
	files := manPages(app, envDocs())
	files["completion/containerfd.bash"] = bashCompletion(app)
	files["completion/_containerfd"] = zshCompletion(app)
	// Pages of verbs that are gone must not be installed with the others.
	if err := os.RemoveAll(filepath.Join(dir, "man")); err != nil {
		return err
	}
	for name, text := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// docCommands are the commands that get a page and complete: the visible
// ones, in the app's order (urfave's own help verb is left to --help).
func docCommands(app *cli.App) []*cli.Command {
	var cmds []*cli.Command
	for _, c := range app.Commands {
		if !c.Hidden {
			cmds = append(cmds, c)
		}
	}
	return cmds
}

// docFlags are the visible flags of a command, or of the app when cmd is
// nil, with --help (and --version for the app) as urfave adds them.
func docFlags(app *cli.App, cmd *cli.Command) []cli.DocGenerationFlag {
	flags, extra := app.Flags, []cli.Flag{cli.HelpFlag, cli.VersionFlag}
	if cmd != nil {
		flags, extra = cmd.Flags, []cli.Flag{cli.HelpFlag}
	}
	var out []cli.DocGenerationFlag
	for _, f := range append(append([]cli.Flag{}, flags...), extra...) {
		if v, ok := f.(cli.VisibleFlag); ok && !v.IsVisible() {
			continue
		}
		if d, ok := f.(cli.DocGenerationFlag); ok {
			out = append(out, d)
		}
	}
	return out
}

// synopsis is the command's USAGE as `containerfd CMD --help` prints it
// (urfave's usageTemplate), one line per usage.
func synopsis(app *cli.App, cmd *cli.Command) []string {
	if cmd == nil {
		return []string{app.Name + " [global options] command [command options]"}
	}
	if cmd.UsageText != "" {
		return strings.Split(strings.TrimSpace(cmd.UsageText), "\n")
	}
	s := app.Name + " " + cmd.Name + " [command options]"
	if cmd.ArgsUsage != "" {
		s += " " + cmd.ArgsUsage
	} else if cmd.Args {
		s += " [arguments...]"
	}
	return []string{s}
}

// takesContainerID reports whether the command's first argument is an
// existing container's id: its ArgsUsage, or its UsageText after
// "containerfd VERB", names <container-id> or ID first, and it makes no
// container from a bundle (create, run: their id is a new one).
func takesContainerID(cmd *cli.Command) bool {
	for _, f := range cmd.Flags {
		for _, n := range f.Names() {
			if n == "bundle" {
				return false
			}
		}
	}
	args := strings.Fields(cmd.ArgsUsage)
	if cmd.UsageText != "" {
		args = strings.Fields(cmd.UsageText)
		args = args[min(2, len(args)):]
	}
	return len(args) > 0 && (args[0] == "<container-id>" || args[0] == "ID")
}

// envDoc is an environment variable the CLI reads, its values (name,
// meaning) if it takes names, and the commands it matters to (none: every
// command).
type envDoc struct {
	name, text string
	values     [][2]string
	commands   []string
}

func envDocs() []envDoc {
	var feats [][2]string
	for _, f := range kernfeat.All() {
		feats = append(feats, [2]string{f.Name(), f.Doc()})
	}
	return []envDoc{
		{name: bundle.EnvStart, text: "stage: start every process of a container through the Go stage (a copy of this binary) instead of directly from the runtime, " +
			"for tests and comparisons. Unset: directly wherever the kernel allows. Any other value is an error."},
		{name: kernfeat.EnvDisable, text: "comma-separated kernel features not to use even where the kernel has them, to test the fallbacks; " +
			"a name that is not one of these is an error:", values: feats},
		{name: cgroups.EnvMode, text: "v1, v2 or hybrid: use that cgroup mode instead of the one detected from the mount table (for tests)."},
		{name: "XDG_RUNTIME_DIR", text: "when not root (or root of a user namespace of its own whose USER is not root), " +
			"the default --root is $XDG_RUNTIME_DIR/containerfd, and list --all reads $XDG_RUNTIME_DIR/containerfd-registry."},
		{name: "NOTIFY_SOCKET", commands: []string{"create", "run"}, text: "the sd_notify socket of the caller: the container gets a socket of its own " +
			"at /run/notify/notify.sock, and start passes its READY=1 on, with init's pid."},
		{name: "LISTEN_FDS", commands: []string{"create", "run"}, text: "socket activation: fds 3 to 3+LISTEN_FDS-1 go to the container's init, " +
			"with LISTEN_FDS, LISTEN_PID=1 and LISTEN_FDNAMES, before the --preserve-fds ones."},
	}
}
