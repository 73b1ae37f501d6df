package spawn

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// stepsHelperEnv makes the test binary a Go stage: it takes on the Proc
// in the variable's JSON with Steps and execs Proc.Path with argv
// [sh -c $STEPS_SCRIPT]. A failed step is written to stdout as
// "step\nerrno".
const stepsHelperEnv = "SPAWN_TEST_STEPS"

func TestMain(m *testing.M) {
	if js := os.Getenv(stepsHelperEnv); js != "" {
		os.Exit(stepsHelper(js))
	}
	os.Exit(m.Run())
}

func stepsHelper(js string) int {
	runtime.LockOSThread()
	var p Proc
	if err := json.Unmarshal([]byte(js), &p); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	s, err := NewSteps(&p)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	_, err = s.Run([]string{"sh", "-c", os.Getenv("STEPS_SCRIPT")}, []string{"PATH=/usr/bin:/bin"})
	var ce *ChildError
	if !errors.As(err, &ce) {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	fmt.Printf("%s\n%d", ce.Step, int(ce.Err))
	return 127
}

// viaSteps runs p through a Go stage (Steps) and returns its stdout and
// the failed step, if any.
func viaSteps(t *testing.T, p Proc, script string) (string, error) {
	t.Helper()
	js, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), stepsHelperEnv+"="+string(js), "STEPS_SCRIPT="+script)
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	var ee *exec.ExitError
	if errors.As(err, &ee) && ee.ExitCode() == 127 {
		step, errno, _ := strings.Cut(string(out), "\n")
		var n int
		fmt.Sscan(errno, &n)
		return "", &ChildError{Step: step, Err: syscall.Errno(n)}
	}
	if err != nil {
		t.Fatalf("stage: %v", err)
	}
	return string(out), nil
}

// viaChild runs p in a spawned child and returns its stdout and the
// failed step, if any.
func viaChild(t *testing.T, p Proc, script string) (string, error) {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	null, err := os.Open(os.DevNull) // as exec.Cmd gives the stage
	if err != nil {
		t.Fatal(err)
	}
	defer null.Close()
	proc, err := Start(&Attr{
		Argv: []string{"sh", "-c", script}, Env: []string{"PATH=/usr/bin:/bin"},
		Files: []int{int(null.Fd()), int(w.Fd()), int(os.Stderr.Fd())}, CgroupFD: -1, Proc: &p,
	})
	w.Close()
	if err != nil {
		return "", err
	}
	out, _ := readAll(r)
	if ws := wait(t, proc); ws.ExitStatus() != 0 {
		t.Fatalf("child: exit %v, output %q", ws, out)
	}
	return out, nil
}

// The steps are one implementation: a process sees the same identity
// whether a spawned child or a Go stage took them on.
func TestStepsSameInChildAndStage(t *testing.T) {
	requireRoot(t)
	// Resource limits are no step: the runtime sets them from outside.
	// Where the soft RLIMIT_NOFILE is below the hard one (the VM's), Go
	// raised its own at start and syscall.Exec puts the first back, which
	// a raw child cannot know; with soft = hard there is nothing to put
	// back. syscall.Setrlimit also makes Go forget the first.
	var nofile syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &nofile); err != nil {
		t.Fatal(err)
	}
	if nofile.Cur != nofile.Max {
		was := nofile
		nofile.Cur = nofile.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &nofile); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { syscall.Setrlimit(syscall.RLIMIT_NOFILE, &was) })
	}
	var set unix.CPUSet
	set.Set(0)
	ioprio := 2<<13 | 5     // best effort, level 5
	pers := uint(0x0040000) // ADDR_NO_RANDOMIZE
	// Allows everything, but marks the process as filtered (Seccomp: 2).
	allow := []unix.SockFilter{{Code: unix.BPF_RET | unix.BPF_K, K: unix.SECCOMP_RET_ALLOW}}
	for _, nnp := range []bool{false, true} { // seccomp early, and late
		p := Proc{
			Path: "/bin/sh", Umask: 0o027, Cwd: "/tmp", TTY: -1,
			Scheduler:    &unix.SchedAttr{Size: unix.SizeofSchedAttr, Policy: 3}, // SCHED_BATCH
			IOPriority:   &ioprio,
			Personality:  &pers,
			Seccomp:      allow,
			BoundingDrop: []uintptr{unix.CAP_SYS_ADMIN},
			Groups:       []uint32{5, 7},
			UID:          1000, GID: 1001,
			Caps:       &[2]unix.CapUserData{{Effective: 1 << unix.CAP_KILL, Permitted: 1 << unix.CAP_KILL, Inheritable: 1 << unix.CAP_KILL}},
			Ambient:    []uintptr{unix.CAP_KILL},
			NoNewPrivs: nnp,
			CloseFrom:  3,
			Affinity:   &set,
		}
		script := `umask; pwd; grep -E '^(Uid|Gid|Groups|Cap...|NoNewPrivs|Seccomp|Cpus_allowed_list):' /proc/self/status
			grep -E '^policy' /proc/self/sched; cat /proc/self/personality; ulimit -n; ls /proc/self/fd`
		if _, err := exec.LookPath("ionice"); err == nil {
			script += "; ionice"
		}
		child, err := viaChild(t, p, script)
		if err != nil {
			t.Fatal(err)
		}
		stage, err := viaSteps(t, p, script)
		if err != nil {
			t.Fatal(err)
		}
		if child != stage {
			t.Errorf("no_new_privs %v: the child saw\n%s\nthe stage\n%s", nnp, child, stage)
		}
		for _, want := range []string{"0027\n/tmp\n", "Uid:\t1000\t1000\t1000\t1000", "Groups:\t5 7", "CapAmb:\t0000000000000020",
			"Seccomp:\t2", "Cpus_allowed_list:\t0\n", "00040000"} {
			if !strings.Contains(stage, want) {
				t.Errorf("no_new_privs %v: missing %q in\n%s", nnp, want, stage)
			}
		}
	}
}

// A failed step is the same *ChildError both ways.
func TestStepsFailSameInChildAndStage(t *testing.T) {
	requireRoot(t)
	for _, tc := range []struct {
		p    Proc
		step string
		err  syscall.Errno
	}{
		{Proc{Path: "/bin/sh", Cwd: "/no/such/dir", TTY: -1}, StepCwd, unix.ENOENT},
		{Proc{Path: "/bin/sh", Cwd: "/", TTY: -1, Scheduler: &unix.SchedAttr{Size: unix.SizeofSchedAttr, Policy: 1, Priority: 1000}}, "set scheduler", unix.EINVAL},
		// Inheritable, but dropped from the bounding set.
		{Proc{Path: "/bin/sh", Cwd: "/", TTY: -1, UID: 1000, BoundingDrop: []uintptr{unix.CAP_SYS_ADMIN},
			Caps: &[2]unix.CapUserData{{Inheritable: 1 << unix.CAP_SYS_ADMIN}}}, "set capabilities", unix.EPERM},
		{Proc{Path: "/no/such/program", Cwd: "/", TTY: -1}, StepExecve, unix.ENOENT},
	} {
		tc.p.CloseFrom = 3
		_, childErr := viaChild(t, tc.p, "true")
		_, stageErr := viaSteps(t, tc.p, "true")
		for way, err := range map[string]error{"child": childErr, "stage": stageErr} {
			var ce *ChildError
			if !errors.As(err, &ce) || ce.Step != tc.step || !errors.Is(err, tc.err) {
				t.Errorf("%s: %s: err = %v, want step %q and %v", tc.step, way, err, tc.step, tc.err)
			}
		}
	}
}

// A filter with a notify listener pauses Steps, which hands the listener
// back and goes on after the filter on the next Run.
func TestStepsPauseForListener(t *testing.T) {
	requireRoot(t)
	allow := []unix.SockFilter{{Code: unix.BPF_RET | unix.BPF_K, K: unix.SECCOMP_RET_ALLOW}}
	for _, nnp := range []bool{false, true} {
		c, err := newProcChild(&Proc{Path: "/bin/true", Cwd: "/", TTY: -1, Seccomp: allow, CloseFrom: 1 << 20,
			SeccompFlags: unix.SECCOMP_FILTER_FLAG_NEW_LISTENER, NoNewPrivs: nnp})
		if err != nil {
			t.Fatal(err)
		}
		// On a thread of its own, with its own cwd and umask, thrown away
		// after (it is never unlocked): the filter and ids stay on it.
		done := make(chan error, 1)
		go func() {
			runtime.LockOSThread()
			if err := unix.Unshare(unix.CLONE_FS); err != nil {
				done <- err
				return
			}
			stage, errno := c.run(-1)
			if errno != 0 || stage != stageSeccomp || c.listener < 0 {
				done <- fmt.Errorf("first run: stage %d %v listener %d", stage, errno, c.listener)
				return
			}
			unix.Close(c.listener)
			if stage, errno = c.run(-1); errno != 0 || stage != stageExecve {
				done <- fmt.Errorf("second run: stage %d %v", stage, errno)
				return
			}
			done <- nil
		}()
		if err := <-done; err != nil {
			t.Errorf("no_new_privs %v: %v", nnp, err)
		}
	}
}
