// Package stopat lets tests stop the runtime at a named step, to kill it
// there and check what it leaves: CONTAINERFD_TEST_STOP_AT=<step> makes
// Point(<step>) print "containerfd: stopped at <step>" on stderr and wait
// to be killed. Without the variable, Point does nothing.
package stopat

import (
	"fmt"
	"os"
	"time"
)

// Env is the environment variable Point reads.
const Env = "CONTAINERFD_TEST_STOP_AT"

// Point stops the process for good if the test asked to stop at step.
func Point(step string) {
	if os.Getenv(Env) != step {
		return
	}
	fmt.Fprintf(os.Stderr, "containerfd: stopped at %s\n", step)
	for {
		time.Sleep(time.Hour)
	}
}
