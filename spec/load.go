package spec

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"

	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// ConfigFile is the name of the configuration inside a bundle.
const ConfigFile = "config.json"

// Load reads and parses bundle/config.json. It does not validate it (see
// Validate). Errors say where the file is wrong:
//
//	bundle /x: open config.json: no such file or directory
//	config.json: invalid JSON at line 3 col 5: invalid character '}' looking for beginning of object key string
//	config.json: process.user.uid: want a non-negative integer, got JSON string (line 5 col 14)
//
// A missing file wraps fs.ErrNotExist.
func Load(bundle string) (*specs.Spec, error) {
	data, err := readBundle(bundle)
	if err != nil {
		return nil, err
	}
	return Parse(data)
}

// readBundle reads bundle/config.json, with errors that name the bundle.
func readBundle(bundle string) ([]byte, error) {
	abs, err := filepath.Abs(bundle)
	if err != nil {
		return nil, fmt.Errorf("bundle %s: %w", bundle, err)
	}
	data, err := readConfig(filepath.Join(abs, ConfigFile))
	if err != nil {
		return nil, fmt.Errorf("bundle %s: %w", abs, err)
	}
	return data, nil
}

// Parse decodes the text of a config.json, with Load's errors. The sections
// of other platforms (solaris, windows, vm, zos, freebsd) are skipped.
func Parse(data []byte) (*specs.Spec, error) {
	var l linuxSpec
	if err := json.Unmarshal(data, &l); err != nil {
		return nil, jsonError(data, err)
	}
	return &specs.Spec{
		Version: l.Version, Process: l.Process, Root: l.Root, Hostname: l.Hostname,
		Domainname: l.Domainname, Mounts: l.Mounts, Hooks: l.Hooks,
		Annotations: l.Annotations, Linux: l.Linux,
	}, nil
}

// LoadProcess reads only the process section of bundle/config.json, with
// Load's errors: what exec takes its defaults from, without building
// encoding/json's decoders for the rest of the Spec.
func LoadProcess(bundle string) (*specs.Process, error) {
	data, err := readBundle(bundle)
	if err != nil {
		return nil, err
	}
	var s struct {
		Process *specs.Process `json:"process"`
	}
	if err := json.Unmarshal(data, &s); err != nil {
		return nil, jsonError(data, err)
	}
	return s.Process, nil
}

// linuxSpec is specs.Spec without the sections of other platforms, which
// nothing here reads. Decoding into a struct makes encoding/json build and
// keep an encoder for every type reachable from it: those sections' types
// are a quarter of specs.Spec's (60 of 230 KB, kept to the end of a run).
type linuxSpec struct {
	Version     string            `json:"ociVersion"`
	Process     *specs.Process    `json:"process,omitempty"`
	Root        *specs.Root       `json:"root,omitempty"`
	Hostname    string            `json:"hostname,omitempty"`
	Domainname  string            `json:"domainname,omitempty"`
	Mounts      []specs.Mount     `json:"mounts,omitempty"`
	Hooks       *specs.Hooks      `json:"hooks,omitempty" platform:"linux,solaris,zos"`
	Annotations map[string]string `json:"annotations,omitempty"`
	Linux       *specs.Linux      `json:"linux,omitempty" platform:"linux"`
}

// MaxConfigSize bounds config.json: real ones are a few KiB, and a runtime
// that reads whatever it is given can be made to use any amount of memory.
const MaxConfigSize = 16 << 20

// readConfig reads the file at name, which must be a regular file (a FIFO
// would block us forever). Errors name it as "config.json".
func readConfig(name string) ([]byte, error) {
	// O_NONBLOCK: opening a FIFO must not wait for a writer.
	f, err := os.OpenFile(name, os.O_RDONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: ConfigFile, Err: unwrapPathError(err)}
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, &fs.PathError{Op: "stat", Path: ConfigFile, Err: unwrapPathError(err)}
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%s: not a regular file", ConfigFile)
	}
	if st.Size() > MaxConfigSize {
		return nil, fmt.Errorf("%s: %d bytes, more than the %d a config may have", ConfigFile, st.Size(), MaxConfigSize)
	}
	data, err := io.ReadAll(io.LimitReader(f, MaxConfigSize+1))
	if err != nil {
		return nil, &fs.PathError{Op: "read", Path: ConfigFile, Err: unwrapPathError(err)}
	}
	if len(data) > MaxConfigSize {
		return nil, fmt.Errorf("%s: more than the %d bytes a config may have", ConfigFile, MaxConfigSize)
	}
	return data, nil
}

func unwrapPathError(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// jsonError turns an encoding/json error into one that says where in
// config.json it is, and which field a type error is about.
func jsonError(data []byte, err error) error {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		line, col := position(data, syn.Offset, syn.Error() == "unexpected end of JSON input")
		return fmt.Errorf("%s: invalid JSON at line %d col %d: %w", ConfigFile, line, col, err)
	case errors.As(err, &typ):
		line, col := position(data, typ.Offset, false)
		field := typ.Field
		if field == "" {
			field = "(top level)"
		}
		return fmt.Errorf("%s: %s: want %s, got JSON %s (line %d col %d): %w",
			ConfigFile, field, jsonKind(typ.Type), typ.Value, line, col, err)
	}
	return fmt.Errorf("%s: %w", ConfigFile, err)
}

// position converts the byte offset of an encoding/json error into a 1-based
// line and column (in bytes). encoding/json reports the offset just after
// the byte it choked on, so the byte itself is at offset-1; at the end of
// the input the position is the end.
func position(data []byte, offset int64, atEnd bool) (line, col int) {
	pos := int(offset)
	if !atEnd && pos > 0 {
		pos--
	}
	pos = min(max(pos, 0), len(data))
	before := data[:pos]
	line = 1 + bytes.Count(before, []byte{'\n'})
	col = pos - (bytes.LastIndexByte(before, '\n') + 1) + 1
	return line, col
}

// jsonKind names the JSON a Go type decodes from.
func jsonKind(t reflect.Type) string {
	if t == nil {
		return "another value"
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Struct, reflect.Map:
		return "an object"
	case reflect.Slice, reflect.Array:
		return "an array"
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "a boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return "an integer"
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a non-negative integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	}
	return t.String()
}
