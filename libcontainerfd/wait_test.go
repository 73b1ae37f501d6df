package libcontainerfd_test

import (
	"os"
	"testing"
	"time"

	cfd "github.com/containerfd/containerfd/libcontainerfd"
	"github.com/containerfd/containerfd/libcontainerfd/kernfeat"
)

// WaitStatus tells init's status once its parent (here the caller of
// ForkInit, with Process.Wait) has reaped it, directly or through the
// stage; not while the parent leaves it unreaped, nor with pidfd-exit off.
func TestWaitStatus(t *testing.T) {
	bothWays(t, func(t *testing.T, stage bool) {
		for _, tc := range []struct {
			name, disable string
			reap, ok      bool
		}{
			{"reaped", "", true, true},
			{"unreaped", "", false, false},
			{"pidfd-exit off", cfd.PidfdExit.Name(), true, false},
		} {
			t.Run(tc.name, func(t *testing.T) {
				if tc.ok && !cfd.PidfdExit.Available() {
					t.Skip("the kernel does not tell a pidfd holder the exit status (PIDFD_INFO_EXIT, Linux 6.15), or " + kernfeat.EnvDisable + " lists pidfd-exit")
				}
				t.Setenv(kernfeat.EnvDisable, os.Getenv(kernfeat.EnvDisable)+","+tc.disable)
				e := newEnv(t)
				cfg := e.config()
				cfg.AlwaysStage = stage
				c := e.create(cfg)
				o := newOutput(t)
				p := proc(o, "sh", "-c", "exit 5")
				if err := c.ForkInit(p); err != nil {
					o.collect()
					t.Fatal(err)
				}
				if err := c.Start(); err != nil {
					o.collect()
					p.Wait()
					t.Fatal(err)
				}
				o.collect()
				reaped := make(chan struct{})
				go func() {
					if !tc.reap {
						time.Sleep(3 * time.Second)
					}
					p.Wait()
					close(reaped)
				}()
				defer func() { <-reaped }()
				ws, ok, err := c.WaitStatus()
				if err != nil || ok != tc.ok || ok && (!ws.Exited() || ws.ExitStatus() != 5) {
					t.Errorf("WaitStatus: %v, ok %v, %v; want ok %v and exit 5", ws, ok, err, tc.ok)
				}
			})
		}
	})
}
