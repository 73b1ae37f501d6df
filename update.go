package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	cfd "github.com/containerfd/containerfd/libcontainerfd"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/urfave/cli/v2"
)

var updateCommand = &cli.Command{
	Name:      "update",
	Usage:     "change the resource limits of a running container",
	ArgsUsage: "<container-id>",
	Description: `--resources takes a linux.resources JSON object from a file, or from
stdin with "-" (as containerd and podman send it); the other flags change
one limit each and apply on top of it. --l3-cache-schema and --mem-bw-schema
rewrite the schemata of the container's resctrl group (linux.intelRdt).`,
	Flags: []cli.Flag{
		&cli.StringFlag{Name: "resources", Aliases: []string{"r"}, Usage: "path to a resources JSON file, or - for stdin"},
		&cli.StringFlag{Name: "memory", Usage: "memory limit (bytes, or with a k/m/g suffix; -1 for none)"},
		&cli.StringFlag{Name: "memory-reservation", Usage: "memory soft limit"},
		&cli.StringFlag{Name: "memory-swap", Usage: "memory plus swap limit"},
		&cli.StringFlag{Name: "cpu-period", Usage: "CFS period in microseconds"},
		&cli.StringFlag{Name: "cpu-quota", Usage: "CFS quota in microseconds (-1 for none)"},
		&cli.StringFlag{Name: "cpu-burst", Usage: "CFS burst in microseconds"},
		&cli.StringFlag{Name: "cpu-share", Usage: "CPU shares (relative weight)"},
		&cli.StringFlag{Name: "cpu-rt-period", Usage: "realtime period in microseconds"},
		&cli.StringFlag{Name: "cpu-rt-runtime", Usage: "realtime runtime in microseconds"},
		&cli.StringFlag{Name: "cpuset-cpus", Usage: "CPUs to run on (e.g. 0-1)"},
		&cli.StringFlag{Name: "cpuset-mems", Usage: "memory nodes to use"},
		&cli.StringFlag{Name: "pids-limit", Usage: "most processes (-1 for none)"},
		&cli.StringFlag{Name: "cpu-idle", Usage: "1 makes the cgroup SCHED_IDLE"},
		&cli.StringFlag{Name: "l3-cache-schema", Usage: `the L3 cache schema of the container's intelRdt group ("L3:0=ff;1=f")`},
		&cli.StringFlag{Name: "mem-bw-schema", Usage: `the memory bandwidth schema of the container's intelRdt group ("MB:0=50")`},
	},
	Before: argsBetween(1, 1),
	Action: onContainer(func(c *cli.Context, ctr *cfd.Container) error {
		st, err := ctr.Status()
		if err != nil {
			return err
		}
		if st == cfd.Stopped || st == cfd.Creating {
			return fmt.Errorf("cannot update container %s that is %s", ctr.ID(), st)
		}
		r, err := updateResources(c)
		if err != nil {
			return err
		}
		rdt := c.IsSet("l3-cache-schema") || c.IsSet("mem-bw-schema")
		if !rdt || !onlyRdtFlags(c) {
			if err := ctr.Update(r); err != nil {
				return err
			}
		}
		if rdt {
			return ctr.UpdateIntelRdt(c.String("l3-cache-schema"), c.String("mem-bw-schema"))
		}
		return nil
	}),
}

// onlyRdtFlags reports whether no flag but the intelRdt ones is set: then
// no cgroup limit is touched.
func onlyRdtFlags(c *cli.Context) bool {
	for _, f := range c.Command.Flags {
		name := f.Names()[0]
		if name != "l3-cache-schema" && name != "mem-bw-schema" && c.IsSet(name) {
			return false
		}
	}
	return true
}

// updateResources reads --resources and lays the per-limit flags over it.
func updateResources(c *cli.Context) (*specs.LinuxResources, error) {
	r := &specs.LinuxResources{}
	if path := c.String("resources"); path != "" {
		var in io.Reader = os.Stdin
		if path != "-" {
			f, err := os.Open(path)
			if err != nil {
				return nil, fmt.Errorf("update --resources: %w", err)
			}
			defer f.Close()
			in = f
		}
		if err := json.NewDecoder(in).Decode(r); err != nil {
			return nil, fmt.Errorf("update --resources %s: %w", path, err)
		}
	}
	set := func(flag string, f func(v string) error) error {
		if !c.IsSet(flag) {
			return nil
		}
		if err := f(c.String(flag)); err != nil {
			return fmt.Errorf("update --%s %q: %w", flag, c.String(flag), err)
		}
		return nil
	}
	mem := func() *specs.LinuxMemory {
		if r.Memory == nil {
			r.Memory = &specs.LinuxMemory{}
		}
		return r.Memory
	}
	cpu := func() *specs.LinuxCPU {
		if r.CPU == nil {
			r.CPU = &specs.LinuxCPU{}
		}
		return r.CPU
	}
	bytesTo := func(dst **int64) func(string) error {
		return func(v string) error {
			n, err := parseBytes(v)
			*dst = &n
			return err
		}
	}
	intTo := func(dst **int64) func(string) error {
		return func(v string) error {
			n, err := strconv.ParseInt(v, 10, 64)
			*dst = &n
			return err
		}
	}
	uintTo := func(dst **uint64) func(string) error {
		return func(v string) error {
			n, err := strconv.ParseUint(v, 10, 64)
			*dst = &n
			return err
		}
	}
	steps := []error{
		set("memory", bytesTo(&mem().Limit)),
		set("memory-reservation", bytesTo(&mem().Reservation)),
		set("memory-swap", bytesTo(&mem().Swap)),
		set("cpu-period", uintTo(&cpu().Period)),
		set("cpu-quota", intTo(&cpu().Quota)),
		set("cpu-burst", uintTo(&cpu().Burst)),
		set("cpu-share", uintTo(&cpu().Shares)),
		set("cpu-rt-period", uintTo(&cpu().RealtimePeriod)),
		set("cpu-rt-runtime", intTo(&cpu().RealtimeRuntime)),
		set("cpuset-cpus", func(v string) error { cpu().Cpus = v; return nil }),
		set("cpuset-mems", func(v string) error { cpu().Mems = v; return nil }),
		set("pids-limit", func(v string) error {
			n, err := strconv.ParseInt(v, 10, 64)
			r.Pids = &specs.LinuxPids{Limit: &n}
			return err
		}),
		set("cpu-idle", intTo(&cpu().Idle)),
	}
	for _, err := range steps {
		if err != nil {
			return nil, err
		}
	}
	// An unset section must not be sent as an empty one.
	if r.Memory != nil && *r.Memory == (specs.LinuxMemory{}) {
		r.Memory = nil
	}
	return r, nil
}

// parseBytes takes 1024, 512k, 64m, 1g (powers of 1024), or -1.
func parseBytes(v string) (int64, error) {
	mult := int64(1)
	s := strings.ToLower(strings.TrimSpace(v))
	s = strings.TrimSuffix(s, "b")
	switch {
	case strings.HasSuffix(s, "k"):
		mult, s = 1<<10, s[:len(s)-1]
	case strings.HasSuffix(s, "m"):
		mult, s = 1<<20, s[:len(s)-1]
	case strings.HasSuffix(s, "g"):
		mult, s = 1<<30, s[:len(s)-1]
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("not a size")
	}
	if n < 0 {
		return n, nil
	}
	return n * mult, nil
}
