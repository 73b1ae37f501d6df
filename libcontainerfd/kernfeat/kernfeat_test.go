package kernfeat_test

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/containerfd/containerfd/internal/mdtext"
	"github.com/containerfd/containerfd/libcontainerfd/kernfeat"

	// The library links every package that registers a feature.
	_ "github.com/containerfd/containerfd/libcontainerfd"
)

func names() []string {
	var ns []string
	for _, f := range kernfeat.All() {
		ns = append(ns, f.Name())
	}
	return ns
}

// docs/testing.md's "Forcing fallbacks" lists every registered feature, in
// its table and in its example, and no other.
func TestFallbacksDocListsEveryFeature(t *testing.T) {
	const doc = "../../docs/testing.md"
	b, err := os.ReadFile(doc)
	if err != nil {
		t.Fatal(err)
	}
	sec, ok := mdtext.Section(string(b), "## Forcing fallbacks")
	if !ok {
		t.Fatalf("%s has no section Forcing fallbacks", doc)
	}
	var table []string
	for _, m := range regexp.MustCompile("(?m)^\\| `([^`]+)` ").FindAllStringSubmatch(sec, -1) {
		table = append(table, m[1])
	}
	m := regexp.MustCompile(`(?m)^` + kernfeat.EnvDisable + `=(\S+)`).FindStringSubmatch(sec)
	if m == nil {
		t.Fatalf("the section has no %s= example", kernfeat.EnvDisable)
	}
	example := strings.Split(m[1], ",")
	want := names()
	slices.Sort(table)
	slices.Sort(example)
	if !slices.Equal(table, want) {
		t.Errorf("%s: the table lists %v, registered: %v", doc, table, want)
	}
	if !slices.Equal(example, want) {
		t.Errorf("%s: the example lists %v, registered: %v", doc, example, want)
	}
}

func TestRegistry(t *testing.T) {
	all := kernfeat.All()
	if len(all) == 0 {
		t.Fatal("no feature registered")
	}
	for _, f := range all {
		if f.Doc() == "" {
			t.Errorf("%s: no description", f.Name())
		}
		avail := f.Available()
		t.Logf("%s: available %v: %s", f.Name(), avail, f.Doc())
		t.Setenv(kernfeat.EnvDisable, "x, "+f.Name())
		if !f.Disabled() || f.Available() {
			t.Errorf("%s: still available with %s=%s", f.Name(), kernfeat.EnvDisable, os.Getenv(kernfeat.EnvDisable))
		}
		t.Setenv(kernfeat.EnvDisable, "")
		if f.Available() != avail {
			t.Errorf("%s: available %v once enabled again, %v before", f.Name(), f.Available(), avail)
		}
	}
}

func TestCheckEnv(t *testing.T) {
	t.Setenv(kernfeat.EnvDisable, ","+strings.Join(names(), ", "))
	if err := kernfeat.CheckEnv(); err != nil {
		t.Error(err)
	}
	t.Setenv(kernfeat.EnvDisable, "direct-exec")
	if err := kernfeat.CheckEnv(); err == nil || !strings.Contains(err.Error(), `"direct-exec"`) {
		t.Errorf("CheckEnv with a retired name: %v", err)
	}
}

func TestRegisterTwice(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("a second registration of a name did not panic")
		}
	}()
	kernfeat.Register(names()[0], "again", nil)
}
