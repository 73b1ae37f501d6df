package caps

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/containerfd/containerfd/internal/testutil"
	"github.com/containerfd/containerfd/libcontainerfd/internal/spawn"
	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// Each case that applies capabilities runs in a child: the test binary run
// again with helperEnv set to a helperArgs. The child takes the set on
// through the identity steps every container process takes
// (spawn.NewSteps, the one implementation of the capability calls), as a
// Go stage does, then execs grep to show what the program gets.
const helperEnv = "CONTAINERFD_CAPS_TEST_HELPER"

type helperArgs struct {
	Set *Set
	UID int // the uid (and gid) the steps take
	// PreInheritable is put in the stage's own inheritable set first, as if
	// the runtime had been started with it.
	PreInheritable Mask
}

func TestMain(m *testing.M) {
	if arg := os.Getenv(helperEnv); arg != "" {
		helper(arg)
		return
	}
	os.Exit(m.Run())
}

func helper(arg string) {
	runtime.LockOSThread()
	fail := func(format string, a ...any) {
		fmt.Printf("error: "+format+"\n", a...)
		os.Exit(3)
	}
	var h helperArgs
	if err := json.Unmarshal([]byte(arg), &h); err != nil {
		fail("%v", err)
	}
	if h.PreInheritable != 0 {
		hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
		var d [2]unix.CapUserData
		if err := unix.Capget(&hdr, &d[0]); err != nil {
			fail("capget: %v", err)
		}
		d[0].Inheritable, d[1].Inheritable = uint32(h.PreInheritable), uint32(h.PreInheritable>>32)
		if err := unix.Capset(&hdr, &d[0]); err != nil {
			fail("capset: %v", err)
		}
	}
	p := spawn.Proc{Path: "/bin/grep", Cwd: "/", TTY: -1, CloseFrom: 3, UID: uint32(h.UID), GID: uint32(h.UID)}
	if h.Set != nil {
		drop, data, ambient, err := h.Set.Raw()
		if err != nil {
			fail("%v", err)
		}
		p.BoundingDrop, p.Caps, p.Ambient = drop, &data, ambient
	}
	steps, err := spawn.NewSteps(&p)
	if err != nil {
		fail("%v", err)
	}
	_, err = steps.Run([]string{"grep", "-E", "^(Cap|Uid)", "/proc/self/status"}, nil)
	fail("%v", err)
}

// report is what a helper printed: the exec'd program's Cap lines, each
// mask decoded from hex.
type report struct {
	sets  map[string]map[string]Mask // "" -> "CapEff" -> mask
	lines []string
}

func (r report) get(prefix, set string) Mask { return r.sets[prefix][set] }

func runHelper(t *testing.T, h helperArgs) (report, error) {
	t.Helper()
	testutil.NoLeaks(t)
	testutil.RequireRoot(t)
	arg, err := json.Marshal(h)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), helperEnv+"="+string(arg))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, runErr := cmd.Output()
	r := report{sets: map[string]map[string]Mask{}}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		line := sc.Text()
		r.lines = append(r.lines, line)
		if msg, ok := strings.CutPrefix(line, "error: "); ok {
			return r, fmt.Errorf("%s", msg)
		}
		prefix := ""
		if p, rest, ok := strings.Cut(line, " "); ok && !strings.HasPrefix(line, "Cap") {
			prefix, line = p, rest
		}
		name, hex, ok := strings.Cut(line, ":")
		if !ok || !strings.HasPrefix(name, "Cap") {
			continue
		}
		m, err := parseHexMask(strings.TrimSpace(hex))
		if err != nil {
			t.Fatalf("line %q: %v", line, err)
		}
		if r.sets[prefix] == nil {
			r.sets[prefix] = map[string]Mask{}
		}
		r.sets[prefix][name] = m
	}
	if runErr != nil {
		t.Fatalf("helper: %v\nstdout:\n%s\nstderr:\n%s", runErr, out, stderr.Bytes())
	}
	return r, nil
}

// parseHexMask decodes a mask of /proc/<pid>/status ("000001fffeffffff").
func parseHexMask(s string) (Mask, error) {
	v, err := strconv.ParseUint(s, 16, 64)
	return Mask(v), err
}

func mustParse(t *testing.T, c *specs.LinuxCapabilities) *Set {
	t.Helper()
	s, err := Parse(c)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func maskOfNames(t *testing.T, names ...string) Mask {
	t.Helper()
	var m Mask
	for _, n := range names {
		c, ok := FromName(n)
		if !ok {
			t.Fatalf("unknown %s", n)
		}
		m |= maskOf(c)
	}
	return m
}

// defaultCaps is the set `runc spec` writes.
func defaultCaps() *specs.LinuxCapabilities {
	d := []string{"CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"}
	return &specs.LinuxCapabilities{Bounding: d, Effective: d, Permitted: d}
}

// ownCaps is the test process's own sets, as its children start with them.
func ownCaps(t *testing.T) map[string]Mask {
	t.Helper()
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]Mask{}
	for _, line := range strings.Split(string(b), "\n") {
		if name, hex, ok := strings.Cut(line, ":"); ok && strings.HasPrefix(name, "Cap") {
			if m[name], err = parseHexMask(strings.TrimSpace(hex)); err != nil {
				t.Fatal(err)
			}
		}
	}
	return m
}

func expect(t *testing.T, r report, prefix string, want map[string]Mask) {
	t.Helper()
	for _, set := range []string{"CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"} {
		w, ok := want[set]
		if !ok {
			continue
		}
		got, ok := r.sets[prefix][set]
		if !ok {
			t.Errorf("%s %s: not reported\n%s", prefix, set, strings.Join(r.lines, "\n"))
			continue
		}
		if got != w {
			t.Errorf("%s %s = %016x (%s), want %016x (%s)", prefix, set, uint64(got), orNone(got), uint64(w), orNone(w))
		}
	}
}

func TestDefaultAsRoot(t *testing.T) {
	s := mustParse(t, defaultCaps())
	if len(s.Warnings) != 0 {
		t.Errorf("warnings: %q", s.Warnings)
	}
	r, err := runHelper(t, helperArgs{Set: s, UID: 0})
	if err != nil {
		t.Fatal(err)
	}
	d := maskOfNames(t, "CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE")
	expect(t, r, "", map[string]Mask{"CapBnd": d, "CapPrm": d, "CapEff": d, "CapInh": 0, "CapAmb": 0})
}

func TestDefaultAsUser(t *testing.T) {
	s := mustParse(t, defaultCaps())
	r, err := runHelper(t, helperArgs{Set: s, UID: 1000})
	if err != nil {
		t.Fatal(err)
	}
	// A non-root program gets no capabilities without ambient ones.
	d := maskOfNames(t, "CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE")
	expect(t, r, "", map[string]Mask{"CapBnd": d, "CapPrm": 0, "CapEff": 0, "CapInh": 0, "CapAmb": 0})
}

func TestAmbientAsUser(t *testing.T) {
	c := defaultCaps()
	c.Inheritable = []string{"CAP_NET_BIND_SERVICE"}
	c.Ambient = []string{"CAP_NET_BIND_SERVICE"}
	s := mustParse(t, c)
	if len(s.Warnings) != 0 {
		t.Errorf("warnings: %q", s.Warnings)
	}
	r, err := runHelper(t, helperArgs{Set: s, UID: 1000})
	if err != nil {
		t.Fatal(err)
	}
	d := maskOfNames(t, "CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE")
	nbs := maskOfNames(t, "CAP_NET_BIND_SERVICE")
	expect(t, r, "", map[string]Mask{"CapBnd": d, "CapPrm": nbs, "CapEff": nbs, "CapInh": nbs, "CapAmb": nbs})
}

func TestAmbientNotInheritable(t *testing.T) {
	c := defaultCaps()
	c.Ambient = []string{"CAP_NET_BIND_SERVICE"}
	s := mustParse(t, c)
	if s.Ambient != 0 || len(s.Warnings) != 1 || s.Warnings[0] != "can't raise ambient capability CAP_NET_BIND_SERVICE: not both permitted and inheritable; left out" {
		t.Fatalf("ambient %s, warnings %q", s.Ambient, s.Warnings)
	}
	r, err := runHelper(t, helperArgs{Set: s, UID: 1000})
	if err != nil {
		t.Fatal(err)
	}
	expect(t, r, "", map[string]Mask{"CapPrm": 0, "CapEff": 0, "CapInh": 0, "CapAmb": 0})
}

func TestEmptySets(t *testing.T) {
	for _, uid := range []int{0, 1000} {
		t.Run(strconv.Itoa(uid), func(t *testing.T) {
			s := mustParse(t, &specs.LinuxCapabilities{})
			r, err := runHelper(t, helperArgs{Set: s, UID: uid})
			if err != nil {
				t.Fatal(err)
			}
			expect(t, r, "", map[string]Mask{"CapBnd": 0, "CapPrm": 0, "CapEff": 0, "CapInh": 0, "CapAmb": 0})
		})
	}
}

func TestNilKeepsStage(t *testing.T) {
	s, err := Parse(nil)
	if s != nil || err != nil {
		t.Fatalf("Parse(nil) = %v, %v", s, err)
	}
	r, err := runHelper(t, helperArgs{Set: nil, UID: 0})
	if err != nil {
		t.Fatal(err)
	}
	own := ownCaps(t)
	expect(t, r, "", map[string]Mask{"CapBnd": own["CapBnd"], "CapPrm": own["CapPrm"], "CapEff": own["CapEff"], "CapInh": 0, "CapAmb": 0})
}

// CVE-2022-29162: the program's inheritable set is what the config lists,
// even when the stage itself started with inheritable capabilities.
func TestInheritableOnlyWhenAsked(t *testing.T) {
	pre := maskOfNames(t, "CAP_SYS_ADMIN", "CAP_KILL")
	for _, tc := range []struct {
		name string
		inh  []string
		uid  int
	}{
		{"root-none", nil, 0},
		{"user-none", nil, 1000},
		{"root-kill", []string{"CAP_KILL"}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := defaultCaps()
			c.Inheritable = tc.inh
			s := mustParse(t, c)
			r, err := runHelper(t, helperArgs{Set: s, UID: tc.uid, PreInheritable: pre})
			if err != nil {
				t.Fatal(err)
			}
			want := maskOfNames(t, tc.inh...)
			expect(t, r, "", map[string]Mask{"CapInh": want})
		})
	}
}

// Asking for a capability the runtime does not hold is refused before any
// process starts, naming it; the steps would fail at capset (EPERM).
func TestNotHeld(t *testing.T) {
	testutil.RequireRoot(t)
	own := ownCaps(t)
	last, err := Last()
	if err != nil {
		t.Fatal(err)
	}
	missing := Cap(-1)
	for c := Cap(0); c <= last; c++ {
		if !own["CapPrm"].Has(c) {
			missing = c
			break
		}
	}
	if missing < 0 {
		t.Skip("this process holds every capability")
	}
	l := []string{"CAP_KILL", missing.String()}
	s := mustParse(t, &specs.LinuxCapabilities{Bounding: l, Effective: l, Permitted: l})
	err = s.CheckHeld()
	if err == nil || !strings.Contains(err.Error(), "permitted "+missing.String()) || !errors.Is(err, unix.EPERM) {
		t.Fatalf("CheckHeld = %v, want it to name %s", err, missing)
	}
	_, err = runHelper(t, helperArgs{Set: s, UID: 0})
	if err == nil || !strings.Contains(err.Error(), "operation not permitted") {
		t.Fatalf("steps: err = %v, want capset's EPERM", err)
	}
	t.Log(err)
}

func orNone(m Mask) string {
	if m == 0 {
		return "none"
	}
	return m.String()
}

// An unknown name is left out with a warning that names it and its set, as
// runc leaves it out.
func TestUnknownName(t *testing.T) {
	for _, tc := range []struct {
		c    specs.LinuxCapabilities
		want string
	}{
		{specs.LinuxCapabilities{Effective: []string{"CAP_FOO"}}, `ignoring unknown capability "CAP_FOO" in the effective set`},
		{specs.LinuxCapabilities{Ambient: []string{"CAP_KILL", "CAP_43"}}, `ignoring unknown capability "CAP_43" in the ambient set`},
		{specs.LinuxCapabilities{Bounding: []string{"KILL"}}, `ignoring unknown capability "KILL" in the bounding set (did you mean "CAP_KILL"?)`},
		{specs.LinuxCapabilities{Permitted: []string{"cap_kill"}}, `ignoring unknown capability "cap_kill" in the permitted set (did you mean "CAP_KILL"?)`},
		{specs.LinuxCapabilities{Inheritable: []string{""}}, `ignoring unknown capability "" in the inheritable set`},
	} {
		s, err := parse(&tc.c, 40)
		if err != nil || len(s.Warnings) == 0 || s.Warnings[0] != tc.want {
			t.Errorf("%+v: err = %v, warnings %q, want the first %q", tc.c, err, s.Warnings, tc.want)
		}
	}
	s, err := parse(&specs.LinuxCapabilities{Bounding: []string{"CAP_UNKNOWN", "CAP_KILL"}}, 40)
	if err != nil || s.Bounding != maskOfNames(t, "CAP_KILL") {
		t.Errorf("bounding %s, err %v: want CAP_KILL alone", s.Bounding, err)
	}
}

func TestAboveLastIgnored(t *testing.T) {
	l := []string{"CAP_KILL", "CAP_CHECKPOINT_RESTORE", "CAP_BPF", "CAP_CHECKPOINT_RESTORE"}
	s, err := parse(&specs.LinuxCapabilities{Bounding: l, Permitted: l, Effective: l}, unix.CAP_PERFMON)
	if err != nil {
		t.Fatal(err)
	}
	kill := maskOfNames(t, "CAP_KILL")
	if s.Bounding != kill || s.Permitted != kill || s.Effective != kill {
		t.Errorf("set %+v", s)
	}
	want := []string{
		"ignoring CAP_CHECKPOINT_RESTORE (bounding, effective, permitted): not supported by the running kernel, whose last capability is CAP_PERFMON",
		"ignoring CAP_BPF (bounding, effective, permitted): not supported by the running kernel, whose last capability is CAP_PERFMON",
	}
	if strings.Join(s.Warnings, "\n") != strings.Join(want, "\n") {
		t.Errorf("warnings:\n%s\nwant:\n%s", strings.Join(s.Warnings, "\n"), strings.Join(want, "\n"))
	}
}

// On this kernel, the last capability (whatever it is) is kept and the
// apply of a set holding it works; nothing above it is ever set.
func TestAtLastOnKernel(t *testing.T) {
	last, err := Last()
	if err != nil {
		t.Fatal(err)
	}
	if int(last) >= len(names) {
		t.Skipf("kernel knows capabilities past %s", Cap(len(names)-1))
	}
	l := []string{"CAP_KILL", last.String()}
	s := mustParse(t, &specs.LinuxCapabilities{Bounding: l})
	if s.Bounding != maskOfNames(t, l...) || len(s.Warnings) != 0 {
		t.Fatalf("set %+v", s)
	}
	r, err := runHelper(t, helperArgs{Set: s, UID: 0})
	if err != nil {
		t.Fatal(err)
	}
	expect(t, r, "", map[string]Mask{"CapBnd": s.Bounding, "CapPrm": s.Bounding, "CapInh": 0})
}

func TestParseRefuses(t *testing.T) {
	for _, tc := range []struct {
		c    specs.LinuxCapabilities
		want string
	}{
		{specs.LinuxCapabilities{Effective: []string{"CAP_KILL", "CAP_CHOWN"}, Permitted: []string{"CAP_KILL"}},
			"caps: effective CAP_CHOWN not in the permitted set"},
		{specs.LinuxCapabilities{Inheritable: []string{"CAP_KILL", "CAP_SYS_ADMIN"}, Bounding: []string{"CAP_KILL"}},
			"caps: inheritable CAP_SYS_ADMIN not in the bounding set"},
	} {
		_, err := parse(&tc.c, 40)
		if err == nil || err.Error() != tc.want {
			t.Errorf("err = %v, want %q", err, tc.want)
		}
	}
}

func TestSetJSON(t *testing.T) {
	c := defaultCaps()
	c.Inheritable = []string{"CAP_KILL"}
	c.Ambient = []string{"CAP_KILL"}
	s, err := parse(c, 40)
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	var back Set
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if back.Bounding != s.Bounding || back.Effective != s.Effective || back.Permitted != s.Permitted ||
		back.Inheritable != s.Inheritable || back.Ambient != s.Ambient {
		t.Fatalf("%s -> %+v", b, back)
	}
}

func TestNames(t *testing.T) {
	n := Names()
	if len(n) != unix.CAP_CHECKPOINT_RESTORE+1 {
		t.Fatalf("%d names", len(n))
	}
	for i, name := range n {
		if name == "" || !strings.HasPrefix(name, "CAP_") {
			t.Errorf("name %d = %q", i, name)
		}
		if c, ok := FromName(name); !ok || int(c) != i || c.String() != name {
			t.Errorf("FromName(%q) = %d, %v", name, c, ok)
		}
	}
	if Cap(41).String() != "CAP_41" {
		t.Errorf("Cap(41) = %s", Cap(41))
	}
	n[0] = "changed"
	if Names()[0] != "CAP_CHOWN" {
		t.Error("Names shares its table")
	}

	last, err := Last()
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile("/proc/sys/kernel/cap_last_cap")
	if err != nil {
		t.Fatal(err)
	}
	if strings.TrimSpace(string(b)) != strconv.Itoa(int(last)) {
		t.Errorf("Last = %d, file says %s", last, b)
	}
	if p, err := probeLast(); err != nil || p != last {
		t.Errorf("probeLast = %d, %v; want %d", p, err, last)
	}
	k, err := Known()
	if err != nil {
		t.Fatal(err)
	}
	if len(k) != min(int(last)+1, len(names)) || k[len(k)-1] != Cap(len(k)-1).String() {
		t.Errorf("Known = %q", k)
	}
}

func TestMask(t *testing.T) {
	m, err := parseHexMask("00000000a80425fb") // Docker's default set
	if err != nil {
		t.Fatal(err)
	}
	want := "CAP_CHOWN,CAP_DAC_OVERRIDE,CAP_FOWNER,CAP_FSETID,CAP_KILL,CAP_SETGID,CAP_SETUID,CAP_SETPCAP," +
		"CAP_NET_BIND_SERVICE,CAP_NET_RAW,CAP_SYS_CHROOT,CAP_MKNOD,CAP_AUDIT_WRITE,CAP_SETFCAP"
	if m.String() != want {
		t.Errorf("mask = %s\nwant   %s", m, want)
	}
	if !m.Has(unix.CAP_KILL) || m.Has(unix.CAP_SYS_ADMIN) || m.Has(64) || m.Has(-1) {
		t.Error("Has")
	}
}
