package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"

	cfd "github.com/containerfd/containerfd/libcontainerfd"
	"github.com/urfave/cli/v2"
)

var psCommand = &cli.Command{
	Name:      "ps",
	Usage:     "list the processes of a container",
	ArgsUsage: "<container-id> [ps options]",
	Flags: []cli.Flag{
		&cli.StringFlag{Name: "format", Aliases: []string{"f"}, Value: "table", Usage: "table (runs ps with the options given, default -ef) or json (an array of pids)"},
	},
	Action: onContainer(func(c *cli.Context, ctr *cfd.Container) error {
		pids, err := ctr.Pids()
		if err != nil {
			return err
		}
		switch f := c.String("format"); f {
		case "json":
			if pids == nil {
				pids = []int{}
			}
			b, err := json.Marshal(pids)
			if err != nil {
				return err
			}
			fmt.Printf("%s\n", b)
			return nil
		case "table":
			return psTable(pids, c.Args().Tail())
		default:
			return fmt.Errorf("invalid --format %q: want table or json", f)
		}
	}),
}

// psTable runs ps(1) and keeps its header and the lines of the container's
// processes, as runc does.
func psTable(pids []int, args []string) error {
	if len(args) == 0 {
		args = []string{"-ef"}
	}
	out, err := exec.Command("ps", args...).Output()
	if err != nil {
		return fmt.Errorf("ps %s: %w", strings.Join(args, " "), err)
	}
	sc := bufio.NewScanner(bytes.NewReader(out))
	if !sc.Scan() {
		return fmt.Errorf("ps %s: no output", strings.Join(args, " "))
	}
	header := sc.Text()
	col := -1
	for i, f := range strings.Fields(header) {
		if f == "PID" {
			col = i
		}
	}
	if col < 0 {
		return fmt.Errorf("ps %s: no PID column", strings.Join(args, " "))
	}
	in := map[int]bool{}
	for _, p := range pids {
		in[p] = true
	}
	fmt.Fprintln(os.Stdout, header)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) <= col {
			continue
		}
		if pid, err := strconv.Atoi(f[col]); err == nil && in[pid] {
			fmt.Fprintln(os.Stdout, sc.Text())
		}
	}
	return nil
}
