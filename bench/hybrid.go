package main

import (
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// crun (up to at least 1.8.1) refuses a hybrid cgroup layout whose cgroup2
// mount still has controllers ("cgroups in hybrid mode not supported, drop
// all controllers from cgroupv2"); a fresh machine here leaves hugetlb there.
// So that crun can be measured, the bench then re-executes itself in a
// private mount namespace in which /sys/fs/cgroup is rebuilt (a tmpfs with
// the host's hierarchies bound in) plus a v1 hugetlb hierarchy. Mounting it
// moves hugetlb off cgroup2 for the whole machine while the bench runs; the
// bench removes its cgroups and unmounts it at the end, and the kernel then
// hands hugetlb back to cgroup2. Every runtime is measured in this layout.
// -hybrid-fix=false turns this off (crun is then reported as failing).

const nsEnv = "CFDBENCH_IN_MOUNTNS"

var hugetlbMounted bool

func needHybridFix() bool {
	b, err := os.ReadFile("/sys/fs/cgroup/unified/cgroup.controllers")
	if err != nil || strings.TrimSpace(string(b)) == "" {
		return false
	}
	for _, p := range strings.Split(*flagPeers, ",") {
		name, _, _ := strings.Cut(strings.TrimSpace(p), "=")
		if name == "crun" {
			return true
		}
	}
	return false
}

// maybeReexec re-executes the bench in a new mount namespace when needed; it
// returns only in the process that should run the bench.
func maybeReexec() {
	if os.Getenv(nsEnv) != "" {
		check(hybridFix())
		return
	}
	if !*flagHybridFix || !needHybridFix() {
		return
	}
	progress("cgroup2 has controllers (%s): re-running in a mount namespace with a v1 hugetlb hierarchy so that crun runs",
		strings.TrimSpace(readFile("/sys/fs/cgroup/unified/cgroup.controllers")))
	cmd := exec.Command("/proc/self/exe", os.Args[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.Env = append(os.Environ(), nsEnv+"=1")
	cmd.SysProcAttr = &syscall.SysProcAttr{Unshareflags: syscall.CLONE_NEWNS}
	// The child cleans up on SIGINT/SIGTERM: pass them on and wait for it
	// rather than die first.
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	check(cmd.Start())
	go func() {
		for s := range sig {
			cmd.Process.Signal(s)
		}
	}()
	err := cmd.Wait()
	if ee, ok := err.(*exec.ExitError); ok {
		os.Exit(ee.ExitCode())
	}
	check(err)
	os.Exit(0)
}

func readFile(p string) string {
	b, _ := os.ReadFile(p)
	return string(b)
}

func hybridFix() error {
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("make / private: %w", err)
	}
	old := filepath.Join(*flagDir, "oldcg")
	if err := os.MkdirAll(old, 0o700); err != nil {
		return err
	}
	if err := unix.Mount("/sys/fs/cgroup", old, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("bind /sys/fs/cgroup: %w", err)
	}
	defer func() {
		unix.Unmount(old, unix.MNT_DETACH)
		os.Remove(old)
	}()
	if err := unix.Mount("tmpfs", "/sys/fs/cgroup", "tmpfs", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "mode=755"); err != nil {
		return fmt.Errorf("tmpfs on /sys/fs/cgroup: %w", err)
	}
	ents, err := os.ReadDir(old)
	if err != nil {
		return err
	}
	for _, e := range ents {
		src, dst := filepath.Join(old, e.Name()), filepath.Join("/sys/fs/cgroup", e.Name())
		if e.Type()&os.ModeSymlink != 0 {
			t, _ := os.Readlink(src)
			os.Symlink(t, dst)
			continue
		}
		if err := os.Mkdir(dst, 0o755); err != nil {
			return err
		}
		if err := unix.Mount(src, dst, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
			return fmt.Errorf("bind %s: %w", dst, err)
		}
	}
	if err := os.Mkdir("/sys/fs/cgroup/hugetlb", 0o755); err != nil {
		return err
	}
	if err := unix.Mount("cgroup", "/sys/fs/cgroup/hugetlb", "cgroup", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "hugetlb"); err != nil {
		return fmt.Errorf("mount v1 hugetlb: %w", err)
	}
	hugetlbMounted = true
	return nil
}

// undoHybridFix removes our cgroups from the hugetlb hierarchy and unmounts
// it, so that the kernel can give hugetlb back to cgroup2.
func undoHybridFix() {
	if !hugetlbMounted {
		return
	}
	p := "/sys/fs/cgroup/hugetlb" + *flagCgroup
	subs, _ := filepath.Glob(p + "/*")
	for _, s := range subs {
		if fi, err := os.Stat(s); err == nil && fi.IsDir() {
			syscall.Rmdir(s)
		}
	}
	syscall.Rmdir(p)
	// The kernel kills a v1 hierarchy on unmount only if its root has no
	// children left, and rmdir'd cgroups leave the list asynchronously: wait
	// for them, unmount, and check that hugetlb went back to cgroup2 (else
	// mount and unmount again: the same root is reused).
	for try := 0; try < 10; try++ {
		for i := 0; i < 100 && hugetlbCgroups() > 1; i++ {
			time.Sleep(20 * time.Millisecond)
		}
		if err := unix.Unmount("/sys/fs/cgroup/hugetlb", 0); err != nil {
			progress("unmount hugetlb: %v", err)
			return
		}
		for i := 0; i < 25; i++ {
			if strings.Contains(readFile("/sys/fs/cgroup/unified/cgroup.controllers"), "hugetlb") {
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
		if err := unix.Mount("cgroup", "/sys/fs/cgroup/hugetlb", "cgroup", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "hugetlb"); err != nil {
			progress("remount hugetlb: %v", err)
			return
		}
	}
	progress("hugetlb did not go back to cgroup2; to restore: unshare -m sh -c 'mount --make-rprivate /; mkdir -p /tmp/h; mount -t cgroup -o hugetlb cgroup /tmp/h; umount /tmp/h'")
}

// hugetlbCgroups is the num_cgroups column of hugetlb in /proc/cgroups.
func hugetlbCgroups() int {
	for _, l := range strings.Split(readFile("/proc/cgroups"), "\n") {
		f := strings.Fields(l)
		if len(f) == 4 && f[0] == "hugetlb" {
			n, _ := strconv.Atoi(f[2])
			return n
		}
	}
	return 0
}
