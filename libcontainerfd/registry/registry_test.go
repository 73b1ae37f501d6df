package registry

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestWriteReadRemove: an entry is found by its root and id, and removed
// only by the container it belongs to.
func TestWriteReadRemove(t *testing.T) {
	dir := t.TempDir()
	created := time.Now().UTC()
	e := &Entry{ID: "a", Root: "/r", Dir: "/r/a", Owner: os.Geteuid(), Created: created}
	if err := Write(dir, e); err != nil {
		t.Fatal(err)
	}
	if e.Path != filepath.Join(dir, Name("/r", "a")) || Name("/r", "a") == Name("/r/a", "") {
		t.Fatalf("entry at %s", e.Path)
	}
	got, err := Read(e.Path)
	if err != nil || got.ID != "a" || !got.Created.Equal(created) {
		t.Fatalf("Read: %+v, %v", got, err)
	}
	if err := Remove(e.Path, created.Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(e.Path); err != nil {
		t.Errorf("another container's Remove removed the entry: %v", err)
	}
	if err := Remove(e.Path, created); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(e.Path); !os.IsNotExist(err) {
		t.Errorf("entry still there after Remove: %v", err)
	}
	if left, _ := os.ReadDir(dir); len(left) != 0 {
		t.Errorf("left in the registry: %v", left)
	}
}

// TestReadDirOwner: a user's registry lists only the files that user owns,
// as that user's whatever they say.
func TestReadDirOwner(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to chown")
	}
	dir := t.TempDir()
	const uid = 54321
	mine := &Entry{ID: "mine", Root: "/r", Owner: uid}
	lies := &Entry{ID: "lies", Root: "/r", Owner: 0}     // the user's file, naming root
	roots := &Entry{ID: "roots", Root: "/r", Owner: uid} // root's file in the user's dir
	for _, e := range []*Entry{mine, lies, roots} {
		if err := Write(dir, e); err != nil {
			t.Fatal(err)
		}
	}
	for _, e := range []*Entry{mine, lies} {
		if err := os.Chown(e.Path, uid, uid); err != nil {
			t.Fatal(err)
		}
	}
	es, err := readDir(dir, uid)
	if err != nil {
		t.Fatal(err)
	}
	if len(es) != 2 || es[0].Owner != uid || es[1].Owner != uid || es[0].ID == "roots" || es[1].ID == "roots" {
		t.Errorf("readDir of the user's registry: %+v, want the user's two files, both the user's", es)
	}
}
