// Package registry is the host's list of containers, whatever their state
// root and owner: what the 2019 proposal's /proc/containers listed. The
// library writes one small file per container at create and removes it at
// destroy; list --all reads every registry on the host.
//
// Root's entries live in /run/containerfd-registry, a rootless caller's in
// $XDG_RUNTIME_DIR/containerfd-registry (root reads those of
// /run/user/*/). The directories are siblings of the default state roots,
// not inside them: any name inside a root is a valid container id. An
// entry points at the container's state directory and keeps what a list
// needs that the state may not have: the root and id, the owner, the
// cgroup, init's and the kill-on-close holder's identities. An entry is
// only a pointer: whoever reads it checks it against the state and the
// kernel.
package registry

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/containerfd/containerfd/libcontainerfd/idmap"
	"github.com/containerfd/containerfd/libcontainerfd/internal/procid"
)

// RootDir holds root's entries; UserDirName, under a user's
// XDG_RUNTIME_DIR, a rootless caller's.
const (
	RootDir     = "/run/containerfd-registry"
	UserDirName = "containerfd-registry"
	// usersDir holds the users' XDG_RUNTIME_DIRs as pam_systemd makes them.
	usersDir = "/run/user"
)

// Entry is one container.
type Entry struct {
	ID   string `json:"id"`
	Root string `json:"root"` // the state root, absolute
	// Dir is the container's state directory, <Root>/<ID>.
	Dir     string    `json:"dir"`
	Owner   int       `json:"owner"` // uid of the creator
	Created time.Time `json:"created"`
	// Cgroup is the container's cgroup directories (cgroups.Paths), and
	// CgroupExisted those that were there before it, as in its state.
	Cgroup        map[string]string `json:"cgroup,omitempty"`
	CgroupExisted []string          `json:"cgroupExisted,omitempty"`
	SystemdUnit   string            `json:"systemdUnit,omitempty"`
	// Namespaces holds the CLONE_NEW* flags of the container's own
	// namespaces; SharedPidNS that it has no pid namespace of its own.
	Namespaces  int  `json:"namespaces"`
	SharedPidNS bool `json:"sharedPidns,omitempty"`
	// Init is init's identity, once it is started.
	Init procid.ID `json:"init"`
	// Holder is the process whose end kills the container (KillOnClose).
	Holder procid.ID `json:"holder"`

	// Path is the entry's file, where it was read or written.
	Path string `json:"-"`
}

// Dir returns the registry directory of the calling process: RootDir for
// root of the initial user namespace, else $XDG_RUNTIME_DIR/containerfd-registry;
// "" for a caller that has neither (root of a user namespace of its own
// without XDG_RUNTIME_DIR): its containers are not registered.
func Dir() string {
	if os.Geteuid() == 0 && !idmap.InUserNS() {
		return RootDir
	}
	if xdg := os.Getenv("XDG_RUNTIME_DIR"); xdg != "" {
		return filepath.Join(xdg, UserDirName)
	}
	return ""
}

// Name is the file name of the entry of container id under root: the same
// for the same pair, so that a container's entry is found from its root
// and id alone.
func Name(root, id string) string {
	sum := sha256.Sum256([]byte(root + "\x00" + id))
	return hex.EncodeToString(sum[:16]) + ".json"
}

// Write writes e into dir atomically (a temporary file renamed over the
// entry), making dir (0700) if needed, and sets e.Path.
func Write(dir string, e *Entry) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("registry: %w", err)
	}
	b, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("registry: encode entry of %s: %w", e.ID, err)
	}
	f, err := os.CreateTemp(dir, ".entry-*")
	if err != nil {
		return fmt.Errorf("registry: %w", err)
	}
	defer os.Remove(f.Name())
	_, err = f.Write(b)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	path := filepath.Join(dir, Name(e.Root, e.ID))
	if err == nil {
		err = os.Rename(f.Name(), path)
	}
	if err != nil {
		return fmt.Errorf("registry: write entry of %s: %w", e.ID, err)
	}
	e.Path = path
	return nil
}

// Read reads the entry at path.
func Read(path string) (*Entry, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("registry: %w", err)
	}
	e := &Entry{}
	if err := json.Unmarshal(b, e); err != nil {
		return nil, fmt.Errorf("registry: parse %s: %w", path, err)
	}
	e.Path = path
	return e, nil
}

// Remove removes the entry at path if it is still that of the container
// created at created: another container of the same root and id may have
// taken its place.
func Remove(path string, created time.Time) error {
	e, err := Read(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err == nil && !e.Created.Equal(created) {
		return nil
	}
	// An entry that cannot be parsed is nobody's but ours: its name is.
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("registry: %w", err)
	}
	return nil
}

// Dirs returns the registry directories of the host the caller may read,
// each with the uid whose entries it holds: RootDir, every
// /run/user/<uid>/containerfd-registry, and the caller's own.
func Dirs() map[string]int {
	dirs := map[string]int{RootDir: 0}
	ents, _ := os.ReadDir(usersDir)
	for _, e := range ents {
		if uid, err := strconv.Atoi(e.Name()); err == nil {
			dirs[filepath.Join(usersDir, e.Name(), UserDirName)] = uid
		}
	}
	if d := Dir(); d != "" && d != RootDir {
		dirs[d] = os.Geteuid()
	}
	return dirs
}

// All reads the entries of every directory of Dirs, each directory once
// however many paths lead to it. A directory the caller cannot read is
// skipped, and so is an entry its directory's owner does not own: a user's
// registry speaks only for that user's containers, whose Owner it is.
func All() ([]*Entry, error) {
	var all []*Entry
	seen := map[string]bool{}
	for dir, uid := range Dirs() {
		real, err := filepath.EvalSymlinks(dir)
		if err != nil || seen[real] {
			continue // none there, or read already
		}
		seen[real] = true
		es, err := readDir(real, uid)
		if err != nil {
			return nil, err
		}
		all = append(all, es...)
	}
	return all, nil
}

func readDir(dir string, uid int) ([]*Entry, error) {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, fs.ErrPermission) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("registry: %w", err)
	}
	var out []*Entry
	for _, d := range ents {
		name := d.Name()
		if strings.HasPrefix(name, ".") || !strings.HasSuffix(name, ".json") {
			continue // a write in progress
		}
		path := filepath.Join(dir, name)
		fi, err := os.Lstat(path)
		if err != nil || !fi.Mode().IsRegular() || int(fi.Sys().(*syscall.Stat_t).Uid) != uid {
			continue // gone meanwhile, or not the owner's
		}
		e, err := Read(path)
		if err != nil {
			continue // gone meanwhile, or not an entry
		}
		if uid != 0 {
			// The uid the file has on the host: a writer that was root of
			// a user namespace of its own recorded its uid there.
			e.Owner = uid
		}
		out = append(out, e)
	}
	return out, nil
}
