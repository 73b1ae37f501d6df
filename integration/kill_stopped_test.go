package integration

import (
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Once init has exited, a container without a pid namespace of its own (or
// in a pod's) can still have processes in its cgroup. containerd's shim
// then runs `kill --all ID 9` to kill them, and CRI's container exit runs
// it again; runc signals what is left and succeeds. runc 1.2+ does the same
// for a plain `kill ID 9` (SIGKILL without a pid namespace of its own goes
// to the whole cgroup). Any other signal to the stopped init says
// "container not running", which the shim maps to "process already
// finished" (any other text fails CRI's StopContainer).
func TestKillStoppedWithOrphans(t *testing.T) {
	for _, all := range []bool{true, false} {
		t.Run(map[bool]string{true: "all", false: "init"}[all], func(t *testing.T) {
			killStoppedWithOrphans(t, all)
		})
	}
}

func killStoppedWithOrphans(t *testing.T, all bool) {
	e := newEnv(t, "sh", "-c", "sleep 100 & echo $! > /tmp/orphan; exit 0")
	s := e.spec()
	withoutNamespace(s, "pid")
	e.writeSpec(s)
	e.ok("run", "-d", "-b", e.bundle, e.id)
	waitStatus(t, e, "stopped")
	var orphan int
	for i := 0; i < 200 && orphan == 0; i++ {
		b, _ := os.ReadFile(s.Root.Path + "/tmp/orphan")
		orphan, _ = strconv.Atoi(strings.TrimSpace(string(b)))
		time.Sleep(10 * time.Millisecond)
	}
	if orphan == 0 || unix.Kill(orphan, 0) != nil {
		t.Fatalf("the orphaned sleep (pid %d) is not running", orphan)
	}

	if r := e.cfd("kill", e.id, "TERM"); r.code == 0 || !strings.Contains(r.stderr, "container not running") {
		t.Errorf("kill TERM of a stopped init: %v; want an error saying \"container not running\"", r)
	}
	kill := []string{"kill", e.id, "9"}
	if all {
		kill = []string{"kill", "--all", e.id, "9"}
	}
	if r := e.cfd(kill...); r.code != 0 {
		t.Errorf("%s of a stopped container with processes left: %v", strings.Join(kill, " "), r)
	}
	gone := false
	for i := 0; i < 500 && !gone; i++ {
		st, err := os.ReadFile("/proc/" + strconv.Itoa(orphan) + "/stat")
		gone = err != nil || strings.Contains(string(st), ") Z")
		time.Sleep(10 * time.Millisecond)
	}
	if !gone {
		t.Errorf("pid %d survived %s", orphan, strings.Join(kill, " "))
	}
	// Nothing left: it still succeeds, as with runc.
	if r := e.cfd(kill...); r.code != 0 {
		t.Errorf("%s of a stopped, empty container: %v", strings.Join(kill, " "), r)
	}
	e.ok("delete", e.id)
}
