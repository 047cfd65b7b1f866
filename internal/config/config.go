// Package config loads rpt.yaml: where the queue and broker are, the time zone that
// relative dates resolve in, extra report folders, the named data sources, retention and
// the agent's settings. Decoding is strict (an unknown key is an error naming file:line)
// and ${VAR} is expanded from the environment, so secrets stay out of the file. Flags
// and RPT_* environment variables are applied on top by the CLI, not here.
package config

import (
	"errors"
	"fmt"
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

	"go.mongodb.org/mongo-driver/v2/x/mongo/driver/connstring"
	"gopkg.in/yaml.v3"

	"rpt/internal/didyoumean"
	"rpt/internal/dsn"
	"rpt/internal/inputfile"
	"rpt/internal/source"
	"rpt/internal/yamlstrict"
)

// ErrInvalid marks every configuration error (exit code 2).
var ErrInvalid = errors.New("invalid configuration")

// Defaults applied when rpt.yaml leaves a value out.
const (
	DefaultResultsRetention = 7 * 24 * time.Hour
	DefaultJobsRetention    = 90 * 24 * time.Hour
)

// maxResultStoreName is the width of rpt_jobs.result_store, where jobs record the name.
const maxResultStoreName = 64

// ResultStoreName is the name jobs record for the results store s (a value of results:
// or results_read:): "queue" for "" and "queue"; for a MongoDB URI the scheme, hosts and
// database without credentials or options ("mongodb://reports11:30311/rpt"; database
// "rpt" when the URI names none), the same for every process that reaches that
// database, and no secret. An error never shows a password.
func ResultStoreName(s string) (string, error) {
	if s == "" || s == "queue" {
		return "queue", nil
	}
	if !strings.HasPrefix(s, "mongodb://") && !strings.HasPrefix(s, "mongodb+srv://") {
		return "", errors.New(didyoumean.Append(fmt.Sprintf("unknown results store %q (want queue or a mongodb:// URI)", dsn.Redact(s)), s, []string{"queue"}))
	}
	cs, err := connstring.ParseAndValidate(s)
	if err != nil {
		return "", fmt.Errorf("bad MongoDB URI %q: %s", dsn.Redact(s), dsn.Redact(err.Error()))
	}
	db := cs.Database
	if db == "" {
		db = "rpt"
	}
	hosts := slices.Clone(cs.Hosts)
	for i, h := range hosts {
		hosts[i] = strings.ToLower(h)
	}
	name := cs.Scheme + "://" + strings.Join(hosts, ",") + "/" + db
	if len(name) > maxResultStoreName {
		return "", fmt.Errorf("the store's name %q (scheme, hosts and database) is %d characters; jobs record at most %d (use fewer or shorter host names)",
			name, len(name), maxResultStoreName)
	}
	return name, nil
}

// ResultsName is the name of the store new results go to (ResultStoreName of Results).
func (c *Config) ResultsName() string {
	n, err := ResultStoreName(c.Results)
	if err != nil { // Parse refused it; a Config built in code may hold anything
		return c.Results
	}
	return n
}

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
	// database; a mongodb:// URI (with ${VAR}s expanded): that MongoDB database. Jobs
	// record the store they used (ResultStoreName), so changing it orphans nothing as
	// long as the old store stays configured, here or in ResultsRead.
	Results string
	// SMTP is the mail server of e-mail deliveries (smtp:); nil: none configured.
	SMTP *SMTP
	// Deliver says where results may be delivered (deliver:).
	Deliver Deliver
	// ResultsRead are other stores (mongodb:// URIs) older results were written to:
	// readers (rpt get, the API) open them by the name a job records; nothing writes
	// there. Another node's MongoDB, or the store results: named before a switch.
	ResultsRead []string
	// API is the api: block: TLS for rpt api and rpt server --api.
	API API

	loc *time.Location
}

// API is the api: block. TLSCert and TLSKey (PEM files, both or neither; relative to
// the config file's folder) make the API and the web app serve HTTPS.
type API struct {
	TLSCert string
	TLSKey  string
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
	return &Config{Retention: Retention{Results: DefaultResultsRetention, Jobs: DefaultJobsRetention},
		Deliver: Deliver{MaxAttachment: DefaultMaxAttachment}}
}

// Location is the time zone relative dates resolve in: timezone:, or time.Local.
func (c *Config) Location() *time.Location {
	if c == nil || c.loc == nil {
		return time.Local
	}
	return c.loc
}

// Error is one problem in the file, at file:line:column, naming the field.
type Error = yamlstrict.Error

// MaxFileSize is the largest config file accepted; a real rpt.yaml is a few KiB.
const MaxFileSize = 1 << 20

const what = "a config file"

// Load reads and parses a config file, expanding ${VAR} from the process environment.
// A file over MaxFileSize, a directory, FIFO or device is refused without being read.
func Load(path string) (*Config, error) {
	data, err := inputfile.Read(path, MaxFileSize, what)
	if err != nil {
		msg := err.Error()
		var ie *inputfile.Error
		if errors.As(err, &ie) {
			msg = ie.Msg
		}
		if errors.Is(err, fs.ErrNotExist) {
			msg = "config file does not exist (named by --config or RPT_CONFIG?)"
		}
		return nil, &Error{File: path, Msg: msg, Class: ErrInvalid}
	}
	return Parse(path, data, os.Getenv)
}

var (
	nameRE  = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]*$`)
	labelRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._/-]*$`)
	daysRE  = regexp.MustCompile(`^([0-9]+)d(.*)$`)
)

// Parse decodes a config. file names it in errors and anchors relative report folders;
// getenv supplies ${VAR} values (an empty value counts as unset; write ${VAR:-} to
// allow it). Every problem is returned (errors.Join, ordered by position), each an
// *Error satisfying errors.Is(err, ErrInvalid); no message contains a password.
func Parse(file string, data []byte, getenv func(string) string) (*Config, error) {
	if getenv == nil {
		getenv = func(string) string { return "" }
	}
	d := &yamlstrict.Doc{File: file, Class: ErrInvalid, What: what, MaxSize: MaxFileSize,
		Expand:     func(s string) (string, error) { return expand(s, getenv) },
		HideValues: true, NullIsEmpty: true}
	c := Default()
	c.File = file
	root := d.Parse(data)
	if d.Failed() {
		return nil, d.Err()
	}
	if root == nil || yamlstrict.IsNull(root) {
		return c.finish(d) // an empty file is all defaults
	}
	d.Mapping(root, "",
		yamlstrict.Field{Key: "queue", Fn: func(v *yaml.Node, path string) {
			if s, ok := d.Str(v, path); ok && s != "" {
				c.Queue = s
				scheme, err := dsn.Scheme(s)
				switch {
				case err != nil:
					d.At(v, path, "%s", unexpanded(err, v, s))
				case scheme == "sqlite":
					if _, err := dsn.SQLitePath(s); err != nil {
						d.At(v, path, "%s", unexpanded(err, v, s))
					}
				case scheme == "mysql":
					if _, err := dsn.MySQL(s); err != nil {
						d.At(v, path, "%s", unexpanded(err, v, s))
					}
				default:
					d.At(v, path, "the queue must be mysql://... or sqlite:PATH, got a %s DSN", scheme)
				}
			}
		}},
		yamlstrict.Field{Key: "mqtt", Fn: func(v *yaml.Node, path string) {
			if s, ok := d.Str(v, path); ok && s != "" {
				u, err := url.Parse(s)
				if err != nil || u.Host == "" || !slices.Contains([]string{"tcp", "ssl", "tls", "mqtt", "mqtts", "ws", "wss"}, u.Scheme) {
					d.At(v, path, "bad broker URL %q (want tcp://host:port, ssl://, ws:// or wss://)", shown(v, s))
				}
				c.MQTT = s
			}
		}},
		yamlstrict.Field{Key: "timezone", Fn: func(v *yaml.Node, path string) {
			if s, ok := d.Str(v, path); ok && s != "" {
				loc, err := time.LoadLocation(s)
				if err != nil {
					d.At(v, path, "unknown time zone %q (want an IANA name such as America/Indiana/Indianapolis)", shown(v, s))
				}
				c.Timezone, c.loc = s, loc
			}
		}},
		yamlstrict.Field{Key: "reports", Fn: func(v *yaml.Node, path string) {
			c.Reports, _ = d.StrOrList(v, path)
			for i, dir := range c.Reports {
				if strings.TrimSpace(dir) == "" {
					d.At(v, yamlstrict.Index(path, i), "empty folder name")
				}
			}
		}},
		yamlstrict.Field{Key: "sources", Fn: func(v *yaml.Node, path string) { c.Sources = sources(d, v, path) }},
		yamlstrict.Field{Key: "retention", Fn: func(v *yaml.Node, path string) {
			d.Mapping(v, path,
				yamlstrict.Field{Key: "results", Fn: func(v *yaml.Node, path string) { duration(d, v, path, &c.Retention.Results) }},
				yamlstrict.Field{Key: "jobs", Fn: func(v *yaml.Node, path string) { duration(d, v, path, &c.Retention.Jobs) }},
			)
		}},
		yamlstrict.Field{Key: "results", Fn: func(v *yaml.Node, path string) {
			if s, ok := d.Str(v, path); ok && s != "" {
				if _, err := ResultStoreName(s); err != nil {
					d.At(v, path, "%s", unexpanded(err, v, s))
				}
				c.Results = s
			}
		}},
		yamlstrict.Field{Key: "results_read", Fn: func(v *yaml.Node, path string) {
			list, _ := d.StrOrList(v, path)
			seen := map[string]int{}
			for i, s := range list {
				v := v
				if v.Kind == yaml.SequenceNode && i < len(v.Content) {
					v = v.Content[i]
				}
				name, err := ResultStoreName(s)
				switch {
				case err != nil:
					d.At(v, yamlstrict.Index(path, i), "%s", unexpanded(err, v, s))
				case name == "queue":
					d.At(v, yamlstrict.Index(path, i), "the queue database is always read; list only mongodb:// URIs here")
				case seen[name] > 0:
					d.At(v, yamlstrict.Index(path, i), "the store %s is listed twice (first as item %d)", name, seen[name]-1)
				default:
					seen[name] = i + 1
					c.ResultsRead = append(c.ResultsRead, s)
				}
			}
		}},
		yamlstrict.Field{Key: "agent", Fn: func(v *yaml.Node, path string) { c.Agent = agent(d, v, path) }},
		yamlstrict.Field{Key: "smtp", Fn: func(v *yaml.Node, path string) { s := smtpBlock(d, v, path); c.SMTP = &s }},
		yamlstrict.Field{Key: "deliver", Fn: func(v *yaml.Node, path string) { c.Deliver = deliverBlock(d, v, path) }},
		yamlstrict.Field{Key: "api", Fn: func(v *yaml.Node, path string) {
			d.Mapping(v, path,
				yamlstrict.Field{Key: "tls_cert", Fn: func(v *yaml.Node, path string) { c.API.TLSCert, _ = d.Str(v, path) }},
				yamlstrict.Field{Key: "tls_key", Fn: func(v *yaml.Node, path string) { c.API.TLSKey, _ = d.Str(v, path) }},
			)
			if (c.API.TLSCert == "") != (c.API.TLSKey == "") {
				d.At(v, path, "tls_cert and tls_key go together: give both PEM files, or neither (plain HTTP)")
			}
		}},
		yamlstrict.Field{Key: "legacy_topic", Fn: func(v *yaml.Node, path string) {
			if s, ok := d.Str(v, path); ok {
				if s == "" || strings.ContainsAny(s, "+#\x00") || strings.HasPrefix(s, "/") {
					d.At(v, path, "bad MQTT topic %q (no wildcards + or #, not empty)", shown(v, s))
				}
				c.LegacyTopic = s
			}
		}},
	)
	return c.finish(d)
}

func (c *Config) finish(d *yamlstrict.Doc) (*Config, error) {
	if err := d.Err(); err != nil {
		return nil, err
	}
	base := filepath.Dir(c.File)
	for i, dir := range c.Reports {
		if !filepath.IsAbs(dir) {
			c.Reports[i] = filepath.Join(base, dir)
		}
	}
	for _, p := range []*string{&c.API.TLSCert, &c.API.TLSKey} {
		if *p != "" && !filepath.IsAbs(*p) {
			*p = filepath.Join(base, *p)
		}
	}
	return c, nil
}

func duration(d *yamlstrict.Doc, n *yaml.Node, path string, dst *time.Duration) {
	s, ok := d.Str(n, path)
	if !ok {
		return
	}
	v, err := ParseDuration(s)
	if err != nil {
		d.At(n, path, "bad duration %q (want e.g. 7d, 12h, 30m)", n.Value)
		return
	}
	if v <= 0 {
		d.At(n, path, "must be positive, got %q", n.Value)
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

func agent(d *yamlstrict.Doc, n *yaml.Node, path string) Agent {
	var a Agent
	var leaseNode *yaml.Node
	d.Mapping(n, path,
		yamlstrict.Field{Key: "name", Fn: func(v *yaml.Node, fp string) {
			if s, ok := d.Str(v, fp); ok {
				if s != "" && !nameRE.MatchString(s) {
					d.At(v, fp, "bad agent name %q (want letters, digits, '-' and '_')", shown(v, s))
				}
				a.Name = s
			}
		}},
		yamlstrict.Field{Key: "concurrency", Fn: func(v *yaml.Node, fp string) {
			if x, ok := d.Int(v, fp); ok {
				if x < 1 || x > 1000 {
					d.At(v, fp, "must be 1-1000, got %d", x)
				}
				a.Concurrency = x
			}
		}},
		yamlstrict.Field{Key: "labels", Fn: func(v *yaml.Node, fp string) {
			a.Labels = map[string]string{}
			d.Pairs(v, fp, "a mapping (label: value)", "label", func(k, v *yaml.Node, sub string) {
				if !labelRE.MatchString(k.Value) {
					d.At(k, sub, "bad label name %q", k.Value)
				}
				if s, ok := d.Str(v, sub); ok {
					a.Labels[k.Value] = s
				}
			})
		}},
		yamlstrict.Field{Key: "lease", Fn: func(v *yaml.Node, fp string) { leaseNode = v; duration(d, v, fp, &a.Lease) }},
		yamlstrict.Field{Key: "heartbeat", Fn: func(v *yaml.Node, fp string) { duration(d, v, fp, &a.Heartbeat) }},
	)
	if a.Lease > 0 && a.Heartbeat > 0 && a.Heartbeat*2 > a.Lease {
		d.At(leaseNode, path+".heartbeat", "heartbeat %s must be at most half the lease %s, or a lease expires between heartbeats", a.Heartbeat, a.Lease)
	}
	return a
}

func sources(d *yamlstrict.Doc, n *yaml.Node, path string) map[string]source.Config {
	out := map[string]source.Config{}
	d.Pairs(n, path, "a mapping of source names", "source", func(k, v *yaml.Node, sub string) {
		if !nameRE.MatchString(k.Value) {
			d.At(k, sub, "bad source name %q (want letters, digits, '-' and '_')", k.Value)
		}
		out[k.Value] = sourceConfig(d, v, sub)
	})
	return out
}

func sourceConfig(d *yamlstrict.Doc, n *yaml.Node, path string) source.Config {
	var sc source.Config
	if n.Kind != yaml.MappingNode {
		d.At(n, path, "want a mapping (driver: ..., dsn: ...), got %s", d.Describe(n))
		return sc
	}
	nodes := map[string]*yaml.Node{}
	badDSN := false // already reported (an unset ${VAR}): no "missing" on top
	seen := d.Mapping(n, path,
		yamlstrict.Field{Key: "driver", Fn: func(v *yaml.Node, fp string) { nodes["driver"] = v; sc.Driver, _ = d.Str(v, fp) }},
		yamlstrict.Field{Key: "dsn", Fn: func(v *yaml.Node, fp string) {
			nodes["dsn"] = v
			var ok bool
			if sc.DSN, ok = d.Str(v, fp); !ok {
				badDSN = true
			}
		}},
		yamlstrict.Field{Key: "url", Fn: func(v *yaml.Node, fp string) { nodes["url"] = v; sc.URL, _ = d.Str(v, fp) }},
		yamlstrict.Field{Key: "user", Fn: func(v *yaml.Node, fp string) { sc.User, _ = d.Str(v, fp) }},
		yamlstrict.Field{Key: "password", Fn: func(v *yaml.Node, fp string) { sc.Password, _ = d.Str(v, fp) }},
		yamlstrict.Field{Key: "dialect", Fn: func(v *yaml.Node, fp string) { nodes["dialect"] = v; sc.Dialect, _ = d.Str(v, fp) }},
		yamlstrict.Field{Key: "max_concurrent", Fn: func(v *yaml.Node, fp string) {
			if x, ok := d.Int(v, fp); ok {
				if x < 0 {
					d.At(v, fp, "must be 0 (unlimited) or more, got %d", x)
				}
				sc.MaxConcurrent = x
			}
		}},
		// Plex web services (plexws): see plexwsConfig.
		yamlstrict.Field{Key: "accounts", Fn: func(v *yaml.Node, fp string) { nodes["accounts"] = v; sc.Accounts = plexAccounts(d, v, fp) }},
		yamlstrict.Field{Key: "min_interval", Fn: func(v *yaml.Node, fp string) {
			nodes["min_interval"] = v
			plexDuration(d, v, fp, &sc.MinInterval, true)
		}},
		yamlstrict.Field{Key: "timeout", Fn: func(v *yaml.Node, fp string) { nodes["timeout"] = v; plexDuration(d, v, fp, &sc.Timeout, false) }},
		yamlstrict.Field{Key: "ca_file", Fn: func(v *yaml.Node, fp string) { nodes["ca_file"] = v; sc.CAFile, _ = d.Str(v, fp) }},
	)
	if seen["driver"] == nil {
		d.At(n, path+".driver", "missing (want %s)", strings.Join(configDrivers(), ", "))
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
			d.At(at("dsn"), path+".dsn", "missing (driver %s needs a dsn)", sc.Driver)
			return false
		}
		return true
	}
	if sc.Driver != source.DriverPlexWS {
		for _, key := range []string{"accounts", "min_interval", "timeout", "ca_file"} {
			if nodes[key] != nil {
				d.At(nodes[key], path+"."+key, "only a plexws source takes %s (this one is %s)", key, sc.Driver)
			}
		}
	}
	switch sc.Driver {
	case source.DialectSQLite:
		if needDSN() {
			if _, err := dsn.SQLitePath(sc.DSN); err != nil {
				d.At(at("dsn"), path+".dsn", "%s", unexpanded(err, at("dsn"), sc.DSN))
			}
		}
	case source.DialectMySQL:
		if needDSN() {
			if _, err := dsn.MySQL(sc.DSN); err != nil {
				d.At(at("dsn"), path+".dsn", "%s", unexpanded(err, at("dsn"), sc.DSN))
			}
		}
	case source.DialectSQLServer:
		needDSN()
	case source.DriverPlexWS:
		plexwsConfig(d, n, path, &sc, nodes)
	case source.DriverODBC:
		// Accepted in every build: a pure-Go CLI queues jobs that an agent built with
		// -tags odbc runs (an agent without it does not serve the source).
		if needDSN() {
			if _, err := dsn.ODBC(sc.DSN); err != nil {
				d.At(at("dsn"), path+".dsn", "%s", unexpanded(err, at("dsn"), sc.DSN))
			}
		}
		if sc.Dialect != "" && !slices.Contains(source.ODBCDialects, sc.Dialect) {
			d.At(at("dialect"), path+".dialect", "%s", didyoumean.Append(fmt.Sprintf("unknown dialect %q (want %s: the SQL the server behind the ODBC driver speaks)",
				shown(at("dialect"), sc.Dialect), strings.Join(source.ODBCDialects, " or ")), sc.Dialect, source.ODBCDialects))
		}
	case "":
		// already reported by Str
	default:
		if slices.Contains(source.PlannedDrivers, sc.Driver) {
			// Accepting it would let agents advertise the source and fail every job
			// max_attempts times; refuse it where the operator can fix it.
			d.At(at("driver"), path+".driver", "driver %q is not built in this binary (built: %s)", sc.Driver, strings.Join(source.Drivers, ", "))
			break
		}
		d.At(at("driver"), path+".driver", "%s", didyoumean.Append(fmt.Sprintf("unknown driver %q (want %s)", shown(at("driver"), sc.Driver), strings.Join(configDrivers(), ", ")), sc.Driver, configDrivers()))
	}
	if sc.Dialect != "" && sc.Driver != source.DriverODBC && sc.Driver != "" {
		d.At(at("dialect"), path+".dialect", "only an odbc source takes a dialect (a %s source speaks its own)", sc.Driver)
	}
	return sc
}

// configDrivers are the drivers a sources: entry may name: those built in, plexws, and
// those a build tag adds (odbc).
func configDrivers() []string {
	return append(append(append([]string{}, source.Drivers...), source.DriverPlexWS), source.TaggedDrivers...)
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

// plexwsConfig checks a plexws source: an https url (the default is Plex's endpoint),
// at least one account, no dsn, user or password at the top (each PCN has its own).
func plexwsConfig(d *yamlstrict.Doc, n *yaml.Node, path string, sc *source.Config, nodes map[string]*yaml.Node) {
	for _, key := range []string{"dsn"} {
		if nodes[key] != nil {
			d.At(nodes[key], path+"."+key, "a plexws source has no %s (it calls url: with one account per PCN under accounts:)", key)
		}
	}
	if sc.User != "" || sc.Password != "" {
		d.At(n, path+".user", "a plexws source has one user per PCN: write them under accounts: (accounts: {123681: {user: ..., password: ${VAR}}})")
	}
	if sc.URL != "" {
		u, err := url.Parse(sc.URL)
		switch {
		case err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http"):
			d.At(nodes["url"], path+".url", "bad url %q (want https://host/DataSource/Service.asmx)", shown(nodes["url"], sc.URL))
		case u.User != nil:
			d.At(nodes["url"], path+".url", "no user or password in the url: write them under accounts:")
		}
	}
	if nodes["accounts"] == nil {
		d.At(n, path+".accounts", "missing (one web-service account per PCN: accounts: {123681: {user: ..., password: ${VAR}}})")
	}
}

// plexAccounts reads accounts: {PCN: {user, password | password_file}}.
func plexAccounts(d *yamlstrict.Doc, n *yaml.Node, path string) map[int]source.Account {
	out := map[int]source.Account{}
	d.Pairs(n, path, "a mapping of PCNs to accounts", "PCN", func(k, v *yaml.Node, sub string) {
		pcn, err := strconv.Atoi(k.Value)
		if err != nil || pcn <= 0 {
			d.At(k, sub, "bad PCN %q (want the plant's Plex customer number, e.g. 123681)", k.Value)
			return
		}
		var a source.Account
		seen := d.Mapping(v, sub,
			yamlstrict.Field{Key: "user", Fn: func(v *yaml.Node, fp string) { a.User, _ = d.Str(v, fp) }},
			yamlstrict.Field{Key: "password", Fn: func(v *yaml.Node, fp string) { a.Password, _ = d.Str(v, fp) }},
			yamlstrict.Field{Key: "password_file", Fn: func(v *yaml.Node, fp string) { a.PasswordFile, _ = d.Str(v, fp) }},
		)
		if v.Kind != yaml.MappingNode {
			return
		}
		if seen["user"] == nil || (a.User == "" && !d.Failed()) {
			d.At(v, sub+".user", "missing (the web-service user of PCN %d)", pcn)
		}
		switch {
		case seen["password"] != nil && seen["password_file"] != nil:
			d.At(seen["password_file"], sub+".password_file", "give password or password_file, not both")
		case seen["password"] == nil && seen["password_file"] == nil:
			d.At(v, sub+".password", "missing (password: ${VAR}, or password_file: a mounted secret)")
		case seen["password"] != nil && !strings.Contains(yamlstrict.Lookup(v, "password").Value, "${"):
			// A password written into the file would sit in every copy of it.
			d.At(seen["password"], sub+".password", "write the password as ${VAR} (an environment variable) or use password_file, not in the file")
		}
		out[pcn] = a
	})
	if n.Kind == yaml.MappingNode && len(n.Content) == 0 {
		d.At(n, path, "no accounts (one web-service account per PCN)")
	}
	return out
}

func plexDuration(d *yamlstrict.Doc, n *yaml.Node, path string, dst *time.Duration, zeroOK bool) {
	s, ok := d.Str(n, path)
	if !ok {
		return
	}
	v, err := time.ParseDuration(strings.TrimSpace(s))
	if err != nil || v < 0 || (v == 0 && !zeroOK) {
		d.At(n, path, "bad duration %q (want e.g. 500ms, 2s, 5m)", n.Value)
		return
	}
	*dst = v
}
