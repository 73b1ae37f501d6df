package main

import (
	"slices"
	"strings"
	"testing"
)

// TestReorderArgs: flags after the arguments move before them, as runc's
// command line takes them, for runc's commands but exec and ps.
func TestReorderArgs(t *testing.T) {
	app := newApp()
	for _, tc := range []struct{ in, want string }{
		{"update ID --memory 64m", "update --memory 64m ID"},
		{"--root /r --debug update ID --pids-limit=5 --cpu-share 2", "--root /r --debug update --pids-limit=5 --cpu-share 2 ID"},
		{"kill ID KILL --all", "kill --all ID KILL"},
		{"kill ID -9", "kill ID -9"}, // not a flag of kill: an argument
		{"delete ID --force", "delete --force ID"},
		{"update ID -- --memory 1", "update -- ID --memory 1"},
		{"exec ID sh -c --memory", "exec ID sh -c --memory"},
		{"ps ID -ef", "ps ID -ef"},
		{"update", "update"},
		{"--root /r", "--root /r"},
	} {
		got := reorderArgs(app, append([]string{"containerfd"}, strings.Fields(tc.in)...))[1:]
		if !slices.Equal(got, strings.Fields(tc.want)) {
			t.Errorf("%s: got %q, want %q", tc.in, got, tc.want)
		}
	}
}
