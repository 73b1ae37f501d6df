package main

import (
	"encoding/json"
	"fmt"
	"os"
	"time"

	cfd "github.com/containerfd/containerfd/libcontainerfd"
	"github.com/containerfd/containerfd/libcontainerfd/cgroups"
	"github.com/urfave/cli/v2"
)

var eventsCommand = &cli.Command{
	Name:      "events",
	Usage:     "print a container's resource usage (--stats once, else every --interval) and its OOM events, as JSON lines",
	ArgsUsage: "<container-id>",
	Flags: []cli.Flag{
		&cli.DurationFlag{Name: "interval", Value: 5 * time.Second, Usage: "how often to print stats"},
		&cli.BoolFlag{Name: "stats", Usage: "print the stats once and exit"},
	},
	Action: onContainer(func(c *cli.Context, ctr *cfd.Container) error {
		enc := json.NewEncoder(os.Stdout)
		if c.Bool("stats") {
			s, err := ctr.Stats()
			if err != nil {
				return err
			}
			return enc.Encode(event{Type: "stats", ID: ctr.ID(), Data: runcStats(s)})
		}
		if c.Duration("interval") <= 0 {
			return fmt.Errorf("events --interval must be above zero")
		}
		var ooms uint64
		tick := time.NewTicker(c.Duration("interval"))
		defer tick.Stop()
		for {
			if st, err := ctr.Status(); err != nil || st == cfd.Stopped {
				return err
			}
			s, err := ctr.Stats()
			if err != nil {
				return err
			}
			if n := s.Memory.Events.OOMKill; n > ooms {
				ooms = n
				if err := enc.Encode(event{Type: "oom", ID: ctr.ID()}); err != nil {
					return err
				}
			}
			if err := enc.Encode(event{Type: "stats", ID: ctr.ID(), Data: runcStats(s)}); err != nil {
				return err
			}
			<-tick.C
		}
	}),
}

// event is one line of `events`, as runc writes it.
type event struct {
	Type string `json:"type"`
	ID   string `json:"id"`
	Data any    `json:"data,omitempty"`
}

// runcStats puts our stats in the shape of runc's events types, which
// containerd and other callers decode.
func runcStats(s *cgroups.Stats) map[string]any {
	mem := func(e cgroups.MemoryEntry) map[string]uint64 {
		return map[string]uint64{"limit": e.Limit, "usage": e.Usage, "max": e.Max, "failcnt": e.Failcnt}
	}
	return map[string]any{
		"cpu": map[string]any{
			"usage": map[string]any{"total": s.CPU.Usage.Total, "percpu": s.CPU.Usage.PerCPU,
				"kernel": s.CPU.Usage.Kernel, "user": s.CPU.Usage.User},
			"throttling": map[string]uint64{"periods": s.CPU.Throttling.Periods,
				"throttled_periods": s.CPU.Throttling.ThrottledPeriods, "throttled_time": s.CPU.Throttling.ThrottledTime},
		},
		"memory": map[string]any{"cache": s.Memory.Cache, "usage": mem(s.Memory.Usage), "swap": mem(s.Memory.Swap),
			"kernel": mem(s.Memory.Kernel), "raw": s.Memory.Raw},
		"pids":  map[string]uint64{"current": s.Pids.Current, "limit": s.Pids.Limit},
		"blkio": map[string]any{},
	}
}
