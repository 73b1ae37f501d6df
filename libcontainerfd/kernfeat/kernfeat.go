// Package kernfeat is the registry of the kernel features newer than
// containerfd's minimum (Linux 5.14) that the library uses when present.
// Each is registered once, by the package that makes its system calls,
// with its probe; the probe runs at most once per process, when the
// feature is first asked about.
//
// CONTAINERFD_DISABLE holds a comma-separated list of feature names; a
// listed feature is treated as missing even where the kernel has it, so
// that tests can exercise its fallback.
package kernfeat

import (
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
)

// EnvDisable is the environment variable that switches features off.
const EnvDisable = "CONTAINERFD_DISABLE"

// A Feature is one kernel feature with a fallback.
type Feature struct {
	name, doc string
	probe     func() bool
}

var (
	mu       sync.Mutex
	features []*Feature
)

// Register adds a feature under name (as listed in CONTAINERFD_DISABLE),
// with a one-line description of what it is and what happens without it.
// probe reports whether the running kernel has it; it runs at most once.
// A nil probe is for a feature every kernel from the minimum on has, which
// only CONTAINERFD_DISABLE switches off. Register is meant for package
// variables: it panics on a name registered before or not fit for the list.
func Register(name, doc string, probe func() bool) *Feature {
	if name == "" || strings.ContainsAny(name, ", \t\n") {
		panic(fmt.Sprintf("kernfeat: bad feature name %q", name))
	}
	if probe == nil {
		probe = func() bool { return true }
	}
	f := &Feature{name: name, doc: doc, probe: sync.OnceValue(probe)}
	mu.Lock()
	defer mu.Unlock()
	if slices.ContainsFunc(features, func(g *Feature) bool { return g.name == name }) {
		panic("kernfeat: feature " + name + " registered twice")
	}
	features = append(features, f)
	return f
}

// All returns the registered features, sorted by name.
func All() []*Feature {
	mu.Lock()
	defer mu.Unlock()
	all := slices.Clone(features)
	slices.SortFunc(all, func(a, b *Feature) int { return strings.Compare(a.name, b.name) })
	return all
}

// Name is the feature's name in CONTAINERFD_DISABLE.
func (f *Feature) Name() string { return f.name }

// Doc is the feature's one-line description.
func (f *Feature) Doc() string { return f.doc }

// Available reports whether the feature may be used: CONTAINERFD_DISABLE
// does not list it and the kernel has it (probed once).
func (f *Feature) Available() bool { return !f.Disabled() && f.probe() }

// Disabled reports whether CONTAINERFD_DISABLE lists the feature. The
// environment is read on every call (it is cheap), so that tests can switch
// a feature off and on with t.Setenv.
func (f *Feature) Disabled() bool {
	for _, n := range strings.Split(os.Getenv(EnvDisable), ",") {
		if strings.TrimSpace(n) == f.name {
			return true
		}
	}
	return false
}

// CheckEnv fails when CONTAINERFD_DISABLE lists a name no feature has, so
// that a misspelt or retired name does not silently leave a feature on.
func CheckEnv() error {
	all := All()
	for _, n := range strings.Split(os.Getenv(EnvDisable), ",") {
		n = strings.TrimSpace(n)
		if n == "" || slices.ContainsFunc(all, func(f *Feature) bool { return f.name == n }) {
			continue
		}
		names := make([]string, len(all))
		for i, f := range all {
			names[i] = f.name
		}
		return fmt.Errorf("%s: no kernel feature %q (there are: %s)", EnvDisable, n, strings.Join(names, ", "))
	}
	return nil
}
