package libcontainerfd

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"time"
)

// ErrNoCRIU is what Checkpoint and Restore return in a build with the tag
// containerfd_nocriu, which leaves out CRIU's RPC types and the protobuf
// runtime they need (docs/checkpoint.md): bin/containerfd is built so, and
// runs bin/containerfd-criu for checkpoint and restore.
var ErrNoCRIU = errors.New("built without CRIU support (build tag containerfd_nocriu)")

// criuBinary is the CRIU program checkpoint and restore run, found in PATH
// as runc finds it.
const criuBinary = "criu"

// CRIUStatus says whether CRIU can checkpoint and restore here: its version
// ("3.17.1") when `criu check` passes, or else an error with CRIU's own
// reason (its first Error line), for `features` to report.
func CRIUStatus() (string, error) {
	path, err := exec.LookPath(criuBinary)
	if err != nil {
		return "", fmt.Errorf("criu: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, path, "check").CombinedOutput()
	if err != nil {
		reason := firstErrorLine(out)
		if reason == "" {
			reason = err.Error()
		}
		return "", fmt.Errorf("criu check: %s", reason)
	}
	out, err = exec.CommandContext(ctx, path, "--version").Output()
	if err != nil {
		return "", fmt.Errorf("criu --version: %w", err)
	}
	for _, l := range strings.Split(string(out), "\n") {
		if v, ok := strings.CutPrefix(l, "Version: "); ok {
			return strings.TrimSpace(v), nil
		}
	}
	return "", fmt.Errorf("criu --version: no version in %q", out)
}

func firstErrorLine(out []byte) string {
	for _, l := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(l, "Error") {
			return strings.TrimSpace(l)
		}
	}
	return ""
}
