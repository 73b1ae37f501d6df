// Command sdnotify sends its argument (default READY=1) to $NOTIFY_SOCKET,
// then sleeps: a stand-in for a service in a container.
package main

import (
	"fmt"
	"net"
	"os"
	"time"
)

func main() {
	msg := "READY=1"
	if len(os.Args) > 1 {
		msg = os.Args[1]
	}
	conn, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: os.Getenv("NOTIFY_SOCKET"), Net: "unixgram"})
	if err != nil {
		fmt.Fprintln(os.Stderr, "sdnotify:", err)
		os.Exit(1)
	}
	if _, err := conn.Write([]byte(msg)); err != nil {
		fmt.Fprintln(os.Stderr, "sdnotify:", err)
		os.Exit(1)
	}
	time.Sleep(100 * time.Second)
}
