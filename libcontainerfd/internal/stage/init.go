package stage

import (
	"fmt"
	"strings"

	"github.com/containerfd/containerfd/libcontainerfd/internal/msg"
	"github.com/containerfd/containerfd/libcontainerfd/internal/procfs"
	"github.com/containerfd/containerfd/libcontainerfd/internal/rootfs"
	"golang.org/x/sys/unix"
)

func runInit() error {
	var cfg msg.Init
	sock, err := begin(&cfg)
	if err != nil {
		return err
	}
	fds, err := msg.RecvFDs(sock, cfg.FDs)
	if err != nil {
		return msg.Fail(sock, fmt.Errorf("receive fds: %w", err))
	}
	if len(fds) == 0 {
		return msg.Fail(sock, fmt.Errorf("receive start listener: expected an fd"))
	}
	listener := fds[0]
	path, tty, err := setupInit(sock, &cfg, fds[1:])
	if err != nil {
		return msg.Fail(sock, err)
	}
	if err := msg.SendJSON(sock, msg.Reply{Ready: true}); err != nil {
		return fmt.Errorf("report ready: %w", err)
	}
	unix.Close(sock)

	// Created: wait for start.
	conn, _, err := unix.Accept4(listener, unix.SOCK_CLOEXEC)
	if err != nil {
		return fmt.Errorf("wait for start: %w", err)
	}
	unix.Close(listener)
	var order string
	if err := msg.RecvJSON(conn, &order); err != nil || order != msg.StartOrder {
		return fmt.Errorf("wait for start: unexpected %q: %v", order, err)
	}
	if cfg.LateLookup {
		if path, err = lookup(&cfg.Process); err != nil {
			return msg.Fail(conn, err)
		}
	}
	return msg.Fail(conn, execProcess(&cfg.Process, path, tty, conn))
}

// setupInit builds the container's root from the plan and fds (which it
// takes), and returns the program to run and the pty that becomes its
// terminal (or -1).
func setupInit(sock int, cfg *msg.Init, fds []int) (string, int, error) {
	var f *rootfs.FDs
	switch {
	case cfg.Chroot:
		if len(fds) != 1 {
			closeAll(fds)
			return "", -1, fmt.Errorf("receive root: expected one fd, got %d", len(fds))
		}
		err := unix.Fchdir(fds[0])
		unix.Close(fds[0])
		if err == nil {
			err = unix.Chroot(".")
		}
		if err != nil {
			return "", -1, fmt.Errorf("chroot into root: %w", err)
		}
	case cfg.Root != nil:
		var err error
		if f, err = rootfs.Place(cfg.Root, fds); err != nil {
			return "", -1, fmt.Errorf("receive fds: %w", err)
		}
		defer f.Close()
	default:
		closeAll(fds)
	}
	if err := setupInside(cfg); err != nil {
		return "", -1, err
	}
	if cfg.Root != nil {
		var beforePivot func() error
		if cfg.WaitBeforePivot {
			beforePivot = func() error {
				if err := msg.SendJSON(sock, msg.Reply{Mounted: true}); err != nil {
					return fmt.Errorf("report mounted: %w", err)
				}
				var order string
				if err := msg.RecvJSON(sock, &order); err != nil || order != "pivot" {
					return fmt.Errorf("wait before pivot_root: unexpected %q: %v", order, err)
				}
				return nil
			}
		}
		if err := rootfs.Setup(cfg.Root, f, beforePivot); err != nil {
			return "", -1, err
		}
	}
	if err := cfg.SetNames(); err != nil {
		return "", -1, err
	}
	var path string
	if !cfg.LateLookup {
		var err error
		if path, err = lookup(&cfg.Process); err != nil {
			return "", -1, err
		}
	}
	tty := -1
	if cfg.Process.Terminal {
		master, peer, err := rootfs.NewPty("/", cfg.Process.ConsoleSize, cfg.Process.ClearONLCR)
		if err != nil {
			return "", -1, err
		}
		err = rootfs.MountConsole(peer)
		if err == nil {
			err = msg.Send(sock, msg.Reply{Console: true}, master)
		}
		unix.Close(master)
		if err != nil {
			unix.Close(peer)
			return "", -1, err
		}
		tty = peer
		// While it waits for start, the pty is its stdio already, as
		// runc's init: nothing of the host's on 0-2.
		for fd := 0; fd < 3; fd++ {
			if err := unix.Dup3(peer, fd, 0); err != nil {
				unix.Close(peer)
				return "", -1, fmt.Errorf("terminal as stdio: %w", err)
			}
		}
	}
	return path, tty, nil
}

func closeAll(fds []int) {
	for _, fd := range fds {
		unix.Close(fd)
	}
}

// lookup finds p's program in the stage's root, and gives p the HOME of its
// user there.
func lookup(p *msg.Process) (string, error) {
	path, err := p.LookPath(rootfs.Executable)
	if err != nil {
		return "", err
	}
	root, err := unix.Open("/", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return "", fmt.Errorf("open root: %w", err)
	}
	p.SetHome(root)
	unix.Close(root)
	return path, nil
}

// setupInside does, in a rootless init, what the runtime cannot do from
// outside: bring lo up and write the sysctls, in the container's
// namespaces, which init is in.
func setupInside(cfg *msg.Init) error {
	if cfg.LoopbackUp {
		if err := LoopbackUp(); err != nil {
			return err
		}
	}
	for key, val := range cfg.Sysctl {
		// /proc/sys shows the namespaces of the process that opens it.
		path := "/proc/sys/" + strings.ReplaceAll(key, ".", "/")
		if err := procfs.WriteFile(path, []byte(val)); err != nil {
			return fmt.Errorf("sysctl %s=%s: %w", key, val, err)
		}
	}
	return nil
}

// LoopbackUp brings up lo in the calling thread's network namespace: init's
// step, which the runtime takes on a thread in init's namespace when it can.
func LoopbackUp() error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("lo: %w", err)
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return err
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return fmt.Errorf("lo: %w", err)
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	if err := unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr); err != nil {
		return fmt.Errorf("bring lo up: %w", err)
	}
	return nil
}
