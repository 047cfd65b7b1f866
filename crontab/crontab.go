// Package crontab reads plain crontab files (the five-field format of crontab -e and
// Vixie cron: names, ranges, steps, lists, @-macros, NAME=value lines, '%' as stdin)
// with errors that name file:line:column and the field, computes next runs in a time
// zone with a stated daylight-saving rule, and checks the lines that run rpt submit.
// Only cli imports it; see ARCHITECTURE.md, "Packages".
package crontab

import (
	"fmt"
	"strings"
	"time"

	"rpt/internal/errclass"
	"rpt/internal/inputfile"
)

// File is a parsed crontab.
type File struct {
	Name    string
	Entries []*Entry
	// Env is every NAME=value line, in order.
	Env []EnvVar
}

// EnvVar is a NAME=value line. Cron does not expand $VAR in it.
type EnvVar struct {
	Name, Value string
	Line, Col   int // where the value starts
}

// Entry is a schedule line.
type Entry struct {
	Line     int
	Spec     string // the five fields or the @-macro, as written
	Schedule *Schedule
	// Loc is the zone the fields are read in: CRON_TZ, else TZ, from the lines above,
	// else the default given to Parse (cron's own zone).
	Loc *time.Location
	// Env is the environment lines above this one (cron gives each command those
	// read before it), in order.
	Env []EnvVar
	// Command is what /bin/sh -c runs: the text up to the first unescaped '%', with
	// "\%" made '%'. Stdin is the rest, each further unescaped '%' made a newline.
	Command    string
	CommandCol int
	Stdin      string
	PercentCol int // column of the '%' that ends the command; 0 if none
	// Words is the command's shell words (simple commands only, in order), with
	// their columns on the line.
	Words [][]Word
	// Assigns is the NAME=value prefixes of each of Words' commands.
	Assigns [][]Word
	colMap  []int // Command byte offset -> column on the line
}

// Word is one shell word of the command.
type Word struct {
	Text string // its value after quote removal; "" when Literal is false
	Raw  string // as written
	Col  int
	// Literal: the word has no expansions ($VAR, $(...), globs), so Text is exact.
	Literal bool
}

// Getenv is the value of a file environment line above e ("" and false if none).
func (e *Entry) Getenv(name string) (EnvVar, bool) {
	for i := len(e.Env) - 1; i >= 0; i-- {
		if e.Env[i].Name == name {
			return e.Env[i], true
		}
	}
	return EnvVar{}, false
}

// Error is a problem at a place in a crontab file. It is class invalid (exit 2).
type Error struct {
	File      string
	Line, Col int
	Field     string // minute, hour, ..., command, environment; may be empty
	Msg       string
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
		if e.Col > 0 {
			fmt.Fprintf(&b, ":%d", e.Col)
		}
	}
	b.WriteString(": ")
	if e.Field != "" {
		b.WriteString(e.Field + ": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// errInvalid gives crontab errors the class invalid input (exit 2) through the chain
// errclass.Of reads.
var errInvalid = errclass.New(errclass.Invalid, "invalid crontab")

// Unwrap makes every Error invalid input (exit 2).
func (e *Error) Unwrap() error { return errInvalid }

// Errors is every syntax problem of a file, in line order.
type Errors []*Error

func (es Errors) Error() string {
	parts := make([]string, len(es))
	for i, e := range es {
		parts[i] = e.Error()
	}
	return strings.Join(parts, "\n")
}

// Unwrap makes Errors invalid input (exit 2).
func (es Errors) Unwrap() error { return errInvalid }

// MaxFileSize is the largest crontab accepted; real ones are a few KiB.
const MaxFileSize = 1 << 20

// MaxLine is the longest line accepted (Vixie cron's own limit is lower still).
const MaxLine = 8192

// ReadFile reads a crontab without trusting it (internal/inputfile): a FIFO or device
// is refused without being read, and a file over MaxFileSize without reading it whole.
// Every refusal is invalid input (exit 2).
func ReadFile(path string) ([]byte, error) {
	data, err := inputfile.Read(path, MaxFileSize, "a crontab")
	if err != nil {
		return nil, errclass.Wrap(errclass.Invalid, err)
	}
	return data, nil
}

// Load reads and parses a crontab file; see ReadFile and Parse.
func Load(path string, def *time.Location) (*File, error) {
	data, err := ReadFile(path)
	if err != nil {
		return nil, err
	}
	return ParseIn(path, data, def)
}

// Parse reads a crontab with the fields in UTC unless CRON_TZ or TZ says otherwise.
func Parse(name string, data []byte) (*File, error) { return ParseIn(name, data, time.UTC) }

// ParseIn reads a crontab; def is the zone of lines no CRON_TZ or TZ line precedes
// (cron's own zone, usually the host's). Every problem is returned, as Errors.
func ParseIn(name string, data []byte, def *time.Location) (*File, error) {
	if def == nil {
		def = time.UTC
	}
	p := &parser{f: &File{Name: name}, loc: def}
	text := string(data)
	lines := strings.Split(text, "\n")
	if strings.HasSuffix(text, "\n") {
		lines = lines[:len(lines)-1]
	}
	for i, line := range lines {
		p.line(i+1, strings.TrimSuffix(line, "\r"))
	}
	if len(p.errs) > 0 {
		return p.f, p.errs
	}
	return p.f, nil
}

type parser struct {
	f    *File
	errs Errors
	loc  *time.Location
	zone *EnvVar // the CRON_TZ or TZ line in force
}

func (p *parser) errorf(line, col int, field, format string, args ...any) {
	p.errs = append(p.errs, &Error{File: p.f.Name, Line: line, Col: col, Field: field, Msg: fmt.Sprintf(format, args...)})
}

func isBlank(c byte) bool { return c == ' ' || c == '\t' }

func (p *parser) line(n int, s string) {
	if len(s) > MaxLine {
		p.errorf(n, MaxLine+1, "", "line longer than %d bytes", MaxLine)
		return
	}
	if strings.IndexByte(s, 0) >= 0 {
		p.errorf(n, strings.IndexByte(s, 0)+1, "", "NUL byte: not a text file")
		return
	}
	i := 0
	for i < len(s) && isBlank(s[i]) {
		i++
	}
	if i == len(s) || s[i] == '#' {
		return
	}
	c := s[i]
	if c == '@' || c == '*' || (c >= '0' && c <= '9') {
		p.entry(n, s, i)
		return
	}
	if p.env(n, s, i) {
		return
	}
	if isNameStart(c) && looksLikeMonthOrDay(s[i:]) {
		p.errorf(n, i+1, "minute", "%q is not a number (names are allowed in month and day-of-week only)", word(s[i:]))
		return
	}
	p.errorf(n, i+1, "", "want five schedule fields and a command, an @-macro (@daily ...), NAME=value or a # comment")
}

func word(s string) string {
	j := 0
	for j < len(s) && !isBlank(s[j]) {
		j++
	}
	return s[:j]
}

func looksLikeMonthOrDay(s string) bool {
	w := strings.ToLower(word(s))
	if len(w) < 3 {
		return false
	}
	for _, f := range fields[3:] {
		for _, name := range f.names {
			if strings.HasPrefix(w, name) {
				return true
			}
		}
	}
	return false
}

func isNameStart(c byte) bool { return c == '_' || (c|0x20 >= 'a' && c|0x20 <= 'z') }

func isNameChar(c byte) bool { return isNameStart(c) || (c >= '0' && c <= '9') }

// env reads NAME=value (blanks allowed around '='; a value in matching single or
// double quotes loses them), as Vixie cron's load_env does.
func (p *parser) env(n int, s string, i int) bool {
	j := i
	for j < len(s) && isNameChar(s[j]) {
		j++
	}
	name := s[i:j]
	k := j
	for k < len(s) && isBlank(s[k]) {
		k++
	}
	if k == len(s) || s[k] != '=' {
		return false
	}
	k++
	for k < len(s) && isBlank(s[k]) {
		k++
	}
	col := k + 1
	val := strings.TrimRight(s[k:], " \t")
	if len(val) >= 2 && (val[0] == '"' || val[0] == '\'') && val[len(val)-1] == val[0] {
		val = val[1 : len(val)-1]
	} else if len(val) > 0 && (val[0] == '"' || val[0] == '\'') {
		p.errorf(n, col, name, "quote %c is not closed", val[0])
		return true
	}
	v := EnvVar{Name: name, Value: val, Line: n, Col: col}
	if name == "CRON_TZ" || name == "TZ" {
		if name == "TZ" && p.zone != nil && p.zone.Name == "CRON_TZ" {
			// CRON_TZ wins over TZ for the schedule; TZ still reaches commands.
		} else if val == "" {
			p.zone = nil
		} else if loc, err := time.LoadLocation(val); err != nil || strings.HasPrefix(val, ":") {
			p.errorf(n, col, name, "unknown time zone %q (want an IANA name such as America/Indiana/Indianapolis)", val)
		} else {
			p.loc = loc
			p.zone = &v
		}
	}
	p.f.Env = append(p.f.Env, v)
	return true
}

// entry reads a schedule line starting at byte i.
func (p *parser) entry(n int, s string, i int) {
	start := i
	var spec string
	var texts [5]string
	var cols [5]int
	if s[i] == '@' {
		w := word(s[i:])
		macro, ok := macros[strings.ToLower(w)]
		switch {
		case strings.EqualFold(w, "@reboot"):
			p.errorf(n, i+1, "schedule", "@reboot is not supported: rpt cron schedules by the clock, and a node's boot is no occurrence (use the init system)")
			return
		case !ok:
			p.errorf(n, i+1, "schedule", "unknown macro %q (want @hourly, @daily, @midnight, @weekly, @monthly, @yearly or @annually)", w)
			return
		}
		spec = w
		for k, t := range strings.Fields(macro) {
			texts[k], cols[k] = t, i+1
		}
		i += len(w)
	} else {
		for k := 0; k < 5; k++ {
			for i < len(s) && isBlank(s[i]) {
				i++
			}
			if i == len(s) {
				if k == 0 {
					p.errorf(n, i+1, fields[k].name, "missing")
				} else {
					p.errorf(n, i+1, fields[k].name, "missing (a line has five fields: minute hour day-of-month month day-of-week, then the command)")
				}
				return
			}
			texts[k], cols[k] = word(s[i:]), i+1
			i += len(texts[k])
		}
		spec = s[start:i]
	}
	sch := &Schedule{DomStar: texts[2][0] == '*', DowStar: texts[4][0] == '*'}
	dst := [5]*uint64{&sch.Minute, &sch.Hour, &sch.Dom, &sch.Month, &sch.Dow}
	bad := false
	for k := range texts {
		bits, ferr := parseField(fields[k], texts[k])
		if ferr != nil {
			col := cols[k] + ferr.off
			if spec[0] == '@' {
				col = cols[k]
			}
			p.errorf(n, col, fields[k].name, "%s", ferr.msg)
			bad = true
			continue
		}
		*dst[k] = bits
	}
	if bad {
		return
	}
	if i < len(s) && !isBlank(s[i]) {
		p.errorf(n, i+1, "schedule", "%q: want a blank between the schedule and the command", word(s[i:]))
		return
	}
	for i < len(s) && isBlank(s[i]) {
		i++
	}
	if i == len(s) {
		p.errorf(n, i+1, "command", "missing: a schedule line needs a command after its five fields")
		return
	}
	e := &Entry{Line: n, Spec: spec, Schedule: sch, Loc: p.loc, Env: append([]EnvVar(nil), p.f.Env...), CommandCol: i + 1}
	e.splitPercent(s[i:], i+1)
	if err := e.parseWords(); err != nil {
		msg := err.msg
		if e.PercentCol > 0 {
			msg += fmt.Sprintf(" (the unescaped %% at column %d ended the command: write \\%% for a literal %%)", e.PercentCol)
		}
		p.errs = append(p.errs, &Error{File: p.f.Name, Line: n, Col: err.col, Field: "command", Msg: msg})
		return
	}
	p.f.Entries = append(p.f.Entries, e)
}

// splitPercent applies cron's '%' rule to the command text starting at column col:
// "\%" is a literal '%'; the first unescaped '%' ends the command and the rest is its
// stdin, with each further unescaped '%' a newline.
func (e *Entry) splitPercent(s string, col int) {
	var cmd, in strings.Builder
	out := &cmd
	for k := 0; k < len(s); k++ {
		c := s[k]
		if c == '\\' && k+1 < len(s) && s[k+1] == '%' {
			if out == &cmd {
				e.colMap = append(e.colMap, col+k)
			}
			out.WriteByte('%')
			k++
			continue
		}
		if c == '%' {
			if out == &cmd {
				e.PercentCol = col + k
				out = &in
			} else {
				in.WriteByte('\n')
			}
			continue
		}
		if out == &cmd {
			e.colMap = append(e.colMap, col+k)
		}
		out.WriteByte(c)
	}
	e.colMap = append(e.colMap, col+len(s))
	e.Command, e.Stdin = cmd.String(), in.String()
}

// ColAt is the column on the line of byte offset off of Command.
func (e *Entry) ColAt(off int) int {
	if off < 0 {
		off = 0
	}
	if off >= len(e.colMap) {
		return e.colMap[len(e.colMap)-1]
	}
	return e.colMap[off]
}
