// Package integration runs the built containerfd binary as root against the
// real kernel: the commands and flags of runc's command line, as people,
// containerd's shim and conmon call them.
package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/containerfd/containerfd/internal/testutil"
	"github.com/containerfd/containerfd/spec"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// binary is containerfd, built once for the test run; sdnotify, accept1,
// attack and exewatch are static helpers (sdnotify, attack and exewatch
// copied into containers, accept1 run on the host).
var binary, sdnotify, accept1, attack, exewatch string

// prebuiltEnv names a directory holding containerfd and the static helpers
// (containerfd, containerfd-criu, sdnotify, accept1, keyread, attack, exewatch) already built, for a test binary
// run where there is no Go toolchain: hack/vm.sh runs this package in a VM.
const prebuiltEnv = "CFD_TEST_BINDIR"

// envStart=stage makes the runtime start every process of a container it
// creates through its Go stage (hack/vm.sh's forced pass, make test-cve).
const envStart = "CONTAINERFD_START"

// stageForced reports whether the whole run starts processes through the stage.
func stageForced() bool { return os.Getenv(envStart) == "stage" }

func TestMain(m *testing.M) {
	if os.Getenv(reaperEnv) != "" {
		os.Exit(reaperMain())
	}
	if dir := os.Getenv(prebuiltEnv); dir != "" {
		binary = filepath.Join(dir, "containerfd")
		sdnotify = filepath.Join(dir, "sdnotify")
		accept1 = filepath.Join(dir, "accept1")
		attack = filepath.Join(dir, "attack")
		exewatch = filepath.Join(dir, "exewatch")
		os.Exit(m.Run())
	}
	dir, err := os.MkdirTemp("", "cfdbin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "containerfd")
	sdnotify = filepath.Join(dir, "sdnotify")
	accept1 = filepath.Join(dir, "accept1")
	attack = filepath.Join(dir, "attack")
	exewatch = filepath.Join(dir, "exewatch")
	// As make build: containerfd without CRIU's RPC, containerfd-criu
	// beside it with it.
	const tags = "urfave_cli_no_docs,urfave_cli_no_suggest,godbus_no_tcp"
	for out, b := range map[string]struct{ pkg, tags string }{
		binary:           {"..", tags + ",containerfd_nocriu"},
		binary + "-criu": {"..", tags},
		sdnotify:         {"./testdata/sdnotify", tags},
		accept1:          {"./testdata/accept1", tags},
		attack:           {"./testdata/attack", tags},
		exewatch:         {"./testdata/exewatch", tags},
	} {
		build := exec.Command("go", "build", "-tags", b.tags, "-o", out, b.pkg)
		build.Env = append(os.Environ(), "CGO_ENABLED=0")
		build.Stderr = os.Stderr
		if err := build.Run(); err != nil {
			fmt.Fprintln(os.Stderr, "build", b.pkg+":", err)
			os.Exit(1)
		}
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// env is one test's sandbox: a state root, a cgroup path, a bundle.
type env struct {
	t      *testing.T
	root   string
	cgroup string
	bundle string
	id     string
}

// newEnv makes a bundle whose config is `containerfd spec`'s default with
// the process args given, no terminal, and the test's absolute cgroup path.
func newEnv(t *testing.T, args ...string) *env {
	testutil.NoLeaks(t)
	testutil.RequireRoot(t)
	e := &env{t: t, root: testutil.StateDir(t), cgroup: testutil.CgroupPath(t), id: testutil.ID(t)}
	e.bundle = t.TempDir()
	s := spec.Default(false)
	s.Process.Terminal = false
	s.Process.Args = args
	s.Root.Path = testutil.Rootfs(t) // absolute: the bundle holds only config.json
	s.Root.Readonly = false
	s.Linux.CgroupsPath = e.cgroup
	e.writeSpec(s)
	t.Cleanup(func() {
		// Whatever the test did, leave nothing behind.
		e.cfd("delete", "--force", e.id)
	})
	return e
}

func (e *env) spec() *specs.Spec {
	b, err := os.ReadFile(filepath.Join(e.bundle, "config.json"))
	if err != nil {
		e.t.Fatal(err)
	}
	var s specs.Spec
	if err := json.Unmarshal(b, &s); err != nil {
		e.t.Fatal(err)
	}
	return &s
}

func (e *env) writeSpec(s *specs.Spec) {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		e.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(e.bundle, "config.json"), b, 0o644); err != nil {
		e.t.Fatal(err)
	}
}

// withoutNamespace drops the namespace of type typ from s: the container
// shares the runtime's.
func withoutNamespace(s *specs.Spec, typ specs.LinuxNamespaceType) {
	s.Linux.Namespaces = slices.DeleteFunc(s.Linux.Namespaces, func(ns specs.LinuxNamespace) bool { return ns.Type == typ })
}

// result is what a containerfd command did.
type result struct {
	stdout, stderr string
	code           int
}

func (r result) String() string {
	return fmt.Sprintf("exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
}

// cfd runs containerfd --root <root> args... with no stdin.
func (e *env) cfd(args ...string) result {
	return e.cfdIn(nil, args...)
}

func (e *env) cfdIn(stdin []byte, args ...string) result {
	e.t.Helper()
	return e.cfdCmd(stdin, nil, nil, args...)
}

// cfdCmd runs containerfd with stdin, extra environment and extra fds.
func (e *env) cfdCmd(stdin []byte, env []string, files []*os.File, args ...string) result {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, append([]string{"--root", e.root}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	cmd.ExtraFiles = files
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	return runResult(e.t, cmd, args)
}

// runResult runs cmd, a containerfd command with args, and returns what it
// did. Its output goes to files, not pipes: after create, init keeps its
// stdio open, and os/exec would wait for a pipe's end.
func runResult(t *testing.T, cmd *exec.Cmd, args []string) result {
	t.Helper()
	out, errf := tempFile(t), tempFile(t)
	cmd.Stdout, cmd.Stderr = out, errf
	err := cmd.Run()
	r := result{stdout: readBack(t, out), stderr: readBack(t, errf)}
	if ee, ok := err.(*exec.ExitError); ok {
		r.code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("containerfd %s: %v", strings.Join(args, " "), err)
	}
	return r
}

func (e *env) tempFile() *os.File { return tempFile(e.t) }

func tempFile(t *testing.T) *os.File {
	f, err := os.CreateTemp(t.TempDir(), "out")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// readBack reads what a command wrote to f, from the start.
func readBack(t *testing.T, f *os.File) string {
	b, err := os.ReadFile(f.Name())
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// ok runs a command that must succeed and returns its stdout.
func (e *env) ok(args ...string) string {
	e.t.Helper()
	r := e.cfd(args...)
	if r.code != 0 {
		e.t.Fatalf("containerfd %s: %v", strings.Join(args, " "), r)
	}
	return r.stdout
}

// state returns `containerfd state`.
func (e *env) state() map[string]any {
	e.t.Helper()
	var st map[string]any
	out := e.ok("state", e.id)
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		e.t.Fatalf("state output %q: %v", out, err)
	}
	return st
}

func (e *env) status() string {
	e.t.Helper()
	return e.state()["status"].(string)
}
