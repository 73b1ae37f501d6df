package integration

import (
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// TestHookFailureWords: a failing hook fails create with runc's words,
// "error running <kind> hook #<index>:", which callers and runc's tests
// match, and exit code 1, as runc's.
func TestHookFailureWords(t *testing.T) {
	e := newEnv(t, "true")
	s := e.spec()
	s.Hooks = &specs.Hooks{CreateRuntime: []specs.Hook{
		{Path: "/bin/true"},
		{Path: "/bin/sh", Args: []string{"sh", "-c", "echo hook-out; echo hook-err >&2; exit 3"}},
	}}
	e.writeSpec(s)
	r := e.cfd("create", "-b", e.bundle, e.id)
	if r.code != 1 || !strings.Contains(r.stderr, "error running createRuntime hook #1: /bin/sh: exit status 3: hook-err (stdout: hook-out)") {
		t.Errorf("create with a failing second createRuntime hook: %v", r)
	}
}

// TestExecFailureExitCode: exec's own failures exit 255, as runc's, set
// apart from the exit code of the process it runs.
func TestExecFailureExitCode(t *testing.T) {
	e := newEnv(t, "sleep", "100")
	e.ok("run", "-d", "-b", e.bundle, e.id)
	for _, tc := range []struct {
		args []string
		code int
	}{
		{[]string{"exec", e.id, "sh", "-c", "exit 3"}, 3},
		{[]string{"exec", e.id, "false"}, 1},
		{[]string{"exec", e.id, "no-such-binary"}, 255},
		{[]string{"exec", "no-such-container", "true"}, 255},
	} {
		if r := e.cfd(tc.args...); r.code != tc.code {
			t.Errorf("%s: %v, want exit %d", strings.Join(tc.args, " "), r, tc.code)
		}
	}
}
