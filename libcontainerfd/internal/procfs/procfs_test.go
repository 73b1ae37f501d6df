package procfs

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

func TestWriteFile(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root")
	}
	// A real procfs file: our own oom_score_adj, written back unchanged.
	path := "/proc/" + strconv.Itoa(os.Getpid()) + "/oom_score_adj"
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := WriteFile(path, b); err != nil {
		t.Errorf("procfs file: %v", err)
	}
	// Not procfs, and a symlink to procfs: both refused.
	dir := t.TempDir()
	plain := filepath.Join(dir, "oom_score_adj")
	os.WriteFile(plain, []byte("0"), 0o644)
	if err := WriteFile(plain, []byte("1")); err == nil || !strings.Contains(err.Error(), "not on procfs") {
		t.Errorf("plain file: %v", err)
	}
	link := filepath.Join(dir, "link")
	os.Symlink(path, link)
	if err := WriteFile(link, b); err == nil {
		t.Error("symlink to a procfs file accepted")
	}
}
