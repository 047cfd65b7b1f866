package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	ucli "github.com/urfave/cli/v2"
)

// completeArg is the hidden first argument the shell scripts of rpt completion call
// rpt with: `rpt __complete WORD... CURRENT` prints the candidates for CURRENT, one a
// line. It is answered before the command line is parsed (the words are half-typed).
const completeArg = "__complete"

func completionCommand(d *Deps) *ucli.Command {
	return &ucli.Command{
		Name:      "completion",
		Usage:     "print the shell completion script for bash, zsh or fish (commands, flags, reports, -p parameters and their values, -o formats, job ids)",
		ArgsUsage: "bash|zsh|fish",
		Action: func(c *ucli.Context) error {
			if c.NArg() != 1 {
				return usagef("completion: want one shell: bash, zsh or fish")
			}
			s, ok := completionScripts[c.Args().First()]
			if !ok {
				return usagef("completion: unknown shell %q (want bash, zsh or fish)", c.Args().First())
			}
			_, err := io.WriteString(d.Stdout, s)
			return err
		},
	}
}

var completionScripts = map[string]string{
	// COMP_WORDBREAKS splits name=value at "=", so a parameter name is its own word.
	"bash": `# rpt completion for bash: source <(rpt completion bash)
_rpt() {
    local IFS=$'\n'
    COMPREPLY=($(rpt ` + completeArg + ` "${COMP_WORDS[@]:1:COMP_CWORD}" 2>/dev/null))
    [[ ${#COMPREPLY[@]} -eq 1 && ${COMPREPLY[0]} == *= ]] && compopt -o nospace
}
complete -F _rpt rpt
`,
	"zsh": `#compdef rpt
# rpt completion for zsh: rpt completion zsh > "${fpath[1]}/_rpt" (then compinit)
_rpt() {
    local -a c eq
    local ret=1
    c=("${(@f)$(rpt ` + completeArg + ` "${(@)words[2,CURRENT]}" 2>/dev/null)}")
    eq=(${(M)c:#*=})
    c=(${c:#*=})
    (( ${#c} )) && compadd -- "${c[@]}" && ret=0
    (( ${#eq} )) && compadd -S '' -- "${eq[@]}" && ret=0
    return ret
}
compdef _rpt rpt
`,
	"fish": `# rpt completion for fish: rpt completion fish > ~/.config/fish/completions/rpt.fish
complete -c rpt -f -a '(rpt ` + completeArg + ` (commandline -opc)[2..-1] (commandline -ct))'
`,
}

// complete writes the candidates for the last of words (what is typed so far) after
// the ones before it: subcommands, flags, report names, parameter names after -p
// (as name=), job ids where a command takes an ID. It never fails: a queue or
// catalogue that cannot be read just completes nothing.
func complete(ctx context.Context, d Deps, words []string) {
	if len(words) == 0 {
		words = []string{""}
	}
	cur, before := words[len(words)-1], words[:len(words)-1]
	app := NewApp(&d)
	cmds, flags := app.Commands, app.Flags
	var path []string
	var cmd *ucli.Command
	var pos []string
	var global []string // global flags with their values, for the queue and catalogue
	for i := 0; i < len(before); i++ {
		w := before[i]
		if isFlag(w) {
			fl := flags
			if hasFlag(app.Flags, w) && (cmd == nil || !hasFlag(cmd.Flags, w)) {
				global = append(global, w)
				if takesValue(app.Flags, w) && i+1 < len(before) {
					global = append(global, before[i+1])
					i++
				}
				continue
			}
			if takesValue(fl, w) && !strings.Contains(w, "=") {
				i++ // its value
				if i+1 < len(before) && before[i+1] == "=" {
					i += 2 // bash splits -p name=value at the =: name, "=", value
				}
			}
			continue
		}
		if len(pos) == 0 {
			if c := findCommand(cmds, w); c != nil {
				cmd, path, cmds, flags = c, append(path, w), c.Subcommands, c.Flags
				continue
			}
		}
		pos = append(pos, w)
	}
	var out []string
	prev := ""
	if len(before) > 0 {
		prev = before[len(before)-1]
	}
	name := strings.Join(path, " ")
	report := ""
	if len(pos) > 0 {
		report = pos[0]
	}
	if i := slices.Index(before, "--latest"); i >= 0 && i+1 < len(before) {
		report = before[i+1]
	}
	// A parameter's value: zsh and fish pass -p name=val as one word; bash splits it
	// at the = (COMP_WORDBREAKS) into name, "=", val, and while nothing follows the =
	// it is the current word, though readline replaces only what follows it.
	isParam := func(w string) bool { return w == "-p" || w == "--param" }
	pname, pcur, pprefix := "", "", ""
	switch {
	case isParam(prev) && strings.Contains(cur, "="):
		pname, pcur, _ = strings.Cut(cur, "=")
		pprefix = pname + "="
		cur = pprefix + pcur
	case len(before) >= 2 && isParam(before[len(before)-2]) && cur == "=":
		pname, cur = before[len(before)-1], ""
	case len(before) >= 3 && isParam(before[len(before)-3]) && prev == "=":
		pname = before[len(before)-2]
	}
	switch {
	case pname != "":
		for _, v := range paramValues(ctx, d, global, report, pname) {
			out = append(out, pprefix+v)
		}
	case isParam(prev):
		for _, r := range listReports(ctx, d, global) {
			if r.Name == report {
				for _, p := range r.Params {
					out = append(out, p+"=")
				}
			}
		}
	case isFlag(prev) && flagChoicesOf(append(slices.Clone(flags), app.Flags...), prev) != nil:
		out = flagChoicesOf(append(slices.Clone(flags), app.Flags...), prev)
	case prev == "--report" || prev == "--latest" || (prev == "report" && (name == "pause" || name == "resume")):
		for _, r := range listReports(ctx, d, global) {
			out = append(out, r.Name)
		}
	case isFlag(prev) && takesValue(flags, prev) && !strings.Contains(prev, "="):
		// A value of a kind not worth guessing (a time, a file): the shell's own.
	case strings.HasPrefix(cur, "-"):
		for _, f := range append(slices.Clone(flags), app.Flags...) {
			for _, n := range f.Names() {
				if len(n) > 1 {
					out = append(out, "--"+n)
				}
			}
		}
	case len(cmds) > 0 && len(pos) == 0:
		for _, c := range cmds {
			if !c.Hidden {
				out = append(out, c.Name)
			}
		}
	case len(pos) == 0 && (name == "submit" || name == "reports show" || name == "reports run" || name == "reports publish"):
		for _, r := range listReports(ctx, d, global) {
			out = append(out, r.Name)
		}
	case cmd != nil && strings.Contains(cmd.ArgsUsage, "ID"):
		out = jobIDs(ctx, d, global)
	}
	for _, o := range out {
		if strings.HasPrefix(o, cur) {
			fmt.Fprintln(d.Stdout, o)
		}
	}
}

type reportNames struct {
	Name   string   `json:"name"`
	Params []string `json:"params"`
}

// runQuiet runs rpt with args (after the global flags typed), its output captured,
// its errors dropped, for at most two seconds: completion must not hang on a queue
// that does not answer.
func runQuiet(ctx context.Context, d Deps, global []string, args ...string) []byte {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	var out bytes.Buffer
	d.Stdout, d.Stderr, d.StdoutTTY, d.StderrTTY = &out, io.Discard, false, false
	argv := append(append([]string{"rpt", "--retry-for", "0"}, global...), args...)
	if ExitCode(NewApp(&d).RunContext(ctx, argv)) != ExitOK {
		return nil
	}
	return out.Bytes()
}

func listReports(ctx context.Context, d Deps, global []string) []reportNames {
	var rs []reportNames
	_ = json.Unmarshal(runQuiet(ctx, d, global, "reports", "list", "-o", "json"), &rs)
	return rs
}

func jobIDs(ctx context.Context, d Deps, global []string) []string {
	var ids []string
	lines := strings.Split(string(runQuiet(ctx, d, global, "jobs", "list", "-o", "tsv", "--limit", "50")), "\n")
	for _, line := range lines[min(1, len(lines)):] { // after the header
		if id, _, ok := strings.Cut(line, "\t"); ok {
			ids = append(ids, id)
		}
	}
	return ids
}

// flagChoicesOf is the values flag a (as typed) lists in its usage: -o's formats.
func flagChoicesOf(flags []ucli.Flag, a string) []string {
	name := strings.TrimLeft(a, "-")
	for _, f := range flags {
		if slices.Contains(f.Names(), name) {
			return flagChoices(f)
		}
	}
	return nil
}

// paramValues suggests values for parameter name of report: its default as written,
// an enum's values, true and false, and for dates and periods the relative words with
// the day or month they stand for today.
func paramValues(ctx context.Context, d Deps, global []string, report, name string) []string {
	var def definitionView
	if report == "" || json.Unmarshal(runQuiet(ctx, d, global, "reports", "show", "-o", "json", report), &def) != nil {
		return nil
	}
	var out []string
	add := func(vs ...string) {
		for _, v := range vs {
			if v != "" && !slices.Contains(out, v) {
				out = append(out, v)
			}
		}
	}
	now := d.Now()
	for _, p := range def.Params {
		if p.Name != name {
			continue
		}
		if p.Default != nil {
			add(*p.Default)
		}
		switch strings.TrimPrefix(strings.TrimSuffix(p.Type, ">"), "list<") {
		case "enum":
			add(p.Values...)
		case "bool":
			add("true", "false")
		case "period":
			first := time.Date(now.Year(), now.Month(), 1, 0, 0, 0, 0, time.UTC)
			add("last-month", "this-month", "-12m", first.AddDate(0, -1, 0).Format("200601"), first.Format("200601"))
		case "date":
			add("yesterday", "today", "-7d", now.AddDate(0, 0, -1).Format("2006-01-02"), now.Format("2006-01-02"))
		}
	}
	return out
}
