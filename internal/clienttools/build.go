// Package clienttools makes what the client tests (integration/clients) and
// the shim benchmark (bench/shim) run containerd with: containerd 2.x and
// crictl built from the Go module proxy once into the user's cache
// directory, and busybox images written as tarballs that ctr, podman and
// docker import (image.go). One place, so that both build the same
// versions the same way and share the cache.
package clienttools

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// containerd 2.x, built from the Go module proxy.
const (
	Containerd2Version = "v2.4.2"
	containerd2Module  = "github.com/containerd/containerd/v2"
	// containerd2Tags are those of containerd's static release builds
	// (its Makefile with STATIC=1), less the snapshotters that need cgo
	// (btrfs: its plugin builds only with cgo) or a device here
	// (devmapper, zfs).
	containerd2Tags = "urfave_cli_no_docs osusergo netgo static_build no_btrfs no_devmapper no_zfs"
	// containerd2ShimTags are the shim's, as containerd's Makefile builds
	// it: no gRPC (it speaks ttrpc).
	containerd2ShimTags = "urfave_cli_no_docs osusergo netgo static_build no_grpc"
)

// Containerd2Commands are what a containerd 2.x directory holds: the
// daemon, its ctr, and the runc shim of the same version (Debian's, 1.6's,
// does not start under 2.4: "start failed: io.containerd.runc.v2: type with
// url <id>: not found").
var Containerd2Commands = []string{"containerd", "ctr", "containerd-shim-runc-v2"}

// CrictlVersion is the crictl built from the Go module proxy.
const CrictlVersion = "v1.34.0"

// Logf receives the builds' progress and output.
type Logf func(format string, args ...any)

// CacheDir is <user cache>/containerfd-test, where the builds are kept.
func CacheDir() (string, error) {
	cache, err := os.UserCacheDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(cache, "containerfd-test"), nil
}

// Containerd2 returns the directory holding Containerd2Commands, built
// into <CacheDir>/containerd-<version> unless they are there. The first
// build downloads the modules: minutes.
func Containerd2(logf Logf) (string, error) {
	parent, err := CacheDir()
	if err != nil {
		return "", fmt.Errorf("containerd %s: %w", Containerd2Version, err)
	}
	dir := filepath.Join(parent, "containerd-"+Containerd2Version)
	if _, err := os.Stat(dir); err == nil {
		return dir, nil // made by the rename below: complete
	}
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return "", fmt.Errorf("containerd %s: %w", Containerd2Version, err)
	}
	tmp, err := os.MkdirTemp(parent, "containerd-build-")
	if err != nil {
		return "", fmt.Errorf("containerd %s: %w", Containerd2Version, err)
	}
	defer os.RemoveAll(tmp)
	start := time.Now()
	pkg := func(cmd string) string { return containerd2Module + "/cmd/" + cmd + "@" + Containerd2Version }
	ldflags := "-X " + containerd2Module + "/version.Version=" + Containerd2Version +
		" -X " + containerd2Module + "/version.Package=" + containerd2Module
	for _, b := range []struct {
		tags string
		pkgs []string
	}{
		{containerd2Tags, []string{pkg("containerd"), pkg("ctr")}},
		{containerd2ShimTags, []string{pkg("containerd-shim-runc-v2")}},
	} {
		if err := goInstall(logf, tmp, b.tags, ldflags, b.pkgs...); err != nil {
			return "", fmt.Errorf("building containerd %s from the Go module proxy: %w", Containerd2Version, err)
		}
	}
	// One rename makes the directory appear complete; another process may
	// have made it meanwhile.
	if err := os.Rename(tmp, dir); err != nil {
		if _, serr := os.Stat(dir); serr != nil {
			return "", fmt.Errorf("containerd %s: %w", Containerd2Version, err)
		}
	}
	logf("built containerd %s (%s) in %v: %s", Containerd2Version, strings.Join(Containerd2Commands, ", "),
		time.Since(start).Round(time.Second), dir)
	return dir, nil
}

// Crictl returns crictl CrictlVersion, built into
// <CacheDir>/crictl-<version> unless it is there.
func Crictl(logf Logf) (string, error) {
	parent, err := CacheDir()
	if err != nil {
		return "", fmt.Errorf("crictl: %w", err)
	}
	dir := filepath.Join(parent, "crictl-"+CrictlVersion)
	bin := filepath.Join(dir, "crictl")
	if _, err := os.Stat(bin); err == nil {
		return bin, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("crictl: %w", err)
	}
	tmp, err := os.MkdirTemp(dir, "install-")
	if err != nil {
		return "", fmt.Errorf("crictl: %w", err)
	}
	defer os.RemoveAll(tmp)
	start := time.Now()
	if err := goInstall(logf, tmp, "", "", "sigs.k8s.io/cri-tools/cmd/crictl@"+CrictlVersion); err != nil {
		return "", fmt.Errorf("building crictl %s from the Go module proxy: %w", CrictlVersion, err)
	}
	if err := os.Rename(filepath.Join(tmp, "crictl"), bin); err != nil {
		return "", fmt.Errorf("crictl: %w", err)
	}
	logf("built crictl %s in %v: %s", CrictlVersion, time.Since(start).Round(time.Second), bin)
	return bin, nil
}

// goInstall builds Go commands (package@version) from the module proxy into
// gobin, without cgo, and logs the build's output.
func goInstall(logf Logf, gobin, tags, ldflags string, pkgs ...string) error {
	if _, err := exec.LookPath("go"); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	args := []string{"install"}
	if tags != "" {
		args = append(args, "-tags", tags)
	}
	if ldflags != "" {
		args = append(args, "-ldflags", ldflags)
	}
	args = append(args, pkgs...)
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Env = append(os.Environ(), "GOBIN="+gobin, "CGO_ENABLED=0", "GOFLAGS=-mod=mod")
	start := time.Now()
	out, err := cmd.CombinedOutput()
	quoted := make([]string, len(args))
	for i, a := range args {
		quoted[i] = a
		if strings.ContainsAny(a, " \"'") {
			quoted[i] = strconv.Quote(a)
		}
	}
	logf("$ go %s  (%v)\n%s", strings.Join(quoted, " "), time.Since(start).Round(time.Second), out)
	if ctx.Err() != nil {
		return fmt.Errorf("go install: %w", ctx.Err())
	}
	if err != nil {
		return fmt.Errorf("go install: %w (its output is above)", err)
	}
	return nil
}
