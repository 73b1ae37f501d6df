// Package mountinfo reads /proc/<pid>/mountinfo (proc(5)).
package mountinfo

import (
	"fmt"
	"os"
	"strings"
)

// Entry is one mount.
type Entry struct {
	ID, Parent   string
	Dev          string // major:minor of the filesystem
	Root         string // the path within the filesystem mounted here
	Mountpoint   string
	Options      string   // per-mount options ("rw,nosuid,relatime")
	Optional     []string // optional fields ("shared:3", "master:1")
	FSType       string
	Source       string
	SuperOptions string // per-superblock options
	Line         string // the line as the kernel wrote it
}

// Read parses a mountinfo file, such as /proc/self/mountinfo.
func Read(path string) ([]Entry, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(data, path)
}

// Parse parses mountinfo text; name is used in errors.
func Parse(data []byte, name string) ([]Entry, error) {
	var out []Entry
	// One string for the whole table, cut into lines in place: a Scanner
	// would take a 64 KiB buffer and copy every line, at each of the
	// several reads of a run.
	for line := range strings.Lines(string(data)) {
		line = strings.TrimSuffix(line, "\n")
		// id parent major:minor root mountpoint opts [optional...] - fstype source superopts
		pre, post, ok := strings.Cut(line, " - ")
		f, g := strings.Fields(pre), strings.Fields(post)
		if !ok || len(f) < 6 || len(g) < 3 {
			return nil, fmt.Errorf("parse %s: malformed line %q", name, line)
		}
		out = append(out, Entry{
			ID: f[0], Parent: f[1], Dev: f[2],
			Root:       Unescape(f[3]),
			Mountpoint: Unescape(f[4]),
			Options:    f[5],
			Optional:   f[6:],
			FSType:     g[0], Source: Unescape(g[1]), SuperOptions: g[2],
			Line: line,
		})
	}
	return out, nil
}

// Unescape undoes the octal escapes (\040 for a space and so on) the kernel
// writes in mountinfo paths.
func Unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			o := s[i+1 : i+4]
			if o[0] >= '0' && o[0] <= '3' && isOct(o[1]) && isOct(o[2]) {
				b.WriteByte((o[0]-'0')<<6 | (o[1]-'0')<<3 | (o[2] - '0'))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func isOct(c byte) bool { return c >= '0' && c <= '7' }
