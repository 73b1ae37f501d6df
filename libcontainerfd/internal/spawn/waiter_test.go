package spawn

import (
	"bytes"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestWaiter runs each architecture's waiter as a program of its own, as
// TestTrampoline does: it waits while its holder holds the pipe, also
// through a byte written to it, and execs the program when the holder
// closes it.
func TestWaiter(t *testing.T) {
	for goarch, arch := range waiters {
		t.Run(goarch, func(t *testing.T) {
			path, emulator := archProgram(t, goarch, "waiter", staticELF(arch.machine, arch.code))
			sh, err := os.Open("/bin/sh")
			if err != nil {
				t.Fatal(err)
			}
			defer sh.Close()
			var trace bytes.Buffer
			// start runs the waiter with args, the read end of a pipe as fd
			// 3 and /bin/sh as fd 4; it returns the pipe's write end.
			start := func(args ...string) (*exec.Cmd, *bytes.Buffer, *os.File) {
				t.Helper()
				r, w, err := os.Pipe()
				if err != nil {
					t.Fatal(err)
				}
				defer r.Close()
				cmd := &exec.Cmd{Path: path, Args: args, Env: []string{"X=from-env"}}
				if emulator != "" {
					// -strace: qemu-user 7.2 has no execveat; its trace
					// shows the call the waiter made.
					cmd.Path, cmd.Args = emulator, append([]string{emulator, "-strace", "-0", args[0], path}, args[1:]...)
				}
				var out bytes.Buffer
				cmd.Stdout, cmd.Stderr, cmd.ExtraFiles = &out, &trace, []*os.File{r, sh}
				if err := cmd.Start(); err != nil {
					t.Fatal(err)
				}
				return cmd, &out, w
			}

			cmd, out, w := start("waiter", "sh", "-c", `echo "$0 $1 $X"`, "zero", "one")
			exited := make(chan error, 1)
			go func() { exited <- cmd.Wait() }()
			if _, err := w.Write([]byte{1}); err != nil {
				t.Fatal(err)
			}
			select {
			case err := <-exited:
				t.Fatalf("the waiter left while its holder held the pipe: %v, stdout %q", err, out)
			case <-time.After(300 * time.Millisecond):
			}
			w.Close()
			err = <-exited
			if emulator != "" && strings.Contains(trace.String(), "execveat(4,") && strings.Contains(trace.String(), ",4096,0) = -1 errno=38") {
				t.Logf("%s has no execveat: the waiter called it with fd 4 and AT_EMPTY_PATH once its holder went", emulator)
			} else if err != nil || out.String() != "zero one from-env\n" {
				t.Errorf("after the holder went: %v, stdout %q, want the program's", err, out)
			}

			// Without a program's argv: exit 127 at once.
			cmd, out, w = start("waiter")
			defer w.Close()
			if err := cmd.Wait(); cmd.ProcessState.ExitCode() != 127 || out.Len() != 0 {
				t.Errorf("argv [waiter]: %v, stdout %q, want exit 127", err, out)
			}
		})
	}
}
