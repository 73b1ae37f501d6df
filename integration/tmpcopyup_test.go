package integration

import (
	"os"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// tmpcopyup (a runc/crun extension) fills a new tmpfs with a copy of the
// directory it covers. podman puts it on the tmpfs mounts of --read-only
// (/tmp, /var/tmp, /run) and of --tmpfs, so `podman run --read-only` was
// refused ("tmpcopyup": not supported yet) before containerfd implemented
// it. Here a tmpfs with tmpcopyup covers /bin: the shell runs only if
// busybox and its symlinks were copied, with their modes; the copy is
// writable and writes stay in the tmpfs.
func TestTmpcopyup(t *testing.T) {
	e := newEnv(t, "/bin/sh", "-c", `awk '$5 == "/bin" || $5 == "/empty" { print $5, $9 }' /proc/self/mountinfo
stat -c "%a %u:%g" /bin/busybox
readlink /bin/sh
ls /empty | wc -l
echo x > /bin/new && echo "wrote /bin"`)
	s := e.spec()
	rootfs := s.Root.Path
	s.Mounts = append(s.Mounts,
		specs.Mount{Destination: "/bin", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "nodev", "tmpcopyup"}},
		// A destination that does not exist: an empty tmpfs.
		specs.Mount{Destination: "/empty", Type: "tmpfs", Source: "tmpfs", Options: []string{"tmpcopyup"}},
	)
	e.writeSpec(s)
	r := e.cfd("run", "-b", e.bundle, e.id)
	link, err := os.Readlink(rootfs + "/bin/sh")
	if err != nil {
		t.Fatal(err)
	}
	want := "/bin tmpfs\n/empty tmpfs\n755 0:0\n" + link + "\n0\nwrote /bin\n"
	if r.code != 0 || r.stdout != want {
		t.Fatalf("run with tmpcopyup on /bin: %v; want stdout %q", r, want)
	}
	if _, err := os.Stat(rootfs + "/bin/new"); err == nil {
		os.Remove(rootfs + "/bin/new")
		t.Errorf("the write to the tmpfs on /bin reached the rootfs")
	}

	// tmpcopyup is for tmpfs only, as in runc and crun.
	s.Mounts = append(s.Mounts, specs.Mount{Destination: "/x", Type: "bind", Source: rootfs + "/etc", Options: []string{"rbind", "tmpcopyup"}})
	e.writeSpec(s)
	if r := e.cfd("run", "-b", e.bundle, e.id); r.code == 0 || !strings.Contains(r.stderr, "tmpcopyup is for tmpfs mounts only") {
		t.Errorf("run with tmpcopyup on a bind: %v; want an error", r)
	}
}
