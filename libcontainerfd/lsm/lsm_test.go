package lsm

import (
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// A file mounted over the thread's own /proc entry does not take the
// write: the attr file is reached through a clone of the procfs mount,
// without crossing a mount (the CVE-2019-16884 and CVE-2025-52881 setup,
// with oom_score_adj standing in for the attr file, which needs an LSM).
func TestWriteSelfAttrOvermounted(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root (mounts)")
	}
	decoy := filepath.Join(t.TempDir(), "decoy")
	if err := os.WriteFile(decoy, []byte("untouched"), 0o644); err != nil {
		t.Fatal(err)
	}
	real := "/proc/" + strconv.Itoa(os.Getpid()) + "/oom_score_adj"
	orig, err := os.ReadFile(real)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.WriteFile(real, orig, 0) })

	errc := make(chan error, 1)
	go func() {
		// The thread gets a mount namespace of its own and is never given
		// back, so Go ends it with the goroutine.
		runtime.LockOSThread()
		if err := unix.Unshare(unix.CLONE_NEWNS | unix.CLONE_FS); err != nil {
			errc <- err
			return
		}
		if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
			errc <- err
			return
		}
		if err := unix.Mount(decoy, "/proc/thread-self/oom_score_adj", "", unix.MS_BIND, ""); err != nil {
			errc <- err
			return
		}
		errc <- writeSelfAttr("123", "oom_score_adj")
	}()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(decoy); string(b) != "untouched" {
		t.Errorf("the file mounted over /proc took the write: %q", b)
	}
	if b, _ := os.ReadFile(real); strings.TrimSpace(string(b)) != "123" {
		t.Errorf("%s = %q after the write, want 123", real, b)
	}
}

// An LSM that is not active is named in Check's error.
func TestCheckNamesMissingLSM(t *testing.T) {
	for lsm, enabled := range map[string]bool{AppArmor: AppArmorEnabled(), SELinux: SELinuxEnabled()} {
		if enabled {
			continue
		}
		err := Check(lsm)
		if err == nil || !strings.Contains(strings.ToLower(err.Error()), lsm) || !strings.Contains(err.Error(), "not enabled") {
			t.Errorf("Check(%s) on a host without it: %v", lsm, err)
		}
	}
}
