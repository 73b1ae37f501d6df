package main

import (
	"encoding/json"
	"fmt"
	"os"
	"text/tabwriter"
	"time"

	"github.com/containerfd/containerfd/internal/bundle"
	cfd "github.com/containerfd/containerfd/libcontainerfd"
	"github.com/urfave/cli/v2"
)

var stateCommand = &cli.Command{
	Name:      "state",
	Usage:     "print the state of a container as JSON",
	ArgsUsage: "<container-id>",
	Action: onContainer(func(c *cli.Context, ctr *cfd.Container) error {
		s, err := bundle.StateOf(ctr)
		if err != nil {
			return err
		}
		return printJSON(s)
	}),
}

func printJSON(v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(os.Stdout, "%s\n", b)
	return err
}

// listEntry is one container of list --format json: runc's fields in
// runc's order, which scripts and runc's tests match as text.
type listEntry struct {
	Version     string            `json:"ociVersion"`
	ID          string            `json:"id"`
	Pid         int               `json:"pid"`
	Status      string            `json:"status"`
	Bundle      string            `json:"bundle"`
	Rootfs      string            `json:"rootfs"`
	Created     time.Time         `json:"created"`
	Annotations map[string]string `json:"annotations,omitempty"`
	Owner       string            `json:"owner"`
}

var listCommand = &cli.Command{
	Name:  "list",
	Usage: "list the containers under --root (--all: of every root and owner on the host)",
	Flags: []cli.Flag{
		&cli.StringFlag{Name: "format", Aliases: []string{"f"}, Value: "table", Usage: "table or json"},
		&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "print only the ids"},
		&cli.BoolFlag{Name: "all", Aliases: []string{"a"}, Usage: "every container on the host, whatever its --root and owner (root sees all, a user its own)"},
		&cli.IntFlag{Name: "pid", Usage: "with --all: only the container process `PID` belongs to"},
		&cli.StringFlag{Name: "cgroup", Usage: "with --all: only the container whose cgroup is or holds `PATH` (a cgroup directory, or a path as in /proc/PID/cgroup)"},
	},
	Action: func(c *cli.Context) error {
		if c.Bool("all") || c.IsSet("pid") || c.IsSet("cgroup") {
			return listAll(c)
		}
		// As runc: a --root given that does not exist is an error (a
		// mistyped root would list nothing and pass); the default one not
		// made yet means no containers.
		if c.IsSet("root") {
			d, err := os.Open(stateRoot(c))
			if err != nil {
				return err
			}
			d.Close()
		}
		ids, err := cfd.List(stateRoot(c))
		if err != nil {
			return err
		}
		states := []*bundle.State{}
		for _, id := range ids {
			ctr, err := cfd.Load(stateRoot(c), id)
			if err != nil {
				continue // removed while we looked, or half made
			}
			s, err := bundle.StateOf(ctr)
			ctr.Close()
			if err == nil {
				states = append(states, s)
			}
		}
		switch f := c.String("format"); {
		case c.Bool("quiet"):
			for _, s := range states {
				fmt.Println(s.ID)
			}
		case f == "json":
			list := make([]listEntry, len(states))
			for i, s := range states {
				list[i] = listEntry{s.Version, s.ID, s.Pid, string(s.Status), s.Bundle, s.Rootfs, s.Created, s.Annotations, s.Owner}
			}
			b, err := json.Marshal(list)
			if err != nil {
				return err
			}
			fmt.Printf("%s\n", b)
		case f == "table":
			w := tabwriter.NewWriter(os.Stdout, 12, 1, 3, ' ', 0)
			fmt.Fprint(w, "ID\tPID\tSTATUS\tBUNDLE\tCREATED\tOWNER\n")
			for _, s := range states {
				fmt.Fprintf(w, "%s\t%d\t%s\t%s\t%s\t%s\n", s.ID, s.Pid, s.Status, s.Bundle, s.Created.Format(time.RFC3339Nano), s.Owner)
			}
			return w.Flush()
		default:
			return fmt.Errorf("invalid --format %q: want table or json", f)
		}
		return nil
	},
}
