// Package etl moves Plex data into the warehouse: ETL definitions (strict YAML, the
// shipped ones embedded in the binary), the engine that streams a source request into
// a MySQL/MariaDB warehouse table (LOAD DATA LOCAL INFILE from a stream, a batched
// multi-row INSERT where the server refuses it), and the load state (watermarks, last
// run, rows) kept in the warehouse, written in the load's own transaction. The agent's
// etl runner and `rpt etl` call Run; see README, "ETL".
package etl

import (
	"bytes"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"gopkg.in/yaml.v3"

	"rpt/internal/inputfile"
	"rpt/internal/source"
	"rpt/internal/yamlstrict"
)

// ErrInvalid marks a malformed ETL definition or a request it cannot make (exit 2).
var ErrInvalid = errors.New("invalid etl definition")

// Modes of a definition.
const (
	ModeFull        = "full"         // the new set replaces the old, atomically for readers
	ModeIncremental = "incremental"  // rows changed since the watermark (less a lookback), upserted by key
	ModePeriodRange = "period-range" // a window of accounting periods deleted and re-loaded
	ModeSnapshot    = "snapshot"     // the whole set appended with the load's time
)

var modes = []string{ModeFull, ModeIncremental, ModePeriodRange, ModeSnapshot}

// Null update policies of incremental mode.
const (
	NullsReload = "reload" // rows whose update column is NULL are read and upserted every run
	NullsSkip   = "skip"   // they are never read (after the first run)
)

// Parameters the engine binds into a definition's sql:.
const (
	ParamSince      = "since"       // incremental: the watermark less the lookback
	ParamFromPeriod = "from_period" // period-range: the window, YYYYMM
	ParamToPeriod   = "to_period"
)

// MaxDefinitionSize bounds an ETL file.
const MaxDefinitionSize = 256 << 10

// DefaultMaxShrink is the share of a full load's rows a new set may lose before the
// shrink guard refuses it.
const DefaultMaxShrink = 0.5

var (
	nameRE    = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,99}$`) })
	identRE   = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[a-z_][a-z0-9_]{0,63}$`) })
	srcNameRE = sync.OnceValue(func() *regexp.Regexp {
		return regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,127}(\.[A-Za-z_][A-Za-z0-9_]{0,127})?$`)
	})
	procRE = sync.OnceValue(func() *regexp.Regexp {
		return regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_$]{0,127}(\.[A-Za-z_][A-Za-z0-9_$]{0,127})?$`)
	})
)

// Definition is one ETL: where its rows come from, where they go and how.
type Definition struct {
	Name        string
	Title       string
	Description string
	Source      string   // a configured source name
	After       []string // ETLs that must have run first (the pipeline order)

	// Extract: exactly one of SQL, Table (every column of a source table or view) and
	// Procedure.
	SQL       string
	Table     string
	Procedure *source.Procedure
	Columns   map[string]source.Type // type overrides, as a report's columns:

	Target    string   // warehouse table
	Key       []string // the target's unique key columns
	Create    string   // CREATE TABLE run when the target does not exist
	Mode      string
	Increment *Incremental
	Period    *PeriodRange
	// SnapshotColumn is the target column that gets the load's time in snapshot mode.
	SnapshotColumn string
	// MaxShrink is the share of rows a full load may lose; AllowEmpty lets it load none.
	MaxShrink  float64
	AllowEmpty bool

	File string // where it was read ("shipped:NAME.yaml" for shipped ones)
	Raw  []byte // the file's bytes: the snapshot a job carries
	pos  map[string]yamlstrict.Pos
}

// Incremental says how rows changed since the last run are found.
type Incremental struct {
	Column   string        // the update column (datetime, date or integer)
	Lookback time.Duration // re-read this much before the watermark: late commits
	Nulls    string        // NullsReload or NullsSkip
	Initial  string        // sql: form: :since on the first run
}

// PeriodRange says which column holds the period (YYYYMM) and how the default window
// is found.
type PeriodRange struct {
	Column string
	// WindowSQL runs on the source and returns one row of two integers, the first and
	// last period of the window. The first run of an ETL loads every period.
	WindowSQL string
}

// Pos is where a field of the definition is in its file (for errors found later).
func (d *Definition) Pos(field string) yamlstrict.Pos { return d.pos[field] }

// Request is the extract as a source request with the engine's parameters.
func (d *Definition) request(driver string, params map[string]any, where string) source.Request {
	switch {
	case d.Procedure != nil:
		return source.Request{Procedure: d.Procedure, Params: params}
	case d.Table != "":
		q := "SELECT * FROM " + quoteSourceName(driver, d.Table)
		if where != "" {
			q += " WHERE " + where
		}
		return source.Request{SQL: q, Params: params}
	}
	return source.Request{SQL: d.SQL, Params: params}
}

// quoteSourceName quotes a checked table name (name or schema.name) for a driver.
func quoteSourceName(driver, name string) string {
	parts := strings.Split(name, ".")
	for i, p := range parts {
		parts[i] = quoteIdent(driver, p)
	}
	return strings.Join(parts, ".")
}

func quoteIdent(driver, s string) string {
	switch driver {
	case source.DialectMySQL:
		return "`" + s + "`"
	case source.DialectSQLServer:
		return "[" + s + "]"
	}
	return `"` + s + `"`
}

const what = "an ETL definition"

// ReadFile reads and parses one definition file (bounded, regular files only).
func ReadFile(path string) (*Definition, error) {
	data, err := inputfile.Read(path, MaxDefinitionSize, what)
	if err != nil {
		msg := err.Error()
		var ie *inputfile.Error
		if errors.As(err, &ie) {
			msg = ie.Msg
		}
		return nil, &yamlstrict.Error{File: path, Msg: msg, Class: ErrInvalid}
	}
	return Parse(path, data)
}

// Parse decodes and validates one definition; every problem is returned at once, each
// naming file:line:column and the field, each satisfying errors.Is(err, ErrInvalid).
func Parse(file string, data []byte) (*Definition, error) {
	doc := &yamlstrict.Doc{File: file, Class: ErrInvalid, What: what, MaxSize: MaxDefinitionSize}
	root := doc.Parse(data)
	if doc.Failed() {
		return nil, doc.Err()
	}
	if root == nil {
		doc.Addf(yamlstrict.Pos{Line: 1}, "", "empty file")
		return nil, doc.Err()
	}
	d := &Definition{File: file, Raw: bytes.TrimPrefix(slices.Clone(data), []byte("\xEF\xBB\xBF")), MaxShrink: DefaultMaxShrink, pos: map[string]yamlstrict.Pos{}}
	var extractNode, incNode, periodNode, snapNode, keyNode *yaml.Node
	seen := doc.Mapping(root, "",
		yamlstrict.Field{Key: "name", Fn: func(v *yaml.Node, path string) {
			if s, ok := doc.Str(v, path); ok {
				if !nameRE().MatchString(s) {
					doc.At(v, path, "bad name %q (want lower-case letters, digits and '-')", s)
				}
				d.Name = s
			}
		}},
		yamlstrict.Field{Key: "title", Fn: func(v *yaml.Node, path string) { d.Title, _ = doc.Str(v, path) }},
		yamlstrict.Field{Key: "description", Fn: func(v *yaml.Node, path string) { d.Description, _ = doc.Str(v, path) }},
		yamlstrict.Field{Key: "source", Fn: func(v *yaml.Node, path string) {
			if s, ok := doc.Str(v, path); ok {
				if !identRE().MatchString(s) && !nameRE().MatchString(s) {
					doc.At(v, path, "bad source name %q", s)
				}
				d.Source = s
			}
		}},
		yamlstrict.Field{Key: "after", Fn: func(v *yaml.Node, path string) {
			if names, ok := doc.StrList(v, path); ok {
				for i, n := range names {
					if !nameRE().MatchString(n) {
						doc.At(v.Content[i], yamlstrict.Index(path, i), "bad ETL name %q", n)
					}
					d.pos[yamlstrict.Index("after", i)] = yamlstrict.PosOf(v.Content[i])
				}
				d.After = names
			}
		}},
		yamlstrict.Field{Key: "extract", Fn: func(v *yaml.Node, path string) {
			extractNode = v
			d.pos["extract"] = yamlstrict.PosOf(v)
			parseExtract(doc, d, v, path)
		}},
		yamlstrict.Field{Key: "target", Fn: func(v *yaml.Node, path string) {
			d.pos["target"] = yamlstrict.PosOf(v)
			doc.Mapping(v, path,
				yamlstrict.Field{Key: "table", Fn: func(v *yaml.Node, path string) {
					if s, ok := doc.Str(v, path); ok {
						if !identRE().MatchString(s) || strings.HasPrefix(s, "rpt_") {
							doc.At(v, path, "bad table name %q (want [a-z_][a-z0-9_]*, up to 64, not starting rpt_)", s)
						}
						d.Target = s
					}
				}},
				yamlstrict.Field{Key: "key", Fn: func(v *yaml.Node, path string) {
					keyNode = v
					if cols, ok := doc.StrList(v, path); ok {
						for i, c := range cols {
							if !identRE().MatchString(c) {
								doc.At(v.Content[i], yamlstrict.Index(path, i), "bad column name %q", c)
							}
						}
						d.Key = cols
					}
				}},
				yamlstrict.Field{Key: "create", Fn: func(v *yaml.Node, path string) {
					if s, ok := doc.Str(v, path); ok {
						if err := source.CheckStatement(source.DialectMySQL, s); err != nil {
							doc.At(v, path, "%v", err)
						}
						if !createRE.MatchString(s) {
							doc.At(v, path, "want one CREATE TABLE statement")
						}
						d.Create = s
					}
				}},
				yamlstrict.Field{Key: "max_shrink", Fn: func(v *yaml.Node, path string) {
					var f float64
					if v.Kind != yaml.ScalarNode || v.Decode(&f) != nil || f < 0 || f > 1 {
						doc.At(v, path, "want a share between 0 and 1 (0.5: refuse a load that loses more than half the rows), got %s", doc.Describe(v))
						return
					}
					d.MaxShrink = f
				}},
				yamlstrict.Field{Key: "allow_empty", Fn: func(v *yaml.Node, path string) { d.AllowEmpty, _ = doc.Bool(v, path) }},
			)
		}},
		yamlstrict.Field{Key: "mode", Fn: func(v *yaml.Node, path string) {
			d.pos["mode"] = yamlstrict.PosOf(v)
			if s, ok := doc.Str(v, path); ok {
				if !slices.Contains(modes, s) {
					doc.At(v, path, "unknown mode %q (want %s)", s, strings.Join(modes, ", "))
				}
				d.Mode = s
			}
		}},
		yamlstrict.Field{Key: "incremental", Fn: func(v *yaml.Node, path string) {
			incNode = v
			d.Increment = &Incremental{Nulls: NullsReload}
			doc.Mapping(v, path,
				yamlstrict.Field{Key: "column", Fn: func(v *yaml.Node, path string) {
					if s, ok := doc.Str(v, path); ok {
						if !identRE().MatchString(s) {
							doc.At(v, path, "bad column name %q", s)
						}
						d.Increment.Column = s
					}
				}},
				yamlstrict.Field{Key: "lookback", Fn: func(v *yaml.Node, path string) {
					if s, ok := doc.Str(v, path); ok {
						t, err := time.ParseDuration(s)
						if err != nil || t < 0 {
							doc.At(v, path, "bad duration %q (want e.g. 0s, 30m, 2h)", s)
						}
						d.Increment.Lookback = t
					}
				}},
				yamlstrict.Field{Key: "nulls", Fn: func(v *yaml.Node, path string) {
					if s, ok := doc.Str(v, path); ok {
						if s != NullsReload && s != NullsSkip {
							doc.At(v, path, "want %s or %s, got %q", NullsReload, NullsSkip, s)
						}
						d.Increment.Nulls = s
					}
				}},
				yamlstrict.Field{Key: "initial", Fn: func(v *yaml.Node, path string) { d.Increment.Initial, _ = doc.Str(v, path) }},
			)
			if d.Increment.Column == "" {
				doc.At(v, path+".column", "missing: the update column")
			}
		}},
		yamlstrict.Field{Key: "period_range", Fn: func(v *yaml.Node, path string) {
			periodNode = v
			d.Period = &PeriodRange{}
			doc.Mapping(v, path,
				yamlstrict.Field{Key: "column", Fn: func(v *yaml.Node, path string) {
					if s, ok := doc.Str(v, path); ok {
						if !identRE().MatchString(s) {
							doc.At(v, path, "bad column name %q", s)
						}
						d.Period.Column = s
					}
				}},
				yamlstrict.Field{Key: "window_sql", Fn: func(v *yaml.Node, path string) {
					if s, ok := doc.Str(v, path); ok {
						if err := source.CheckStatement(source.DialectMySQL, s); err != nil {
							doc.At(v, path, "%v", err)
						}
						if refs := source.ParamRefs(source.DialectMySQL, s); len(refs) > 0 {
							doc.At(v, path, "takes no parameters (found :%s)", refs[0].Name)
						}
						d.Period.WindowSQL = s
					}
				}},
			)
			if d.Period.Column == "" {
				doc.At(v, path+".column", "missing: the period column (YYYYMM)")
			}
		}},
		yamlstrict.Field{Key: "snapshot", Fn: func(v *yaml.Node, path string) {
			snapNode = v
			doc.Mapping(v, path, yamlstrict.Field{Key: "column", Fn: func(v *yaml.Node, path string) {
				if s, ok := doc.Str(v, path); ok {
					if !identRE().MatchString(s) {
						doc.At(v, path, "bad column name %q", s)
					}
					d.SnapshotColumn = s
				}
			}})
		}},
	)
	if doc.Failed() {
		return nil, doc.Err()
	}
	for _, k := range []string{"name", "source", "extract", "target", "mode"} {
		if seen[k] == nil {
			doc.Addf(yamlstrict.Pos{Line: 1}, k, "missing")
		}
	}
	if seen["target"] != nil && d.Target == "" {
		doc.Addf(d.pos["target"], "target.table", "missing")
	}
	if slices.Contains(d.After, d.Name) {
		doc.Addf(yamlstrict.Pos{Line: 1}, "after", "%q cannot run after itself", d.Name)
	}
	if extractNode != nil {
		checkExtractParams(doc, d, extractNode)
	}
	// The mode's own block, and no other's.
	modeBlock := map[string]*yaml.Node{ModeIncremental: incNode, ModePeriodRange: periodNode, ModeSnapshot: snapNode}
	for m, n := range modeBlock {
		key := strings.ReplaceAll(m, "-", "_")
		if n != nil && d.Mode != m {
			doc.At(n, key, "only for mode: %s (this is mode: %s)", m, d.Mode)
		}
		if n == nil && d.Mode == m && m != ModeSnapshot {
			doc.Addf(d.pos["mode"], key, "missing: mode %s needs an %s: block", m, key)
		}
	}
	if d.Mode == ModeSnapshot && d.SnapshotColumn == "" {
		d.SnapshotColumn = "snapshot_at"
	}
	if (d.Mode == ModeIncremental) && len(d.Key) == 0 {
		at := d.pos["target"]
		if keyNode != nil {
			at = yamlstrict.PosOf(keyNode)
		}
		doc.Addf(at, "target.key", "mode %s upserts by key: name the target's unique key columns", d.Mode)
	}
	if d.Mode == ModeIncremental && d.Increment != nil && d.SQL != "" && d.Increment.Initial == "" {
		doc.Addf(d.pos["extract"], "incremental.initial", "missing: an sql: extract binds :since, and the first run needs a value for it (e.g. '1900-01-01')")
	}
	if d.Mode == ModeIncremental && d.Procedure != nil {
		doc.Addf(d.pos["extract"], "extract.procedure", "an incremental ETL needs sql: or table: (the engine binds :since)")
	}
	return d, doc.Err()
}

var createRE = regexp.MustCompile(`(?is)^\s*CREATE\s+TABLE\s`)

func parseExtract(doc *yamlstrict.Doc, d *Definition, v *yaml.Node, path string) {
	n := 0
	doc.Mapping(v, path,
		yamlstrict.Field{Key: "sql", Fn: func(v *yaml.Node, path string) {
			n++
			if s, ok := doc.Str(v, path); ok {
				if err := source.CheckStatement(source.DialectMySQL, s); err != nil {
					doc.At(v, path, "%v", err)
				}
				d.SQL = s
			}
		}},
		yamlstrict.Field{Key: "table", Fn: func(v *yaml.Node, path string) {
			n++
			if s, ok := doc.Str(v, path); ok {
				if !srcNameRE().MatchString(s) {
					doc.At(v, path, "bad table name %q (want a name or schema.name of letters, digits and '_')", s)
				}
				d.Table = s
			}
		}},
		yamlstrict.Field{Key: "procedure", Fn: func(v *yaml.Node, path string) {
			n++
			p := &source.Procedure{}
			doc.Mapping(v, path,
				yamlstrict.Field{Key: "name", Fn: func(v *yaml.Node, path string) {
					if s, ok := doc.Str(v, path); ok {
						if !procRE().MatchString(s) {
							doc.At(v, path, "bad procedure name %q", s)
						}
						p.Name = s
					}
				}},
				yamlstrict.Field{Key: "args", Fn: func(v *yaml.Node, path string) {
					if args, ok := doc.StrList(v, path); ok {
						for i, a := range args {
							if a != ParamFromPeriod && a != ParamToPeriod {
								doc.At(v.Content[i], yamlstrict.Index(path, i), "unknown argument %q (an ETL procedure takes %s, %s)", a, ParamFromPeriod, ParamToPeriod)
							}
						}
						p.Args = args
					}
				}},
			)
			d.Procedure = p
		}},
		yamlstrict.Field{Key: "columns", Fn: func(v *yaml.Node, path string) {
			d.Columns = map[string]source.Type{}
			doc.StrMap(v, path, func(k *yaml.Node, key, val, path string) {
				switch t := source.Type(val); t {
				case source.TypeInt, source.TypeDecimal, source.TypeFloat, source.TypeString, source.TypeBool, source.TypeDate, source.TypeDateTime, source.TypeBytes:
					d.Columns[key] = t
				default:
					doc.At(k, path, "unknown type %q", val)
				}
			})
		}},
	)
	if n != 1 && v.Kind == yaml.MappingNode {
		doc.At(v, path, "want exactly one of sql, table, procedure (got %d)", n)
	}
}

// checkExtractParams checks the :name parameters of an sql: extract against the mode.
func checkExtractParams(doc *yamlstrict.Doc, d *Definition, v *yaml.Node) {
	allowed := map[string][]string{
		ModeIncremental: {ParamSince},
		ModePeriodRange: {ParamFromPeriod, ParamToPeriod},
	}[d.Mode]
	if d.SQL != "" {
		used := map[string]bool{}
		for _, r := range source.ParamRefs(source.DialectMySQL, d.SQL) {
			if r.Positional || !slices.Contains(allowed, r.Name) {
				doc.At(yamlstrict.Lookup(v, "sql"), "extract.sql", "line %d: unknown parameter :%s (mode %s binds %s)", r.Line, r.Name, d.Mode, listOrNone(allowed))
				continue
			}
			used[r.Name] = true
		}
		for _, a := range allowed {
			if !used[a] {
				doc.At(yamlstrict.Lookup(v, "sql"), "extract.sql", "mode %s needs :%s in the SQL (it selects the rows to load)", d.Mode, a)
			}
		}
	}
	if d.Procedure != nil && d.Mode != ModePeriodRange && len(d.Procedure.Args) > 0 {
		doc.At(yamlstrict.Lookup(v, "procedure"), "extract.procedure.args", "only a period-range ETL passes arguments")
	}
}

func listOrNone(s []string) string {
	if len(s) == 0 {
		return "none"
	}
	return ":" + strings.Join(s, ", :")
}

// String is "name (mode, source -> target)" for lists.
func (d *Definition) String() string {
	return fmt.Sprintf("%s (%s, %s -> %s)", d.Name, d.Mode, d.Source, d.Target)
}
