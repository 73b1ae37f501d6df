package resctrl

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestRoot(t *testing.T) {
	dir := t.TempDir()
	old := mountinfoPath
	t.Cleanup(func() { mountinfoPath = old })
	mountinfoPath = filepath.Join(dir, "mountinfo")
	const base = "22 1 0:21 / / rw,relatime shared:1 - ext4 /dev/sda1 rw\n" +
		"25 22 0:23 / /sys rw,nosuid shared:7 - sysfs sysfs rw\n"
	for _, c := range []struct{ text, want string }{
		{base, ""},
		{base + "40 25 0:40 / /sys/fs/resctrl rw,relatime shared:20 - resctrl resctrl rw\n", "/sys/fs/resctrl"},
		// Found wherever it is mounted, and by type, not by name.
		{base + "41 22 0:40 / /mnt/rdt\\040x rw shared:21 - resctrl none rw,mba_MBps\n", "/mnt/rdt x"},
		{base + "42 22 0:41 / /sys/fs/resctrl rw - tmpfs resctrl rw\n", ""},
	} {
		if err := os.WriteFile(mountinfoPath, []byte(c.text), 0o644); err != nil {
			t.Fatal(err)
		}
		got, err := Root()
		if c.want == "" {
			if !errors.Is(err, ErrNotMounted) || !strings.Contains(err.Error(), "resctrl") {
				t.Errorf("Root() = %q, %v; want ErrNotMounted", got, err)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("Root() = %q, %v; want %q", got, err, c.want)
		}
	}
}

func TestCheckName(t *testing.T) {
	for _, ok := range []string{"/", "guaranteed_group", "abc-1.2", "container-id"} {
		if err := CheckName(ok); err != nil {
			t.Errorf("CheckName(%q): %v", ok, err)
		}
	}
	for _, bad := range []string{"", ".", "..", "a/b", "/a", "a\nb", "info", "mon_groups", "tasks", "schemata"} {
		if err := CheckName(bad); err == nil {
			t.Errorf("CheckName(%q): no error", bad)
		}
	}
}

func TestSchemata(t *testing.T) {
	for _, c := range []struct {
		l3, mb string
		lines  []string
		want   string // "" with err set: an error containing err
		err    string
	}{
		{want: ""},
		{l3: "L3:0=7f0;1=1f", want: "L3:0=7f0;1=1f\n"},
		{mb: "MB:0=20;1=70", want: "MB:0=20;1=70\n"},
		// l3CacheSchema first, memBwSchema next, schemata last.
		{l3: "L3:0=ff", mb: "MB:0=50", lines: []string{"L2:0=f;1=f", "MB:0=20"},
			want: "L3:0=ff\nMB:0=50\nL2:0=f;1=f\nMB:0=20\n"},
		{lines: []string{"L3:0=7f0;1=1f", "L2:0=f;1=f;2=f;3=f", "MB:0=20;1=70"},
			want: "L3:0=7f0;1=1f\nL2:0=f;1=f;2=f;3=f\nMB:0=20;1=70\n"},
		{lines: []string{"L3CODE:0=f", "SMBA:0=100"}, want: "L3CODE:0=f\nSMBA:0=100\n"},
		{l3: "MB:0=20", err: `does not start with "L3:"`},
		{mb: "L3:0=ff", err: `does not start with "MB:"`},
		{mb: "MB:0=20\nL3:0=1", err: "newline"},
		{lines: []string{"L3:0=ff\n"}, err: "newline"},
		{lines: []string{""}, err: "RESOURCE:"},
		{lines: []string{"0=ff"}, err: "RESOURCE:"},
		{lines: []string{"L 3:0=ff"}, err: "RESOURCE:"},
		{lines: []string{"L3:"}, err: "id=value"},
		{lines: []string{"L3:x=ff"}, err: "id=value"},
		{lines: []string{"L3:0="}, err: "id=value"},
		{lines: []string{"L3:;0=ff"}, err: "id=value"},
		{lines: []string{"L3:0=ff;"}, want: "L3:0=ff;\n"},
	} {
		got, err := Schemata(c.l3, c.mb, c.lines)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("Schemata(%q, %q, %q) = %q, %v; want error with %q", c.l3, c.mb, c.lines, got, err, c.err)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("Schemata(%q, %q, %q) = %q, %v; want %q", c.l3, c.mb, c.lines, got, err, c.want)
		}
	}
}

// The kernel shows every resource of a group, padded: an existing group's
// schemata hold ours if the domains we name have our values.
func TestSameSchemata(t *testing.T) {
	have := "    L3:0=007f0;1=01f\n    MB:0= 20;1= 70\n"
	for _, want := range []string{"", "L3:0=7f0;1=1f\n", "L3:0=7F0\nMB:1=70\n", "MB:0=20;1=70\n"} {
		if err := sameSchemata(have, want); err != nil {
			t.Errorf("sameSchemata(%q): %v", want, err)
		}
	}
	for _, want := range []string{"L3:0=7f1\n", "MB:0=30\n", "L2:0=f\n", "L3:2=1\n"} {
		if err := sameSchemata(have, want); err == nil {
			t.Errorf("sameSchemata(%q): no error", want)
		}
	}
}
