//go:build !containerfd_nocriu

package libcontainerfd_test

import (
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/containerfd/containerfd/internal/testutil"
	cfd "github.com/containerfd/containerfd/libcontainerfd"
	"github.com/containerfd/containerfd/libcontainerfd/mounttree"
	"golang.org/x/sys/unix"
)

// A container restored with KillOnClose gets its watcher as at create:
// closing it kills the restored init, which is our child.
func TestRestoreKillOnClose(t *testing.T) {
	testutil.RequireCRIU(t)
	e := newEnv(t)
	cfg := e.config()
	// Its stdio is its own /dev/null (a bind, which CRIU is told of), not
	// the runtime's.
	cfg.Mounts = append(cfg.Mounts, mounttree.Mount{Type: "bind", Source: "/dev/null", Target: "/dev/null"})
	id := testutil.ID(t)
	c, err := cfd.Create(e.root, id, cfg)
	if err != nil {
		t.Fatal(err)
	}
	p := &cfd.Process{Args: []string{"sh", "-c", "exec </dev/null >/dev/null 2>&1; exec sleep 1000"}, Env: []string{"PATH=/bin"}}
	if err := c.ForkInit(p); err != nil {
		c.Destroy()
		t.Fatal(err)
	}
	if err := c.Start(); err != nil {
		c.Destroy()
		t.Fatal(err)
	}
	for i := 0; i < 500; i++ {
		if b, _ := os.ReadFile("/proc/" + strconv.Itoa(p.Pid) + "/comm"); string(b) == "sleep\n" {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	images := filepath.Join(t.TempDir(), "images")
	err = c.Checkpoint(&cfd.CheckpointOpts{Config: cfg, ImagePath: images, StatusFD: -1})
	p.Wait()
	if derr := c.Destroy(); err != nil || derr != nil {
		t.Fatalf("Checkpoint: %v; Destroy: %v", err, derr)
	}

	again := e.config()
	again.Mounts = cfg.Mounts
	again.Flags |= cfd.KillOnClose
	rp := &cfd.Process{}
	r, err := cfd.Restore(e.root, id, again, rp, &cfd.RestoreOpts{ImagePath: images})
	if err != nil {
		t.Fatal(err)
	}
	if st, err := r.Status(); st != cfd.Running || err != nil || r.InitPid() != rp.Pid {
		t.Errorf("restored: status %s (%v), init %d, Restore gave %d", st, err, r.InitPid(), rp.Pid)
	}
	// A keyring of its own, new: CRIU does not carry the old one.
	if _, err := r.Keys(); err != nil {
		t.Errorf("the restored container's keyring: %v", err)
	}
	r.Close()
	ws, err := rp.Wait()
	if err != nil || ws.Signal() != unix.SIGKILL {
		t.Errorf("restored init after Close: %v (%v), want killed", ws, err)
	}
	if r, err = cfd.Load(e.root, id); err != nil {
		t.Fatal(err)
	}
	if err := r.Destroy(); err != nil {
		t.Error(err)
	}
}
