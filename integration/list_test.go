package integration

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestListMissingRoot: list with a --root that does not exist fails, as
// runc's does (a mistyped root would list nothing and pass); an empty one
// lists nothing.
func TestListMissingRoot(t *testing.T) {
	e := newEnv(t, "true")
	missing := filepath.Join(t.TempDir(), "no-such-root")
	r := e.cfd("--root", missing, "list") // the later --root wins
	if r.code == 0 || !strings.Contains(r.stderr, "no such file or directory") {
		t.Errorf("list --root %s: %v", missing, r)
	}
	if r := e.cfd("list", "-q"); r.code != 0 || r.stdout != "" {
		t.Errorf("list of an empty root: %v", r)
	}
}

// TestListJSON: list --format json gives runc's fields in runc's order,
// which scripts (and runc's own tests) match as text.
func TestListJSON(t *testing.T) {
	e := newEnv(t, "sleep", "100")
	e.ok("run", "-d", "-b", e.bundle, e.id)
	out := e.ok("list", "--format", "json")
	keys := []string{`[{"ociVersion":`, `,"id":"` + e.id + `","pid":`, `,"status":"running","bundle":"` + e.bundle + `","rootfs":`, `,"created":`, `,"owner":"root"}]`}
	at := 0
	for _, k := range keys {
		i := strings.Index(out[at:], k)
		if i < 0 {
			t.Fatalf("list --format json: %s\nwant, in order: %q", out, keys)
		}
		at += i + len(k)
	}
}
