package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/urfave/cli/v2"
)

// logger writes the runtime's own messages: to --log (stderr if none), as
// text or as one JSON object per line ({"level","msg","time"}), the form
// containerd's shim and conmon read back to show the last error.
type logger struct {
	w     io.Writer
	json  bool
	debug bool
}

var logs = &logger{w: os.Stderr}

func setupLog(c *cli.Context) error {
	logs.json = c.String("log-format") == "json"
	logs.debug = c.Bool("debug")
	if path := c.String("log"); path != "" {
		f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND|os.O_SYNC, 0o644)
		if err != nil {
			return fmt.Errorf("open log %s: %w", path, err)
		}
		logs.w = f
	}
	return nil
}

func (l *logger) write(level, msg string) {
	if l.json {
		b, _ := json.Marshal(struct {
			Level string `json:"level"`
			Msg   string `json:"msg"`
			Time  string `json:"time"`
		}{level, msg, time.Now().Format(time.RFC3339Nano)})
		l.w.Write(append(b, '\n'))
		return
	}
	fmt.Fprintf(l.w, "time=%q level=%s msg=%q\n", time.Now().Format(time.RFC3339Nano), level, msg)
}

// Error logs err. It also goes to stderr, where callers (podman) look for it,
// unless the log already is stderr.
func (l *logger) Error(err error) {
	l.write("error", err.Error())
	if l.w != os.Stderr {
		fmt.Fprintf(os.Stderr, "containerfd: %v\n", err)
	}
}

// Warn logs a problem that does not fail the command (a poststop hook).
func (l *logger) Warn(format string, args ...any) {
	l.write("warning", fmt.Sprintf(format, args...))
}

// Debugf logs with --debug only.
func (l *logger) Debugf(format string, args ...any) {
	if l.debug {
		l.write("debug", fmt.Sprintf(format, args...))
	}
}
