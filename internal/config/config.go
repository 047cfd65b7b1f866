// Package config loads rpt.yaml: where the queue and broker are, the time zone that
// relative dates resolve in, extra report folders, the named data sources, retention and
// the agent's settings. Decoding is strict (an unknown key is an error naming file:line)
// and ${VAR} is expanded from the environment, so secrets stay out of the file. Flags
// and RPT_* environment variables are applied on top by the CLI, not here.
package config

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	_ "time/tzdata" // containers often lack /usr/share/zoneinfo; timezone: must still load
	"unicode/utf8"

	"gopkg.in/yaml.v3"

	"rpt/internal/didyoumean"
	"rpt/internal/dsn"
	"rpt/internal/source"
)

// ErrInvalid marks every configuration error (exit code 2).
var ErrInvalid = errors.New("invalid configuration")

// Defaults applied when rpt.yaml leaves a value out.
const (
	DefaultResultsRetention = 7 * 24 * time.Hour
	DefaultJobsRetention    = 90 * 24 * time.Hour
)

// ResultStores are the values results: may take: "queue" keeps results in the queue
// database (the default).
var ResultStores = []string{"queue"}

// Drivers are the source drivers a sources: entry may name.
var Drivers = []string{"sqlite", "mysql", "sqlserver", "plexws", "odbc"}

// Config is a parsed rpt.yaml. Zero values mean "not set": the CLI fills them from
// flags, the environment or its defaults.
type Config struct {
	File     string // the file it was read from
	Queue    string // mysql://... or sqlite:PATH
	MQTT     string // tcp://host:port
	Timezone string // IANA name; empty: the machine's local zone
	// Reports are extra definition folders; relative paths are resolved against the
	// config file's folder, so a config works from any working directory.
	Reports     []string
	Sources     map[string]source.Config
	Retention   Retention
	Agent       Agent
	LegacyTopic string // optional "<node>-report-complete" style completion topic
	// Results names the store new results are written to; "" or "queue": the queue
	// database. Jobs record the store they used, so changing it orphans nothing.
	Results string

	loc *time.Location
}

// Retention says how long results and finished jobs are kept.
type Retention struct {
	Results time.Duration // default 7 days
	Jobs    time.Duration // default 90 days
}

// Agent is the agent: block. Zero values mean the agent's defaults.
type Agent struct {
	Name        string
	Concurrency int
	Labels      map[string]string
	Lease       time.Duration
	Heartbeat   time.Duration
}

// Default is the configuration of an empty rpt.yaml: retention defaults, no sources,
// the local time zone. The CLI starts from it when there is no config file.
func Default() *Config {
	return &Config{Retention: Retention{Results: DefaultResultsRetention, Jobs: DefaultJobsRetention}}
}

// Location is the time zone relative dates resolve in: timezone:, or time.Local.
func (c *Config) Location() *time.Location {
	if c == nil || c.loc == nil {
		return time.Local
	}
	return c.loc
}

// Error is one problem in the file.
type Error struct {
	File  string
	Line  int
	Field string
	Msg   string
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		b.WriteString(":" + strconv.Itoa(e.Line))
	}
	b.WriteString(": ")
	if e.Field != "" {
		b.WriteString(e.Field + ": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Is makes every Error match ErrInvalid.
func (e *Error) Is(target error) bool { return target == ErrInvalid }

// MaxFileSize is the largest config file accepted; a real rpt.yaml is a few KiB.
const MaxFileSize = 1 << 20

// Load reads and parses a config file, expanding ${VAR} from the process environment.
// A file over MaxFileSize is refused without reading it whole.
func Load(path string) (*Config, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, &Error{File: path, Msg: "config file does not exist (named by --config or RPT_CONFIG?)"}
	} else if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	return Parse(path, data, os.Getenv)
}

type problems struct {
	file string
	errs []*Error
}

func (p *problems) add(line int, field, format string, args ...any) {
	p.errs = append(p.errs, &Error{File: p.file, Line: line, Field: field, Msg: fmt.Sprintf(format, args...)})
}

func (p *problems) at(n *yaml.Node, field, format string, args ...any) {
	p.add(n.Line, field, format, args...)
}

func (p *problems) err() error {
	if len(p.errs) == 0 {
		return nil
	}
	slices.SortStableFunc(p.errs, func(a, b *Error) int { return cmp.Compare(a.Line, b.Line) })
	errs := make([]error, len(p.errs))
	for i, e := range p.errs {
		errs[i] = e
	}
	if len(errs) == 1 {
		return errs[0]
	}
	return errors.Join(errs...)
}

var (
	yamlLineRE = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)
	nameRE     = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]*$`)
	labelRE    = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._/-]*$`)
	daysRE     = regexp.MustCompile(`^([0-9]+)d(.*)$`)
)

// Parse decodes a config. file names it in errors and anchors relative report folders;
// getenv supplies ${VAR} values (an empty value counts as unset; write ${VAR:-} to
// allow it). Every problem is returned (errors.Join, ordered by line), each satisfying
// errors.Is(err, ErrInvalid); no message contains a password.
func Parse(file string, data []byte, getenv func(string) string) (*Config, error) {
	p := &problems{file: file}
	if len(data) > MaxFileSize {
		p.add(0, "", "file is larger than 1 MiB; a config file may be at most 1 MiB")
		return nil, p.err()
	}
	c := Default()
	c.File = file
	if getenv == nil {
		getenv = func(string) string { return "" }
	}
	data = bytes.TrimPrefix(data, []byte("\xEF\xBB\xBF"))
	if !utf8.Valid(data) || bytes.IndexByte(data, 0) >= 0 {
		p.add(1, "", "binary content: not a UTF-8 text file")
		return nil, p.err()
	}
	for i, line := range strings.Split(string(data), "\n") {
		indent := line[:len(line)-len(strings.TrimLeft(line, " \t"))]
		if strings.ContainsRune(indent, '\t') {
			p.add(i+1, "", "tab in indentation: indent with spaces")
		}
	}
	if len(p.errs) > 0 {
		return nil, p.err()
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); errors.Is(err, io.EOF) {
		return c.finish(p) // an empty file is all defaults
	} else if err != nil {
		msg := err.Error()
		line := 1
		if m := yamlLineRE.FindStringSubmatch(msg); m != nil {
			line, _ = strconv.Atoi(m[1])
			msg = m[2]
		}
		p.add(line, "", "YAML: %s", strings.TrimPrefix(msg, "yaml: "))
		return nil, p.err()
	}
	var next yaml.Node
	if err := dec.Decode(&next); err == nil {
		p.add(next.Line, "", "more than one YAML document")
	}
	if len(doc.Content) == 0 || (doc.Content[0].Kind == yaml.ScalarNode && doc.Content[0].Tag == "!!null") {
		return c.finish(p)
	}
	root := doc.Content[0]
	if hasAlias(root, 0) {
		p.at(root, "", "YAML anchors and aliases are not supported")
		return nil, p.err()
	}
	d := &decoder{p: p, getenv: getenv}
	d.mapping(root, "", []field{
		{"queue", func(v *yaml.Node, path string) {
			if s, ok := d.str(v, path); ok && s != "" {
				c.Queue = s
				scheme, err := dsn.Scheme(s)
				switch {
				case err != nil:
					p.at(v, path, "%s", unexpanded(err, v, s))
				case scheme == "sqlite":
					if _, err := dsn.SQLitePath(s); err != nil {
						p.at(v, path, "%s", unexpanded(err, v, s))
					}
				case scheme == "mysql":
					if _, err := dsn.MySQL(s); err != nil {
						p.at(v, path, "%s", unexpanded(err, v, s))
					}
				default:
					p.at(v, path, "the queue must be mysql://... or sqlite:PATH, got a %s DSN", scheme)
				}
			}
		}},
		{"mqtt", func(v *yaml.Node, path string) {
			if s, ok := d.str(v, path); ok && s != "" {
				u, err := url.Parse(s)
				if err != nil || u.Host == "" || !slices.Contains([]string{"tcp", "ssl", "tls", "mqtt", "mqtts", "ws", "wss"}, u.Scheme) {
					p.at(v, path, "bad broker URL %q (want tcp://host:port, ssl://, ws:// or wss://)", shown(v, s))
				}
				c.MQTT = s
			}
		}},
		{"timezone", func(v *yaml.Node, path string) {
			if s, ok := d.str(v, path); ok && s != "" {
				loc, err := time.LoadLocation(s)
				if err != nil {
					p.at(v, path, "unknown time zone %q (want an IANA name such as America/Indiana/Indianapolis)", shown(v, s))
				}
				c.Timezone, c.loc = s, loc
			}
		}},
		{"reports", func(v *yaml.Node, path string) {
			if v.Kind == yaml.ScalarNode && v.Tag != "!!null" {
				if s, ok := d.str(v, path); ok {
					c.Reports = []string{s} // one folder needs no list
				}
			} else {
				c.Reports = d.strList(v, path)
			}
			for i, dir := range c.Reports {
				if strings.TrimSpace(dir) == "" {
					p.at(v, fmt.Sprintf("%s[%d]", path, i), "empty folder name")
				}
			}
		}},
		{"sources", func(v *yaml.Node, path string) { c.Sources = d.sources(v, path) }},
		{"retention", func(v *yaml.Node, path string) {
			d.mapping(v, path, []field{
				{"results", func(v *yaml.Node, path string) { d.duration(v, path, &c.Retention.Results) }},
				{"jobs", func(v *yaml.Node, path string) { d.duration(v, path, &c.Retention.Jobs) }},
			})
		}},
		{"results", func(v *yaml.Node, path string) {
			if s, ok := d.str(v, path); ok && s != "" {
				if !slices.Contains(ResultStores, s) {
					p.at(v, path, "%s", didyoumean.Append(fmt.Sprintf("unknown results store %q (want %s; no other store is built in this binary)",
						s, strings.Join(ResultStores, ", ")), s, ResultStores))
				}
				c.Results = s
			}
		}},
		{"agent", func(v *yaml.Node, path string) { c.Agent = d.agent(v, path) }},
		{"legacy_topic", func(v *yaml.Node, path string) {
			if s, ok := d.str(v, path); ok {
				if s == "" || strings.ContainsAny(s, "+#\x00") || strings.HasPrefix(s, "/") {
					p.at(v, path, "bad MQTT topic %q (no wildcards + or #, not empty)", shown(v, s))
				}
				c.LegacyTopic = s
			}
		}},
	})
	return c.finish(p)
}

func (c *Config) finish(p *problems) (*Config, error) {
	if err := p.err(); err != nil {
		return nil, err
	}
	base := filepath.Dir(c.File)
	for i, dir := range c.Reports {
		if !filepath.IsAbs(dir) {
			c.Reports[i] = filepath.Join(base, dir)
		}
	}
	return c, nil
}

func hasAlias(n *yaml.Node, depth int) bool {
	if n.Kind == yaml.AliasNode || n.Anchor != "" || depth > 100 {
		return true
	}
	for _, c := range n.Content {
		if hasAlias(c, depth+1) {
			return true
		}
	}
	return false
}

type decoder struct {
	p      *problems
	getenv func(string) string
}

type field struct {
	key string
	fn  func(v *yaml.Node, path string)
}

func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		if n.Tag == "!!null" {
			return "null"
		}
		return "a scalar"
	}
	return "something else"
}

// mapping walks a mapping strictly: unknown and duplicate keys are errors.
func (d *decoder) mapping(n *yaml.Node, path string, fields []field) map[string]*yaml.Node {
	seen := map[string]*yaml.Node{}
	if n.Kind != yaml.MappingNode {
		if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
			return seen // "retention:" with nothing under it
		}
		d.p.at(n, path, "want a mapping (key: value), got %s", kindName(n))
		return seen
	}
	want := make([]string, len(fields))
	for i, f := range fields {
		want[i] = f.key
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		sub := joinPath(path, k.Value)
		if prev, dup := seen[k.Value]; dup {
			d.p.at(k, sub, "duplicate key (first at line %d)", prev.Line)
			continue
		}
		seen[k.Value] = k
		idx := slices.IndexFunc(fields, func(f field) bool { return f.key == k.Value })
		if idx < 0 {
			d.p.at(k, sub, "%s", didyoumean.Append(fmt.Sprintf("unknown key %q (want %s)", k.Value, strings.Join(want, ", ")), k.Value, want))
			continue
		}
		fields[idx].fn(v, sub)
	}
	return seen
}

// str returns a scalar's text with ${VAR} expanded; null is "".
func (d *decoder) str(n *yaml.Node, path string) (string, bool) {
	if n.Kind != yaml.ScalarNode {
		d.p.at(n, path, "want a string, got %s", kindName(n))
		return "", false
	}
	if n.Tag == "!!null" {
		return "", true
	}
	s, err := expand(n.Value, d.getenv)
	if err != nil {
		d.p.at(n, path, "%v", err)
		return "", false
	}
	return s, true
}

func (d *decoder) strList(n *yaml.Node, path string) []string {
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return nil
	}
	if n.Kind != yaml.SequenceNode {
		d.p.at(n, path, "want a list, got %s", kindName(n))
		return nil
	}
	var out []string
	for i, c := range n.Content {
		if s, ok := d.str(c, fmt.Sprintf("%s[%d]", path, i)); ok {
			out = append(out, s)
		}
	}
	return out
}

// integer accepts an int scalar, or a ${VAR} that expands to one.
func (d *decoder) integer(n *yaml.Node, path string) (int, bool) {
	s, ok := d.str(n, path)
	if !ok {
		return 0, false
	}
	v, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil {
		// The text as written, not as expanded: a mistyped ${VAR} may hold a secret.
		d.p.at(n, path, "want an integer, got %q", n.Value)
		return 0, false
	}
	return v, true
}

func (d *decoder) duration(n *yaml.Node, path string, dst *time.Duration) {
	s, ok := d.str(n, path)
	if !ok {
		return
	}
	v, err := ParseDuration(s)
	if err != nil {
		d.p.at(n, path, "bad duration %q (want e.g. 7d, 12h, 30m)", n.Value)
		return
	}
	if v <= 0 {
		d.p.at(n, path, "must be positive, got %q", n.Value)
		return
	}
	*dst = v
}

// ParseDuration is time.ParseDuration plus a leading whole number of days: "7d",
// "90d", "1d12h".
func ParseDuration(s string) (time.Duration, error) {
	var days time.Duration
	rest := s
	if m := daysRE.FindStringSubmatch(s); m != nil {
		n, err := strconv.Atoi(m[1])
		if err != nil || n > 100000 {
			return 0, fmt.Errorf("bad duration %q (want e.g. 7d, 12h, 30m)", s)
		}
		days, rest = time.Duration(n)*24*time.Hour, m[2]
		if rest == "" {
			return days, nil
		}
	}
	v, err := time.ParseDuration(rest)
	if err != nil || (days > 0 && strings.HasPrefix(rest, "-")) {
		return 0, fmt.Errorf("bad duration %q (want e.g. 7d, 12h, 30m)", s)
	}
	return days + v, nil
}

func (d *decoder) agent(n *yaml.Node, path string) Agent {
	var a Agent
	var leaseNode *yaml.Node
	d.mapping(n, path, []field{
		{"name", func(v *yaml.Node, fp string) {
			if s, ok := d.str(v, fp); ok {
				if s != "" && !nameRE.MatchString(s) {
					d.p.at(v, fp, "bad agent name %q (want letters, digits, '-' and '_')", shown(v, s))
				}
				a.Name = s
			}
		}},
		{"concurrency", func(v *yaml.Node, fp string) {
			if x, ok := d.integer(v, fp); ok {
				if x < 1 || x > 1000 {
					d.p.at(v, fp, "must be 1-1000, got %d", x)
				}
				a.Concurrency = x
			}
		}},
		{"labels", func(v *yaml.Node, fp string) { a.Labels = d.labels(v, fp) }},
		{"lease", func(v *yaml.Node, fp string) { leaseNode = v; d.duration(v, fp, &a.Lease) }},
		{"heartbeat", func(v *yaml.Node, fp string) { d.duration(v, fp, &a.Heartbeat) }},
	})
	if a.Lease > 0 && a.Heartbeat > 0 && a.Heartbeat*2 > a.Lease {
		d.p.at(leaseNode, path+".heartbeat", "heartbeat %s must be at most half the lease %s, or a lease expires between heartbeats", a.Heartbeat, a.Lease)
	}
	return a
}

func (d *decoder) labels(n *yaml.Node, path string) map[string]string {
	out := map[string]string{}
	if n.Kind != yaml.MappingNode {
		d.p.at(n, path, "want a mapping (label: value), got %s", kindName(n))
		return out
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		sub := joinPath(path, k.Value)
		if _, dup := out[k.Value]; dup {
			d.p.at(k, sub, "duplicate label")
			continue
		}
		if !labelRE.MatchString(k.Value) {
			d.p.at(k, sub, "bad label name %q", k.Value)
		}
		if s, ok := d.str(v, sub); ok {
			out[k.Value] = s
		}
	}
	return out
}

func (d *decoder) sources(n *yaml.Node, path string) map[string]source.Config {
	out := map[string]source.Config{}
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return out
	}
	if n.Kind != yaml.MappingNode {
		d.p.at(n, path, "want a mapping of source names, got %s", kindName(n))
		return out
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		name := k.Value
		sub := joinPath(path, name)
		if _, dup := out[name]; dup {
			d.p.at(k, sub, "duplicate source")
			continue
		}
		if !nameRE.MatchString(name) {
			d.p.at(k, sub, "bad source name %q (want letters, digits, '-' and '_')", name)
		}
		out[name] = d.source(v, sub)
	}
	return out
}

func (d *decoder) source(n *yaml.Node, path string) source.Config {
	var sc source.Config
	nodes := map[string]*yaml.Node{}
	badDSN := false // already reported (an unset ${VAR}): no "missing" on top
	seen := d.mapping(n, path, []field{
		{"driver", func(v *yaml.Node, fp string) { nodes["driver"] = v; sc.Driver, _ = d.str(v, fp) }},
		{"dsn", func(v *yaml.Node, fp string) {
			nodes["dsn"] = v
			var ok bool
			if sc.DSN, ok = d.str(v, fp); !ok {
				badDSN = true
			}
		}},
		{"url", func(v *yaml.Node, fp string) { nodes["url"] = v; sc.URL, _ = d.str(v, fp) }},
		{"user", func(v *yaml.Node, fp string) { sc.User, _ = d.str(v, fp) }},
		{"password", func(v *yaml.Node, fp string) { sc.Password, _ = d.str(v, fp) }},
		{"max_concurrent", func(v *yaml.Node, fp string) {
			if x, ok := d.integer(v, fp); ok {
				if x < 0 {
					d.p.at(v, fp, "must be 0 (unlimited) or more, got %d", x)
				}
				sc.MaxConcurrent = x
			}
		}},
	})
	if n.Kind != yaml.MappingNode {
		return sc
	}
	if seen["driver"] == nil {
		d.p.at(n, path+".driver", "missing (want %s)", strings.Join(Drivers, ", "))
		return sc
	}
	at := func(key string) *yaml.Node {
		if nodes[key] != nil {
			return nodes[key]
		}
		return n
	}
	needDSN := func() bool {
		if badDSN {
			return false
		}
		if sc.DSN == "" {
			d.p.at(at("dsn"), path+".dsn", "missing (driver %s needs a dsn)", sc.Driver)
			return false
		}
		return true
	}
	switch sc.Driver {
	case "sqlite":
		if needDSN() {
			if _, err := dsn.SQLitePath(sc.DSN); err != nil {
				d.p.at(at("dsn"), path+".dsn", "%s", unexpanded(err, at("dsn"), sc.DSN))
			}
		}
	case "mysql":
		if needDSN() {
			if _, err := dsn.MySQL(sc.DSN); err != nil {
				d.p.at(at("dsn"), path+".dsn", "%s", unexpanded(err, at("dsn"), sc.DSN))
			}
		}
	case "sqlserver", "odbc":
		needDSN()
	case "plexws":
		u, err := url.Parse(sc.URL)
		if sc.URL == "" {
			d.p.at(at("url"), path+".url", "missing (driver plexws needs the web service url)")
		} else if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			d.p.at(at("url"), path+".url", "bad URL %q (want https://host/...)", shown(at("url"), sc.URL))
		}
	case "":
		// already reported by str
	default:
		d.p.at(at("driver"), path+".driver", "%s", didyoumean.Append(fmt.Sprintf("unknown driver %q (want %s)", shown(at("driver"), sc.Driver), strings.Join(Drivers, ", ")), sc.Driver, Drivers))
	}
	return sc
}

// shown is a value as a message may echo it: the text as written when it uses ${VAR}
// (the variable may hold a secret, and the value would print it), else the value; any
// password in either is redacted.
func shown(n *yaml.Node, value string) string {
	if strings.Contains(n.Value, "${") {
		return dsn.Redact(n.Value)
	}
	return dsn.Redact(value)
}

// unexpanded is err's message with the expanded value, as the message quotes it, put
// back to the text as written (see shown).
func unexpanded(err error, n *yaml.Node, value string) string {
	msg := err.Error()
	if !strings.Contains(n.Value, "${") || value == "" {
		return msg
	}
	written := dsn.Redact(n.Value)
	for _, r := range [][2]string{
		{strconv.Quote(dsn.Redact(value)), strconv.Quote(written)},
		{strconv.Quote(value), strconv.Quote(written)},
		{dsn.Redact(value), written},
		{value, written},
	} {
		msg = strings.ReplaceAll(msg, r[0], r[1])
	}
	return msg
}

// expand replaces ${VAR} and ${VAR:-default} with values from getenv; "$$" is a
// literal "$". A "$" before anything else is kept as it is. The message of an unset
// variable names the variable only, never a value.
func expand(s string, getenv func(string) string) (string, error) {
	if !strings.Contains(s, "$") {
		return s, nil
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '$' || i+1 >= len(s) {
			b.WriteByte(c)
			continue
		}
		switch s[i+1] {
		case '$':
			b.WriteByte('$')
			i++
		case '{':
			end := strings.IndexByte(s[i+2:], '}')
			if end < 0 {
				return "", fmt.Errorf("unclosed ${ (write $$ for a literal $)")
			}
			expr := s[i+2 : i+2+end]
			name, def, hasDef := strings.Cut(expr, ":-")
			if !envNameRE.MatchString(name) {
				return "", fmt.Errorf("bad variable name in ${%s}", name)
			}
			v := getenv(name)
			if v == "" {
				if !hasDef {
					return "", fmt.Errorf("environment variable %s is not set (used as ${%s}; write ${%s:-} to allow empty)", name, name, name)
				}
				v = def
			}
			b.WriteString(v)
			i += 2 + end
		default:
			b.WriteByte(c)
		}
	}
	return b.String(), nil
}

var envNameRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
