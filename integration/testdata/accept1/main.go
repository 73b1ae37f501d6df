// Command accept1 takes a listening socket as fd 3 (LISTEN_FDS=1, systemd
// socket activation), accepts one connection and prints what it reads.
package main

import (
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
)

func main() {
	if os.Getenv("LISTEN_FDS") != "1" || os.Getenv("LISTEN_PID") != strconv.Itoa(os.Getpid()) {
		fmt.Fprintln(os.Stderr, "accept1: no socket passed (LISTEN_FDS/LISTEN_PID)")
		os.Exit(1)
	}
	l, err := net.FileListener(os.NewFile(3, "listener"))
	if err != nil {
		fmt.Fprintln(os.Stderr, "accept1:", err)
		os.Exit(1)
	}
	fmt.Println("listening on", l.Addr())
	conn, err := l.Accept()
	if err != nil {
		fmt.Fprintln(os.Stderr, "accept1:", err)
		os.Exit(1)
	}
	b, _ := io.ReadAll(conn)
	fmt.Printf("got %s", b)
}
