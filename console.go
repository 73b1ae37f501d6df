package main

import (
	"io"
	"os"
	"os/signal"

	"golang.org/x/sys/unix"
)

// sendConsole hands the pty master to the caller's console socket, as runc
// does: one message, the pty's name as payload, the fd as SCM_RIGHTS.
func sendConsole(path string, master *os.File) error {
	return sendFD(path, int(master.Fd()), master.Name())
}

// proxyConsole connects our own stdio to the container's pty, for `run`
// and `exec` in the foreground with a terminal and no console socket: our
// terminal goes raw, window size changes follow. The returned func undoes it.
func proxyConsole(master *os.File) func() {
	restore := func() {}
	if t, err := unix.IoctlGetTermios(0, unix.TCGETS); err == nil {
		raw := *t
		raw.Iflag &^= unix.IGNBRK | unix.BRKINT | unix.PARMRK | unix.ISTRIP | unix.INLCR | unix.IGNCR | unix.ICRNL | unix.IXON
		raw.Oflag &^= unix.OPOST
		raw.Lflag &^= unix.ECHO | unix.ECHONL | unix.ICANON | unix.ISIG | unix.IEXTEN
		raw.Cflag &^= unix.CSIZE | unix.PARENB
		raw.Cflag |= unix.CS8
		raw.Cc[unix.VMIN], raw.Cc[unix.VTIME] = 1, 0
		if unix.IoctlSetTermios(0, unix.TCSETS, &raw) == nil {
			restore = func() { unix.IoctlSetTermios(0, unix.TCSETS, t) }
		}
	}
	resize := func() {
		if ws, err := unix.IoctlGetWinsize(0, unix.TIOCGWINSZ); err == nil {
			unix.IoctlSetWinsize(int(master.Fd()), unix.TIOCSWINSZ, ws)
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
	go io.Copy(master, os.Stdin)
	done := make(chan struct{})
	go func() {
		io.Copy(os.Stdout, master) // ends with EIO when the last writer closes
		close(done)
	}()
	return func() {
		signal.Stop(winch)
		close(winch)
		<-done
		restore()
	}
}
