// Command bench measures containerfd against every peer runtime it finds
// (runc, crun) on one busybox bundle, side by side in one run: `make bench`.
//
// Each runtime gets its own state root on tmpfs (/run/cfdbench/<name>) and
// every container its own bundle directory (a config.json whose root.path is
// the one shared busybox rootfs) with an absolute cgroup path under
// /cfdbench, so no measurement lands in the caller's cgroup and concurrent
// containers never share a cgroup. Runtimes are interleaved iteration by
// iteration so that drift on the machine hits them all alike.
//
// The bench process is a child subreaper, as containerd's shim and conmon
// are: the init of a created container is reparented to it, and "wait" is a
// wait4 on the pid from --pid-file. Peak RSS is GNU time's %M, measured in
// separate invocations (see invokeRSS).
//
// Output: a table on stdout (median [min–max] per runtime, and the ratio
// containerfd/peer), a JSON file (-json) and a benchstat-friendly file
// (-benchfmt: one "Benchmark<Op>/<runtime> 1 <value> <unit>" line per sample;
// compare two runs with `benchstat old.txt new.txt`).
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

type runtime struct {
	Name  string `json:"name"`
	Path  string `json:"path"`
	Ver   string `json:"version"`
	root  string
	broke map[string]string // op -> first error
}

var (
	flagN         = flag.Int("n", 20, "samples per latency measurement (N= in make bench)")
	flagConc      = flag.Int("concurrent", 100, "containers in the concurrency test")
	flagPar       = flag.Int("parallel", 8, "parallelism of the concurrency test")
	flagCfd       = flag.String("containerfd", "bin/containerfd", "the containerfd binary")
	flagPeers     = flag.String("peers", "runc,crun", "peer runtimes: names on PATH or name=/path, comma-separated; empty for none")
	flagDir       = flag.String("dir", "/run/cfdbench", "work directory (tmpfs): rootfs, bundles, state roots")
	flagCgroup    = flag.String("cgroup", "/cfdbench", "absolute cgroup parent of every container")
	flagJSON      = flag.String("json", "bench/out/bench.json", "write results as JSON here")
	flagBenchfmt  = flag.String("benchfmt", "bench/out/bench.txt", "write samples in Go benchmark format here (for benchstat)")
	flagBusybox   = flag.String("busybox", "/bin/busybox", "static busybox for the rootfs")
	flagOnly      = flag.String("only", "", "comma-separated subset of ops: run,lifecycle,exec,state,kill,rss,memlimit,concurrent")
	flagHybridFix = flag.Bool("hybrid-fix", true, "on a hybrid host whose cgroup2 has controllers, run in a mount namespace with a v1 hugetlb hierarchy so that crun runs (see hybrid.go)")
	flagTimeout   = flag.Duration("timeout", 20*time.Second, "timeout of one runtime invocation")
)

// result of one metric for one runtime.
type stat struct {
	Unit    string    `json:"unit"`
	Median  float64   `json:"median"`
	Min     float64   `json:"min"`
	Max     float64   `json:"max"`
	Samples []float64 `json:"samples,omitempty"`
	Error   string    `json:"error,omitempty"`
	Note    string    `json:"note,omitempty"`
}

type metric struct {
	Name   string             `json:"name"`
	Desc   string             `json:"description"`
	Unit   string             `json:"unit"`
	Lower  bool               `json:"lower_is_better"`
	By     map[string]*stat   `json:"by_runtime"`
	Ratios map[string]float64 `json:"ratio_containerfd_over,omitempty"`
	Target string             `json:"target,omitempty"`
}

type report struct {
	Date     time.Time  `json:"date"`
	Host     hostInfo   `json:"host"`
	N        int        `json:"n"`
	Runtimes []*runtime `json:"runtimes"`
	Metrics  []*metric  `json:"metrics"`
}

type hostInfo struct {
	Kernel  string `json:"kernel"`
	CPUs    int    `json:"cpus"`
	Cgroups string `json:"cgroups"`
}

var (
	rts      []*runtime
	metrics  []*metric
	idSeq    atomic.Int64
	baseCfg  map[string]any
	rootfs   string
	devnull  *os.File
	benchOut bytes.Buffer
)

func main() {
	flag.Parse()
	if os.Getuid() != 0 {
		fatal("bench runs containers and needs root (sudo make bench)")
	}
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		fatal("PR_SET_CHILD_SUBREAPER: %v", err)
	}
	maybeReexec()
	var err error
	devnull, err = os.OpenFile(os.DevNull, os.O_RDWR, 0)
	check(err)
	setup()
	onSignal()

	only := map[string]bool{}
	for _, s := range strings.Split(*flagOnly, ",") {
		if s != "" {
			only[s] = true
		}
	}
	want := func(op string) bool { return len(only) == 0 || only[op] }

	start := time.Now()
	if want("run") {
		benchRun()
	}
	if want("lifecycle") {
		benchLifecycle()
	}
	if want("exec") || want("state") || want("kill") || want("rss") {
		benchRunning(want)
	}
	if want("memlimit") {
		benchMemLimit()
	}
	if want("concurrent") {
		benchConcurrent()
	}
	cleanupAll()
	removeParents()
	undoHybridFix()
	computeRatios()
	printTable(os.Stdout)
	fmt.Printf("\n(total %.1fs; N=%d; JSON in %s, benchstat samples in %s)\n", time.Since(start).Seconds(), *flagN, *flagJSON, *flagBenchfmt)
	writeOut()
}

func fatal(f string, a ...any) {
	fmt.Fprintf(os.Stderr, "bench: "+f+"\n", a...)
	os.Exit(1)
}

func check(err error) {
	if err != nil {
		fatal("%v", err)
	}
}

// ---------------------------------------------------------------- setup

func setup() {
	cfd, err := filepath.Abs(*flagCfd)
	check(err)
	if _, err := os.Stat(cfd); err != nil {
		fatal("%v (make build first)", err)
	}
	rts = append(rts, &runtime{Name: "containerfd", Path: cfd})
	for _, p := range strings.Split(*flagPeers, ",") {
		p = strings.TrimSpace(p)
		if p == "" {
			continue
		}
		name, path, ok := strings.Cut(p, "=")
		if !ok {
			path = name
		}
		abs, err := exec.LookPath(path)
		if err != nil {
			fmt.Fprintf(os.Stderr, "bench: peer %s not found (%v): skipped\n", name, err)
			continue
		}
		rts = append(rts, &runtime{Name: name, Path: abs})
	}
	for _, rt := range rts {
		out, _ := exec.Command(rt.Path, "--version").Output()
		rt.Ver = strings.TrimSpace(strings.SplitN(string(out), "\n", 2)[0])
		rt.root = filepath.Join(*flagDir, "state", rt.Name)
		rt.broke = map[string]string{}
	}

	check(os.MkdirAll(*flagDir, 0o755))
	rootfs = filepath.Join(*flagDir, "rootfs")
	if _, err := os.Stat(filepath.Join(rootfs, "bin/true")); err != nil {
		here, _ := os.Getwd()
		cmd := exec.Command("bash", filepath.Join(here, "hack/mkrootfs.sh"), rootfs)
		cmd.Env = append(os.Environ(), "BUSYBOX="+*flagBusybox)
		cmd.Stderr = os.Stderr
		check(cmd.Run())
	}
	cleanupAll()
	for _, rt := range rts {
		check(os.MkdirAll(rt.root, 0o700))
	}

	// The base config: containerfd's default (runc's, plus a cgroup ns),
	// with an ociVersion every runtime accepts (crun 1.8.1 refuses 1.3.0).
	tmp := filepath.Join(*flagDir, "spec")
	os.RemoveAll(tmp)
	check(os.MkdirAll(tmp, 0o755))
	out, err := exec.Command(cfd, "spec", "--bundle", tmp).CombinedOutput()
	if err != nil {
		fatal("containerfd spec: %v: %s", err, out)
	}
	b, err := os.ReadFile(filepath.Join(tmp, "config.json"))
	check(err)
	check(json.Unmarshal(b, &baseCfg))
	baseCfg["ociVersion"] = "1.0.2"
	baseCfg["root"] = map[string]any{"path": rootfs, "readonly": true}
	proc := baseCfg["process"].(map[string]any)
	proc["terminal"] = false
	baseCfg["hostname"] = "bench"
	os.RemoveAll(tmp)
}

// bundle writes a bundle for id running args, with an optional memory limit,
// and returns its directory.
func bundle(rt *runtime, id string, memLimit int64, args ...string) string {
	dir := filepath.Join(*flagDir, "bundles", id)
	check(os.MkdirAll(dir, 0o755))
	cfg := deepCopy(baseCfg)
	cfg["process"].(map[string]any)["args"] = args
	linux := cfg["linux"].(map[string]any)
	linux["cgroupsPath"] = *flagCgroup + "/" + id
	if memLimit > 0 {
		res, _ := linux["resources"].(map[string]any)
		if res == nil {
			res = map[string]any{}
			linux["resources"] = res
		}
		res["memory"] = map[string]any{"limit": memLimit}
	}
	b, err := json.Marshal(cfg)
	check(err)
	check(os.WriteFile(filepath.Join(dir, "config.json"), b, 0o644))
	return dir
}

func deepCopy(m map[string]any) map[string]any {
	b, _ := json.Marshal(m)
	var c map[string]any
	json.Unmarshal(b, &c)
	return c
}

func newID(rt *runtime, op string) string {
	return fmt.Sprintf("%s-%s-%d-%d", rt.Name, op, os.Getpid(), idSeq.Add(1))
}

// cleanupAll removes every container under our state roots, the bundles and
// the cgroups left under the parent.
func cleanupAll() {
	for _, rt := range rts {
		ents, _ := os.ReadDir(rt.root)
		for _, e := range ents {
			if e.IsDir() {
				invoke(rt, "delete", "--force", e.Name())
			}
		}
	}
	os.RemoveAll(filepath.Join(*flagDir, "bundles"))
	reapZombies()
	cgs, _ := filepath.Glob("/sys/fs/cgroup/*" + *flagCgroup)
	uni, _ := filepath.Glob("/sys/fs/cgroup" + *flagCgroup)
	for _, cg := range append(cgs, uni...) {
		subs, _ := filepath.Glob(cg + "/*")
		for _, s := range subs {
			if fi, err := os.Stat(s); err == nil && fi.IsDir() {
				syscall.Rmdir(s)
			}
		}
	}
}

// onSignal cleans up (containers, cgroups, the hugetlb mount) on SIGINT or
// SIGTERM, so that an interrupted bench leaves the machine as it found it.
func onSignal() {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, os.Interrupt, syscall.SIGTERM)
	go func() {
		s := <-ch
		progress("%v: cleaning up", s)
		cleanupAll()
		removeParents()
		undoHybridFix()
		os.Exit(130)
	}()
}

// removeParents removes the cgroup parent from every hierarchy.
func removeParents() {
	cgs, _ := filepath.Glob("/sys/fs/cgroup/*" + *flagCgroup)
	for _, cg := range cgs {
		syscall.Rmdir(cg)
	}
}

// reapZombies reaps reparented children; call it only when no invocation is
// in flight (it would steal their exit status).
func reapZombies() {
	for {
		pid, err := unix.Wait4(-1, nil, unix.WNOHANG, nil)
		if pid <= 0 || err != nil {
			return
		}
	}
}

// ---------------------------------------------------------------- invoking

type res struct {
	dur    time.Duration
	maxrss int64 // KiB
	err    error
}

// invoke runs the runtime with --root and args, stdio on /dev/null (stderr
// kept for errors), and returns wall time and peak RSS.
func invoke(rt *runtime, args ...string) res {
	return invoke1(rt, false, args...)
}

// invokeRSS is invoke under GNU time, for the peak RSS only. ru_maxrss from
// our own wait4 is useless: Go spawns with vfork (CLONE_VM), and execve
// records the high-water RSS of the mm it leaves, the bench's own, in the
// child's maxrss. GNU time forks (a copy of its own tiny mm) and reports the
// child's ru_maxrss (%M), as in the issue's measurements.
func invokeRSS(rt *runtime, args ...string) res {
	return invoke1(rt, true, args...)
}

var gnuTime, _ = exec.LookPath("/usr/bin/time")

func invoke1(rt *runtime, rss bool, args ...string) res {
	ctx, cancel := context.WithTimeout(context.Background(), *flagTimeout)
	defer cancel()
	argv := append([]string{rt.Path, "--root", rt.root}, args...)
	var tf string
	if rss {
		if gnuTime == "" {
			return res{err: errors.New("GNU time (/usr/bin/time, Debian package time) not found")}
		}
		f, err := os.CreateTemp(*flagDir, "time-")
		check(err)
		f.Close()
		tf = f.Name()
		defer os.Remove(tf)
		argv = append([]string{gnuTime, "-f", "%M", "-o", tf}, argv...)
	}
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Stdin, cmd.Stdout = devnull, devnull
	// stderr goes to a file, not a pipe: a created container's init
	// inherits it and would hold a pipe open past the runtime's exit.
	ef, err := os.CreateTemp(*flagDir, "stderr-")
	check(err)
	defer os.Remove(ef.Name())
	defer ef.Close()
	cmd.Stderr = ef
	t0 := time.Now()
	err = cmd.Run()
	d := time.Since(t0)
	r := res{dur: d, err: err}
	if rss && err == nil {
		b, _ := os.ReadFile(tf)
		f := strings.Fields(string(b))
		if len(f) > 0 {
			r.maxrss, _ = strconv.ParseInt(f[len(f)-1], 10, 64)
		}
	}
	if err != nil {
		b, _ := os.ReadFile(ef.Name())
		msg := strings.TrimSpace(string(b))
		if len(msg) > 300 {
			msg = msg[:300]
		}
		r.err = fmt.Errorf("%s %s: %v: %s", rt.Name, strings.Join(args, " "), err, msg)
	}
	return r
}

func pidOf(pidFile string) (int, error) {
	b, err := os.ReadFile(pidFile)
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(strings.TrimSpace(string(b)))
}

// waitPid waits for a reparented container init.
func waitPid(pid int) error {
	var ws unix.WaitStatus
	for {
		_, err := unix.Wait4(pid, &ws, 0, nil)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return fmt.Errorf("wait4 %d: %w", pid, err)
		}
		if ws.Exited() && ws.ExitStatus() == 0 {
			return nil
		}
		return fmt.Errorf("container init %d: status %v", pid, ws)
	}
}

// ---------------------------------------------------------------- metrics

func newMetric(name, desc, unit, target string) *metric {
	m := &metric{Name: name, Desc: desc, Unit: unit, Lower: true, By: map[string]*stat{}, Target: target}
	for _, rt := range rts {
		m.By[rt.Name] = &stat{Unit: unit}
	}
	metrics = append(metrics, m)
	return m
}

func (m *metric) add(rt *runtime, v float64) {
	s := m.By[rt.Name]
	s.Samples = append(s.Samples, v)
	fmt.Fprintf(&benchOut, "Benchmark%s/%s 1 %g %s\n", benchName(m.Name), rt.Name, v, benchUnit(m.Unit))
}

func (m *metric) fail(rt *runtime, err error) {
	s := m.By[rt.Name]
	if s.Error == "" {
		s.Error = err.Error()
		fmt.Fprintf(os.Stderr, "bench: %s: %v\n", m.Name, err)
	}
}

func benchName(s string) string {
	var b strings.Builder
	up := true
	for _, r := range s {
		if r == '_' || r == ' ' || r == '+' || r == '-' {
			up = true
			continue
		}
		if up && r >= 'a' && r <= 'z' {
			r -= 'a' - 'A'
		}
		up = false
		b.WriteRune(r)
	}
	return b.String()
}

func benchUnit(u string) string {
	switch u {
	case "ms":
		return "ms/op"
	case "×":
		return "ratio"
	}
	return u
}

func finish(m *metric) {
	for _, s := range m.By {
		if len(s.Samples) == 0 {
			continue
		}
		v := append([]float64(nil), s.Samples...)
		sort.Float64s(v)
		s.Min, s.Max = v[0], v[len(v)-1]
		if len(v)%2 == 1 {
			s.Median = v[len(v)/2]
		} else {
			s.Median = (v[len(v)/2-1] + v[len(v)/2]) / 2
		}
	}
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func progress(f string, a ...any) { fmt.Fprintf(os.Stderr, "bench: "+f+"\n", a...) }

// ---------------------------------------------------------------- benchmarks

// benchRun: `run` of /bin/true in a fresh container each time.
func benchRun() {
	progress("run /bin/true ×%d per runtime", *flagN)
	m := newMetric("run", "run /bin/true (fresh id, foreground, exit 0)", "ms",
		"≤ 0.9× crun (aim 0.5×), ≤ 0.4× runc")
	rss := newMetric("run_maxrss", "peak RSS of the runtime process for run /bin/true (GNU time %M: max over the runtime and the children it reaps)", "KiB",
		"≤ 2× crun")
	for i := 0; i < *flagN+1; i++ {
		for _, rt := range rts {
			id := newID(rt, "run")
			b := bundle(rt, id, 0, "/bin/true")
			r := invoke(rt, "run", "--bundle", b, id)
			if r.err != nil {
				m.fail(rt, r.err)
				invoke(rt, "delete", "--force", id)
				continue
			}
			if i == 0 {
				continue // warm-up: page cache, cgroup parents
			}
			m.add(rt, ms(r.dur))
			id = newID(rt, "runrss")
			b = bundle(rt, id, 0, "/bin/true")
			if r := invokeRSS(rt, "run", "--bundle", b, id); r.err != nil {
				rss.fail(rt, r.err)
				invoke(rt, "delete", "--force", id)
			} else {
				rss.add(rt, float64(r.maxrss))
			}
		}
	}
	finish(m)
	finish(rss)
	reapZombies()
}

// benchLifecycle: create + start + wait + delete, each step timed too.
func benchLifecycle() {
	progress("create+start+wait+delete ×%d per runtime", *flagN)
	tot := newMetric("create_start_wait_delete", "create + start + wait (init exits 0) + delete of /bin/true", "ms",
		"≤ 0.9× crun (aim 0.5×)")
	cr := newMetric("create", "create (of the above)", "ms", "")
	st := newMetric("start", "start (of the above)", "ms", "")
	wt := newMetric("wait", "start returned → init reaped (of the above)", "ms", "")
	de := newMetric("delete", "delete of the stopped container (of the above)", "ms", "")
	for i := 0; i < *flagN+1; i++ {
		for _, rt := range rts {
			id := newID(rt, "life")
			b := bundle(rt, id, 0, "/bin/true")
			pf := filepath.Join(b, "pid")
			t0 := time.Now()
			r1 := invoke(rt, "create", "--bundle", b, "--pid-file", pf, id)
			if r1.err != nil {
				tot.fail(rt, r1.err)
				invoke(rt, "delete", "--force", id)
				continue
			}
			pid, err := pidOf(pf)
			if err != nil {
				tot.fail(rt, err)
				invoke(rt, "delete", "--force", id)
				continue
			}
			r2 := invoke(rt, "start", id)
			t2 := time.Now()
			var werr error
			if r2.err == nil {
				werr = waitPid(pid)
			}
			t3 := time.Now()
			r4 := invoke(rt, "delete", id)
			total := time.Since(t0)
			if err := errors.Join(r2.err, werr, r4.err); err != nil {
				tot.fail(rt, err)
				invoke(rt, "delete", "--force", id)
				continue
			}
			if i == 0 {
				continue
			}
			tot.add(rt, ms(total))
			cr.add(rt, ms(r1.dur))
			st.add(rt, ms(r2.dur))
			wt.add(rt, ms(t3.Sub(t2)))
			de.add(rt, ms(r4.dur))
		}
	}
	for _, m := range []*metric{tot, cr, st, wt, de} {
		finish(m)
	}
	reapZombies()
}

// benchRunning: exec, state and kill against running containers.
func benchRunning(want func(string) bool) {
	progress("exec, state, kill ×%d per runtime", *flagN)
	var ex, exRSS, sta, kil *metric
	if want("exec") || want("rss") {
		ex = newMetric("exec", "exec /bin/true into a running container", "ms", "≤ crun")
		exRSS = newMetric("exec_maxrss", "peak RSS of the runtime process for exec /bin/true", "KiB", "")
	}
	if want("state") {
		sta = newMetric("state", "state of a running container", "ms", "")
	}
	if want("kill") {
		kil = newMetric("kill", "kill (SIGKILL) of a running container's init", "ms", "")
	}
	// One long-running container per runtime for exec and state.
	type live struct {
		id  string
		pid int
	}
	lives := map[string]live{}
	startSleeper := func(rt *runtime, op string) (live, error) {
		id := newID(rt, op)
		b := bundle(rt, id, 0, "/bin/sleep", "3600")
		pf := filepath.Join(b, "pid")
		if r := invoke(rt, "create", "--bundle", b, "--pid-file", pf, id); r.err != nil {
			invoke(rt, "delete", "--force", id)
			return live{}, r.err
		}
		pid, err := pidOf(pf)
		if err != nil {
			return live{}, err
		}
		if r := invoke(rt, "start", id); r.err != nil {
			invoke(rt, "delete", "--force", id)
			return live{}, r.err
		}
		return live{id, pid}, nil
	}
	stopSleeper := func(rt *runtime, l live) {
		invoke(rt, "kill", l.id, "KILL")
		var ws unix.WaitStatus
		unix.Wait4(l.pid, &ws, 0, nil)
		invoke(rt, "delete", "--force", l.id)
	}
	for _, rt := range rts {
		l, err := startSleeper(rt, "sleeper")
		if err != nil {
			for _, m := range []*metric{ex, sta} {
				if m != nil {
					m.fail(rt, err)
				}
			}
			continue
		}
		lives[rt.Name] = l
	}
	for i := 0; i < *flagN+1; i++ {
		for _, rt := range rts {
			l, ok := lives[rt.Name]
			if ok && ex != nil {
				r := invoke(rt, "exec", l.id, "/bin/true")
				if r.err != nil {
					ex.fail(rt, r.err)
				} else if i > 0 {
					ex.add(rt, ms(r.dur))
					if r := invokeRSS(rt, "exec", l.id, "/bin/true"); r.err != nil {
						exRSS.fail(rt, r.err)
					} else {
						exRSS.add(rt, float64(r.maxrss))
					}
				}
			}
			if ok && sta != nil {
				r := invoke(rt, "state", l.id)
				if r.err != nil {
					sta.fail(rt, r.err)
				} else if i > 0 {
					sta.add(rt, ms(r.dur))
				}
			}
			if kil != nil {
				k, err := startSleeper(rt, "kill")
				if err != nil {
					kil.fail(rt, err)
					continue
				}
				r := invoke(rt, "kill", k.id, "KILL")
				if r.err != nil {
					kil.fail(rt, r.err)
				} else if i > 0 {
					kil.add(rt, ms(r.dur))
				}
				stopSleeper(rt, k)
			}
		}
	}
	for _, rt := range rts {
		if l, ok := lives[rt.Name]; ok {
			stopSleeper(rt, l)
		}
	}
	for _, m := range []*metric{ex, exRSS, sta, kil} {
		if m != nil {
			finish(m)
		}
	}
	reapZombies()
}

// benchMemLimit bisects the smallest linux.resources.memory.limit at which
// run /bin/true exits 0, to 64 KiB.
func benchMemLimit() {
	progress("smallest memory limit for run /bin/true (bisect)")
	m := newMetric("min_memory_limit", "smallest memory limit at which run /bin/true succeeds (bisected to 64 KiB)", "KiB",
		"run succeeds at 1 MiB")
	ok := func(rt *runtime, limit int64) bool {
		id := newID(rt, "mem")
		b := bundle(rt, id, limit, "/bin/true")
		r := invoke(rt, "run", "--bundle", b, id)
		invoke(rt, "delete", "--force", id)
		os.RemoveAll(b)
		reapZombies()
		return r.err == nil
	}
	for _, rt := range rts {
		const step = 64 << 10
		lo, hi := int64(0), int64(64<<20) // lo fails (assumed), hi succeeds
		if !ok(rt, hi) {
			m.fail(rt, fmt.Errorf("%s: run fails even with a 64 MiB limit", rt.Name))
			continue
		}
		for hi-lo > step {
			mid := (lo + hi) / 2 / step * step
			if mid <= lo {
				mid = lo + step
			}
			if ok(rt, mid) {
				hi = mid
			} else {
				lo = mid
			}
		}
		m.add(rt, float64(hi>>10))
		s := m.By[rt.Name]
		if ok(rt, 1<<20) {
			s.Note = "1 MiB: ok"
		} else {
			s.Note = "1 MiB: fails"
		}
	}
	finish(m)
}

// benchConcurrent: K containers run /bin/true with parallelism P, for
// K = C/4, C/2, C; wall time of C, and per-container cost at each size (flat
// if cost grows linearly).
func benchConcurrent() {
	C, P := *flagConc, *flagPar
	progress("%d containers, parallelism %d (and %d, %d)", C, P, C/4, C/2)
	wall := newMetric(fmt.Sprintf("concurrent_%d_wall", C),
		fmt.Sprintf("%d containers run /bin/true, parallelism %d: wall time", C, P), "ms", "no failures, ≤ crun")
	per := newMetric("concurrent_per_container",
		fmt.Sprintf("wall/containers at %d, %d, %d (min…max over sizes; linear if flat)", C/4, C/2, C), "ms", "")
	grow := newMetric("concurrent_growth",
		fmt.Sprintf("per-container cost at %d ÷ at %d (1.0 = linear)", C, C/4), "×", "")
	sizes := []int{C / 4, C / 2, C}
	for _, rt := range rts {
		var perSize []float64
		for _, k := range sizes {
			if k <= 0 {
				continue
			}
			var fails atomic.Int64
			var firstErr atomic.Value
			jobs := make(chan int)
			var wg sync.WaitGroup
			t0 := time.Now()
			for w := 0; w < P; w++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for range jobs {
						id := newID(rt, "conc")
						b := bundle(rt, id, 0, "/bin/true")
						if r := invoke(rt, "run", "--bundle", b, id); r.err != nil {
							fails.Add(1)
							firstErr.CompareAndSwap(nil, r.err.Error())
						}
					}
				}()
			}
			for j := 0; j < k; j++ {
				jobs <- j
			}
			close(jobs)
			wg.Wait()
			d := time.Since(t0)
			if n := fails.Load(); n > 0 {
				wall.fail(rt, fmt.Errorf("%d of %d failed: %v", n, k, firstErr.Load()))
			}
			perSize = append(perSize, ms(d)/float64(k))
			per.add(rt, ms(d)/float64(k))
			if k == C {
				wall.add(rt, ms(d))
			}
			cleanupAll()
		}
		if len(perSize) == len(sizes) {
			grow.add(rt, math.Round(perSize[len(perSize)-1]/perSize[0]*100)/100)
		}
	}
	finish(wall)
	finish(per)
	finish(grow)
	grow.Lower = false
}

// ---------------------------------------------------------------- output

func computeRatios() {
	for _, m := range metrics {
		c := m.By["containerfd"]
		if c == nil || len(c.Samples) == 0 {
			continue
		}
		m.Ratios = map[string]float64{}
		for _, rt := range rts[1:] {
			p := m.By[rt.Name]
			if len(p.Samples) == 0 || p.Median == 0 {
				continue
			}
			m.Ratios[rt.Name] = math.Round(c.Median/p.Median*1000) / 1000
		}
	}
}

func fmtVal(v float64, unit string) string {
	switch unit {
	case "KiB":
		return fmt.Sprintf("%.0f", v)
	case "×":
		return fmt.Sprintf("%.2f", v)
	}
	if v >= 100 {
		return fmt.Sprintf("%.0f", v)
	}
	return fmt.Sprintf("%.1f", v)
}

func printTable(w io.Writer) {
	fmt.Fprintf(w, "\nhost: %s, %d CPUs, cgroups %s; N=%d\n", host().Kernel, host().CPUs, host().Cgroups, *flagN)
	for _, rt := range rts {
		fmt.Fprintf(w, "  %-12s %s (%s)\n", rt.Name, rt.Ver, rt.Path)
	}
	fmt.Fprintln(w)
	hdr := []string{"metric", "unit"}
	for _, rt := range rts {
		hdr = append(hdr, rt.Name+" median [min–max]")
	}
	for _, rt := range rts[1:] {
		hdr = append(hdr, "cfd/"+rt.Name)
	}
	rows := [][]string{hdr}
	for _, m := range metrics {
		row := []string{m.Name, m.Unit}
		for _, rt := range rts {
			s := m.By[rt.Name]
			switch {
			case len(s.Samples) == 0 && s.Error != "":
				row = append(row, "FAILED")
			case len(s.Samples) == 0:
				row = append(row, "-")
			case len(s.Samples) == 1:
				v := fmtVal(s.Median, m.Unit)
				if s.Note != "" {
					v += " (" + s.Note + ")"
				}
				if s.Error != "" {
					v += " (errors)"
				}
				row = append(row, v)
			default:
				v := fmt.Sprintf("%s [%s–%s]", fmtVal(s.Median, m.Unit), fmtVal(s.Min, m.Unit), fmtVal(s.Max, m.Unit))
				if s.Error != "" {
					v += " (errors)"
				}
				row = append(row, v)
			}
		}
		for _, rt := range rts[1:] {
			if r, ok := m.Ratios[rt.Name]; ok {
				row = append(row, fmt.Sprintf("%.2f", r))
			} else {
				row = append(row, "-")
			}
		}
		rows = append(rows, row)
	}
	widths := make([]int, len(hdr))
	for _, r := range rows {
		for i, c := range r {
			if n := len([]rune(c)); n > widths[i] {
				widths[i] = n
			}
		}
	}
	for j, r := range rows {
		for i, c := range r {
			pad := widths[i] - len([]rune(c))
			if i >= 2 {
				fmt.Fprint(w, strings.Repeat(" ", pad)+c+"  ")
			} else {
				fmt.Fprint(w, c+strings.Repeat(" ", pad)+"  ")
			}
		}
		fmt.Fprintln(w)
		if j == 0 {
			fmt.Fprintln(w, strings.Repeat("-", sum(widths)+2*len(widths)))
		}
	}
	fmt.Fprintln(w, "\ntargets (issue 7):")
	for _, m := range metrics {
		if m.Target != "" {
			fmt.Fprintf(w, "  %-26s %s\n", m.Name, m.Target)
		}
	}
	for _, m := range metrics {
		for _, rt := range rts {
			if e := m.By[rt.Name].Error; e != "" {
				fmt.Fprintf(w, "error: %s/%s: %s\n", m.Name, rt.Name, e)
			}
		}
	}
}

func sum(v []int) int {
	t := 0
	for _, x := range v {
		t += x
	}
	return t
}

var hostCache *hostInfo

func host() hostInfo {
	if hostCache != nil {
		return *hostCache
	}
	var u unix.Utsname
	unix.Uname(&u)
	h := hostInfo{Kernel: unix.ByteSliceToString(u.Release[:]), CPUs: numCPU()}
	var st unix.Statfs_t
	if unix.Statfs("/sys/fs/cgroup", &st) == nil && st.Type == unix.CGROUP2_SUPER_MAGIC {
		h.Cgroups = "v2"
	} else if _, err := os.Stat("/sys/fs/cgroup/unified"); err == nil {
		h.Cgroups = "hybrid"
	} else {
		h.Cgroups = "v1"
	}
	hostCache = &h
	return h
}

func numCPU() int {
	var set unix.CPUSet
	if unix.SchedGetaffinity(0, &set) == nil {
		return set.Count()
	}
	return 0
}

func writeOut() {
	rep := report{Date: time.Now().UTC(), Host: host(), N: *flagN, Runtimes: rts, Metrics: metrics}
	if *flagJSON != "" {
		check(os.MkdirAll(filepath.Dir(*flagJSON), 0o755))
		b, err := json.MarshalIndent(rep, "", "  ")
		check(err)
		check(os.WriteFile(*flagJSON, append(b, '\n'), 0o644))
	}
	if *flagBenchfmt != "" {
		check(os.MkdirAll(filepath.Dir(*flagBenchfmt), 0o755))
		var hdr bytes.Buffer
		fmt.Fprintf(&hdr, "goos: linux\ngoarch: amd64\npkg: github.com/containerfd/containerfd/bench\n")
		check(os.WriteFile(*flagBenchfmt, append(hdr.Bytes(), benchOut.Bytes()...), 0o644))
	}
}
