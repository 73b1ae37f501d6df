package integration

import (
	"os/exec"
	"testing"

	"github.com/containerfd/containerfd/internal/testutil"
)

// criuFeatures are the `criu check --feature` names the checkpoint tests
// rely on beyond the basic check: mem_dirty_track for pre-dumps,
// has_ipt_legacy for the network lock of a container with its own network
// namespace (CRIU's default method runs the legacy iptables-restore in it),
// tcp_half_closed for established connections, cgroupns for the container's
// cgroup namespace.
var criuFeatures = []string{"mem_dirty_track", "has_ipt_legacy", "tcp_half_closed", "cgroupns"}

// TestCRIUCheck logs what CRIU says of this machine: its version, `criu
// check`, and each feature the checkpoint tests need. It proves the VM of
// hack/vm.sh has a working CRIU (there CFD_REQUIRE_CRIU=1 turns the skip
// into a failure); elsewhere it skips with CRIU's reason.
func TestCRIUCheck(t *testing.T) {
	testutil.RequireRoot(t)
	path, err := exec.LookPath("criu")
	if err != nil {
		t.Skip("criu not installed")
	}
	out, _ := exec.Command(path, "--version").CombinedOutput()
	t.Logf("%s --version:\n%s", path, out)
	out, err = exec.Command(path, "check").CombinedOutput()
	t.Logf("criu check (%v):\n%s", err, out)
	testutil.RequireCRIU(t) // where the check fails, the features cannot be told
	for _, f := range criuFeatures {
		out, err := exec.Command(path, "check", "--feature", f).CombinedOutput()
		t.Logf("criu check --feature %s (%v): %s", f, err, out)
	}
	// The optional checks too: what else this kernel lacks, for the record.
	out, err = exec.Command(path, "check", "--all").CombinedOutput()
	t.Logf("criu check --all (%v):\n%s", err, out)
	testutil.RequireCRIU(t, criuFeatures...)
}
