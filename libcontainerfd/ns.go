package libcontainerfd

import "golang.org/x/sys/unix"

// namespaces in the order they must be joined: the user namespace first, so
// the others are joined with its privileges.
var namespaces = []struct {
	flag int
	name string
}{
	{unix.CLONE_NEWUSER, "user"},
	{unix.CLONE_NEWNS, "mnt"},
	{unix.CLONE_NEWPID, "pid"},
	{unix.CLONE_NEWNET, "net"},
	{unix.CLONE_NEWIPC, "ipc"},
	{unix.CLONE_NEWUTS, "uts"},
	{unix.CLONE_NEWCGROUP, "cgroup"},
	{unix.CLONE_NEWTIME, "time"},
}

// nsName is the name of a namespace in /proc/<pid>/ns, or "" if t is not
// exactly one namespace flag.
func nsName(t int) string {
	for _, n := range namespaces {
		if n.flag == t {
			return n.name
		}
	}
	return ""
}
