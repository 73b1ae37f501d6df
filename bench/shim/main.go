// Command shim measures containerd's shims side by side on containerd 2.x
// (issue 17): `make bench-shim`. Configurations, each a runtime handler of
// one containerd started here:
//
//   - runc-shim+runc: containerd's runc shim (io.containerd.runc.v2) with
//     runc (v1.5.1 as make test-diff builds it if there, else Debian's);
//   - runc-shim+crun: the same shim with crun (Debian's);
//   - runc-shim+containerfd: the same shim with bin/containerfd (BinaryName);
//   - containerfd-shim: containerd-shim-containerfd-v2 (io.containerd.containerfd.v2).
//
// containerd 2.4.2, ctr and its runc shim come from internal/clienttools
// (built once into the user's cache, as the client tests do), crictl too.
// The daemon runs in a private mount namespace with a tmpfs on /run (the
// shims' sockets), its root, state, socket, config and the runtimes' roots
// in a directory of its own; the busybox and pause images are written here
// and imported (no registry); every container's cgroup is an absolute path
// under /cfdbench-shim-<pid>, all removed at the end.
//
// Latencies are wall times of the client command as its user sees them
// (ctr and crictl are themselves Go programs: each sample includes their own
// start, alike for every configuration). Configurations are interleaved
// sample by sample; the first sample is a warm-up. A configuration whose
// warm-up fails (crun 1.8.1 here) is reported as not measurable, with the
// reason, and the bench goes on.
//
// The shim's memory is measured with one configuration alive at a time
// (the runc shim's binary is shared by three configurations: PSS divides
// shared pages among the processes that map them): RSS and PSS from
// /proc/PID/smaps_rollup of every shim of the daemon, summed, for a pod
// with 1 and with 10 containers, grouped into one shim by the CRI plugin
// (a pod: its sandbox plus the containers) and, through ctr, by the
// an annotation both shims group on (io.kubernetes.cri.sandbox-id).
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
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/containerfd/containerfd/internal/clienttools"
	"golang.org/x/sys/unix"
)

var (
	flagN       = flag.Int("n", 30, "samples per latency measurement (SHIM_N= in make bench-shim)")
	flagMemN    = flag.Int("mem-n", 3, "samples of each memory measurement")
	flagCfd     = flag.String("containerfd", "bin/containerfd", "the containerfd binary")
	flagShim    = flag.String("shim", "bin/containerd-shim-containerfd-v2", "containerfd's shim binary")
	flagRunc    = flag.String("runc", "", "runc for runc's shim (default: runc v1.5.1 from make test-diff's cache if there, else runc on PATH)")
	flagCrun    = flag.String("crun", "crun", "crun for runc's shim; empty for none")
	flagBusybox = flag.String("busybox", "/bin/busybox", "static busybox for the images")
	flagOnly    = flag.String("only", "", "comma-separated subset: start,run,exec,cri,criexec,memory")
	flagSmaps   = flag.String("smaps", "", "copy each measured process's /proc/PID/smaps into this directory, to see where the memory goes")
	flagJSON    = flag.String("json", "bench/out/shim.json", "write results as JSON here")
	flagText    = flag.String("text", "bench/out/shim.txt", "write the table here too")
	flagTimeout = flag.Duration("timeout", 60*time.Second, "timeout of one client command")
)

const (
	busyboxRef = "docker.io/library/busybox:cfdbench"
	pauseRef   = "docker.io/containerfd/pause:cfdbench"
	criNS      = "k8s.io"
	// groupAnnotation groups containers into one shim: the CRI plugin sets
	// it to the pod's id; both shims read it.
	groupAnnotation = "io.kubernetes.cri.sandbox-id"
	refRunc         = "/var/cache/containerfd-difftest/runc-v1.5.1/runc"
	shimRuntimeType = "io.containerd.containerfd.v2"
	cfdShimName     = "containerd-shim-containerfd-v2"
)

// config is one runtime handler.
type config struct {
	Name     string `json:"name"`
	Shim     string `json:"shim"`
	Runtime  string `json:"runtime,omitempty"` // runc shim's BinaryName
	Version  string `json:"version"`
	NotMeas  string `json:"not_measurable,omitempty"`
	handler  string // its CRI runtime handler: Name as a DNS label
	root     string // the runtime's state root (runc's Root, our ConfigPath's)
	cfgPath  string // containerfd-shim: the ConfigPath TOML
	ctrFlags []string
}

func (c *config) ours() bool { return c.Runtime == "" }

// stat, metric and report: as bench/main.go's.
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
	By     map[string]*stat   `json:"by_config"`
	Ratios map[string]float64 `json:"ratio_containerfd_shim_over,omitempty"`
	Goal   string             `json:"goal,omitempty"`
	// noRatio: the same command whatever the configuration (a floor).
	noRatio bool
}

type report struct {
	Date       time.Time `json:"date"`
	Host       string    `json:"host"`
	Containerd string    `json:"containerd"`
	Load       []string  `json:"loadavg_start_end"`
	N          int       `json:"n"`
	MemN       int       `json:"mem_n"`
	Seconds    float64   `json:"seconds"`
	Configs    []*config `json:"configs"`
	Metrics    []*metric `json:"metrics"`
}

var (
	cfgs    []*config
	metrics []*metric
	dir     string // the bench's own: daemon dirs, images, pod configs
	sock    string
	ctdDir  string // containerd 2.x's commands
	crictl  []string
	daemon  *exec.Cmd
	cgroup  = fmt.Sprintf("/cfdbench-shim-%d", os.Getpid())
	// ctrNS is ctr's containerd namespace: named as the cgroup parent, so
	// that the default cgroupsPath, /<namespace>/<id> (ctr containers
	// create has no --cgroup), is under it too.
	ctrNS   = strings.TrimPrefix(cgroup, "/")
	seq     int
	devnull *os.File
	// loadStart is the load average when the bench began: the machine is
	// shared, and its load moves every latency.
	loadStart string
)

func loadavg() string {
	b, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

func main() {
	flag.Parse()
	if os.Getuid() != 0 {
		fatal("bench-shim runs containerd and containers and needs root (sudo make bench-shim)")
	}
	var err error
	devnull, err = os.OpenFile(os.DevNull, os.O_RDWR, 0)
	check(err)
	only := map[string]bool{}
	for _, s := range strings.Split(*flagOnly, ",") {
		if s != "" {
			only[s] = true
		}
	}
	want := func(op string) bool { return len(only) == 0 || only[op] }

	start := time.Now()
	loadStart = loadavg()
	// Before setup: an interrupted setup leaves its daemon behind too.
	onSignal()
	setup()
	warmUp()
	if want("start") || want("run") || want("exec") || want("cri") || want("criexec") {
		benchLatency(want)
	}
	if want("memory") {
		benchMemory()
	}
	cleanup()
	computeRatios()
	var out bytes.Buffer
	printTable(&out)
	took := time.Since(start).Seconds()
	fmt.Fprintf(&out, "\n(total %.0fs; N=%d, memory N=%d; JSON in %s)\n", took, *flagN, *flagMemN, *flagJSON)
	os.Stdout.Write(out.Bytes())
	writeOut(out.Bytes(), took)
}

func fatal(f string, a ...any) {
	fmt.Fprintf(os.Stderr, "bench-shim: "+f+"\n", a...)
	cleanup()
	os.Exit(1)
}

func check(err error) {
	if err != nil {
		fatal("%v", err)
	}
}

func progress(f string, a ...any) { fmt.Fprintf(os.Stderr, "bench-shim: "+f+"\n", a...) }

// ---------------------------------------------------------------- setup

func setup() {
	var err error
	ctdDir, err = clienttools.Containerd2(progress)
	check(err)
	cbin, err := clienttools.Crictl(progress)
	check(err)
	cfd, err := filepath.Abs(*flagCfd)
	check(err)
	shim, err := filepath.Abs(*flagShim)
	check(err)
	for _, p := range []string{cfd, shim} {
		if _, err := os.Stat(p); err != nil {
			fatal("%v (make build first)", err)
		}
	}
	if filepath.Base(shim) != cfdShimName {
		fatal("-shim %s: containerd runs the shim by its name, %s", shim, cfdShimName)
	}
	dir, err = os.MkdirTemp("", "cfdbs-") // short: the socket path is limited
	check(err)
	sock = filepath.Join(dir, "containerd.sock")

	runc := *flagRunc
	if runc == "" {
		runc = refRunc
		if _, err := os.Stat(runc); err != nil {
			runc = "runc"
		}
	}
	add := func(name, bin string) {
		p, err := exec.LookPath(bin)
		if err != nil {
			progress("%s: %v: skipped", name, err)
			return
		}
		cfgs = append(cfgs, &config{Name: name, Shim: "io.containerd.runc.v2", Runtime: p})
	}
	add("runc-shim+runc", runc)
	if *flagCrun != "" {
		add("runc-shim+crun", *flagCrun)
	}
	add("runc-shim+containerfd", cfd)
	cfgs = append(cfgs, &config{Name: "containerfd-shim", Shim: shimRuntimeType + " (" + shim + ")"})
	var entries strings.Builder
	for _, c := range cfgs {
		c.handler = strings.ReplaceAll(c.Name, "+", "-")
		c.root = filepath.Join(dir, "runtime", c.handler)
		if c.ours() {
			// Its -v prints containerd's version: say which tree built it.
			rev, _ := exec.Command("git", "describe", "--tags", "--always", "--dirty").Output()
			c.Version = "built from " + strings.TrimSpace(string(rev))
			c.cfgPath = filepath.Join(dir, "containerfd.toml")
			// docs/clients.md, "containerd shim": the options' file.
			check(os.WriteFile(c.cfgPath, []byte(fmt.Sprintf("Root = %q\nSystemdCgroup = false\n", c.root)), 0o644))
			c.ctrFlags = []string{"--runtime", shimRuntimeType, "--runtime-config-path", c.cfgPath}
			fmt.Fprintf(&entries, `[plugins."io.containerd.cri.v1.runtime".containerd.runtimes.%s]
  runtime_type = %q
  [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.%[1]s.options]
    ConfigPath = %[3]q
`, c.handler, shimRuntimeType, c.cfgPath)
			continue
		}
		out, _ := exec.Command(c.Runtime, "--version").Output()
		c.Version = firstLine(string(out))
		c.ctrFlags = []string{"--runc-binary", c.Runtime, "--runc-root", c.root}
		fmt.Fprintf(&entries, `[plugins."io.containerd.cri.v1.runtime".containerd.runtimes.%s]
  runtime_type = "io.containerd.runc.v2"
  [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.%[1]s.options]
    BinaryName = %[2]q
    Root = %[3]q
    SystemdCgroup = false
`, c.handler, c.Runtime, c.root)
	}

	// The images: busybox (sh) and a pause image (busybox sleeping).
	rootfs := filepath.Join(dir, "rootfs")
	mk := exec.Command("bash", "hack/mkrootfs.sh", rootfs)
	mk.Env = append(os.Environ(), "BUSYBOX="+*flagBusybox)
	if out, err := mk.CombinedOutput(); err != nil {
		fatal("hack/mkrootfs.sh: %v: %s", err, out)
	}
	images := map[string]clienttools.Image{
		busyboxRef: {Name: busyboxRef, Cmd: []string{"sh"}},
		pauseRef:   {Name: pauseRef, Entrypoint: []string{"sleep", "2147483647"}},
	}

	startDaemon(entries.String())
	for ref, img := range images {
		tar := filepath.Join(dir, strings.ReplaceAll(filepath.Base(ref), ":", "_")+".tar")
		_, _, err := clienttools.WriteImage(tar, rootfs, img)
		check(err)
		for _, ns := range []string{ctrNS, criNS} {
			if r := ctr(ns, "images", "import", tar); r.err != nil {
				fatal("%v", r.err)
			}
		}
	}
	cc := filepath.Join(dir, "crictl.yaml")
	check(os.WriteFile(cc, []byte(fmt.Sprintf("runtime-endpoint: unix://%s\nimage-endpoint: unix://%[1]s\ntimeout: 60\n", sock)), 0o644))
	crictl = []string{cbin, "--config", cc}
	check(os.MkdirAll(filepath.Join(dir, "fifo"), 0o755))
	check(os.MkdirAll(filepath.Join(dir, "pods"), 0o755))
}

func firstLine(s string) string { return strings.TrimSpace(strings.SplitN(s, "\n", 2)[0]) }

// startDaemon starts containerd 2.x with the CRI plugin and runtime handlers
// entries, under `unshare --mount --propagation private` with a tmpfs on
// /run, as the client tests start theirs.
func startDaemon(entries string) {
	disabled := []string{"io.containerd.snapshotter.v1.erofs", "io.containerd.nri.v1.nri",
		"io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"}
	q := make([]string, len(disabled))
	for i, p := range disabled {
		q[i] = strconv.Quote(p)
	}
	// The CRI section is the client tests' (criSection: our pause image, no
	// CNI, pods on the host's network, restrict_oom_score_adj because
	// CAP_SYS_RESOURCE is not in this machine's bounding set).
	config := fmt.Sprintf(`version = 3
root = %q
state = %q
disabled_plugins = [%s]

[grpc]
  address = %q

[plugins]
  [plugins."io.containerd.internal.v1.opt"]
    path = %q
  [plugins."io.containerd.cri.v1.images"]
    snapshotter = "overlayfs"
    [plugins."io.containerd.cri.v1.images".pinned_images]
      sandbox = %q
  [plugins."io.containerd.cri.v1.runtime"]
    restrict_oom_score_adj = true
    [plugins."io.containerd.cri.v1.runtime".containerd]
      default_runtime_name = %q
%s    [plugins."io.containerd.cri.v1.runtime".cni]
      bin_dirs = [%q]
      conf_dir = %q
  [plugins."io.containerd.grpc.v1.cri"]
    stream_server_address = "127.0.0.1"
    stream_server_port = "0"
`, filepath.Join(dir, "root"), filepath.Join(dir, "state"), strings.Join(q, ", "), sock, filepath.Join(dir, "opt"),
		pauseRef, cfgs[0].handler, indent(entries, "      "), filepath.Join(dir, "cni", "bin"), filepath.Join(dir, "cni", "conf"))
	cp := filepath.Join(dir, "config.toml")
	check(os.WriteFile(cp, []byte(config), 0o644))
	logf, err := os.Create(filepath.Join(dir, "containerd.log"))
	check(err)
	defer logf.Close()
	script := `set -e; mount -t tmpfs -o mode=0755 tmpfs /run; exec "$@"`
	daemon = exec.Command("unshare", "--mount", "--propagation", "private", "--", "/bin/sh", "-c", script, "sh",
		filepath.Join(ctdDir, "containerd"), "--config", cp, "--log-level", "warn")
	// containerd finds the shims on $PATH: 2.x's runc shim, then ours.
	daemon.Env = append(os.Environ(), "PATH="+ctdDir+":"+filepath.Dir(must(filepath.Abs(*flagShim)))+":"+os.Getenv("PATH"))
	daemon.Stdout, daemon.Stderr = logf, logf
	daemon.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	check(daemon.Start())
	deadline := time.Now().Add(30 * time.Second)
	for {
		if c, err := net.Dial("unix", sock); err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(filepath.Join(dir, "containerd.log"))
			if len(b) > 3000 {
				b = b[len(b)-3000:]
			}
			fatal("containerd not ready after 30s; the end of its log:\n%s", b)
		}
		time.Sleep(50 * time.Millisecond)
	}
	progress("containerd %s up (pid %d, %s)", clienttools.Containerd2Version, daemon.Process.Pid, dir)
}

func must[T any](v T, err error) T {
	check(err)
	return v
}

func indent(s, prefix string) string {
	lines := strings.SplitAfter(s, "\n")
	for i, l := range lines {
		if l != "" {
			lines[i] = prefix + l
		}
	}
	return strings.Join(lines, "")
}

// ---------------------------------------------------------------- commands

type res struct {
	out string
	msg string // stderr, for a failure's reason
	dur time.Duration
	err error
}

func runCmd(args ...string) res {
	if stopping.Load() && !cleaned {
		cleanup()
		os.Exit(130)
	}
	ctx, cancel := context.WithTimeout(context.Background(), *flagTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	cmd.Env = append(os.Environ(), "CONTAINERD_SUPPRESS_DEPRECATION_WARNINGS=1")
	var stdout, stderr bytes.Buffer
	cmd.Stdin, cmd.Stdout, cmd.Stderr = devnull, &stdout, &stderr
	t0 := time.Now()
	err := cmd.Run()
	r := res{out: stdout.String(), dur: time.Since(t0)}
	if err != nil {
		msg := strings.TrimSpace(stderr.String() + " " + stdout.String())
		if len(msg) > 400 {
			msg = msg[:400]
		}
		r.msg = strings.TrimSpace(stderr.String())
		r.err = fmt.Errorf("%s %s: %v: %s", filepath.Base(args[0]), strings.Join(args[1:], " "), err, msg)
	}
	return r
}

func ctr(ns string, args ...string) res {
	return runCmd(append([]string{filepath.Join(ctdDir, "ctr"), "--address", sock, "--namespace", ns}, args...)...)
}

func cri(args ...string) res {
	if len(crictl) == 0 {
		return res{err: errors.New("crictl: not set up")}
	}
	return runCmd(append(append([]string{}, crictl...), args...)...)
}

func newID(c *config, op string) string {
	seq++
	return fmt.Sprintf("%s-%s-%d", c.handler, op, seq)
}

// ctrRunArgs is `ctr run` with c's runtime, a cgroup of the bench's own,
// then opts, the image, the id and args.
func ctrRunArgs(c *config, id string, opts []string, args ...string) []string {
	a := append([]string{"run"}, c.ctrFlags...)
	a = append(a, "--cgroup", cgroup+"/"+id, "--fifo-dir", filepath.Join(dir, "fifo"))
	a = append(a, opts...)
	return append(append(a, busyboxRef, id), args...)
}

// ctrRemove deletes a container and its task, whatever state it is in.
func ctrRemove(id string) {
	ctr(ctrNS, "tasks", "delete", "--force", id)
	ctr(ctrNS, "containers", "delete", id)
}

// pod is a CRI pod sandbox of the bench.
type pod struct{ id, config string }

func podConfig(c *config, name string) string {
	seq++
	p := filepath.Join(dir, "pods", fmt.Sprintf("%s-%d.json", name, seq))
	b, _ := json.Marshal(map[string]any{
		"metadata":      map[string]any{"name": fmt.Sprintf("%s-%d", name, seq), "namespace": "bench", "uid": fmt.Sprintf("uid-%d-%d", os.Getpid(), seq), "attempt": 0},
		"log_directory": filepath.Join(dir, "logs"),
		"linux": map[string]any{
			"cgroup_parent": cgroup,
			// network NODE: no CNI needed; pid CONTAINER, ipc POD.
			"security_context": map[string]any{"namespace_options": map[string]any{"network": 2, "pid": 1, "ipc": 0}},
		},
	})
	check(os.WriteFile(p, b, 0o644))
	return p
}

func containerConfig(name string, args ...string) string {
	seq++
	p := filepath.Join(dir, "pods", fmt.Sprintf("ctr-%s-%d.json", name, seq))
	b, _ := json.Marshal(map[string]any{
		"metadata": map[string]any{"name": name},
		"image":    map[string]any{"image": busyboxRef},
		"command":  args,
		"log_path": name + ".log",
	})
	check(os.WriteFile(p, b, 0o644))
	return p
}

// criStart is runp + create + start of one container running args; it
// returns the pod, the container's id and the three durations.
func criStart(c *config, args ...string) (pod, string, [3]time.Duration, error) {
	var d [3]time.Duration
	pc := podConfig(c, "pod")
	r := cri("runp", "--runtime", c.handler, pc)
	if r.err != nil {
		return pod{}, "", d, r.err
	}
	p := pod{strings.TrimSpace(r.out), pc}
	d[0] = r.dur
	cid, dc, err := criAdd(p, "app", args...)
	d[1], d[2] = dc[0], dc[1]
	return p, cid, d, err
}

// criAdd creates and starts a container in p.
func criAdd(p pod, name string, args ...string) (string, [2]time.Duration, error) {
	var d [2]time.Duration
	r := cri("create", p.id, containerConfig(name, args...), p.config)
	if r.err != nil {
		return "", d, r.err
	}
	cid := strings.TrimSpace(r.out)
	d[0] = r.dur
	r = cri("start", cid)
	d[1] = r.dur
	return cid, d, r.err
}

func criRemove(p pod) {
	if p.id != "" {
		cri("rmp", "--force", p.id)
	}
}

// ---------------------------------------------------------------- metrics

func newMetric(name, desc, unit, goal string) *metric {
	m := &metric{Name: name, Desc: desc, Unit: unit, By: map[string]*stat{}, Goal: goal}
	for _, c := range cfgs {
		m.By[c.Name] = &stat{Unit: unit}
	}
	metrics = append(metrics, m)
	return m
}

func (m *metric) add(c *config, v float64) {
	s := m.By[c.Name]
	s.Samples = append(s.Samples, v)
}

func (m *metric) fail(c *config, err error) {
	if s := m.By[c.Name]; s.Error == "" {
		s.Error = err.Error()
		progress("%s/%s: %v", m.Name, c.Name, err)
	}
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

// ---------------------------------------------------------------- benchmarks

// warmUp runs /bin/true once per configuration with ctr: a configuration
// that fails is not measurable; its runtime is then also tried alone on a
// bundle with the oldest ociVersion, to tell whether containerd's spec or
// the host is what it refuses.
func warmUp() {
	for _, c := range cfgs {
		id := newID(c, "warmup")
		r := ctr(ctrNS, ctrRunArgs(c, id, []string{"--rm"}, "/bin/true")...)
		if r.err == nil {
			continue
		}
		ctrRemove(id)
		c.NotMeas = "ctr run: " + r.msg
		if !c.ours() {
			c.NotMeas += "; " + probeAlone(c)
		}
		progress("%s is not measurable here: %s", c.Name, c.NotMeas)
	}
}

// probeAlone runs c's runtime by itself on /bin/true in a bundle whose
// ociVersion is 1.0.2 (containerfd spec's default otherwise), and says what
// happened.
func probeAlone(c *config) string {
	b := filepath.Join(dir, "probe-"+c.Name)
	check(os.MkdirAll(b, 0o755))
	defer os.RemoveAll(b)
	if r := runCmd(must(filepath.Abs(*flagCfd)), "spec", "--bundle", b); r.err != nil {
		return "no probe: " + r.err.Error()
	}
	var spec map[string]any
	check(json.Unmarshal(must(os.ReadFile(filepath.Join(b, "config.json"))), &spec))
	spec["ociVersion"] = "1.0.2"
	spec["root"] = map[string]any{"path": filepath.Join(dir, "rootfs"), "readonly": true}
	proc := spec["process"].(map[string]any)
	proc["terminal"], proc["args"] = false, []string{"/bin/true"}
	id := newID(c, "probe")
	spec["linux"].(map[string]any)["cgroupsPath"] = cgroup + "/" + id
	check(os.WriteFile(filepath.Join(b, "config.json"), must(json.Marshal(spec)), 0o644))
	root := filepath.Join(dir, "probe-root")
	r := runCmd(c.Runtime, "--root", root, "run", "--bundle", b, id)
	runCmd(c.Runtime, "--root", root, "delete", "--force", id)
	if r.err != nil {
		return fmt.Sprintf("%s alone with ociVersion 1.0.2: %s", filepath.Base(c.Runtime), r.msg)
	}
	return fmt.Sprintf("%s alone with ociVersion 1.0.2: runs", filepath.Base(c.Runtime))
}

func measurable() []*config {
	var l []*config
	for _, c := range cfgs {
		if c.NotMeas == "" {
			l = append(l, c)
		}
	}
	return l
}

// benchLatency measures, interleaved sample by sample: ctr run -d to a
// running task, ctr run --rm of /bin/true, ctr task exec, the CRI pod +
// container start, crictl exec -s.
func benchLatency(want func(string) bool) {
	progress("latencies ×%d per configuration", *flagN)
	startGoal := "containerfd-shim ≤ 0.5× runc-shim+crun"
	var mStart, mTask, mRun, mExec, mCRI, mRunp, mCreate, mStartC, mCRIExec *metric
	if want("start") {
		mStart = newMetric("ctr_run_detach", "ctr run -d of sleep: returns with the task running", "ms", startGoal)
		mTask = newMetric("ctr_task_start", "ctr task start -d of a container made by ctr container create (untimed): the task's create and start only", "ms", startGoal)
	}
	if want("run") {
		mRun = newMetric("ctr_run_rm_true", "ctr run --rm of /bin/true: run to exit, container removed", "ms", "")
	}
	if want("exec") {
		mExec = newMetric("ctr_task_exec", "ctr task exec of /bin/true into a running container", "ms", "")
	}
	if want("cri") {
		mCRI = newMetric("cri_pod_container_start", "crictl runp + create + start (sleep)", "ms", startGoal)
		mRunp = newMetric("cri_runp", "— runp (of the above)", "ms", "")
		mCreate = newMetric("cri_create", "— create (of the above)", "ms", "")
		mStartC = newMetric("cri_start", "— start (of the above)", "ms", "")
	}
	if want("criexec") {
		mCRIExec = newMetric("crictl_exec_sync", "crictl exec -s (ExecSync) of /bin/true into a running container", "ms", "")
	}
	// One running container per configuration for the execs, with ctr and
	// in a CRI pod.
	type live struct {
		ctrID string
		pod   pod
		criID string
	}
	lives := map[string]*live{}
	for _, c := range measurable() {
		l := &live{}
		lives[c.Name] = l
		if mExec != nil {
			l.ctrID = newID(c, "sleeper")
			if r := ctr(ctrNS, ctrRunArgs(c, l.ctrID, []string{"-d"}, "sleep", "3600")...); r.err != nil {
				mExec.fail(c, r.err)
				ctrRemove(l.ctrID)
				l.ctrID = ""
			}
		}
		if mCRIExec != nil {
			p, cid, _, err := criStart(c, "sleep", "3600")
			l.pod = p
			if err != nil {
				mCRIExec.fail(c, err)
			} else {
				l.criID = cid
			}
		}
	}
	// What every sample pays for the client alone: a ctr and a crictl
	// command that only ask the daemon.
	floorCtr := newMetric("floor_ctr", "ctr version (the client's own start and a round trip: in every ctr sample)", "ms", "")
	floorCri := newMetric("floor_crictl", "crictl version (the same for crictl)", "ms", "")
	floorCtr.noRatio, floorCri.noRatio = true, true
	for i := 0; i < *flagN+1; i++ {
		if i > 0 && i%10 == 0 {
			progress("  sample %d/%d", i, *flagN)
		}
		for _, c := range measurable() {
			l := lives[c.Name]
			for _, f := range []struct {
				m *metric
				r func() res
			}{{floorCtr, func() res { return ctr(ctrNS, "version") }}, {floorCri, func() res { return cri("version") }}} {
				if r := f.r(); r.err != nil {
					f.m.fail(c, r.err)
				} else if i > 0 {
					f.m.add(c, ms(r.dur))
				}
			}
			if mTask != nil {
				id := newID(c, "task")
				create := append(append([]string{"containers", "create"}, c.ctrFlags...), busyboxRef, id, "sleep", "3600")
				if r := ctr(ctrNS, create...); r.err != nil {
					mTask.fail(c, r.err)
				} else if r := ctr(ctrNS, "tasks", "start", "-d", "--fifo-dir", filepath.Join(dir, "fifo"), id); r.err != nil {
					mTask.fail(c, r.err)
				} else if i > 0 {
					mTask.add(c, ms(r.dur))
				}
				ctrRemove(id)
			}
			if mStart != nil {
				id := newID(c, "start")
				r := ctr(ctrNS, ctrRunArgs(c, id, []string{"-d"}, "sleep", "3600")...)
				if r.err != nil {
					mStart.fail(c, r.err)
				} else if i > 0 {
					mStart.add(c, ms(r.dur))
				}
				ctrRemove(id)
			}
			if mRun != nil {
				id := newID(c, "run")
				r := ctr(ctrNS, ctrRunArgs(c, id, []string{"--rm"}, "/bin/true")...)
				if r.err != nil {
					mRun.fail(c, r.err)
					ctrRemove(id)
				} else if i > 0 {
					mRun.add(c, ms(r.dur))
				}
			}
			if mExec != nil && l.ctrID != "" {
				r := ctr(ctrNS, "tasks", "exec", "--exec-id", fmt.Sprintf("e%d", i), "--fifo-dir", filepath.Join(dir, "fifo"), l.ctrID, "/bin/true")
				if r.err != nil {
					mExec.fail(c, r.err)
				} else if i > 0 {
					mExec.add(c, ms(r.dur))
				}
			}
			if mCRI != nil {
				p, _, d, err := criStart(c, "sleep", "3600")
				if err != nil {
					mCRI.fail(c, err)
				} else if i > 0 {
					mCRI.add(c, ms(d[0]+d[1]+d[2]))
					mRunp.add(c, ms(d[0]))
					mCreate.add(c, ms(d[1]))
					mStartC.add(c, ms(d[2]))
				}
				criRemove(p)
			}
			if mCRIExec != nil && l.criID != "" {
				r := cri("exec", "-s", l.criID, "/bin/true")
				if r.err != nil {
					mCRIExec.fail(c, r.err)
				} else if i > 0 {
					mCRIExec.add(c, ms(r.dur))
				}
			}
		}
	}
	for _, l := range lives {
		if l.ctrID != "" {
			ctrRemove(l.ctrID)
		}
		criRemove(l.pod)
	}
	for _, m := range []*metric{mStart, mTask, mRun, mExec, mCRI, mRunp, mCreate, mStartC, mCRIExec, floorCtr, floorCri} {
		if m != nil {
			finish(m)
		}
	}
}

// benchMemory measures the shims' memory, one configuration at a time.
func benchMemory() {
	progress("shim memory ×%d per configuration", *flagMemN)
	memGoal := "containerfd-shim ≤ runc-shim's"
	type pair struct{ rss, pss *metric }
	newPair := func(name, desc string) pair {
		return pair{newMetric(name+"_rss", "RSS of the shim and its helpers "+desc, "KiB", memGoal),
			newMetric(name+"_pss", "PSS of the shim and its helpers "+desc, "KiB", memGoal)}
	}
	sizes := []int{1, 10}
	ctrM := map[int]pair{}
	criM := map[int]pair{}
	for _, n := range sizes {
		ctrM[n] = newPair(fmt.Sprintf("shim_mem_ctr_%d", n), fmt.Sprintf("(sum over the daemon's shims) serving %d ctr container(s) grouped by %s", n, groupAnnotation))
	}
	for _, n := range sizes {
		criM[n] = newPair(fmt.Sprintf("shim_mem_cri_%d", n), fmt.Sprintf("(sum over the daemon's shims) serving a CRI pod: its sandbox and %d container(s)", n))
	}
	record := func(p pair, c *config) {
		// Let the shim settle (its goroutines, the exec'd runtime gone).
		time.Sleep(500 * time.Millisecond)
		rss, pss, note, err := shimMemory()
		if err != nil {
			p.rss.fail(c, err)
			return
		}
		p.rss.add(c, float64(rss))
		p.pss.add(c, float64(pss))
		// The last sample's, when there is more than one shim to it.
		p.rss.By[c.Name].Note = note
	}
	for _, c := range measurable() {
		for s := 0; s < *flagMemN; s++ {
			for _, n := range sizes {
				// ctr: n containers with the same group annotation.
				group := newID(c, "group")
				var ids []string
				var err error
				for k := 0; k < n && err == nil; k++ {
					id := newID(c, "mem")
					ids = append(ids, id)
					err = ctr(ctrNS, ctrRunArgs(c, id, []string{"-d", "--annotation", groupAnnotation + "=" + group}, "sleep", "3600")...).err
				}
				if err != nil {
					ctrM[n].rss.fail(c, err)
				} else {
					record(ctrM[n], c)
				}
				for _, id := range ids {
					ctrRemove(id)
				}
				waitNoShim()
				// CRI: a pod with n containers.
				p, _, _, err := criStart(c, "sleep", "3600")
				for k := 1; k < n && err == nil; k++ {
					_, _, err = criAdd(p, fmt.Sprintf("app%d", k), "sleep", "3600")
				}
				if err != nil {
					criM[n].rss.fail(c, err)
				} else {
					record(criM[n], c)
				}
				criRemove(p)
				waitNoShim()
			}
		}
	}
	for _, n := range sizes {
		for _, p := range []pair{ctrM[n], criM[n]} {
			finish(p.rss)
			finish(p.pss)
		}
	}
}

// shims lists the pids of the shims of our daemon (their command line
// names its socket).
func shims() []int {
	var pids []int
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if err != nil {
			continue
		}
		args := strings.Split(string(b), "\x00")
		if strings.HasPrefix(filepath.Base(args[0]), "containerd-shim-") && strings.Contains(string(b), sock) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// shimMemory sums Rss and Pss (KiB) of smaps_rollup over the daemon's
// shims and their helpers: their descendants in their own pid namespace
// (containerfd's shim runs one watcher process for its containers, outside them;
// the containers' processes are in pid namespaces of their own). It says
// how many processes that was, and how many others run a shim's binary
// (which then shares its pages with them, and so lowers its PSS).
func shimMemory() (rss, pss int64, note string, err error) {
	roots := shims()
	if len(roots) == 0 {
		return 0, 0, "", errors.New("no shim found")
	}
	children := map[int][]int{}
	ents, _ := os.ReadDir("/proc")
	var all []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		all = append(all, pid)
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		// pid (comm) state ppid …: comm may hold spaces and parentheses.
		f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
		if len(f) > 1 {
			ppid, _ := strconv.Atoi(f[1])
			children[ppid] = append(children[ppid], pid)
		}
	}
	group := map[int]bool{}
	for _, r := range roots {
		ns, _ := os.Readlink(fmt.Sprintf("/proc/%d/ns/pid", r))
		todo := []int{r}
		for len(todo) > 0 {
			p := todo[0]
			todo = todo[1:]
			if n, _ := os.Readlink(fmt.Sprintf("/proc/%d/ns/pid", p)); n != ns || group[p] {
				continue
			}
			group[p] = true
			todo = append(todo, children[p]...)
		}
	}
	exes := map[[2]uint64]bool{}
	for _, r := range roots {
		var st unix.Stat_t
		if unix.Stat(fmt.Sprintf("/proc/%d/exe", r), &st) == nil {
			exes[[2]uint64{st.Dev, st.Ino}] = true
		}
	}
	sharers := 0
	for _, p := range all {
		var st unix.Stat_t
		if !group[p] && unix.Stat(fmt.Sprintf("/proc/%d/exe", p), &st) == nil && exes[[2]uint64{st.Dev, st.Ino}] {
			sharers++
		}
	}
	isRoot := map[int]bool{}
	for _, r := range roots {
		isRoot[r] = true
	}
	var rootRSS, rootPSS int64
	for pid := range group {
		if *flagSmaps != "" {
			saveSmaps(pid)
		}
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps_rollup", pid))
		if err != nil {
			return 0, 0, "", err
		}
		for _, l := range strings.Split(string(b), "\n") {
			f := strings.Fields(l)
			if len(f) < 2 {
				continue
			}
			v, _ := strconv.ParseInt(f[1], 10, 64)
			switch f[0] {
			case "Rss:":
				rss += v
				if isRoot[pid] {
					rootRSS += v
				}
			case "Pss:":
				pss += v
				if isRoot[pid] {
					rootPSS += v
				}
			}
		}
	}
	var notes []string
	if len(roots) > 1 {
		notes = append(notes, fmt.Sprintf("%d shims", len(roots)))
	}
	if h := len(group) - len(roots); h > 0 {
		notes = append(notes, fmt.Sprintf("the shim and %d helper processes; the shim alone: RSS %d, PSS %d", h, rootRSS, rootPSS))
	}
	if sharers > 0 {
		notes = append(notes, fmt.Sprintf("the shim's binary also run by %d other processes (lowers PSS)", sharers))
	}
	return rss, pss, strings.Join(notes, "; "), nil
}

// saveSmaps copies pid's smaps to -smaps, named by its command and pid.
func saveSmaps(pid int) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps", pid))
	if err != nil {
		progress("smaps of %d: %v", pid, err)
		return
	}
	comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
	name := fmt.Sprintf("%s-%d.smaps", strings.TrimSpace(string(comm)), pid)
	check(os.MkdirAll(*flagSmaps, 0o755))
	check(os.WriteFile(filepath.Join(*flagSmaps, name), b, 0o644))
}

// waitNoShim waits for the shims of removed containers to leave, so that a
// measurement sees only its own.
func waitNoShim() {
	for i := 0; i < 200 && len(shims()) > 0; i++ {
		time.Sleep(50 * time.Millisecond)
	}
}

// ---------------------------------------------------------------- cleanup

var (
	cleaned  bool
	stopping atomic.Bool // a signal came: see onSignal
)

// cleanup removes every container and pod, stops the daemon, ends what it
// left (by pid: processes naming our directory), removes our cgroups and
// the directory. It runs at the end, on a fatal error and on a signal.
func cleanup() {
	if cleaned {
		return
	}
	cleaned = true
	if daemon != nil && daemon.Process != nil {
		if out := cri("pods", "--quiet"); out.err == nil {
			for _, id := range strings.Fields(out.out) {
				cri("rmp", "--force", id)
			}
		}
		if out := ctr(ctrNS, "containers", "list", "--quiet"); out.err == nil {
			for _, id := range strings.Fields(out.out) {
				ctrRemove(id)
			}
		}
		waitNoShim()
		daemon.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { daemon.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			progress("containerd did not exit within 15s of SIGTERM: killing it")
			daemon.Process.Kill()
			<-done
		}
	}
	if dir != "" {
		for _, pid := range processesWith(dir) {
			progress("left after containerd stopped, killing it: pid %d", pid)
			unix.Kill(pid, unix.SIGKILL)
		}
	}
	removeCgroups()
	if dir != "" {
		os.RemoveAll(dir)
	}
}

func processesWith(s string) []int {
	var pids []int
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		if b, err := os.ReadFile("/proc/" + e.Name() + "/cmdline"); err == nil && strings.Contains(string(b), s) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// removeCgroups removes our cgroup parent from every hierarchy, deepest
// first (the runtimes remove their containers'; this takes what a failure
// left, and the parents).
func removeCgroups() {
	parents, _ := filepath.Glob("/sys/fs/cgroup/*" + cgroup)
	if fi, err := os.Stat("/sys/fs/cgroup" + cgroup); err == nil && fi.IsDir() {
		parents = append(parents, "/sys/fs/cgroup"+cgroup)
	}
	for _, p := range parents {
		var dirs []string
		filepath.WalkDir(p, func(path string, d os.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				dirs = append(dirs, path)
			}
			return nil
		})
		for i := len(dirs) - 1; i >= 0; i-- {
			if err := syscall.Rmdir(dirs[i]); err != nil && !errors.Is(err, syscall.ENOENT) {
				progress("rmdir %s: %v", dirs[i], err)
			}
		}
	}
}

// onSignal makes the next command the bench runs clean up and exit
// instead: the cleanup then runs where every command runs, after the one in
// flight, so that none starts a container behind it.
func onSignal() {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, os.Interrupt, syscall.SIGTERM)
	go func() {
		s := <-ch
		progress("%v: cleaning up after the command in flight", s)
		stopping.Store(true)
	}()
}

// ---------------------------------------------------------------- output

const ours = "containerfd-shim"

func computeRatios() {
	for _, m := range metrics {
		o := m.By[ours]
		if m.noRatio || o == nil || len(o.Samples) == 0 {
			continue
		}
		m.Ratios = map[string]float64{}
		for _, c := range cfgs {
			p := m.By[c.Name]
			if c.Name == ours || len(p.Samples) == 0 || p.Median == 0 {
				continue
			}
			m.Ratios[c.Name] = math.Round(o.Median/p.Median*1000) / 1000
		}
	}
}

func fmtVal(v float64, unit string) string {
	if unit == "KiB" || v >= 100 {
		return fmt.Sprintf("%.0f", v)
	}
	return fmt.Sprintf("%.1f", v)
}

func printTable(w io.Writer) {
	var u unix.Utsname
	unix.Uname(&u)
	fmt.Fprintf(w, "\nhost: Linux %s, %d CPUs, load average %s at the start, %s at the end; containerd %s (%s); N=%d, memory N=%d\n",
		unix.ByteSliceToString(u.Release[:]), runtime.NumCPU(), loadStart, loadavg(), clienttools.Containerd2Version, ctdDir, *flagN, *flagMemN)
	for _, c := range cfgs {
		rt := c.Runtime
		if rt == "" {
			rt = "-"
		}
		fmt.Fprintf(w, "  %-22s shim %s, runtime %s: %s\n", c.Name, c.Shim, rt, c.Version)
	}
	fmt.Fprintln(w)
	hdr := []string{"metric", "unit"}
	for _, c := range cfgs {
		hdr = append(hdr, c.Name)
	}
	var others []*config
	for _, c := range cfgs {
		if c.Name != ours {
			others = append(others, c)
			hdr = append(hdr, "ours/"+strings.TrimPrefix(c.Name, "runc-shim+"))
		}
	}
	rows := [][]string{hdr}
	for _, m := range metrics {
		row := []string{m.Name, m.Unit}
		for _, c := range cfgs {
			s := m.By[c.Name]
			switch {
			case c.NotMeas != "":
				row = append(row, "n/m")
			case len(s.Samples) == 0 && s.Error != "":
				row = append(row, "FAILED")
			case len(s.Samples) == 0:
				row = append(row, "-")
			default:
				v := fmt.Sprintf("%s [%s–%s]", fmtVal(s.Median, m.Unit), fmtVal(s.Min, m.Unit), fmtVal(s.Max, m.Unit))
				if s.Error != "" {
					v += " (errors)"
				}
				if s.Note != "" {
					v += " *"
				}
				row = append(row, v)
			}
		}
		for _, c := range others {
			if r, ok := m.Ratios[c.Name]; ok {
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
			widths[i] = max(widths[i], len([]rune(c)))
		}
	}
	total := 0
	for _, x := range widths {
		total += x + 2
	}
	for j, r := range rows {
		for i, c := range r {
			pad := strings.Repeat(" ", widths[i]-len([]rune(c)))
			if i >= 2 {
				fmt.Fprint(w, pad+c+"  ")
			} else {
				fmt.Fprint(w, c+pad+"  ")
			}
		}
		fmt.Fprintln(w)
		if j == 0 {
			fmt.Fprintln(w, strings.Repeat("-", total))
		}
	}
	fmt.Fprintln(w, "\nmedian [min–max]; n/m: not measurable (below); ours/X: containerfd-shim's median ÷ X's; * a note below")
	for _, m := range metrics {
		for _, c := range cfgs {
			if n := m.By[c.Name].Note; n != "" {
				fmt.Fprintf(w, "  * %s/%s (last sample): %s\n", m.Name, c.Name, n)
			}
		}
	}
	fmt.Fprintln(w, "goals (issue 17):")
	for _, m := range metrics {
		if m.Goal != "" {
			fmt.Fprintf(w, "  %-26s %s\n", m.Name, m.Goal)
		}
	}
	for _, c := range cfgs {
		if c.NotMeas != "" {
			fmt.Fprintf(w, "not measurable: %s: %s\n", c.Name, c.NotMeas)
		}
	}
	for _, m := range metrics {
		for _, c := range cfgs {
			if e := m.By[c.Name].Error; e != "" {
				fmt.Fprintf(w, "error: %s/%s: %s\n", m.Name, c.Name, e)
			}
		}
	}
}

func writeOut(text []byte, took float64) {
	var u unix.Utsname
	unix.Uname(&u)
	rep := report{Date: time.Now().UTC(), Host: "Linux " + unix.ByteSliceToString(u.Release[:]), Containerd: clienttools.Containerd2Version,
		Load: []string{loadStart, loadavg()}, N: *flagN, MemN: *flagMemN, Seconds: math.Round(took), Configs: cfgs, Metrics: metrics}
	for _, p := range []string{*flagJSON, *flagText} {
		if p != "" {
			check(os.MkdirAll(filepath.Dir(p), 0o755))
		}
	}
	if *flagJSON != "" {
		b, err := json.MarshalIndent(rep, "", "  ")
		check(err)
		check(os.WriteFile(*flagJSON, append(b, '\n'), 0o644))
	}
	if *flagText != "" {
		check(os.WriteFile(*flagText, text, 0o644))
	}
}
