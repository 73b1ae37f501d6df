//go:build containerfd_gendocs

package main

import (
	"fmt"
	"strings"

	"github.com/urfave/cli/v2"
)

// The completions are static scripts written from the app's definitions at
// build time rather than urfave's --generate-bash-completion, which would
// run the binary at every TAB and put a hidden flag into every command of
// the normal binary (where runc callers pass arguments through). The
// scripts run the binary only for container ids (list -q), with the --root
// given on the line.

// bashCompletion needs nothing but bash (no bash-completion helpers):
// `complete -o default` gives file names wherever it has nothing better,
// after a flag that takes a value and after a command's first argument.
func bashCompletion(app *cli.App) string {
	var b strings.Builder
	fmt.Fprintf(&b, `# bash completion for %[1]s, written by make man from the commands'
# definitions. Container ids come from '%[1]s [--root DIR] list -q'.
_%[1]s() {
	local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD-1]}
	local cmd= cmdi= root= i w
	COMPREPLY=()
	# The command is the first word after the global flags and their values;
	# bash splits --root=DIR into --root, = and DIR.
	for ((i = 1; i < COMP_CWORD; i++)); do
		w=${COMP_WORDS[i]}
		case $w in
		%[2]s)
			[[ ${COMP_WORDS[i+1]} == = ]] && ((i++))
			[[ $w == --root ]] && root=${COMP_WORDS[i+1]}
			((i++)) ;;
		-*) ;;
		*) cmd=$w cmdi=$i; break ;;
		esac
	done
	if [[ -z $cmd ]]; then
		case $prev in
		%[2]s) return ;;
		=) case ${COMP_WORDS[COMP_CWORD-2]} in %[2]s) return ;; esac ;;
		esac
		if [[ $cur == -* ]]; then
			COMPREPLY=($(compgen -W '%[3]s' -- "$cur"))
		else
			COMPREPLY=($(compgen -W '%[4]s' -- "$cur"))
		fi
		return
	fi
	local flags values ids=0
	case $cmd in
`, app.Name, strings.Join(valueFlagNames(docFlags(app, nil)), "|"),
		strings.Join(flagNames(docFlags(app, nil)), " "), strings.Join(commandNames(app), " "))
	for _, cmd := range docCommands(app) {
		flags := docFlags(app, cmd)
		ids := 0
		if takesContainerID(cmd) {
			ids = 1
		}
		fmt.Fprintf(&b, "\t%s)\n\t\tflags='%s'\n\t\tvalues=' %s '\n\t\tids=%d ;;\n",
			strings.Join(append([]string{cmd.Name}, cmd.Aliases...), "|"),
			strings.Join(flagNames(flags), " "), strings.Join(valueFlagNames(flags), " "), ids)
	}
	fmt.Fprintf(&b, `	*) return ;;
	esac
	[[ $values == *" $prev "* || ($prev == = && $values == *" ${COMP_WORDS[COMP_CWORD-2]} "*) ]] && return
	if [[ $cur == -* ]]; then
		COMPREPLY=($(compgen -W "$flags" -- "$cur"))
		return
	fi
	((ids)) || return
	# An id only as the command's first argument.
	for ((i = cmdi + 1; i < COMP_CWORD; i++)); do
		w=${COMP_WORDS[i]}
		if [[ $values == *" $w "* ]]; then
			[[ ${COMP_WORDS[i+1]} == = ]] && ((i++))
			((i++))
		elif [[ $w != -* && $w != = ]]; then
			return
		fi
	done
	local prog=${COMP_WORDS[0]/#\~/$HOME}
	COMPREPLY=($(compgen -W "$("$prog" ${root:+--root "${root/#\~/$HOME}"} list -q 2>/dev/null)" -- "$cur"))
}
complete -o default -F _%[1]s %[1]s
`, app.Name)
	return b.String()
}

// zshCompletion is a compsys function (_containerfd in an fpath directory).
func zshCompletion(app *cli.App) string {
	var b strings.Builder
	fmt.Fprintf(&b, `#compdef %[1]s
# zsh completion for %[1]s, written by make man from the commands'
# definitions. Container ids come from '%[1]s [--root DIR] list -q'.

_%[1]s_ids() {
	local -a ids
	ids=(${(f)"$(_call_program container-ids ${(q)prog} ${root:+--root ${(q)root}} list -q 2>/dev/null)"})
	_describe -t container-ids 'container id' ids
}

_%[1]s() {
	local curcontext=$curcontext state line prog=$words[1] root
	typeset -A opt_args
	_arguments -C \
`, app.Name)
	for _, s := range zshFlagSpecs(docFlags(app, nil)) {
		fmt.Fprintf(&b, "\t\t%s \\\n", s)
	}
	fmt.Fprintf(&b, `		'1:command:->command' \
		'*::argument:->argument' && return
	root=${opt_args[--root]}
	case $state in
	command)
		local -a commands=(
`)
	for _, cmd := range docCommands(app) {
		for _, n := range append([]string{cmd.Name}, cmd.Aliases...) {
			fmt.Fprintf(&b, "\t\t\t%s\n", zshQuote(n+":"+cmd.Usage))
		}
	}
	b.WriteString("\t\t)\n\t\t_describe -t commands command commands ;;\n\targument)\n\t\tcase $words[1] in\n")
	for _, cmd := range docCommands(app) {
		fmt.Fprintf(&b, "\t\t%s)\n\t\t\t_arguments \\\n", strings.Join(append([]string{cmd.Name}, cmd.Aliases...), "|"))
		for _, s := range zshFlagSpecs(docFlags(app, cmd)) {
			fmt.Fprintf(&b, "\t\t\t\t%s \\\n", s)
		}
		if takesContainerID(cmd) {
			b.WriteString("\t\t\t\t'1:container id:_" + app.Name + "_ids' \\\n")
		}
		b.WriteString("\t\t\t\t'*:argument:_files' ;;\n")
	}
	fmt.Fprintf(&b, "\t\tesac ;;\n\tesac\n}\n\n_%s \"$@\"\n", app.Name)
	return b.String()
}

// zshFlagSpecs are _arguments specs: the names of a flag exclude each
// other, a slice flag may repeat, a value is a file by default.
func zshFlagSpecs(flags []cli.DocGenerationFlag) []string {
	var specs []string
	for _, f := range flags {
		names := dashed(f.Names())
		excl := "(" + strings.Join(names, " ") + ")"
		if s, ok := f.(cli.DocGenerationSliceFlag); ok && s.IsSliceFlag() {
			excl = "*"
		}
		for _, n := range names {
			spec := excl + n
			if f.TakesValue() {
				if strings.HasPrefix(n, "--") {
					spec += "="
				} else {
					spec += "+"
				}
			}
			spec += "[" + zshEscape(f.GetUsage()) + "]"
			if f.TakesValue() {
				spec += ":value:_files"
			}
			specs = append(specs, zshQuote(spec))
		}
	}
	return specs
}

func commandNames(app *cli.App) []string {
	var names []string
	for _, cmd := range docCommands(app) {
		names = append(names, cmd.Name)
		names = append(names, cmd.Aliases...)
	}
	return names
}

func flagNames(flags []cli.DocGenerationFlag) []string {
	var names []string
	for _, f := range flags {
		names = append(names, dashed(f.Names())...)
	}
	return names
}

func valueFlagNames(flags []cli.DocGenerationFlag) []string {
	var names []string
	for _, f := range flags {
		if f.TakesValue() {
			names = append(names, dashed(f.Names())...)
		}
	}
	return names
}

// dashed gives names their dashes as typed: -b, --bundle.
func dashed(names []string) []string {
	out := make([]string, len(names))
	for i, n := range names {
		if len(n) == 1 {
			out[i] = "-" + n
		} else {
			out[i] = "--" + n
		}
	}
	return out
}

// zshEscape escapes what ends an option's description in _arguments.
func zshEscape(s string) string {
	return strings.NewReplacer(`\`, `\\`, `[`, `\[`, `]`, `\]`, `:`, `\:`).Replace(s)
}

func zshQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }
