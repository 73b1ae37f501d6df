package libcontainerfd

import (
	"fmt"
	"os"
	"strconv"

	"github.com/containerfd/containerfd/libcontainerfd/idmap"
	"github.com/containerfd/containerfd/libcontainerfd/internal/msg"
	"github.com/containerfd/containerfd/libcontainerfd/internal/spawn"
	"github.com/containerfd/containerfd/libcontainerfd/selfexe"
	"golang.org/x/sys/unix"
)

// usernsFD returns an fd of a new user namespace with the given mappings,
// for an idmapped mount: a process of ours is started in it, the namespace
// opened, and the process let go.
func usernsFD(uids, gids idmap.Map) (int, error) {
	exe, err := selfexe.FD()
	if err != nil {
		return -1, err
	}
	var hold [2]int
	if err := unix.Pipe2(hold[:], unix.O_CLOEXEC); err != nil {
		return -1, fmt.Errorf("user namespace for an idmapped mount: %w", err)
	}
	defer unix.Close(hold[0])
	null, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		unix.Close(hold[1])
		return -1, err
	}
	defer null.Close()
	n := int(null.Fd())
	proc, err := spawn.Start(&spawn.Attr{
		ExecFD:     exe,
		Argv:       []string{msg.StageUserns, strconv.Itoa(msg.UsernsHoldFD)},
		Files:      []int{n, n, n, hold[0]},
		Cloneflags: unix.CLONE_NEWUSER,
		UIDMap:     uids.String(),
		GIDMap:     gids.String(),
		CgroupFD:   -1,
	})
	if err != nil {
		unix.Close(hold[1])
		return -1, fmt.Errorf("user namespace for an idmapped mount: %w", err)
	}
	fd, err := unix.Open("/proc/"+strconv.Itoa(proc.Pid)+"/ns/user", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	unix.Close(hold[1])
	proc.Wait()
	if err != nil {
		return -1, fmt.Errorf("user namespace for an idmapped mount: %w", err)
	}
	return fd, nil
}
