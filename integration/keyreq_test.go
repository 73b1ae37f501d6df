package integration

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/containerfd/containerfd/internal/testutil"
	"github.com/containerfd/containerfd/libcontainerfd/keyreq"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// requestKeyConf is what `make install` puts into /etc/request-key.d.
const requestKeyConf = "../hack/install/request-key.conf.in"

// installKeyUpcall makes the kernel's key requests reach the test's
// containerfd, as `make install` does for an installed one: a
// request-key.d file of the test's own, removed at cleanup. It skips where
// the host has no /sbin/request-key.
func installKeyUpcall(t *testing.T) {
	t.Helper()
	if _, err := os.Stat(keyreq.RequestKey); err != nil {
		t.Skipf("no %s (keyutils): the kernel's key requests go nowhere", keyreq.RequestKey)
	}
	tmpl, err := os.ReadFile(requestKeyConf)
	if err != nil {
		t.Skipf("the request-key.d template: %v", err)
	}
	conf := filepath.Join(keyreq.ConfDir, testutil.ID(t)+".conf")
	body := strings.ReplaceAll(string(tmpl), "@BINDIR@", filepath.Dir(binary))
	if err := os.WriteFile(conf, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove(conf) })
}

// keyHandler writes the handler script the tests name with --key-handler and
// returns its path and the log it appends "type|description|callout|id|env
// type|env id" lines to. The description's first word picks the answer:
// deny (EACCES), crash (SIGSEGV), slow (outlives any timeout); a
// dns_resolver key gets an address (NUL-terminated, as the kernel wants it);
// anything else "payload:DESC:CALLOUT".
func keyHandler(t *testing.T) (handler, log string) {
	dir := t.TempDir()
	handler, log = filepath.Join(dir, "handler"), filepath.Join(dir, "log")
	script := `#!/bin/sh
echo "$1|$2|$3|$4|$CONTAINERFD_KEY_TYPE|$CONTAINERFD_ID" >>` + log + `
case "$1:$2" in
*:deny*) echo "EACCES: no key for you" >&2; exit 1 ;;
*:crash*) kill -SEGV $$ ;;
*:slow*) exec sleep 60 ;;
dns_resolver:*) printf '192.0.2.1\0' ;;
*) printf 'payload:%s:%s' "$2" "$3" ;;
esac
`
	if err := os.WriteFile(handler, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(log, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	return handler, log
}

func readLog(t *testing.T, log string) []string {
	t.Helper()
	b, err := os.ReadFile(log)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Fields(string(b))
}

// newKeyreqEnv is newKeyringEnv (keyread in the rootfs) with init sleeping
// and CAP_SYS_ADMIN: some kernels (this host's 6.18 build) refuse the
// upcall to a requester without it, failing request_key with ENOENT before
// any program runs (docs/beyond-runc.md, "Key requests").
func newKeyreqEnv(t *testing.T) *env {
	e := newKeyringEnv(t, "sleep", "100")
	s := e.spec()
	c := s.Process.Capabilities
	for _, set := range []*[]string{&c.Bounding, &c.Effective, &c.Permitted} {
		*set = append(*set, "CAP_SYS_ADMIN")
	}
	e.writeSpec(s)
	return e
}

// request runs keyread -request inside e's container: it asks for a key of
// typ called desc with callout data, and prints its payload.
func (e *env) request(typ, desc, callout string) result {
	e.t.Helper()
	return e.cfd("exec", e.id, "/keyread", "-request", callout, desc, typ)
}

// A request from inside a container with a handler is answered by it: user,
// logon (usable, never readable) and dns_resolver keys land in the
// container's keyring. A request of the host's, and one from a container
// without a handler, never reach it, and get what they got without
// containerfd.
func TestKeyRequestAnsweredByCreator(t *testing.T) {
	a := newKeyreqEnv(t)
	b := newKeyreqEnv(t)
	// The host's answer before containerfd is in the way, and after.
	if _, err := exec.LookPath("keyctl"); err != nil {
		t.Skip("no keyctl (keyutils)")
	}
	hostKeyread := filepath.Join(a.spec().Root.Path, "keyread")
	// A user key no host rule makes, and a dns_resolver key, which the
	// host's rule makes (Debian's key.dns_resolver) where there is one and
	// which containerfd's entry takes first: key-upcall hands it over.
	host := func() (string, error) {
		var out []string
		var errs []error
		for _, req := range [][]string{{"co", "cfd:x"}, {"", "localhost", "dns_resolver"}} {
			// In a session keyring of its own, which keyctl names on stderr.
			b, err := exec.Command("keyctl", append([]string{"session", "-", hostKeyread, "-request"}, req...)...).CombinedOutput()
			for _, l := range strings.Split(string(b), "\n") {
				if !strings.HasPrefix(l, "Joined session keyring") {
					out = append(out, l)
				}
			}
			errs = append(errs, err)
		}
		return strings.Join(out, "\n"), errors.Join(errs...)
	}
	before, beforeErr := host()
	installKeyUpcall(t)
	handler, log := keyHandler(t)

	a.ok("run", "-d", "--key-handler", handler, "-b", a.bundle, a.id)
	b.ok("run", "-d", "-b", b.bundle, b.id)

	if r := a.request("user", "cfd:x", "co-1"); r.code != 0 || r.stdout != "payload:cfd:x:co-1" {
		t.Fatalf("user key from inside: %v", r)
	}
	want := "user|cfd:x|co-1|" + a.id + "|user|" + a.id
	if got := readLog(t, log); len(got) != 1 || got[0] != want {
		t.Fatalf("handler log %q, want %q", got, want)
	}
	// In the container's keyring now: found without asking again.
	if got := a.ok("exec", a.id, "/keyread", "cfd:x"); got != "payload:cfd:x:co-1" {
		t.Errorf("keyread cfd:x after the request: %q", got)
	}
	r := a.request("logon", "cfd:disk", "co-2")
	if r.code == 0 || !strings.Contains(r.stderr, "read key") || !strings.Contains(r.stderr, "operation not supported") {
		t.Errorf("logon key: want it made but unreadable: %v", r)
	}
	wantKeys := [][2]string{{"user", "cfd:x"}, {"logon", "cfd:disk"}}
	if err := dnsResolverMissing(); err != nil {
		t.Logf("no dns_resolver request: %v", err)
	} else {
		if r := a.request("dns_resolver", "example.test", ""); r.code != 0 || r.stdout != "192.0.2.1" {
			t.Errorf("dns_resolver key from inside: %v", r)
		}
		wantKeys = append(wantKeys, [2]string{"dns_resolver", "example.test"})
	}
	keys := a.listKeys()
	for _, k := range wantKeys {
		if findKey(keys, k[0], k[1]) == nil {
			t.Errorf("keyring list has no %s key %q: %v", k[0], k[1], keys)
		}
	}
	got := readLog(t, log)
	if len(got) != len(wantKeys) || got[1] != "logon|cfd:disk|co-2|"+a.id+"|logon|"+a.id || len(wantKeys) == 3 && !strings.HasPrefix(got[2], "dns_resolver|example.test||"+a.id) {
		t.Errorf("handler log: %q", got)
	}

	// Another container's request and the host's go by the host's rules
	// (none for cfd:*), not to the handler.
	if r := b.request("user", "cfd:x", "co-b"); r.code == 0 || !strings.Contains(r.stderr, "required key not available") {
		t.Errorf("container without a handler: %v", r)
	}
	after, afterErr := host()
	t.Logf("the host's requests: %q (%v)", after, afterErr)
	if after != before || fmt.Sprint(afterErr) != fmt.Sprint(beforeErr) {
		t.Errorf("host request: %q (%v) with containerfd's entry, %q (%v) without", after, afterErr, before, beforeErr)
	}
	if got := readLog(t, log); len(got) != len(wantKeys) {
		t.Errorf("the handler was asked by others: %q", got)
	}
	// Each leak check sees both containers: gone before either runs.
	a.ok("delete", "--force", a.id)
	b.ok("delete", "--force", b.id)
}

// dnsResolverMissing says why the kernel has no dns_resolver key type
// (its module not loaded, as in the VM's initramfs), or nil where it has:
// the module, built in or loaded, shows in /sys/module with its "debug"
// parameter. Without it, request_key fails ENOKEY before any upcall.
func dnsResolverMissing() error {
	if _, err := os.Stat("/sys/module/dns_resolver"); err != nil {
		return fmt.Errorf("the kernel has no dns_resolver key type (module dns_resolver): %w", err)
	}
	return nil
}

// A denial, a crash and a timeout of the handler each fail the request with
// an error that says which, and leave no key behind: none in the container's
// keyring, no negative key answering the next request (which reaches the
// handler again), none owned by root (NoLeaks).
func TestKeyRequestFailures(t *testing.T) {
	e := newKeyreqEnv(t)
	installKeyUpcall(t)
	handler, log := keyHandler(t)
	e.ok("run", "-d", "--key-handler", handler, "--key-handler-timeout", "1s", "-b", e.bundle, e.id)
	calls := 0
	for _, c := range []struct{ desc, err string }{
		{"deny:a", "permission denied"},
		{"crash:a", "key was rejected by service"},
		{"slow:a", "connection timed out"},
		{"deny:a", "permission denied"}, // asked again: no negative key cached
	} {
		r := e.request("user", c.desc, "co")
		calls++
		if r.code == 0 || !strings.Contains(r.stderr, c.err) {
			t.Errorf("%s: want %q: %v", c.desc, c.err, r)
		}
		if got := readLog(t, log); len(got) != calls {
			t.Errorf("%s: handler ran %d times, want %d", c.desc, len(got), calls)
		}
		for _, k := range e.listKeys() {
			if k.Description == c.desc {
				t.Errorf("%s: left in the container's keyring: %+v", c.desc, k)
			}
		}
	}
	// Unlinked, a rejected key lives on until the kernel's garbage
	// collector frees it, soon after the request's authorization key.
	start := time.Now()
	for {
		inside := e.keysInside()
		if !strings.Contains(inside, "deny:") && !strings.Contains(inside, "crash:") && !strings.Contains(inside, "slow:") {
			t.Logf("rejected keys freed after %v", time.Since(start).Round(time.Millisecond))
			break
		}
		if time.Since(start) > 10*time.Second {
			t.Fatalf("keys left:\n%s", inside)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// A handler needs the container's own keyring, an absolute path, and the
// host side; a create that fails after registering leaves no entry (NoLeaks).
func TestKeyHandlerRefused(t *testing.T) {
	e := newKeyreqEnv(t)
	handler, _ := keyHandler(t)
	if err := keyreq.CheckHost(); err == nil {
		t.Log("the host has a request-key.d entry already: the missing-entry error is not tested")
	} else {
		r := e.cfd("create", "--key-handler", handler, "-b", e.bundle, e.id)
		if r.code == 0 || !strings.Contains(r.stderr, "make install") {
			t.Errorf("create without the host side: want an error naming make install: %v", r)
		}
	}
	installKeyUpcall(t)
	for _, c := range []struct {
		args []string
		err  string
	}{
		{[]string{"--key-handler", handler, "--no-new-keyring"}, "--no-new-keyring"},
		{[]string{"--key-handler", "handler"}, "absolute path"},
		{[]string{"--key-handler", filepath.Dir(handler)}, "not an executable file"},
		{[]string{"--key-handler-timeout", "1s"}, "without KeyHandler"},
	} {
		r := e.cfd(append(append([]string{"create"}, c.args...), "-b", e.bundle, e.id)...)
		if r.code == 0 || !strings.Contains(r.stderr, c.err) {
			t.Errorf("create %q: want an error with %q: %v", c.args, c.err, r)
		}
		if st := e.cfd("state", e.id); st.code == 0 {
			t.Errorf("create %q failed but left the container", c.args)
		}
	}
	// Fails after init and the registration: the createRuntime hook.
	s := e.spec()
	s.Hooks = &specs.Hooks{CreateRuntime: []specs.Hook{{Path: "/bin/false"}}}
	e.writeSpec(s)
	if r := e.cfd("create", "--key-handler", handler, "-b", e.bundle, e.id); r.code == 0 {
		t.Errorf("create with a failing hook succeeded")
	}
}
