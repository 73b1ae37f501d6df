package shim

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	bootapi "github.com/containerd/containerd/api/runtime/bootstrap/v1"
	"github.com/containerd/containerd/api/types"
	"github.com/containerd/containerd/v2/core/mount"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/containerd/containerd/v2/pkg/protobuf/proto"
	ctdshim "github.com/containerd/containerd/v2/pkg/shim"
	"github.com/containerd/log"
	"github.com/containerd/typeurl/v2"
	"github.com/containerfd/containerfd/internal/bundle"
	cfd "github.com/containerfd/containerfd/libcontainerfd"
	"github.com/containerfd/containerfd/spec"
)

// RuntimeType is the runtime type containerd is configured with to run this
// shim: containerd runs containerd-shim-containerfd-v2 for it.
const RuntimeType = "io.containerd.containerfd.v2"

// groupAnnotations group containers into one shim, the first found
// naming the group: ours and runc's shim's own (so that a config written
// for runc's shim groups the same), then the sandbox id the CRI plugin sets
// on every container of a pod.
var groupAnnotations = []string{
	"io.containerd.containerfd.v2.group",
	"io.containerd.runc.v2.group",
	"io.kubernetes.cri.sandbox-id",
}

// Version is the shim's version, set by the Makefile as containerfd's is.
var Version = "0.1.0-dev"

// Main runs the shim's command line: `start` and `delete`, which
// containerd runs for each container, and the server that `start` leaves
// running. The caller's main calls libcontainerfd.Init first.
func Main() {
	if legacyStart() {
		return
	}
	registerService()
	// The shim reaps its own processes: by pidfd, each for itself (see
	// service.reapOrphans), never with wait(-1), which would take the exit
	// of a process started by os/exec or by libcontainerfd from its waiter.
	ctdshim.RunShim(context.Background(), manager{}, func(c *ctdshim.Config) { c.NoReaper = true })
}

type manager struct{}

func (manager) Name() string { return RuntimeType }

// Start starts the shim's server for a container, or finds the one already
// serving its pod, and returns its address. containerd runs it with the
// container's bundle as the working directory.
func (manager) Start(ctx context.Context, p *bootapi.BootstrapParams) (*bootapi.BootstrapResult, error) {
	addr, err := startServer(ctx, p.GetInstanceID(), p.GetContainerdGrpcAddress(), p.GetContainerdTtrpcAddress(), p.GetSocketDir(),
		p.GetLogLevel() <= bootapi.LogLevel_LOG_LEVEL_DEBUG)
	if err != nil {
		return nil, err
	}
	return &bootapi.BootstrapResult{Version: 3, Protocol: "ttrpc", Address: addr}, nil
}

// legacySocketDir is where containerd before 2.4 wants shim sockets.
const legacySocketDir = "/run/containerd/s"

// legacyStart serves `start` as containerd before 2.4 runs it (containerd
// 1.6 among them): the runtime options, if any, on stdin where containerd
// 2.4 sends its bootstrap parameters, and the address printed plainly.
// containerd's shim library of 2.4 takes only the new form, so the shim
// tells them apart itself. It reports whether it handled the command.
func legacyStart() bool {
	fs := flag.NewFlagSet(os.Args[0], flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var ns, id, address string
	var debug bool
	fs.StringVar(&ns, "namespace", "", "")
	fs.StringVar(&id, "id", "", "")
	fs.StringVar(&address, "address", "", "")
	fs.BoolVar(&debug, "debug", false, "")
	fs.String("publish-binary", "", "")
	fs.String("bundle", "", "")
	fs.String("socket", "", "")
	fs.String("debug-socket", "", "")
	if err := fs.Parse(os.Args[1:]); err != nil || fs.Arg(0) != "start" {
		return false
	}
	input, err := io.ReadAll(io.LimitReader(os.Stdin, 10<<20))
	if err != nil {
		fail(fmt.Errorf("read stdin: %w", err))
	}
	var p bootapi.BootstrapParams
	if len(input) > 0 && proto.Unmarshal(input, &p) == nil && p.InstanceID == id && p.Namespace == ns {
		// The new form: the library reads it again.
		r, w, err := os.Pipe()
		if err != nil {
			fail(err)
		}
		go func() {
			w.Write(input)
			w.Close()
		}()
		os.Stdin = r
		return false
	}
	ctx := namespaces.WithNamespace(context.Background(), ns)
	addr, err := startServer(ctx, id, address, os.Getenv("TTRPC_ADDRESS"), legacySocketDir, debug)
	if err != nil {
		fail(err)
	}
	fmt.Print(addr)
	return true
}

func fail(err error) {
	fmt.Fprintf(os.Stderr, "%s: %v\n", RuntimeType, err)
	os.Exit(1)
}

// startServer starts the server that serves the container id, or the group
// it belongs to (groupAnnotations), unless one is serving it already,
// and returns its address. It writes the address to the bundle's "address"
// file, where containerd 1.x finds it again after a restart and the server
// finds the socket to remove when it leaves.
func startServer(ctx context.Context, id, grpcAddress, ttrpcAddress, socketDir string, debug bool) (string, error) {
	ns, err := namespaces.NamespaceRequired(ctx)
	if err != nil {
		return "", err
	}
	group := id
	if a, err := annotations("config.json"); err == nil {
		for _, k := range groupAnnotations {
			if a[k] != "" {
				group = a[k]
				break
			}
		}
	}
	if socketDir == "" {
		socketDir = legacySocketDir
	}
	addr, err := ctdshim.CreateSocketAddress(ctx, socketDir, grpcAddress, group, false)
	if err != nil {
		return "", err
	}
	l, err := ctdshim.NewSocket(addr)
	if err != nil {
		if !ctdshim.SocketEaddrinuse(err) {
			return "", fmt.Errorf("shim socket: %w", err)
		}
		if ctdshim.CanConnect(addr) {
			// The pod's shim serves this container too.
			return addr, writeAddress(addr)
		}
		if err := ctdshim.RemoveSocket(addr); err != nil {
			return "", fmt.Errorf("remove a stale shim socket: %w", err)
		}
		if l, err = ctdshim.NewSocket(addr); err != nil {
			return "", fmt.Errorf("shim socket: %w", err)
		}
	}
	// The server serves the socket from now on: closing ours must not
	// remove it.
	l.SetUnlinkOnClose(false)
	defer l.Close()
	f, err := l.File()
	if err != nil {
		ctdshim.RemoveSocket(addr)
		return "", err
	}
	defer f.Close()
	self, err := os.Executable()
	if err != nil {
		return "", err
	}
	args := []string{"-namespace", ns, "-id", id, "-address", grpcAddress}
	if debug {
		args = append(args, "-debug")
	}
	cmd := exec.Command(self, args...)
	cmd.Env = append(os.Environ(), "TTRPC_ADDRESS="+ttrpcAddress)
	cmd.ExtraFiles = []*os.File{f} // fd 3, where the library serves
	// Out of containerd's process group: a signal to it is not one to us.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		ctdshim.RemoveSocket(addr)
		return "", err
	}
	go cmd.Wait()
	if err := ctdshim.AdjustOOMScore(cmd.Process.Pid); err != nil {
		cmd.Process.Kill()
		ctdshim.RemoveSocket(addr)
		return "", err
	}
	return addr, writeAddress(addr)
}

func writeAddress(addr string) error {
	tmp := "address.tmp"
	if err := os.WriteFile(tmp, []byte(addr), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, "address")
}

// annotations reads the annotations of the bundle's config.json.
func annotations(path string) (map[string]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var s struct {
		Annotations map[string]string `json:"annotations"`
	}
	return s.Annotations, json.Unmarshal(b, &s)
}

// Stop is the shim's `delete` command, which containerd runs for a
// container whose shim is gone: the container died with it (kill-on-close),
// and what is left of it (cgroup, state, the rootfs mount) is removed here.
func (manager) Stop(ctx context.Context, id string) (ctdshim.StopStatus, error) {
	cwd, err := os.Getwd()
	if err != nil {
		return ctdshim.StopStatus{}, err
	}
	path := filepath.Join(filepath.Dir(cwd), id)
	ns, err := namespaces.NamespaceRequired(ctx)
	if err != nil {
		return ctdshim.StopStatus{}, err
	}
	o, err := loadOptions(path)
	if err != nil {
		return ctdshim.StopStatus{}, err
	}
	warn := func(err error) { log.G(ctx).WithError(err).Warn("delete container") }
	ctr, err := cfd.Load(o.root(ns), id)
	switch {
	case err == nil:
		if err := bundle.Destroy(ctr, true, warn); err != nil {
			warn(err)
		}
	case !errors.Is(err, cfd.ErrNotExist):
		warn(err)
	}
	if err := mount.UnmountRecursive(filepath.Join(path, "rootfs"), 0); err != nil {
		warn(err)
	}
	if e, err := readExit(path); err == nil {
		return ctdshim.StopStatus{Pid: e.Pid, ExitStatus: e.Status, ExitedAt: e.At}, nil
	}
	return ctdshim.StopStatus{ExitedAt: time.Now(), ExitStatus: 128 + int(syscall.SIGKILL)}, nil
}

// Info describes the shim to containerd (`-info`), with the runtime's
// features: containerd 2.x's CRI offers recursive read-only mounts and user
// namespaces (with idmapped mounts) only to a handler whose features list
// them, as runc's shim has them from `runc features`.
func (manager) Info(context.Context, io.Reader) (*types.RuntimeInfo, error) {
	f, err := typeurl.MarshalAnyToProto(spec.Features(map[string]string{"io.github.containerfd.version": Version}))
	if err != nil {
		return nil, fmt.Errorf("features: %w", err)
	}
	return &types.RuntimeInfo{Name: RuntimeType, Version: &types.RuntimeVersion{Version: Version}, Features: f}, nil
}
