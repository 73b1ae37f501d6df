package libcontainerfd

import (
	"fmt"
	"strconv"

	"golang.org/x/sys/unix"

	"github.com/containerfd/containerfd/libcontainerfd/idmap"
	"github.com/containerfd/containerfd/libcontainerfd/internal/fscopy"
)

// CopyOut copies src, a path in the running container, to dst, a path on
// the host, as `docker cp` does; CopyIn copies the other way. The rules for
// both:
//
//   - src is resolved from the container's root (CopyOut) with openat2(2)
//     RESOLVE_IN_ROOT|RESOLVE_NO_MAGICLINKS: "..", absolute paths and
//     symlinks on the way cannot leave the root. Its last component is not
//     followed: a symlink is copied as a symlink. A trailing "/" (or a last
//     component "." or "..") names the directory itself.
//   - If dst is an existing directory (symlinks followed, inside the root for
//     the container side), src is copied into it under its own name; with
//     src ending in "/." (or naming "/") its contents are copied into dst.
//     Otherwise src is copied to dst as a new name, whose parent directory
//     must exist. An existing non-directory at dst is replaced (the new entry
//     is written under a temporary name beside it and renamed over it, so a
//     symlink there is replaced, never written through); a directory is
//     never copied over a non-directory. dst ending in "/" must be a
//     directory unless src is one (it is then created).
//   - Directories are copied recursively. Every entry below the top is
//     opened relative to its parent's fd with O_NOFOLLOW and
//     RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS, on both sides, so a symlink swapped
//     into the container while the copy runs makes it fail, never follow.
//     Directories that already exist are merged into and keep their owner
//     and mode.
//   - Regular files, directories, symlinks and fifos are copied with their
//     owner, mode (setuid, setgid and sticky bits too) and access and
//     modification times; sockets are skipped. Device nodes are copied into
//     a container but refused when copying out. Hard links are not kept
//     (each name gets its own copy), nor extended attributes.
//
// Owners are the numeric ids as the container sees them. Without a user
// namespace those are the ids on disk, copied unchanged. In a container with
// a user namespace of its own, CopyIn maps each id through the container's
// /proc/<pid>/uid_map and gid_map (a file the host's uid 0 owns becomes one
// the container's root owns; an id with no mapping is an error naming the
// file), and CopyOut maps the ids on disk back (host 100000 in a container
// mapped 0:100000:65536 gives uid 0 on the host; an id the container cannot
// see becomes the overflow id, 65534, as the container sees it). CopyOut from
// such a container also clears the setuid and setgid bits of non-directories,
// so a container can never hand the host a setuid binary of a host user.
func (c *Container) CopyOut(src, dst string) error {
	ctr, err := c.copySide()
	if err != nil {
		return err
	}
	defer unix.Close(ctr.Root)
	err = fscopy.Copy(ctr.Side, src, fscopy.Host(), dst, fscopy.Rules{
		IDs: func(uid, gid uint32) (uint32, uint32, error) {
			u, ok := ctr.uids.ToContainer(uid)
			if !ok {
				u = ctr.overflowUID
			}
			g, ok := ctr.gids.ToContainer(gid)
			if !ok {
				g = ctr.overflowGID
			}
			return u, g, nil
		},
		ClearSetid: ctr.userns,
		NoDevices:  true,
		Times:      true,
	})
	if err != nil {
		return fmt.Errorf("cp: %w", err)
	}
	return nil
}

// CopyIn copies src, a path on the host, to dst, a path in the running
// container. See CopyOut for the rules.
func (c *Container) CopyIn(src, dst string) error {
	ctr, err := c.copySide()
	if err != nil {
		return err
	}
	defer unix.Close(ctr.Root)
	err = fscopy.Copy(fscopy.Host(), src, ctr.Side, dst, fscopy.Rules{
		IDs: func(uid, gid uint32) (uint32, uint32, error) {
			u, ok := ctr.uids.ToHost(uid)
			if !ok {
				return 0, 0, fmt.Errorf("uid %d has no mapping in the container's user namespace: %w", uid, unix.EOVERFLOW)
			}
			g, ok := ctr.gids.ToHost(gid)
			if !ok {
				return 0, 0, fmt.Errorf("gid %d has no mapping in the container's user namespace: %w", gid, unix.EOVERFLOW)
			}
			return u, g, nil
		},
		Times: true,
	})
	if err != nil {
		return fmt.Errorf("cp: %w", err)
	}
	return nil
}

// containerSide is the container's end of a copy, with its user namespace.
type containerSide struct {
	fscopy.Side
	uids, gids               idmap.Map
	overflowUID, overflowGID uint32
	userns                   bool // a user namespace of its own
}

// copySide opens the container's root and reads its id maps, checking that
// init (whose /proc entries they come from) was not replaced meanwhile.
func (c *Container) copySide() (*containerSide, error) {
	root, err := c.openRoot()
	if err != nil {
		return nil, err
	}
	s := &containerSide{Side: fscopy.Side{
		Root:    root,
		Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS,
		Prefix:  "container " + c.id + ":",
	}}
	fail := func(err error) (*containerSide, error) {
		unix.Close(root)
		return nil, fmt.Errorf("container %s: cp: %w", c.id, err)
	}
	proc := "/proc/" + strconv.Itoa(c.st.Init.Pid)
	if s.uids, err = idmap.Read(proc + "/uid_map"); err != nil {
		return fail(err)
	}
	if s.gids, err = idmap.Read(proc + "/gid_map"); err != nil {
		return fail(err)
	}
	var mine, theirs unix.Stat_t
	if err := unix.Stat("/proc/self/ns/user", &mine); err != nil {
		return fail(err)
	}
	if err := unix.Stat(proc+"/ns/user", &theirs); err != nil {
		return fail(err)
	}
	s.userns = mine.Dev != theirs.Dev || mine.Ino != theirs.Ino
	s.overflowUID = idmap.OverflowUID()
	s.overflowGID = idmap.OverflowGID()
	if !c.initAlive() {
		return fail(ErrNotRunning)
	}
	return s, nil
}
