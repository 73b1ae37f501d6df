package integration

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	cfd "github.com/containerfd/containerfd/libcontainerfd"
	"github.com/containerfd/containerfd/libcontainerfd/kernfeat"
	"golang.org/x/sys/unix"
)

// reaperEnv makes the test binary a child subreaper that runs its arguments,
// tells their exit code on fd 3, then reaps the orphans that come back to it
// until none is left, as containerd's shim and conmon do for the containers
// they start. (This host's pid 1 reaps no orphan.)
const reaperEnv = "CFD_TEST_REAPER"

func reaperMain() int {
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		fmt.Fprintln(os.Stderr, "reaper: PR_SET_CHILD_SUBREAPER:", err)
		return 1
	}
	done := os.NewFile(3, "done")
	unix.CloseOnExec(3)
	cmd := exec.Command(os.Args[1], os.Args[2:]...)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	code := 0
	if err := cmd.Run(); err != nil {
		code = -1
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			code = ee.ExitCode()
		}
	}
	fmt.Fprintln(done, code)
	done.Close()
	for {
		var ws unix.WaitStatus
		_, err := unix.Wait4(-1, &ws, unix.WALL, nil)
		if err == unix.ECHILD {
			return 0
		}
		if err != nil && err != unix.EINTR {
			fmt.Fprintln(os.Stderr, "reaper: wait4:", err)
			return 1
		}
	}
}

// runReaped runs `containerfd args...` under a reaper (the container's
// init's parent once the command exits), with env added, and fails the
// test unless it succeeds. The reaper lives until init is reaped.
func (e *env) runReaped(env []string, args ...string) {
	e.t.Helper()
	self, err := os.Executable()
	if err != nil {
		e.t.Fatal(err)
	}
	r, w, err := os.Pipe()
	if err != nil {
		e.t.Fatal(err)
	}
	defer r.Close()
	cmd := exec.Command(self, append([]string{binary, "--root", e.root}, args...)...)
	cmd.Env = append(append(os.Environ(), reaperEnv+"=1"), env...)
	out := e.tempFile()
	cmd.Stdout, cmd.Stderr = out, out
	cmd.ExtraFiles = []*os.File{w}
	if err := cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	w.Close()
	e.t.Cleanup(func() {
		// delete --force (newEnv's cleanup, which runs after this) ends
		// init; the reaper then reaps it and exits.
		e.cfd("delete", "--force", e.id)
		cmd.Wait()
	})
	line, _ := bufio.NewReader(r).ReadString('\n')
	if code, err := strconv.Atoi(strings.TrimSpace(line)); err != nil || code != 0 {
		e.t.Fatalf("containerfd %s under a reaper: %q: %s", strings.Join(args, " "), line, readBack(e.t, out))
	}
}

// startPaths runs f once per way init starts: directly, and through the Go
// stage; env is what the creating command needs for it.
func startPaths(t *testing.T, f func(t *testing.T, env []string)) {
	t.Run("direct", func(t *testing.T) {
		if stageForced() {
			t.Skip(envStart + "=stage: every process starts through the stage")
		}
		f(t, nil)
	})
	t.Run("stage", func(t *testing.T) { f(t, []string{envStart + "=stage"}) })
}

func requirePidfdExit(t *testing.T) {
	t.Helper()
	if !cfd.PidfdExit.Available() {
		t.Skip("the kernel does not tell a pidfd holder the exit status (PIDFD_INFO_EXIT, Linux 6.15), or " + kernfeat.EnvDisable + " lists pidfd-exit")
	}
}

// wait prints init's exit status and exits with it, from a process that is
// not init's parent, once the container's last process is gone.
func TestWaitExitStatus(t *testing.T) {
	requirePidfdExit(t)
	startPaths(t, func(t *testing.T, env []string) {
		e := newEnv(t, "sh", "-c", "sleep 1.2; exit 5")
		e.runReaped(env, "run", "-d", "-b", e.bundle, e.id)
		start := time.Now()
		r := e.cfd("wait", e.id)
		if r.code != 5 || r.stdout != "exit status 5\n" {
			t.Errorf("wait: %v, want exit 5 and \"exit status 5\"", r)
		}
		if d := time.Since(start); d < 500*time.Millisecond {
			t.Errorf("wait returned after %v, before the container stopped", d)
		}
		if s := e.status(); s != "stopped" {
			t.Errorf("status after wait: %s", s)
		}
		// Loaded after init was reaped: its pidfd cannot be opened, the
		// status is gone.
		if r := e.cfd("wait", e.id); r.code != 0 || r.stdout != "stopped\n" {
			t.Errorf("wait after init was reaped: %v, want exit 0 and \"stopped\"", r)
		}
	})
}

// An init killed by a signal: 128+N, as a shell tells it.
func TestWaitSignalled(t *testing.T) {
	requirePidfdExit(t)
	startPaths(t, func(t *testing.T, env []string) {
		e := newEnv(t, "sleep", "100")
		e.runReaped(env, "run", "-d", "-b", e.bundle, e.id)
		cmd, out, errf := e.startCmd("wait", e.id)
		time.Sleep(200 * time.Millisecond)
		e.ok("kill", e.id, "KILL")
		err := cmd.Wait()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 137 || readBack(t, out) != "signal 9 (SIGKILL)\n" {
			t.Errorf("wait: %v, stdout %q, stderr %q; want exit 137 and \"signal 9 (SIGKILL)\"", err, readBack(t, out), readBack(t, errf))
		}
	})
}

// Without pidfd-exit, wait does what it did before: it prints "stopped"
// and exits 0, whatever init's status.
func TestWaitFallback(t *testing.T) {
	startPaths(t, func(t *testing.T, env []string) {
		e := newEnv(t, "sh", "-c", "sleep 1; exit 5")
		e.runReaped(env, "run", "-d", "-b", e.bundle, e.id)
		start := time.Now()
		r := e.cfdCmd(nil, []string{kernfeat.EnvDisable + "=pidfd-exit"}, nil, "wait", e.id)
		if r.code != 0 || r.stdout != "stopped\n" {
			t.Errorf("wait with pidfd-exit off: %v, want exit 0 and \"stopped\"", r)
		}
		if d := time.Since(start); d < 500*time.Millisecond {
			t.Errorf("wait returned after %v, before the container stopped", d)
		}
	})
}

// waitKilled checks a wait on a container whose init was SIGKILLed: its
// status where the kernel tells it and init's parent reaped it, else
// "stopped".
func waitKilled(t *testing.T, r result) {
	t.Helper()
	if !(r.code == 137 && r.stdout == "signal 9 (SIGKILL)\n") && !(r.code == 0 && r.stdout == "stopped\n") {
		t.Errorf("wait after kill KILL: %v", r)
	}
}
