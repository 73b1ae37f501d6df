package integration

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// freezerFiles returns the files that say a container's cgroup cg is
// frozen, each with its frozen and thawed values: the v1 freezer's
// freezer.state where a v1 freezer hierarchy is mounted (what tools on a
// hybrid host read, and what runc writes there), and cgroup.freeze of the
// cgroup2 directory where there is one.
func freezerFiles(t *testing.T, cg string) map[string][2]string {
	t.Helper()
	files := map[string][2]string{}
	if d := "/sys/fs/cgroup/freezer"; isCgroupFS(d, unix.CGROUP_SUPER_MAGIC) {
		files[filepath.Join(d, cg, "freezer.state")] = [2]string{"FROZEN", "THAWED"}
	}
	for _, root := range []string{"/sys/fs/cgroup", "/sys/fs/cgroup/unified"} {
		if isCgroupFS(root, unix.CGROUP2_SUPER_MAGIC) {
			files[filepath.Join(root, cg, "cgroup.freeze")] = [2]string{"1", "0"}
		}
	}
	return files
}

// TestPauseFreezesEveryFreezer: pause freezes the container in every
// freezer the host has: on a hybrid host the v1 freezer too, whose
// freezer.state tools there read (runc freezes through it); resume thaws
// them all; and a paused container still dies by kill KILL and delete
// --force (a task the v1 freezer holds dies only once thawed).
func TestPauseFreezesEveryFreezer(t *testing.T) {
	for _, end := range []string{"kill", "delete"} {
		t.Run(end, func(t *testing.T) {
			e := newEnv(t, "sleep", "100")
			e.ok("run", "-d", "-b", e.bundle, e.id)
			e.ok("exec", "-d", e.id, "sleep", "100")
			files := freezerFiles(t, e.cgroup)
			check := func(when string, i int) {
				t.Helper()
				for f, v := range files {
					b, err := os.ReadFile(f)
					if err != nil || strings.TrimSpace(string(b)) != v[i] {
						t.Errorf("%s: %s = %q, %v; want %s", when, f, b, err, v[i])
					}
				}
			}
			e.ok("pause", e.id)
			check("after pause", 0)
			if st := e.status(); st != "paused" {
				t.Errorf("status after pause: %s", st)
			}
			e.ok("resume", e.id)
			check("after resume", 1)
			if st := e.status(); st != "running" {
				t.Errorf("status after resume: %s", st)
			}
			e.ok("pause", e.id)
			fds := containerPidfds(t, e, 2)
			if end == "kill" {
				e.ok("kill", e.id, "KILL")
				waitStatus(t, e, "stopped")
			}
			e.ok("delete", "--force", e.id)
			for i, fd := range fds {
				if !exited(fd) {
					t.Errorf("process %d of 2 of the paused container survived %s", i+1, end)
				}
			}
		})
	}
}
