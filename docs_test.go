package main

import (
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/containerfd/containerfd/internal/mdtext"
)

// readmeMaxLines keeps the README a page people finish: the rest is in
// docs/, by reader.
const readmeMaxLines = 200

// Every relative link in README.md and docs/*.md leads to a file that
// exists, and its #anchor, if any, to a heading of that file (GitHub's
// anchors); the README stays under readmeMaxLines lines.
func TestDocLinks(t *testing.T) {
	docs, err := filepath.Glob("docs/*.md")
	if err != nil {
		t.Fatal(err)
	}
	anchors := map[string]map[string]bool{} // by cleaned path
	anchorsOf := func(path string) map[string]bool {
		if a, ok := anchors[path]; ok {
			return a
		}
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		anchors[path] = mdtext.Anchors(string(b))
		return anchors[path]
	}
	checked := 0
	for _, doc := range append([]string{"README.md"}, docs...) {
		b, err := os.ReadFile(doc)
		if err != nil {
			t.Fatal(err)
		}
		if doc == "README.md" {
			if n := strings.Count(string(b), "\n"); n >= readmeMaxLines {
				t.Errorf("README.md has %d lines: keep it under %d, and move the rest into docs/", n, readmeMaxLines)
			}
		}
		for _, link := range mdtext.Links(string(b)) {
			u, err := url.Parse(link)
			if err != nil {
				t.Errorf("%s: link %q: %v", doc, link, err)
				continue
			}
			if u.Scheme != "" || u.Host != "" {
				continue // not ours to follow offline
			}
			target := doc
			if u.Path != "" {
				target = filepath.Join(filepath.Dir(doc), u.Path)
				if _, err := os.Stat(target); err != nil {
					t.Errorf("%s: link %q: %v", doc, link, err)
					continue
				}
			}
			checked++
			if u.Fragment == "" {
				continue
			}
			if !strings.HasSuffix(target, ".md") {
				t.Errorf("%s: link %q: an anchor in a file that is no Markdown", doc, link)
			} else if !anchorsOf(target)[u.Fragment] {
				t.Errorf("%s: link %q: %s has no heading with the anchor #%s", doc, link, target, u.Fragment)
			}
		}
	}
	if checked == 0 {
		t.Error("no relative link found: the link parser reads none")
	}
}
