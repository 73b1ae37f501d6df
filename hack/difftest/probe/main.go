// Command probe prints what a process observes of its container, one
// "section key: value" line each, in an order that does not depend on the
// runtime: hack/difftest.sh runs it as the process of the same bundles under
// runc and containerfd and diffs the outputs. Values that differ from run to
// run (pids outside a pid namespace, device numbers of anonymous file
// systems, sizes of the host's memory) are printed as classes, not numbers.
// It is built static (CGO_ENABLED=0): the bundles have no libc.
package main

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

func main() {
	w := bufio.NewWriter(os.Stdout)
	defer w.Flush()
	p := func(section, format string, a ...any) {
		fmt.Fprintf(w, "%s %s\n", section, fmt.Sprintf(format, a...))
	}
	ids(p)
	status(p)
	environ(p)
	files(p)
	limits(p)
	mounts(p)
	devices(p)
	paths(p)
	cgroups(p)
	fds(p)
}

type printer func(section, format string, a ...any)

func ids(p printer) {
	groups, err := syscall.Getgroups()
	p("id", "uid=%d euid=%d gid=%d egid=%d groups=%v err=%v",
		syscall.Getuid(), syscall.Geteuid(), syscall.Getgid(), syscall.Getegid(), groups, errText(err))
	pid, ppid := syscall.Getpid(), syscall.Getppid()
	sid, _, _ := syscall.RawSyscall(syscall.SYS_GETSID, 0, 0, 0)
	pgid := syscall.Getpgrp()
	p("id", "pid=%s ppid=%s", pidClass(pid), pidClass(ppid))
	// Whether this process leads its session and process group is what
	// the container sees; the numbers are the pid namespace's.
	p("id", "sid-is-self=%v pgid-is-self=%v", int(sid) == pid, pgid == pid)
	wd, err := os.Getwd()
	p("id", "cwd=%s err=%v", wd, errText(err))
	host, _ := os.Hostname()
	p("id", "hostname=%s domainname=%s", host, readTrim("/proc/sys/kernel/domainname"))
	p("id", "umask=%s personality=%s", statusField("Umask"), readTrim("/proc/self/personality"))
	p("id", "oom_score_adj=%s", readTrim("/proc/self/oom_score_adj"))
	p("id", "attr=%q", readTrim("/proc/self/attr/current"))
	for _, s := range []string{"net/ipv4/ip_forward", "net/ipv4/ping_group_range", "kernel/shmmni", "kernel/msgmax"} {
		p("sysctl", "%s=%s", s, readTrim("/proc/sys/"+s))
	}
}

func pidClass(pid int) string {
	if pid <= 1 {
		return strconv.Itoa(pid)
	}
	return ">1"
}

func status(p printer) {
	for _, k := range []string{"CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb", "NoNewPrivs", "Seccomp", "Seccomp_filters", "Cpus_allowed_list", "Mems_allowed_list"} {
		p("status", "%s=%s", k, statusField(k))
	}
}

func statusField(key string) string {
	b, _ := os.ReadFile("/proc/self/status")
	for _, l := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(l, ":"); ok && k == key {
			return strings.TrimSpace(v)
		}
	}
	return "-"
}

func environ(p printer) {
	env := os.Environ()
	sort.Strings(env)
	for _, e := range env {
		p("env", "%s", e)
	}
	if len(env) == 0 {
		p("env", "(none)")
	}
}

// files lists what the image has that a runtime may change: the passwd and
// group files, /etc/hosts and friends, /tmp.
func files(p printer) {
	for _, f := range []string{"/", "/etc", "/etc/hostname", "/etc/hosts", "/etc/resolv.conf", "/tmp", "/root"} {
		p("file", "%s %s", f, describe(f))
	}
}

func limits(p printer) {
	b, err := os.ReadFile("/proc/self/limits")
	if err != nil {
		p("rlimit", "err=%v", errText(err))
		return
	}
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n")[1:] {
		// "Max open files            1024                 1048576              files"
		f := strings.Fields(l)
		if len(f) < 3 {
			continue
		}
		n := len(f)
		unit := 0
		if _, err := strconv.Atoi(f[n-1]); err != nil && f[n-1] != "unlimited" {
			unit = 1
		}
		p("rlimit", "%s soft=%s hard=%s", strings.Join(f[:n-2-unit], "-"), f[n-2-unit], f[n-1-unit])
	}
}

// mounts prints /proc/self/mountinfo in its order: mount point, root in the
// file system, type, per-mount and super options, propagation, and the owner
// and mode of the mount point. Ids and device numbers are left out.
func mounts(p printer) {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		p("mount", "err=%v", errText(err))
		return
	}
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		pre, post, _ := strings.Cut(l, " - ")
		f, g := strings.Fields(pre), strings.Fields(post)
		if len(f) < 6 || len(g) < 3 {
			continue
		}
		prop := strings.Join(f[6:], ",")
		if prop == "" {
			prop = "private"
		}
		p("mount", "%s root=%s type=%s opts=%s super=%s prop=%s %s",
			f[4], f[3], g[0], f[5], sizeless(g[2]), propClass(prop), describe(unescape(f[4])))
	}
}

// sizeless drops the options whose values are the host's (a tmpfs's default
// size and inode count follow the machine's memory).
func sizeless(opts string) string {
	var keep []string
	for _, o := range strings.Split(opts, ",") {
		if strings.HasPrefix(o, "size=") || strings.HasPrefix(o, "nr_inodes=") {
			continue
		}
		keep = append(keep, o)
	}
	return strings.Join(keep, ",")
}

// propClass keeps the kinds of propagation and drops the peer group ids.
func propClass(prop string) string {
	var kinds []string
	for _, o := range strings.Split(prop, ",") {
		k, _, _ := strings.Cut(o, ":")
		kinds = append(kinds, k)
	}
	return strings.Join(kinds, ",")
}

func unescape(s string) string {
	r := strings.NewReplacer(`\040`, " ", `\011`, "\t", `\012`, "\n", `\134`, `\`)
	return r.Replace(s)
}

func devices(p printer) {
	_ = filepath.WalkDir("/dev", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			p("dev", "%s err=%v", path, errText(err))
			return nil
		}
		// Two levels: /dev/pts, /dev/shm, /dev/mqueue and what is in
		// them at start.
		if d.IsDir() && strings.Count(path, "/") > 2 {
			return filepath.SkipDir
		}
		p("dev", "%s %s", path, describe(path))
		return nil
	})
}

// paths tries the paths a runtime masks or makes read-only by default: how
// they look, whether they read, whether they open for writing.
func paths(p printer) {
	for _, f := range []string{
		"/proc/acpi", "/proc/asound", "/proc/interrupts", "/proc/kcore", "/proc/keys",
		"/proc/latency_stats", "/proc/sched_debug", "/proc/scsi", "/proc/timer_list",
		"/proc/timer_stats", "/sys/firmware", "/sys/devices/virtual/powercap",
		"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger",
		"/proc/sys/kernel/hostname", "/sys/fs/cgroup",
	} {
		p("path", "%s %s read=%s write=%s", f, describe(f), tryRead(f), tryWrite(f))
	}
}

func tryRead(path string) string {
	st, err := os.Stat(path)
	if err != nil {
		return errText(err)
	}
	if st.IsDir() {
		ents, err := os.ReadDir(path)
		if err != nil {
			return errText(err)
		}
		return fmt.Sprintf("%d-entries", len(ents))
	}
	f, err := os.Open(path)
	if err != nil {
		return errText(err)
	}
	defer f.Close()
	buf := make([]byte, 1)
	n, err := f.Read(buf)
	if err != nil && n == 0 {
		return errText(err)
	}
	return "ok"
}

// tryWrite opens a file for writing without writing (sysrq-trigger acts
// on a write, not an open), and creates and removes a file in a directory.
func tryWrite(path string) string {
	st, err := os.Stat(path)
	if err != nil {
		return errText(err)
	}
	if st.IsDir() {
		name := filepath.Join(path, ".probe-write")
		f, err := os.OpenFile(name, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
		if err != nil {
			return errText(err)
		}
		f.Close()
		os.Remove(name)
		return "ok"
	}
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return errText(err)
	}
	f.Close()
	return "ok"
}

// cgroups prints the container's cgroup as it sees it, what /sys/fs/cgroup
// holds, and the limits a program reads there (a JVM, GOMEMLIMIT helpers).
func cgroups(p printer) {
	for _, l := range strings.Split(readTrim("/proc/self/cgroup"), "\n") {
		p("cgroup", "self %s", l)
	}
	ents, err := os.ReadDir("/sys/fs/cgroup")
	if err != nil {
		p("cgroup", "ls err=%v", errText(err))
	}
	for _, e := range ents {
		p("cgroup", "ls %s %s", e.Name(), describe(filepath.Join("/sys/fs/cgroup", e.Name())))
	}
	for _, f := range []string{
		"memory.max", "memory.limit_in_bytes", "memory/memory.limit_in_bytes", "memory/memory.memsw.limit_in_bytes",
		"pids.max", "pids/pids.max", "cpu.max", "cpu/cpu.cfs_quota_us", "cpu,cpuacct/cpu.cfs_quota_us",
		"cpu.weight", "cpu/cpu.shares", "cpu,cpuacct/cpu.shares", "cpuset.cpus.effective", "cpuset/cpuset.cpus",
		"cgroup.controllers", "cgroup.procs", "freezer/freezer.state", "cgroup.freeze",
	} {
		v := readTrim(filepath.Join("/sys/fs/cgroup", f))
		if f == "cgroup.procs" {
			v = strconv.Itoa(len(strings.Fields(v))) + "-pids"
		}
		p("cgroup", "%s=%s", f, strings.ReplaceAll(v, "\n", " "))
	}
}

func fds(p printer) {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		p("fd", "err=%v", errText(err))
		return
	}
	for _, e := range ents {
		t, err := os.Readlink("/proc/self/fd/" + e.Name())
		if err != nil {
			continue // the directory's own fd, closed by now
		}
		if i := strings.Index(t, ":["); i > 0 {
			t = t[:i] // pipe:[1234]: the kind, not the inode
		}
		p("fd", "%s -> %s", e.Name(), t)
	}
}

// describe is a path's type, mode, owner and, for devices, number.
func describe(path string) string {
	st, err := os.Lstat(path)
	if err != nil {
		return "missing:" + errText(err)
	}
	sys := st.Sys().(*syscall.Stat_t)
	s := fmt.Sprintf("%s %d:%d", st.Mode().String(), sys.Uid, sys.Gid)
	switch {
	case st.Mode()&fs.ModeSymlink != 0:
		t, _ := os.Readlink(path)
		s += " -> " + t
	case st.Mode()&fs.ModeDevice != 0:
		s += fmt.Sprintf(" dev=%d:%d", unix.Major(sys.Rdev), unix.Minor(sys.Rdev))
	}
	return s
}

func readTrim(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return errText(err)
	}
	return strings.TrimSpace(string(b))
}

// errText is an error as its errno's name, which is what a program sees.
func errText(err error) string {
	if err == nil {
		return "nil"
	}
	var errno syscall.Errno
	if errors.As(err, &errno) {
		if name := errnoNames[errno]; name != "" {
			return name
		}
		return "errno-" + strconv.Itoa(int(errno))
	}
	if errors.Is(err, fs.ErrNotExist) {
		return "ENOENT"
	}
	return err.Error()
}

var errnoNames = map[syscall.Errno]string{
	syscall.EPERM: "EPERM", syscall.ENOENT: "ENOENT", syscall.EACCES: "EACCES",
	syscall.EROFS: "EROFS", syscall.EINVAL: "EINVAL", syscall.EIO: "EIO",
	syscall.ENOTDIR: "ENOTDIR", syscall.EISDIR: "EISDIR", syscall.ENOSYS: "ENOSYS",
	syscall.EBUSY: "EBUSY", syscall.EEXIST: "EEXIST", syscall.ENXIO: "ENXIO",
	syscall.ENODEV: "ENODEV", syscall.EOPNOTSUPP: "EOPNOTSUPP",
}
