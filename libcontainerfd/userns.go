package libcontainerfd

import (
	"fmt"
	"os"
	"strconv"

	"github.com/containerfd/containerfd/libcontainerfd/idmap"
	"github.com/containerfd/containerfd/libcontainerfd/internal/spawn"
	"github.com/containerfd/containerfd/libcontainerfd/selfexe"
	"golang.org/x/sys/unix"
)

// stageUserns only holds a user namespace with the mapping an idmapped
// mount needs while the runtime opens it; it leaves when fd 3 closes.
const stageUserns = "containerfd-userns"

func runUserns() error {
	b := make([]byte, 1)
	for {
		if _, err := unix.Read(3, b); err != unix.EINTR {
			return nil
		}
	}
}

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
		Argv:       []string{stageUserns, "3"},
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
	var ws unix.WaitStatus
	unix.Wait4(proc.Pid, &ws, 0, nil)
	unix.Close(proc.Pidfd)
	if err != nil {
		return -1, fmt.Errorf("user namespace for an idmapped mount: %w", err)
	}
	return fd, nil
}
