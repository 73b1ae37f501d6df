package integration

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The argv containerd's runc shim sends (through go-runc), exactly.
func TestContainerdArgv(t *testing.T) {
	e := newEnv(t, "sleep", "100")
	log := filepath.Join(e.bundle, "log.json")
	g := []string{"--log", log, "--log-format", "json"}
	run := func(args ...string) result { return e.cfd(append(append([]string{}, g...), args...)...) }
	must := func(args ...string) string {
		t.Helper()
		r := run(args...)
		if r.code != 0 {
			t.Fatalf("%s: %v", strings.Join(args, " "), r)
		}
		return r.stdout
	}
	must("create", "--bundle", e.bundle, "--pid-file", filepath.Join(e.bundle, "init.pid"), "--no-new-keyring", e.id)
	must("start", e.id)
	proc := filepath.Join(e.bundle, "runc-process123")
	os.WriteFile(proc, []byte(`{"args":["sleep","50"],"env":["PATH=/bin"],"cwd":"/","user":{"uid":0,"gid":0}}`), 0o644)
	execPid := filepath.Join(e.bundle, "exec1.pid")
	must("exec", "--process", proc, "--detach", "--pid-file", execPid, e.id)
	var pids []int
	if err := json.Unmarshal([]byte(must("ps", "--format", "json", e.id)), &pids); err != nil || len(pids) != 2 {
		t.Errorf("ps --format json: %v %v", pids, err)
	}
	must("pause", e.id)
	must("resume", e.id)
	must("kill", e.id, "15")
	must("kill", "--all", e.id, "9")
	waitStatus(t, e, "stopped")
	must("delete", e.id)
	must("delete", "--force", e.id)

	// Errors go to the log as JSON, one object per line.
	if r := run("state", e.id); r.code == 0 {
		t.Fatalf("state of a deleted container: %v", r)
	}
	f, err := os.Open(log)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var last map[string]string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		last = nil
		if err := json.Unmarshal(sc.Bytes(), &last); err != nil {
			t.Errorf("log line %q: %v", sc.Text(), err)
		}
	}
	if last["level"] != "error" || last["msg"] != `container "`+e.id+`" does not exist` {
		t.Errorf("last log entry: %v", last)
	}
	if _, err := time.Parse(time.RFC3339, last["time"]); err != nil {
		t.Errorf("log time %q: %v", last["time"], err)
	}
}

// The argv podman's conmon sends: --x=y flags, and state.
func TestConmonArgv(t *testing.T) {
	e := newEnv(t, "sleep", "100")
	log := filepath.Join(e.bundle, "oci-log")
	g := []string{"--log-format=json", "--log=" + log}
	run := func(args ...string) result { return e.cfd(append(append([]string{}, g...), args...)...) }
	pid := filepath.Join(e.bundle, "pidfile")
	if r := run("create", "--bundle="+e.bundle, "--pid-file="+pid, "--preserve-fds=0", e.id); r.code != 0 {
		t.Fatalf("create: %v", r)
	}
	if r := run("start", e.id); r.code != 0 {
		t.Fatalf("start: %v", r)
	}
	proc := filepath.Join(e.bundle, "exec-process")
	os.WriteFile(proc, []byte(`{"args":["true"],"env":["PATH=/bin"],"cwd":"/","user":{"uid":0,"gid":0}}`), 0o644)
	if r := run("exec", "--pid-file="+filepath.Join(e.bundle, "exec.pid"), "--process="+proc, "--detach", e.id); r.code != 0 {
		t.Errorf("exec: %v", r)
	}
	if r := run("state", e.id); r.code != 0 || !strings.Contains(r.stdout, `"status": "running"`) {
		t.Errorf("state: %v", r)
	}
	if r := run("kill", e.id, "9"); r.code != 0 {
		t.Errorf("kill: %v", r)
	}
	waitStatus(t, e, "stopped")
	if r := run("delete", "--force", e.id); r.code != 0 {
		t.Errorf("delete --force: %v", r)
	}
	// podman matches "does not exist" in the stderr of state.
	if r := run("state", e.id); r.code == 0 || !strings.Contains(r.stderr, "does not exist") {
		t.Errorf("state of a deleted container: %v", r)
	}
}
