package main

import (
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/containerfd/containerfd/internal/mdtext"
)

// docs/layout.md's "Repository layout" is the tree: every folder it names
// exists, and every Go package is named, itself or (outside the library,
// whose packages are each named) by a folder above it.
func TestLayoutDoc(t *testing.T) {
	const doc = "docs/layout.md"
	b, err := os.ReadFile(doc)
	if err != nil {
		t.Fatal(err)
	}
	sec, _ := mdtext.Section(string(b), "# Repository layout")
	blocks := mdtext.CodeBlocks(sec, "")
	if len(blocks) == 0 {
		t.Fatalf("%s has no section Repository layout with a code block of the tree", doc)
	}
	block := blocks[0]
	var named []string
	parent := ""
	for _, line := range strings.Split(block, "\n") {
		indented := strings.HasPrefix(line, "  ")
		for _, f := range strings.Fields(line) {
			if !strings.HasSuffix(f, "/") {
				break
			}
			if indented {
				named = append(named, parent+f)
			} else {
				named = append(named, f)
				parent = f
			}
		}
	}
	for _, d := range named {
		if st, err := os.Stat(d); err != nil || !st.IsDir() {
			t.Errorf("%s names %s, which is no folder here", doc, d)
		}
	}
	const lib = "libcontainerfd/"
	err = filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return err
		}
		if name := d.Name(); path != "." && (strings.HasPrefix(name, ".") || name == "testdata" || name == "bin") {
			return filepath.SkipDir
		}
		if gofiles, _ := filepath.Glob(filepath.Join(path, "*.go")); len(gofiles) == 0 || path == "." {
			return nil
		}
		dir := path + "/"
		if slices.Contains(named, dir) {
			return nil
		}
		for _, n := range named {
			if n != lib && strings.HasPrefix(dir, n) {
				return nil
			}
		}
		t.Errorf("%s does not name the package %s", doc, dir)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
