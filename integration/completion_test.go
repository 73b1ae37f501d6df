package integration

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// completionScripts writes the completions as make man does and returns
// their directory (the generator is built from the repository: it needs the
// Go toolchain, which the VM's run has not; completion does not depend on
// the kernel).
func completionScripts(t *testing.T) string {
	t.Helper()
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("needs the Go toolchain to build the completion generator (make man)")
	}
	dir := t.TempDir()
	gen := filepath.Join(dir, "gendocs")
	build := exec.Command("go", "build", "-tags", "urfave_cli_no_docs,urfave_cli_no_suggest,godbus_no_tcp,containerfd_gendocs", "-o", gen, "..")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build the generator: %v\n%s", err, out)
	}
	if out, err := exec.Command(gen, dir).CombinedOutput(); err != nil {
		t.Fatalf("gendocs: %v\n%s", err, out)
	}
	return filepath.Join(dir, "completion")
}

// bashComplete sources script in bash --norc, sets COMP_WORDS, COMP_CWORD,
// COMP_LINE and COMP_POINT for words (the last one is being completed, as
// bash splits the line: --root=DIR is three words), calls the completion
// function and returns COMPREPLY. The built containerfd is first on PATH.
func bashComplete(t *testing.T, script string, words ...string) []string {
	t.Helper()
	prog := `source "$1"; shift
COMP_WORDS=("$@"); COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
COMP_LINE=$LINE; COMP_POINT=${#COMP_LINE}
_containerfd
printf '%s\n' "${COMPREPLY[@]}"`
	cmd := exec.Command("bash", append([]string{"--norc", "--noprofile", "-c", prog, "bash", script}, words...)...)
	cmd.Env = append(os.Environ(), "LINE="+strings.Join(words, " "), "PATH="+filepath.Dir(binary)+":"+os.Getenv("PATH"))
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("completing %q: %v", words, err)
	}
	return strings.Fields(string(out))
}

// TestBashCompletionContainerIDs: bash completes commands, a command's flags, and the
// ids of the containers under the --root given on the line for the verbs
// that take one, as their first argument only.
func TestBashCompletionContainerIDs(t *testing.T) {
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("needs bash")
	}
	script := filepath.Join(completionScripts(t), "containerfd.bash")
	e := newEnv(t, "sleep", "100")
	e.ok("create", "-b", e.bundle, e.id)

	if got := bashComplete(t, script, "containerfd", "ru"); !slices.Equal(got, []string{"run"}) {
		t.Errorf("containerfd ru<TAB>: %q, want run", got)
	}
	if got := bashComplete(t, script, "containerfd", "run", "--"); !slices.Contains(got, "--bundle") || !slices.Contains(got, "--detach") || slices.Contains(got, "--root") {
		t.Errorf("containerfd run --<TAB>: %q, want run's flags", got)
	}
	for _, verb := range []string{"kill", "state", "delete", "exec", "ps", "pause", "resume", "update", "events", "start", "wait"} {
		if got := bashComplete(t, script, "containerfd", "--root", e.root, verb, ""); !slices.Equal(got, []string{e.id}) {
			t.Errorf("containerfd --root %s %s <TAB>: %q, want %s", e.root, verb, got, e.id)
		}
	}
	for _, words := range [][]string{
		{"containerfd", "--debug", "--root", "=", e.root, "kill", "--all", e.id[:3]},
		{"containerfd", "--root", e.root, "--log-format", "json", "exec", "--cwd", "/", ""},
	} {
		if got := bashComplete(t, script, words...); !slices.Equal(got, []string{e.id}) {
			t.Errorf("%s<TAB>: %q, want %s", strings.Join(words, " "), got, e.id)
		}
	}
	// Not another root's, not a new container's id, not a second argument.
	for _, words := range [][]string{
		{"containerfd", "--root", t.TempDir(), "kill", ""},
		{"containerfd", "--root", e.root, "create", ""},
		{"containerfd", "--root", e.root, "kill", e.id, ""},
	} {
		if got := bashComplete(t, script, words...); slices.Contains(got, e.id) {
			t.Errorf("%s<TAB>: %q offers %s", strings.Join(words, " "), got, e.id)
		}
	}
}

// TestZshCompletionContainerIDs: zsh's completion system, in a zsh of its
// own on a pseudo-terminal (zpty), completes `containerfd --root DIR kill
// <TAB>` to the one container under DIR. The completed line is then run
// as printf's arguments, so that what the test reads is the line as
// completed, not the echo of what was typed.
func TestZshCompletionContainerIDs(t *testing.T) {
	zsh, err := exec.LookPath("zsh")
	if err != nil {
		t.Skip("needs zsh (apt-get install zsh)")
	}
	dir := completionScripts(t)
	e := newEnv(t, "sleep", "100")
	e.ok("create", "-b", e.bundle, e.id)

	prog := `zmodload zsh/zpty
zpty z 'zsh -f -i'
zpty -w z "PROMPT='> '; bindkey -e; fpath=(${(q)1} \$fpath); path=(${(q)2} \$path); autoload -U compinit; compinit -u -D"
zpty -w -n z "containerfd --root ${(q)3} kill "$'\t'
zpty -w z $'\C-a'"printf '%s|' "
out=
for i in {1..200}; do
	zpty -r -t z chunk && out+=$chunk
	[[ $out == *kill\|*\|* ]] && break
	sleep 0.1
done
print -r -- "$out"
zpty -d z`
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, zsh, "-f", "-c", prog, "zsh", dir, filepath.Dir(binary), e.root)
	cmd.Env = append(os.Environ(), "HOME="+t.TempDir(), "TERM=dumb")
	out, err := cmd.CombinedOutput()
	if want := "containerfd|--root|" + e.root + "|kill|" + e.id + "|"; err != nil || !strings.Contains(string(out), want) {
		t.Errorf("zsh: containerfd --root %s kill <TAB>: %v: %q, want %s", e.root, err, out, want)
	}
}
