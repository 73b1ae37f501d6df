package main

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"time"

	cfd "github.com/containerfd/containerfd/libcontainerfd"
	"github.com/containerfd/containerfd/libcontainerfd/mounttree"
	"golang.org/x/sys/unix"
)

// sd_notify passthrough, as runc does it: with NOTIFY_SOCKET set, the
// container gets a socket of its own at /run/notify/notify.sock (a
// read-only bind of <state>/<id>/notify), and start waits there for
// READY=1, which it passes on to our NOTIFY_SOCKET with init's pid.
const (
	notifyDir       = "notify"
	notifySock      = "notify.sock"
	notifyContainer = "/run/notify"
)

// hostNotifySocket is the NOTIFY_SOCKET we were given, if any.
func hostNotifySocket() string { return os.Getenv("NOTIFY_SOCKET") }

// setupNotify prepares the container's notify socket directory and its
// mount, before init builds its tree.
func setupNotify(ctr *cfd.Container, cfg *cfd.Config, proc *cfd.Process) error {
	if hostNotifySocket() == "" {
		return nil
	}
	dir := filepath.Join(ctr.Dir(), notifyDir)
	if err := os.Mkdir(dir, 0o755); err != nil {
		return fmt.Errorf("notify socket: %w", err)
	}
	cfg.Mounts = append(cfg.Mounts, mounttree.Mount{Type: "bind", Source: dir, Target: notifyContainer,
		Attr: unix.MOUNT_ATTR_RDONLY | unix.MOUNT_ATTR_NOSUID | unix.MOUNT_ATTR_NODEV | unix.MOUNT_ATTR_NOEXEC})
	proc.Env = append(proc.Env, "NOTIFY_SOCKET="+notifyContainer+"/"+notifySock)
	return nil
}

// listenNotify binds the container's notify socket; start calls it before
// init execs so no message is lost.
func listenNotify(ctr *cfd.Container) (*net.UnixConn, error) {
	if hostNotifySocket() == "" {
		return nil, nil
	}
	dir := filepath.Join(ctr.Dir(), notifyDir)
	if _, err := os.Stat(dir); err != nil {
		return nil, nil // created without NOTIFY_SOCKET
	}
	// Bind through /proc/self/fd: the state path may be longer than a
	// socket address holds.
	dfd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("notify socket: %w", err)
	}
	defer unix.Close(dfd)
	path := "/proc/self/fd/" + strconv.Itoa(dfd) + "/" + notifySock
	os.Remove(path)
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		return nil, fmt.Errorf("notify socket: %w", err)
	}
	os.Chmod(path, 0o777)
	return conn, nil
}

// forwardReady waits for the container's READY=1 and passes it on with
// MAINPID set to init. It gives up when init is gone.
func forwardReady(ctr *cfd.Container, conn *net.UnixConn) error {
	defer conn.Close()
	buf := make([]byte, 4096)
	for {
		conn.SetReadDeadline(time.Now().Add(time.Second))
		n, err := conn.Read(buf)
		if errors.Is(err, os.ErrDeadlineExceeded) {
			if st, serr := ctr.Status(); serr != nil || st == cfd.Stopped {
				return fmt.Errorf("container %s stopped before it was ready", ctr.ID())
			}
			continue
		}
		if err != nil {
			return fmt.Errorf("notify socket: %w", err)
		}
		for _, line := range bytes.Split(buf[:n], []byte("\n")) {
			if bytes.Equal(line, []byte("READY=1")) {
				return sendNotify(fmt.Sprintf("READY=1\nMAINPID=%d\n", ctr.InitPid()))
			}
		}
	}
}

func sendNotify(msg string) error {
	addr := hostNotifySocket()
	if addr[0] == '@' {
		addr = "\x00" + addr[1:]
	}
	conn, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: addr, Net: "unixgram"})
	if err != nil {
		return fmt.Errorf("NOTIFY_SOCKET %s: %w", hostNotifySocket(), err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte(msg)); err != nil {
		return fmt.Errorf("NOTIFY_SOCKET %s: %w", hostNotifySocket(), err)
	}
	return nil
}
