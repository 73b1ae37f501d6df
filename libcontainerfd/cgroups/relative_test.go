package cgroups

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestParseSelfCgroup(t *testing.T) {
	got, err := parseSelfCgroup("12:cpu,cpuacct:/a\n4:memory:/process_api/x\n9:name=systemd:/\n1:net_cls:/we:ird\n0::/u\n")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"cpu": "/a", "cpuacct": "/a", "memory": "/process_api/x", "name=systemd": "/", "net_cls": "/we:ird", KeyUnified: "/u"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %v\nwant %v", got, want)
	}
	for _, bad := range []string{"garbage\n", "1:memory\n", "1:memory:relative\n"} {
		if _, err := parseSelfCgroup(bad); err == nil {
			t.Errorf("parseSelfCgroup(%q) accepted", bad)
		}
	}
}

func TestDirOf(t *testing.T) {
	own := map[string]string{"memory": "/process_api/x", "pids": "/", KeyUnified: "/sub/y", "cpu": "/other"}
	for _, tc := range []struct {
		h    hierarchy
		want string
		bad  bool
	}{
		{h: hierarchy{mount: "/sys/fs/cgroup/memory", root: "/", keys: []string{"memory"}}, want: "/sys/fs/cgroup/memory/process_api/x"},
		{h: hierarchy{mount: "/sys/fs/cgroup/pids", root: "/", keys: []string{"pids"}}, want: "/sys/fs/cgroup/pids"},
		// A subtree mounted: the path is taken from the subtree's root.
		{h: hierarchy{mount: "/mnt/u", root: "/sub", v2: true, keys: []string{KeyUnified}}, want: "/mnt/u/y"},
		{h: hierarchy{mount: "/mnt/c", root: "/oth", keys: []string{"cpu"}}, bad: true}, // "/other" is not below "/oth"
		{h: hierarchy{mount: "/mnt/c", root: "/x", keys: []string{"cpu"}}, bad: true},
		{h: hierarchy{mount: "/sys/fs/cgroup/freezer", root: "/", keys: []string{"freezer"}}, bad: true}, // not listed
	} {
		got, err := tc.h.dirOf(own)
		if tc.bad {
			if err == nil {
				t.Errorf("%+v: dirOf = %q, want an error", tc.h, got)
			} else {
				t.Logf("error (as expected): %v", err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%+v: dirOf = %q, %v; want %q", tc.h, got, err, tc.want)
		}
	}
}

// ownCgroups parses /proc/self/cgroup on its own, for the tests to check
// Create against.
func ownCgroups(t *testing.T) map[string]string {
	t.Helper()
	data, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		t.Fatal(err)
	}
	own := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		f := strings.SplitN(line, ":", 3)
		if f[0] == "0" {
			own[KeyUnified] = f[2]
			continue
		}
		for _, k := range strings.Split(f[1], ",") {
			own[k] = f[2]
		}
	}
	return own
}

// checkMemberPaths checks in /proc/<pid>/cgroup that pid is, for each Paths
// key, in the cgroup want names.
func checkMemberPaths(t *testing.T, pid int, want map[string]string) {
	t.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		f := strings.SplitN(line, ":", 3)
		if f[0] == "0" {
			got[KeyUnified] = f[2]
			continue
		}
		for _, k := range strings.Split(f[1], ",") {
			got[k] = f[2]
		}
	}
	for k, w := range want {
		if got[k] != w {
			t.Errorf("process %d: %s cgroup %q, want %q", pid, k, got[k], w)
		}
	}
}

// TestCreateRelative: a relative path lands, in each hierarchy, below the
// cgroup this process is in there (here the v1 memory cgroup is not the
// root, the others are); Paths holds those real directories, Open works from
// them, a process put in sits there, Destroy removes the leaf. The test
// removes the unique top directory it made under its own cgroups, and
// nothing else.
func TestCreateRelative(t *testing.T) {
	forEachMode(t, func(t *testing.T, mode Mode) {
		own := ownCgroups(t)
		b := make([]byte, 6)
		rand.Read(b)
		top := "cfdtest-rel-" + hex.EncodeToString(b)
		v2s, v1s, err := cgroupMounts()
		if err != nil {
			t.Fatal(err)
		}
		var tops []string // <mount>/<own cgroup>/<top> in every hierarchy of the host
		for _, h := range append(v2s, v1s...) {
			if o, ok := own[h.keys[0]]; ok && h.root == "/" {
				tops = append(tops, filepath.Join(h.mount, o, top))
			}
		}
		t.Cleanup(func() {
			for _, d := range tops {
				if err := removeTree(d, time.Now().Add(5*time.Second)); err != nil {
					t.Errorf("cleanup: %v", err)
				}
				if _, err := os.Lstat(d); !errors.Is(err, fs.ErrNotExist) {
					t.Errorf("left behind: %s", d)
				}
			}
		})

		path := top + "/ctr"
		c := create(t, path)
		l, err := detect()
		if err != nil {
			t.Fatal(err)
		}
		p := c.Paths()
		want := map[string]string{} // Paths key -> cgroup path
		for _, h := range l.all() {
			cg := filepath.Join(own[h.keys[0]], path)
			dir := filepath.Join(h.mount, cg)
			for _, k := range h.keys {
				want[k] = cg
				if p[k] != dir {
					t.Errorf("paths[%q] = %q, want %q", k, p[k], dir)
				}
			}
			if st, err := os.Stat(dir); err != nil || !st.IsDir() {
				t.Errorf("not made: %s: %v", dir, err)
			}
			if own[h.keys[0]] != "/" {
				// Not at the root of the hierarchy.
				if _, err := os.Stat(filepath.Join(h.mount, top)); !errors.Is(err, fs.ErrNotExist) {
					t.Errorf("made at the root of %s too", h.mount)
				}
			}
		}
		if mode != V2 {
			t.Logf("memory: %s; pids: %s", p["memory"], p["pids"])
		}
		t.Setenv(EnvMode, "")
		c2, err := Open(p)
		if err != nil {
			t.Fatal(err)
		}
		defer c2.Close()
		if c2.Mode() != mode {
			t.Errorf("Open: mode %v, want %v", c2.Mode(), mode)
		}
		pid := startSleep(t, c2).Process.Pid
		checkMemberPaths(t, pid, want)
		if err := c.Kill(); err != nil {
			t.Fatal(err)
		}
		waitEmpty(t, c, time.Now())
		if err := c.Destroy(); err != nil {
			t.Fatal(err)
		}
		for _, d := range p {
			if _, err := os.Stat(d); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("after Destroy: %s: %v", d, err)
			}
		}
		// An absolute path still starts at the root, even from a cgroup
		// that is not.
		abs := testParent(t) + "/ctr"
		ca := create(t, abs)
		for _, h := range l.all() {
			if got := ca.Paths()[h.keys[0]]; got != filepath.Join(h.mount, abs) {
				t.Errorf("absolute: %s, want %s", got, filepath.Join(h.mount, abs))
			}
		}
	})
}

// TestCreateRelativeUnlisted: a relative path in a hierarchy that the
// caller's /proc/self/cgroup does not list (here a fixture with only the
// cgroup2 line) fails naming it, and removes what it made in the others.
func TestCreateRelativeUnlisted(t *testing.T) {
	forEachMode(t, func(t *testing.T, mode Mode) {
		if mode == V2 {
			t.Skip("the fixture lists the cgroup2 hierarchy")
		}
		f := filepath.Join(t.TempDir(), "cgroup")
		if err := os.WriteFile(f, []byte("0::/\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		old := selfCgroupPath
		selfCgroupPath = f
		t.Cleanup(func() { selfCgroupPath = old })
		b := make([]byte, 6)
		rand.Read(b)
		top := "cfdtest-rel-" + hex.EncodeToString(b)
		c, err := Create(top + "/ctr")
		if err == nil {
			c.Destroy()
			c.Close()
			t.Fatal("Create succeeded")
		}
		if !strings.Contains(err.Error(), f+" lists no cgroup of the hierarchy mounted at") {
			t.Errorf("error %q", err)
		}
		for _, m := range allMounts(t) {
			if _, err := os.Stat(filepath.Join(m, top)); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("left behind: %s", filepath.Join(m, top))
				removeTree(filepath.Join(m, top), time.Now().Add(time.Second))
			}
		}
	})
}
