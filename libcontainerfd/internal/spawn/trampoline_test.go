package spawn

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"

	"golang.org/x/sys/unix"
)

// TestTrampoline runs each architecture's trampoline as a program of its
// own: natively for the machine's, under qemu-user's static emulator for
// the others, where it is installed (the program it execs is the host's,
// which the emulator hands to the kernel).
func TestTrampoline(t *testing.T) {
	for goarch, arch := range trampolines {
		t.Run(goarch, func(t *testing.T) {
			path, emulator := archProgram(t, goarch, "trampoline", trampolineELF(arch))
			// run runs the trampoline with args and the write end of a pipe
			// as fd 3; it returns the exit code, stdout and what reached the
			// pipe.
			run := func(args ...string) (int, string, []byte) {
				t.Helper()
				r, w, err := os.Pipe()
				if err != nil {
					t.Fatal(err)
				}
				defer r.Close()
				cmd := &exec.Cmd{Path: path, Args: args, Env: []string{"X=from-env"}}
				if emulator != "" {
					cmd.Path, cmd.Args = emulator, append([]string{emulator, "-0", args[0], path}, args[1:]...)
				}
				var out bytes.Buffer
				cmd.Stdout, cmd.ExtraFiles = &out, []*os.File{w}
				err = cmd.Start()
				w.Close()
				if err != nil {
					t.Fatal(err)
				}
				report, _ := readAll(r)
				cmd.Wait()
				return cmd.ProcessState.ExitCode(), out.String(), []byte(report)
			}

			// The program runs with its own argv and the environment; the
			// report fd is gone (close-on-exec) and reports nothing.
			code, out, report := run("3", "/bin/sh", "sh", "-c", `echo "$0 $1 $X"; readlink /proc/$$/fd/3 || echo closed`, "zero", "one")
			if code != 0 || out != "zero one from-env\nclosed\n" || len(report) != 0 {
				t.Errorf("exec: exit %d, stdout %q, report %q", code, out, report)
			}
			// A program that cannot be run: a step record on the report fd.
			code, _, report = run("3", "/no/such/program", "x")
			var ce *ChildError
			if err := ParseStepRecord(report); code != 127 || !errors.As(err, &ce) || ce.Step != StepExecve || ce.Err != unix.ENOENT {
				t.Errorf("exec of a missing program: exit %d, report %v", code, err)
			}
			// Any other argv: exit 127 and nothing else, as when the kernel
			// runs it as the interpreter of a #!/proc/self/exe script.
			for _, args := range [][]string{{"3"}, {"3", "/bin/true"}, {"/proc/self/exe", "/bin/true", "true"}, {"", "/bin/true", "true"}, {"3x", "/bin/true", "true"}} {
				if code, out, report := run(args...); code != 127 || out != "" || len(report) != 0 {
					t.Errorf("argv %q: exit %d, stdout %q, report %q", args, code, out, report)
				}
			}
		})
	}
}

// archProgram writes image, a program for goarch, to a file named name
// and returns its path and, where goarch is not the machine's, the
// qemu-user emulator to run it with; without one the test is skipped.
func archProgram(t *testing.T, goarch, name string, image []byte) (path, emulator string) {
	t.Helper()
	if goarch != runtime.GOARCH {
		qemu := map[string]string{"amd64": "qemu-x86_64-static", "arm64": "qemu-aarch64-static"}[goarch]
		var err error
		if emulator, err = exec.LookPath(qemu); err != nil {
			t.Skipf("the %s %s needs %s (Debian's qemu-user-static) on %s", goarch, name, qemu, runtime.GOARCH)
		}
	}
	path = filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, image, 0o755); err != nil {
		t.Fatal(err)
	}
	return path, emulator
}

// TestProcScriptInterpreterIsTheTrampoline: a Proc whose program is a
// #!/proc/self/exe script (CVE-2019-5736) gets the trampoline as its
// interpreter, which refuses to run as one, never the runtime's binary
// (here the test binary, which would run its tests again).
func TestProcScriptInterpreterIsTheTrampoline(t *testing.T) {
	requireRoot(t)
	script := filepath.Join(t.TempDir(), "evil")
	if err := os.WriteFile(script, []byte("#!/proc/self/exe\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	p, err := Start(&Attr{
		Argv: []string{"evil"}, Files: []int{-1, int(w.Fd()), int(w.Fd())}, CgroupFD: -1,
		Proc: &Proc{Path: script, Cwd: "/", TTY: -1, Umask: 0o22, CloseFrom: 3},
	})
	w.Close()
	if err != nil {
		t.Fatal(err)
	}
	out, _ := readAll(r)
	if ws := wait(t, p); ws.ExitStatus() != 127 || out != "" {
		t.Errorf("%s: %v, output %q; want exit 127 from the trampoline and no output", script, ws, out)
	}
}
