package keyreq

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestDeniedWith(t *testing.T) {
	for _, c := range []struct {
		stderr string
		want   syscall.Errno
	}{
		{"EACCES\n", syscall.EACCES},
		{"looking...\nEPERM: not this one\n", syscall.EPERM},
		{"ENOKEY no such key", syscall.ENOKEY},
		{"permission denied", syscall.EKEYREJECTED},
		{"EACCES first\nthen something else", syscall.EKEYREJECTED},
		{"", syscall.EKEYREJECTED},
		{"ENOTANERRNO", syscall.EKEYREJECTED},
	} {
		if got := deniedWith([]byte(c.stderr)); got != c.want {
			t.Errorf("deniedWith(%q) = %v, want %v", c.stderr, got, c.want)
		}
	}
}

// The fallback leaves out every file that runs key-upcall, and only those.
func TestOurBinary(t *testing.T) {
	dir := t.TempDir()
	tmpl, err := os.ReadFile("../../hack/install/request-key.conf.in")
	if err != nil {
		t.Fatal(err)
	}
	for name, body := range map[string]string{
		"ours.conf":   strings.ReplaceAll(string(tmpl), "@BINDIR@", "/opt/cfd/bin"),
		"host.conf":   "create\tdns_resolver\t*\t*\t/sbin/key.dns_resolver %k\n",
		"quoted.conf": "# create * * * /x/containerfd key-upcall %o\n",
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for name, want := range map[string]string{"ours.conf": "/opt/cfd/bin/containerfd", "host.conf": "", "quoted.conf": "", "missing.conf": ""} {
		if got := ourBinary(filepath.Join(dir, name)); got != want {
			t.Errorf("ourBinary(%s) = %q, want %q", name, got, want)
		}
	}
}

func TestRegisterLookup(t *testing.T) {
	old := Dir
	Dir = filepath.Join(t.TempDir(), "keyreq")
	t.Cleanup(func() { Dir = old })
	e := Entry{ID: "c1", Root: "/run/x", Keyring: "containerfd.c1.00", Handler: "/bin/true", Timeout: time.Second}
	if err := Register(42, e); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(Dir)
	if err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("table directory: %v, %v; want mode 0700", fi.Mode(), err)
	}
	fi, err = os.Stat(filepath.Join(Dir, "42"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("entry: %v, %v; want mode 0600", fi.Mode(), err)
	}
	got, err := Lookup(42)
	if err != nil || got == nil || *got != e {
		t.Errorf("Lookup(42) = %+v, %v; want %+v", got, err, e)
	}
	if got, err := Lookup(43); got != nil || err != nil {
		t.Errorf("Lookup(43) = %+v, %v; want none", got, err)
	}
	if err := Unregister(42); err != nil {
		t.Fatal(err)
	}
	if err := Unregister(42); err != nil {
		t.Errorf("Unregister of a missing entry: %v", err)
	}
	if names, _ := os.ReadDir(Dir); len(names) != 0 {
		t.Errorf("left in the table: %v", names)
	}
}
