package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"os/user"
	"slices"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/containerfd/containerfd/internal/bundle"
	cfd "github.com/containerfd/containerfd/libcontainerfd"
	"github.com/containerfd/containerfd/libcontainerfd/cgroups"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/urfave/cli/v2"
)

// listAllEntry is one container of list --all --format json: list's
// fields, then where the container is and what holds it.
type listAllEntry struct {
	listEntry
	Root       string            `json:"root"`
	Cgroup     map[string]string `json:"cgroup,omitempty"`
	Namespaces map[string]uint64 `json:"namespaces,omitempty"`
	HolderPid  int               `json:"holderPid,omitempty"`
}

// listAll is list --all, --pid and --cgroup: the host-wide list the
// library keeps (package registry).
func listAll(c *cli.Context) error {
	f := c.String("format")
	if f != "table" && f != "json" {
		return fmt.Errorf("invalid --format %q: want table or json", f)
	}
	var all []cfd.Listed
	var one *cfd.Listed
	var err error
	switch {
	case c.IsSet("pid") && c.IsSet("cgroup"):
		return errors.New("list: --pid and --cgroup cannot be used together")
	case c.IsSet("pid"):
		one, err = cfd.FindPid(c.Int("pid"))
	case c.IsSet("cgroup"):
		one, err = cfd.FindCgroup(c.String("cgroup"))
	default:
		all, err = cfd.ListAll()
	}
	if err != nil {
		return err
	}
	if one != nil {
		all = []cfd.Listed{*one}
	}
	switch {
	case c.Bool("quiet"):
		for _, l := range all {
			fmt.Println(l.ID)
		}
	case f == "json":
		list := make([]listAllEntry, len(all))
		for i, l := range all {
			list[i] = allEntry(l)
		}
		b, err := json.Marshal(list)
		if err != nil {
			return err
		}
		fmt.Printf("%s\n", b)
	default:
		w := tabwriter.NewWriter(os.Stdout, 12, 1, 3, ' ', 0)
		fmt.Fprint(w, "ID\tROOT\tPID\tSTATUS\tCGROUP\tHOLDER\tCREATED\tOWNER\n")
		for _, l := range all {
			fmt.Fprintf(w, "%s\t%s\t%d\t%s\t%s\t%d\t%s\t%s\n", l.ID, l.Root, l.Pid, l.Status, oneCgroup(l.Cgroup),
				l.HolderPid, l.Created.Format(time.RFC3339Nano), owner(l))
		}
		return w.Flush()
	}
	return nil
}

func allEntry(l cfd.Listed) listAllEntry {
	e := listAllEntry{
		listEntry: listEntry{Version: specs.Version, ID: l.ID, Pid: l.Pid, Status: string(l.Status),
			Bundle: l.Labels[bundle.LabelBundle], Rootfs: l.Labels[bundle.LabelRootfs], Created: l.Created, Owner: owner(l)},
		Root: l.Root, Cgroup: l.Cgroup, Namespaces: l.Namespaces, HolderPid: l.HolderPid,
	}
	if a := l.Labels[bundle.LabelAnnotations]; a != "" {
		json.Unmarshal([]byte(a), &e.Annotations) // as list: what cannot be read is left out
	}
	return e
}

// oneCgroup is the cgroup of a table row: the cgroup2 directory, else the
// first v1 one; "-" for none.
func oneCgroup(p cgroups.Paths) string {
	if d, ok := p[cgroups.KeyUnified]; ok {
		return d
	}
	for _, k := range slices.Sorted(maps.Keys(p)) {
		return p[k]
	}
	return "-"
}

// owner is the container's owner as list shows it: the name the bundle
// recorded, else the creator's user name, else its uid.
func owner(l cfd.Listed) string {
	if o := l.Labels[bundle.LabelOwner]; o != "" {
		return o
	}
	if u, err := user.LookupId(strconv.Itoa(l.Owner)); err == nil {
		return u.Username
	}
	return strconv.Itoa(l.Owner)
}
