package cgroups

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"time"

	sddbus "github.com/coreos/go-systemd/v22/dbus"
	"github.com/godbus/dbus/v5"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// The systemd driver: a container's cgroup is a transient unit of the system
// manager, a scope with Delegate=yes (or a slice), made over D-Bus.
//
// How it fits clone3(CLONE_INTO_CGROUP). Init must be born in its final
// cgroup, both to be limited from its first instruction and because a new
// cgroup namespace is rooted where the process is at clone time: a process
// cloned elsewhere and moved into the scope afterwards (runc's and crun's
// order) would see the scope as a subdirectory of its namespace root, unless
// it unshares the namespace later from inside, which our init cannot do
// (it is cloned straight into its namespaces). systemd 252, Debian 12's,
// refuses a scope without processes ("Scope has no PIDs", ENOENT; newer ones
// also take pidfds, PIDFDs, which changes nothing here). So Create makes the scope's cgroup directory
// first, where systemd will put it (the slice's path, ExpandSlice, plus the
// unit name), the runtime clones init into it, and StartUnit then starts the
// scope with PIDs=[init]: systemd finds the directory there (mkdir EEXIST
// is fine to it), "moves" init to where it already is, and from then on owns
// the directory. That costs one D-Bus call and no extra process, unlike
// starting the scope around a placeholder process first; StartUnit checks
// that systemd's ControlGroup is the directory we made.
//
// Which bus. Root talks to the system manager over the system bus, as runc
// does (the documented interface; dbus-daemon and polkit see the call); when
// no system bus answers (a minimal system or container without dbus-daemon)
// it falls back to systemd's private socket /run/systemd/private, which PID 1
// serves to root whenever it runs.

// unitTimeout bounds each conversation with systemd, and the wait for a job.
var unitTimeout = 30 * time.Second

// connect opens a connection to the system manager: the system bus first,
// else its private socket.
func connect(ctx context.Context) (*sddbus.Conn, error) {
	conn, err := sddbus.NewSystemConnectionContext(ctx)
	if err == nil {
		return conn, nil
	}
	conn, perr := sddbus.NewSystemdConnectionContext(ctx)
	if perr == nil {
		return conn, nil
	}
	return nil, fmt.Errorf("connect to systemd: system bus: %v; /run/systemd/private: %w", err, perr)
}

// dbusErrorName returns the D-Bus error name of err, or "".
func dbusErrorName(err error) string {
	var e dbus.Error
	if errors.As(err, &e) {
		return e.Name
	}
	return ""
}

func isNoSuchUnit(err error) bool {
	return strings.HasSuffix(dbusErrorName(err), ".NoSuchUnit")
}

// waitJob waits for a job's result on ch: "done" is success.
func waitJob(ctx context.Context, ch <-chan string) error {
	select {
	case res := <-ch:
		if res != "done" {
			return fmt.Errorf("job ended %q", res)
		}
		return nil
	case <-ctx.Done():
		return fmt.Errorf("job not done after %v: %w", unitTimeout, ctx.Err())
	}
}

// StartUnit starts u, a transient unit of the system manager, around the
// process pid, which is already in c (see above): for a scope with
// Delegate=yes and PIDs=[pid]; a slice takes no PIDs (systemd has none for
// slices), and pid just stays in its directory. The
// unit gets r as properties where systemd has them; then the rest of r is
// written to the files (Set). A unit of the same name that is left over,
// failed or inactive (a runtime killed before delete), is reset and the
// start tried once more; a live one is an error wrapping fs.ErrExist. On
// error the unit is not left started.
func (c *Cgroup) StartUnit(u Unit, description string, pid int, r *specs.LinuxResources) (err error) {
	fail := func(step string, err error) error {
		return fmt.Errorf("cgroups: systemd unit %s: %s: %w", u.Name, step, err)
	}
	want, err := u.CgroupPath()
	if err != nil {
		return fail("cgroup path", err)
	}
	props, err := unitProperties(r, c.mode == V2)
	if err != nil {
		return fail("properties", err)
	}
	props = append([]sddbus.Property{sddbus.PropDescription(description)}, props...)
	if u.IsSlice() {
		props = append(props, sddbus.PropWants(u.Slice))
	} else {
		props = append(props, sddbus.PropSlice(u.Slice), prop("Delegate", true), sddbus.PropPids(uint32(pid)))
	}
	// As runc: no implicit ordering against shutdown.target, and the usage
	// of every controller counted.
	props = append(props, prop("DefaultDependencies", false))
	for _, a := range []string{"MemoryAccounting", "CPUAccounting", "TasksAccounting"} {
		props = append(props, prop(a, true))
	}
	if c.mode == V2 {
		props = append(props, prop("IOAccounting", true))
	} else {
		props = append(props, prop("BlockIOAccounting", true))
	}
	props = append(props, u.Properties...)

	ctx, cancel := context.WithTimeout(context.Background(), unitTimeout)
	defer cancel()
	conn, err := connect(ctx)
	if err != nil {
		return fail("start", err)
	}
	defer conn.Close()
	for retried := false; ; retried = true {
		ch := make(chan string, 1)
		_, err = conn.StartTransientUnitContext(ctx, u.Name, "replace", props, ch)
		if err == nil {
			if err = waitJob(ctx, ch); err != nil {
				stopUnit(ctx, conn, u.Name)
				return fail("start", err)
			}
			break
		}
		if !strings.HasSuffix(dbusErrorName(err), ".UnitExists") || retried {
			// Not started, so not ours to stop: the name may be another's.
			return fail("start", err)
		}
		st, serr := conn.GetUnitPropertyContext(ctx, u.Name, "ActiveState")
		if serr != nil {
			return fail("start: unit exists; read its state", serr)
		}
		state, _ := st.Value.Value().(string)
		if state != "failed" && state != "inactive" {
			return fail("start", fmt.Errorf("a unit of that name exists and is %s: %w", state, fs.ErrExist))
		}
		// Left over: reset it so systemd drops it, and try again.
		if err := conn.ResetFailedUnitContext(ctx, u.Name); err != nil && !isNoSuchUnit(err) {
			return fail("start: reset the left-over unit", err)
		}
	}
	defer func() {
		if err != nil {
			stopUnit(ctx, conn, u.Name)
		}
	}()
	iface := "Scope"
	if u.IsSlice() {
		iface = "Slice"
	}
	cg, err := conn.GetUnitTypePropertyContext(ctx, u.Name, iface, "ControlGroup")
	if err != nil {
		return fail("read ControlGroup", err)
	}
	if got, _ := cg.Value.Value().(string); got != want {
		return fail("start", fmt.Errorf("systemd put it at cgroup %q, not at %q where its process is", got, want))
	}
	if err := c.Set(c.withoutUnitLimits(r)); err != nil {
		return fail("set resources", err)
	}
	return nil
}

// SetUnit changes the limits of the cgroup of the unit named unit: systemd's
// properties first (SetUnitProperties, runtime only, as runc: they go with
// the unit), then the files, as StartUnit.
func (c *Cgroup) SetUnit(unit string, r *specs.LinuxResources) error {
	fail := func(step string, err error) error {
		return fmt.Errorf("cgroups: systemd unit %s: %s: %w", unit, step, err)
	}
	props, err := unitProperties(r, c.mode == V2)
	if err != nil {
		return fail("properties", err)
	}
	if len(props) > 0 {
		ctx, cancel := context.WithTimeout(context.Background(), unitTimeout)
		defer cancel()
		conn, err := connect(ctx)
		if err != nil {
			return fail("set properties", err)
		}
		defer conn.Close()
		if err := conn.SetUnitPropertiesContext(ctx, unit, true, props...); err != nil {
			return fail("set properties", err)
		}
	}
	if err := c.Set(c.withoutUnitLimits(r)); err != nil {
		return fail("set resources", err)
	}
	return nil
}

// StopUnit stops the unit named unit and resets it, so that systemd forgets
// it: after it, no unit of that name is left, failed or not. A unit that is
// not there (systemd drops a scope whose processes are gone) is no error.
func StopUnit(unit string) error {
	ctx, cancel := context.WithTimeout(context.Background(), unitTimeout)
	defer cancel()
	conn, err := connect(ctx)
	if err != nil {
		return fmt.Errorf("cgroups: systemd unit %s: stop: %w", unit, err)
	}
	defer conn.Close()
	return stopUnit(ctx, conn, unit)
}

func stopUnit(ctx context.Context, conn *sddbus.Conn, unit string) error {
	fail := func(step string, err error) error {
		return fmt.Errorf("cgroups: systemd unit %s: %s: %w", unit, step, err)
	}
	ch := make(chan string, 1)
	_, err := conn.StopUnitContext(ctx, unit, "replace", ch)
	switch {
	case isNoSuchUnit(err):
	case err != nil:
		return fail("stop", err)
	default:
		if err := waitJob(ctx, ch); err != nil {
			return fail("stop", err)
		}
	}
	// A stopped unit may be kept as failed (a killed scope, an OOM kill):
	// reset it so it goes.
	if err := conn.ResetFailedUnitContext(ctx, unit); err != nil && !isNoSuchUnit(err) {
		return fail("reset failed state", err)
	}
	return nil
}
