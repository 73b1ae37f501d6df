package spec

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/containerfd/containerfd/libcontainerfd"
	"github.com/containerfd/containerfd/libcontainerfd/lsm"
	"github.com/containerfd/containerfd/libcontainerfd/mounttree"
	"github.com/containerfd/containerfd/libcontainerfd/resctrl"
)

// These tests need no root: they read files and /proc/self only.

// bundle writes s (if not nil) as config.json into a new bundle directory
// with an empty rootfs and returns the directory.
func bundle(t *testing.T, s *specs.Spec) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "rootfs"), 0o755); err != nil {
		t.Fatal(err)
	}
	if s != nil {
		data, err := json.MarshalIndent(s, "", "\t")
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, ConfigFile), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func writeConfig(t *testing.T, text string) string {
	t.Helper()
	dir := bundle(t, nil)
	if err := os.WriteFile(filepath.Join(dir, ConfigFile), []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func abs(t *testing.T, p string) string {
	t.Helper()
	a, err := filepath.Abs(p)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// show renders v for failure messages.
func show(v any) string {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err.Error()
	}
	return string(b)
}

func ptr[T any](v T) *T { return &v }

// --- Load -------------------------------------------------------------------

func TestLoadMissingConfig(t *testing.T) {
	dir := abs(t, "testdata/missing-config")
	_, err := Load("testdata/missing-config")
	want := "bundle " + dir + ": open config.json: no such file or directory"
	if err == nil || err.Error() != want {
		t.Fatalf("Load: %v, want %q", err, want)
	}
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Load: %v does not wrap fs.ErrNotExist", err)
	}
	// A bundle that does not exist says the same.
	_, err = Load(filepath.Join(t.TempDir(), "nope"))
	if err == nil || !strings.HasSuffix(err.Error(), "/nope: open config.json: no such file or directory") {
		t.Errorf("Load of a missing bundle: %v", err)
	}
}

func TestLoadInvalidJSON(t *testing.T) {
	_, err := Load("testdata/invalid-json")
	want := "config.json: invalid JSON at line 5 col 2: invalid character '}' looking for beginning of object key string"
	if err == nil || err.Error() != want {
		t.Fatalf("Load: %v\nwant %q", err, want)
	}
	var syn *json.SyntaxError
	if !errors.As(err, &syn) {
		t.Errorf("Load: %v does not wrap the *json.SyntaxError", err)
	}

	for _, tc := range []struct {
		text, pos string
	}{
		{"", "line 1 col 1"},
		{"{", "line 1 col 2"},
		{"x", "line 1 col 1"},
		{"{\n\"ociVersion\": 1.3.0\n}", "line 2 col 18"},
		{"{\n\t\"a\": 1,\n\t\"b\": [1, 2,,]\n}", "line 3 col 13"},
		{"{}\n{}", "line 2 col 1"},
		{"{\n\t\"a\": \"b\"\n", "line 3 col 1"},
	} {
		_, err := Load(writeConfig(t, tc.text))
		if err == nil || !strings.HasPrefix(err.Error(), "config.json: invalid JSON at "+tc.pos+": ") {
			t.Errorf("Load(%q): %v, want position %s", tc.text, err, tc.pos)
		}
	}
}

func TestLoadTypeError(t *testing.T) {
	for _, tc := range []struct {
		text, want string
	}{
		{`{"ociVersion": "1.0.0", "process": {"user": {"uid": "root"}}}`,
			`config.json: process.user.uid: want a non-negative integer, got JSON string (line 1 col 58)`},
		{"{\n\"ociVersion\": \"1.0.0\",\n\"process\": {\"args\": \"sh\"}}",
			`config.json: process.args: want an array, got JSON string (line 3 col 24)`},
		{`{"mounts": [{"destination": "/x"}, {"options": [1]}]}`, `config.json: mounts.options: want a string, got JSON number`},
		{`{"linux": {"namespaces": [{"type": 3}]}}`, `config.json: linux.namespaces.type: want a string, got JSON number`},
		{`{"process": {"user": {"uid": -1}}}`, `config.json: process.user.uid: want a non-negative integer, got JSON number -1`},
		{`{"ociVersion": true}`, `config.json: ociVersion: want a string, got JSON bool`},
		{`[]`, `config.json: (top level): want an object, got JSON array`},
	} {
		_, err := Load(writeConfig(t, tc.text))
		if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("Load(%s):\n got %v\nwant %s...", tc.text, err, tc.want)
		}
	}
}

func TestLoadNotRegular(t *testing.T) {
	dir := bundle(t, nil)
	if err := unix.Mkfifo(filepath.Join(dir, ConfigFile), 0o644); err != nil {
		t.Fatal(err)
	}
	// Must not block waiting for a writer.
	if _, err := Load(dir); err == nil || !strings.Contains(err.Error(), "config.json: not a regular file") {
		t.Errorf("Load of a FIFO: %v", err)
	}
}

func TestLoadDefault(t *testing.T) {
	for _, rootless := range []bool{false, true} {
		want := Default(rootless)
		got, err := Load(bundle(t, want))
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("Load(Default(%v)) =\n%s\nwant\n%s", rootless, show(got), show(want))
		}
	}
}

// LoadProcess gives what Load gives for the process, with Load's errors.
func TestLoadProcess(t *testing.T) {
	want := Default(false)
	got, err := LoadProcess(bundle(t, want))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want.Process) {
		t.Errorf("LoadProcess =\n%+v\nwant\n%+v", got, want.Process)
	}
	text := `{"ociVersion": "1.0.0", "process": {"user": {"uid": "root"}}}`
	_, err = LoadProcess(writeConfig(t, text))
	if want := "config.json: process.user.uid: want a non-negative integer, got JSON string"; err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Errorf("LoadProcess(%s): %v, want %s...", text, err, want)
	}
	if _, err := LoadProcess(filepath.Join(t.TempDir(), "nope")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("LoadProcess of a missing bundle: %v", err)
	}
}

// --- Default ----------------------------------------------------------------

func TestDefault(t *testing.T) {
	s := Default(false)
	if s.Version != specs.Version || s.Hostname != "containerfd" || s.Root.Path != "rootfs" || !s.Root.Readonly {
		t.Errorf("Default(false): %s", show(s))
	}
	p := s.Process
	if !p.Terminal || !p.NoNewPrivileges || p.Cwd != "/" || !reflect.DeepEqual(p.Args, []string{"sh"}) ||
		p.Capabilities.Inheritable != nil || p.Capabilities.Ambient != nil {
		t.Errorf("Default(false).process: %s", show(p))
	}
	var nss []string
	for _, ns := range s.Linux.Namespaces {
		nss = append(nss, string(ns.Type))
	}
	if got := strings.Join(nss, " "); got != "pid network ipc uts mount cgroup" {
		t.Errorf("Default(false) namespaces: %s", got)
	}

	r := Default(true)
	nss = nil
	for _, ns := range r.Linux.Namespaces {
		nss = append(nss, string(ns.Type))
	}
	if got := strings.Join(nss, " "); got != "pid ipc uts mount cgroup user" {
		t.Errorf("Default(true) namespaces: %s", got)
	}
	wantMap := []specs.LinuxIDMapping{{ContainerID: 0, HostID: uint32(os.Geteuid()), Size: 1}}
	if !reflect.DeepEqual(r.Linux.UIDMappings, wantMap) {
		t.Errorf("Default(true) uidMappings: %v", r.Linux.UIDMappings)
	}
	if r.Linux.Resources != nil {
		t.Errorf("Default(true) has resources")
	}
	for _, m := range r.Mounts {
		for _, o := range m.Options {
			if strings.HasPrefix(o, "gid=") || strings.HasPrefix(o, "uid=") {
				t.Errorf("Default(true) mount %s has %s", m.Destination, o)
			}
		}
		if m.Destination == "/sys" && (m.Source != "/sys" || m.Options[0] != "rbind") {
			t.Errorf("Default(true) /sys: %+v", m)
		}
	}
	// Default returns a fresh value every time.
	s.Mounts[0].Destination = "/changed"
	if Default(false).Mounts[0].Destination != "/proc" {
		t.Error("Default shares state between calls")
	}
}

// --- Validate ---------------------------------------------------------------

func TestValidateDefault(t *testing.T) {
	for _, rootless := range []bool{false, true} {
		s := Default(rootless)
		if err := Validate(s, bundle(t, nil)); err != nil {
			t.Errorf("Validate(Default(%v)): %v", rootless, err)
		}
	}
}

func TestValidateErrors(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(s *specs.Spec)
		want   string
		// notSupported: the error must wrap ErrNotSupported.
		notSupported bool
	}{
		{"version major", func(s *specs.Spec) { s.Version = "2.0.0" }, `ociVersion "2.0.0": unsupported major version (want 1.x)`, false},
		{"version 0", func(s *specs.Spec) { s.Version = "0.1.0" }, `ociVersion "0.1.0": unsupported major version (want 1.x)`, false},
		{"version not semver", func(s *specs.Spec) { s.Version = "1.0" }, `ociVersion "1.0": not a SemVer 2.0.0 version`, false},
		{"version missing", func(s *specs.Spec) { s.Version = "" }, `ociVersion: missing`, false},
		{"root missing", func(s *specs.Spec) { s.Root = nil }, `root: missing`, false},
		{"root empty", func(s *specs.Spec) { s.Root.Path = "" }, `root.path: empty`, false},
		{"root not there", func(s *specs.Spec) { s.Root.Path = "nope" }, `root.path "nope": BUNDLE/nope: no such file or directory`, false},
		{"root not a dir", func(s *specs.Spec) { s.Root.Path = "config.json" }, `root.path "config.json": BUNDLE/config.json: not a directory`, false},
		{"mount on root, relative", func(s *specs.Spec) { s.Mounts[2].Destination = "." },
			`mounts[2].destination ".": cannot mount over the root (that is root.path)`, false},
		{"mount empty destination", func(s *specs.Spec) { s.Mounts[1].Destination = "" }, `mounts[1].destination: empty`, false},
		{"mount over root", func(s *specs.Spec) { s.Mounts[1].Destination = "/./" }, `mounts[1].destination "/./": cannot mount over the root`, false},
		{"mount no type", func(s *specs.Spec) { s.Mounts[0].Type = "" }, `mounts[0].type: empty`, false},
		{"bind no source", func(s *specs.Spec) {
			s.Mounts = append(s.Mounts, specs.Mount{Destination: "/x", Options: []string{"rbind"}})
		}, `mounts[7].source: empty (a bind mount needs one)`, false},
		{"mount idmap on tmpfs", func(s *specs.Spec) {
			s.Mounts = append(s.Mounts, specs.Mount{Destination: "/x", Source: "tmpfs", Type: "tmpfs", Options: []string{"idmap"}})
		}, `mounts[7]: idmapped mounts are bind mounts only`, false},
		{"mount uidMappings alone", func(s *specs.Spec) {
			s.Mounts = append(s.Mounts, specs.Mount{Destination: "/x", Source: "/tmp", Type: "bind",
				UIDMappings: []specs.LinuxIDMapping{{HostID: 1000, Size: 1}}})
		}, `mounts[7]: uidMappings and gidMappings go together`, false},
		{"mount tmpcopyup on a bind", func(s *specs.Spec) {
			s.Mounts = append(s.Mounts, specs.Mount{Destination: "/x", Source: "/tmp", Type: "bind", Options: []string{"rbind", "tmpcopyup"}})
		}, `mounts[7]: tmpcopyup is for tmpfs mounts only`, false},
		{"mount remount", func(s *specs.Spec) { s.Mounts[5].Options = []string{"remount", "ro"} },
			`mounts[5].options[0] "remount": not supported yet`, true},
		{"mount empty option", func(s *specs.Spec) { s.Mounts[5].Options = []string{"ro", ""} }, `mounts[5].options[1]: empty`, false},
		{"process missing", func(s *specs.Spec) { s.Process = nil }, `process: missing`, false},
		{"args empty", func(s *specs.Spec) { s.Process.Args = nil }, `process.args: empty`, false},
		{"args[0] empty", func(s *specs.Spec) { s.Process.Args = []string{""} }, `process.args[0]: empty`, false},
		{"cwd relative", func(s *specs.Spec) { s.Process.Cwd = "x" }, `process.cwd "x": must be absolute`, false},
		{"cwd empty", func(s *specs.Spec) { s.Process.Cwd = "" }, `process.cwd: empty`, false},
		{"env", func(s *specs.Spec) { s.Process.Env = append(s.Process.Env, "FOO") }, `process.env[2] "FOO": want KEY=value`, false},
		{"env empty key", func(s *specs.Spec) { s.Process.Env = []string{"=x"} }, `process.env[0] "=x": want KEY=value`, false},
		{"umask", func(s *specs.Spec) { s.Process.User.Umask = ptr(uint32(0o1000)) }, `process.user.umask 01000: more than 0777`, false},
		{"rlimit unknown", func(s *specs.Spec) { s.Process.Rlimits[0].Type = "RLIMIT_FOO" }, `process.rlimits[0].type "RLIMIT_FOO": unknown rlimit`, false},
		{"rlimit twice", func(s *specs.Spec) {
			s.Process.Rlimits = append(s.Process.Rlimits, specs.POSIXRlimit{Type: "RLIMIT_NOFILE", Hard: 1, Soft: 1})
		}, `process.rlimits: "RLIMIT_NOFILE" listed twice`, false},
		{"rlimit soft above hard", func(s *specs.Spec) { s.Process.Rlimits[0].Soft = 2048 },
			`process.rlimits[0] "RLIMIT_NOFILE": soft limit 2048 above hard limit 1024`, false},
		{"oomScoreAdj", func(s *specs.Spec) { s.Process.OOMScoreAdj = ptr(1001) }, `process.oomScoreAdj 1001: out of range`, false},
		{"scheduler", func(s *specs.Spec) { s.Process.Scheduler = &specs.Scheduler{Policy: "SCHED_NOPE"} },
			`process.scheduler.policy "SCHED_NOPE": unknown policy`, false},
		{"ioPriority", func(s *specs.Spec) {
			s.Process.IOPriority = &specs.LinuxIOPriority{Class: specs.IOPRIO_CLASS_BE, Priority: 9}
		}, `process.ioPriority.priority 9: want 0 to 7`, false},
		{"execCPUAffinity", func(s *specs.Spec) { s.Process.ExecCPUAffinity = &specs.CPUAffinity{Final: "3-1"} },
			`process.execCPUAffinity.final "3-1": bad cpu list element "3-1"`, false},
		{"uid not mapped", func(s *specs.Spec) {
			toRootless(s)
			s.Process.User.UID = 1000
		}, `process.user.uid 1000: not mapped by linux.uidMappings`, false},
		{"gid not mapped", func(s *specs.Spec) {
			toRootless(s)
			s.Process.User.AdditionalGids = []uint32{0, 5}
		}, `process.user.additionalGids[1] 5: not mapped by linux.gidMappings`, false},
		{"hostname without uts", func(s *specs.Spec) { s.Linux.Namespaces = removeNS(s.Linux.Namespaces, "uts") },
			`hostname "containerfd": set without a uts namespace`, false},
		{"domainname without uts", func(s *specs.Spec) {
			s.Hostname = ""
			s.Domainname = "example.org"
			s.Linux.Namespaces = removeNS(s.Linux.Namespaces, "uts")
		}, `domainname "example.org": set without a uts namespace`, false},
		{"hostname too long", func(s *specs.Spec) { s.Hostname = strings.Repeat("h", 65) }, `: longer than 64 bytes`, false},
		{"hook path", func(s *specs.Spec) { s.Hooks = &specs.Hooks{Poststop: []specs.Hook{{Path: "/bin/true"}, {Path: "x"}}} },
			`hooks.poststop[1].path "x": must be absolute`, false},
		{"hook timeout", func(s *specs.Spec) {
			s.Hooks = &specs.Hooks{CreateRuntime: []specs.Hook{{Path: "/bin/true", Timeout: ptr(0)}}}
		},
			`hooks.createRuntime[0].timeout 0: must be greater than zero`, false},
		{"annotation key", func(s *specs.Spec) { s.Annotations = map[string]string{"": "x"} }, `annotations: empty key`, false},
		{"ns unknown", func(s *specs.Spec) { s.Linux.Namespaces[1].Type = "foo" }, `linux.namespaces[1].type "foo": unknown namespace type`, false},
		{"ns twice", func(s *specs.Spec) {
			s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: "pid"})
		}, `linux.namespaces: "pid" listed twice`, false},
		{"ns path relative", func(s *specs.Spec) { s.Linux.Namespaces[1].Path = "net" }, `linux.namespaces[1].path "net": must be absolute`, false},
		{"ns path wrong type", func(s *specs.Spec) { s.Linux.Namespaces[0].Path = "/proc/self/ns/net" },
			`linux.namespaces[0].path "/proc/self/ns/net": is a "network" namespace, not "pid"`, false},
		{"ns path not a namespace", func(s *specs.Spec) { s.Linux.Namespaces[1].Path = "/proc/self/status" },
			`linux.namespaces[1].path "/proc/self/status": not a namespace file`, false},
		{"ns path missing", func(s *specs.Spec) { s.Linux.Namespaces[1].Path = "/nonexistent/net" },
			`linux.namespaces[1].path "/nonexistent/net": open: no such file or directory`, false},
		{"masked without mount ns", func(s *specs.Spec) {
			s.Linux.Namespaces = removeNS(s.Linux.Namespaces, "mount")
			s.Linux.ReadonlyPaths = nil
		}, `linux.maskedPaths: set without a "mount" namespace`, false},
		{"readonly without mount ns", func(s *specs.Spec) {
			s.Linux.Namespaces = removeNS(s.Linux.Namespaces, "mount")
			s.Linux.MaskedPaths = nil
		}, `linux.readonlyPaths: set without a "mount" namespace`, false},
		{"uidMappings without userns", func(s *specs.Spec) {
			s.Linux.UIDMappings = []specs.LinuxIDMapping{{HostID: 1000, Size: 1}}
		}, `linux.uidMappings: set without a user namespace`, false},
		{"gidMappings without userns", func(s *specs.Spec) {
			s.Linux.GIDMappings = []specs.LinuxIDMapping{{HostID: 1000, Size: 1}}
		}, `linux.gidMappings: set without a user namespace`, false},
		{"userns without mappings", func(s *specs.Spec) { toRootless(s); s.Linux.UIDMappings = nil },
			`linux.uidMappings: missing (a new user namespace needs them)`, false},
		{"mapping size 0", func(s *specs.Spec) {
			toRootless(s)
			s.Linux.GIDMappings = append(s.Linux.GIDMappings, specs.LinuxIDMapping{ContainerID: 1, HostID: 100000})
		}, `linux.gidMappings[1]: size 0`, false},
		{"timeOffsets", func(s *specs.Spec) {
			s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: "time"})
			s.Linux.TimeOffsets = map[string]specs.LinuxTimeOffset{"realtime": {Secs: 1}}
		}, `linux.timeOffsets["realtime"]: want "monotonic" or "boottime"`, false},
		{"timeOffsets without a time namespace", func(s *specs.Spec) {
			s.Linux.TimeOffsets = map[string]specs.LinuxTimeOffset{"monotonic": {Secs: 1}}
		}, `linux.timeOffsets: set without a new "time" namespace`, false},
		{"device type", func(s *specs.Spec) {
			s.Linux.Devices = []specs.LinuxDevice{{Path: "/dev/x", Type: "x", Major: 1, Minor: 1}}
		},
			`linux.devices[0].type "x": want "c", "b", "u" or "p"`, false},
		{"device relative", func(s *specs.Spec) {
			s.Linux.Devices = []specs.LinuxDevice{{Path: "dev/x", Type: "c", Major: 1, Minor: 1}}
		},
			`linux.devices[0].path "dev/x": must be absolute`, false},
		{"device outside /dev", func(s *specs.Spec) {
			s.Linux.Devices = []specs.LinuxDevice{{Path: "/dev/../etc/x", Type: "c", Major: 1, Minor: 1}}
		}, `linux.devices[0].path "/dev/../etc/x": must be under /dev`, false},
		{"device no numbers", func(s *specs.Spec) { s.Linux.Devices = []specs.LinuxDevice{{Path: "/dev/x", Type: "b"}} },
			`linux.devices[0] "/dev/x": type "b" needs major and minor`, false},
		{"device negative", func(s *specs.Spec) { s.Linux.Devices = []specs.LinuxDevice{{Path: "/dev/x", Type: "u", Major: -1}} },
			`linux.devices[0] "/dev/x": negative major or minor`, false},
		{"device twice", func(s *specs.Spec) {
			s.Linux.Devices = []specs.LinuxDevice{{Path: "/dev/x", Type: "p"}, {Path: "/dev//x", Type: "p"}}
		}, `linux.devices: "/dev/x" listed twice`, false},
		{"netDevices without netns", func(s *specs.Spec) {
			s.Linux.Namespaces = removeNS(s.Linux.Namespaces, "network")
			s.Linux.NetDevices = map[string]specs.LinuxNetDevice{"eth0": {}}
		}, `linux.netDevices: set without a new "network" namespace`, false},
		{"netDevices bad name", func(s *specs.Spec) {
			s.Linux.NetDevices = map[string]specs.LinuxNetDevice{"eth0": {Name: "../x"}}
		}, `linux.netDevices["eth0"]: "../x" is not an interface name`, false},
		{"netDevices long name", func(s *specs.Spec) {
			s.Linux.NetDevices = map[string]specs.LinuxNetDevice{"abcdefghijklmnop": {}}
		}, `linux.netDevices["abcdefghijklmnop"]: "abcdefghijklmnop" is not an interface name`, false},
		{"sysctl host", func(s *specs.Spec) { s.Linux.Sysctl = map[string]string{"vm.swappiness": "1"} },
			`linux.sysctl["vm.swappiness"]: not in a namespace of the container`, false},
		{"sysctl net without netns", func(s *specs.Spec) {
			s.Linux.Namespaces = removeNS(s.Linux.Namespaces, "network")
			s.Linux.Sysctl = map[string]string{"net.ipv4.ip_forward": "1"}
		}, `linux.sysctl["net.ipv4.ip_forward"]: needs a network namespace`, false},
		{"sysctl net host netns", func(s *specs.Spec) {
			s.Linux.Namespaces[1].Path = "/proc/self/ns/net"
			s.Linux.Sysctl = map[string]string{"net/ipv4/ip_forward": "1"}
		}, `linux.sysctl["net/ipv4/ip_forward"]: the network namespace to join is the host's`, false},
		{"sysctl ipc without ipcns", func(s *specs.Spec) {
			s.Linux.Namespaces = removeNS(s.Linux.Namespaces, "ipc")
			s.Linux.Sysctl = map[string]string{"fs.mqueue.msg_max": "1"}
		}, `linux.sysctl["fs.mqueue.msg_max"]: needs a ipc namespace`, false},
		{"sysctl hostname", func(s *specs.Spec) { s.Linux.Sysctl = map[string]string{"kernel.hostname": "x"} },
			`linux.sysctl["kernel.hostname"]: conflicts with the hostname field`, false},
		{"sysctl user without userns", func(s *specs.Spec) { s.Linux.Sysctl = map[string]string{"user.max_user_namespaces": "1"} },
			`linux.sysctl["user.max_user_namespaces"]: needs a user namespace`, false},
		{"sysctl bad name", func(s *specs.Spec) { s.Linux.Sysctl = map[string]string{"net/../../etc": "1"} },
			`linux.sysctl["net/../../etc"]: not a sysctl name`, false},
		{"resources device type", func(s *specs.Spec) { s.Linux.Resources.Devices[0].Type = "p" },
			`linux.resources.devices[0].type "p": want "a", "b" or "c"`, false},
		{"resources device access", func(s *specs.Spec) { s.Linux.Resources.Devices[0].Access = "" },
			`linux.resources.devices[0].access: empty (want letters of "rwm")`, false},
		{"seccomp", func(s *specs.Spec) {
			s.Linux.Seccomp = &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{{Names: []string{"getcwd"}, Action: "SCMP_ACT_NOPE"}}}
		}, `linux.seccomp.syscalls[0].action "SCMP_ACT_NOPE": unknown action`, false},
		{"rootfsPropagation", func(s *specs.Spec) { s.Linux.RootfsPropagation = "foo" }, `linux.rootfsPropagation "foo": unknown propagation`, false},
		{"maskedPaths", func(s *specs.Spec) { s.Linux.MaskedPaths[2] = "proc/kcore" }, `linux.maskedPaths[2] "proc/kcore": must be absolute`, false},
		{"readonlyPaths", func(s *specs.Spec) { s.Linux.ReadonlyPaths[0] = "x" }, `linux.readonlyPaths[0] "x": must be absolute`, false},
		// runc's words after the field, as runc's memorypolicy.bats matches them.
		{"memoryPolicy", func(s *specs.Spec) { s.Linux.MemoryPolicy = &specs.LinuxMemoryPolicy{Mode: "MPOL_NOPE"} },
			`linux.memoryPolicy.mode "MPOL_NOPE": invalid memory policy mode`, false},
		{"memoryPolicy empty", func(s *specs.Spec) { s.Linux.MemoryPolicy = &specs.LinuxMemoryPolicy{} },
			`linux.memoryPolicy.mode "": invalid memory policy mode`, false},
		{"memoryPolicy flag", func(s *specs.Spec) {
			s.Linux.MemoryPolicy = &specs.LinuxMemoryPolicy{Mode: specs.MpolPreferred, Nodes: "0", Flags: []specs.MemoryPolicyFlagType{specs.MpolFRelativeNodes, "badflag"}}
		}, `linux.memoryPolicy.flags[1] "badflag": invalid memory policy flag`, false},
		{"memoryPolicy nodes", func(s *specs.Spec) {
			s.Linux.MemoryPolicy = &specs.LinuxMemoryPolicy{Mode: specs.MpolBind, Nodes: "0-9876543210"}
		}, `linux.memoryPolicy.nodes "0-9876543210": invalid memory policy nodes`, false},
		{"memoryPolicy default with nodes", func(s *specs.Spec) {
			s.Linux.MemoryPolicy = &specs.LinuxMemoryPolicy{Mode: specs.MpolDefault, Nodes: "0-7"}
		}, `linux.memoryPolicy.nodes "0-7": memory policy mode requires 0 nodes but got 8`, false},
		{"memoryPolicy bind without nodes", func(s *specs.Spec) { s.Linux.MemoryPolicy = &specs.LinuxMemoryPolicy{Mode: specs.MpolBind} },
			`linux.memoryPolicy.nodes: memory policy mode requires at least one node but got 0`, false},
		{"personality", func(s *specs.Spec) { s.Linux.Personality = &specs.LinuxPersonality{Domain: "LINUX64"} },
			`linux.personality.domain "LINUX64": want LINUX or LINUX32`, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := bundle(t, nil)
			if err := os.WriteFile(filepath.Join(dir, ConfigFile), nil, 0o644); err != nil {
				t.Fatal(err)
			}
			s := Default(false)
			tc.change(s)
			err := Validate(s, dir)
			want := strings.ReplaceAll(tc.want, "BUNDLE", dir)
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Fatalf("Validate: %v\nwant it to contain %q", err, want)
			}
			var inv *InvalidError
			if !errors.As(err, &inv) || len(inv.Problems) != 1 {
				t.Errorf("Validate: want exactly one problem, got %v", err)
			}
			if got := errors.Is(err, ErrNotSupported); got != tc.notSupported {
				t.Errorf("errors.Is(err, ErrNotSupported) = %v, want %v", got, tc.notSupported)
			}
			// Translate refuses what Validate refuses.
			if _, _, err := Translate(s, dir); err == nil {
				t.Errorf("Translate accepted it")
			}
		})
	}
}

func removeNS(nss []specs.LinuxNamespace, typ specs.LinuxNamespaceType) []specs.LinuxNamespace {
	var out []specs.LinuxNamespace
	for _, ns := range nss {
		if ns.Type != typ {
			out = append(out, ns)
		}
	}
	return out
}

func TestValidateAccepts(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(s *specs.Spec)
	}{
		{"prerelease version", func(s *specs.Spec) { s.Version = "1.0.2-dev" }},
		{"newer minor", func(s *specs.Spec) { s.Version = "1.9.0" }},
		{"no hostname without uts", func(s *specs.Spec) { s.Hostname = ""; s.Linux.Namespaces = removeNS(s.Linux.Namespaces, "uts") }},
		{"joined netns", func(s *specs.Spec) { s.Linux.Namespaces[1].Path = "/proc/self/ns/net" }},
		{"joined mount ns", func(s *specs.Spec) { s.Linux.Namespaces[4].Path = "/proc/self/ns/mnt" }},
		{"no mount ns", func(s *specs.Spec) {
			s.Linux.Namespaces = removeNS(s.Linux.Namespaces, "mount")
			s.Linux.MaskedPaths, s.Linux.ReadonlyPaths = nil, nil
		}},
		{"no linux", func(s *specs.Spec) { s.Linux = nil; s.Hostname = "" }},
		{"time ns", func(s *specs.Spec) {
			s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: "time"})
		}},
		{"namespaced sysctls", func(s *specs.Spec) {
			s.Linux.Sysctl = map[string]string{"net.ipv4.ip_forward": "1", "kernel.shmmax": "1", "fs.mqueue.msg_max": "1",
				"kernel.domainname": "x", "net/ipv4/conf/eth0.100/forwarding": "1"}
		}},
		{"user sysctl in userns", func(s *specs.Spec) {
			toRootless(s)
			s.Linux.Sysctl = map[string]string{"user.max_user_namespaces": "1"}
		}},
		{"empty seccomp", func(s *specs.Spec) { s.Linux.Seccomp = &specs.LinuxSeccomp{} }},
		{"consoleSize without terminal", func(s *specs.Spec) { s.Process.Terminal = false; s.Process.ConsoleSize = &specs.Box{} }},
		{"fifo device", func(s *specs.Spec) { s.Linux.Devices = []specs.LinuxDevice{{Path: "/dev/f", Type: "p"}} }},
		{"userns path with mappings", func(s *specs.Spec) {
			toRootless(s)
			s.Linux.Namespaces[len(s.Linux.Namespaces)-1].Path = "/proc/self/ns/user"
		}},
		{"r propagation", func(s *specs.Spec) { s.Linux.RootfsPropagation = "rslave" }},
		{"absolute root", func(s *specs.Spec) { s.Root.Path = "/" }},
		{"hooks", func(s *specs.Spec) {
			s.Hooks = &specs.Hooks{Poststart: []specs.Hook{{Path: "/bin/true", Timeout: ptr(1)}}}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := Default(false)
			tc.change(s)
			if err := Validate(s, bundle(t, nil)); err != nil {
				t.Errorf("Validate: %v", err)
			}
		})
	}
}

// Every problem is reported, in the order of the fields, the same each time.
func TestValidateAllProblems(t *testing.T) {
	s := Default(false)
	s.Version = "2.0.0"
	s.Root.Path = "nope"
	s.Mounts[3].Destination = "/"
	s.Process.Cwd = "x"
	s.Linux.Sysctl = map[string]string{"vm.b": "1", "vm.a": "1"}
	s.Linux.Seccomp = &specs.LinuxSeccomp{DefaultAction: "SCMP_ACT_NOPE"}
	dir := bundle(t, nil)
	err := Validate(s, dir)
	want := `ociVersion "2.0.0": unsupported major version (want 1.x); ` +
		`root.path "nope": ` + dir + `/nope: no such file or directory; ` +
		`mounts[3].destination "/": cannot mount over the root (that is root.path); ` +
		`process.cwd "x": must be absolute; ` +
		`linux.sysctl["vm.a"]: not in a namespace of the container (it would change the host); ` +
		`linux.sysctl["vm.b"]: not in a namespace of the container (it would change the host); ` +
		`linux.seccomp.defaultAction "SCMP_ACT_NOPE": unknown action`
	if err == nil || err.Error() != want {
		t.Fatalf("Validate:\n got %v\nwant %s", err, want)
	}
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("errors.Is does not see the problems")
	}
}

// The bundles in testdata are also the CLI's.
func TestTestdata(t *testing.T) {
	for _, tc := range []struct {
		dir, want string
	}{
		{"bad-version", `ociVersion "2.0.0": unsupported major version (want 1.x)`},
		{"unknown-ns", `linux.namespaces[6].type "foo": unknown namespace type`},
		{"missing-root", `root.path "rootfs": ` + abs(t, "testdata/missing-root/rootfs") + `: no such file or directory`},
		{"relative-cwd", `process.cwd "x": must be absolute`},
	} {
		dir := filepath.Join("testdata", tc.dir)
		s, err := Load(dir)
		if err != nil {
			t.Errorf("%s: Load: %v", tc.dir, err)
			continue
		}
		if err := Validate(s, dir); err == nil || err.Error() != tc.want {
			t.Errorf("%s: Validate: %v\nwant %s", tc.dir, err, tc.want)
		}
	}
}

// A relative mount destination is valid, with a warning, as in runc.
func TestTestdataRelativeMount(t *testing.T) {
	dir := filepath.Join("testdata", "relative-mount")
	s, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := Validate(s, dir); err != nil {
		t.Errorf("Validate: %v", err)
	}
	want := []string{`mounts[7].destination "tmp": not absolute, taken as relative to / (deprecated)`}
	if got := Warnings(s); !reflect.DeepEqual(got, want) {
		t.Errorf("Warnings: %q, want %q", got, want)
	}
}

// --- Translate --------------------------------------------------------------

const (
	nosuid      = unix.MOUNT_ATTR_NOSUID
	nodev       = unix.MOUNT_ATTR_NODEV
	noexec      = unix.MOUNT_ATTR_NOEXEC
	ro          = unix.MOUNT_ATTR_RDONLY
	strictatime = unix.MOUNT_ATTR_STRICTATIME
)

func defaultDevicesWant() []specs.LinuxDevice {
	var out []specs.LinuxDevice
	for _, d := range []struct {
		p    string
		a, b int64
	}{{"/dev/null", 1, 3}, {"/dev/random", 1, 8}, {"/dev/full", 1, 7}, {"/dev/tty", 5, 0}, {"/dev/zero", 1, 5}, {"/dev/urandom", 1, 9}} {
		out = append(out, specs.LinuxDevice{Path: d.p, Type: "c", Major: d.a, Minor: d.b,
			FileMode: ptr(os.FileMode(0o666)), UID: ptr(uint32(0)), GID: ptr(uint32(0))})
	}
	return out
}

func linksWant(ptmx bool) []libcontainerfd.Link {
	l := []libcontainerfd.Link{
		{Path: "/dev/fd", Target: "/proc/self/fd"},
		{Path: "/dev/stdin", Target: "/proc/self/fd/0"},
		{Path: "/dev/stdout", Target: "/proc/self/fd/1"},
		{Path: "/dev/stderr", Target: "/proc/self/fd/2"},
	}
	if ptmx {
		l = append(l, libcontainerfd.Link{Path: "/dev/ptmx", Target: "pts/ptmx"})
	}
	if _, err := os.Lstat("/proc/kcore"); err == nil {
		l = append(l, libcontainerfd.Link{Path: "/dev/core", Target: "/proc/kcore"})
	}
	return l
}

func rule(allow bool, typ string, major, minor *int64, access string) specs.LinuxDeviceCgroup {
	return specs.LinuxDeviceCgroup{Allow: allow, Type: typ, Major: major, Minor: minor, Access: access}
}

func defaultRulesWant() []specs.LinuxDeviceCgroup {
	n := func(v int64) *int64 { return &v }
	return []specs.LinuxDeviceCgroup{
		rule(true, "c", nil, nil, "m"),
		rule(true, "b", nil, nil, "m"),
		rule(true, "c", n(1), n(3), "rwm"),
		rule(true, "c", n(1), n(8), "rwm"),
		rule(true, "c", n(1), n(7), "rwm"),
		rule(true, "c", n(5), n(0), "rwm"),
		rule(true, "c", n(1), n(5), "rwm"),
		rule(true, "c", n(1), n(9), "rwm"),
		rule(true, "c", n(136), nil, "rwm"),
		rule(true, "c", n(5), n(2), "rwm"),
		rule(true, "c", n(10), n(200), "rwm"),
	}
}

func defaultProcessWant() *libcontainerfd.Process {
	caps := []string{"CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"}
	return &libcontainerfd.Process{
		Args:            []string{"sh"},
		Env:             []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"},
		Cwd:             "/",
		NoNewPrivileges: true,
		Capabilities:    &specs.LinuxCapabilities{Bounding: caps, Effective: caps, Permitted: caps},
		Rlimits:         []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Hard: 1024, Soft: 1024}},
		Terminal:        true,
	}
}

func defaultMountsWant() []mounttree.Mount {
	return []mounttree.Mount{
		{Type: "proc", Source: "proc", Target: "/proc"},
		{Type: "tmpfs", Source: "tmpfs", Target: "/dev", Attr: nosuid | strictatime,
			Data: []string{"mode=755", "size=65536k"}},
		{Type: "devpts", Source: "devpts", Target: "/dev/pts", Attr: nosuid | noexec,
			Data: []string{"newinstance", "ptmxmode=0666", "mode=0620", "gid=5"}},
		{Type: "tmpfs", Source: "shm", Target: "/dev/shm", Attr: nosuid | noexec | nodev,
			Data: []string{"mode=1777", "size=65536k"}},
		{Type: "mqueue", Source: "mqueue", Target: "/dev/mqueue", Attr: nosuid | noexec | nodev},
		{Type: "sysfs", Source: "sysfs", Target: "/sys", Attr: nosuid | noexec | nodev | ro},
		{Type: "cgroup", Source: "cgroup", Target: "/sys/fs/cgroup", Attr: nosuid | noexec | nodev | ro},
	}
}

func checkConfig(t *testing.T, got, want *libcontainerfd.Config) {
	t.Helper()
	if len(got.Mounts) == len(want.Mounts) {
		for i := range want.Mounts {
			if !reflect.DeepEqual(got.Mounts[i], want.Mounts[i]) {
				t.Errorf("mount %d:\n got %+v\nwant %+v", i, got.Mounts[i], want.Mounts[i])
			}
		}
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Config:\n%s\nwant\n%s", show(got), show(want))
	}
}

func TestTranslateDefault(t *testing.T) {
	dir := bundle(t, nil)
	s := Default(false)
	before := show(s)
	cfg, proc, err := Translate(s, dir)
	if err != nil {
		t.Fatal(err)
	}
	want := &libcontainerfd.Config{
		Flags: libcontainerfd.NewEmptyFS,
		Namespaces: []libcontainerfd.Namespace{
			{Type: unix.CLONE_NEWPID}, {Type: unix.CLONE_NEWNET}, {Type: unix.CLONE_NEWIPC},
			{Type: unix.CLONE_NEWUTS}, {Type: unix.CLONE_NEWNS}, {Type: unix.CLONE_NEWCGROUP},
		},
		Rootfs:        filepath.Join(dir, "rootfs"),
		RootReadonly:  true,
		Mounts:        defaultMountsWant(),
		Hostname:      "containerfd",
		Devices:       defaultDevicesWant(),
		Links:         linksWant(true),
		MaskedPaths:   Default(false).Linux.MaskedPaths,
		ReadonlyPaths: Default(false).Linux.ReadonlyPaths,
		Resources: &specs.LinuxResources{
			Devices: append([]specs.LinuxDeviceCgroup{rule(false, "", nil, nil, "rwm")}, defaultRulesWant()...),
		},
	}
	checkConfig(t, cfg, want)
	if !reflect.DeepEqual(proc, defaultProcessWant()) {
		t.Errorf("Process:\n%s\nwant\n%s", show(proc), show(defaultProcessWant()))
	}
	if show(s) != before {
		t.Errorf("Translate changed the spec")
	}
	// The Config does not share the spec's memory.
	cfg.Resources.Devices[0].Access = "x"
	cfg.Sysctl = nil
	proc.Capabilities.Bounding[0] = "x"
	if show(s) != before {
		t.Errorf("changing the Config changed the spec")
	}
}

func TestTranslateDefaultRootless(t *testing.T) {
	dir := bundle(t, nil)
	cfg, proc, err := Translate(Default(true), dir)
	if err != nil {
		t.Fatal(err)
	}
	mounts := defaultMountsWant()
	mounts[2].Data = []string{"newinstance", "ptmxmode=0666", "mode=0620"}
	mounts[5] = mounttree.Mount{Type: "bind", Source: "/sys", Target: "/sys", Recursive: true,
		Attr: nosuid | noexec | nodev | ro, RecAttr: ro, Exact: true, KeepAtime: true}
	want := &libcontainerfd.Config{
		Flags: libcontainerfd.NewEmptyFS,
		Namespaces: []libcontainerfd.Namespace{
			{Type: unix.CLONE_NEWPID}, {Type: unix.CLONE_NEWIPC}, {Type: unix.CLONE_NEWUTS},
			{Type: unix.CLONE_NEWNS}, {Type: unix.CLONE_NEWCGROUP}, {Type: unix.CLONE_NEWUSER},
		},
		UIDMappings:   []libcontainerfd.IDMap{{ContainerID: 0, HostID: uint32(os.Geteuid()), Size: 1}},
		GIDMappings:   []libcontainerfd.IDMap{{ContainerID: 0, HostID: uint32(os.Getegid()), Size: 1}},
		Rootfs:        filepath.Join(dir, "rootfs"),
		RootReadonly:  true,
		Mounts:        mounts,
		Hostname:      "containerfd",
		Devices:       defaultDevicesWant(),
		Links:         linksWant(true),
		MaskedPaths:   Default(true).Linux.MaskedPaths,
		ReadonlyPaths: Default(true).Linux.ReadonlyPaths,
	}
	checkConfig(t, cfg, want)
	if !reflect.DeepEqual(proc, defaultProcessWant()) {
		t.Errorf("Process:\n%s\nwant\n%s", show(proc), show(defaultProcessWant()))
	}
}

func TestTranslateSeccomp(t *testing.T) {
	s := Default(false)
	s.Linux.Seccomp = &specs.LinuxSeccomp{
		DefaultAction: specs.ActAllow,
		Syscalls:      []specs.LinuxSyscall{{Names: []string{"getcwd"}, Action: specs.ActErrno}},
	}
	cfg, _, err := Translate(s, bundle(t, nil))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(cfg.Seccomp, s.Linux.Seccomp) {
		t.Errorf("Seccomp = %+v", cfg.Seccomp)
	}
}

// Relative paths are the bundle's: root.path and bind sources, with the
// bundle itself given relative to the working directory.
func TestTranslateRelativePaths(t *testing.T) {
	dir := bundle(t, nil)
	t.Chdir(filepath.Dir(dir))
	rel := filepath.Base(dir)
	s := Default(false)
	s.Mounts = append(s.Mounts,
		specs.Mount{Destination: "/data", Type: "none", Source: "volumes/data", Options: []string{"rbind", "rw"}},
		specs.Mount{Destination: "/abs", Type: "bind", Source: "/var/lib/../x"},
		specs.Mount{Destination: "/etc//hosts/", Source: "./hosts", Options: []string{"bind", "ro"}},
		// Deprecated, and relative to / as runc takes it.
		specs.Mount{Destination: "tmp/x/", Type: "tmpfs", Source: "tmpfs"},
	)
	cfg, _, err := Translate(s, rel)
	if err != nil {
		t.Fatal(err)
	}
	if got := Warnings(s); !reflect.DeepEqual(got, []string{fmt.Sprintf(`mounts[%d].destination "tmp/x/": not absolute, taken as relative to / (deprecated)`, len(s.Mounts)-1)}) {
		t.Errorf("Warnings: %q", got)
	}
	if got := cfg.Mounts[len(cfg.Mounts)-1].Target; got != "/tmp/x" {
		t.Errorf("relative destination: target %q, want /tmp/x", got)
	}
	cfg.Mounts = cfg.Mounts[:len(cfg.Mounts)-1]
	if cfg.Rootfs != filepath.Join(dir, "rootfs") {
		t.Errorf("Rootfs %q, want %q", cfg.Rootfs, filepath.Join(dir, "rootfs"))
	}
	got := cfg.Mounts[len(cfg.Mounts)-3:]
	want := []mounttree.Mount{
		{Type: "bind", Source: filepath.Join(dir, "volumes/data"), Target: "/data", Recursive: true, ClearAttr: ro, Exact: true, KeepAtime: true},
		{Type: "bind", Source: "/var/lib/../x", Target: "/abs", KeepAtime: true},
		{Type: "bind", Source: filepath.Join(dir, "hosts"), Target: "/etc/hosts", Attr: ro, Exact: true, KeepAtime: true},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("mounts:\n got %+v\nwant %+v", got, want)
	}

	// An absolute root.path stays itself.
	s = Default(false)
	s.Root.Path = filepath.Join(dir, "rootfs") + "/"
	if cfg, _, err = Translate(s, "/nonexistent-bundle"); err != nil {
		t.Fatal(err)
	} else if cfg.Rootfs != filepath.Join(dir, "rootfs") {
		t.Errorf("absolute Rootfs %q", cfg.Rootfs)
	}
}

func TestMountOptions(t *testing.T) {
	const (
		noatime     = unix.MOUNT_ATTR_NOATIME
		nodiratime  = unix.MOUNT_ATTR_NODIRATIME
		nosymfollow = unix.MOUNT_ATTR_NOSYMFOLLOW
	)
	type result struct {
		attr, clear       uint64
		recAttr, recClear uint64
		recAtime          bool
		prop              int
		data              []string
		recursive         bool
	}
	for _, tc := range []struct {
		opts []string
		// fs: as a tmpfs; bind: with "bind" added; rbind: with "rbind" added.
		fs, bind, rbind result
	}{
		{nil, result{}, result{}, result{recursive: true}},
		{[]string{"ro"}, result{attr: ro}, result{attr: ro}, result{attr: ro, recursive: true}},
		{[]string{"rw"}, result{}, result{clear: ro}, result{clear: ro, recursive: true}},
		{[]string{"ro", "rw"}, result{}, result{clear: ro}, result{clear: ro, recursive: true}},
		{[]string{"rw", "ro"}, result{attr: ro}, result{attr: ro}, result{attr: ro, recursive: true}},
		{[]string{"nosuid"}, result{attr: nosuid}, result{attr: nosuid}, result{attr: nosuid, recursive: true}},
		{[]string{"suid"}, result{}, result{clear: nosuid}, result{clear: nosuid, recursive: true}},
		{[]string{"nodev"}, result{attr: nodev}, result{attr: nodev}, result{attr: nodev, recursive: true}},
		{[]string{"dev"}, result{}, result{clear: nodev}, result{clear: nodev, recursive: true}},
		{[]string{"noexec"}, result{attr: noexec}, result{attr: noexec}, result{attr: noexec, recursive: true}},
		{[]string{"exec"}, result{}, result{clear: noexec}, result{clear: noexec, recursive: true}},
		{[]string{"nodiratime"}, result{attr: nodiratime}, result{attr: nodiratime}, result{attr: nodiratime, recursive: true}},
		{[]string{"diratime"}, result{}, result{clear: nodiratime}, result{clear: nodiratime, recursive: true}},
		{[]string{"nosymfollow"}, result{attr: nosymfollow}, result{attr: nosymfollow}, result{attr: nosymfollow, recursive: true}},
		{[]string{"symfollow"}, result{}, result{clear: nosymfollow}, result{clear: nosymfollow, recursive: true}},
		// On an rbind the plain forms go on the top mount, the recursive
		// ones on the tree.
		{[]string{"rro"}, result{attr: ro}, result{attr: ro}, result{recAttr: ro, recursive: true}},
		{[]string{"rrw"}, result{}, result{clear: ro}, result{recClear: ro, recursive: true}},
		{[]string{"rnosuid", "rsuid"}, result{}, result{clear: nosuid}, result{recClear: nosuid, recursive: true}},
		{[]string{"rnodev"}, result{attr: nodev}, result{attr: nodev}, result{recAttr: nodev, recursive: true}},
		{[]string{"rdev"}, result{}, result{clear: nodev}, result{recClear: nodev, recursive: true}},
		{[]string{"rnoexec"}, result{attr: noexec}, result{attr: noexec}, result{recAttr: noexec, recursive: true}},
		{[]string{"rexec"}, result{}, result{clear: noexec}, result{recClear: noexec, recursive: true}},
		{[]string{"rnodiratime"}, result{attr: nodiratime}, result{attr: nodiratime}, result{recAttr: nodiratime, recursive: true}},
		{[]string{"rdiratime"}, result{}, result{clear: nodiratime}, result{recClear: nodiratime, recursive: true}},
		{[]string{"rnosymfollow"}, result{attr: nosymfollow}, result{attr: nosymfollow}, result{recAttr: nosymfollow, recursive: true}},
		{[]string{"rsymfollow"}, result{}, result{clear: nosymfollow}, result{recClear: nosymfollow, recursive: true}},
		{[]string{"rro", "rw"}, result{}, result{clear: ro}, result{clear: ro, recAttr: ro, recursive: true}},
		{[]string{"ro", "rrw"}, result{}, result{clear: ro}, result{attr: ro, recClear: ro, recursive: true}},
		{[]string{"ro", "rro"}, result{attr: ro}, result{attr: ro}, result{attr: ro, recAttr: ro, recursive: true}},
		// atime: an enum, relatime (0) by default.
		{[]string{"noatime"}, result{attr: noatime}, result{attr: noatime}, result{attr: noatime, recursive: true}},
		{[]string{"noatime", "atime"}, result{}, result{}, result{recursive: true}},
		{[]string{"strictatime", "atime"}, result{attr: strictatime}, result{attr: strictatime}, result{attr: strictatime, recursive: true}},
		{[]string{"strictatime"}, result{attr: strictatime}, result{attr: strictatime}, result{attr: strictatime, recursive: true}},
		{[]string{"strictatime", "nostrictatime"}, result{}, result{}, result{recursive: true}},
		{[]string{"noatime", "nostrictatime"}, result{attr: noatime}, result{attr: noatime}, result{attr: noatime, recursive: true}},
		{[]string{"noatime", "relatime"}, result{}, result{}, result{recursive: true}},
		{[]string{"norelatime"}, result{}, result{}, result{recursive: true}},
		{[]string{"strictatime", "norelatime"}, result{attr: strictatime}, result{attr: strictatime}, result{attr: strictatime, recursive: true}},
		{[]string{"rnoatime"}, result{attr: noatime}, result{attr: noatime}, result{attr: noatime, recAtime: true, recursive: true}},
		{[]string{"rnoatime", "ratime"}, result{}, result{}, result{recAtime: true, recursive: true}},
		{[]string{"rstrictatime"}, result{attr: strictatime}, result{attr: strictatime}, result{attr: strictatime, recAtime: true, recursive: true}},
		{[]string{"rstrictatime", "rnostrictatime"}, result{}, result{}, result{recAtime: true, recursive: true}},
		{[]string{"rnoatime", "rrelatime"}, result{}, result{}, result{recAtime: true, recursive: true}},
		{[]string{"rnorelatime"}, result{}, result{}, result{recAtime: true, recursive: true}},
		// Propagation: last wins.
		{[]string{"private"}, result{prop: unix.MS_PRIVATE}, result{prop: unix.MS_PRIVATE}, result{prop: unix.MS_PRIVATE, recursive: true}},
		{[]string{"rprivate"}, result{prop: unix.MS_PRIVATE}, result{prop: unix.MS_PRIVATE}, result{prop: unix.MS_PRIVATE, recursive: true}},
		{[]string{"shared"}, result{prop: unix.MS_SHARED}, result{prop: unix.MS_SHARED}, result{prop: unix.MS_SHARED, recursive: true}},
		{[]string{"rshared"}, result{prop: unix.MS_SHARED}, result{prop: unix.MS_SHARED}, result{prop: unix.MS_SHARED, recursive: true}},
		{[]string{"slave"}, result{prop: unix.MS_SLAVE}, result{prop: unix.MS_SLAVE}, result{prop: unix.MS_SLAVE, recursive: true}},
		{[]string{"rslave"}, result{prop: unix.MS_SLAVE}, result{prop: unix.MS_SLAVE}, result{prop: unix.MS_SLAVE, recursive: true}},
		{[]string{"unbindable"}, result{prop: unix.MS_UNBINDABLE}, result{prop: unix.MS_UNBINDABLE}, result{prop: unix.MS_UNBINDABLE, recursive: true}},
		{[]string{"runbindable"}, result{prop: unix.MS_UNBINDABLE}, result{prop: unix.MS_UNBINDABLE}, result{prop: unix.MS_UNBINDABLE, recursive: true}},
		{[]string{"rshared", "rslave"}, result{prop: unix.MS_SLAVE}, result{prop: unix.MS_SLAVE}, result{prop: unix.MS_SLAVE, recursive: true}},
		// Ignored.
		{[]string{"defaults", "iversion", "noiversion", "silent", "loud"}, result{}, result{}, result{recursive: true}},
		// Superblock flags and everything else: filesystem data, nothing
		// for a bind.
		{[]string{"sync", "async", "dirsync", "lazytime", "nolazytime", "mand", "nomand"},
			result{data: []string{"sync", "async", "dirsync", "lazytime", "nolazytime", "mand", "nomand"}}, result{}, result{recursive: true}},
		{[]string{"mode=755", "nosuid", "size=65536k", "newinstance", "ptmxmode=0666", "gid=5"},
			result{attr: nosuid, data: []string{"mode=755", "size=65536k", "newinstance", "ptmxmode=0666", "gid=5"}},
			result{attr: nosuid}, result{attr: nosuid, recursive: true}},
		// The default mounts' option sets.
		{[]string{"nosuid", "noexec", "nodev", "relatime", "ro"},
			result{attr: nosuid | noexec | nodev | ro}, result{attr: nosuid | noexec | nodev | ro},
			result{attr: nosuid | noexec | nodev | ro, recursive: true}},
		{[]string{"rw", "nosuid", "exec", "rprivate", "noatime"},
			result{attr: nosuid | noatime, prop: unix.MS_PRIVATE},
			result{attr: nosuid | noatime, clear: ro | noexec, prop: unix.MS_PRIVATE},
			result{attr: nosuid | noatime, clear: ro | noexec, prop: unix.MS_PRIVATE, recursive: true}},
	} {
		for _, kind := range []string{"fs", "bind", "rbind"} {
			m := specs.Mount{Destination: "/mnt", Type: "tmpfs", Source: "tmpfs", Options: tc.opts}
			want := tc.fs
			switch kind {
			case "bind":
				m.Options = append([]string{"bind"}, tc.opts...)
				want = tc.bind
			case "rbind":
				m.Options = append(append([]string(nil), tc.opts...), "rbind")
				want = tc.rbind
			}
			p := &problems{}
			checkMount(p, 0, m)
			if err := p.err(); err != nil {
				t.Errorf("%s %q: %v", kind, tc.opts, err)
				continue
			}
			got := translateMount("/bundle", 0, m)
			wantType, wantSource := "tmpfs", "tmpfs"
			if kind != "fs" {
				wantType, wantSource = "bind", "/bundle/tmpfs"
			}
			wantM := mounttree.Mount{Type: wantType, Source: wantSource, Target: "/mnt", Recursive: want.recursive,
				Attr: want.attr, ClearAttr: want.clear, Data: want.data, Propagation: want.prop,
				RecAttr: want.recAttr, RecClearAttr: want.recClear, RecAtime: want.recAtime}
			if kind != "fs" {
				// runc's rule: a bind that names a plain flag or atime
				// option gets exactly those; without an atime option it
				// keeps the source's.
				left, recursive := map[string]bool{}, false
				for _, o := range tc.opts {
					wantM.Exact = wantM.Exact || plainFlagOptions[o] || atimeOptionNames[o]
					if atimeOptionNames[o] {
						left[o] = true
						left[map[string]string{"atime": "noatime", "norelatime": "relatime", "nostrictatime": "strictatime"}[o]] = false
					} else if r, ok := strings.CutPrefix(o, "r"); ok && atimeOptionNames[r] {
						recursive = true
					}
				}
				wantM.KeepAtime = !recursive && !left["noatime"] && !left["relatime"] && !left["strictatime"]
			}
			if !reflect.DeepEqual(got, wantM) {
				t.Errorf("%s %q:\n got %+v\nwant %+v", kind, tc.opts, got, wantM)
			}
		}
	}
}

// plainFlagOptions and atimeOptionNames are the options runc counts as
// naming a bind's flags (its remount) and its atime setting.
var (
	plainFlagOptions = map[string]bool{"ro": true, "rw": true, "nosuid": true, "suid": true, "nodev": true, "dev": true,
		"noexec": true, "exec": true, "nodiratime": true, "diratime": true, "nosymfollow": true, "symfollow": true}
	atimeOptionNames = map[string]bool{"atime": true, "noatime": true, "relatime": true, "norelatime": true,
		"strictatime": true, "nostrictatime": true}
)

func TestTranslateMountTypes(t *testing.T) {
	s := Default(false)
	s.Mounts = []specs.Mount{
		{Destination: "/proc", Type: "proc", Source: "proc"},
		{Destination: "/sys/fs/cgroup", Type: "cgroup2", Source: "cgroup2", Options: []string{"nosuid"}},
		{Destination: "/tmp/", Type: "tmpfs", Source: "tmpfs"},
		{Destination: "/etc/resolv.conf", Type: "tmpfs", Source: "/etc/resolv.conf", Options: []string{"bind", "ro"}},
		{Destination: "/x", Type: "bind", Source: "/x"},
	}
	cfg, _, err := Translate(s, bundle(t, nil))
	if err != nil {
		t.Fatal(err)
	}
	want := []mounttree.Mount{
		{Type: "proc", Source: "proc", Target: "/proc"},
		{Type: "cgroup2", Source: "cgroup2", Target: "/sys/fs/cgroup", Attr: nosuid},
		{Type: "tmpfs", Source: "tmpfs", Target: "/tmp"},
		{Type: "bind", Source: "/etc/resolv.conf", Target: "/etc/resolv.conf", Attr: ro, Exact: true, KeepAtime: true},
		{Type: "bind", Source: "/x", Target: "/x", KeepAtime: true},
	}
	if !reflect.DeepEqual(cfg.Mounts, want) {
		t.Errorf("mounts:\n got %+v\nwant %+v", cfg.Mounts, want)
	}
	// No devpts: no /dev/ptmx link.
	if !reflect.DeepEqual(cfg.Links, linksWant(false)) {
		t.Errorf("links %+v", cfg.Links)
	}
}

func TestTranslateDevices(t *testing.T) {
	s := Default(false)
	s.Linux.Devices = []specs.LinuxDevice{
		{Path: "/dev/null", Type: "c", Major: 1, Minor: 3, FileMode: ptr(os.FileMode(unix.S_IFCHR | 0o600)), UID: ptr(uint32(7))},
		{Path: "/dev/fuse", Type: "u", Major: 10, Minor: 229},
		{Path: "/dev/ptmx", Type: "c", Major: 5, Minor: 2},
		{Path: "/dev/fifo", Type: "p", GID: ptr(uint32(5))},
	}
	cfg, _, err := Translate(s, bundle(t, nil))
	if err != nil {
		t.Fatal(err)
	}
	dev := func(p, typ string, major, minor int64, mode os.FileMode, uid, gid uint32) specs.LinuxDevice {
		return specs.LinuxDevice{Path: p, Type: typ, Major: major, Minor: minor, FileMode: &mode, UID: &uid, GID: &gid}
	}
	want := append(defaultDevicesWant()[1:],
		dev("/dev/null", "c", 1, 3, 0o600, 7, 0),
		dev("/dev/fuse", "c", 10, 229, 0o666, 0, 0),
		dev("/dev/ptmx", "c", 5, 2, 0o666, 0, 0),
		dev("/dev/fifo", "p", 0, 0, 0o666, 0, 5),
	)
	if !reflect.DeepEqual(cfg.Devices, want) {
		t.Errorf("devices:\n%s\nwant\n%s", show(cfg.Devices), show(want))
	}
	// linux.devices has a /dev/ptmx: no link over it.
	if !reflect.DeepEqual(cfg.Links, linksWant(false)) {
		t.Errorf("links %+v", cfg.Links)
	}
	// The overridden /dev/null loses its default cgroup rule too (runc).
	rules := defaultRulesWant()
	rules = append(append([]specs.LinuxDeviceCgroup{rule(false, "", nil, nil, "rwm")}, rules[:2]...), rules[3:]...)
	if !reflect.DeepEqual(cfg.Resources.Devices, rules) {
		t.Errorf("device rules:\n%s\nwant\n%s", show(cfg.Resources.Devices), show(rules))
	}

	// With /dev bound from the host, no nodes and no links are made there.
	s = Default(false)
	s.Mounts[1] = specs.Mount{Destination: "/dev", Type: "bind", Source: "/dev", Options: []string{"rbind"}}
	s.Linux.Devices = []specs.LinuxDevice{{Path: "/dev/fuse", Type: "c", Major: 10, Minor: 229}}
	if cfg, _, err = Translate(s, bundle(t, nil)); err != nil {
		t.Fatal(err)
	}
	if cfg.Devices != nil || cfg.Links != nil {
		t.Errorf("with /dev a bind: devices %v, links %v", cfg.Devices, cfg.Links)
	}
}

func TestTranslateResources(t *testing.T) {
	n := func(v int64) *int64 { return &v }
	for _, tc := range []struct {
		name string
		in   *specs.LinuxResources
		want *specs.LinuxResources
	}{
		{"none", nil, nil},
		{"no device rules", &specs.LinuxResources{Pids: &specs.LinuxPids{Limit: n(10)}},
			&specs.LinuxResources{Pids: &specs.LinuxPids{Limit: n(10)},
				Devices: append([]specs.LinuxDeviceCgroup{rule(false, "", nil, nil, "rwm")}, defaultRulesWant()...)}},
		{"allow rule only", &specs.LinuxResources{Devices: []specs.LinuxDeviceCgroup{rule(true, "c", n(10), n(229), "rw")}},
			&specs.LinuxResources{Devices: append([]specs.LinuxDeviceCgroup{rule(false, "", nil, nil, "rwm"),
				rule(true, "c", n(10), n(229), "rw")}, defaultRulesWant()...)}},
		{"deny-all first", &specs.LinuxResources{Devices: []specs.LinuxDeviceCgroup{rule(false, "a", nil, nil, "mwr"), rule(true, "b", n(8), nil, "r")}},
			&specs.LinuxResources{Devices: append([]specs.LinuxDeviceCgroup{rule(false, "a", nil, nil, "mwr"),
				rule(true, "b", n(8), nil, "r")}, defaultRulesWant()...)}},
	} {
		s := Default(false)
		s.Linux.Resources = tc.in
		cfg, _, err := Translate(s, bundle(t, nil))
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if !reflect.DeepEqual(cfg.Resources, tc.want) {
			t.Errorf("%s:\n%s\nwant\n%s", tc.name, show(cfg.Resources), show(tc.want))
		}
	}
}

func TestTranslateMisc(t *testing.T) {
	s := Default(false)
	s.Linux.Namespaces[1].Path = "/proc/self/ns/net"
	s.Linux.CgroupsPath = "/containerfd/x"
	s.Linux.RootfsPropagation = "rshared"
	s.Linux.Sysctl = map[string]string{"kernel.shmmax": "1"}
	s.Linux.MaskedPaths = []string{"/proc//kcore/"}
	s.Domainname = "example.org"
	s.Process.ConsoleSize = &specs.Box{Height: 25, Width: 80}
	s.Process.User = specs.User{UID: 1, GID: 2, Umask: ptr(uint32(0o22)), AdditionalGids: []uint32{3}}
	s.Process.OOMScoreAdj = ptr(-5)
	s.Process.Cwd = "/home//x/"
	s.Hooks = &specs.Hooks{Poststop: []specs.Hook{{Path: "/bin/true"}}}
	s.Annotations = map[string]string{"a": "b"}
	cfg, proc, err := Translate(s, bundle(t, nil))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Namespaces[1] != (libcontainerfd.Namespace{Type: unix.CLONE_NEWNET, Path: "/proc/self/ns/net"}) {
		t.Errorf("joined netns: %+v", cfg.Namespaces[1])
	}
	if cfg.Cgroup != "/containerfd/x" || cfg.RootPropagation != unix.MS_SHARED || cfg.Domainname != "example.org" ||
		!reflect.DeepEqual(cfg.Sysctl, s.Linux.Sysctl) || !reflect.DeepEqual(cfg.MaskedPaths, []string{"/proc/kcore"}) ||
		cfg.Labels != nil {
		t.Errorf("Config: %s", show(cfg))
	}
	wantProc := defaultProcessWant()
	wantProc.ConsoleSize = &specs.Box{Height: 25, Width: 80}
	wantProc.UID, wantProc.GID, wantProc.Umask, wantProc.AdditionalGids = 1, 2, ptr(uint32(0o22)), []uint32{3}
	wantProc.OOMScoreAdj = ptr(-5)
	wantProc.Cwd = "/home/x"
	if !reflect.DeepEqual(proc, wantProc) {
		t.Errorf("Process:\n%s\nwant\n%s", show(proc), show(wantProc))
	}

	// consoleSize means nothing without a terminal.
	s.Process.Terminal = false
	if _, proc, err = Translate(s, bundle(t, nil)); err != nil || proc.ConsoleSize != nil || proc.Terminal {
		t.Errorf("without terminal: %v %+v", err, proc)
	}

	// No rootfsPropagation: 0, the library's default.
	if cfg, _, err = Translate(Default(false), bundle(t, nil)); err != nil || cfg.RootPropagation != 0 {
		t.Errorf("default propagation: %v %#x", err, cfg.RootPropagation)
	}
	for name, want := range map[string]int{"private": unix.MS_PRIVATE, "rprivate": unix.MS_PRIVATE, "slave": unix.MS_SLAVE,
		"rslave": unix.MS_SLAVE, "shared": unix.MS_SHARED, "unbindable": unix.MS_UNBINDABLE, "runbindable": unix.MS_UNBINDABLE} {
		s := Default(false)
		s.Linux.RootfsPropagation = name
		if cfg, _, err := Translate(s, bundle(t, nil)); err != nil || cfg.RootPropagation != want {
			t.Errorf("rootfsPropagation %s: %v %#x", name, err, cfg.RootPropagation)
		}
	}
}

func TestTranslateProcess(t *testing.T) {
	pr := Default(false).Process
	got, err := TranslateProcess(pr)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, defaultProcessWant()) {
		t.Errorf("TranslateProcess:\n%s\nwant\n%s", show(got), show(defaultProcessWant()))
	}
	for _, tc := range []struct {
		change func(p *specs.Process)
		want   string
	}{
		{func(p *specs.Process) { p.Cwd = "x" }, `process.cwd "x": must be absolute`},
		{func(p *specs.Process) { p.Args = nil }, `process.args: empty`},
		{func(p *specs.Process) { p.OOMScoreAdj = ptr(-1001) }, `process.oomScoreAdj -1001: out of range [-1000, 1000]`},
	} {
		pr := Default(false).Process
		tc.change(pr)
		if _, err := TranslateProcess(pr); err == nil || err.Error() != tc.want {
			t.Errorf("TranslateProcess: %v, want %s", err, tc.want)
		}
	}
	if _, err := TranslateProcess(nil); err == nil || err.Error() != "process: missing" {
		t.Errorf("TranslateProcess(nil): %v", err)
	}
}

// An LSM label on a host without the LSM is refused, naming the field and
// the LSM; where the LSM is active, integration tests run under it.
func TestValidateLSM(t *testing.T) {
	for _, tc := range []struct {
		lsm    string
		change func(s *specs.Spec)
		want   string
	}{
		{lsm.AppArmor, func(s *specs.Spec) { s.Process.ApparmorProfile = "x" }, `process.apparmorProfile "x": AppArmor is not enabled`},
		{lsm.SELinux, func(s *specs.Spec) { s.Process.SelinuxLabel = "x" }, `process.selinuxLabel "x": SELinux is not enabled`},
		{lsm.SELinux, func(s *specs.Spec) { s.Linux.MountLabel = "x" }, `linux.mountLabel "x": SELinux is not enabled`},
	} {
		t.Run(tc.want[:strings.Index(tc.want, " ")], func(t *testing.T) {
			if lsm.Check(tc.lsm) == nil {
				t.Skipf("%s is enabled here: nothing is refused", tc.lsm)
			}
			s := Default(false)
			tc.change(s)
			err := Validate(s, bundle(t, nil))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Validate: %v, want %q", err, tc.want)
			}
		})
	}
}

// linux.mountLabel labels the new filesystems that take a context= option.
func TestLabelMounts(t *testing.T) {
	var mounts []mounttree.Mount
	for i, m := range Default(false).Mounts {
		mounts = append(mounts, translateMount("/b", i, m))
	}
	labelMounts(mounts, "system_u:object_r:container_file_t:s0:c1,c2")
	for _, m := range mounts {
		labelled := slices.Contains(m.Data, "context=system_u:object_r:container_file_t:s0:c1,c2")
		if want := m.Type == "tmpfs" || m.Type == "devpts" || m.Type == "mqueue"; labelled != want {
			t.Errorf("mount %s (%s): labelled %v, want %v (data %q)", m.Target, m.Type, labelled, want, m.Data)
		}
	}
}

func TestMountOptionsList(t *testing.T) {
	opts := MountOptions()
	// Every option config.md lists, except those refused.
	for _, o := range strings.Fields(`async atime bind defaults dev diratime dirsync exec iversion lazytime loud
		mand noatime nodev nodiratime noexec noiversion nolazytime nomand norelatime nostrictatime nosuid
		nosymfollow private ratime rbind rdev rdiratime relatime rexec rnoatime rnodiratime rnoexec
		rnorelatime rnostrictatime rnosuid rnosymfollow ro rprivate rrelatime rro rrw rshared rslave
		rstrictatime rsuid rsymfollow runbindable rw shared silent slave strictatime suid symfollow sync
		unbindable`) {
		if !slices.Contains(opts, o) {
			t.Errorf("MountOptions lacks %q", o)
		}
	}
	for _, o := range []string{"remount"} {
		if slices.Contains(opts, o) {
			t.Errorf("MountOptions has refused %q", o)
		}
	}
	if !slices.IsSorted(opts) || len(slices.Compact(slices.Clone(opts))) != len(opts) {
		t.Errorf("MountOptions not sorted or has duplicates: %v", opts)
	}
	// Each of them translates without a problem (idmaps on a bind).
	for _, o := range opts {
		p := &problems{}
		m := specs.Mount{Destination: "/x", Type: "tmpfs", Source: "/y", Options: []string{o}}
		if o == "idmap" || o == "ridmap" {
			m.Options = append(m.Options, "bind")
		}
		checkMount(p, 0, m)
		if err := p.err(); err != nil {
			t.Errorf("option %q: %v", o, err)
		}
	}
}

// linux.intelRdt: each field is checked as config-linux.md says, errors
// name the field, and a host without resctrl is refused naming resctrl.
func TestIntelRdt(t *testing.T) {
	b := bundle(t, nil)
	old := resctrlRoot
	t.Cleanup(func() { resctrlRoot = old })
	resctrlRoot = func() (string, error) { return "/sys/fs/resctrl", nil }
	for _, tc := range []struct {
		rdt  specs.LinuxIntelRdt
		want string // "": valid
	}{
		{specs.LinuxIntelRdt{}, ""},
		{specs.LinuxIntelRdt{ClosID: "guaranteed_group", Schemata: []string{"L3:0=7f0;1=1f", "L2:0=f;1=f;2=f;3=f", "MB:0=20;1=70"}}, ""},
		{specs.LinuxIntelRdt{ClosID: "/", L3CacheSchema: "L3:0=ff", MemBwSchema: "MB:0=50", EnableMonitoring: true}, ""},
		{specs.LinuxIntelRdt{ClosID: "a/b"}, "linux.intelRdt.closID: "},
		{specs.LinuxIntelRdt{ClosID: ".."}, "linux.intelRdt.closID: "},
		{specs.LinuxIntelRdt{ClosID: "info"}, "linux.intelRdt.closID: "},
		{specs.LinuxIntelRdt{L3CacheSchema: "MB:0=20"}, `linux.intelRdt.l3CacheSchema: schema "MB:0=20": does not start with "L3:"`},
		{specs.LinuxIntelRdt{MemBwSchema: "L3:0=ff"}, `linux.intelRdt.memBwSchema: schema "L3:0=ff": does not start with "MB:"`},
		{specs.LinuxIntelRdt{MemBwSchema: "MB:0=20\nL3:0=1"}, "linux.intelRdt.memBwSchema: "},
		{specs.LinuxIntelRdt{Schemata: []string{"L3:0=ff", "L3:0=ff\n"}}, "linux.intelRdt.schemata[1]: "},
		{specs.LinuxIntelRdt{Schemata: []string{"nonsense"}}, "linux.intelRdt.schemata[0]: "},
	} {
		s := Default(false)
		s.Linux.IntelRdt = &tc.rdt
		err := Validate(s, b)
		if tc.want == "" {
			if err != nil {
				t.Errorf("Validate(%+v): %v", tc.rdt, err)
				continue
			}
			cfg, _, err := Translate(s, b)
			if err != nil || cfg.IntelRdt == nil || cfg.IntelRdt.ClosID != tc.rdt.ClosID || len(cfg.IntelRdt.Schemata) != len(tc.rdt.Schemata) {
				t.Errorf("Translate(%+v): IntelRdt %+v, %v", tc.rdt, cfg.IntelRdt, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Validate(%+v): %v, want %q", tc.rdt, err, tc.want)
		}
	}

	// No resctrl: an error that names the field and resctrl.
	resctrlRoot = func() (string, error) { return "", resctrl.ErrNotMounted }
	s := Default(false)
	s.Linux.IntelRdt = &specs.LinuxIntelRdt{}
	want := "linux.intelRdt: no resctrl filesystem is mounted"
	if err := Validate(s, b); err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("Validate without resctrl: %v, want %q", err, want)
	}
}

// ForHost is runc's spec: a cgroup namespace only on a pure cgroup v2 host.
func TestForHost(t *testing.T) {
	var st unix.Statfs_t
	if err := unix.Statfs("/sys/fs/cgroup", &st); err != nil {
		t.Fatal(err)
	}
	want := st.Type == unix.CGROUP2_SUPER_MAGIC
	for _, rootless := range []bool{false, true} {
		s := ForHost(rootless)
		got := slices.ContainsFunc(s.Linux.Namespaces, func(n specs.LinuxNamespace) bool { return n.Type == specs.CgroupNamespace })
		if got != want {
			t.Errorf("ForHost(%v) lists a cgroup namespace: %v, want %v", rootless, got, want)
		}
	}
}
