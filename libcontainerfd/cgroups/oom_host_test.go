package cgroups

import (
	"errors"
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
