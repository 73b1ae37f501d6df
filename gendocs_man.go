//go:build containerfd_gendocs

package main

import (
	"fmt"
	"slices"
	"strings"

	"github.com/urfave/cli/v2"
)

// manPages returns containerfd(8) and containerfd-CMD(8) for every command
// of docCommands, keyed by path under the output directory. The roff is
// written here rather than by urfave's ToMan: that one page holds the whole
// app, and its markdown step (go-md2man, blackfriday) is more code than
// the few macros a page needs.
func manPages(app *cli.App, env []envDoc) map[string]string {
	pages := map[string]string{"man/" + app.Name + ".8": appPage(app, env)}
	for _, cmd := range docCommands(app) {
		pages["man/"+app.Name+"-"+cmd.Name+".8"] = commandPage(app, cmd, env)
	}
	return pages
}

func appPage(app *cli.App, env []envDoc) string {
	var b strings.Builder
	header(&b, app, app.Name, app.Usage)
	section(&b, "SYNOPSIS", "")
	synopsisLines(&b, synopsis(app, nil))
	section(&b, "DESCRIPTION", "")
	paragraphs(&b, app.Description)
	section(&b, "COMMANDS", "")
	for _, cmd := range docCommands(app) {
		fmt.Fprintf(&b, ".TP\n\\fB%s\\fR\n%s; see \\fB%s\\fR(8).\n", roff(cmd.Name), roff(cmd.Usage), roff(app.Name+"-"+cmd.Name))
	}
	section(&b, "GLOBAL OPTIONS", "")
	options(&b, docFlags(app, nil))
	envSection(&b, env, nil)
	var also []string
	for _, cmd := range docCommands(app) {
		also = append(also, `\fB`+roff(app.Name+"-"+cmd.Name)+`\fR(8)`)
	}
	section(&b, "SEE ALSO", strings.Join(append(also, `\fBrunc\fR(8)`), ",\n")+"\n")
	return b.String()
}

func commandPage(app *cli.App, cmd *cli.Command, env []envDoc) string {
	var b strings.Builder
	header(&b, app, app.Name+"-"+cmd.Name, cmd.Usage)
	section(&b, "SYNOPSIS", "")
	synopsisLines(&b, synopsis(app, cmd))
	section(&b, "DESCRIPTION", "")
	// The usage line as a sentence, then the command's own text.
	paragraphs(&b, strings.ToUpper(cmd.Usage[:1])+cmd.Usage[1:]+".")
	paragraphs(&b, cmd.Description)
	section(&b, "OPTIONS", "")
	options(&b, docFlags(app, cmd))
	envSection(&b, env, cmd)
	section(&b, "SEE ALSO", `\fB`+roff(app.Name)+`\fR(8)`+"\n")
	return b.String()
}

func header(b *strings.Builder, app *cli.App, name, usage string) {
	fmt.Fprintf(b, ".TH %s 8 \"\" \"%s %s\" \"System Manager's Manual\"\n", strings.ToUpper(roff(name)), roff(app.Name), roff(app.Version))
	section(b, "NAME", roff(name)+` \- `+roff(usage)+"\n")
}

func section(b *strings.Builder, title, body string) {
	fmt.Fprintf(b, ".SH %q\n%s", title, body)
}

// synopsisLines keeps the usage lines as they are, unfilled.
func synopsisLines(b *strings.Builder, lines []string) {
	b.WriteString(".nf\n")
	for _, l := range lines {
		b.WriteString(roff(strings.TrimSpace(l)) + "\n")
	}
	b.WriteString(".fi\n")
}

// paragraphs fills text, one paragraph per run of lines between blank
// ones; lines indented in the source (examples) stay as they are.
func paragraphs(b *strings.Builder, text string) {
	for _, p := range strings.Split(strings.TrimSpace(text), "\n\n") {
		if strings.TrimSpace(p) == "" {
			continue
		}
		b.WriteString(".PP\n")
		for _, l := range strings.Split(p, "\n") {
			if l != strings.TrimLeft(l, " \t") {
				b.WriteString(".br\n")
			}
			b.WriteString(roff(l) + "\n")
		}
	}
}

func options(b *strings.Builder, flags []cli.DocGenerationFlag) {
	for _, f := range flags {
		var names []string
		for _, n := range f.Names() {
			dash := "-"
			if len(n) > 1 {
				dash = "--"
			}
			names = append(names, `\fB`+roff(dash+n)+`\fR`)
		}
		arg := ""
		if f.TakesValue() {
			arg = ` \fIvalue\fR`
		}
		text := f.GetUsage()
		if def := flagDefault(f); def != "" {
			text += " (default: " + def + ")"
		}
		if s, ok := f.(cli.DocGenerationSliceFlag); ok && s.IsSliceFlag() {
			text += "; may be given more than once"
		}
		fmt.Fprintf(b, ".TP\n%s%s\n%s\n", strings.Join(names, ", "), arg, roff(text))
	}
}

// flagDefault is the default --help shows for a flag that takes a value
// (a switch's is off).
func flagDefault(f cli.DocGenerationFlag) string {
	if !f.TakesValue() {
		return ""
	}
	return f.GetDefaultText()
}

// envSection lists the variables the app (cmd nil) or the command reads.
func envSection(b *strings.Builder, env []envDoc, cmd *cli.Command) {
	var body strings.Builder
	for _, e := range env {
		if cmd != nil && !slices.Contains(e.commands, cmd.Name) {
			continue
		}
		fmt.Fprintf(&body, ".TP\n\\fB%s\\fR\n%s\n", roff(e.name), roff(e.text))
		if len(e.values) > 0 {
			body.WriteString(".RS\n")
			for _, v := range e.values {
				fmt.Fprintf(&body, ".TP\n\\fB%s\\fR\n%s\n", roff(v[0]), roff(v[1]))
			}
			body.WriteString(".RE\n")
		}
	}
	if body.Len() > 0 {
		section(b, "ENVIRONMENT", body.String())
	}
}

// roff escapes text for a line of its own: backslashes, minus signs, and a
// control character at its start.
func roff(s string) string {
	s = strings.NewReplacer(`\`, `\e`, "-", `\-`).Replace(strings.TrimSpace(s))
	if strings.HasPrefix(s, ".") || strings.HasPrefix(s, "'") {
		s = `\&` + s
	}
	return s
}
