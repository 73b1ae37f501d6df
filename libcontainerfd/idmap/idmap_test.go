package idmap

import (
	"os"
	"path/filepath"
	"testing"
)

var m = Map{
	{ContainerID: 0, HostID: 100000, Size: 1000},
	{ContainerID: 1000, HostID: 1000, Size: 1},
}

func TestString(t *testing.T) {
	if got, want := m.String(), "0 100000 1000\n1000 1000 1\n"; got != want {
		t.Errorf("String: %q, want %q", got, want)
	}
	if got := Map(nil).String(); got != "" {
		t.Errorf("empty map: %q", got)
	}
}

func TestLookups(t *testing.T) {
	for _, c := range []struct {
		inside, outside uint32
	}{{0, 100000}, {999, 100999}, {1000, 1000}} {
		if h, ok := m.ToHost(c.inside); !ok || h != c.outside {
			t.Errorf("ToHost(%d) = %d, %v; want %d", c.inside, h, ok, c.outside)
		}
		if in, ok := m.ToContainer(c.outside); !ok || in != c.inside {
			t.Errorf("ToContainer(%d) = %d, %v; want %d", c.outside, in, ok, c.inside)
		}
	}
	for _, id := range []uint32{1001, 1<<32 - 1} {
		if _, ok := m.ToHost(id); ok {
			t.Errorf("ToHost(%d): mapped", id)
		}
	}
	for _, id := range []uint32{0, 99999, 101000, 1001} {
		if _, ok := m.ToContainer(id); ok {
			t.Errorf("ToContainer(%d): mapped", id)
		}
	}
	// The whole range, as the initial namespace's map reads.
	all := Map{{ContainerID: 0, HostID: 0, Size: 1<<32 - 1}}
	if h, ok := all.ToHost(1<<32 - 2); !ok || h != 1<<32-2 {
		t.Errorf("identity ToHost: %d, %v", h, ok)
	}
}

func TestRead(t *testing.T) {
	got, err := Read("/proc/self/uid_map")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) == 0 {
		t.Fatal("/proc/self/uid_map: no ranges")
	}
	if _, ok := got.ToHost(uint32(os.Getuid())); !ok {
		t.Errorf("own uid %d not in %v", os.Getuid(), got)
	}
	p := filepath.Join(t.TempDir(), "map")
	os.WriteFile(p, []byte(m.String()), 0o600)
	if got, err := Read(p); err != nil || got.String() != m.String() {
		t.Errorf("round trip: %v %v", got, err)
	}
	for _, bad := range []string{"0 1\n", "0 1 x\n", "0 1 4294967296\n"} {
		os.WriteFile(p, []byte(bad), 0o600)
		if _, err := Read(p); err == nil {
			t.Errorf("Read %q: no error", bad)
		}
	}
}
