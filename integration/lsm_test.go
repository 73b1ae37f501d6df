package integration

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/containerfd/containerfd/libcontainerfd/lsm"
)

// TestAppArmorProfile loads a profile of the test's own and runs a
// container and an exec under it: the kernel reports the profile, and
// what it denies is denied. It runs where AppArmor is active (the VM of
// `make test-vm`; this host's kernel has none).
func TestAppArmorProfile(t *testing.T) {
	if err := lsm.Check(lsm.AppArmor); err != nil {
		t.Skip(err)
	}
	parser, err := exec.LookPath("apparmor_parser")
	if err != nil {
		t.Skip("AppArmor is active but apparmor_parser (Debian's apparmor package) is missing: no profile can be loaded")
	}
	e := newEnv(t, "sh", "-c", "cat /proc/self/attr/current; echo x > /denied-file || echo denied; echo x > /tmp/allowed && echo allowed")
	profile := "cfdtest-" + strings.TrimPrefix(e.id, "cfdtest-")
	src := filepath.Join(e.bundle, "profile")
	// Everything but writes to /denied-file; attach_disconnected because a
	// container's paths are not under the host's root.
	body := fmt.Sprintf(`profile %s flags=(attach_disconnected,mediate_deleted) {
  file,
  capability,
  network,
  signal,
  ptrace,
  mount,
  umount,
  pivot_root,
  unix,
  deny /denied-file w,
}
`, profile)
	if err := os.WriteFile(src, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(parser, "-r", "--skip-cache", src).CombinedOutput(); err != nil {
		t.Fatalf("load the profile: %v: %s", err, out)
	}
	t.Cleanup(func() { exec.Command(parser, "-R", src).Run() })

	s := e.spec()
	s.Process.ApparmorProfile = profile
	e.writeSpec(s)
	out := e.ok("run", "-b", e.bundle, e.id)
	if want := profile + " (enforce)\ndenied\nallowed\n"; out != want {
		t.Errorf("run under %s: %q, want %q", profile, out, want)
	}

	s.Process.Args = []string{"sleep", "100"}
	e.writeSpec(s)
	e.ok("run", "-d", "-b", e.bundle, e.id)
	// exec takes config.json's profile, or --apparmor's.
	if out := e.ok("exec", e.id, "cat", "/proc/self/attr/current"); out != profile+" (enforce)\n" {
		t.Errorf("exec: %q", out)
	}
	if out := e.ok("exec", "--apparmor", "unconfined", e.id, "cat", "/proc/self/attr/current"); out != "unconfined\n" {
		t.Errorf("exec --apparmor unconfined: %q", out)
	}
	if r := e.cfd("exec", "--apparmor", profile+"-missing", e.id, "true"); r.code == 0 || !strings.Contains(r.stderr, "apparmor") {
		t.Errorf("exec under a profile that is not loaded: %v", r)
	}
}

// TestLSMMissing: a label for an LSM the kernel does not have fails
// create, naming the field and the LSM, and leaves nothing behind.
func TestLSMMissing(t *testing.T) {
	for _, tc := range []struct {
		lsm, field string
		set        func(e *env)
	}{
		{lsm.AppArmor, "process.apparmorProfile", func(e *env) {
			s := e.spec()
			s.Process.ApparmorProfile = "docker-default"
			e.writeSpec(s)
		}},
		{lsm.SELinux, "process.selinuxLabel", func(e *env) {
			s := e.spec()
			s.Process.SelinuxLabel = "system_u:system_r:container_t:s0:c1,c2"
			e.writeSpec(s)
		}},
		{lsm.SELinux, "linux.mountLabel", func(e *env) {
			s := e.spec()
			s.Linux.MountLabel = "system_u:object_r:container_file_t:s0:c1,c2"
			e.writeSpec(s)
		}},
	} {
		t.Run(tc.field, func(t *testing.T) {
			if lsm.Check(tc.lsm) == nil {
				t.Skipf("%s is active here", tc.lsm)
			}
			e := newEnv(t, "true")
			tc.set(e)
			r := e.cfd("run", "-b", e.bundle, e.id)
			if r.code == 0 || !strings.Contains(r.stderr, tc.field) || !strings.Contains(r.stderr, "not enabled") {
				t.Errorf("run: %v", r)
			}
			if r := e.cfd("state", e.id); r.code == 0 {
				t.Errorf("state after a refused run: %v", r)
			}
		})
	}
}
