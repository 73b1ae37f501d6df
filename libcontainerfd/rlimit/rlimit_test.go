package rlimit

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/containerfd/containerfd/internal/testutil"
	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// labels are the rows of /proc/<pid>/limits.
var labels = map[string]string{
	"RLIMIT_CPU":        "Max cpu time",
	"RLIMIT_FSIZE":      "Max file size",
	"RLIMIT_DATA":       "Max data size",
	"RLIMIT_STACK":      "Max stack size",
	"RLIMIT_CORE":       "Max core file size",
	"RLIMIT_RSS":        "Max resident set",
	"RLIMIT_NPROC":      "Max processes",
	"RLIMIT_NOFILE":     "Max open files",
	"RLIMIT_MEMLOCK":    "Max locked memory",
	"RLIMIT_AS":         "Max address space",
	"RLIMIT_LOCKS":      "Max file locks",
	"RLIMIT_SIGPENDING": "Max pending signals",
	"RLIMIT_MSGQUEUE":   "Max msgqueue size",
	"RLIMIT_NICE":       "Max nice priority",
	"RLIMIT_RTPRIO":     "Max realtime priority",
	"RLIMIT_RTTIME":     "Max realtime timeout",
}

// helperEnv makes the test binary a Go stage: it waits for a line on stdin,
// calls KeepNofile if the variable says "keep", and execs grep on its own
// limits.
const helperEnv = "CONTAINERFD_RLIMIT_TEST_HELPER"

func TestMain(m *testing.M) {
	if mode := os.Getenv(helperEnv); mode != "" {
		fmt.Println("ready")
		bufio.NewReader(os.Stdin).ReadString('\n')
		if mode == "keep" {
			if err := KeepNofile(); err != nil {
				fmt.Println("error:", err)
				os.Exit(3)
			}
		}
		err := unix.Exec("/bin/grep", []string{"grep", "Max open files", "/proc/self/limits"}, nil)
		fmt.Println("error:", err)
		os.Exit(3)
	}
	os.Exit(m.Run())
}

type pair struct{ soft, hard uint64 }

// readLimits parses /proc/<pid>/limits by the rows' labels.
func readLimits(t *testing.T, pid int) map[string]pair {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/limits", pid))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]pair{}
	for _, line := range strings.Split(string(b), "\n")[1:] {
		if len(line) < 26 {
			continue
		}
		label := strings.TrimSpace(line[:26])
		f := strings.Fields(line[26:])
		if len(f) < 2 {
			t.Fatalf("limits line %q", line)
		}
		out[label] = pair{parseValue(t, f[0]), parseValue(t, f[1])}
	}
	return out
}

func parseValue(t *testing.T, s string) uint64 {
	t.Helper()
	if s == "unlimited" {
		return Infinity
	}
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		t.Fatalf("limit %q: %v", s, err)
	}
	return v
}

func startSleep(t *testing.T) int {
	t.Helper()
	testutil.NoLeaks(t) // first: its check runs after the kill below
	testutil.RequireRoot(t)
	cmd := exec.Command("/bin/sleep", "60")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	waitSleeping(t, cmd.Process.Pid)
	return cmd.Process.Pid
}

// waitSleeping waits until pid sleeps in nanosleep: until then its execve
// may still be running, and execve writes back the RLIMIT_STACK it started
// with (finalize_exec), undoing a prlimit made meanwhile.
func waitSleeping(t *testing.T, pid int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/syscall", pid))
		f := strings.Fields(string(b))
		if len(f) > 0 && (f[0] == strconv.Itoa(unix.SYS_CLOCK_NANOSLEEP) || f[0] == strconv.Itoa(unix.SYS_NANOSLEEP)) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("pid %d not asleep: syscall %q", pid, b)
		}
		time.Sleep(time.Millisecond)
	}
}

func mustParse(t *testing.T, rs ...specs.POSIXRlimit) []Limit {
	t.Helper()
	ls, err := Parse(rs)
	if err != nil {
		t.Fatal(err)
	}
	return ls
}

func TestApplyNofile(t *testing.T) {
	pid := startSleep(t)
	before := readLimits(t, pid)
	ls := mustParse(t, specs.POSIXRlimit{Type: "RLIMIT_NOFILE", Soft: 1024, Hard: 4096})
	if err := Apply(pid, ls); err != nil {
		t.Fatal(err)
	}
	after := readLimits(t, pid)
	if got := after["Max open files"]; got != (pair{1024, 4096}) {
		t.Errorf("NOFILE = %v", got)
	}
	for label, p := range before {
		if label != "Max open files" && after[label] != p {
			t.Errorf("%s changed: %v -> %v", label, p, after[label])
		}
	}
}

// Every type of the spec lands on its own row.
func TestApplyAll(t *testing.T) {
	pid := startSleep(t)
	var rs []specs.POSIXRlimit
	for typ := range resources {
		var cur unix.Rlimit
		if err := unix.Prlimit(pid, resources[typ], nil, &cur); err != nil {
			t.Fatal(err)
		}
		hard := cur.Max
		if hard == Infinity {
			hard = 1 << 30
		}
		rs = append(rs, specs.POSIXRlimit{Type: typ, Soft: hard / 2, Hard: hard})
	}
	if err := Apply(pid, mustParse(t, rs...)); err != nil {
		t.Fatal(err)
	}
	got := readLimits(t, pid)
	if len(rs) != len(labels) || len(got) != len(labels) {
		t.Fatalf("%d types, %d labels, %d rows", len(rs), len(labels), len(got))
	}
	for _, r := range rs {
		if p := got[labels[r.Type]]; p != (pair{r.Soft, r.Hard}) {
			t.Errorf("%s (%s) = %v, want %d %d", r.Type, labels[r.Type], p, r.Soft, r.Hard)
		}
	}
}

// Raising a hard limit needs CAP_SYS_RESOURCE, which this machine's bounding
// set lacks; the error names the limit, and Apply stops there.
func TestRaiseHardRefused(t *testing.T) {
	pid := startSleep(t)
	before := readLimits(t, pid)
	hard := before["Max open files"].hard
	if hard == Infinity {
		t.Skip("NOFILE hard limit is unlimited")
	}
	if held, _ := unix.PrctlRetInt(unix.PR_CAPBSET_READ, unix.CAP_SYS_RESOURCE, 0, 0, 0); held == 1 {
		t.Skip("this process may hold CAP_SYS_RESOURCE")
	}
	ls := mustParse(t,
		specs.POSIXRlimit{Type: "RLIMIT_CORE", Soft: 0, Hard: 0},
		specs.POSIXRlimit{Type: "RLIMIT_NOFILE", Soft: 1024, Hard: hard * 2},
		specs.POSIXRlimit{Type: "RLIMIT_STACK", Soft: 1 << 20, Hard: 1 << 20},
	)
	err := Apply(pid, ls)
	want := fmt.Sprintf("set RLIMIT_NOFILE to soft 1024 hard %d: operation not permitted", hard*2)
	if err == nil || err.Error() != want {
		t.Fatalf("err = %v, want %q", err, want)
	}
	after := readLimits(t, pid)
	if after["Max core file size"] != (pair{0, 0}) {
		t.Errorf("CORE = %v, want 0 0 (applied before the failure)", after["Max core file size"])
	}
	if after["Max open files"] != before["Max open files"] || after["Max stack size"] != before["Max stack size"] {
		t.Errorf("NOFILE %v STACK %v changed", after["Max open files"], after["Max stack size"])
	}
}

func TestApplyUnlimitedAndGone(t *testing.T) {
	pid := startSleep(t)
	if readLimits(t, pid)["Max core file size"].hard != Infinity {
		t.Skip("core hard limit is not unlimited")
	}
	ls := mustParse(t, specs.POSIXRlimit{Type: "RLIMIT_CORE", Soft: Infinity, Hard: Infinity})
	if err := Apply(pid, ls); err != nil {
		t.Fatal(err)
	}
	if p := readLimits(t, pid)["Max core file size"]; p != (pair{Infinity, Infinity}) {
		t.Errorf("CORE = %v", p)
	}

	// Pids stay below pid_max: that one never exists.
	b, err := os.ReadFile("/proc/sys/kernel/pid_max")
	if err != nil {
		t.Fatal(err)
	}
	gone, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	ls = mustParse(t, specs.POSIXRlimit{Type: "RLIMIT_CORE", Soft: 0, Hard: Infinity})
	err = Apply(gone, ls)
	if err == nil || err.Error() != "set RLIMIT_CORE to soft 0 hard unlimited: no such process" {
		t.Errorf("err = %v", err)
	}
}

// A Go stage undoes an RLIMIT_NOFILE set from outside when it execs, unless
// it calls KeepNofile.
func TestKeepNofile(t *testing.T) {
	testutil.NoLeaks(t)
	testutil.RequireRoot(t)
	var own unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &own); err != nil {
		t.Fatal(err)
	}
	if own.Max == Infinity || own.Max < 2048 {
		t.Skipf("NOFILE hard limit %d", own.Max)
	}
	// Start the stage with a soft limit below its hard one, as most
	// machines do (1024), so that Go raises it and remembers it.
	start := unix.Rlimit{Cur: 1024, Max: own.Max}
	if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &start); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Setrlimit(unix.RLIMIT_NOFILE, &own) })

	for _, tc := range []struct {
		mode string
		want uint64
	}{
		{"restore", 1024}, // syscall.Exec put back what the stage started with
		{"keep", 512},
	} {
		t.Run(tc.mode, func(t *testing.T) {
			cmd := exec.Command(os.Args[0])
			cmd.Env = append(os.Environ(), helperEnv+"="+tc.mode)
			stdin, err := cmd.StdinPipe()
			if err != nil {
				t.Fatal(err)
			}
			stdout, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			defer cmd.Wait()
			defer stdin.Close()
			r := bufio.NewReader(stdout)
			if line, err := r.ReadString('\n'); line != "ready\n" {
				t.Fatalf("helper said %q, %v", line, err)
			}
			ls := mustParse(t, specs.POSIXRlimit{Type: "RLIMIT_NOFILE", Soft: 512, Hard: own.Max})
			if err := Apply(cmd.Process.Pid, ls); err != nil {
				t.Fatal(err)
			}
			io.WriteString(stdin, "go\n")
			out, _ := io.ReadAll(r)
			f := strings.Fields(strings.TrimPrefix(string(out), "Max open files"))
			if len(f) < 2 || parseValue(t, f[0]) != tc.want || parseValue(t, f[1]) != own.Max {
				t.Errorf("exec'd program has %q, want soft %d hard %d", out, tc.want, own.Max)
			}
		})
	}
}

func TestParse(t *testing.T) {
	ls, err := Parse([]specs.POSIXRlimit{
		{Type: "RLIMIT_NOFILE", Soft: 1024, Hard: 4096},
		{Type: "RLIMIT_CORE", Soft: Infinity, Hard: Infinity},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []Limit{
		{Type: "RLIMIT_NOFILE", Resource: unix.RLIMIT_NOFILE, Soft: 1024, Hard: 4096},
		{Type: "RLIMIT_CORE", Resource: unix.RLIMIT_CORE, Soft: Infinity, Hard: Infinity},
	}
	if fmt.Sprint(ls) != fmt.Sprint(want) {
		t.Errorf("Parse = %v, want %v", ls, want)
	}
	if ls, err := Parse(nil); ls != nil || err != nil {
		t.Errorf("Parse(nil) = %v, %v", ls, err)
	}
	if len(resources) != len(labels) {
		t.Errorf("%d resources, %d in the spec", len(resources), len(labels))
	}

	for _, tc := range []struct {
		rs   []specs.POSIXRlimit
		want string
	}{
		{[]specs.POSIXRlimit{{Type: "RLIMIT_FOO"}}, `rlimit: unknown type "RLIMIT_FOO"`},
		{[]specs.POSIXRlimit{{Type: "nofile"}}, `rlimit: unknown type "nofile"`},
		{[]specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Soft: 1, Hard: 1}, {Type: "RLIMIT_CPU"}, {Type: "RLIMIT_NOFILE", Soft: 2, Hard: 2}},
			"rlimit: RLIMIT_NOFILE given more than once"},
		{[]specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Soft: 4096, Hard: 1024}},
			"rlimit: RLIMIT_NOFILE: soft limit 4096 above hard limit 1024"},
		{[]specs.POSIXRlimit{{Type: "RLIMIT_CORE", Soft: Infinity, Hard: 0}},
			"rlimit: RLIMIT_CORE: soft limit unlimited above hard limit 0"},
	} {
		if _, err := Parse(tc.rs); err == nil || err.Error() != tc.want {
			t.Errorf("%v: err = %v, want %q", tc.rs, err, tc.want)
		}
	}
}
