package integration

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/containerfd/containerfd/internal/mdtext"
	cfd "github.com/containerfd/containerfd/libcontainerfd"
	"golang.org/x/sys/unix"
)

// beyondRuncDoc documents containerfd's own verbs, relative to the test's
// directory; hack/vm.sh copies it there in the VM.
const beyondRuncDoc = "../docs/beyond-runc.md"

// docSynopses returns the synopsis lines of beyondRuncDoc (its first text
// block), in order.
func docSynopses(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile(beyondRuncDoc)
	if os.IsNotExist(err) {
		t.Skipf("no %s beside the test to read the synopses from", beyondRuncDoc)
	}
	if err != nil {
		t.Fatal(err)
	}
	sec, _ := mdtext.Section(string(b), "# Beyond runc")
	blocks := mdtext.CodeBlocks(sec, "text")
	if len(blocks) == 0 {
		t.Fatalf("%s: no section Beyond runc with a text block of synopses", beyondRuncDoc)
	}
	return strings.Split(strings.TrimSuffix(blocks[0], "\n"), "\n")
}

// synopsisCase is one synopsis line typed for real: the container it acts
// on, the values of its placeholders, and what it must have done.
type synopsisCase struct {
	e     *env
	vals  map[string][]string
	check func(t *testing.T, r result)
}

// literal is what a synopsis may keep as written: a flag, "--", or a
// lower-case word (a keyring action).
var literal = regexp.MustCompile(`^(--?[a-z][a-z-]*|--|[a-z]+)$`)

// type the synopsis line as written: its brackets dropped (every optional
// part given), its placeholders replaced by c.vals, in its order.
func (c synopsisCase) argv(t *testing.T, line string) []string {
	t.Helper()
	var argv []string
	for _, tok := range strings.Fields(line)[1:] {
		tok = strings.Trim(tok, "[]")
		if v, ok := c.vals[tok]; ok {
			argv = append(argv, v...)
			continue
		}
		if !literal.MatchString(tok) {
			t.Fatalf("%s: placeholder %q has no value", line, tok)
		}
		argv = append(argv, tok)
	}
	return argv
}

// The synopses of containerfd's own verbs in beyondRuncDoc, typed as written
// (flags after the container id, where the lines put them) with real values
// against real containers, parse and do their work, in the doc's order.
func TestSynopsesAsWritten(t *testing.T) {
	lines := docSynopses(t)
	// Made first, so that the leak check of the other, which runs before
	// this one's, does not count this one's keyring.
	ended := newEnv(t, "sh", "-c", "sleep 1; exit 3")
	e := newKeyringEnv(t, "sleep", "100")
	e.ok("run", "-d", "-b", e.bundle, e.id)

	dir := t.TempDir()
	host := filepath.Join(dir, "shared")
	os.Mkdir(host, 0o755)
	os.WriteFile(filepath.Join(host, "hello"), []byte("from the host\n"), 0o644)
	payload := filepath.Join(dir, "payload")
	os.WriteFile(payload, []byte("s3cr3t"), 0o600)
	sock := filepath.Join(dir, "s")
	next := listenFDs(t, sock)
	id := []string{e.id}
	inside := func(t *testing.T, script string) string { return e.ok("exec", e.id, "sh", "-c", script) }
	serial := func(t *testing.T, r result) {
		if _, err := strconv.Atoi(strings.TrimSpace(r.stdout)); err != nil {
			t.Errorf("printed %q, not a key's serial", r.stdout)
		}
	}
	socketVals := func(addr string, more map[string][]string) map[string][]string {
		v := map[string][]string{"ID": id, "inet|inet6|unix": {"inet"}, "stream|dgram": {"stream"}, "ADDR": {addr}}
		for k, x := range more {
			v[k] = x
		}
		return v
	}

	cases := map[string]synopsisCase{
		"containerfd socket ID [--family inet|inet6|unix] [--type stream|dgram] [--bind ADDR] [--listen] [--] CMD [ARG...]": {
			e, socketVals("127.0.0.1:9131", map[string][]string{"CMD": {"/bin/sh"}, "ARG...": {"-c", `echo $LISTEN_FDS $(readlink /proc/self/fd/3)`}}),
			func(t *testing.T, r result) {
				if !regexp.MustCompile(`^1 socket:\[\d+\]\n$`).MatchString(r.stdout) {
					t.Errorf("host command: %q, want LISTEN_FDS 1 and a socket as fd 3", r.stdout)
				}
			}},
		"containerfd socket ID [--family inet|inet6|unix] [--type stream|dgram] [--bind ADDR] [--listen] --send-to PATH": {
			e, socketVals("127.0.0.1:9132", map[string][]string{"PATH": {sock}}),
			func(t *testing.T, r result) {
				f := next()
				if f == nil {
					t.Fatal("nothing sent")
				}
				defer f.Close()
				sa, err := unix.Getsockname(int(f.Fd()))
				if in4, ok := sa.(*unix.SockaddrInet4); err != nil || !ok || in4.Port != 9132 {
					t.Errorf("socket sent: %#v, %v", sa, err)
				}
			}},
		"containerfd mount ID [--type TYPE] [--source SOURCE] [-o OPTIONS] [--ro] TARGET": {
			e, map[string][]string{"ID": id, "TYPE": {"tmpfs"}, "SOURCE": {"synopsis"}, "OPTIONS": {"size=1m"}, "TARGET": {"/mnt-tmpfs"}},
			func(t *testing.T, r result) {
				if out := inside(t, "grep ' /mnt-tmpfs ' /proc/self/mountinfo"); !strings.Contains(out, " ro,") || !strings.Contains(out, "tmpfs synopsis") {
					t.Errorf("mountinfo: %q, want a read-only tmpfs from synopsis", out)
				}
			}},
		"containerfd mount ID --bind HOSTPATH [-o OPTIONS] [--ro] TARGET": {
			e, map[string][]string{"ID": id, "HOSTPATH": {host}, "OPTIONS": {"nosuid"}, "TARGET": {"/mnt-bind"}},
			func(t *testing.T, r result) {
				if out := inside(t, "cat /mnt-bind/hello; touch /mnt-bind/x 2>/dev/null || echo ro"); out != "from the host\nro\n" {
					t.Errorf("inside: %q", out)
				}
			}},
		"containerfd umount ID TARGET": {
			e, map[string][]string{"ID": id, "TARGET": {"/mnt-bind"}},
			func(t *testing.T, r result) {
				if out := inside(t, "grep -c ' /mnt-bind ' /proc/self/mountinfo || true"); out != "0\n" {
					t.Errorf("/mnt-bind still mounted: %q", out)
				}
			}},
		"containerfd wait ID": {
			ended, map[string][]string{"ID": {ended.id}},
			func(t *testing.T, r result) {
				if cfd.PidfdExit.Available() {
					if r.stdout != "exit status 3\n" {
						t.Errorf("wait: %q, want exit status 3", r.stdout)
					}
				} else if r.stdout != "stopped\n" {
					t.Errorf("wait: %q, want stopped", r.stdout)
				}
			}},
		"containerfd keyring ID add TYPE DESCRIPTION [--data STRING]": {
			e, map[string][]string{"ID": id, "TYPE": {"user"}, "DESCRIPTION": {"syn-data"}, "STRING": {"hunter2"}}, serial},
		"containerfd keyring ID add TYPE DESCRIPTION [--from-file FILE]": {
			e, map[string][]string{"ID": id, "TYPE": {"user"}, "DESCRIPTION": {"syn-file"}, "FILE": {payload}},
			func(t *testing.T, r result) {
				serial(t, r)
				if keys := e.keysInside(); !hasKey(keys, "user", "syn-data") || !hasKey(keys, "user", "syn-file") {
					t.Errorf("keys inside:\n%s", keys)
				}
			}},
		"containerfd keyring ID list [--format table|json]": {
			e, map[string][]string{"ID": id, "table|json": {"json"}},
			func(t *testing.T, r result) {
				var keys []struct{ Description string }
				if err := json.Unmarshal([]byte(r.stdout), &keys); err != nil || len(keys) != 2 {
					t.Errorf("list: %q (%v), want the two keys as JSON", r.stdout, err)
				}
			}},
		"containerfd keyring ID unlink DESCRIPTION|SERIAL": {
			e, map[string][]string{"ID": id, "DESCRIPTION|SERIAL": {"syn-data"}},
			func(t *testing.T, r result) {
				if keys := e.keysInside(); hasKey(keys, "user", "syn-data") || !hasKey(keys, "user", "syn-file") {
					t.Errorf("keys inside after unlink syn-data:\n%s", keys)
				}
			}},
		"containerfd cp ID:PATH HOSTPATH": {
			e, map[string][]string{"ID:PATH": {e.id + ":/etc/passwd"}, "HOSTPATH": {filepath.Join(dir, "passwd")}},
			func(t *testing.T, r result) {
				if b, err := os.ReadFile(filepath.Join(dir, "passwd")); err != nil || !strings.HasPrefix(string(b), "root:") {
					t.Errorf("copied out: %q, %v", b, err)
				}
			}},
		"containerfd cp HOSTPATH ID:PATH": {
			e, map[string][]string{"HOSTPATH": {filepath.Join(host, "hello")}, "ID:PATH": {e.id + ":/root/hello"}},
			func(t *testing.T, r result) {
				if out := inside(t, "cat /root/hello"); out != "from the host\n" {
					t.Errorf("copied in: %q", out)
				}
			}},
	}
	for _, line := range lines {
		c, ok := cases[line]
		if !ok {
			t.Errorf("%s: synopsis %q: the test has no values for it", beyondRuncDoc, line)
			continue
		}
		delete(cases, line)
		argv := c.argv(t, line)
		if c.e == ended {
			// Run now, so that init is alive when wait starts.
			ended.runReaped(nil, "run", "-d", "-b", ended.bundle, ended.id)
		}
		r := c.e.cfd(argv...)
		t.Logf("containerfd %s: %v", strings.Join(argv, " "), r)
		if r.code != 0 && !(argv[0] == "wait" && r.code == 3) {
			t.Errorf("%s\ntyped as: containerfd %s\n%v", line, strings.Join(argv, " "), r)
			continue
		}
		c.check(t, r)
	}
	for _, line := range slices.Sorted(func(yield func(string) bool) {
		for l := range cases {
			if !yield(l) {
				return
			}
		}
	}) {
		t.Errorf("%s has no synopsis %q any more", beyondRuncDoc, line)
	}
}
