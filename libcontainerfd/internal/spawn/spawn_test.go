package spawn

import (
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func openExe(t *testing.T, path string) int {
	t.Helper()
	fd, err := unix.Open(path, unix.O_PATH|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	return fd
}

func wait(t *testing.T, p *Process) unix.WaitStatus {
	t.Helper()
	var ws unix.WaitStatus
	if _, err := unix.Wait4(p.Pid, &ws, 0, nil); err != nil {
		t.Fatal(err)
	}
	unix.Close(p.Pidfd)
	return ws
}

// run starts sh -c script and returns its stdout.
func run(t *testing.T, a Attr, script string) string {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	a.ExecFD = openExe(t, "/bin/sh")
	a.Argv = []string{"sh", "-c", script}
	a.Env = []string{"PATH=/usr/bin:/bin"}
	a.Files = []int{-1, int(w.Fd()), int(os.Stderr.Fd())}
	if a.CgroupFD == 0 {
		a.CgroupFD = -1
	}
	p, err := Start(&a)
	w.Close()
	if err != nil {
		t.Fatal(err)
	}
	out, _ := readAll(r)
	if ws := wait(t, p); ws.ExitStatus() != 0 {
		t.Fatalf("exit %v, output %q", ws, out)
	}
	return out
}

func readAll(f *os.File) (string, error) {
	var sb strings.Builder
	buf := make([]byte, 4096)
	for {
		n, err := f.Read(buf)
		sb.Write(buf[:n])
		if err != nil {
			return sb.String(), nil
		}
	}
}

func requireRoot(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root")
	}
}

func TestNewNamespacesAndUserMap(t *testing.T) {
	requireRoot(t)
	out := run(t, Attr{
		Cloneflags: unix.CLONE_NEWUSER | unix.CLONE_NEWPID | unix.CLONE_NEWNS | unix.CLONE_NEWUTS | unix.CLONE_NEWIPC | unix.CLONE_NEWNET | unix.CLONE_NEWCGROUP | unix.CLONE_NEWTIME,
		UIDMap:     "0 100000 65536\n",
		GIDMap:     "0 100000 65536\n",
	}, `echo $$; cat /proc/self/uid_map; for n in user pid mnt uts ipc net cgroup time; do readlink /proc/self/ns/$n; done`)
	lines := strings.Fields(out)
	if lines[0] != "1" {
		t.Errorf("pid in new pid ns = %s, want 1", lines[0])
	}
	if strings.Join(lines[1:4], " ") != "0 100000 65536" {
		t.Errorf("uid_map = %q", lines[1:4])
	}
	for _, l := range lines[4:] {
		n := strings.SplitN(l, ":", 2)[0]
		if n == "pid" {
			continue // /proc is still the host's
		}
		mine, _ := os.Readlink("/proc/self/ns/" + n)
		if l == mine {
			t.Errorf("namespace %s not new: %s", n, l)
		}
	}
}

func TestJoinNamespacesOfAnotherProcess(t *testing.T) {
	requireRoot(t)
	flags := uint64(unix.CLONE_NEWUSER | unix.CLONE_NEWPID | unix.CLONE_NEWNS | unix.CLONE_NEWUTS | unix.CLONE_NEWIPC | unix.CLONE_NEWNET | unix.CLONE_NEWCGROUP | unix.CLONE_NEWTIME)
	target, err := Start(&Attr{
		ExecFD:     openExe(t, "/bin/sleep"),
		Argv:       []string{"sleep", "100"},
		Cloneflags: flags,
		UIDMap:     "0 200000 1000\n",
		GIDMap:     "0 200000 1000\n",
		CgroupFD:   -1,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		unix.PidfdSendSignal(target.Pidfd, unix.SIGKILL, nil, 0)
		wait(t, target)
	}()
	out := run(t, Attr{Join: []Namespace{{FD: target.Pidfd, Flags: int(flags)}}},
		`for n in user pid_for_children mnt uts ipc net cgroup time; do readlink /proc/self/ns/$n; done`)
	got := strings.Fields(out)
	for i, n := range []string{"user", "pid", "mnt", "uts", "ipc", "net", "cgroup", "time"} {
		want, err := os.Readlink("/proc/" + itoa(target.Pid) + "/ns/" + n)
		if err != nil {
			t.Fatal(err)
		}
		if got[i] != want {
			t.Errorf("%s: joined %s, want %s", n, got[i], want)
		}
	}
}

func TestExecFailureIsReported(t *testing.T) {
	requireRoot(t)
	fd := openExe(t, "/etc/hostname") // not executable
	_, err := Start(&Attr{ExecFD: fd, Argv: []string{"x"}, CgroupFD: -1})
	if err == nil || !strings.Contains(err.Error(), "execveat") {
		t.Fatalf("err = %v, want an execveat error", err)
	}
}

func itoa(i int) string { return strconv.Itoa(i) }

// TestPidfdSurvivesStackMove: the kernel writes the pidfd through an address
// given to clone3 as an integer, while the caller's goroutine waits for the
// thread that clones; a garbage collection may move (shrink) that
// goroutine's stack meanwhile. The pidfd must still reach the caller.
func TestPidfdSurvivesStackMove(t *testing.T) {
	requireRoot(t)
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		for {
			select {
			case <-stop:
				return
			default:
				runtime.GC()
			}
		}
	}()
	fd := openExe(t, "/bin/true")
	for i := range 200 {
		deep(64, func() {}) // a large stack, mostly unused: one to shrink
		p, err := Start(&Attr{ExecFD: fd, Argv: []string{"true"}, CgroupFD: -1})
		if err != nil {
			t.Fatal(err)
		}
		if p.Pidfd < 0 {
			t.Fatalf("start %d: pidfd %d, want one", i, p.Pidfd)
		}
		wait(t, p)
	}
}

// deep calls f under n frames of 1 KiB each.
func deep(n int, f func()) byte {
	var pad [1 << 10]byte
	if n == 0 {
		f()
		return pad[n]
	}
	return deep(n-1, f) + pad[n&0xff]
}
