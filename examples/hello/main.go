// Command hello runs one command in a new container built from a root
// filesystem directory, using libcontainerfd directly.
//
//	go run ./examples/hello -rootfs DIR -- /bin/sh -c 'echo hi'
package main

import (
	"flag"
	"fmt"
	"os"

	cfd "github.com/containerfd/containerfd/libcontainerfd"
	"github.com/containerfd/containerfd/libcontainerfd/mounttree"
	"golang.org/x/sys/unix"
)

func main() {
	// The library starts this binary as its stages: Init runs them.
	cfd.Init()
	rootfs := flag.String("rootfs", "", "root filesystem directory")
	state := flag.String("root", "/run/containerfd-hello", "state directory")
	cgroup := flag.String("cgroup", "", "absolute cgroup path (default /containerfd-hello-<pid>)")
	flag.Parse()
	if *rootfs == "" || flag.NArg() == 0 {
		fmt.Fprintln(os.Stderr, "usage: hello -rootfs DIR -- COMMAND...")
		os.Exit(2)
	}
	if *cgroup == "" {
		*cgroup = fmt.Sprintf("/containerfd-hello-%d", os.Getpid())
	}
	code, err := run(*state, *cgroup, *rootfs, flag.Args())
	if err != nil {
		fmt.Fprintln(os.Stderr, "hello:", err)
		os.Exit(1)
	}
	os.Exit(code)
}

func run(state, cgroup, rootfs string, args []string) (int, error) {
	ns := func(t int) cfd.Namespace { return cfd.Namespace{Type: t} }
	c, err := cfd.Create(state, fmt.Sprintf("hello-%d", os.Getpid()), &cfd.Config{
		Flags: cfd.NewEmptyFS | cfd.KillOnClose,
		Namespaces: []cfd.Namespace{ns(unix.CLONE_NEWNS), ns(unix.CLONE_NEWPID), ns(unix.CLONE_NEWUTS),
			ns(unix.CLONE_NEWIPC), ns(unix.CLONE_NEWNET), ns(unix.CLONE_NEWCGROUP)},
		Cgroup:   cgroup,
		Rootfs:   rootfs,
		Hostname: "hello",
		Mounts: []mounttree.Mount{
			{Type: "proc", Source: "proc", Target: "/proc"},
			{Type: "tmpfs", Source: "tmpfs", Target: "/tmp"},
		},
	})
	if err != nil {
		return 0, err
	}
	defer c.Destroy()
	p := &cfd.Process{Args: args, Env: []string{"PATH=/bin:/sbin"}, Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr}
	if err := c.ForkInit(p); err != nil {
		return 0, err
	}
	if err := c.Start(); err != nil {
		return 0, err
	}
	ws, err := p.Wait()
	if err != nil {
		return 0, err
	}
	return cfd.ExitCode(ws), nil
}
