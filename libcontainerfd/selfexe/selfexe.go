// Package selfexe gives an fd of the running binary that a container cannot
// write through, for running the runtime's own stages inside containers
// (CVE-2019-5736: a container overwriting the host runtime binary through
// /proc/<pid>/exe).
//
// The fd is a detached, read-only bind mount of /proc/self/exe: nothing is
// copied, and every path to the file from inside a container goes through a
// read-only mount that no namespace of the container holds. Where that is not
// possible (ExeBind), it is a sealed memfd copy.
package selfexe

import (
	"fmt"
	"io"
	"os"
	"sync"

	"github.com/containerfd/containerfd/libcontainerfd/kernfeat"
	"golang.org/x/sys/unix"
)

// ExeBind is a read-only detached bind mount of /proc/self/exe (open_tree
// needs CAP_SYS_ADMIN over our mount namespace). Its probe makes the bind
// that FD then returns.
var ExeBind = kernfeat.Register("exe-bind",
	"the stage runs from a read-only detached bind mount of our own binary; without it, from a sealed memfd copy",
	func() bool {
		_, err := bind()
		return err == nil
	})

var (
	bind = sync.OnceValues(roBind)
	open = sync.OnceValues(func() (int, error) {
		if ExeBind.Available() {
			return bind()
		}
		return sealedCopy()
	})
)

// FD returns an O_CLOEXEC fd of the running binary to execveat(2) with
// AT_EMPTY_PATH. It is opened once per process and must not be closed.
func FD() (int, error) { return open() }

func roBind() (int, error) {
	fd, err := unix.OpenTree(unix.AT_FDCWD, "/proc/self/exe", unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC)
	if err != nil {
		return -1, fmt.Errorf("selfexe: open_tree /proc/self/exe: %w", err)
	}
	attr := &unix.MountAttr{Attr_set: unix.MOUNT_ATTR_RDONLY | unix.MOUNT_ATTR_NOSUID | unix.MOUNT_ATTR_NODEV}
	if err := unix.MountSetattr(fd, "", unix.AT_EMPTY_PATH, attr); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("selfexe: make bind of /proc/self/exe read-only: %w", err)
	}
	return fd, nil
}

func sealedCopy() (int, error) {
	src, err := os.Open("/proc/self/exe")
	if err != nil {
		return -1, fmt.Errorf("selfexe: %w", err)
	}
	defer src.Close()
	fd, err := unix.MemfdCreate("containerfd", unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING)
	if err != nil {
		return -1, fmt.Errorf("selfexe: memfd_create: %w", err)
	}
	dst := os.NewFile(uintptr(fd), "memfd:containerfd")
	if _, err := io.Copy(dst, src); err != nil {
		dst.Close()
		return -1, fmt.Errorf("selfexe: copy /proc/self/exe to memfd: %w", err)
	}
	seals := unix.F_SEAL_SEAL | unix.F_SEAL_SHRINK | unix.F_SEAL_GROW | unix.F_SEAL_WRITE
	if _, err := unix.FcntlInt(uintptr(fd), unix.F_ADD_SEALS, seals); err != nil {
		dst.Close()
		return -1, fmt.Errorf("selfexe: seal memfd: %w", err)
	}
	// Keep the fd: the *os.File must not close it when collected.
	nfd, err := unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 0)
	dst.Close()
	if err != nil {
		return -1, fmt.Errorf("selfexe: dup memfd: %w", err)
	}
	return nfd, nil
}
