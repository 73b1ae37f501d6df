package libcontainerfd_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	cfd "github.com/containerfd/containerfd/libcontainerfd"
	"github.com/containerfd/containerfd/libcontainerfd/internal/spawn"
	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// bothWays runs f once with processes started directly and once through
// the stage (Config.AlwaysStage, which f sets from stage), each in a
// subtest of its own.
func bothWays(t *testing.T, f func(t *testing.T, stage bool)) {
	t.Run("direct", func(t *testing.T) { f(t, false) })
	t.Run("stage", func(t *testing.T) { f(t, true) })
}

// identityScript prints what a process's identity steps set.
const identityScript = `umask; pwd
grep -E '^(Uid|Gid|Groups|Cap...|NoNewPrivs|Seccomp|Cpus_allowed_list):' /proc/self/status
grep -E '^policy' /proc/self/sched; cat /proc/self/personality; ulimit -n; ionice; ls /proc/self/fd`

// identityProcess is one process definition with every identity step set.
func identityProcess(o *output, nnp bool) *cfd.Process {
	p := proc(o, "sh", "-c", identityScript)
	umask, ioprio := uint32(0o027), 2<<13|5 // best effort, level 5
	p.Umask, p.Cwd = &umask, "/tmp"
	p.UID, p.GID, p.AdditionalGids = 1000, 1001, []uint32{5, 7}
	p.NoNewPrivileges = nnp
	p.Scheduler = &unix.SchedAttr{Size: unix.SizeofSchedAttr, Policy: 3} // SCHED_BATCH
	p.IOPriority = &ioprio
	p.CPUAffinity = &cfd.CPUAffinity{Final: "0"}
	p.Rlimits = []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Soft: 512, Hard: 512}}
	kill := []string{"CAP_KILL"}
	p.Capabilities = &specs.LinuxCapabilities{Bounding: []string{"CAP_KILL", "CAP_CHOWN"},
		Effective: kill, Permitted: kill, Inheritable: kill, Ambient: kill}
	return p
}

// identityConfig is a container whose processes have a seccomp filter
// and a personality.
func (e *env) identityConfig() *cfd.Config {
	cfg := e.config()
	cfg.Mounts = append(cfg.Mounts, devNull())
	pers := uint(0x0040000) // ADDR_NO_RANDOMIZE
	cfg.Personality = &pers
	cfg.Seccomp = &specs.LinuxSeccomp{DefaultAction: specs.ActAllow,
		Syscalls: []specs.LinuxSyscall{{Names: []string{"mbind"}, Action: specs.ActErrno}}}
	return cfg
}

// A process sees the same identity, as init (seccomp before the
// capabilities go) and exec'd (with no_new_privs: seccomp last), whether
// it started directly or through the stage.
func TestProcessSameDirectAndStage(t *testing.T) {
	seen := map[string]map[string]string{"init": {}, "exec": {}}
	bothWays(t, func(t *testing.T, stage bool) {
		way := filepath.Base(t.Name())
		t.Run("init", func(t *testing.T) {
			e := newEnv(t)
			cfg := e.identityConfig()
			cfg.AlwaysStage = stage
			c := e.create(cfg)
			o := newOutput(t)
			p := identityProcess(o, false)
			if err := c.ForkInit(p); err != nil {
				o.collect()
				t.Fatalf("ForkInit: %v", err)
			}
			if err := c.Start(); err != nil {
				o.collect()
				p.Wait()
				t.Fatalf("Start: %v", err)
			}
			p.Wait()
			seen["init"][way] = o.collect()
			// The way taken is the way asked for.
			st, err := os.ReadFile(filepath.Join(e.root, c.ID(), "state.json"))
			if err != nil || strings.Contains(string(st), `"directInit":true`) != (way == "direct") {
				t.Errorf("%s: state %s %v", way, st, err)
			}
		})
		t.Run("exec", func(t *testing.T) {
			e := newEnv(t)
			cfg := e.identityConfig()
			cfg.AlwaysStage = stage
			c := e.create(cfg)
			e.startSleeping(c)
			o := newOutput(t)
			p := identityProcess(o, true)
			if err := c.Exec(p); err != nil {
				o.collect()
				t.Fatalf("Exec: %v", err)
			}
			p.Wait()
			seen["exec"][way] = o.collect()
		})
	})
	for what, outs := range seen {
		if outs["direct"] != outs["stage"] {
			t.Errorf("%s: the process saw, started directly:\n%s\nthrough the stage:\n%s", what, outs["direct"], outs["stage"])
		}
		if err := containsAll(outs["stage"], "0027\n/tmp\n", "Uid:\t1000\t1000\t1000\t1000", "Groups:\t5 7",
			"CapAmb:\t0000000000000020", "Seccomp:\t2", "Cpus_allowed_list:\t0\n", "00040000\n512\n", "prio 5"); err != nil {
			t.Errorf("%s: %v in:\n%s", what, err, outs["stage"])
		}
	}
}

// A failed step is worded the same, and is the same *spawn.ChildError
// beneath, whichever way the process started: exec'd, or init at start.
func TestStepErrorSameDirectAndStage(t *testing.T) {
	cases := []struct {
		name string
		set  func(p *cfd.Process)
		step string
		err  error
		// execOnly: init's missing cwd is made, as runc makes it.
		execOnly bool
	}{
		{"cwd", func(p *cfd.Process) { p.Cwd = "/no/such/dir" }, spawn.StepCwd, unix.ENOENT, true},
		{"sched", func(p *cfd.Process) {
			p.Scheduler = &unix.SchedAttr{Size: unix.SizeofSchedAttr, Policy: 1, Priority: 1000} // SCHED_FIFO
		}, "set scheduler", unix.EINVAL, false},
		{"execve", func(p *cfd.Process) { p.Args = []string{"/notelf"} }, spawn.StepExecve, unix.ENOEXEC, false},
	}
	seen := map[string]map[string]string{}
	check := func(t *testing.T, what string, c *cfd.Container, err error, step string, want error) {
		t.Helper()
		var ce *spawn.ChildError
		if !errors.As(err, &ce) || ce.Step != step || !errors.Is(err, want) {
			t.Errorf("%s: %v, want step %q and %v", what, err, step, want)
		}
		if err == nil {
			return
		}
		if seen[what] == nil {
			seen[what] = map[string]string{}
		}
		seen[what][filepath.Base(filepath.Dir(t.Name()))] = strings.ReplaceAll(err.Error(), c.ID(), "ID")
	}
	notELF := func(e *env) {
		if err := os.WriteFile(filepath.Join(e.rootfs, "notelf"), []byte("\x00\x01\x02\x03"), 0o755); err != nil {
			e.t.Fatal(err)
		}
	}
	bothWays(t, func(t *testing.T, stage bool) {
		t.Run("exec", func(t *testing.T) {
			e := newEnv(t)
			notELF(e)
			cfg := e.config()
			cfg.AlwaysStage = stage
			c := e.create(cfg)
			e.startSleeping(c)
			for _, tc := range cases {
				o := newOutput(t)
				p := proc(o, "true")
				tc.set(p)
				err := c.Exec(p)
				o.collect()
				if err == nil {
					p.Wait()
				}
				check(t, "exec "+tc.name, c, err, tc.step, tc.err)
			}
		})
		for _, tc := range cases {
			if tc.execOnly {
				continue
			}
			t.Run(tc.name, func(t *testing.T) {
				e := newEnv(t)
				notELF(e)
				cfg := e.config()
				cfg.AlwaysStage = stage
				c := e.create(cfg)
				o := newOutput(t)
				p := proc(o, "true")
				tc.set(p)
				if err := c.ForkInit(p); err != nil {
					o.collect()
					t.Fatalf("ForkInit: %v", err)
				}
				err := c.Start()
				p.Wait()
				o.collect()
				check(t, "init "+tc.name, c, err, tc.step, tc.err)
			})
		}
	})
	for what, msgs := range seen {
		if msgs["direct"] != msgs["stage"] {
			t.Errorf("%s: started directly: %q; through the stage: %q", what, msgs["direct"], msgs["stage"])
		}
		t.Logf("%s: %s", what, msgs["direct"])
	}
}
