package integration

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/containerfd/containerfd/internal/testutil"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// criuReason is features' word on CRIU: "" where it works, else why not.
func criuReason(t *testing.T, e *env) string {
	t.Helper()
	var f struct {
		Annotations map[string]string `json:"annotations"`
	}
	if err := json.Unmarshal([]byte(e.ok("features")), &f); err != nil {
		t.Fatal(err)
	}
	if f.Annotations["io.github.containerfd.checkpoint.enabled"] == "true" {
		return ""
	}
	return f.Annotations["io.github.containerfd.criu"]
}

// counterEnv is a container that counts, ten times a second, into /out/count,
// a bind of a host directory (an external mount to CRIU); its stdio is its
// own /dev/null, which CRIU restores as it was. Each count is written beside
// and renamed over the last, so a dump never leaves the file empty.
func counterEnv(t *testing.T) (*env, string) {
	e := newEnv(t, "sh", "-c", "exec </dev/null >/dev/null 2>&1; i=0; while :; do i=$((i+1)); echo $i > /out/count.new; mv /out/count.new /out/count; sleep 0.1; done")
	return e, withOut(e)
}

// withOut binds a new host directory at /out in e's config and returns it.
func withOut(e *env) string {
	out := e.t.TempDir()
	s := e.spec()
	s.Mounts = append(s.Mounts, specs.Mount{Destination: "/out", Type: "bind", Source: out, Options: []string{"rbind", "rw"}})
	e.writeSpec(s)
	return out
}

// count reads the counter, 0 before its first write.
func count(t *testing.T, out string) int {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(out, "count"))
	if os.IsNotExist(err) {
		return 0
	}
	if err != nil {
		t.Fatal(err)
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatalf("the counter in %s: %v", out, err)
	}
	return n
}

// waitCount waits until the counter is past n and returns it.
func waitCount(t *testing.T, out string, n int) int {
	t.Helper()
	for i := 0; i < 1000; i++ {
		if c := count(t, out); c > n {
			return c
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("the counter in %s never went past %d", out, n)
	return 0
}

// A checkpointed container is gone; restored, its counter goes on from
// where it was, in a container with the same id that runs and takes exec.
func TestCheckpointRestore(t *testing.T) {
	testutil.RequireCRIU(t)
	e, out := counterEnv(t)
	images, work := filepath.Join(t.TempDir(), "images"), t.TempDir()
	e.ok("run", "-d", "--bundle", e.bundle, e.id)
	waitCount(t, out, 3)

	e.ok("checkpoint", "--image-path", images, "--work-path", work, e.id)
	if r := e.cfd("state", e.id); r.code == 0 {
		t.Fatalf("container still there after checkpoint: %v", r)
	}
	at := count(t, out)
	time.Sleep(300 * time.Millisecond)
	if c := count(t, out); c != at {
		t.Fatalf("the counter went on after checkpoint: %d, then %d", at, c)
	}

	e.ok("restore", "-d", "--image-path", images, "--work-path", work, "--bundle", e.bundle, e.id)
	if _, err := os.Stat(filepath.Join(work, "restore.log")); err != nil {
		t.Errorf("no restore.log in the work path: %v", err)
	}
	if s := e.status(); s != "running" {
		t.Fatalf("status after restore = %s", s)
	}
	if next := waitCount(t, out, at); next > at+10 {
		t.Errorf("after restore the counter went from %d to %d: not where it was", at, next)
	}
	if got := strings.TrimSpace(e.ok("exec", e.id, "cat", "/out/count")); got == "" {
		t.Error("exec in the restored container read no count")
	}
	e.ok("kill", e.id, "KILL")
	waitStatus(t, e, "stopped")
	e.ok("delete", e.id)
}

// --leave-running keeps the container; its images restore under another id,
// with /out bound from that container's own bundle: two counters go on.
func TestCheckpointLeaveRunning(t *testing.T) {
	testutil.RequireCRIU(t)
	e, out := counterEnv(t)
	e.ok("run", "-d", "--bundle", e.bundle, e.id)
	waitCount(t, out, 3)
	e2 := newEnv(t, e.spec().Process.Args...)
	out2 := withOut(e2)
	var from, at int
	for try := 1; ; try++ {
		// The original keeps counting: the dump was taken somewhere
		// between the counts read before and after the checkpoint.
		images := filepath.Join(t.TempDir(), "images")
		from = count(t, out)
		e.ok("checkpoint", "--leave-running", "--image-path", images, e.id)
		if s := e.status(); s != "running" {
			t.Fatalf("status after checkpoint --leave-running = %s", s)
		}
		at = count(t, out)
		waitCount(t, out, at)
		r := e2.cfd("restore", "-d", "--image-path", images, "--bundle", e2.bundle, e2.id)
		if r.code == 0 {
			break
		}
		// CRIU 3.17 once (in about six VM runs) failed to restore the
		// copy with "Can't open file out/count on restore": the shell's
		// file under /out, which the copy binds from its own bundle where
		// no such file is yet. Holding the file open through most of the
		// loop did not reproduce it, so the cause is a timing of the dump
		// not understood yet (docs/checkpoint.md, limits). Only that
		// failure is retried, with a new checkpoint; a failed restore
		// leaves nothing (TestRestoreFailsClean).
		if !strings.Contains(r.stderr, "Can't open file out/count") || try == 5 {
			t.Fatalf("restore of the copy: %v", r)
		}
		t.Logf("try %d: the dump caught /out/count open; again", try)
	}
	if s := e2.status(); s != "running" {
		t.Fatalf("status of the copy = %s", s)
	}
	if c2 := waitCount(t, out2, 0); c2 < from || c2 > at+10 {
		t.Errorf("the copy counts from %d, the original was at %d to %d while dumped", c2, from, at)
	}
	waitCount(t, out, count(t, out))
	for _, x := range []*env{e, e2} {
		x.ok("delete", "--force", x.id)
	}
}

// A pre-dump leaves the container running; the dump after it, on the
// pre-dump's images, restores as a whole one does.
func TestCheckpointPreDump(t *testing.T) {
	testutil.RequireCRIU(t, "mem_dirty_track")
	e, out := counterEnv(t)
	dir := t.TempDir()
	pre, final := filepath.Join(dir, "pre"), filepath.Join(dir, "final")
	e.ok("run", "-d", "--bundle", e.bundle, e.id)
	waitCount(t, out, 3)
	e.ok("checkpoint", "--pre-dump", "--image-path", pre, e.id)
	if s := e.status(); s != "running" {
		t.Fatalf("status after a pre-dump = %s", s)
	}
	waitCount(t, out, count(t, out))
	e.ok("checkpoint", "--parent-path", "../pre", "--image-path", final, e.id)
	at := count(t, out)
	e.ok("restore", "-d", "--image-path", final, "--bundle", e.bundle, e.id)
	if next := waitCount(t, out, at); next > at+10 {
		t.Errorf("after restore the counter went from %d to %d", at, next)
	}
	e.ok("delete", "--force", e.id)
}

// fakeCRIU puts a criu first in PATH that dies of SIGKILL as soon as it
// runs: a CRIU killed under the runtime.
func fakeCRIU(t *testing.T) []string {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "criu"), []byte("#!/bin/sh\nkill -KILL $$\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return []string{"PATH=" + dir + ":" + os.Getenv("PATH")}
}

// A restore that fails leaves nothing: no state, cgroup, process, mount or
// keyring (NoLeaks), and says which step failed and why.
func TestRestoreFailsClean(t *testing.T) {
	e, _ := counterEnv(t)
	dir := t.TempDir()
	for _, c := range []struct {
		name   string
		env    []string
		images string
		want   string
	}{
		{"no image path", nil, filepath.Join(dir, "none"), "restore: image path: open " + filepath.Join(dir, "none")},
		{"CRIU killed", fakeCRIU(t), dir, "criu exited without an answer"},
		// CRIU's own reason, from its log: no images there, or (where
		// CRIU does not work) why not.
		{"no images", nil, dir, "restore: criu restore failed: Error ("},
	} {
		r := e.cfdCmd(nil, c.env, nil, "restore", "-d", "--image-path", c.images, "--bundle", e.bundle, e.id)
		if r.code == 0 || !strings.Contains(r.stderr, c.want) || !strings.Contains(r.stderr, "container "+e.id) {
			t.Errorf("%s: restore: %v, want an error with %q", c.name, r, c.want)
		}
		if r := e.cfd("state", e.id); r.code == 0 {
			t.Errorf("%s: container left after a failed restore: %v", c.name, r)
		}
		if _, err := os.Stat(filepath.Join(e.root, e.id)); !os.IsNotExist(err) {
			t.Errorf("%s: state directory left: %v", c.name, err)
		}
	}
}

// A checkpoint that fails leaves the container running, and says why: a
// killed CRIU, or (on a host where it does not work) CRIU's own reason.
func TestCheckpointFailsClean(t *testing.T) {
	e, out := counterEnv(t)
	e.ok("run", "-d", "--bundle", e.bundle, e.id)
	waitCount(t, out, 1)
	images := filepath.Join(t.TempDir(), "images")
	r := e.cfdCmd(nil, fakeCRIU(t), nil, "checkpoint", "--image-path", images, e.id)
	if r.code == 0 || !strings.Contains(r.stderr, "container "+e.id+": checkpoint: criu exited without an answer") {
		t.Errorf("checkpoint with a killed CRIU: %v", r)
	}
	if s := e.status(); s != "running" {
		t.Errorf("status after a failed checkpoint = %s", s)
	}
	if why := criuReason(t, e); why != "" {
		// "unusable: criu check: Error (criu/vdso.c:381): vdso: …"
		_, reason, _ := strings.Cut(why, "): ")
		r := e.cfd("checkpoint", "--image-path", images, e.id)
		if r.code == 0 || reason == "" || !strings.Contains(r.stderr, reason) {
			t.Errorf("checkpoint where CRIU is %s: %v, want CRIU's reason %q", why, r, reason)
		}
		if s := e.status(); s != "running" {
			t.Errorf("status after a failed checkpoint = %s", s)
		}
	}
	waitCount(t, out, count(t, out))
	e.ok("delete", "--force", e.id)
}

// restore without --detach waits for the restored process as run does: its
// status is restore's, and the container is deleted after; --pid-file names
// the restored init. A restore killed meanwhile leaves it running.
func TestRestoreForeground(t *testing.T) {
	testutil.RequireCRIU(t)
	e, out := counterEnv(t)
	images := filepath.Join(t.TempDir(), "images")
	e.ok("run", "-d", "--bundle", e.bundle, e.id)
	waitCount(t, out, 3)
	e.ok("checkpoint", "--image-path", images, e.id)
	at := count(t, out)

	pidFile := filepath.Join(t.TempDir(), "pid")
	errf := e.tempFile()
	restore := exec.Command(binary, "--root", e.root, "restore", "--image-path", images, "--bundle", e.bundle, "--pid-file", pidFile, e.id)
	restore.Stderr = errf
	if err := restore.Start(); err != nil {
		t.Fatal(err)
	}
	waitCount(t, out, at)
	st := e.state()
	if b, err := os.ReadFile(pidFile); err != nil || string(b) != strconv.Itoa(int(st["pid"].(float64))) {
		t.Errorf("pid file %q (%v), state pid %v", b, err, st["pid"])
	}
	restore.Process.Signal(unix.SIGKILL)
	restore.Wait()
	if s := e.status(); s != "running" {
		t.Errorf("status after restore was killed = %s", s)
	}
	e.ok("kill", e.id, "KILL")
	waitStatus(t, e, "stopped")
	e.ok("delete", e.id)

	// Once more, the container ending by itself: restore exits with its status.
	e.ok("run", "-d", "--bundle", e.bundle, e.id)
	waitCount(t, out, count(t, out))
	e.ok("checkpoint", "--image-path", images, e.id)
	restore = exec.Command(binary, "--root", e.root, "restore", "--image-path", images, "--bundle", e.bundle, e.id)
	restore.Stderr = errf
	if err := restore.Start(); err != nil {
		t.Fatal(err)
	}
	waitCount(t, out, count(t, out))
	for i := 0; i < 500 && e.cfd("state", e.id).code != 0; i++ {
		time.Sleep(10 * time.Millisecond)
	}
	e.ok("kill", e.id, "KILL")
	err := restore.Wait()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 137 {
		t.Errorf("restore of a process killed by SIGKILL: %v (stderr %q)", err, readBack(t, errf))
	}
	if r := e.cfd("state", e.id); r.code == 0 {
		t.Errorf("container still there after restore returned: %v", r)
	}
}
