package libcontainerfd

import "github.com/containerfd/containerfd/libcontainerfd/nsenter"

// nsName is the name of a namespace in /proc/<pid>/ns, or "" if t is not
// exactly one namespace flag.
func nsName(t int) string {
	for _, n := range nsenter.Types {
		if n.Flag == t {
			return n.Name
		}
	}
	return ""
}
