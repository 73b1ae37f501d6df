package cgroups

import (
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// Tests of Set and Stats on the host's own cgroups. This host has the v1
// controllers, so the writes are checked on the real kernel in V1 and Hybrid
// modes; a cgroup2 without controllers (forced V2 here) must refuse clearly.

const unlimitedV1 = "9223372036854771712" // v1's "no limit", 4 KiB pages

// forV1Modes runs fn in V1 and Hybrid modes, if the host has the v1
// controllers Set writes.
func forV1Modes(t *testing.T, fn func(t *testing.T, mode Mode)) {
	requireRoot(t)
	for _, m := range []Mode{Hybrid, V1} {
		t.Run(m.String(), func(t *testing.T) {
			t.Setenv(EnvMode, m.String())
			l, err := detect()
			if err != nil {
				t.Skipf("cgroup mode %v not available on this host: %v", m, err)
			}
			have := map[string]bool{}
			for _, h := range l.v1 {
				for _, k := range h.keys {
					have[k] = true
				}
			}
			for _, k := range []string{"memory", "cpu", "cpuacct", "cpuset", "pids"} {
				if !have[k] {
					t.Skipf("no v1 %s hierarchy", k)
				}
			}
			fn(t, m)
		})
	}
}

// get reads a cgroup file of c, from the directory of its controller.
func get(t *testing.T, c *Cgroup, file string) string {
	t.Helper()
	ctrl, _, _ := strings.Cut(file, ".")
	s, err := readFile(c.Paths()[ctrl], file)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(s)
}

// check compares cgroup files with want.
func check(t *testing.T, c *Cgroup, step string, want map[string]string) {
	t.Helper()
	for f, w := range want {
		if got := get(t, c, f); got != w {
			t.Errorf("%s: %s = %q, want %q", step, f, got, w)
		}
	}
}

func set(t *testing.T, c *Cgroup, r *specs.LinuxResources) {
	t.Helper()
	if err := c.Set(r); err != nil {
		t.Fatal(err)
	}
}

// refused checks that writing val to file of c, alone, fails with EINVAL:
// that the order Set picks is the only one that works.
func refused(t *testing.T, c *Cgroup, file, val string) {
	t.Helper()
	ctrl, _, _ := strings.Cut(file, ".")
	if err := writeFile(c.Paths()[ctrl], file, val); !errors.Is(err, unix.EINVAL) {
		t.Errorf("writing %s=%s on its own: %v, want EINVAL (else this step does not test the order)", file, val, err)
	}
}

// waitCmd waits for cmd to exit, at most d.
func waitCmd(t *testing.T, cmd *exec.Cmd, d time.Duration) *os.ProcessState {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
		return cmd.ProcessState
	case <-time.After(d):
		cmd.Process.Kill()
		<-done
		t.Fatalf("%v still running after %v", cmd.Args, d)
	}
	return nil
}

// killAll kills every process in c and waits for it to be empty, so that
// testParent's cleanup finds nothing.
func killAll(t *testing.T, c *Cgroup) {
	t.Helper()
	if err := c.Kill(); err != nil {
		t.Fatal(err)
	}
	waitEmpty(t, c, time.Now())
}

// TestSetV1Limits: every v1 file Set writes, read back, through a first
// setting, an update down, an update up and back to unlimited; the memory
// steps need memory first going down and memsw first going up, which is
// checked by trying the other order.
func TestSetV1Limits(t *testing.T) {
	forV1Modes(t, func(t *testing.T, mode Mode) {
		c := create(t, testParentNamed(t, "res")+"/ctr")
		set(t, c, &specs.LinuxResources{
			Memory: &specs.LinuxMemory{Limit: ptr[int64](64 * mi), Reservation: ptr[int64](32 * mi), Swap: ptr[int64](128 * mi),
				Swappiness: ptr[uint64](10), DisableOOMKiller: ptr(false), Kernel: ptr[int64](mi)},
			CPU: &specs.LinuxCPU{Shares: ptr[uint64](512), Quota: ptr[int64](50000), Period: ptr[uint64](100000),
				Burst: ptr[uint64](10000), Cpus: "0", Mems: "0", Idle: ptr[int64](0)},
			Pids:    &specs.LinuxPids{Limit: ptr[int64](10)},
			Devices: []specs.LinuxDeviceCgroup{{Allow: false, Access: "rwm"}},
		})
		check(t, c, "create", map[string]string{
			"memory.limit_in_bytes": "67108864", "memory.memsw.limit_in_bytes": "134217728",
			"memory.soft_limit_in_bytes": "33554432", "memory.swappiness": "10",
			"cpu.shares": "512", "cpu.cfs_quota_us": "50000", "cpu.cfs_period_us": "100000", "cpu.cfs_burst_us": "10000",
			"cpu.idle": "0", "cpuset.cpus": "0", "cpuset.mems": "0", "pids.max": "10",
		})
		if oc := get(t, c, "memory.oom_control"); !strings.HasPrefix(oc, "oom_kill_disable 0") {
			t.Errorf("memory.oom_control: %q", oc)
		}

		// Down: memsw 48 MiB is below the current memory limit 64 MiB.
		refused(t, c, "memory.memsw.limit_in_bytes", "50331648")
		cpus := "0"
		if runtime.NumCPU() > 1 {
			cpus = "1"
		}
		set(t, c, &specs.LinuxResources{
			Memory: &specs.LinuxMemory{Limit: ptr[int64](32 * mi), Swap: ptr[int64](48 * mi), Reservation: ptr[int64](16 * mi)},
			CPU:    &specs.LinuxCPU{Shares: ptr[uint64](256), Quota: ptr[int64](20000), Period: ptr[uint64](50000), Burst: ptr[uint64](0), Cpus: cpus},
			Pids:   &specs.LinuxPids{Limit: ptr[int64](5)},
		})
		check(t, c, "down", map[string]string{
			"memory.limit_in_bytes": "33554432", "memory.memsw.limit_in_bytes": "50331648",
			"memory.soft_limit_in_bytes": "16777216", "memory.swappiness": "10",
			"cpu.shares": "256", "cpu.cfs_quota_us": "20000", "cpu.cfs_period_us": "50000", "cpu.cfs_burst_us": "0",
			"cpuset.cpus": cpus, "cpuset.mems": "0", "pids.max": "5",
		})

		// Up: memory 256 MiB is above the current memsw 48 MiB.
		refused(t, c, "memory.limit_in_bytes", "268435456")
		set(t, c, &specs.LinuxResources{
			Memory: &specs.LinuxMemory{Limit: ptr[int64](256 * mi), Swap: ptr[int64](512 * mi), DisableOOMKiller: ptr(true)},
			CPU:    &specs.LinuxCPU{Quota: ptr[int64](150000), Period: ptr[uint64](200000)},
			Pids:   &specs.LinuxPids{Limit: ptr[int64](0)},
		})
		check(t, c, "up", map[string]string{
			"memory.limit_in_bytes": "268435456", "memory.memsw.limit_in_bytes": "536870912",
			"cpu.cfs_quota_us": "150000", "cpu.cfs_period_us": "200000", "pids.max": "1",
		})
		if oc := get(t, c, "memory.oom_control"); !strings.HasPrefix(oc, "oom_kill_disable 1") {
			t.Errorf("memory.oom_control: %q", oc)
		}

		// Unlimited: -1 everywhere.
		set(t, c, &specs.LinuxResources{
			Memory: &specs.LinuxMemory{Limit: ptr[int64](-1), Reservation: ptr[int64](-1), DisableOOMKiller: ptr(false)},
			CPU:    &specs.LinuxCPU{Quota: ptr[int64](-1), Period: ptr[uint64](100000), Cpus: "0-" + strconv.Itoa(runtime.NumCPU()-1)},
			Pids:   &specs.LinuxPids{Limit: ptr[int64](-1)},
		})
		check(t, c, "unlimited", map[string]string{
			"memory.limit_in_bytes": unlimitedV1, "memory.memsw.limit_in_bytes": unlimitedV1, "memory.soft_limit_in_bytes": unlimitedV1,
			"cpu.cfs_quota_us": "-1", "cpu.cfs_period_us": "100000", "pids.max": "max",
		})

		// Errors name the field or the file, value and directory.
		for _, tc := range []struct {
			r    *specs.LinuxResources
			want string
		}{
			{mem(specs.LinuxMemory{Limit: ptr[int64](64 * mi), Swap: ptr[int64](32 * mi)}), "linux.resources.memory.swap (memory+swap) 33554432 is below"},
			{mem(specs.LinuxMemory{Swappiness: ptr[uint64](200)}), "linux.resources.memory.swappiness: 200"},
			{cpu(specs.LinuxCPU{Cpus: "4096"}), "cgroups: set cpuset.cpus to 4096 in " + c.Paths()["cpuset"] + ": "},
			{cpu(specs.LinuxCPU{Period: ptr[uint64](10)}), "cgroups: set cpu.cfs_period_us to 10 in " + c.Paths()["cpu"] + ": invalid argument"},
			{&specs.LinuxResources{Unified: map[string]string{"memory.high": "1"}}, "linux.resources.unified: cgroup v2 files cannot be set in " + mode.String() + " cgroup mode"},
		} {
			err := c.Set(tc.r)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Set: %v, want an error with %q", err, tc.want)
			}
		}
		// The memory limit cannot rise above memory+swap unless swap is given.
		set(t, c, mem(specs.LinuxMemory{Limit: ptr[int64](64 * mi), Swap: ptr[int64](64 * mi)}))
		if err := c.Set(mem(specs.LinuxMemory{Limit: ptr[int64](128 * mi)})); err == nil || !strings.Contains(err.Error(), "set linux.resources.memory.swap too") {
			t.Errorf("limit above memsw: %v", err)
		}
	})
}

// TestSetV1CPUOrder: under a parent with a CFS quota, changing a child's
// quota and period at the same ratio works only in one order each way
// (checked by trying the other); likewise for burst against quota, the
// real-time runtime and period under a parent's RT budget, and the weight of
// an idle cgroup.
func TestSetV1CPUOrder(t *testing.T) {
	forV1Modes(t, func(t *testing.T, mode Mode) {
		c := create(t, testParentNamed(t, "res")+"/ctr")
		parent := filepath.Dir(c.Paths()["cpu"]) // ours: testParentNamed made it
		if err := writeFile(parent, "cpu.cfs_quota_us", "200000"); err != nil {
			t.Fatal(err)
		}

		t.Run("quota/period", func(t *testing.T) {
			set(t, c, cpu(specs.LinuxCPU{Quota: ptr[int64](150000), Period: ptr[uint64](100000)}))
			refused(t, c, "cpu.cfs_period_us", "10000") // 150000/10000 > parent's 2
			set(t, c, cpu(specs.LinuxCPU{Quota: ptr[int64](15000), Period: ptr[uint64](10000)}))
			check(t, c, "shorter", map[string]string{"cpu.cfs_quota_us": "15000", "cpu.cfs_period_us": "10000"})
			refused(t, c, "cpu.cfs_quota_us", "150000")
			set(t, c, cpu(specs.LinuxCPU{Quota: ptr[int64](150000), Period: ptr[uint64](100000)}))
			check(t, c, "longer", map[string]string{"cpu.cfs_quota_us": "150000", "cpu.cfs_period_us": "100000"})
			set(t, c, cpu(specs.LinuxCPU{Quota: ptr[int64](-1), Period: ptr[uint64](10000)}))
			check(t, c, "unlimited", map[string]string{"cpu.cfs_quota_us": "-1", "cpu.cfs_period_us": "10000"})
			set(t, c, cpu(specs.LinuxCPU{Quota: ptr[int64](150000), Period: ptr[uint64](100000)}))
			check(t, c, "from unlimited", map[string]string{"cpu.cfs_quota_us": "150000", "cpu.cfs_period_us": "100000"})
		})

		t.Run("burst", func(t *testing.T) {
			set(t, c, cpu(specs.LinuxCPU{Quota: ptr[int64](50000), Period: ptr[uint64](100000), Burst: ptr[uint64](0)}))
			set(t, c, cpu(specs.LinuxCPU{Quota: ptr[int64](20000), Burst: ptr[uint64](20000)}))
			check(t, c, "1", map[string]string{"cpu.cfs_quota_us": "20000", "cpu.cfs_burst_us": "20000"})
			refused(t, c, "cpu.cfs_burst_us", "60000") // above the quota
			set(t, c, cpu(specs.LinuxCPU{Quota: ptr[int64](80000), Burst: ptr[uint64](60000)}))
			check(t, c, "2", map[string]string{"cpu.cfs_quota_us": "80000", "cpu.cfs_burst_us": "60000"})
			refused(t, c, "cpu.cfs_quota_us", "10000") // below the burst
			set(t, c, cpu(specs.LinuxCPU{Quota: ptr[int64](10000), Burst: ptr[uint64](5000)}))
			check(t, c, "3", map[string]string{"cpu.cfs_quota_us": "10000", "cpu.cfs_burst_us": "5000"})
		})

		t.Run("idle", func(t *testing.T) {
			set(t, c, cpu(specs.LinuxCPU{Shares: ptr[uint64](1024), Idle: ptr[int64](1)}))
			check(t, c, "idle", map[string]string{"cpu.idle": "1"})
			refused(t, c, "cpu.shares", "2048")
			set(t, c, cpu(specs.LinuxCPU{Shares: ptr[uint64](2048), Idle: ptr[int64](0)}))
			check(t, c, "not idle", map[string]string{"cpu.idle": "0", "cpu.shares": "2048"})
		})

		t.Run("realtime", func(t *testing.T) {
			// Real-time group scheduling is a kernel option that Debian's
			// kernels leave out: then no cgroup has the files.
			if _, err := os.Stat(filepath.Join(parent, "cpu.rt_runtime_us")); errors.Is(err, fs.ErrNotExist) {
				t.Skipf("no cpu.rt_runtime_us in %s: the kernel has no real-time group scheduling (CONFIG_RT_GROUP_SCHED)", parent)
			}
			// The parent needs an RT budget of its own: 10%. The kernel
			// refuses it (EINVAL) where the host has given the root's
			// budget (kernel.sched_rt_runtime_us) to other cgroups.
			if err := writeFile(parent, "cpu.rt_runtime_us", "100000"); errors.Is(err, unix.EINVAL) {
				t.Skipf("the host's real-time budget has no 10%% left for our parent cgroup: %v", err)
			} else if err != nil {
				t.Fatal(err)
			}
			set(t, c, cpu(specs.LinuxCPU{RealtimeRuntime: ptr[int64](50000), RealtimePeriod: ptr[uint64](1000000)}))
			check(t, c, "1", map[string]string{"cpu.rt_runtime_us": "50000", "cpu.rt_period_us": "1000000"})
			refused(t, c, "cpu.rt_period_us", "100000") // 50000/100000 > 10%
			set(t, c, cpu(specs.LinuxCPU{RealtimeRuntime: ptr[int64](5000), RealtimePeriod: ptr[uint64](100000)}))
			check(t, c, "2", map[string]string{"cpu.rt_runtime_us": "5000", "cpu.rt_period_us": "100000"})
			refused(t, c, "cpu.rt_runtime_us", "50000")
			set(t, c, cpu(specs.LinuxCPU{RealtimeRuntime: ptr[int64](50000), RealtimePeriod: ptr[uint64](1000000)}))
			check(t, c, "3", map[string]string{"cpu.rt_runtime_us": "50000", "cpu.rt_period_us": "1000000"})
			set(t, c, cpu(specs.LinuxCPU{RealtimeRuntime: ptr[int64](0)}))
			set(t, c, cpu(specs.LinuxCPU{RealtimePeriod: ptr[uint64](1000000)}))
		})
	})
}

// TestSetV1Pids: pids.max stops forks beyond the limit, and counts them in
// Stats and pids.events; raising it lets them through.
func TestSetV1Pids(t *testing.T) {
	forV1Modes(t, func(t *testing.T, mode Mode) {
		c := create(t, testParentNamed(t, "res")+"/ctr")
		set(t, c, pids(4))
		errFile := filepath.Join(t.TempDir(), "stderr")
		// The shell and three sleeps fill the four; the fourth fork fails,
		// and dash gives up.
		script := `exec 2>` + errFile + `; i=0; while [ $i -lt 8 ]; do sleep 1000 & i=$((i+1)); done; echo forked all >&2; sleep 1000`
		cmd := start(t, c, "/bin/sh", "-c", script)
		waitCmd(t, cmd, 10*time.Second)
		out, _ := os.ReadFile(errFile)
		if !strings.Contains(string(out), "fork") || strings.Contains(string(out), "forked all") {
			t.Errorf("shell under pids.max 4: %q; want a failed fork", out)
		}
		pidList, err := c.Pids()
		if err != nil {
			t.Fatal(err)
		}
		st, err := c.Stats()
		if err != nil {
			t.Fatal(err)
		}
		if len(pidList) != 3 || st.Pids.Current != 3 || st.Pids.Limit != 4 {
			t.Errorf("after the failed fork: pids %v, stats %+v; want the 3 sleeps, limit 4", pidList, st.Pids)
		}
		if ev := get(t, c, "pids.events"); ev == "max 0" {
			t.Errorf("pids.events: %q, want a count of refused forks", ev)
		}
		t.Logf("%v: %s; pids.events %s", mode, strings.TrimSpace(string(out)), get(t, c, "pids.events"))

		set(t, c, pids(100))
		os.Remove(errFile)
		start(t, c, "/bin/sh", "-c", script)
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
			if out, _ := os.ReadFile(errFile); strings.Contains(string(out), "forked all") {
				break
			}
			if time.Now().After(deadline) {
				out, _ := os.ReadFile(errFile)
				t.Fatalf("under pids.max 100: %q", out)
			}
		}
		// The 3 sleeps from before, the shell, its 8 sleeps and its last one.
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
			st, err := c.Stats()
			if err != nil {
				t.Fatal(err)
			}
			if st.Pids.Current == 3+1+8+1 && st.Pids.Limit == 100 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("stats %+v; want 13 processes, limit 100", st.Pids)
			}
		}
		killAll(t, c)
	})
}

// hog makes a shell read 200 MB into a variable.
const hog = `x=$(head -c 200000000 /dev/zero | tr '\0' x)`

// TestSetV1OOM: a process that allocates beyond the memory limit is
// OOM-killed, and Stats counts it; with the OOM killer disabled it waits
// instead (under_oom), and turning the killer back on kills it.
func TestSetV1OOM(t *testing.T) {
	forV1Modes(t, func(t *testing.T, mode Mode) {
		c := create(t, testParentNamed(t, "res")+"/ctr")
		// memsw stays unlimited: new kernels keep no failcnt for memsw, and
		// a memsw limit as low as the memory limit is hit first.
		set(t, c, mem(specs.LinuxMemory{Limit: ptr[int64](20 * mi)}))
		cmd := start(t, c, "/bin/sh", "-c", hog)
		ps := waitCmd(t, cmd, 30*time.Second)
		if ws := ps.Sys().(syscall.WaitStatus); !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
			t.Errorf("hog under 20 MiB: %v, want killed by SIGKILL", ps)
		}
		st, err := c.Stats()
		if err != nil {
			t.Fatal(err)
		}
		m := st.Memory
		if m.Events.OOMKill < 1 || m.Usage.Failcnt == 0 || m.Usage.Limit != 20*mi || m.Usage.Max < 15*mi {
			t.Errorf("memory stats after the OOM kill: %+v", m)
		}
		js, _ := json.Marshal(st)
		t.Logf("%v: %v; stats %s", mode, ps, js)
		waitEmpty(t, c, time.Now())

		// The OOM killer disabled: the hog waits for memory.
		set(t, c, mem(specs.LinuxMemory{DisableOOMKiller: ptr(true)}))
		cmd = start(t, c, "/bin/sh", "-c", hog)
		for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(10 * time.Millisecond) {
			st, err := c.Stats()
			if err != nil {
				t.Fatal(err)
			}
			if st.Memory.Events.UnderOOM {
				if !st.Memory.Events.OOMKillDisable || st.Memory.Events.OOMKill != m.Events.OOMKill {
					t.Errorf("under OOM with the killer disabled: %+v", st.Memory.Events)
				}
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("not under OOM after 20s: %+v", st.Memory)
			}
		}
		time.Sleep(100 * time.Millisecond)
		if gone(cmd.Process.Pid) {
			t.Fatal("the hog died with the OOM killer disabled")
		}
		set(t, c, mem(specs.LinuxMemory{DisableOOMKiller: ptr(false)}))
		ps = waitCmd(t, cmd, 20*time.Second)
		if ws := ps.Sys().(syscall.WaitStatus); !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
			t.Errorf("hog after the OOM killer came back: %v, want killed by SIGKILL", ps)
		}
		if st, err := c.Stats(); err != nil || st.Memory.Events.OOMKill <= m.Events.OOMKill || st.Memory.Events.UnderOOM {
			t.Errorf("stats after the second kill: %+v, %v", st.Memory.Events, err)
		}
		waitEmpty(t, c, time.Now())
	})
}

// TestSetV1Busy: lowering the memory limit below what a process holds fails
// with EBUSY (v1 reclaims, it does not kill), names file, value and
// directory, and leaves the limits as they were.
func TestSetV1Busy(t *testing.T) {
	forV1Modes(t, func(t *testing.T, mode Mode) {
		c := create(t, testParentNamed(t, "res")+"/ctr")
		set(t, c, mem(specs.LinuxMemory{Limit: ptr[int64](64 * mi), Swap: ptr[int64](64 * mi)}))
		start(t, c, "/bin/sh", "-c", `x=$(head -c 20000000 /dev/zero | tr '\0' x); sleep 1000`)
		for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(10 * time.Millisecond) {
			if st, err := c.Stats(); err == nil && st.Memory.Usage.Usage > 20000000 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("the process does not take its 20 MB")
			}
		}
		err := c.Set(mem(specs.LinuxMemory{Limit: ptr[int64](4 * mi), Swap: ptr[int64](4 * mi)}))
		want := "cgroups: set memory.limit_in_bytes to 4194304 in " + c.Paths()["memory"] + ": device or resource busy (memory.usage_in_bytes is "
		if !errors.Is(err, unix.EBUSY) || err == nil || !strings.HasPrefix(err.Error(), want) {
			t.Errorf("Set below usage: %v\nwant EBUSY, starting %q", err, want)
		}
		t.Logf("error: %v", err)
		check(t, c, "after EBUSY", map[string]string{"memory.limit_in_bytes": "67108864", "memory.memsw.limit_in_bytes": "67108864"})
		// checkBeforeUpdate refuses before writing anything.
		err = c.Set(mem(specs.LinuxMemory{Limit: ptr[int64](8 * mi), Swap: ptr[int64](8 * mi), CheckBeforeUpdate: ptr(true)}))
		if err == nil || !strings.Contains(err.Error(), "not above the current usage") {
			t.Errorf("checkBeforeUpdate: %v", err)
		}
		killAll(t, c)
	})
}

// TestSetForcedV2Host: in V2 mode Set writes only where the cgroup2 cgroup
// has the controller; here the unified hierarchy has none, so each request
// fails naming the controller and the directory, and nothing asked is fine.
// (On a host with controllers, it checks the writes instead.)
func TestSetForcedV2Host(t *testing.T) {
	requireRoot(t)
	t.Setenv(EnvMode, "v2")
	if _, err := DetectMode(); err != nil {
		t.Skipf("no cgroup2: %v", err)
	}
	c := create(t, testParentNamed(t, "res")+"/ctr")
	dir := c.Paths()[KeyUnified]
	avail, err := readFile(dir, "cgroup.controllers")
	if err != nil {
		t.Fatal(err)
	}
	have := strings.Fields(avail)
	for _, tc := range []struct {
		ctrl, file, want string
		r                *specs.LinuxResources
	}{
		{"memory", "memory.max", "16777216", mem(specs.LinuxMemory{Limit: ptr[int64](16 * mi)})},
		{"cpu", "cpu.weight", "39", cpu(specs.LinuxCPU{Shares: ptr[uint64](1024)})},
		{"cpu", "cpu.max", "50000 100000", cpu(specs.LinuxCPU{Quota: ptr[int64](50000), Period: ptr[uint64](100000)})},
		{"cpuset", "cpuset.cpus", "0", cpu(specs.LinuxCPU{Cpus: "0"})},
		{"pids", "pids.max", "7", pids(7)},
	} {
		err := c.Set(tc.r)
		if slicesContains(have, tc.ctrl) {
			if err != nil {
				t.Errorf("%s: %v", tc.ctrl, err)
			} else if got, _ := readFile(dir, tc.file); strings.TrimSpace(got) != tc.want {
				t.Errorf("%s = %q, want %q", tc.file, got, tc.want)
			}
			continue
		}
		want := "cgroups: " + tc.ctrl + " controller not enabled in " + dir
		if err == nil || !strings.HasPrefix(err.Error(), want) {
			t.Errorf("Set (%s): %v\nwant an error starting %q", tc.ctrl, err, want)
		} else {
			t.Logf("error (as expected): %v", err)
		}
	}
	// Devices need no controller on cgroup2: they are a BPF program.
	if err := c.Set(&specs.LinuxResources{Devices: []specs.LinuxDeviceCgroup{{Allow: false, Access: "rwm"}}}); err != nil {
		t.Errorf("devices only: %v", err)
	}
	if err := c.Set(cpu(specs.LinuxCPU{RealtimeRuntime: ptr[int64](1000)})); !errors.Is(err, errors.ErrUnsupported) {
		t.Errorf("realtime on cgroup2: %v", err)
	}
}

func slicesContains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// TestStatsHost: Stats counts the CPU time of a busy process in every mode
// (from cpuacct in v1 hierarchies, cpu.stat in cgroup2, which has it even
// without the cpu controller), and the memory and pids counters where there
// are such controllers.
func TestStatsHost(t *testing.T) {
	forEachMode(t, func(t *testing.T, mode Mode) {
		c := create(t, testParentNamed(t, "res")+"/ctr")
		st, err := c.Stats()
		if err != nil {
			t.Fatal(err)
		}
		if st.CPU.Usage.Total != 0 || st.Pids.Current != 0 {
			t.Errorf("empty cgroup: %+v", st)
		}
		start(t, c, "/bin/sh", "-c", "while :; do :; done")
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
			if st, err = c.Stats(); err != nil {
				t.Fatal(err)
			}
			if st.CPU.Usage.Total > 50e6 && st.CPU.Usage.User > 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("no CPU time counted: %+v", st.CPU)
			}
		}
		if mode != V2 {
			if len(st.CPU.Usage.PerCPU) != runtime.NumCPU() || st.Pids.Current != 1 || st.Pids.Limit != 1<<64-1 ||
				st.Memory.Usage.Usage == 0 || st.Memory.Usage.Limit == 0 || len(st.Memory.Raw) == 0 {
				t.Errorf("v1 stats: %+v", st)
			}
		}
		var back Stats
		js, err := json.Marshal(st)
		if err == nil {
			err = json.Unmarshal(js, &back)
		}
		if err != nil || !reflect.DeepEqual(&back, st) {
			t.Errorf("JSON round trip: %v\n%s", err, js)
		}
		t.Logf("%v: %s", mode, js)
		killAll(t, c)
	})
}
