// Package mdtext reads what tests check in the project's Markdown documents:
// a section by its heading, the fenced code blocks in it, the links, and
// the anchors GitHub gives the headings.
package mdtext

import (
	"regexp"
	"strconv"
	"strings"
	"unicode"
)

// lines splits md into lines that end in "\n" (the last may not), each with
// whether it is inside a fenced code block or is a fence. Inside a fence a
// line that starts with "#" is no heading (in a console block it is root's
// prompt).
func lines(md string) (ls []string, fenced []bool) {
	in := false
	for _, l := range strings.SplitAfter(md, "\n") {
		fence := strings.HasPrefix(l, "```")
		ls = append(ls, l)
		fenced = append(fenced, in || fence)
		if fence {
			in = !in
		}
	}
	return ls, fenced
}

// heading returns the level and the text of a heading line ("## x": 2,
// "x"), or 0.
func heading(l string) (int, string) {
	l = strings.TrimRight(l, "\n")
	n := strings.IndexByte(l, ' ')
	if n < 1 || n > 6 || strings.Trim(l[:n], "#") != "" {
		return 0, ""
	}
	return n, strings.TrimSpace(l[n+1:])
}

// Section returns the text under the heading line h (such as
// "## Beyond runc"), up to the next heading of the same or a higher level.
func Section(md, h string) (string, bool) {
	level, text := heading(h)
	if level == 0 {
		return "", false
	}
	ls, fenced := lines(md)
	var b strings.Builder
	in := false
	for i, l := range ls {
		if !fenced[i] {
			if n, t := heading(l); n > 0 {
				if in && n <= level {
					break
				}
				if n == level && t == text {
					in = true
					continue
				}
			}
		}
		if in {
			b.WriteString(l)
		}
	}
	return b.String(), in
}

// CodeBlocks returns the fenced code blocks of the language lang ("```lang")
// in text, in order, without their fences; an unterminated one runs to the
// end.
func CodeBlocks(text, lang string) []string {
	var blocks []string
	for {
		start := strings.Index(text, "```"+lang+"\n")
		if start < 0 {
			return blocks
		}
		if start > 0 && text[start-1] != '\n' {
			text = text[start+3:]
			continue
		}
		text = text[start+len(lang)+4:]
		end := strings.Index(text, "```\n")
		if end < 0 {
			return append(blocks, text)
		}
		blocks = append(blocks, text[:end])
		text = text[end+4:]
	}
}

var (
	codeSpan   = regexp.MustCompile("`[^`]*`")
	inlineLink = regexp.MustCompile(`!?\[([^\]]*)\]\(([^)\s]*)(?:\s+"[^"]*")?\)`)
	refLink    = regexp.MustCompile(`(?m)^ {0,3}\[[^\]]+\]:\s*(\S+)`)
)

// Links returns the targets of the links in md outside code, inline
// ([text](target), images too) and by reference ([name]: target), in order.
func Links(md string) []string {
	var targets []string
	ls, fenced := lines(md)
	for i, l := range ls {
		if fenced[i] {
			continue
		}
		l = codeSpan.ReplaceAllString(l, "")
		for _, m := range inlineLink.FindAllStringSubmatch(l, -1) {
			targets = append(targets, m[2])
		}
		for _, m := range refLink.FindAllStringSubmatch(l, -1) {
			targets = append(targets, m[1])
		}
	}
	return targets
}

// Anchors returns the anchors GitHub gives the headings of md: the
// heading's text as rendered, lower-cased, every character but a letter, a
// digit, a space, '-' and '_' dropped, and spaces turned into '-'; a
// repeated anchor gets "-1", "-2", ….
func Anchors(md string) map[string]bool {
	anchors := map[string]bool{}
	seen := map[string]int{}
	ls, fenced := lines(md)
	for i, l := range ls {
		if fenced[i] {
			continue
		}
		n, text := heading(l)
		if n == 0 {
			continue
		}
		a := Anchor(text)
		if k := seen[a]; k > 0 {
			seen[a]++
			a += "-" + strconv.Itoa(k)
		} else {
			seen[a] = 1
		}
		anchors[a] = true
	}
	return anchors
}

// Anchor is the anchor GitHub gives a heading of the text h (as written,
// without the leading #s).
func Anchor(h string) string {
	h = inlineLink.ReplaceAllString(h, "$1") // a link's text is rendered
	var b strings.Builder
	for _, r := range strings.ToLower(h) {
		switch {
		case r == ' ':
			b.WriteByte('-')
		case r == '-' || r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r):
			b.WriteRune(r)
		}
	}
	return b.String()
}
