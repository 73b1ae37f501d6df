package libcontainerfd_test

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log"
	"os"
	"path/filepath"

	cfd "github.com/containerfd/containerfd/libcontainerfd"
	"github.com/containerfd/containerfd/libcontainerfd/mounttree"
	"golang.org/x/sys/unix"
)

// exampleSetup makes what an example needs: a busybox root filesystem, a
// state directory and a cgroup path of its own. The cleanup removes them.
func exampleSetup() (rootfs, state, cgroup string, cleanup func()) {
	dir, err := os.MkdirTemp("", "cfdexample-")
	if err != nil {
		log.Fatal(err)
	}
	rootfs = filepath.Join(dir, "rootfs")
	for _, d := range []string{"bin", "proc", "tmp", "mnt"} {
		os.MkdirAll(filepath.Join(rootfs, d), 0o755)
	}
	b, err := os.ReadFile("/bin/busybox") // Debian's busybox-static
	if err != nil {
		log.Fatal(err)
	}
	os.WriteFile(filepath.Join(rootfs, "bin/busybox"), b, 0o755)
	for _, applet := range []string{"sh", "echo", "cat", "hostname", "sleep", "nc", "grep"} {
		os.Symlink("busybox", filepath.Join(rootfs, "bin", applet))
	}
	r := make([]byte, 6)
	rand.Read(r)
	return rootfs, filepath.Join(dir, "state"), "/cfdtest-" + hex.EncodeToString(r), func() { os.RemoveAll(dir) }
}

// The whole life of a container: made, its init started in new
// namespaces with a root built from nothing, waited for, destroyed.
func Example() {
	rootfs, state, cgroup, cleanup := exampleSetup()
	defer cleanup()
	c, err := cfd.Create(state, "example", &cfd.Config{
		Flags:      cfd.NewEmptyFS,
		Namespaces: newNS(unix.CLONE_NEWNS, unix.CLONE_NEWPID, unix.CLONE_NEWUTS, unix.CLONE_NEWNET),
		Cgroup:     cgroup,
		Rootfs:     rootfs,
		Hostname:   "example",
		Mounts:     []mounttree.Mount{{Type: "proc", Source: "proc", Target: "/proc"}},
	})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Destroy()
	p := &cfd.Process{Args: []string{"sh", "-c", "echo hello from $(hostname), pid $$"}, Stdout: os.Stdout}
	if err := c.ForkInit(p); err != nil {
		log.Fatal(err)
	}
	if err := c.Start(); err != nil {
		log.Fatal(err)
	}
	ws, err := p.Wait()
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("exit code", cfd.ExitCode(ws))
	// Output:
	// hello from example, pid 1
	// exit code 0
}

// A mount made outside, attached to a running container: the container
// sees it at once.
func ExampleContainer_Mount() {
	rootfs, state, cgroup, cleanup := exampleSetup()
	defer cleanup()
	c, err := cfd.Create(state, "mount-example", &cfd.Config{
		Flags:      cfd.NewEmptyFS,
		Namespaces: newNS(unix.CLONE_NEWNS, unix.CLONE_NEWPID),
		Cgroup:     cgroup,
		Rootfs:     rootfs,
		Mounts:     []mounttree.Mount{{Type: "proc", Source: "proc", Target: "/proc"}},
	})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Destroy()
	init := &cfd.Process{Args: []string{"sleep", "100"}}
	if err := c.ForkInit(init); err != nil {
		log.Fatal(err)
	}
	defer init.Wait()
	if err := c.Start(); err != nil {
		log.Fatal(err)
	}
	if err := c.Mount(mounttree.Mount{Type: "tmpfs", Source: "late", Target: "/mnt/late", Data: []string{"size=1m"}}); err != nil {
		log.Fatal(err)
	}
	p := &cfd.Process{Args: []string{"sh", "-c", "grep -o 'late /mnt/late tmpfs' /proc/mounts"}, Stdout: os.Stdout}
	if err := c.Exec(p); err != nil {
		log.Fatal(err)
	}
	p.Wait()
	c.KillAll()
	// Output:
	// late /mnt/late tmpfs
}

// A listening socket made from outside in the container's network
// namespace: the container reaches it on its own 127.0.0.1, the host has
// no such listener.
func ExampleContainer_Socket() {
	rootfs, state, cgroup, cleanup := exampleSetup()
	defer cleanup()
	c, err := cfd.Create(state, "socket-example", &cfd.Config{
		Flags:      cfd.NewEmptyFS,
		Namespaces: newNS(unix.CLONE_NEWNS, unix.CLONE_NEWPID, unix.CLONE_NEWNET),
		Cgroup:     cgroup,
		Rootfs:     rootfs,
	})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Destroy()
	init := &cfd.Process{Args: []string{"sh", "-c", "echo hello over the socket | nc 127.0.0.1 8080"}}
	if err := c.ForkInit(init); err != nil {
		log.Fatal(err)
	}
	defer init.Wait()
	l, err := c.Socket(unix.AF_INET, unix.SOCK_STREAM, 0)
	if err != nil {
		log.Fatal(err)
	}
	defer unix.Close(l)
	if err := unix.Bind(l, &unix.SockaddrInet4{Port: 8080, Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		log.Fatal(err)
	}
	unix.Listen(l, 1)
	if err := c.Start(); err != nil {
		log.Fatal(err)
	}
	conn, _, err := unix.Accept(l)
	if err != nil {
		log.Fatal(err)
	}
	defer unix.Close(conn)
	buf := make([]byte, 64)
	n, _ := unix.Read(conn, buf)
	fmt.Printf("%s", buf[:n])
	// Output:
	// hello over the socket
}
