package netlink

import (
	"net/netip"
	"os"
	"runtime"
	"slices"
	"testing"

	"golang.org/x/sys/unix"
)

// inNewNetns runs fn on a thread of its own in a new network namespace;
// the thread exits after.
func inNewNetns(t *testing.T, fn func()) {
	if os.Getuid() != 0 {
		t.Skip("needs root for a network namespace")
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		runtime.LockOSThread() // never unlocked: the thread leaves with the namespace
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			t.Errorf("unshare: %v", err)
			return
		}
		fn()
	}()
	<-done
}

func TestLoopback(t *testing.T) {
	inNewNetns(t, func() {
		c, err := Open()
		if err != nil {
			t.Error(err)
			return
		}
		defer c.Close()
		lo, err := c.LinkIndex("lo")
		if err != nil || lo != 1 {
			t.Errorf("LinkIndex(lo) = %d, %v; want 1", lo, err)
		}
		if _, err := c.LinkIndex("cfdnone0"); err != unix.ENODEV {
			t.Errorf("LinkIndex of a missing link: %v, want ENODEV", err)
		}
		if !c.HasLink(lo) || c.HasLink(4242) {
			t.Errorf("HasLink: lo %v, 4242 %v", c.HasLink(lo), c.HasLink(4242))
		}
		if err := c.SetUp(lo); err != nil {
			t.Errorf("SetUp(lo): %v", err)
		}
		a := netip.MustParsePrefix("10.250.9.1/24")
		if err := c.AddAddr(lo, a); err != nil {
			t.Errorf("AddAddr: %v", err)
		}
		if err := c.AddAddr(lo, a); err != unix.EEXIST {
			t.Errorf("AddAddr again: %v, want EEXIST", err)
		}
		b := netip.MustParsePrefix("fd00:cfd::1/64")
		if err := c.AddAddr(lo, b); err != nil {
			t.Errorf("AddAddr v6: %v", err)
		}
		addrs, err := PermanentAddrs()
		if err != nil {
			t.Error(err)
		}
		// 127.0.0.1 and ::1 are of host scope: not listed.
		if got := addrs[lo]; !slices.Contains(got, a) || !slices.Contains(got, b) || len(got) != 2 {
			t.Errorf("PermanentAddrs()[lo] = %v, want %v and %v", got, a, b)
		}
	})
}
