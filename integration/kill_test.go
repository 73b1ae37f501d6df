package integration

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// containerPidfds returns pidfds of the container's processes once there
// are want of them (pidfds, not pids: another test's process may reuse a
// pid at once).
func containerPidfds(t *testing.T, e *env, want int) []int {
	t.Helper()
	var pids []int
	for i := 0; i < 300 && len(pids) != want; i++ {
		json.Unmarshal([]byte(e.ok("ps", "--format", "json", e.id)), &pids)
		time.Sleep(10 * time.Millisecond)
	}
	if len(pids) != want {
		t.Fatalf("ps --format json: %v, want %d processes", pids, want)
	}
	var fds []int
	for _, p := range pids {
		fd, err := unix.PidfdOpen(p, 0)
		if err != nil {
			t.Fatalf("pidfd_open %d: %v", p, err)
		}
		t.Cleanup(func() { unix.Close(fd) })
		fds = append(fds, fd)
	}
	return fds
}

// exited reports whether the process of pidfd has exited within 5 s.
func exited(fd int) bool {
	fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
	n, err := unix.Poll(fds, 5000)
	for err == unix.EINTR {
		n, err = unix.Poll(fds, 5000)
	}
	return n == 1 && err == nil
}

// TestKillSharedPidNS: `kill ID KILL` of a container without a pid
// namespace of its own kills every process of its cgroup, the exec'd ones
// too, as runc does (killing its init would take nothing with it); and it
// does so when init is already gone, where runc succeeds too.
func TestKillSharedPidNS(t *testing.T) {
	for _, initGone := range []bool{false, true} {
		t.Run(map[bool]string{false: "running", true: "init-gone"}[initGone], func(t *testing.T) {
			e := newEnv(t, "sleep", "100")
			s := e.spec()
			withoutNamespace(s, "pid")
			e.writeSpec(s)
			e.ok("run", "-d", "-b", e.bundle, e.id)
			for range 3 {
				e.ok("exec", "-d", e.id, "sleep", "100")
			}
			fds := containerPidfds(t, e, 4)
			if initGone {
				if err := unix.Kill(int(e.state()["pid"].(float64)), unix.SIGKILL); err != nil {
					t.Fatal(err)
				}
				waitStatus(t, e, "stopped")
			}
			e.ok("kill", e.id, "KILL")
			for i, fd := range fds {
				if !exited(fd) {
					t.Errorf("process %d of 4 survived kill KILL", i+1)
				}
			}
			waitStatus(t, e, "stopped")
			e.ok("delete", e.id)
		})
	}
}

// TestKillSignalZero: signal 0 checks that init is there, as runc takes
// it: success while it runs, "container not running" once it is gone, and
// success with --all.
func TestKillSignalZero(t *testing.T) {
	e := newEnv(t, "sleep", "100")
	e.ok("run", "-d", "-b", e.bundle, e.id)
	e.ok("kill", e.id, "0")
	if st := e.status(); st != "running" {
		t.Fatalf("after kill 0: %s", st)
	}
	e.ok("kill", e.id, "KILL")
	waitStatus(t, e, "stopped")
	if r := e.cfd("kill", e.id, "0"); r.code == 0 || !strings.Contains(r.stderr, "container not running") {
		t.Errorf("kill 0 of a stopped container: %v", r)
	}
	e.ok("kill", "-a", e.id, "0")
	e.ok("delete", e.id)
}

// TestKillCreated: a signal that ends runc's waiting init (a Go program:
// SIGTERM, SIGHUP, SIGINT…) stops a created container, as it does with
// runc; one that a Go program ignores (SIGUSR1) leaves it created.
func TestKillCreated(t *testing.T) {
	for _, tc := range []struct{ sig, want string }{{"", "stopped"}, {"HUP", "stopped"}, {"USR1", "created"}} {
		t.Run("sig"+tc.sig, func(t *testing.T) {
			e := newEnv(t, "sleep", "100")
			e.ok("create", "-b", e.bundle, e.id)
			args := []string{"kill", e.id}
			if tc.sig != "" {
				args = append(args, tc.sig)
			}
			e.ok(args...)
			if tc.want == "stopped" {
				waitStatus(t, e, "stopped")
			} else {
				time.Sleep(200 * time.Millisecond)
				if st := e.status(); st != tc.want {
					t.Errorf("after kill %s: %s, want %s", tc.sig, st, tc.want)
				}
			}
			e.ok("delete", "--force", e.id)
		})
	}
}
