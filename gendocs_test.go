package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"
)

// generate builds the generator as make man does and runs it into a
// directory of the test's, beside a containerfd built as make build does.
func generate(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	const tags = "urfave_cli_no_docs,urfave_cli_no_suggest,godbus_no_tcp"
	for out, tags := range map[string]string{"gendocs": tags + ",containerfd_gendocs", "containerfd": tags} {
		build := exec.Command("go", "build", "-tags", tags, "-o", filepath.Join(dir, out), ".")
		build.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := build.CombinedOutput(); err != nil {
			t.Fatalf("go build -tags %s: %v\n%s", tags, err, out)
		}
	}
	if out, err := exec.Command(filepath.Join(dir, "gendocs"), dir).CombinedOutput(); err != nil {
		t.Fatalf("gendocs: %v\n%s", err, out)
	}
	return dir
}

// visibleCommands are the app's commands that get pages and completion.
func visibleCommands(app *cli.App) (visible, hidden []*cli.Command) {
	for _, c := range app.Commands {
		if c.Hidden {
			hidden = append(hidden, c)
		} else {
			visible = append(visible, c)
		}
	}
	return visible, hidden
}

// roffFlag is how a page names a flag: bold, its dashes escaped.
func roffFlag(name string) string {
	dash := "--"
	if len(name) == 1 {
		dash = "-"
	}
	return `\fB` + strings.ReplaceAll(dash+name, "-", `\-`) + `\fR`
}

// unroff undoes the escapes of the generator's plain text.
func unroff(s string) string {
	return strings.NewReplacer(`\-`, "-", `\e`, `\`, `\&`, "").Replace(s)
}

// helpUsage is the USAGE section of `containerfd CMD --help`, from the
// binary: in this process, app.Run would change the commands, which every
// newApp shares.
func helpUsage(t *testing.T, bin, name string) []string {
	t.Helper()
	out, err := exec.Command(bin, name, "--help").Output()
	if err != nil {
		t.Fatalf("%s --help: %v", name, err)
	}
	_, rest, _ := strings.Cut(string(out), "USAGE:\n")
	var lines []string
	for _, l := range strings.Split(rest, "\n") {
		if strings.TrimSpace(l) == "" {
			break
		}
		lines = append(lines, strings.TrimSpace(l))
	}
	return lines
}

// pageSection returns the text of a page's section, up to the next one.
func pageSection(page, title string) string {
	_, s, _ := strings.Cut(page, ".SH \""+title+"\"\n")
	s, _, _ = strings.Cut(s, "\n.SH ")
	return s
}

// TestManPages: every visible command has a page (hidden ones none), with
// the synopsis --help shows and every flag and alias of the command;
// containerfd(8) has every global flag and every command; man renders
// each page without a warning.
func TestManPages(t *testing.T) {
	dir := generate(t)
	app := newApp()
	visible, hidden := visibleCommands(app)
	want := []string{"containerfd.8"}
	for _, cmd := range visible {
		want = append(want, "containerfd-"+cmd.Name+".8")
	}
	entries, err := os.ReadDir(filepath.Join(dir, "man"))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range entries {
		got = append(got, e.Name())
	}
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("pages: got %q, want %q", got, want)
	}
	for _, cmd := range hidden {
		if slices.Contains(got, "containerfd-"+cmd.Name+".8") {
			t.Errorf("hidden command %s has a page", cmd.Name)
		}
	}
	read := func(name string) string {
		b, err := os.ReadFile(filepath.Join(dir, "man", name))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	for _, cmd := range visible {
		page := read("containerfd-" + cmd.Name + ".8")
		syn := unroff(pageSection(page, "SYNOPSIS"))
		for _, l := range helpUsage(t, filepath.Join(dir, "containerfd"), cmd.Name) {
			if !strings.Contains(syn, l+"\n") {
				t.Errorf("containerfd-%s(8): SYNOPSIS %q lacks --help's usage line %q", cmd.Name, syn, l)
			}
		}
		opts := pageSection(page, "OPTIONS")
		for _, f := range append(slices.Clone(cmd.Flags), cli.HelpFlag) {
			for _, n := range f.Names() {
				if !strings.Contains(opts, roffFlag(n)) {
					t.Errorf("containerfd-%s(8): OPTIONS lacks %s", cmd.Name, unroff(roffFlag(n)))
				}
			}
		}
		for _, s := range []string{"NAME", "DESCRIPTION", "SEE ALSO"} {
			if pageSection(page, s) == "" {
				t.Errorf("containerfd-%s(8): no %s", cmd.Name, s)
			}
		}
	}
	page := read("containerfd.8")
	global := pageSection(page, "GLOBAL OPTIONS")
	for _, f := range append(slices.Clone(app.Flags), cli.HelpFlag, cli.VersionFlag) {
		for _, n := range f.Names() {
			if !strings.Contains(global, roffFlag(n)) {
				t.Errorf("containerfd(8): GLOBAL OPTIONS lacks %s", unroff(roffFlag(n)))
			}
		}
	}
	for _, cmd := range visible {
		if !strings.Contains(pageSection(page, "COMMANDS"), `\fB`+cmd.Name+`\fR`) {
			t.Errorf("containerfd(8): COMMANDS lacks %s", cmd.Name)
		}
	}
	for _, v := range []string{"CONTAINERFD_START", "CONTAINERFD_DISABLE", "XDG_RUNTIME_DIR"} {
		if !strings.Contains(pageSection(page, "ENVIRONMENT"), `\fB`+v+`\fR`) {
			t.Errorf("containerfd(8): ENVIRONMENT lacks %s", v)
		}
	}

	if _, err := exec.LookPath("man"); err != nil {
		t.Skip("rendering the pages needs man (apt-get install man-db)")
	}
	for _, name := range want {
		cmd := exec.Command("man", "--warnings", "-l", "-Tutf8", filepath.Join(dir, "man", name))
		cmd.Env = append(os.Environ(), "LC_ALL=C.UTF-8")
		var stderr strings.Builder
		cmd.Stderr = &stderr
		if err := cmd.Run(); err != nil || stderr.Len() > 0 {
			t.Errorf("man -l %s: %v: %s", name, err, stderr.String())
		}
	}
}

// TestInstallManAndCompletion: make install puts every page where man
// finds it and the completions where bash-completion and zsh look; make
// uninstall takes all of it away. Installed with DESTDIR, as packages are,
// man -M finds the pages; with PREFIX, man finds them from PATH alone, as
// `man containerfd-run` does after a plain make install.
func TestInstallManAndCompletion(t *testing.T) {
	for _, tool := range []string{"make", "man"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("needs %s (apt-get install make man-db)", tool)
		}
	}
	visible, _ := visibleCommands(newApp())
	// installed runs make install with vars, checks what is in root (the
	// prefix's directory) and returns a make uninstall with the same vars.
	installed := func(root string, vars ...string) (uninstall func()) {
		t.Helper()
		runMake := func(target string) {
			t.Helper()
			if out, err := exec.Command("make", append([]string{target}, vars...)...).CombinedOutput(); err != nil {
				t.Fatalf("make %s %s: %v\n%s", target, strings.Join(vars, " "), err, out)
			}
		}
		runMake("install")
		for _, cmd := range visible {
			if _, err := os.Stat(filepath.Join(root, "share/man/man8", "containerfd-"+cmd.Name+".8")); err != nil {
				t.Error(err)
			}
		}
		// containerfd-criu beside containerfd: its checkpoint and restore
		// exec it from there.
		for _, p := range []string{"bin/containerfd", "bin/containerfd-criu", "bin/containerd-shim-containerfd-v2",
			"share/bash-completion/completions/containerfd", "share/zsh/vendor-completions/_containerfd"} {
			if _, err := os.Stat(filepath.Join(root, p)); err != nil {
				t.Error(err)
			}
		}
		return func() { runMake("uninstall") }
	}
	noFiles := func(dir string) {
		t.Helper()
		filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
			if err == nil && !d.IsDir() {
				t.Errorf("left after make uninstall: %s", p)
			}
			return err
		})
	}
	manW := func(env []string, args ...string) string {
		t.Helper()
		cmd := exec.Command("man", append(args, "-w", "containerfd-run")...)
		cmd.Env = env
		out, err := cmd.Output()
		if err != nil {
			t.Errorf("man %s -w containerfd-run: %v", strings.Join(args, " "), err)
		}
		return strings.TrimSpace(string(out))
	}

	dest := t.TempDir()
	prefix := filepath.Join(dest, "usr/local")
	uninstall := installed(prefix, "DESTDIR="+dest)
	mandir := filepath.Join(prefix, "share/man")
	if got, want := manW(os.Environ(), "-M", mandir), filepath.Join(mandir, "man8/containerfd-run.8"); got != want {
		t.Errorf("man -M %s -w containerfd-run: %q, want %s", mandir, got, want)
	}
	uninstall()
	noFiles(dest)

	prefix = t.TempDir()
	uninstall = installed(prefix, "PREFIX="+prefix, "REQUEST_KEY_D="+filepath.Join(prefix, "etc"))
	env := []string{"PATH=" + filepath.Join(prefix, "bin") + ":/usr/bin:/bin", "HOME=" + prefix}
	if got, want := manW(env), filepath.Join(prefix, "share/man/man8/containerfd-run.8"); got != want {
		t.Errorf("PATH=%s/bin man -w containerfd-run: %q, want %s", prefix, got, want)
	}
	uninstall()
	noFiles(prefix)
}

// complete runs the bash completion of words (the last one is completed)
// in bash --norc and returns COMPREPLY.
func complete(t *testing.T, script string, words ...string) []string {
	t.Helper()
	line := strings.Join(words, " ")
	prog := `source "$1"; shift
COMP_WORDS=("$@"); COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
COMP_LINE=$LINE; COMP_POINT=${#COMP_LINE}
_containerfd
printf '%s\n' "${COMPREPLY[@]}"`
	cmd := exec.Command("bash", append([]string{"--norc", "--noprofile", "-c", prog, "bash", script}, words...)...)
	cmd.Env = append(os.Environ(), "LINE="+line)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("completing %q: %v", line, err)
	}
	return strings.Fields(string(out))
}

func dashedNames(flags []cli.Flag) []string {
	var names []string
	for _, f := range flags {
		for _, n := range f.Names() {
			if len(n) == 1 {
				names = append(names, "-"+n)
			} else {
				names = append(names, "--"+n)
			}
		}
	}
	slices.Sort(names)
	return slices.Compact(names)
}

// TestBashCompletion: every visible command completes from a prefix, and
// after "-" to exactly its flags (the global ones before a command);
// hidden commands never.
func TestBashCompletion(t *testing.T) {
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("needs bash")
	}
	script := filepath.Join(generate(t), "completion", "containerfd.bash")
	app := newApp()
	visible, hidden := visibleCommands(app)
	all := complete(t, script, "containerfd", "")
	for _, cmd := range visible {
		if got := complete(t, script, "containerfd", cmd.Name[:len(cmd.Name)-1]); !slices.Contains(got, cmd.Name) {
			t.Errorf("containerfd %s<TAB>: %q lacks %s", cmd.Name[:len(cmd.Name)-1], got, cmd.Name)
		}
		got := complete(t, script, "containerfd", "--debug", cmd.Name, "-")
		slices.Sort(got)
		if want := dashedNames(append(slices.Clone(cmd.Flags), cli.HelpFlag)); !slices.Equal(got, want) {
			t.Errorf("containerfd %s -<TAB>: got %q, want %q", cmd.Name, got, want)
		}
	}
	for _, cmd := range hidden {
		if slices.Contains(all, cmd.Name) {
			t.Errorf("containerfd <TAB> offers hidden %s", cmd.Name)
		}
	}
	got := complete(t, script, "containerfd", "--root", "/r", "-")
	slices.Sort(got)
	if want := dashedNames(append(slices.Clone(app.Flags), cli.HelpFlag, cli.VersionFlag)); !slices.Equal(got, want) {
		t.Errorf("containerfd -<TAB>: got %q, want %q", got, want)
	}
	// A flag's value is a file name (bash's default), not a command.
	if got := complete(t, script, "containerfd", "--root", ""); len(got) != 0 {
		t.Errorf("containerfd --root <TAB>: %q, want bash's default", got)
	}
}

// TestZshCompletionSyntax: the zsh function parses.
func TestZshCompletionSyntax(t *testing.T) {
	zsh, err := exec.LookPath("zsh")
	if err != nil {
		t.Skip("needs zsh (apt-get install zsh)")
	}
	f := filepath.Join(generate(t), "completion", "_containerfd")
	if out, err := exec.Command(zsh, "-n", f).CombinedOutput(); err != nil {
		t.Errorf("zsh -n %s: %v\n%s", f, err, out)
	}
}
