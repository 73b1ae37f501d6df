package cgroups

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// WatchOOM reports each OOM kill in the cgroup, once, and nothing before;
// closing stop ends it.
func TestWatchOOM(t *testing.T) {
	forEachMode(t, func(t *testing.T, mode Mode) {
		c := create(t, testParent(t)+"/oom")
		limit := int64(16 << 20)
		if err := c.Set(&specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: &limit}}); err != nil {
			t.Skipf("no memory limit here in %v mode: %v", mode, err)
		}
		stop := make(chan struct{})
		defer close(stop)
		kills := make(chan struct{}, 8)
		err := c.WatchOOM(stop, func() { kills <- struct{}{} })
		if errors.Is(err, errors.ErrUnsupported) {
			t.Skipf("no memory controller in %v mode: %v", mode, err)
		}
		if err != nil {
			t.Fatal(err)
		}
		select {
		case <-kills:
			t.Fatal("an OOM kill reported before any")
		case <-time.After(100 * time.Millisecond):
		}
		// A shell that reads 64 MiB into a variable, over the 16 MiB limit.
		cmd := start(t, c, "sh", "-c", `a=$(head -c 67108864 /dev/zero | tr '\0' x)`)
		cmd.Wait()
		// What the killed shell left (its pipeline) goes too.
		defer func() {
			c.Kill()
			waitEmpty(t, c, time.Now())
		}()
		select {
		case <-kills:
		case <-time.After(5 * time.Second):
			t.Fatalf("no OOM kill reported; the process ended %v", cmd.ProcessState)
		}
	})
}

// WatchOOM holds no thread per watch (a shim watches every container it
// holds), and closing stop ends each watch, its fd closed.
func TestWatchOOMThreads(t *testing.T) {
	forEachMode(t, func(t *testing.T, mode Mode) {
		c := create(t, testParent(t)+"/oom")
		stop := make(chan struct{})
		before, fds := threads(t), openFds(t)
		// More watches than threads: with a thread each, there would
		// be more threads than watches, whatever idle ones the runtime
		// kept from before.
		n := before + 16
		for i := 0; i < n; i++ {
			err := c.WatchOOM(stop, func() {})
			if errors.Is(err, errors.ErrUnsupported) {
				close(stop)
				t.Skipf("no memory controller in %v mode: %v", mode, err)
			}
			if err != nil {
				close(stop)
				t.Fatal(err)
			}
		}
		time.Sleep(300 * time.Millisecond) // each watch waits by now
		if got := threads(t); got >= n {
			t.Errorf("%d watches: %d threads, %d before: a thread per watch", n, got, before)
		}
		close(stop)
		if !waitUntil(2*time.Second, func() bool { return openFds(t) <= fds }) {
			t.Errorf("after stop: %d fds open, %d before the watches", openFds(t), fds)
		}
	})
}

// watchFile sees each change of a cgroup2 file the kernel notifies, through
// Go's poller: cgroup.events, whose populated changes on a host with any
// cgroup2 hierarchy (memory.events needs the memory controller there).
func TestWatchFile(t *testing.T) {
	forEachMode(t, func(t *testing.T, mode Mode) {
		c := create(t, testParent(t)+"/watch")
		if c.v2 == "" {
			t.Skipf("no cgroup2 hierarchy in %v mode", mode)
		}
		populated := func(b []byte, err error) string {
			if err != nil {
				return err.Error()
			}
			ev, err := parseKeyed("cgroup.events", string(b))
			if err != nil {
				return err.Error()
			}
			return strconv.FormatUint(ev["populated"], 10)
		}
		stop := make(chan struct{})
		defer close(stop)
		var initial string
		seen := make(chan string, 16)
		before := threads(t)
		err := watchFile(filepath.Join(c.v2, "cgroup.events"), stop, func(b []byte, err error) { initial = populated(b, err) },
			func(b []byte, err error) bool {
				seen <- populated(b, err)
				return true
			})
		if err != nil {
			t.Fatal(err)
		}
		if initial != "0" {
			t.Errorf("cgroup.events populated %q at first, want 0", initial)
		}
		// The first wake-up may come for nothing.
		next := func(want string) {
			t.Helper()
			deadline := time.After(5 * time.Second)
			for {
				select {
				case got := <-seen:
					if got == want {
						return
					}
				case <-deadline:
					t.Fatalf("no change to populated %s seen", want)
				}
			}
		}
		cmd := startSleep(t, c)
		next("1")
		cmd.Process.Kill()
		next("0")
		if got := threads(t); got > before+2 {
			t.Errorf("watching: %d threads, %d before", got, before)
		}
	})
}

// threads is how many threads the test process has.
func threads(t *testing.T) int {
	t.Helper()
	return procStatus(t, "self", "Threads")
}

func openFds(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

func waitUntil(d time.Duration, ok func() bool) bool {
	for deadline := time.Now().Add(d); !ok(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			return false
		}
	}
	return true
}
