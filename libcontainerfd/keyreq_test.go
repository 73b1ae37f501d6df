package libcontainerfd

import (
	"os"
	"strings"
	"testing"
	"time"
)

// A key handler is answered through root's upcall and needs the
// container's own keyring.
func TestKeyHandlerNeedsRootAndKeyring(t *testing.T) {
	type check struct {
		cfg  Config
		want string
	}
	cases := []check{
		{Config{KeyHandler: "/bin/true", Rootless: true}, "only root"},
		{Config{KeyHandler: "/bin/true", NoNewKeyring: true}, "NoNewKeyring"},
		{Config{KeyHandlerTimeout: time.Second}, "without KeyHandler"},
	}
	if os.Geteuid() == 0 {
		// Only root gets as far as the path.
		cases = append(cases, check{Config{KeyHandler: "true"}, "absolute path"})
	}
	for _, c := range cases {
		err := checkKeyHandler(&c.cfg)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("checkKeyHandler(%+v) = %v, want an error with %q", c.cfg, err, c.want)
		}
	}
}
