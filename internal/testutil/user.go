package testutil

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/containerfd/containerfd/libcontainerfd/registry"
	"golang.org/x/sys/unix"
)

// User is an unprivileged user made for one test, with subordinate id
// ranges of its own in /etc/subuid and /etc/subgid and an
// XDG_RUNTIME_DIR, for rootless tests.
type User struct {
	Name     string
	UID, GID int
	// SubStart is the first of the user's SubCount subordinate uids, and
	// of as many gids.
	SubStart, SubCount int
	// XDG is the user's XDG_RUNTIME_DIR (0700, the user's).
	XDG string
}

// subidMu serializes the edits of /etc/subuid and /etc/subgid within a
// test binary.
var subidMu sync.Mutex

// subCount is the size of a test user's subordinate ranges.
const subCount = 65536

// NewUser makes a user for the test (useradd, no home), gives it
// subordinate ranges above every range in /etc/subuid and /etc/subgid, and
// an XDG_RUNTIME_DIR. After the test, a process of the user or of its
// ranges still there fails the test (and is killed); then the ranges and
// the user are removed. It needs root.
//
// Without useradd (a test VM with only busybox) the user is an unused uid
// and gid with no account and no subordinate ranges (SubCount 0): enough
// for a runtime, which needs no account, to run as someone who is not
// root. RequireSubids skips what needs the ranges.
//
// Where the host's sysctls forbid unprivileged user namespaces, which
// every rootless container needs, the test is skipped, naming the sysctl.
func NewUser(t testing.TB) *User {
	t.Helper()
	RequireRoot(t)
	requireUnprivilegedUserns(t)
	if _, err := exec.LookPath("useradd"); err != nil {
		return newAnonymousUser(t)
	}
	u := &User{Name: "cfdrl" + randHex(4), SubCount: subCount}
	// No home, and no ranges of useradd's choosing: ours come next.
	out, err := exec.Command("useradd", "-M", "-U", "-s", "/bin/sh",
		"-K", "SUB_UID_COUNT=0", "-K", "SUB_GID_COUNT=0", u.Name).CombinedOutput()
	if err != nil {
		t.Fatalf("useradd %s: %v: %s", u.Name, err, out)
	}
	t.Cleanup(func() { u.remove(t) })
	pw, err := user.Lookup(u.Name)
	if err != nil {
		t.Fatal(err)
	}
	u.UID, _ = strconv.Atoi(pw.Uid)
	u.GID, _ = strconv.Atoi(pw.Gid)
	if err := u.addRanges(); err != nil {
		t.Fatal(err)
	}
	u.makeXDG(t)
	return u
}

// requireUnprivilegedUserns skips the test where a sysctl forbids users
// other than root to make user namespaces: Debian's
// kernel.unprivileged_userns_clone (1 by default since Debian 11), or
// user.max_user_namespaces. A sysctl the kernel lacks forbids nothing.
func requireUnprivilegedUserns(t testing.TB) {
	t.Helper()
	for _, f := range []string{"/proc/sys/kernel/unprivileged_userns_clone", "/proc/sys/user/max_user_namespaces"} {
		if b, err := os.ReadFile(f); err == nil && strings.TrimSpace(string(b)) == "0" {
			t.Skipf("%s is 0: this host forbids unprivileged user namespaces, which rootless containers need", f)
		}
	}
}

// newAnonymousUser is NewUser without useradd: a uid no process has.
func newAnonymousUser(t testing.TB) *User {
	t.Helper()
	u := &User{}
	for id := 40000 + int(randUint16()%10000); ; id++ {
		u.UID, u.GID = id, id
		if len(u.Processes()) == 0 {
			if _, err := user.LookupId(strconv.Itoa(id)); err != nil {
				break
			}
		}
	}
	u.Name = "uid" + strconv.Itoa(u.UID)
	t.Cleanup(func() { u.remove(t) })
	u.makeXDG(t)
	return u
}

// makeXDG gives u an XDG_RUNTIME_DIR of its own, removed at cleanup.
func (u *User) makeXDG(t testing.TB) {
	t.Helper()
	xdg, err := os.MkdirTemp("", "cfdxdg-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// The user's part of the host-wide list must be empty.
		if left, _ := dirLeftovers(filepath.Join(xdg, registry.UserDirName)); len(left) > 0 {
			t.Errorf("the user's registry %s not empty after the test: %v", filepath.Join(xdg, registry.UserDirName), left)
		}
		removeTree(t, xdg)
	})
	u.XDG = xdg
	u.Own(t, xdg, 0o700)
}

func randUint16() uint16 {
	b, _ := strconv.ParseUint(randHex(2), 16, 16)
	return uint16(b)
}

// RequireSubids skips the test unless the user has subordinate ranges and
// newuidmap and newgidmap can map them.
func (u *User) RequireSubids(t testing.TB) {
	t.Helper()
	if u.SubCount == 0 {
		t.Skip("needs useradd for a user with subordinate id ranges")
	}
	for _, tool := range []string{"newuidmap", "newgidmap"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("needs %s to map subordinate ids (apt-get install uidmap, or run hack/deps.sh)", tool)
		}
	}
}

// Own makes path the user's, with mode.
func (u *User) Own(t testing.TB, path string, mode os.FileMode) {
	t.Helper()
	if err := os.Chown(path, u.UID, u.GID); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
}

// Env is the environment of a login of the user's (PATH, HOME, USER,
// LOGNAME, XDG_RUNTIME_DIR).
func (u *User) Env() []string {
	return []string{"PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin", "HOME=/nonexistent",
		"USER=" + u.Name, "LOGNAME=" + u.Name, "XDG_RUNTIME_DIR=" + u.XDG}
}

// Credential runs a process as the user, without supplementary groups.
func (u *User) Credential() *syscall.Credential {
	return &syscall.Credential{Uid: uint32(u.UID), Gid: uint32(u.GID), Groups: []uint32{}}
}

// Processes lists the processes whose real uid is the user's or one of
// its subordinate ids.
func (u *User) Processes() []int {
	ents, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		f, err := os.Open("/proc/" + e.Name() + "/status")
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if v, ok := strings.CutPrefix(sc.Text(), "Uid:"); ok {
				if fs := strings.Fields(v); len(fs) > 0 {
					r, _ := strconv.Atoi(fs[0])
					if r == u.UID || (r >= u.SubStart && r < u.SubStart+u.SubCount) {
						pids = append(pids, pid)
					}
				}
				break
			}
		}
		f.Close()
	}
	return pids
}

func (u *User) addRanges() error {
	subidMu.Lock()
	defer subidMu.Unlock()
	start := 1 << 20
	for _, f := range []string{"/etc/subuid", "/etc/subgid"} {
		lines, err := readSubids(f)
		if err != nil {
			return err
		}
		for _, l := range lines {
			p := strings.Split(l, ":")
			if len(p) != 3 {
				continue
			}
			s, err1 := strconv.Atoi(p[1])
			n, err2 := strconv.Atoi(p[2])
			if err1 == nil && err2 == nil && s+n > start {
				start = s + n
			}
		}
	}
	u.SubStart = (start + subCount - 1) / subCount * subCount
	line := fmt.Sprintf("%s:%d:%d\n", u.Name, u.SubStart, u.SubCount)
	for _, f := range []string{"/etc/subuid", "/etc/subgid"} {
		fh, err := os.OpenFile(f, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
		if err != nil {
			return err
		}
		_, err = fh.WriteString(line)
		if cerr := fh.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func readSubids(f string) ([]string, error) {
	b, err := os.ReadFile(f)
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return strings.Split(strings.TrimSpace(string(b)), "\n"), nil
}

func (u *User) remove(t testing.TB) {
	t.Helper()
	if u.UID != 0 {
		deadline := time.Now().Add(leakWait)
		for {
			pids := u.Processes()
			if len(pids) == 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Errorf("processes of the test user %s (or its subordinate ids) left after the test: %v; killing them", u.Name, pids)
				for _, p := range pids {
					unix.Kill(p, unix.SIGKILL)
				}
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	if u.SubCount == 0 {
		return // no account, no ranges
	}
	subidMu.Lock()
	for _, f := range []string{"/etc/subuid", "/etc/subgid"} {
		lines, err := readSubids(f)
		if err != nil {
			t.Errorf("removing %s's ranges: %v", u.Name, err)
			continue
		}
		var keep []string
		for _, l := range lines {
			if l != "" && !strings.HasPrefix(l, u.Name+":") {
				keep = append(keep, l)
			}
		}
		data := strings.Join(keep, "\n")
		if data != "" {
			data += "\n"
		}
		if err := os.WriteFile(f, []byte(data), 0o644); err != nil {
			t.Errorf("removing %s's ranges from %s: %v", u.Name, f, err)
		}
	}
	subidMu.Unlock()
	if out, err := exec.Command("userdel", u.Name).CombinedOutput(); err != nil {
		t.Errorf("userdel %s: %v: %s", u.Name, err, out)
	}
}

// Path makes dir's parents searchable by anyone, so the user can reach dir
// (t.TempDir's parents are 0700).
func Path(t testing.TB, dir string) {
	t.Helper()
	for d := filepath.Dir(dir); d != "/" && d != "." && d != os.TempDir(); d = filepath.Dir(d) {
		var st unix.Stat_t
		if err := unix.Stat(d, &st); err != nil {
			t.Fatal(err)
		}
		if st.Mode&0o001 == 0 {
			if err := os.Chmod(d, os.FileMode(st.Mode&0o7777|0o111)); err != nil {
				t.Fatal(err)
			}
		}
	}
}
