package main

import (
	"fmt"
	"io"
	"os"
	"os/signal"
	"time"

	"golang.org/x/sys/unix"
)

// sendConsole hands the pty master to the caller's console socket, as runc
// does: one message, the pty's name as payload, the fd as SCM_RIGHTS.
func sendConsole(path string, master *os.File) error {
	return sendFD(path, int(master.Fd()), master.Name())
}

// consoleDrain bounds how long stopping the proxy waits for the container's
// last output. The copy ends by itself (EIO) when the pty hangs up, which
// the kernel does as the process, its session leader, exits; the bound is
// for a peer some other process keeps open after a failed start.
const consoleDrain = 500 * time.Millisecond

// proxyConsole connects our own stdio to the container's pty, for `run`
// and `exec` in the foreground with a terminal and no console socket: our
// terminal goes raw and window size changes follow. It takes master over.
// The func it returns, which every path must call, error paths too, waits
// for the output to drain, closes master and gives the terminal back as it
// was.
func proxyConsole(master *os.File) (stop func(), err error) {
	// A non-blocking copy of the fd, so that closing it ends the copies;
	// the master itself stays as it is.
	fd, err := unix.FcntlInt(master.Fd(), unix.F_DUPFD_CLOEXEC, 3)
	if err != nil {
		master.Close()
		return nil, fmt.Errorf("console: %w", err)
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		master.Close()
		return nil, fmt.Errorf("console: %w", err)
	}
	pty := os.NewFile(uintptr(fd), master.Name())
	master.Close()

	restore := makeRaw(0)
	resize := func() {
		if ws, err := unix.IoctlGetWinsize(0, unix.TIOCGWINSZ); err == nil {
			unix.IoctlSetWinsize(fd, unix.TIOCSWINSZ, ws)
		}
	}
	resize()
	winch := make(chan os.Signal, 1)
	signal.Notify(winch, unix.SIGWINCH)
	go func() {
		for range winch {
			resize()
		}
	}()
	go io.Copy(pty, os.Stdin)
	done := make(chan struct{})
	go func() {
		io.Copy(os.Stdout, pty)
		close(done)
	}()
	return func() {
		signal.Stop(winch)
		close(winch)
		select {
		case <-done:
		case <-time.After(consoleDrain):
		}
		pty.Close()
		restore()
	}, nil
}

// makeRaw puts the terminal on fd in raw mode, as cfmakeraw(3) does, and
// returns the func that restores it; a no-op when fd is not a terminal.
func makeRaw(fd int) (restore func()) {
	t, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		return func() {}
	}
	raw := *t
	raw.Iflag &^= unix.IGNBRK | unix.BRKINT | unix.PARMRK | unix.ISTRIP | unix.INLCR | unix.IGNCR | unix.ICRNL | unix.IXON
	raw.Oflag &^= unix.OPOST
	raw.Lflag &^= unix.ECHO | unix.ECHONL | unix.ICANON | unix.ISIG | unix.IEXTEN
	raw.Cflag &^= unix.CSIZE | unix.PARENB
	raw.Cflag |= unix.CS8
	raw.Cc[unix.VMIN], raw.Cc[unix.VTIME] = 1, 0
	if err := unix.IoctlSetTermios(fd, unix.TCSETS, &raw); err != nil {
		return func() {}
	}
	return func() { unix.IoctlSetTermios(fd, unix.TCSETS, t) }
}
