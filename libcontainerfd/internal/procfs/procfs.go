// Package procfs writes the runtime's /proc files (uid_map, oom_score_adj,
// sysctls) only after checking that the open file really is on procfs, so
// no mount arranged by a container can take the write (CVE-2019-16884,
// CVE-2025-52881 class).
package procfs

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// WriteFile writes data to the procfs file at path in one write(2). The
// last component must not be a symlink.
func WriteFile(path string, data []byte) error {
	fd, err := unix.Open(path, unix.O_WRONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer unix.Close(fd)
	var st unix.Statfs_t
	if err := unix.Fstatfs(fd, &st); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if st.Type != unix.PROC_SUPER_MAGIC {
		return fmt.Errorf("write %s: not on procfs (filesystem type %#x)", path, st.Type)
	}
	if _, err := unix.Write(fd, data); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
