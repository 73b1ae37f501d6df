package rootfs

import (
	"slices"
	"testing"

	"github.com/containerfd/containerfd/libcontainerfd/mounttree"
	"golang.org/x/sys/unix"
)

// The fds a plan's opener sends come back at the indexes the plan gives
// them, whichever of its mounts are opened inside or bound from the root;
// masked paths take none.
func TestPlaceByPlan(t *testing.T) {
	p := &Plan{
		Mounts: []Mount{{Mount: mounttree.Mount{Target: "/proc"}, Inside: true}, {Mount: mounttree.Mount{Target: "/dev"}}, {Mount: mounttree.Mount{Target: "/sys"}}, {Mount: mounttree.Mount{Target: "/b"}, InRoot: true}},
		Masked: []string{"/proc/kcore", "/proc/keys"},
	}
	var open []int
	for range 3 {
		fd, err := unix.Open("/dev/null", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		open = append(open, fd)
	}
	sent := &FDs{Root: open[0], Mounts: []int{-1, open[1], open[2], -1}}
	if n := Sent(p); n != 3 || !slices.Equal(sent.List(), open) {
		t.Fatalf("Sent %d, List %v; want 3, %v", n, sent.List(), open)
	}
	got, err := Place(p, sent.List())
	if err != nil {
		t.Fatal(err)
	}
	defer got.Close()
	if got.Root != open[0] || !slices.Equal(got.Mounts, []int{-1, open[1], open[2], -1}) {
		t.Errorf("placed %+v, want %+v", got, sent)
	}
	// A count the plan does not give is refused, and the fds closed.
	fd, _ := unix.Open("/dev/null", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if _, err := Place(p, []int{fd}); err == nil {
		t.Error("Place took 1 fd for a plan of 3")
	}
	if _, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err != unix.EBADF {
		t.Errorf("fd %d left open after a refused Place", fd)
	}
	// Opened inside: nothing travels.
	p.Inside = true
	if n := Sent(p); n != 0 {
		t.Errorf("Sent %d for a plan opened inside", n)
	}
}
