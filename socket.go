package main

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path"
	"strconv"
	"strings"

	cfd "github.com/containerfd/containerfd/libcontainerfd"
	"github.com/urfave/cli/v2"
	"golang.org/x/sys/unix"
)

var socketCommand = &cli.Command{
	Name:  "socket",
	Usage: "make a socket in a running container's network namespace, from outside, for a host command",
	UsageText: `containerfd socket ID [--family inet|inet6|unix] [--type stream|dgram] [--bind ADDR] [--listen] [--] CMD [ARG...]
containerfd socket ID [--family inet|inet6|unix] [--type stream|dgram] [--bind ADDR] [--listen] --send-to PATH`,
	Description: `The socket is made without entering the container: it lives in the
container's network namespace (its 127.0.0.1, its interfaces), the host
command using it does not. The command runs with the socket as fd 3 and
LISTEN_FDS=1 and LISTEN_PID set (systemd socket activation), or, with
--send-to, the socket is passed over a unix socket instead. Flags may
come before or after the container id, not after the command; "--" ends
them.`,
	Flags: []cli.Flag{
		&cli.StringFlag{Name: "family", Value: "inet", Usage: "inet, inet6 or unix"},
		&cli.StringFlag{Name: "type", Value: "stream", Usage: "stream or dgram"},
		&cli.StringFlag{Name: "bind", Usage: "address to bind: 127.0.0.1:8080, [::1]:8080, a path in the container (unix), or @name (abstract)"},
		&cli.BoolFlag{Name: "listen", Usage: "listen on the socket (stream)"},
		&cli.StringFlag{Name: "send-to", Usage: "pass the socket over the unix socket at this host path instead of running a command"},
	},
	Action: onContainer(func(c *cli.Context, ctr *cfd.Container) error {
		domain, typ, err := socketKind(c.String("family"), c.String("type"))
		if err != nil {
			return err
		}
		cmd := c.Args().Tail()
		if len(cmd) == 0 && c.String("send-to") == "" {
			return errors.New("socket: give a command to run (after --) or --send-to")
		}
		fd, err := ctr.Socket(domain, typ, 0)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		if b := c.String("bind"); b != "" {
			if err := bindIn(ctr, fd, domain, b); err != nil {
				return err
			}
		}
		if c.Bool("listen") {
			if err := unix.Listen(fd, unix.SOMAXCONN); err != nil {
				return fmt.Errorf("socket: listen: %w", err)
			}
		}
		if to := c.String("send-to"); to != "" {
			return sendFD(to, fd, "socket")
		}
		prog, err := exec.LookPath(cmd[0])
		if err != nil {
			return fmt.Errorf("socket: %w", err)
		}
		if err := unix.Dup3(fd, 3, 0); err != nil {
			return fmt.Errorf("socket: socket as fd 3: %w", err)
		}
		env := append(os.Environ(), "LISTEN_FDS=1", "LISTEN_PID="+strconv.Itoa(os.Getpid()))
		return fmt.Errorf("socket: exec %s: %w", prog, unix.Exec(prog, cmd, env))
	}),
}

func socketKind(family, typ string) (domain, t int, err error) {
	switch family {
	case "inet":
		domain = unix.AF_INET
	case "inet6":
		domain = unix.AF_INET6
	case "unix":
		domain = unix.AF_UNIX
	default:
		return 0, 0, fmt.Errorf("socket --family %q: want inet, inet6 or unix", family)
	}
	switch typ {
	case "stream":
		t = unix.SOCK_STREAM
	case "dgram":
		t = unix.SOCK_DGRAM
	default:
		return 0, 0, fmt.Errorf("socket --type %q: want stream or dgram", typ)
	}
	return domain, t, nil
}

// bindIn binds fd to addr: an IP address and port in the container's
// network namespace (the socket's own), or a unix path resolved inside
// the container's root.
func bindIn(ctr *cfd.Container, fd, domain int, addr string) error {
	var sa unix.Sockaddr
	switch domain {
	case unix.AF_INET, unix.AF_INET6:
		host, port, err := net.SplitHostPort(addr)
		if err != nil {
			return fmt.Errorf("socket --bind %q: %w", addr, err)
		}
		p, err := strconv.Atoi(port)
		ip := net.ParseIP(host)
		if err != nil || ip == nil {
			return fmt.Errorf("socket --bind %q: want IP:port", addr)
		}
		if domain == unix.AF_INET {
			if ip.To4() == nil {
				return fmt.Errorf("socket --bind %q: not an IPv4 address", addr)
			}
			sa4 := &unix.SockaddrInet4{Port: p}
			copy(sa4.Addr[:], ip.To4())
			sa = sa4
		} else {
			sa6 := &unix.SockaddrInet6{Port: p}
			copy(sa6.Addr[:], ip.To16())
			sa = sa6
		}
	case unix.AF_UNIX:
		if name, ok := strings.CutPrefix(addr, "@"); ok {
			sa = &unix.SockaddrUnix{Name: "\x00" + name}
			break
		}
		// Bind in the directory opened inside the container's root, so the
		// path cannot lead out of it.
		dir, err := ctr.OpenAt(path.Dir(addr), unix.O_PATH|unix.O_DIRECTORY, 0)
		if err != nil {
			return fmt.Errorf("socket --bind %q: %w", addr, err)
		}
		defer unix.Close(dir)
		sa = &unix.SockaddrUnix{Name: fmt.Sprintf("/proc/self/fd/%d/%s", dir, path.Base(addr))}
	}
	if err := unix.Bind(fd, sa); err != nil {
		return fmt.Errorf("socket --bind %q: %w", addr, err)
	}
	return nil
}

// sendFD passes fd over the unix socket at path, with name as the message,
// as runc's --console-socket and --pidfd-socket do.
func sendFD(path string, fd int, name string) error {
	conn, err := net.DialUnix("unix", nil, &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return fmt.Errorf("send %s to %s: %w", name, path, err)
	}
	defer conn.Close()
	if _, _, err := conn.WriteMsgUnix([]byte(name), unix.UnixRights(fd), nil); err != nil {
		return fmt.Errorf("send %s to %s: %w", name, path, err)
	}
	return nil
}
