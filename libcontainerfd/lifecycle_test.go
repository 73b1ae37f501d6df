package libcontainerfd_test

import (
	"bufio"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/containerfd/containerfd/internal/testutil"
	cfd "github.com/containerfd/containerfd/libcontainerfd"
	"github.com/containerfd/containerfd/libcontainerfd/internal/spawn"
	"github.com/containerfd/containerfd/libcontainerfd/kernfeat"
	"github.com/containerfd/containerfd/libcontainerfd/mounttree"
	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// helperCmd runs this test binary as another process, in mode.
func helperCmd(t *testing.T, e *env, id, mode string) *exec.Cmd {
	cmd := exec.Command("/proc/self/exe")
	cmd.Env = append(os.Environ(), "CFD_TEST_HELPER="+mode, "CFD_ROOT="+e.root, "CFD_ID="+id,
		"CFD_CGROUP="+e.cgroup, "CFD_ROOTFS="+e.rootfs)
	cmd.Stderr = os.Stderr
	return cmd
}

func runHelper(mode string) int {
	root, id := os.Getenv("CFD_ROOT"), os.Getenv("CFD_ID")
	fail := func(err error) int { fmt.Fprintln(os.Stderr, "helper:", err); return 1 }
	switch mode {
	case "hold":
		// Create a KillOnClose container and hold it until killed.
		c, err := cfd.Create(root, id, &cfd.Config{
			Flags:      cfd.NewEmptyFS | cfd.KillOnClose,
			Namespaces: newNS(unix.CLONE_NEWNS, unix.CLONE_NEWPID),
			Cgroup:     os.Getenv("CFD_CGROUP"),
			Rootfs:     os.Getenv("CFD_ROOTFS"),
			Mounts:     []mounttree.Mount{procMount()},
		})
		if err != nil {
			return fail(err)
		}
		p := &cfd.Process{Args: []string{"sleep", "1000"}, Env: []string{"PATH=/bin"}}
		if err := c.ForkInit(p); err != nil {
			return fail(err)
		}
		if err := c.Start(); err != nil {
			return fail(err)
		}
		fmt.Printf("ready %d\n", p.Pid)
		time.Sleep(time.Hour)
	case "holdgroup":
		// Create two KillOnClose containers with one shared watcher, and
		// hold them until killed.
		w, err := cfd.NewWatcher()
		if err != nil {
			return fail(err)
		}
		var pids []string
		for _, suffix := range []string{"", "-2"} {
			c, err := cfd.Create(root, id+suffix, &cfd.Config{
				Flags:      cfd.NewEmptyFS | cfd.KillOnClose,
				Namespaces: newNS(unix.CLONE_NEWNS, unix.CLONE_NEWPID),
				Cgroup:     os.Getenv("CFD_CGROUP") + suffix,
				Rootfs:     os.Getenv("CFD_ROOTFS"),
				Mounts:     []mounttree.Mount{procMount()},
				Watcher:    w,
			})
			if err != nil {
				return fail(err)
			}
			p := &cfd.Process{Args: []string{"sleep", "1000"}, Env: []string{"PATH=/bin"}}
			if err := c.ForkInit(p); err != nil {
				return fail(err)
			}
			if err := c.Start(); err != nil {
				return fail(err)
			}
			pids = append(pids, strconv.Itoa(p.Pid))
		}
		fmt.Printf("ready %s\n", strings.Join(pids, " "))
		time.Sleep(time.Hour)
	case "exec":
		// Load a container saved by another process and use it.
		c, err := cfd.Load(root, id)
		if err != nil {
			return fail(err)
		}
		st, err := c.Status()
		if err != nil {
			return fail(err)
		}
		p := &cfd.Process{Args: []string{"cat", "/proc/1/cmdline"}, Env: []string{"PATH=/bin"}, Stdout: os.Stdout, Stderr: os.Stderr}
		fmt.Printf("status %s\n", st)
		if err := c.Exec(p); err != nil {
			return fail(err)
		}
		p.Wait()
	}
	return 0
}

func TestKillOnClose(t *testing.T) {
	t.Run("Close", func(t *testing.T) {
		e := newEnv(t)
		cfg := e.config()
		cfg.Flags |= cfd.KillOnClose
		c, err := cfd.Create(e.root, "cfdtest-koc-"+strconv.Itoa(os.Getpid()), cfg)
		if err != nil {
			t.Fatal(err)
		}
		p := &cfd.Process{Args: []string{"sleep", "1000"}, Env: []string{"PATH=/bin"}}
		if err := c.ForkInit(p); err != nil {
			c.Destroy()
			t.Fatal(err)
		}
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		id := c.ID()
		c.Close()
		ws, _ := p.Wait()
		if ws.Signal() != unix.SIGKILL {
			t.Errorf("init after Close: %v, want killed", ws)
		}
		c, err = cfd.Load(e.root, id)
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Destroy(); err != nil {
			t.Error(err)
		}
	})
	t.Run("holder SIGKILLed", func(t *testing.T) {
		e := newEnv(t)
		id := "cfdtest-koc-kill-" + strconv.Itoa(os.Getpid())
		cmd := helperCmd(t, e, id, "hold")
		out, _ := cmd.StdoutPipe()
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if c, err := cfd.Load(e.root, id); err == nil {
				c.Destroy()
			}
		})
		line, err := bufio.NewReader(out).ReadString('\n')
		if err != nil {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("holder: %v", err)
		}
		initPid, _ := strconv.Atoi(strings.TrimSpace(strings.TrimPrefix(line, "ready ")))
		pidfd, err := unix.PidfdOpen(initPid, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer unix.Close(pidfd)
		cmd.Process.Signal(syscall.SIGKILL)
		cmd.Wait()
		fds := []unix.PollFd{{Fd: int32(pidfd), Events: unix.POLLIN}}
		if n, _ := unix.Poll(fds, 5000); n != 1 {
			t.Fatal("container init still alive 5s after its holder was killed")
		}
		c, err := cfd.Load(e.root, id)
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Wait(); err != nil {
			t.Error(err)
		}
		if err := c.Destroy(); err != nil {
			t.Error(err)
		}
	})
}

// One Watcher for many KillOnClose containers: one process, not one per
// container; a container's Close kills it alone, the Watcher's Close kills
// the rest, and the holder's death kills them all.
func TestSharedWatcher(t *testing.T) {
	t.Run("Close", func(t *testing.T) { testSharedWatcherClose(t, true) })
	// Where the kernel runs no memfd, our binary waits instead of the waiter.
	t.Run("Close without waiter", func(t *testing.T) {
		t.Setenv(kernfeat.EnvDisable, spawn.MemfdExec.Name())
		testSharedWatcherClose(t, false)
	})
	t.Run("holder SIGKILLed", func(t *testing.T) {
		e := newEnv(t)
		id := testutil.ID(t)
		cmd := helperCmd(t, e, id, "holdgroup")
		out, _ := cmd.StdoutPipe()
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			for _, cid := range []string{id, id + "-2"} {
				if c, err := cfd.Load(e.root, cid); err == nil {
					c.Destroy()
				}
			}
		})
		line, err := bufio.NewReader(out).ReadString('\n')
		if err != nil {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("holder: %v", err)
		}
		if ws := testutil.Children(cmd.Process.Pid, "containerfd-watch"); len(ws) != 1 {
			t.Errorf("watcher processes for 2 containers: %v, want one", ws)
		}
		var pidfds []int
		for _, f := range strings.Fields(strings.TrimPrefix(strings.TrimSpace(line), "ready ")) {
			pid, _ := strconv.Atoi(f)
			pidfd, err := unix.PidfdOpen(pid, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer unix.Close(pidfd)
			pidfds = append(pidfds, pidfd)
		}
		cmd.Process.Signal(syscall.SIGKILL)
		cmd.Wait()
		for _, pidfd := range pidfds {
			fds := []unix.PollFd{{Fd: int32(pidfd), Events: unix.POLLIN}}
			if n, _ := unix.Poll(fds, 5000); n != 1 {
				t.Error("a container's init still alive 5s after its holder was killed")
			}
		}
	})
}

// testSharedWatcherClose: one watcher process for three containers, which
// sleeps (the waiter where there is one); a container's Close kills it
// alone; a destroyed one leaves the watcher's list, so that its cgroup,
// made again by another, survives the watcher; the watcher's Close kills
// the rest.
func testSharedWatcherClose(t *testing.T, waiter bool) {
	e := newEnv(t)
	if waiter && !spawn.MemfdExec.Available() {
		t.Skipf("the waiter needs %s: %s", spawn.MemfdExec.Name(), spawn.MemfdExec.Doc())
	}
	w, err := cfd.NewWatcher()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	var cs []*cfd.Container
	var ps []*cfd.Process
	for _, suffix := range []string{"", "-2", "-3"} {
		cfg := e.config()
		cfg.Flags |= cfd.KillOnClose
		cfg.Watcher = w
		cfg.Cgroup = e.cgroup + suffix
		c, err := cfd.Create(e.root, testutil.ID(t), cfg)
		if err != nil {
			t.Fatal(err)
		}
		id := c.ID()
		t.Cleanup(func() {
			if c, err := cfd.Load(e.root, id); err == nil {
				if err := c.Destroy(); err != nil {
					t.Error(err)
				}
			}
		})
		p := &cfd.Process{Args: []string{"sleep", "1000"}, Env: []string{"PATH=/bin"}}
		if err := c.ForkInit(p); err != nil {
			t.Fatal(err)
		}
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		cs, ps = append(cs, c), append(ps, p)
	}
	ws := testutil.Children(os.Getpid(), "containerfd-watch")
	if len(ws) != 1 {
		t.Fatalf("watcher processes for 3 containers: %v, want one", ws)
	}
	if err := cs[1].Freeze(); err != nil {
		t.Fatal(err)
	}
	if err := cs[1].Thaw(); err != nil {
		t.Fatal(err)
	}
	checkIdle(t, ws[0])
	exe, _ := os.Readlink(fmt.Sprintf("/proc/%d/exe", ws[0]))
	if strings.HasPrefix(exe, "/memfd:containerfd-wait") != waiter {
		t.Errorf("the watcher runs %s; the waiter expected: %v", exe, waiter)
	}
	watcherFD, err := unix.PidfdOpen(ws[0], 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(watcherFD)
	if err := cs[0].Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if ws, _ := ps[0].Wait(); ws.Signal() != unix.SIGKILL {
		t.Errorf("init after its container's Close: %v, want killed", ws)
	}
	for _, c := range cs[1:] {
		if st, err := c.Status(); err != nil || st != cfd.Running {
			t.Errorf("another container after one's Close: %v, %v", st, err)
		}
	}
	if err := cs[2].Destroy(); err != nil {
		t.Fatal(err)
	}
	ps[2].Wait()
	cfg := e.config()
	cfg.Cgroup = e.cgroup + "-3"
	other := e.create(cfg)
	e.startSleeping(other)

	if err := w.Close(); err != nil {
		t.Error(err)
	}
	if ws, _ := ps[1].Wait(); ws.Signal() != unix.SIGKILL {
		t.Errorf("init after the watcher's Close: %v, want killed", ws)
	}
	if n, _ := unix.Poll([]unix.PollFd{{Fd: int32(watcherFD), Events: unix.POLLIN}}, 5000); n != 1 {
		t.Fatal("the watcher still there 5s after its Close")
	}
	if st, err := other.Status(); err != nil || st != cfd.Running {
		t.Errorf("a container in the cgroup of one destroyed before the watcher's Close: %v, %v; want running", st, err)
	}
	cs[1].Close()
}

// The watcher of a KillOnClose container sleeps until its holder goes or
// the cgroup empties: a change of cgroup.events that is neither (here the
// cgroup frozen and thawed) must not leave its poll ready for good, which
// made it spin at full CPU (the shim holds every container so).
func TestKillOnCloseWatcherIdle(t *testing.T) {
	e := newEnv(t)
	cfg := e.config()
	cfg.Flags |= cfd.KillOnClose
	c := e.create(cfg)
	e.startSleeping(c)
	watcher := 0
	dirs, _ := os.ReadDir("/proc")
	for _, d := range dirs {
		pid, err := strconv.Atoi(d.Name())
		if err != nil {
			continue
		}
		cmd, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if strings.HasPrefix(string(cmd), "containerfd-watch\x00") && strings.Contains(string(cmd), e.cgroup+"\"") {
			watcher = pid
		}
	}
	if watcher == 0 {
		t.Fatal("no watcher process for the container")
	}
	if err := c.Freeze(); err != nil {
		t.Fatal(err)
	}
	if err := c.Thaw(); err != nil {
		t.Fatal(err)
	}
	checkIdle(t, watcher)
}

// checkIdle checks that the watcher pid takes no CPU for a second: a
// sleeping watcher takes none, a spinning one all it can get (100 clock
// ticks a second on one core).
func checkIdle(t *testing.T, pid int) {
	t.Helper()
	// CPU time in clock ticks (utime + stime, /proc/PID/stat fields 14-15).
	ticks := func() int {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			t.Fatalf("watcher: %v", err)
		}
		f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
		u, _ := strconv.Atoi(f[11])
		s, _ := strconv.Atoi(f[12])
		return u + s
	}
	before := ticks()
	time.Sleep(time.Second)
	if used := ticks() - before; used > 10 {
		t.Errorf("the watcher used %d clock ticks of CPU in a second after a cgroup.events change: it spins", used)
	}
}

// A container saved by one process works in another; a reused pid is
// recognised as not the container's init.
func TestSaveLoad(t *testing.T) {
	for _, disable := range []string{"", "pidfs-handle"} {
		t.Run("disable="+disable, func(t *testing.T) {
			t.Setenv("CONTAINERFD_DISABLE", disable)
			e := newEnv(t)
			c := e.create(e.config())
			e.startSleeping(c)
			out, err := helperCmd(t, e, c.ID(), "exec").Output()
			if err != nil {
				t.Fatalf("helper: %v: %s", err, out)
			}
			if got := strings.ReplaceAll(string(out), "\x00", " "); got != "status running\nsleep 1000 " {
				t.Errorf("from another process: %q", got)
			}

			// Point the saved init at a live process that is not it.
			stranger := exec.Command("sleep", "1000")
			if err := stranger.Start(); err != nil {
				t.Fatal(err)
			}
			defer func() { stranger.Process.Kill(); stranger.Wait() }()
			statePath := filepath.Join(c.Dir(), "state.json")
			orig, _ := os.ReadFile(statePath)
			var st map[string]any
			json.Unmarshal(orig, &st)
			st["init"].(map[string]any)["pid"] = stranger.Process.Pid
			forged, _ := json.Marshal(st)
			os.WriteFile(statePath, forged, 0o600)
			defer os.WriteFile(statePath, orig, 0o600)
			d, err := cfd.Load(e.root, c.ID())
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			if s, _ := d.Status(); s != cfd.Stopped {
				t.Errorf("status with a reused pid = %s, want stopped", s)
			}
			if err := d.Signal(unix.SIGKILL); err == nil {
				t.Error("Signal reached a process that reused init's pid")
			}
		})
	}
}

// CVE-2019-5736: a process in the container keeps init's exe (our binary)
// open and writes to it after init has exec'd. A direct init (our fork,
// until start) is not dumpable, so its exe cannot be opened; a stage runs
// from a read-only bind, or a sealed memfd copy.
func TestCannotOverwriteRuntimeBinary(t *testing.T) {
	someCaps := &specs.LinuxCapabilities{Bounding: []string{"CAP_KILL", "CAP_CHOWN"}, Effective: []string{"CAP_KILL"}, Permitted: []string{"CAP_KILL"}}
	for _, tc := range []struct {
		name, disable string
		stage         bool
		caps          *specs.LinuxCapabilities
		direct        bool
	}{
		{"direct", "", false, someCaps, true},
		{"stage", "", true, nil, false},
		{"memfd", "exe-bind", true, nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("CONTAINERFD_DISABLE", tc.disable)
			before := hashFile(t, "/proc/self/exe")
			e := newEnv(t)
			cfg := e.config()
			cfg.AlwaysStage = tc.stage
			c := e.create(cfg)
			p := &cfd.Process{Args: []string{"sleep", "1000"}, Env: []string{"PATH=/bin"}, Capabilities: tc.caps}
			if err := c.ForkInit(p); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { c.KillAll(); p.Wait() })
			comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", p.Pid))
			if direct := string(comm) == "containerfd-ini\n"; direct != tc.direct {
				t.Fatalf("init's comm %q: direct %v, want %v", comm, direct, tc.direct)
			}
			o := newOutput(t)
			attacker := proc(o, "sh", "-c", `if ! (exec 3</proc/1/exe) 2>/dev/null; then echo DENIED; exit; fi
				exec 3</proc/1/exe
				while grep -q containerfd-init /proc/1/cmdline || grep -qx containerfd-ini /proc/1/comm; do sleep 0.05; done
				echo owned >>/proc/self/fd/3 && echo WROTE || echo DENIED`)
			attacker.Capabilities = tc.caps
			if err := c.Exec(attacker); err != nil {
				t.Fatal(err)
			}
			time.Sleep(100 * time.Millisecond)
			if err := c.Start(); err != nil {
				t.Fatal(err)
			}
			attacker.Wait()
			if out := o.collect(); !strings.Contains(out, "DENIED") {
				t.Errorf("attacker: %q", out)
			}
			if hashFile(t, "/proc/self/exe") != before {
				t.Fatal("the runtime binary was changed")
			}
		})
	}
}

// A process that may hold CAP_SYS_PTRACE (here: all of root's
// capabilities) could open a direct init's exe: it may not join before
// start, and once it has run, nothing of the container starts directly.
func TestPtraceCapableProcessesAndDirectStart(t *testing.T) {
	someCaps := &specs.LinuxCapabilities{Bounding: []string{"CAP_KILL"}, Effective: []string{"CAP_KILL"}, Permitted: []string{"CAP_KILL"}}
	e := newEnv(t)
	c := e.create(e.config())
	p := &cfd.Process{Args: []string{"sleep", "1000"}, Env: []string{"PATH=/bin"}, Capabilities: someCaps}
	if err := c.ForkInit(p); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.KillAll(); p.Wait() })
	err := c.Exec(&cfd.Process{Args: []string{"true"}, Env: []string{"PATH=/bin"}})
	if err == nil || !strings.Contains(err.Error(), "CVE-2019-5736") {
		t.Fatalf("exec of an all-capabilities process before start: %v", err)
	}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	// After start it may, and is recorded: from then on nothing of the
	// container starts directly.
	if _, err := os.Stat(filepath.Join(c.Dir(), "ptrace-host")); err == nil {
		t.Fatal("marked before any such process ran")
	}
	x := &cfd.Process{Args: []string{"true"}, Env: []string{"PATH=/bin"}}
	if err := c.Exec(x); err != nil {
		t.Fatal(err)
	}
	x.Wait()
	if _, err := os.Stat(filepath.Join(c.Dir(), "ptrace-host")); err != nil {
		t.Errorf("not recorded: %v", err)
	}
}

func hashFile(t *testing.T, path string) string {
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	io.Copy(h, f)
	return fmt.Sprintf("%x", h.Sum(nil))
}

// Errors name the step and the object.
func TestErrorsNameStepAndObject(t *testing.T) {
	e := newEnv(t)
	cfg := e.config()
	cfg.Mounts = append(cfg.Mounts, mounttree.Mount{Type: "bind", Source: "/nonexistent-cfdtest", Target: "/mnt"})
	c := e.create(cfg)
	err := c.ForkInit(&cfd.Process{Args: []string{"true"}, Env: []string{"PATH=/bin"}})
	if err == nil || !strings.Contains(err.Error(), "/nonexistent-cfdtest") || !strings.Contains(err.Error(), c.ID()) {
		t.Errorf("bad bind source: %v", err)
	}
	if _, err := cfd.Load(e.root, "cfdtest-nothere"); err == nil || !strings.Contains(err.Error(), "does not exist") {
		t.Errorf("Load of a missing container: %v", err)
	}
}
