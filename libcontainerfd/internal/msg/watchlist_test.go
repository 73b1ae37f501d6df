package msg

import (
	"encoding/json"
	"fmt"
	"slices"
	"testing"

	"golang.org/x/sys/unix"
)

// The list read back is always the last one stored, as it grows to many
// entries and shrinks to none, and the memfd stays within a few lists'
// size.
func TestWatchList(t *testing.T) {
	l, err := NewWatchList()
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var paths []json.RawMessage
	check := func() {
		t.Helper()
		got, err := ReadWatchList(l.Fd())
		if err != nil {
			t.Fatal(err)
		}
		if !slices.EqualFunc(got, paths, func(a, b json.RawMessage) bool { return string(a) == string(b) }) {
			t.Fatalf("read %d entries %s, stored %d", len(got), got, len(paths))
		}
		var st unix.Stat_t
		if err := unix.Fstat(l.Fd(), &st); err != nil {
			t.Fatal(err)
		}
		b, _ := json.Marshal(paths)
		if st.Size > 16+3*int64(len(b))+64 {
			t.Fatalf("memfd of %d bytes for a list of %d", st.Size, len(b))
		}
	}
	check()
	step := func() {
		t.Helper()
		if err := l.Store(paths); err != nil {
			t.Fatal(err)
		}
		check()
	}
	for i := 0; i < 50; i++ {
		paths = append(paths, json.RawMessage(fmt.Sprintf(`{"unified":"/sys/fs/cgroup/pod/c%d"}`, i)))
		step()
	}
	for len(paths) > 0 {
		paths = paths[1:]
		step()
	}
}
