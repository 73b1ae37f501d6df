// Package hooks runs the OCI lifecycle hooks of config.json (runtime-spec
// v1.3.0, config.md "POSIX-platform Hooks" and runtime.md "Lifecycle").
//
// Each hook is exec'd with argv = Args (Args[0] is argv[0]; an empty Args
// means argv = [Path]), the environment exactly Env (nothing of the runtime's
// own environment, not even PATH), the container state (specs.State as JSON)
// on stdin, which is closed after it, and its stdout and stderr captured: the
// last 4 KiB of each are kept for the error. A hook with a timeout is killed
// with SIGKILL, together with its process group (each hook leads a process
// group of its own), when the timeout expires. A hook sees no fd but 0, 1
// and 2: before each start every fd of this process above 2 is marked
// close-on-exec (close_range(3, ~0, CLOSE_RANGE_CLOEXEC)), which also covers
// fds inherited without O_CLOEXEC from whoever started the runtime. The
// working directory is the bundle (state.Bundle, as runc does) when it is a
// directory. Processes a hook leaves behind holding its stdout or stderr are
// waited for at most one second after it exits.
//
// Which hooks are fatal is decided by [Kind.Fatal]: a failing prestart,
// createRuntime, createContainer, startContainer or poststart hook stops the
// run and its error must fail the operation; a failing poststop hook does
// not: every poststop hook runs and the errors come back joined, for the
// caller to log as warnings. [Run] applies that rule itself, so a caller only
// has to branch on [Kind.Fatal] to decide between failing and logging.
//
// Where a hook runs (runtime or container namespace) is the caller's affair:
// [Kind.ContainerNamespace] says what the spec asks, and [RunIn] takes a
// [Prepare] function that can rewrite the command to enter the container;
// [Run] runs every hook on the host.
package hooks

import (
	"errors"
	"fmt"
	"os/exec"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Kind is one of the hook points of runtime.md, named as in config.json.
type Kind string

// The hook points, in lifecycle order.
const (
	// Prestart hooks (deprecated) run during create, after the runtime
	// environment exists and before pivot_root, in the runtime namespace.
	Prestart Kind = "prestart"
	// CreateRuntime hooks run during create, after prestart, in the runtime
	// namespace.
	CreateRuntime Kind = "createRuntime"
	// CreateContainer hooks run during create, after createRuntime and before
	// pivot_root, in the container namespace; their path resolves in the
	// runtime namespace.
	CreateContainer Kind = "createContainer"
	// StartContainer hooks run during start, before the user program is
	// executed, in the container namespace; their path resolves in the
	// container namespace.
	StartContainer Kind = "startContainer"
	// Poststart hooks run after the user program is executed and before start
	// returns, in the runtime namespace.
	Poststart Kind = "poststart"
	// Poststop hooks run after the container is deleted and before delete
	// returns, in the runtime namespace.
	Poststop Kind = "poststop"
)

// String returns the name config.json uses for k.
func (k Kind) String() string { return string(k) }

func (k Kind) valid() bool {
	switch k {
	case Prestart, CreateRuntime, CreateContainer, StartContainer, Poststart, Poststop:
		return true
	}
	return false
}

// Fatal reports whether a failing hook of kind k fails the operation. It is
// the one place that rule lives; runtime.md (v1.3.0), Lifecycle:
//
//   - prestart, createRuntime, createContainer, startContainer, poststart:
//     "If any ... hook fails, the runtime MUST generate an error, stop the
//     container, and continue the lifecycle at step 12" (destroy, then
//     poststop). Fatal returns true: [Run] stops at the first failing hook
//     and the caller must fail create/start, destroy the container and run
//     the poststop hooks. (Poststart became fatal in the spec; older runc
//     only warned.)
//   - poststop: "If any poststop hook fails, the runtime MUST log a warning,
//     but the remaining hooks and lifecycle continue as if the hook had
//     succeeded." Fatal returns false: [Run] runs every hook and returns the
//     errors joined; the caller logs them as warnings and goes on.
//
// An unknown kind is fatal.
func (k Kind) Fatal() bool { return k != Poststop }

// ContainerNamespace reports whether config.md says hooks of kind k "MUST be
// executed in the container namespace": createContainer and startContainer.
// All others run in the runtime namespace. For such hooks the caller passes
// a [Prepare] that enters the container to [RunIn], and the state's pid
// should be the pid as the container sees it (runtime.md, State).
func (k Kind) ContainerNamespace() bool { return k == CreateContainer || k == StartContainer }

// PathInContainer reports whether the hook's path "MUST resolve in the
// container namespace": only startContainer. For every other kind, even
// createContainer, the path resolves in the runtime namespace.
func (k Kind) PathInContainer() bool { return k == StartContainer }

// From returns the hooks of kind k in h; h may be nil.
func (k Kind) From(h *specs.Hooks) []specs.Hook {
	if h == nil {
		return nil
	}
	switch k {
	case Prestart:
		return h.Prestart //nolint:staticcheck // deprecated, but still run
	case CreateRuntime:
		return h.CreateRuntime
	case CreateContainer:
		return h.CreateContainer
	case StartContainer:
		return h.StartContainer
	case Poststart:
		return h.Poststart
	case Poststop:
		return h.Poststop
	}
	return nil
}

// Prepare is called with each hook's command just before it starts, to make
// it run where the hook belongs, e.g. in the container's namespaces. The
// command is complete: Path, Args, Env, Dir, Stdin/Stdout/Stderr and
// SysProcAttr.Setpgid are set. Prepare may rewrite Path and Args (say, to a
// helper that joins the container's namespaces and then execs the original
// argv) and set SysProcAttr fields; it must leave Env, the standard streams
// and Cancel alone. The hook's process group is set again after Prepare
// (unless Prepare asked for Setsid, which makes a group too), because the
// timeout kills the group.
type Prepare func(cmd *exec.Cmd) error

// Run runs hooks, the hooks of kind kind, in order, on the host (the runtime
// namespace), each with state as JSON on its stdin. It is RunIn with no
// Prepare.
//
// If kind is fatal ([Kind.Fatal]) the first failing hook stops the run and
// its *[Error] is returned; later hooks do not run. For poststop every hook
// runs and the result is errors.Join of each failing hook's *[Error] (nil if
// none failed): the caller logs it as a warning and carries on.
func Run(kind Kind, hooks []specs.Hook, state *specs.State) error {
	return RunIn(kind, hooks, state, nil)
}

// RunIn is [Run] with each hook's command passed through prepare before it
// starts (nil: run on the host). The runtime passes one that enters the
// container for the kinds where [Kind.ContainerNamespace] is true.
func RunIn(kind Kind, hooks []specs.Hook, state *specs.State, prepare Prepare) error {
	if !kind.valid() {
		return fmt.Errorf("hooks: unknown hook kind %q", string(kind))
	}
	if len(hooks) == 0 {
		return nil
	}
	if state == nil {
		return fmt.Errorf("hooks: %s hooks: no container state", kind)
	}
	stdin, err := marshalState(state)
	if err != nil {
		return fmt.Errorf("hooks: %s hooks: encode state: %w", kind, err)
	}
	var errs []error
	for i := range hooks {
		if err := runOne(kind, i, &hooks[i], stdin, state.Bundle, prepare); err != nil {
			if kind.Fatal() {
				return err
			}
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Error is the failure of one hook.
type Error struct {
	Kind  Kind
	Index int    // position in its list, from 0
	Path  string // the hook's path, as configured
	// Err is what went wrong: an *exec.ExitError for a non-zero exit or a
	// death by signal, an error matching ErrTimeout when the timeout killed
	// it, or the error that kept it from starting.
	Err error
	// The last 4 KiB the hook wrote to stdout and stderr.
	Stdout, Stderr []byte
}

// ErrTimeout matches (errors.Is) the Err of a hook killed by its timeout.
var ErrTimeout = errors.New("hook timed out")

type timeoutError struct{ seconds int }

func (e *timeoutError) Error() string        { return fmt.Sprintf("timed out after %ds", e.seconds) }
func (e *timeoutError) Is(target error) bool { return target == ErrTimeout }

// Error reads "error running createRuntime hook #1: /usr/bin/x: exit status
// 3: <stderr>", with the tail of stdout added when the hook wrote any: it
// begins with runc's words, which callers and runc's tests match.
func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "error running %s hook #%d: %s: %v", e.Kind, e.Index, e.Path, e.Err)
	if s := strings.TrimSpace(string(e.Stderr)); s != "" {
		b.WriteString(": ")
		b.WriteString(s)
	}
	if s := strings.TrimSpace(string(e.Stdout)); s != "" {
		b.WriteString(" (stdout: ")
		b.WriteString(s)
		b.WriteString(")")
	}
	return b.String()
}

func (e *Error) Unwrap() error { return e.Err }
