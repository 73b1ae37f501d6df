// Package spec is the only part of containerfd that knows config.json: it
// loads an OCI bundle's configuration, validates it and translates it into
// libcontainerfd's plan (a Config and the init Process).
//
// It works on the runtime-spec's own Go types (specs.Spec); there is no
// second config model. Where config.md and config-linux.md say nothing, the
// translation follows runc (and crun where they agree); every such rule is
// commented where it is made. Settings the library cannot honour yet are
// refused with ErrNotSupported, never dropped: a runtime that silently
// ignores seccomp or an LSM label runs the container less confined than its
// owner asked.
//
// Every error names the JSON field it is about, as a path into config.json:
//
//	ociVersion "2.0.0": unsupported major version (want 1.x)
//	mounts[2].destination "/": cannot mount over the root (that is root.path)
//	linux.namespaces[1].type "foo": unknown namespace type
//	mounts[5].options[0] "remount": not supported yet
package spec

import (
	"errors"
	"strings"
)

// ErrNotSupported is wrapped by every error about a setting of config.json
// that containerfd does not implement yet.
var ErrNotSupported = errors.New("not supported yet")

// InvalidError is what Validate (and Translate) return for a configuration
// with problems: all of them, in the order of the fields in config.json
// (map keys sorted), so the same file always gives the same message.
type InvalidError struct {
	Problems []error
}

func (e *InvalidError) Error() string {
	msgs := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		msgs[i] = p.Error()
	}
	return strings.Join(msgs, "; ")
}

// Unwrap lets errors.Is find ErrNotSupported and the fs errors of a root
// path among the problems.
func (e *InvalidError) Unwrap() []error { return e.Problems }
