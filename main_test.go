package main

import (
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/containerfd/containerfd/internal/mdtext"
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
		// As podman calls them: the id first.
		{"checkpoint ID --image-path /i --leave-running", "checkpoint --image-path /i --leave-running ID"},
		{"restore ID -d --bundle /b --image-path /i", "restore -d --bundle /b --image-path /i ID"},
		// containerfd's own verbs: flags after the id too, unknown ones
		// refused; socket's up to its command.
		{"socket ID --bind 127.0.0.1:1 --listen -- prog --bind x", "socket --bind 127.0.0.1:1 --listen -- ID prog --bind x"},
		{"socket ID --bind 127.0.0.1:1 prog --listen", "socket --bind 127.0.0.1:1 -- ID prog --listen"},
		{"socket --listen ID prog -x", "socket --listen -- ID prog -x"},
		{"socket ID --send-to /s", "socket --send-to /s ID"},
		{"mount ID --type tmpfs -o size=1m --ro /tmp", "mount --type tmpfs -o size=1m --ro ID /tmp"},
		{"mount ID /tmp --bogus", "mount --bogus ID /tmp"},
		{"mount ID -- /-odd", "mount -- ID /-odd"},
		{"cp - ID:/x", "cp - ID:/x"},
		{"wait ID --help", "wait --help ID"},
		{"keyring ID list --format json", "keyring ID list --format json"},
		{"--root /r", "--root /r"},
	} {
		got := reorderArgs(app, append([]string{"containerfd"}, strings.Fields(tc.in)...))[1:]
		if !slices.Equal(got, strings.Fields(tc.want)) {
			t.Errorf("%s: got %q, want %q", tc.in, got, tc.want)
		}
	}
}

// beyondRuncDoc documents containerfd's own verbs; its first text block is
// their synopses.
const beyondRuncDoc = "docs/beyond-runc.md"

// docSynopses returns the synopsis lines of beyondRuncDoc (its first text
// block), by verb.
func docSynopses(t *testing.T) map[string][]string {
	b, err := os.ReadFile(beyondRuncDoc)
	if err != nil {
		t.Fatal(err)
	}
	sec, _ := mdtext.Section(string(b), "# Beyond runc")
	blocks := mdtext.CodeBlocks(sec, "text")
	if len(blocks) == 0 {
		t.Fatalf("%s: no section Beyond runc with a text block of synopses", beyondRuncDoc)
	}
	syn := map[string][]string{}
	for _, l := range strings.Split(strings.TrimSuffix(blocks[0], "\n"), "\n") {
		f := strings.Fields(l)
		if len(f) < 2 || f[0] != "containerfd" {
			t.Fatalf("%s: synopsis %q does not start with containerfd VERB", beyondRuncDoc, l)
		}
		syn[f[1]] = append(syn[f[1]], l)
	}
	return syn
}

// Each verb of containerfd's own prints its synopsis lines in beyondRuncDoc
// as its usage, no more, no less; every other verb is runc's.
func TestUsageMatchesSynopses(t *testing.T) {
	syn := docSynopses(t)
	for _, cmd := range newApp().Commands {
		if cmd.Hidden {
			continue // run by programs (key-upcall by request-key), not typed
		}
		if _, own := ownVerbs[cmd.Name]; !own {
			if !runcReorders[cmd.Name] && cmd.Name != "exec" && cmd.Name != "ps" {
				t.Errorf("%s: neither runc's verb nor in ownVerbs", cmd.Name)
			}
			continue
		}
		if got := strings.Split(cmd.UsageText, "\n"); !slices.Equal(got, syn[cmd.Name]) {
			t.Errorf("%s: usage\n%s\nsynopsis in %s\n%s", cmd.Name, strings.Join(got, "\n"), beyondRuncDoc, strings.Join(syn[cmd.Name], "\n"))
		}
		delete(syn, cmd.Name)
	}
	for verb := range syn {
		t.Errorf("%s: synopsis of %s: no such verb of containerfd's own", beyondRuncDoc, verb)
	}
}
