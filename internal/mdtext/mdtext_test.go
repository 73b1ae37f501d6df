package mdtext

import (
	"maps"
	"slices"
	"testing"
)

const doc = "# Title\n\nIntro [a](a.md#x-y) and `[not](a link)`.\n\n" +
	"## Beyond runc\n\ntext\n\n```console\n# containerfd list\n## not a heading\n```\n\n" +
	"### Sub: `wait` (Linux 6.15)\n\n```text\none\n```\n\n```toml\ntwo\n```\n\n" +
	"## Next\n\n[b](../b.md) ![i](img.png \"t\")\n[ref]: c.md#top\n\n## Next\n"

func TestSection(t *testing.T) {
	sec, ok := Section(doc, "## Beyond runc")
	if !ok {
		t.Fatal("no section Beyond runc")
	}
	want := "\ntext\n\n```console\n# containerfd list\n## not a heading\n```\n\n" +
		"### Sub: `wait` (Linux 6.15)\n\n```text\none\n```\n\n```toml\ntwo\n```\n\n"
	if sec != want {
		t.Errorf("section:\n%q\nwant\n%q", sec, want)
	}
	if _, ok := Section(doc, "## not a heading"); ok {
		t.Error("a line in a code block was taken for a heading")
	}
	if _, ok := Section(doc, "### Beyond runc"); ok {
		t.Error("a heading of another level matched")
	}
	if got := CodeBlocks(sec, "text"); !slices.Equal(got, []string{"one\n"}) {
		t.Errorf("text blocks: %q", got)
	}
	if got := CodeBlocks(sec, "toml"); !slices.Equal(got, []string{"two\n"}) {
		t.Errorf("toml blocks: %q", got)
	}
}

func TestLinksAndAnchors(t *testing.T) {
	if got, want := Links(doc), []string{"a.md#x-y", "../b.md", "img.png", "c.md#top"}; !slices.Equal(got, want) {
		t.Errorf("links %q, want %q", got, want)
	}
	got := slices.Sorted(maps.Keys(Anchors(doc)))
	want := []string{"beyond-runc", "next", "next-1", "sub-wait-linux-615", "title"}
	if !slices.Equal(got, want) {
		t.Errorf("anchors %q, want %q", got, want)
	}
	for h, want := range map[string]string{
		"1. The object": "1-the-object",
		"Other suites: OCI validation, runc's tests, a differential, critest": "other-suites-oci-validation-runcs-tests-a-differential-critest",
		"--kill-on-close, --empty-fs":                                         "--kill-on-close---empty-fs",
		"The containerd shim: `make bench-shim`":                              "the-containerd-shim-make-bench-shim",
		"containerfd — design":                                                "containerfd--design",
		"See [it](x.md) here":                                                 "see-it-here",
	} {
		if got := Anchor(h); got != want {
			t.Errorf("Anchor(%q) = %q, want %q", h, got, want)
		}
	}
}
