// Command mountbench times the mount operations containerfd's init stage
// does per mount, in a private mount namespace (run as root):
//
//	go run ./bench/mountbench [-n 1000]
//
// For each variant it creates a detached mount (fsopen/fsconfig/fsmount of a
// tmpfs, or open_tree(OPEN_TREE_CLONE) of a directory), attaches it with
// move_mount onto a directory, sets propagation with mount_setattr, and
// closes the fd; it also times the classic mount(2) for comparison, and the
// umount of everything at the end. Each step's mean is printed in µs.
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"time"

	"golang.org/x/sys/unix"
)

var n = flag.Int("n", 500, "mounts per variant")

type timer map[string][]time.Duration

func (t timer) add(k string, d time.Duration) { t[k] = append(t[k], d) }

func (t timer) print(order []string) {
	for _, k := range order {
		v := t[k]
		if len(v) == 0 {
			continue
		}
		sort.Slice(v, func(i, j int) bool { return v[i] < v[j] })
		var sum time.Duration
		for _, d := range v {
			sum += d
		}
		fmt.Printf("  %-44s mean %7.1f µs  median %7.1f µs  p90 %7.1f µs  (n=%d)\n", k,
			float64(sum.Nanoseconds())/float64(len(v))/1000, float64(v[len(v)/2].Nanoseconds())/1000,
			float64(v[len(v)*9/10].Nanoseconds())/1000, len(v))
	}
}

func must(err error, what string) {
	if err != nil {
		fmt.Fprintf(os.Stderr, "mountbench: %s: %v\n", what, err)
		os.Exit(1)
	}
}

func main() {
	flag.Parse()
	runtime.LockOSThread()
	must(unix.Unshare(unix.CLONE_FS|unix.CLONE_NEWNS), "unshare")
	must(unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""), "make / private")
	base, err := os.MkdirTemp("/run", "mountbench-")
	must(err, "mkdtemp")
	defer os.RemoveAll(base)
	must(unix.Mount("tmpfs", base, "tmpfs", 0, ""), "tmpfs base")
	src := filepath.Join(base, "src")
	must(os.Mkdir(src, 0o755), "mkdir src")

	t := timer{}
	var order []string
	variant := func(name string, mk func() (int, error), setattr bool) {
		dir := filepath.Join(base, name)
		must(os.Mkdir(dir, 0o755), "mkdir")
		k := func(s string) string { return name + ": " + s }
		order = append(order, k("create detached mount"), k("move_mount"), k("mount_setattr MS_PRIVATE"), k("close fd"), k("total"))
		for i := 0; i < *n; i++ {
			d := filepath.Join(dir, fmt.Sprint(i))
			must(os.Mkdir(d, 0o755), "mkdir")
			dfd, err := unix.Open(d, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
			must(err, "open target")
			t0 := time.Now()
			fd, err := mk()
			must(err, name)
			t1 := time.Now()
			must(unix.MoveMount(fd, "", dfd, "", unix.MOVE_MOUNT_F_EMPTY_PATH|unix.MOVE_MOUNT_T_EMPTY_PATH), "move_mount")
			t2 := time.Now()
			if setattr {
				attr := &unix.MountAttr{Propagation: unix.MS_PRIVATE}
				must(unix.MountSetattr(fd, "", unix.AT_EMPTY_PATH, attr), "mount_setattr")
			}
			t3 := time.Now()
			unix.Close(fd)
			t4 := time.Now()
			unix.Close(dfd)
			t.add(k("create detached mount"), t1.Sub(t0))
			t.add(k("move_mount"), t2.Sub(t1))
			if setattr {
				t.add(k("mount_setattr MS_PRIVATE"), t3.Sub(t2))
			}
			t.add(k("close fd"), t4.Sub(t3))
			t.add(k("total"), t4.Sub(t0))
		}
	}
	variant("fsmount tmpfs", func() (int, error) {
		fs, err := unix.Fsopen("tmpfs", unix.FSOPEN_CLOEXEC)
		if err != nil {
			return -1, err
		}
		defer unix.Close(fs)
		if err := unix.FsconfigCreate(fs); err != nil {
			return -1, err
		}
		return unix.Fsmount(fs, unix.FSMOUNT_CLOEXEC, 0)
	}, true)
	variant("open_tree clone (bind)", func() (int, error) {
		return unix.OpenTree(unix.AT_FDCWD, src, unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC)
	}, true)
	variant("open_tree clone, no setattr", func() (int, error) {
		return unix.OpenTree(unix.AT_FDCWD, src, unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC)
	}, false)

	// Classic mount(2) for comparison.
	dir := filepath.Join(base, "mount2")
	must(os.Mkdir(dir, 0o755), "mkdir")
	for i := 0; i < *n; i++ {
		d := filepath.Join(dir, fmt.Sprint(i))
		must(os.Mkdir(d, 0o755), "mkdir")
		t0 := time.Now()
		must(unix.Mount("tmpfs", d, "tmpfs", 0, ""), "mount tmpfs")
		t.add("mount(2) tmpfs", time.Since(t0))
		d2 := d + "b"
		must(os.Mkdir(d2, 0o755), "mkdir")
		t0 = time.Now()
		must(unix.Mount(src, d2, "", unix.MS_BIND, ""), "bind")
		t.add("mount(2) MS_BIND", time.Since(t0))
	}
	order = append(order, "mount(2) tmpfs", "mount(2) MS_BIND")

	// Unmounting (what namespace teardown pays) for comparison.
	t0 := time.Now()
	must(unix.Unmount(base, unix.MNT_DETACH), "umount")
	fmt.Printf("mountbench: n=%d per variant, kernel %s\n", *n, uname())
	t.print(order)
	fmt.Printf("  %-44s %7.1f ms for %d mounts\n", "umount -l of everything", float64(time.Since(t0).Microseconds())/1000, 5**n)
}

func uname() string {
	var u unix.Utsname
	unix.Uname(&u)
	return unix.ByteSliceToString(u.Release[:])
}
