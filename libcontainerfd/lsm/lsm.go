// Package lsm puts a process under an AppArmor profile or an SELinux label
// from its next execve on, and tells whether the running kernel has either
// LSM active.
//
// The label is written to the calling thread's /proc attr file, which a
// process in the container could otherwise redirect with a mount of its own
// (CVE-2019-16884, CVE-2025-52881): the file is opened through a private,
// non-recursive clone of the procfs mount, beneath it, crossing no mount
// and following no symlink, and is checked to be on procfs.
package lsm

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strings"

	"golang.org/x/sys/unix"
)

// Which LSM a label is for.
const (
	AppArmor = "apparmor"
	SELinux  = "selinux"
)

// AppArmorEnabled tells whether AppArmor is active: its securityfs
// directory is there and the module says it is enabled (as runc checks).
func AppArmorEnabled() bool {
	if _, err := os.Stat("/sys/kernel/security/apparmor"); err != nil {
		return false
	}
	b, err := os.ReadFile("/sys/module/apparmor/parameters/enabled")
	return err == nil && bytes.HasPrefix(b, []byte("Y"))
}

// SELinuxEnabled tells whether SELinux is active: selinuxfs is mounted at
// /sys/fs/selinux (the kernel mounts nothing there without a policy).
func SELinuxEnabled() bool {
	var st unix.Statfs_t
	if err := unix.Statfs("/sys/fs/selinux", &st); err != nil || st.Type != unix.SELINUX_MAGIC {
		return false
	}
	_, err := os.Stat("/sys/fs/selinux/enforce")
	return err == nil
}

// Check returns an error naming the LSM when it is not active here.
func Check(lsm string) error {
	switch lsm {
	case AppArmor:
		if !AppArmorEnabled() {
			return errors.New("AppArmor is not enabled in this kernel (no /sys/kernel/security/apparmor, or /sys/module/apparmor/parameters/enabled is not Y)")
		}
	case SELinux:
		if !SELinuxEnabled() {
			return errors.New("SELinux is not enabled in this kernel (no selinuxfs at /sys/fs/selinux)")
		}
	default:
		return fmt.Errorf("unknown LSM %q", lsm)
	}
	return nil
}

// SetExec makes the calling thread's next execve run under label: an
// AppArmor profile name or an SELinux context. It needs CAP_SYS_ADMIN over
// the mount namespace (to clone the procfs mount), so call it before the
// capabilities are dropped, and from the thread that will exec. Call Check
// first where /sys is the host's: inside a container securityfs is not
// mounted, and SetExec only finds out from the kernel's error.
func SetExec(lsm, label string) error {
	// Each LSM has its own attr directory since Linux 5.8, and AppArmor
	// used the shared files before; SELinux keeps the shared attr/exec.
	files, data := []string{"attr/exec"}, label
	if lsm == AppArmor {
		files, data = []string{"attr/apparmor/exec", "attr/exec"}, "exec "+label
	}
	if err := writeSelfAttr(data, files...); err != nil {
		return fmt.Errorf("set %s label %q: %w", lsm, label, err)
	}
	return nil
}

// writeSelfAttr writes data to the first of files (relative to the calling
// thread's /proc/thread-self) that exists.
func writeSelfAttr(data string, files ...string) error {
	proc, err := unix.OpenTree(unix.AT_FDCWD, "/proc", unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC|unix.AT_SYMLINK_NOFOLLOW)
	if err != nil {
		return fmt.Errorf("clone the /proc mount: %w", err)
	}
	defer unix.Close(proc)
	var st unix.Statfs_t
	if err := unix.Fstatfs(proc, &st); err != nil {
		return fmt.Errorf("statfs /proc: %w", err)
	}
	if st.Type != unix.PROC_SUPER_MAGIC {
		return fmt.Errorf("/proc is not procfs (filesystem type %#x)", st.Type)
	}
	// "thread-self" reads as "<pid>/task/<tid>" in this procfs's pid
	// namespace; a procfs of another pid namespace has no such link.
	self, err := readlinkat(proc, "thread-self")
	if err != nil {
		return fmt.Errorf("read /proc/thread-self: %w", err)
	}
	if strings.Contains(self, "..") || strings.HasPrefix(self, "/") {
		return fmt.Errorf("/proc/thread-self is %q", self)
	}
	how := &unix.OpenHow{
		Flags:   unix.O_WRONLY | unix.O_CLOEXEC,
		Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_XDEV | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS,
	}
	for i, file := range files {
		path := self + "/" + file
		fd, err := unix.Openat2(proc, path, how)
		if errors.Is(err, unix.ENOENT) && i < len(files)-1 {
			continue
		}
		if err != nil {
			return fmt.Errorf("open /proc/%s: %w", path, err)
		}
		_, err = unix.Write(fd, []byte(data))
		unix.Close(fd)
		if err != nil {
			return fmt.Errorf("write /proc/%s: %w", path, err)
		}
		return nil
	}
	return errors.New("no attr file to write")
}

func readlinkat(dir int, name string) (string, error) {
	buf := make([]byte, 64)
	n, err := unix.Readlinkat(dir, name, buf)
	if err != nil {
		return "", err
	}
	return string(buf[:n]), nil
}
