package integration

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// logHook is a hook that appends "<name> <state json>" to log.
func logHook(t *testing.T, dir, log, name string) specs.Hook {
	path := filepath.Join(dir, name+".sh")
	script := "#!/bin/sh\nprintf '%s ' " + name + " >> " + log + "\ncat >> " + log + "\necho >> " + log + "\n"
	if err := os.WriteFile(path, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return specs.Hook{Path: path}
}

func TestHooksOrderAndState(t *testing.T) {
	e := newEnv(t, "true")
	hookDir := t.TempDir()
	log := filepath.Join(hookDir, "log")
	s := e.spec()
	s.Annotations = map[string]string{"org.example.a": "b"}
	s.Hooks = &specs.Hooks{
		Prestart:        []specs.Hook{logHook(t, hookDir, log, "prestart")},
		CreateRuntime:   []specs.Hook{logHook(t, hookDir, log, "createRuntime")},
		CreateContainer: []specs.Hook{logHook(t, hookDir, log, "createContainer")},
		Poststart:       []specs.Hook{logHook(t, hookDir, log, "poststart")},
		Poststop:        []specs.Hook{logHook(t, hookDir, log, "poststop")},
	}
	// startContainer runs the program found in the container.
	os.WriteFile(filepath.Join(testRootfs(t, e), "startContainer.sh"),
		[]byte("#!/bin/sh\necho startContainer $(cat) >> /tmp/start.log\n"), 0o755)
	s.Hooks.StartContainer = []specs.Hook{{Path: "/startContainer.sh"}}
	e.writeSpec(s)

	e.ok("create", "--bundle", e.bundle, e.id)
	e.ok("start", e.id)
	waitStatus(t, e, "stopped")
	if b, err := os.ReadFile(filepath.Join(testRootfs(t, e), "tmp/start.log")); err != nil || !strings.Contains(string(b), `"status":"created"`) {
		t.Errorf("startContainer hook: %q %v", b, err)
	}
	e.ok("delete", e.id)

	b, err := os.ReadFile(log)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	want := []struct{ name, status string }{
		{"prestart", "creating"}, {"createRuntime", "creating"}, {"createContainer", "creating"},
		{"poststart", "running"}, {"poststop", "stopped"},
	}
	if len(lines) != len(want) {
		t.Fatalf("hooks ran:\n%s", b)
	}
	for i, w := range want {
		name, js, _ := strings.Cut(lines[i], " ")
		var st specs.State
		if err := json.Unmarshal([]byte(js), &st); err != nil {
			t.Errorf("hook %s stdin %q: %v", name, js, err)
			continue
		}
		if name != w.name || string(st.Status) != w.status || st.ID != e.id || st.Bundle != e.bundle || st.Annotations["org.example.a"] != "b" {
			t.Errorf("hook %d: %s %+v, want %s with status %s", i, name, st, w.name, w.status)
		}
		if w.name == "createContainer" && st.Pid != 1 {
			t.Errorf("createContainer hook sees pid %d, want 1 (as the container sees it)", st.Pid)
		}
		if (w.name == "createRuntime" || w.name == "prestart") && st.Pid <= 1 {
			t.Errorf("%s hook sees pid %d, want init's host pid", w.name, st.Pid)
		}
	}
}

// testRootfs is the root path of e's config.
func testRootfs(t *testing.T, e *env) string { return e.spec().Root.Path }

// A failing createRuntime hook fails create and leaves nothing.
func TestFailingHookLeavesNothing(t *testing.T) {
	e := newEnv(t, "true")
	hookDir := t.TempDir()
	failing := filepath.Join(hookDir, "fail.sh")
	os.WriteFile(failing, []byte("#!/bin/sh\necho hook says no >&2\nexit 3\n"), 0o755)
	s := e.spec()
	s.Hooks = &specs.Hooks{CreateRuntime: []specs.Hook{{Path: failing}}}
	e.writeSpec(s)
	r := e.cfd("create", "--bundle", e.bundle, e.id)
	if r.code == 0 || !strings.Contains(r.stderr, "error running createRuntime hook #0:") || !strings.Contains(r.stderr, "hook says no") {
		t.Errorf("create with a failing hook: %v", r)
	}
	if r := e.cfd("state", e.id); r.code == 0 {
		t.Errorf("container left after a failed create: %v", r)
	}
	if d := cgroupDirsOf(t, e.cgroup); len(d) != 0 {
		t.Errorf("cgroups left after a failed create: %v", d)
	}
}

// A startContainer hook without an env of its own gets the process's (each
// variable once, HOME from the container's /etc/passwd), as runc runs it;
// one with an env gets that alone.
func TestStartContainerHookEnv(t *testing.T) {
	e := newEnv(t, "true")
	os.WriteFile(filepath.Join(testRootfs(t, e), "env.sh"), []byte("#!/bin/sh\nenv | sort > /tmp/$1.env\n"), 0o755)
	s := e.spec()
	s.Process.Env = []string{"ONE=one", "FOO=bar", "ONE=two", "PATH=/bin"}
	s.Hooks = &specs.Hooks{StartContainer: []specs.Hook{
		{Path: "/env.sh", Args: []string{"env.sh", "inherit"}},
		{Path: "/env.sh", Args: []string{"env.sh", "own"}, Env: []string{"OWN=1", "PATH=/bin"}},
	}}
	e.writeSpec(s)
	e.ok("run", "-b", e.bundle, e.id)
	for name, want := range map[string]string{"inherit": "FOO=bar\nHOME=/root\nONE=two\nPATH=/bin\nPWD=/\nSHLVL=1\n", "own": "OWN=1\nPATH=/bin\nPWD=/\nSHLVL=1\n"} {
		b, err := os.ReadFile(filepath.Join(testRootfs(t, e), "tmp", name+".env"))
		if err != nil || string(b) != want {
			t.Errorf("startContainer hook's env (%s): %q %v, want %q", name, b, err, want)
		}
	}
}

// A startContainer hook that is a program, not a script, gets stdio alone,
// as runc's does (it runs the hook by path); a script also keeps the fd its
// interpreter reads it through.
func TestStartContainerHookFds(t *testing.T) {
	e := newEnv(t, "true")
	s := e.spec()
	s.Hooks = &specs.Hooks{StartContainer: []specs.Hook{
		{Path: "/bin/sh", Args: []string{"sh", "-c", "ls /proc/self/fd | wc -l > /tmp/fds"}},
	}}
	e.writeSpec(s)
	e.ok("run", "-b", e.bundle, e.id)
	// 0, 1, 2 and the directory ls reads.
	if b, err := os.ReadFile(filepath.Join(testRootfs(t, e), "tmp/fds")); err != nil || strings.TrimSpace(string(b)) != "4" {
		t.Errorf("the hook's fds: %q %v, want 4 entries", b, err)
	}
}

// A startContainer hook runs under the container's seccomp filter, as
// runc runs it (in init, the filter in place): a call the profile kills
// kills the hook, and start fails. A createContainer hook, which runc runs
// before the filter, is not under it.
func TestStartContainerHookSeccomp(t *testing.T) {
	eachStartPath(t, func(t *testing.T) {
		e := newEnv(t, "true")
		s := e.spec()
		s.Process.NoNewPrivileges = false
		s.Linux.Seccomp = &specs.LinuxSeccomp{DefaultAction: specs.ActAllow,
			Syscalls: []specs.LinuxSyscall{{Names: []string{"mkdir", "mkdirat"}, Action: specs.ActKill}}}
		rootfs := testRootfs(t, e)
		// createContainer's path resolves, and runs, in the runtime's
		// root (the container's mount namespace before pivot_root).
		s.Hooks = &specs.Hooks{
			CreateContainer: []specs.Hook{{Path: "/bin/sh", Args: []string{"sh", "-c", "mkdir " + filepath.Join(rootfs, "tmp/created")}}},
			StartContainer:  []specs.Hook{{Path: "/bin/sh", Args: []string{"sh", "-c", "mkdir /tmp/started"}}},
		}
		e.writeSpec(s)
		r := e.cfd("run", "-b", e.bundle, e.id)
		if _, err := os.Stat(filepath.Join(rootfs, "tmp/created")); err != nil {
			t.Errorf("the createContainer hook, outside the filter: %v (run: %v)", err, r)
		}
		if r.code == 0 || !strings.Contains(r.stderr, "error running startContainer hook") || !strings.Contains(r.stderr, "bad system call") {
			t.Errorf("run: %v, want the startContainer hook killed by the filter", r)
		}
		if _, err := os.Stat(filepath.Join(rootfs, "tmp/started")); err == nil {
			t.Error("the startContainer hook made its directory under a filter that kills mkdir")
		}
	})
}

// A createRuntime hook that enters init's mount namespace finds the rootfs
// at its host path, as runc mounts it there before pivot_root: GPU hooks
// (nvidia-container-toolkit) and runc's hooks_so.bats bind files into the
// container so. Their mounts show inside.
func TestCreateRuntimeHookRootfsAtHostPath(t *testing.T) {
	if _, err := exec.LookPath("nsenter"); err != nil {
		t.Skip("no nsenter (util-linux) here")
	}
	eachStartPath(t, func(t *testing.T) {
		e := newEnv(t, "cat", "/mnt/hooked/f")
		rootfs := testRootfs(t, e)
		src := t.TempDir()
		if err := os.WriteFile(filepath.Join(src, "f"), []byte("from the hook\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(filepath.Join(rootfs, "mnt/hooked"), 0o755); err != nil {
			t.Fatal(err)
		}
		script := filepath.Join(t.TempDir(), "hook.sh")
		body := "#!/bin/sh\npid=$(sed 's/.*\"pid\":\\([0-9]*\\).*/\\1/')\nexec nsenter -m -t $pid mount --bind " + src + " " + filepath.Join(rootfs, "mnt/hooked") + "\n"
		if err := os.WriteFile(script, []byte(body), 0o755); err != nil {
			t.Fatal(err)
		}
		s := e.spec()
		s.Hooks = &specs.Hooks{CreateRuntime: []specs.Hook{{Path: script}}}
		e.writeSpec(s)
		if r := e.cfd("run", "-b", e.bundle, e.id); r.code != 0 || r.stdout != "from the hook\n" {
			t.Errorf("run with a createRuntime hook that binds into the rootfs by its host path: %v", r)
		}
	})
}

// A createContainer hook works in the rootfs, as runc's init is there when
// it runs one (runc's hooks_so.bats binds into ./lib).
func TestCreateContainerHookCwd(t *testing.T) {
	eachStartPath(t, func(t *testing.T) {
		e := newEnv(t, "cat", "/made-by-hook")
		s := e.spec()
		s.Hooks = &specs.Hooks{CreateContainer: []specs.Hook{{Path: "/bin/sh", Args: []string{"sh", "-c", "pwd > ./made-by-hook"}}}}
		e.writeSpec(s)
		if r := e.cfd("run", "-b", e.bundle, e.id); r.code != 0 || r.stdout != testRootfs(t, e)+"\n" {
			t.Errorf("run: %v, want the hook's cwd, the rootfs %s, in /made-by-hook", r, testRootfs(t, e))
		}
	})
}
