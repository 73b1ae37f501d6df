package integration

import (
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The runtime killed (SIGKILL) at each step of create, start, exec and
// delete: afterwards state tells the truth and delete --force removes
// every trace (newEnv's checks: no process, mount, cgroup, key or state
// left).
func TestKilledAtEachStep(t *testing.T) {
	create := func(e *env) []string { return []string{"create", "--bundle", e.bundle, e.id} }
	cases := []struct {
		step   string
		before func(e *env)
		cmd    func(e *env) []string
		status string // what state says afterwards ("" = does not exist)
	}{
		{"create:state-saved", nil, create, "creating"},
		{"create:cgroup", nil, create, "creating"},
		{"forkinit:spawned", nil, create, "creating"},
		{"forkinit:created", nil, create, "creating"},
		{"start:started", func(e *env) { e.ok(create(e)...) }, func(e *env) []string { return []string{"start", e.id} }, "running"},
		{"exec:spawned", func(e *env) { e.ok("run", "-d", "-b", e.bundle, e.id) },
			func(e *env) []string { return []string{"exec", e.id, "true"} }, "running"},
		{"delete:killed", func(e *env) { e.ok("run", "-d", "-b", e.bundle, e.id) },
			func(e *env) []string { return []string{"delete", "--force", e.id} }, "stopped"},
		{"delete:cgroup-removed", func(e *env) { e.ok("run", "-d", "-b", e.bundle, e.id) },
			func(e *env) []string { return []string{"delete", "--force", e.id} }, "stopped"},
	}
	for _, c := range cases {
		t.Run(c.step, func(t *testing.T) {
			e := newEnv(t, "sleep", "100")
			if c.before != nil {
				c.before(e)
			}
			e.killedAt(c.step, c.cmd(e)...)
			r := e.cfd("state", e.id)
			switch {
			case c.status == "" && (r.code == 0 || !strings.Contains(r.stderr, "does not exist")):
				t.Errorf("state after a kill at %s: %v, want does not exist", c.step, r)
			case c.status != "" && (r.code != 0 || !strings.Contains(r.stdout, `"status": "`+c.status+`"`)):
				t.Errorf("state after a kill at %s: %v, want %s", c.step, r, c.status)
			}
			e.ok("delete", "--force", e.id)
			if r := e.cfd("state", e.id); r.code == 0 {
				t.Errorf("state after delete --force: %v", r)
			}
		})
	}
}

// killedAt runs containerfd args, stopping it at step, and SIGKILLs it there.
func (e *env) killedAt(step string, args ...string) {
	e.t.Helper()
	cmd := exec.Command(binary, append([]string{"--root", e.root}, args...)...)
	cmd.Env = append(os.Environ(), "CONTAINERFD_TEST_STOP_AT="+step)
	errf := e.tempFile()
	cmd.Stdout, cmd.Stderr = e.tempFile(), errf
	if err := cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	for i := 0; ; i++ {
		if strings.Contains(readBack(e.t, errf), "stopped at "+step) {
			break
		}
		if i == 1000 {
			cmd.Process.Kill()
			cmd.Wait()
			e.t.Fatalf("containerfd %s never reached %s: %s", strings.Join(args, " "), step, readBack(e.t, errf))
		}
		time.Sleep(10 * time.Millisecond)
	}
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
}

// Concurrent commands on one id are serialized: of two creates exactly one
// wins; start and delete --force racing leave a consistent end.
func TestConcurrentCommands(t *testing.T) {
	e := newEnv(t, "sleep", "100")
	var wg sync.WaitGroup
	results := make([]result, 4)
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = e.cfd("create", "--bundle", e.bundle, e.id)
		}()
	}
	wg.Wait()
	won := 0
	for _, r := range results {
		if r.code == 0 {
			won++
		} else if !strings.Contains(r.stderr, "already exists") {
			t.Errorf("a losing create: %v", r)
		}
	}
	if won != 1 {
		t.Fatalf("%d of %d concurrent creates won", won, len(results))
	}
	wg.Add(2)
	var start, del result
	go func() { defer wg.Done(); start = e.cfd("start", e.id) }()
	go func() { defer wg.Done(); del = e.cfd("delete", "--force", e.id) }()
	wg.Wait()
	if del.code != 0 {
		t.Errorf("delete --force racing start: %v (start: %v)", del, start)
	}
	if r := e.cfd("state", e.id); r.code == 0 {
		t.Errorf("state after delete --force: %v", r)
	}
}
