package integration

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestLoad runs many containers at once (created, started, exec'd into,
// deleted, with bounded parallelism) and many run cycles one after another,
// then checks that nothing is left (newEnv's leak checks). make test runs
// a small load; make test-load (CFD_LOAD=full) runs 200 containers and 1000
// cycles.
func TestLoad(t *testing.T) {
	containers, cycles, parallel := 16, 20, 4
	if os.Getenv("CFD_LOAD") == "full" {
		containers, cycles, parallel = 200, 1000, 8
	}
	e := newEnv(t, "sleep", "1000")
	base := e.spec()
	bundle := func(i int) string {
		dir := filepath.Join(e.bundle, "c"+strconv.Itoa(i))
		os.Mkdir(dir, 0o755)
		s := *base
		linux := *s.Linux
		linux.CgroupsPath = e.cgroup + "-" + strconv.Itoa(i)
		s.Linux = &linux
		(&env{t: t, bundle: dir}).writeSpec(&s)
		return dir
	}
	var failed atomic.Int32
	fail := func(format string, args ...any) {
		failed.Add(1)
		t.Errorf(format, args...)
	}

	start := time.Now()
	var wg sync.WaitGroup
	sem := make(chan struct{}, parallel)
	for i := 0; i < containers; i++ {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			id := fmt.Sprintf("%s-%d", e.id, i)
			b := bundle(i)
			for _, args := range [][]string{
				{"create", "--bundle", b, id}, {"start", id}, {"exec", id, "true"}, {"delete", "--force", id},
			} {
				if r := e.cfd(args...); r.code != 0 {
					fail("container %d: %v: %v", i, args, r)
					e.cfd("delete", "--force", id)
					return
				}
			}
		}()
	}
	wg.Wait()
	concurrent := time.Since(start)

	start = time.Now()
	base.Process.Args = []string{"true"}
	(&env{t: t, bundle: e.bundle}).writeSpec(base)
	for i := 0; i < cycles && failed.Load() == 0; i++ {
		if r := e.cfd("run", "--bundle", e.bundle, e.id); r.code != 0 {
			fail("run cycle %d: %v", i, r)
		}
	}
	t.Logf("%d containers (create, start, exec, delete; %d at a time) in %v; %d run cycles in %v (%v each); %d failures",
		containers, parallel, concurrent.Round(time.Millisecond), cycles, time.Since(start).Round(time.Millisecond),
		(time.Since(start) / time.Duration(cycles)).Round(time.Microsecond), failed.Load())
}
