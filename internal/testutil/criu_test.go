package testutil

import (
	"errors"
	"testing"
)

func TestCRIUReason(t *testing.T) {
	exit := errors.New("exit status 1")
	for _, c := range []struct{ out, want string }{
		// Debian 12's CRIU 3.17 on a 6.18 kernel: the first error is the cause.
		{"Error (criu/vdso.c:381): vdso: Unexpected rt vDSO area bounds\n" +
			"Error (criu/vdso.c:613): vdso: Failed to fill self vdso symtable\n" +
			"Error (criu/crtools.c:260): Could not initialize kernel features detection.\n",
			"vdso: Unexpected rt vDSO area bounds"},
		// A feature check that fails says so on its last line.
		{"UFFD noncoop is not supported\n", "UFFD noncoop is not supported"},
		{"Warn  (criu/cr-check.c:1200): only a warning\n", "only a warning"},
		{"", "exit status 1"},
	} {
		if got := criuReason([]byte(c.out), exit); got != c.want {
			t.Errorf("criuReason(%q) = %q, want %q", c.out, got, c.want)
		}
	}
}
