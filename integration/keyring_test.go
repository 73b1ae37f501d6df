package integration

import (
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// newKeyringEnv is newEnv with /proc/keys not masked, so the container's
// processes can show what they possess, and /keyread in the rootfs: a static
// stand-in for `keyctl pipe`, which busybox lacks, built from
// testdata/keyread.
func newKeyringEnv(t *testing.T, args ...string) *env {
	e := newEnv(t, args...)
	s := e.spec()
	dst := filepath.Join(s.Root.Path, "keyread")
	if dir := os.Getenv(prebuiltEnv); dir != "" {
		if out, err := exec.Command("cp", filepath.Join(dir, "keyread"), dst).CombinedOutput(); err != nil {
			t.Fatalf("copy keyread: %v\n%s", err, out)
		}
	} else {
		build := exec.Command("go", "build", "-o", dst, "./testdata/keyread")
		build.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := build.CombinedOutput(); err != nil {
			t.Fatalf("build keyread: %v\n%s", err, out)
		}
	}
	s.Linux.MaskedPaths = slices.DeleteFunc(s.Linux.MaskedPaths, func(p string) bool { return p == "/proc/keys" })
	e.writeSpec(s)
	return e
}

// keysInside is /proc/keys as a process of the container sees it: the keys
// it may view, which for a container are the ones it possesses.
func (e *env) keysInside() string {
	e.t.Helper()
	return e.ok("exec", e.id, "cat", "/proc/keys")
}

// hasKey tells whether /proc/keys text lists a key of type typ called desc.
func hasKey(procKeys, typ, desc string) bool {
	for _, l := range strings.Split(procKeys, "\n") {
		// serial flags usage timeout perm uid gid type description: summary
		f := strings.Fields(l)
		if len(f) >= 9 && f[7] == typ && strings.HasPrefix(strings.Join(f[8:], " "), desc+":") {
			return true
		}
	}
	return false
}

type listedKey struct {
	Serial      int    `json:"serial"`
	Type        string `json:"type"`
	Description string `json:"description"`
}

func (e *env) listKeys() []listedKey {
	e.t.Helper()
	out := e.ok("keyring", e.id, "list", "--format", "json")
	var keys []listedKey
	if err := json.Unmarshal([]byte(out), &keys); err != nil {
		e.t.Fatalf("keyring list --format json: %q: %v", out, err)
	}
	return keys
}

func findKey(keys []listedKey, typ, desc string) *listedKey {
	for i := range keys {
		if keys[i].Type == typ && keys[i].Description == desc {
			return &keys[i]
		}
	}
	return nil
}

// Keys added from outside reach the container's processes (init too, when
// added between create and start), and no other container; list shows
// them, logon payloads never; unlink and delete remove them.
func TestKeyringAddListUnlink(t *testing.T) {
	a := newKeyringEnv(t, "sh", "-c", "/keyread early > /tmp/early 2>&1; exec sleep 100")
	b := newKeyringEnv(t, "sleep", "100")
	a.ok("create", "--bundle", a.bundle, a.id)
	b.ok("run", "-d", "-b", b.bundle, b.id)

	// Before start: init finds the key when it runs.
	if out := a.ok("keyring", a.id, "add", "user", "early", "--data", "early-secret"); strings.TrimSpace(out) == "" {
		t.Errorf("add printed no serial")
	}
	a.ok("start", a.id)
	early := filepath.Join(a.spec().Root.Path, "tmp", "early")
	var got []byte
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if got, _ = os.ReadFile(early); len(got) > 0 {
			break
		}
	}
	if string(got) != "early-secret" {
		t.Errorf("init read the key added before start as %q", got)
	}

	// While running: the payload from stdin, --data and --from-file.
	out := a.cfdIn([]byte("hunter2"), "keyring", a.id, "add", "user", "db-password")
	if out.code != 0 {
		t.Fatalf("keyring add from stdin: %v", out)
	}
	serial, err := strconv.Atoi(strings.TrimSpace(out.stdout))
	if err != nil {
		t.Fatalf("keyring add printed %q", out.stdout)
	}
	file := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(file, []byte("from-a-file"), 0o600); err != nil {
		t.Fatal(err)
	}
	a.ok("keyring", a.id, "add", "--from-file", file, "user", "api-token")
	a.ok("keyring", a.id, "add", "logon", "cfd:disk-key", "--data=logon-secret-payload")

	inside := a.keysInside()
	for _, k := range [][2]string{{"user", "early"}, {"user", "db-password"}, {"user", "api-token"}, {"logon", "cfd:disk-key"}} {
		if !hasKey(inside, k[0], k[1]) {
			t.Errorf("container does not see %s key %q in /proc/keys:\n%s", k[0], k[1], inside)
		}
	}
	if strings.Contains(inside, "hunter2") || strings.Contains(inside, "logon-secret") {
		t.Errorf("/proc/keys shows a payload:\n%s", inside)
	}
	if got := a.ok("exec", a.id, "/keyread", "db-password"); got != "hunter2" {
		t.Errorf("container reads db-password as %q", got)
	}
	if got := a.ok("exec", a.id, "/keyread", "api-token"); got != "from-a-file" {
		t.Errorf("container reads api-token as %q", got)
	}
	if r := a.cfd("exec", a.id, "/keyread", "cfd:disk-key", "logon"); r.code == 0 || strings.Contains(r.stdout, "logon-secret") {
		t.Errorf("a logon key's payload is readable inside: %v", r)
	}

	// The other container sees none of it.
	insideB := b.keysInside()
	for _, d := range []string{"early", "db-password", "api-token", "cfd:disk-key"} {
		if strings.Contains(insideB, d+":") {
			t.Errorf("second container sees %q:\n%s", d, insideB)
		}
	}
	if r := b.cfd("exec", b.id, "/keyread", "db-password"); r.code == 0 || !strings.Contains(r.stderr, "required key not available") {
		t.Errorf("second container reads db-password: %v", r)
	}
	if keys := b.listKeys(); len(keys) != 0 {
		t.Errorf("second container's keyring lists %v", keys)
	}

	// list: table and JSON, never a logon payload.
	table := a.ok("keyring", a.id, "list")
	if !strings.HasPrefix(table, "SERIAL") || !strings.Contains(table, strconv.Itoa(serial)) ||
		!strings.Contains(table, "db-password") || !strings.Contains(table, "cfd:disk-key") {
		t.Errorf("keyring list:\n%s", table)
	}
	keys := a.listKeys()
	if k := findKey(keys, "user", "db-password"); k == nil || k.Serial != serial {
		t.Errorf("keyring list --format json: %v, want db-password as %d", keys, serial)
	}
	logon := findKey(keys, "logon", "cfd:disk-key")
	if logon == nil || len(keys) != 4 {
		t.Fatalf("keyring list --format json: %v", keys)
	}
	for _, s := range []string{table, a.ok("keyring", a.id, "list", "-f", "json")} {
		if strings.Contains(s, "logon-secret") || strings.Contains(s, "hunter2") {
			t.Errorf("keyring list prints a payload:\n%s", s)
		}
	}

	// Adding again replaces.
	a.ok("keyring", a.id, "add", "user", "db-password", "--data", "hunter3")
	if got := a.ok("exec", a.id, "/keyread", "db-password"); got != "hunter3" {
		t.Errorf("after a second add the container reads %q", got)
	}
	if n := len(a.listKeys()); n != 4 {
		t.Errorf("after a second add: %d keys, want 4", n)
	}

	// unlink by description, then by serial: gone inside too.
	a.ok("keyring", a.id, "unlink", "db-password")
	a.ok("keyring", a.id, "unlink", strconv.Itoa(logon.Serial))
	if r := a.cfd("exec", a.id, "/keyread", "db-password"); r.code == 0 {
		t.Errorf("db-password readable after unlink: %v", r)
	}
	inside = a.keysInside()
	if hasKey(inside, "user", "db-password") || hasKey(inside, "logon", "cfd:disk-key") || !hasKey(inside, "user", "api-token") {
		t.Errorf("/proc/keys inside after unlink:\n%s", inside)
	}
	keys = a.listKeys()
	if len(keys) != 2 || findKey(keys, "user", "api-token") == nil || findKey(keys, "user", "early") == nil {
		t.Errorf("keyring list after unlink: %v", keys)
	}
	if r := a.cfd("keyring", a.id, "unlink", "db-password"); r.code == 0 || !strings.Contains(r.stderr, "no such key") {
		t.Errorf("unlink of a missing key: %v", r)
	}

	// Deleting the container removes its keys with its keyring.
	var serials []int
	for _, k := range keys {
		serials = append(serials, k.Serial)
	}
	a.ok("delete", "--force", a.id)
	b.ok("delete", "--force", b.id)
	for _, s := range serials {
		var err error
		for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			if _, err = unix.KeyctlString(unix.KEYCTL_DESCRIBE, s); errors.Is(err, unix.ENOKEY) {
				break
			}
		}
		if !errors.Is(err, unix.ENOKEY) {
			t.Errorf("key %d after delete: %v, want ENOKEY", s, err)
		}
	}
	if r := a.cfd("keyring", a.id, "list"); r.code == 0 || !strings.Contains(r.stderr, "does not exist") {
		t.Errorf("keyring list after delete: %v", r)
	}
}

// inUserns gives e a user namespace whose root is host uid 100000, and its
// rootfs to that uid.
func (e *env) inUserns() {
	e.t.Helper()
	s := e.spec()
	s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.UserNamespace})
	s.Linux.UIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 65536}}
	s.Linux.GIDMappings = s.Linux.UIDMappings
	e.writeSpec(s)
	if err := chownTree(s.Root.Path, 100000, 100000); err != nil {
		e.t.Fatal(err)
	}
}

// In a container with its own user namespace, whose root is not the
// keyring's owner, the processes still possess the keyring and read the key.
func TestKeyringUserns(t *testing.T) {
	e := newKeyringEnv(t, "sleep", "100")
	e.inUserns()
	e.ok("run", "-d", "-b", e.bundle, e.id)
	e.ok("keyring", e.id, "add", "user", "db-password", "--data", "in-a-userns")
	if got := e.ok("exec", e.id, "/keyread", "db-password"); got != "in-a-userns" {
		t.Errorf("container with a user namespace reads %q", got)
	}
	if keys := e.listKeys(); len(keys) != 1 || keys[0].Description != "db-password" {
		t.Errorf("keyring list: %v", keys)
	}
	e.ok("keyring", e.id, "unlink", "db-password")
	if r := e.cfd("exec", e.id, "/keyread", "db-password"); r.code == 0 {
		t.Errorf("readable after unlink: %v", r)
	}
	e.ok("delete", "--force", e.id)
}

// Wrong arguments fail before anything changes; a container made with
// --no-new-keyring has no keyring to manage.
func TestKeyringErrors(t *testing.T) {
	e := newEnv(t, "sleep", "100")
	e.ok("create", "--no-new-keyring", "--bundle", e.bundle, e.id)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"list"}, "no keyring of its own"},
		{[]string{"add", "user", "k", "--data", "v"}, "no keyring of its own"},
		{[]string{"unlink", "k"}, "no keyring of its own"},
		{[]string{"add", "big_key", "k", "--data", "v"}, "want user or logon"},
		{[]string{"add", "logon", "nocolon", "--data", "v"}, "service:name"},
		{[]string{"add", "user", "k", "--data", ""}, "payload of 0 bytes"},
		{[]string{"add", "user", "k", "--data", "v", "--from-file", "/etc/hostname"}, "not both"},
		{[]string{"list", "--format", "yaml"}, "invalid --format"},
		{[]string{"frobnicate"}, "unknown action"},
	} {
		r := e.cfd(append([]string{"keyring", e.id}, c.args...)...)
		if r.code == 0 || !strings.Contains(r.stderr, c.want) {
			t.Errorf("keyring %s: %v, want an error with %q", strings.Join(c.args, " "), r, c.want)
		}
	}
	if r := e.cfd("keyring", "no-such-container", "list"); r.code == 0 || !strings.Contains(r.stderr, "does not exist") {
		t.Errorf("keyring of a missing container: %v", r)
	}
	e.ok("delete", "--force", e.id)
}

// Another container reaches a container's keyring. The attack, from inside
// container B, given the serials of A's keyring and of a key in it (leaked,
// or found by trying serials: KEYCTL_DESCRIBE tells EACCES from ENOKEY):
// describe and list the keyring, describe and read the key, link either
// into its own keyring, set the keyring's permissions, chown it, clear it,
// revoke, invalidate and unlink the key, join the keyring by its guessable
// name ("containerfd.<id>"). Each fails, and A still reads its key.
//
// B is root without a user namespace, as A's runtime is, and then root of
// a user namespace of its own. Only the second may not invalidate A's
// keyring either: the runtime joins a keyring by name, which takes search
// permission for its owner, uid 0, and search is all KEYCTL_INVALIDATE
// asks. SECURITY.md says so (runc's keyrings are the same).
func TestKeyringOtherContainer(t *testing.T) {
	for _, userns := range []bool{false, true} {
		t.Run(map[bool]string{false: "root", true: "userns"}[userns], func(t *testing.T) {
			a := newKeyringEnv(t, "sleep", "100")
			b := newKeyringEnv(t, "sleep", "100")
			b.installAttack()
			if userns {
				b.inUserns()
			}
			a.ok("run", "-d", "-b", a.bundle, a.id)
			b.ok("run", "-d", "-b", b.bundle, b.id)
			key := strings.TrimSpace(a.ok("keyring", a.id, "add", "user", "db-password", "--data", "hunter2"))
			ring := ""
			for _, l := range strings.Split(a.keysInside(), "\n") {
				// serial flags usage timeout perm uid gid type description: summary
				if f := strings.Fields(l); len(f) >= 9 && f[7] == "keyring" && strings.HasPrefix(f[8], "containerfd."+a.id+".") {
					n, err := strconv.ParseUint(f[0], 16, 32)
					if err != nil {
						t.Fatal(err)
					}
					ring = strconv.FormatUint(n, 10)
				}
			}
			if ring == "" {
				t.Fatalf("A's keyring is not in its /proc/keys:\n%s", a.keysInside())
			}
			out := b.ok("exec", b.id, "/attack", "keyring", ring, key, "containerfd."+a.id)
			if userns {
				out += b.ok("exec", b.id, "/attack", "invalidate", ring)
			}
			for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
				if strings.HasSuffix(l, " ok") {
					t.Errorf("container B, given A's keyring %s and key %s: %s", ring, key, l)
				}
			}
			if r := a.cfd("exec", a.id, "/keyread", "db-password"); r.stdout != "hunter2" {
				t.Errorf("after B's attack, A reads its key: %v", r)
			}
			a.ok("delete", "--force", a.id)
			b.ok("delete", "--force", b.id)
		})
	}
}
