// Package resctrl puts processes in groups of the resctrl filesystem (Intel
// RDT, AMD PQoS): it finds where resctrl is mounted, makes control and
// monitoring groups, writes their schemata and tasks, and removes them.
//
// See the kernel's Documentation/filesystems/resctrl.rst. A control group is
// a directory under the mount point; a monitoring group one under a control
// group's mon_groups. Removing a group moves its tasks to its parent.
package resctrl

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/containerfd/containerfd/internal/mountinfo"
)

// ErrNotMounted is what Root says where no resctrl filesystem is mounted.
var ErrNotMounted = errors.New("no resctrl filesystem is mounted (none in /proc/self/mountinfo)")

// mountinfoPath is read by Root; a variable so that tests can point it at a
// fixture.
var mountinfoPath = "/proc/self/mountinfo"

// Root returns the mount point of the resctrl filesystem, wherever it is
// mounted (usually /sys/fs/resctrl).
func Root() (string, error) {
	es, err := mountinfo.Read(mountinfoPath)
	if err != nil {
		return "", fmt.Errorf("resctrl: read mount table: %w", err)
	}
	for _, e := range es {
		if e.FSType == "resctrl" && e.Root == "/" {
			return e.Mountpoint, nil
		}
	}
	return "", ErrNotMounted
}

// rootEntries are the files and directories of the resctrl root, which no
// control group may be named after.
var rootEntries = map[string]bool{
	"info": true, "mon_groups": true, "mon_data": true, "cpus": true, "cpus_list": true,
	"mode": true, "schemata": true, "size": true, "tasks": true,
}

// CheckName checks that name can be a control group: one path component
// that is not an entry of the resctrl root. "/" is the root (default) group.
func CheckName(name string) error {
	switch {
	case name == "/":
		return nil
	case name == "", name == ".", name == "..":
		return fmt.Errorf("group name %q: not a directory name", name)
	case strings.ContainsAny(name, "/\n"):
		return fmt.Errorf("group name %q: contains a slash or a newline", name)
	case rootEntries[name]:
		return fmt.Errorf("group name %q: an entry of the resctrl root", name)
	}
	return nil
}

// CheckLine checks that line is one line of a schemata file:
// "RESOURCE:domain=value;domain=value…", such as "L3:0=7f0;1=1f" or
// "MB:0=20;1=70". The kernel checks the resources and values it knows.
func CheckLine(line string) error {
	if strings.ContainsAny(line, "\n\r") {
		return fmt.Errorf("schema %q: contains a newline", line)
	}
	res, doms, ok := strings.Cut(strings.TrimSpace(line), ":")
	if !ok || res == "" || strings.Trim(res, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_") != "" {
		return fmt.Errorf(`schema %q: want "RESOURCE:id=value;…"`, line)
	}
	n := 0
	for d := range strings.SplitSeq(doms, ";") {
		if strings.TrimSpace(d) == "" && n > 0 {
			continue // a trailing ";"
		}
		n++
		id, val, ok := strings.Cut(strings.TrimSpace(d), "=")
		if _, err := strconv.ParseUint(strings.TrimSpace(id), 10, 32); !ok || err != nil || strings.TrimSpace(val) == "" {
			return fmt.Errorf(`schema %q: domain %q: want "id=value"`, line, d)
		}
	}
	return nil
}

// Schemata returns the text to write to a group's schemata file, one schema
// a line: l3 (which must start with "L3:"), then mb (with "MB:"), then
// lines, in that order. It is empty when all are.
func Schemata(l3, mb string, lines []string) (string, error) {
	var sb strings.Builder
	add := func(line, prefix string) error {
		if line == "" && prefix != "" {
			return nil
		}
		if prefix != "" && !strings.HasPrefix(line, prefix) {
			return fmt.Errorf("schema %q: does not start with %q", line, prefix)
		}
		if err := CheckLine(line); err != nil {
			return err
		}
		sb.WriteString(line)
		sb.WriteByte('\n')
		return nil
	}
	if err := add(l3, "L3:"); err != nil {
		return "", err
	}
	if err := add(mb, "MB:"); err != nil {
		return "", err
	}
	for _, l := range lines {
		if err := add(l, ""); err != nil {
			return "", err
		}
	}
	return sb.String(), nil
}

// Mkdir makes the group dir (a control group, or a monitoring group under
// one's mon_groups). made is false if it existed already.
func Mkdir(dir string) (made bool, err error) {
	err = os.Mkdir(dir, 0o755)
	if errors.Is(err, fs.ErrExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("resctrl: make group %s: %w", dir, withStatus(dir, err))
	}
	return true, nil
}

// WriteSchemata writes text to the schemata file of group dir.
func WriteSchemata(dir, text string) error {
	if err := os.WriteFile(filepath.Join(dir, "schemata"), []byte(text), 0); err != nil {
		return fmt.Errorf("resctrl: write schemata of %s: %w", dir, withStatus(dir, err))
	}
	return nil
}

// CheckSchemata checks that the schemata of the existing group dir are
// those of text: each domain text names has the value it gives there.
func CheckSchemata(dir, text string) error {
	have, err := os.ReadFile(filepath.Join(dir, "schemata"))
	if err != nil {
		return fmt.Errorf("resctrl: read schemata of %s: %w", dir, err)
	}
	if err := sameSchemata(string(have), text); err != nil {
		return fmt.Errorf("resctrl: group %s exists with other schemata: %w", dir, err)
	}
	return nil
}

// sameSchemata reports which schema of want have (a schemata file's text)
// does not hold. Values compare as numbers (bitmasks are hex, bandwidths
// decimal; either way leading zeros and case do not matter).
func sameSchemata(have, want string) error {
	parse := func(text string) map[string]map[string]string {
		m := map[string]map[string]string{}
		for line := range strings.SplitSeq(text, "\n") {
			res, doms, ok := strings.Cut(strings.TrimSpace(line), ":")
			if !ok {
				continue
			}
			if m[res] == nil {
				m[res] = map[string]string{}
			}
			for d := range strings.SplitSeq(doms, ";") {
				id, val, _ := strings.Cut(d, "=")
				val = strings.TrimLeft(strings.ToLower(strings.TrimSpace(val)), "0")
				m[res][strings.TrimSpace(id)] = val
			}
		}
		return m
	}
	h := parse(have)
	for res, doms := range parse(want) {
		for id, val := range doms {
			if got, ok := h[res][id]; !ok || got != val {
				return fmt.Errorf("%s domain %s is %q, want %q", res, id, got, val)
			}
		}
	}
	return nil
}

// AddTask moves process pid into group dir.
func AddTask(dir string, pid int) error {
	if err := os.WriteFile(filepath.Join(dir, "tasks"), []byte(strconv.Itoa(pid)), 0); err != nil {
		return fmt.Errorf("resctrl: add process %d to %s: %w", pid, dir, withStatus(dir, err))
	}
	return nil
}

// Remove removes group dir (its tasks go to its parent). A group that is
// gone already is no error.
func Remove(dir string) error {
	if err := os.Remove(dir); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("resctrl: remove group %s: %w", dir, err)
	}
	return nil
}

// withStatus adds to err what the kernel said in info/last_cmd_status of
// the resctrl filesystem that holds dir, where it says more than "ok".
func withStatus(dir string, err error) error {
	for d := dir; d != "/" && d != "."; d = filepath.Dir(d) {
		b, rerr := os.ReadFile(filepath.Join(d, "info", "last_cmd_status"))
		if rerr != nil {
			continue
		}
		if s := strings.TrimSpace(string(b)); s != "" && s != "ok" {
			return fmt.Errorf("%w (%s)", err, s)
		}
		break
	}
	return err
}
