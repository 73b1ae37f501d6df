package testutil

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"testing"
)

// criuChecks caches, per process, what `criu check` (key "") and each
// `criu check --feature F` (key F) said: "" where CRIU is usable, else the
// reason. A check forks and probes the kernel; once per binary is enough.
var criuChecks struct {
	sync.Mutex
	m map[string]string
}

// RequireCRIU skips the test unless CRIU is installed and `criu check`
// passes, and each feature named (as `criu check --feature` takes it, e.g.
// "mem_dirty_track") is supported. The skip names what is missing: "criu not
// installed", or CRIU's own reason (on a kernel newer than the CRIU, e.g.
// "criu check: vdso: Unexpected rt vDSO area bounds").
//
// Where CFD_REQUIRE_CRIU=1 (the VM of hack/vm.sh, which brings a CRIU that
// works there) the test fails instead: a checkpoint test must not pass there
// by skipping.
func RequireCRIU(t testing.TB, features ...string) {
	t.Helper()
	RequireRoot(t)
	for _, f := range append([]string{""}, features...) {
		if why := criuCheck(f); why != "" {
			if os.Getenv("CFD_REQUIRE_CRIU") == "1" {
				t.Fatalf("CFD_REQUIRE_CRIU=1 but %s", why)
			}
			t.Skip(why)
		}
	}
}

func criuCheck(feature string) string {
	criuChecks.Lock()
	defer criuChecks.Unlock()
	if why, ok := criuChecks.m[feature]; ok {
		return why
	}
	why := runCRIUCheck(feature)
	if criuChecks.m == nil {
		criuChecks.m = map[string]string{}
	}
	criuChecks.m[feature] = why
	return why
}

func runCRIUCheck(feature string) string {
	path, err := exec.LookPath("criu")
	if err != nil {
		return "criu not installed"
	}
	args := []string{"check"}
	what := "criu check"
	if feature != "" {
		args = append(args, "--feature", feature)
		what += " --feature " + feature
	}
	out, err := exec.Command(path, args...).CombinedOutput()
	if err == nil {
		return ""
	}
	return what + ": " + criuReason(out, err)
}

// criuLogPrefix is the head of CRIU's error lines: "Error (criu/vdso.c:381): ".
var criuLogPrefix = regexp.MustCompile(`^(Error|Warn) +\([^)]*\): `)

// criuReason picks CRIU's reason out of a failed check's output: the first
// error line, without its source location (later lines are consequences:
// "Could not initialize kernel features detection"); failing that, the last
// line printed, or the exit status.
func criuReason(out []byte, err error) string {
	var last string
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		if strings.HasPrefix(line, "Error (") {
			return criuLogPrefix.ReplaceAllString(line, "")
		}
		last = line
	}
	if last != "" {
		return criuLogPrefix.ReplaceAllString(last, "")
	}
	return err.Error()
}
