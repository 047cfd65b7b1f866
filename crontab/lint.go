package crontab

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"rpt/internal/jobs"
)

// Severity of a lint problem: an error makes rpt cron lint exit 2; a warning is a
// line cron runs that probably does not do what was meant.
type Severity string

const (
	SevError   Severity = "error"
	SevWarning Severity = "warning"
)

// Problem is one finding of Lint, at file:line:column.
type Problem struct {
	File      string
	Line, Col int
	Severity  Severity
	Field     string
	Msg       string
}

func (p Problem) String() string {
	e := Error{File: p.File, Line: p.Line, Col: p.Col, Field: p.Field, Msg: p.Msg}
	loc, rest, _ := strings.Cut(e.Error(), ": ")
	return loc + ": " + string(p.Severity) + ": " + rest
}

// LintOptions is what Lint checks rpt submit lines against.
type LintOptions struct {
	// Service returns the job service for the configuration a line runs with: the
	// path of its --config or RPT_CONFIG, or "" for the caller's own. nil: rpt submit
	// lines are checked for their form only. An error is reported at the line.
	Service func(configPath string) (*jobs.Service, error)
	// Now is where next-run checks start; zero: time.Now.
	Now time.Time
	// IsExecutable reports whether path is an executable file (PATH= checks);
	// nil: the file system of this host.
	IsExecutable func(path string) bool
}

// cronPath is the PATH cron gives commands when the file sets none.
const cronPath = "/usr/bin:/bin"

// LintFile parses data and lints it: syntax errors and Lint's findings, in line order.
func LintFile(name string, data []byte, def *time.Location, o LintOptions) []Problem {
	f, err := ParseIn(name, data, def)
	var out []Problem
	var es Errors
	if errors.As(err, &es) {
		for _, e := range es {
			out = append(out, Problem{File: e.File, Line: e.Line, Col: e.Col, Severity: SevError, Field: e.Field, Msg: e.Msg})
		}
	}
	out = append(out, Lint(f, o)...)
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].Line != out[j].Line {
			return out[i].Line < out[j].Line
		}
		return out[i].Col < out[j].Col
	})
	return out
}

// Lint checks what cron would run from f as cron runs it (PATH, working directory,
// '%', mail) and every rpt submit line as rpt submit would check it (jobs.Check).
func Lint(f *File, o LintOptions) []Problem {
	return lint(&linter{f: f, o: o})
}

func lint(l *linter) []Problem {
	f := l.f
	if l.o.Now.IsZero() {
		l.o.Now = time.Now()
	}
	if l.o.IsExecutable == nil {
		l.o.IsExecutable = func(p string) bool {
			st, err := os.Stat(p)
			return err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0
		}
	}
	for _, v := range f.Env {
		if v.Name == "MAILTO" && v.Value != "" {
			l.warn(v.Line, v.Col, "MAILTO", "cron mails each line's output to %s from every node that runs this file (rpt submit prints the job id): one mail per node per run; set MAILTO=\"\" and let rpt deliver results", v.Value)
		}
		if strings.Contains(v.Value, "$") {
			l.warn(v.Line, v.Col+strings.Index(v.Value, "$"), v.Name, "cron does not expand $VAR in NAME=value lines: %s is set to the text as written", v.Name)
		}
	}
	for _, e := range f.Entries {
		l.entry(e)
	}
	return l.out
}

type linter struct {
	f   *File
	o   LintOptions
	out []Problem
	// onSubmit, when set, is given each rpt submit line's request once its form is
	// valid (the runner submits what lint read).
	onSubmit func(e *Entry, req jobs.SubmitRequest)
}

func (l *linter) add(sev Severity, line, col int, field, format string, args ...any) {
	l.out = append(l.out, Problem{File: l.f.Name, Line: line, Col: col, Severity: sev, Field: field, Msg: fmt.Sprintf(format, args...)})
}

func (l *linter) warn(line, col int, field, format string, args ...any) {
	l.add(SevWarning, line, col, field, format, args...)
}

func (l *linter) entry(e *Entry) {
	if e.PercentCol > 0 {
		l.warn(e.Line, e.PercentCol, "command", "unescaped %%: cron ends the command here and gives the rest to its stdin (write \\%% for a literal %%, as in date +\\%%F)")
	}
	next := e.Schedule.Next(l.o.Now, e.Loc)
	if next.IsZero() {
		l.warn(e.Line, 1, "schedule", "%s never runs: no date has this day-of-month in these months", e.Spec)
	}
	for k, words := range e.Words {
		if len(words) == 0 || !words[0].Literal || filepath.Base(words[0].Text) != "rpt" {
			continue
		}
		l.rpt(e, words, e.Assigns[k], next)
	}
}

// Flags of rpt that take a value, global and rpt submit's; cli tests that these match
// the command line's own definitions.
var (
	GlobalValueFlags = []string{"config", "queue", "mqtt", "mqtt-prefix", "reports", "retry-for"}
	GlobalBoolFlags  = []string{"help", "h", "version", "v"}
	SubmitValueFlags = []string{"param", "p", "priority", "at", "occurrence", "dedupe", "once-per", "submit-token", "timeout", "deliver", "from", "from-format"}
	SubmitBoolFlags  = []string{"wait", "help", "h"}
)

type flagWord struct {
	name, value string
	col         int // of the value
	hasValue    bool
}

func (l *linter) rpt(e *Entry, words, assigns []Word, next time.Time) {
	exe := words[0]
	env := map[string]Word{}
	for _, v := range e.Env {
		env[v.Name] = Word{Text: v.Value, Col: v.Col, Literal: true}
	}
	for _, a := range assigns {
		if name, val, ok := strings.Cut(a.Text, "="); ok && a.Literal {
			env[name] = Word{Text: val, Col: a.Col + len(name) + 1, Literal: true}
		}
	}
	switch {
	case filepath.IsAbs(exe.Text):
	case strings.Contains(exe.Text, "/"):
		l.warn(e.Line, exe.Col, "command", "%s: a relative path; cron runs commands in HOME (give rpt's absolute path)", exe.Text)
	default:
		path, ok := env["PATH"]
		if !ok {
			l.warn(e.Line, exe.Col, "command", "rpt is not on cron's PATH (%s): give its absolute path (/usr/local/bin/rpt) or a PATH= line with its folder", cronPath)
			break
		}
		found := false
		for _, dir := range strings.Split(path.Text, ":") {
			if dir != "" && l.o.IsExecutable(filepath.Join(dir, "rpt")) {
				found = true
				break
			}
		}
		if !found {
			l.warn(e.Line, exe.Col, "command", "rpt is in no folder of PATH=%s on this host: give its absolute path", path.Text)
		}
	}

	// Global flags, then the command and its flags (rpt accepts flags after
	// positional arguments too).
	var globals, flags []flagWord
	var positional []Word
	cmd := ""
	for i := 1; i < len(words); i++ {
		w := words[i]
		if !w.Literal {
			if cmd == "submit" || cmd == "" {
				l.warn(e.Line, w.Col, "command", "%s: not checked (an expansion; lint reads words as written)", w.Raw)
			}
			continue
		}
		if w.Text == "--" {
			positional = append(positional, words[i+1:]...)
			break
		}
		if len(w.Text) > 1 && w.Text[0] == '-' {
			name, val, hasVal := strings.Cut(strings.TrimLeft(w.Text, "-"), "=")
			fw := flagWord{name: name, value: val, hasValue: hasVal, col: w.Col + len(w.Text) - len(val)}
			isGlobal := contains(GlobalValueFlags, name) || contains(GlobalBoolFlags, name)
			takes := contains(GlobalValueFlags, name)
			if cmd == "submit" && (contains(SubmitValueFlags, name) || contains(SubmitBoolFlags, name)) {
				isGlobal, takes = false, contains(SubmitValueFlags, name)
			}
			if !isGlobal && cmd == "" {
				l.add(SevError, e.Line, w.Col, "rpt", "unknown flag %s before the command (rpt --help lists the global flags)", w.Text)
				continue
			}
			if !isGlobal && cmd == "submit" && !contains(SubmitBoolFlags, name) && !contains(SubmitValueFlags, name) {
				l.add(SevError, e.Line, w.Col, "rpt submit", "unknown flag %s (rpt submit --help lists them)", w.Text)
				if !hasVal && i+1 < len(words) && !strings.HasPrefix(words[i+1].Text, "-") && len(positional) > 0 {
					i++ // most likely its value, not a second report
				}
				continue
			}
			if takes && !hasVal {
				if i+1 >= len(words) {
					l.add(SevError, e.Line, w.Col, "rpt submit", "%s needs a value", w.Text)
					continue
				}
				i++
				fw.value, fw.col, fw.hasValue = words[i].Text, words[i].Col, true
			}
			if isGlobal {
				globals = append(globals, fw)
			} else {
				flags = append(flags, fw)
			}
			continue
		}
		if cmd == "" {
			cmd = w.Text
			continue
		}
		positional = append(positional, w)
	}

	cfgPath := ""
	if v, ok := env["RPT_CONFIG"]; ok && v.Text != "" {
		cfgPath = v.Text
		if !filepath.IsAbs(v.Text) {
			l.warn(e.Line, v.Col, "RPT_CONFIG", "%s: a relative path; cron runs commands in HOME (give an absolute path)", v.Text)
		}
	}
	for _, g := range globals {
		if g.name == "config" {
			cfgPath = g.value
			if !filepath.IsAbs(g.value) {
				l.warn(e.Line, g.col, "--config", "%s: a relative path; cron runs commands in HOME (give an absolute path)", g.value)
			}
		}
	}
	if cfgPath == "" && cmd != "version" {
		l.warn(e.Line, exe.Col, "command", "no --config or RPT_CONFIG: cron runs commands in HOME, where ./rpt.yaml is not found, so rpt runs with its defaults (add RPT_CONFIG=/etc/rpt/rpt.yaml above this line)")
	}
	if cmd != "submit" {
		return
	}
	l.submit(e, exe, flags, positional, cfgPath, next)
}

func (l *linter) submit(e *Entry, exe Word, flags []flagWord, positional []Word, cfgPath string, next time.Time) {
	if len(positional) != 1 {
		col := exe.Col
		if len(positional) > 1 {
			col = positional[1].Col
		}
		l.add(SevError, e.Line, col, "rpt submit", "want one REPORT, got %d", len(positional))
		return
	}
	report := positional[0]
	req := jobs.SubmitRequest{Report: report.Text, Params: map[string]string{}, Occurrence: next}
	paramCol := map[string]int{}
	deliverCol := 0
	ok := true
	oncePerGiven := false
	var from *flagWord
	bad := func(f flagWord, format string, args ...any) {
		name := "--" + f.name
		if len(f.name) == 1 {
			name = "-" + f.name
		}
		l.add(SevError, e.Line, f.col, name, format, args...)
		ok = false
	}
	for _, f := range flags {
		switch f.name {
		case "p", "param":
			name, value, found := strings.Cut(f.value, "=")
			name = strings.TrimSpace(name)
			if !found || name == "" {
				bad(f, "%q: want name=value", f.value)
				continue
			}
			if _, dup := req.Params[name]; dup {
				bad(f, "%s: given twice", name)
				continue
			}
			req.Params[name], paramCol[name] = value, f.col
		case "once-per":
			oncePerGiven = true
			d, err := time.ParseDuration(f.value)
			if err != nil {
				bad(f, "%q: not a duration (1h, 24h, 168h)", f.value)
				continue
			}
			req.OncePer = d
			l.oncePer(e, f, d)
		case "dedupe":
			req.Dedupe = f.value
		case "from":
			from = &f
		case "deliver":
			req.Deliver = append(req.Deliver, f.value)
			req.DeliverField = "--deliver"
			if deliverCol == 0 {
				deliverCol = f.col
			}
		case "priority":
			n, err := strconv.Atoi(f.value)
			if err != nil {
				bad(f, "%q: not a number", f.value)
				continue
			}
			req.Priority = n
		case "timeout":
			if _, err := time.ParseDuration(f.value); err != nil {
				bad(f, "%q: not a duration", f.value)
			}
		}
	}
	if !oncePerGiven && req.Dedupe == "" {
		l.warn(e.Line, report.Col, "rpt submit", "no --once-per or --dedupe: each node that runs this file queues its own job (add --once-per 1h)")
	}
	if from != nil {
		// The parameter sets are in a file read when the line runs (relative to
		// cron's working directory); the submit checks them all before queuing any.
		l.warn(e.Line, from.col, "--from", "the parameter sets in %q are checked when the line runs, not by lint (rpt submit --from checks every set before queuing any)", from.value)
		return
	}
	if ok && l.onSubmit != nil {
		l.onSubmit(e, req)
	}
	if !ok || l.o.Service == nil {
		return
	}
	svc, err := l.o.Service(cfgPath)
	if err != nil {
		l.add(SevError, e.Line, exe.Col, "rpt submit", "%v", err)
		return
	}
	if req.Occurrence.IsZero() {
		req.Occurrence = l.o.Now
	}
	for _, msg := range splitErr(svc.Check(req)) {
		col := report.Col
		if deliverCol > 0 && strings.HasPrefix(msg, "--deliver") {
			col = deliverCol
		}
		for name, c := range paramCol {
			if strings.Contains(msg, fmt.Sprintf("param %q", name)) {
				col = c
			}
		}
		l.add(SevError, e.Line, col, "rpt submit", "%s", msg)
	}
}

// oncePer warns when the bucket is longer than the time between two runs of the line:
// the second run in a bucket would be taken for the first and not queued.
func (l *linter) oncePer(e *Entry, f flagWord, d time.Duration) {
	at := l.o.Now
	var prev time.Time
	for range 50 {
		next := e.Schedule.Next(at, e.Loc)
		if next.IsZero() {
			return
		}
		if !prev.IsZero() {
			if a, b := prev.UTC().Truncate(d), next.UTC().Truncate(d); a.Equal(b) {
				l.warn(e.Line, f.col, "--once-per", "%s is longer than the time between runs (%s and %s fall in one bucket): the second is not queued",
					f.value, prev.In(e.Loc).Format("Mon 15:04"), next.In(e.Loc).Format("Mon 15:04 MST"))
				return
			}
		}
		prev, at = next, next
	}
}

func splitErr(err error) []string {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []string
		for _, e := range j.Unwrap() {
			out = append(out, splitErr(e)...)
		}
		return out
	}
	return strings.Split(err.Error(), "\n")
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
