package mountinfo

import "testing"

func TestParse(t *testing.T) {
	data := []byte("36 35 98:0 /mnt1 /mnt/with\\040space rw,noatime master:1 shared:3 - ext3 /dev/root rw,errors=continue\n" +
		"40 36 0:30 / /sys/fs/cgroup/memory ro - cgroup cgroup rw,memory\n")
	es, err := Parse(data, "fixture")
	if err != nil {
		t.Fatal(err)
	}
	e := es[0]
	if e.ID != "36" || e.Parent != "35" || e.Dev != "98:0" || e.Root != "/mnt1" || e.Mountpoint != "/mnt/with space" ||
		e.Options != "rw,noatime" || len(e.Optional) != 2 || e.Optional[1] != "shared:3" ||
		e.FSType != "ext3" || e.Source != "/dev/root" || e.SuperOptions != "rw,errors=continue" {
		t.Errorf("entry %+v", e)
	}
	if es[1].FSType != "cgroup" || len(es[1].Optional) != 0 {
		t.Errorf("entry %+v", es[1])
	}
	if _, err := Parse([]byte("garbage\n"), "fixture"); err == nil {
		t.Error("malformed line accepted")
	}
	for in, want := range map[string]string{`a\134b`: `a\b`, `\011tab`: "\ttab", `no`: "no", `bad\9`: `bad\9`, `end\04`: `end\04`} {
		if got := Unescape(in); got != want {
			t.Errorf("Unescape(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestReadSelf(t *testing.T) {
	es, err := Read("/proc/self/mountinfo")
	if err != nil || len(es) == 0 {
		t.Fatalf("%d entries, %v", len(es), err)
	}
	for _, e := range es {
		if e.Mountpoint == "/" {
			return
		}
	}
	t.Error("no mount on /")
}
