package testutil

import (
	"sync"
	"sync/atomic"
	"testing"

	"golang.org/x/sys/unix"
)

// SwapRace swaps a and b (paths below root) back and forth with
// RENAME_EXCHANGE until the func it returns is called, so that a lookup of
// either may meet the other: the race of the symlink-exchange CVEs.
func SwapRace(t testing.TB, root, a, b string) (stop func()) {
	t.Helper()
	fd, err := unix.Open(root, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	var done atomic.Bool
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for !done.Load() {
			unix.Renameat2(fd, a, fd, b, unix.RENAME_EXCHANGE)
		}
	}()
	return func() {
		done.Store(true)
		wg.Wait()
		unix.Close(fd)
	}
}
