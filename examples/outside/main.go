// Command outside shows what a container held by its handle allows, using
// only the library: it makes a container, gives it a socket and a mount from
// outside (without entering it), and waits for its last process.
//
//	go run ./examples/outside -rootfs DIR
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"

	cfd "github.com/containerfd/containerfd/libcontainerfd"
	"github.com/containerfd/containerfd/libcontainerfd/mounttree"
	"golang.org/x/sys/unix"
)

func main() {
	// The library starts this binary as its stages: Init runs them.
	cfd.Init()
	rootfs := flag.String("rootfs", "", "root filesystem directory (busybox)")
	flag.Parse()
	if *rootfs == "" {
		fmt.Fprintln(os.Stderr, "usage: outside -rootfs DIR")
		os.Exit(2)
	}
	if err := run(*rootfs); err != nil {
		fmt.Fprintln(os.Stderr, "outside:", err)
		os.Exit(1)
	}
}

func run(rootfs string) error {
	state, err := os.MkdirTemp("", "outside-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(state)
	ns := func(t int) cfd.Namespace { return cfd.Namespace{Type: t} }
	c, err := cfd.Create(state, "outside", &cfd.Config{
		Flags:      cfd.NewEmptyFS | cfd.KillOnClose,
		Namespaces: []cfd.Namespace{ns(unix.CLONE_NEWNS), ns(unix.CLONE_NEWPID), ns(unix.CLONE_NEWNET)},
		Cgroup:     fmt.Sprintf("/containerfd-outside-%d", os.Getpid()),
		Rootfs:     rootfs,
		Mounts:     []mounttree.Mount{{Type: "proc", Source: "proc", Target: "/proc"}},
	})
	if err != nil {
		return err
	}
	defer c.Destroy()

	// The container reads a file we mount and talks to a socket we made.
	p := &cfd.Process{
		Args:   []string{"sh", "-c", "cat /mnt/note | nc 127.0.0.1 7000"},
		Env:    []string{"PATH=/bin"},
		Stdout: os.Stdout, Stderr: os.Stderr,
	}
	if err := c.ForkInit(p); err != nil {
		return err
	}
	// A socket in the container's network namespace, made from outside.
	l, err := c.Socket(unix.AF_INET, unix.SOCK_STREAM, 0)
	if err != nil {
		return err
	}
	defer unix.Close(l)
	if err := unix.Bind(l, &unix.SockaddrInet4{Port: 7000, Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		return err
	}
	if err := unix.Listen(l, 1); err != nil {
		return err
	}
	// A host directory, mounted into the running container from outside.
	host, err := os.MkdirTemp("", "outside-note-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(host)
	os.WriteFile(filepath.Join(host, "note"), []byte("hello from a mount made outside\n"), 0o644)
	if err := c.Mount(mounttree.Mount{Type: "bind", Source: host, Target: "/mnt", Attr: unix.MOUNT_ATTR_RDONLY}); err != nil {
		return err
	}
	if err := c.Start(); err != nil {
		return err
	}
	conn, _, err := unix.Accept(l)
	if err != nil {
		return err
	}
	buf := make([]byte, 256)
	n, _ := unix.Read(conn, buf)
	unix.Close(conn)
	fmt.Printf("the container sent: %s", buf[:n])

	// POLLHUP once the last process is gone.
	fd, err := c.PollFD()
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	unix.Poll([]unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}, -1)
	ws, err := p.Wait()
	if err != nil {
		return err
	}
	fmt.Println("container stopped, init exit code", cfd.ExitCode(ws))
	return nil
}
