package integration

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Bad bundles fail with an error naming the field, and leave nothing: no
// state, no cgroup, no process, no mount (checked by newEnv's helpers).
func TestBadBundles(t *testing.T) {
	cases := []struct {
		name   string
		break_ func(e *env)
		want   string
	}{
		{"missing config.json", func(e *env) { os.Remove(filepath.Join(e.bundle, "config.json")) }, "config.json"},
		{"invalid JSON", func(e *env) {
			os.WriteFile(filepath.Join(e.bundle, "config.json"), []byte("{\n  \"ociVersion\": \"1.0.0\",\n  oops\n}"), 0o644)
		}, "line 3"},
		{"wrong type", func(e *env) {
			os.WriteFile(filepath.Join(e.bundle, "config.json"), []byte(`{"ociVersion":"1.0.0","process":{"args":"sh"}}`), 0o644)
		}, "process.args"},
		{"wrong ociVersion", func(e *env) { e.edit(func(s *specs.Spec) { s.Version = "2.0.0" }) }, "ociVersion"},
		{"mount over the root", func(e *env) {
			e.edit(func(s *specs.Spec) {
				s.Mounts = append(s.Mounts, specs.Mount{Destination: ".", Type: "tmpfs", Source: "tmpfs"})
			})
		}, "mounts["},
		{"unknown namespace type", func(e *env) {
			e.edit(func(s *specs.Spec) {
				s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: "nosuchns"})
			})
		}, "linux.namespaces["},
		{"root missing", func(e *env) { e.edit(func(s *specs.Spec) { s.Root.Path = "/nonexistent/rootfs" }) }, "root.path"},
		{"cwd relative", func(e *env) { e.edit(func(s *specs.Spec) { s.Process.Cwd = "tmp" }) }, "process.cwd"},
		{"bind source missing", func(e *env) {
			e.edit(func(s *specs.Spec) {
				s.Mounts = append(s.Mounts, specs.Mount{Destination: "/mnt", Type: "bind", Source: "/nonexistent-cfdtest", Options: []string{"bind"}})
			})
		}, "/nonexistent-cfdtest"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t, "true")
			c.break_(e)
			r := e.cfd("create", "--bundle", e.bundle, e.id)
			if r.code == 0 || !strings.Contains(r.stderr, c.want) {
				t.Errorf("create: %v, want an error naming %q", r, c.want)
			}
			if r := e.cfd("state", e.id); r.code == 0 {
				t.Errorf("container left after a failed create: %v", r)
			}
			if d := cgroupDirsOf(t, e.cgroup); len(d) != 0 {
				t.Errorf("cgroups left after a failed create: %v", d)
			}
		})
	}
}

func (e *env) edit(f func(*specs.Spec)) {
	s := e.spec()
	f(s)
	e.writeSpec(s)
}

func TestDuplicateID(t *testing.T) {
	e := newEnv(t, "sleep", "100")
	e.ok("create", "--bundle", e.bundle, e.id)
	r := e.cfd("create", "--bundle", e.bundle, e.id)
	if r.code == 0 || !strings.Contains(r.stderr, "already exists") {
		t.Errorf("second create with the same id: %v", r)
	}
	if s := e.status(); s != "created" {
		t.Errorf("the first container after a duplicate create: %s", s)
	}
	e.ok("delete", e.id)
}
