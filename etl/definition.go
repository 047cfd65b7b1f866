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
	"maps"
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
	ParamPCN        = "pcn" // per_pcn: the partition's PCN
)

// Reconcile ranges: which target rows a reconcile compares with the source's keys.
const (
	WithinLookback = "lookback" // incremental: rows whose update column is in the run's window (since the watermark less the lookback)
	WithinAll      = "all"      // every row (of the partition)
)

// DefaultMaxDelete is the share of the compared target rows a reconcile may delete
// before its guard refuses.
const DefaultMaxDelete = 0.1

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
	SQL        string
	Table      string
	Procedure  *source.Procedure
	DataSource *source.DataSource     // a Plex web-service data source (a plexws source)
	Columns    map[string]source.Type // type overrides, as a report's columns:

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

	// PerPCN runs the ETL once per PCN, each a partition of its own (see PerPCN).
	PerPCN *PerPCN
	// Reconcile deletes target rows whose keys the source no longer has.
	Reconcile *Reconcile

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

// PerPCN says that an ETL runs per PCN (plant): one partition per PCN, each with its
// own transaction and state row, reading through the source's account of that PCN
// (plexws) or binding :pcn (SQL), and replacing only that PCN's rows of the target.
type PerPCN struct {
	Column string // the target (and extract) column holding the PCN
	PCNs   []int  // the PCNs; none: every PCN the source has an account for
}

// Reconcile finds source deletes: target rows within a range whose keys the source
// no longer returns are deleted in the load's transaction.
type Reconcile struct {
	Within    string  // WithinLookback or WithinAll
	KeysSQL   string  // the source's keys in the range; "" with a table: extract: derived
	MaxDelete float64 // the share of the compared rows it may delete (guard)
}

// Pos is where a field of the definition is in its file (for errors found later).
func (d *Definition) Pos(field string) yamlstrict.Pos { return d.pos[field] }

// Request is the extract as a source request with the engine's parameters.
func (d *Definition) request(driver string, params map[string]any, where string) source.Request {
	switch {
	case d.Procedure != nil:
		return source.Request{Procedure: d.Procedure, Params: params}
	case d.DataSource != nil:
		ds := *d.DataSource
		if _, ok := params[ParamPCN]; ok {
			ds.PCN = ParamPCN // one call, with that PCN's account; rows get a pcn column
		}
		return source.Request{DataSource: &ds, Params: params}
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
	var extractNode, incNode, periodNode, snapNode, keyNode, reconNode *yaml.Node
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
		yamlstrict.Field{Key: "per_pcn", Fn: func(v *yaml.Node, path string) {
			d.pos["per_pcn"] = yamlstrict.PosOf(v)
			d.PerPCN = &PerPCN{Column: ParamPCN}
			if v.Kind == yaml.ScalarNode && v.Tag == "!!bool" {
				// per_pcn: true
				if on, ok := doc.Bool(v, path); ok && !on {
					d.PerPCN = nil
				}
				return
			}
			doc.Mapping(v, path,
				yamlstrict.Field{Key: "column", Fn: func(v *yaml.Node, path string) {
					if s, ok := doc.Str(v, path); ok {
						if !identRE().MatchString(s) {
							doc.At(v, path, "bad column name %q", s)
						}
						d.PerPCN.Column = s
					}
				}},
				yamlstrict.Field{Key: "pcns", Fn: func(v *yaml.Node, path string) {
					if v.Kind != yaml.SequenceNode {
						doc.At(v, path, "want a list of PCNs (e.g. [123681, 300758]), got %s", doc.Describe(v))
						return
					}
					for i, e := range v.Content {
						n, ok := doc.Int(e, yamlstrict.Index(path, i))
						if !ok {
							continue
						}
						if n <= 0 {
							doc.At(e, yamlstrict.Index(path, i), "bad PCN %d (want the plant's Plex customer number)", n)
						} else if slices.Contains(d.PerPCN.PCNs, n) {
							doc.At(e, yamlstrict.Index(path, i), "PCN %d twice", n)
						}
						d.PerPCN.PCNs = append(d.PerPCN.PCNs, n)
					}
				}},
			)
		}},
		yamlstrict.Field{Key: "reconcile", Fn: func(v *yaml.Node, path string) {
			reconNode = v
			d.pos["reconcile"] = yamlstrict.PosOf(v)
			d.Reconcile = &Reconcile{Within: WithinLookback, MaxDelete: DefaultMaxDelete}
			doc.Mapping(v, path,
				yamlstrict.Field{Key: "within", Fn: func(v *yaml.Node, path string) {
					if s, ok := doc.Str(v, path); ok {
						if s != WithinLookback && s != WithinAll {
							doc.At(v, path, "want %s (the rows in the run's window) or %s (every row), got %q", WithinLookback, WithinAll, s)
						}
						d.Reconcile.Within = s
					}
				}},
				yamlstrict.Field{Key: "keys_sql", Fn: func(v *yaml.Node, path string) {
					d.pos["reconcile.keys_sql"] = yamlstrict.PosOf(v)
					if s, ok := doc.Str(v, path); ok {
						if err := source.CheckStatement(source.DialectMySQL, s); err != nil {
							doc.At(v, path, "%v", err)
						}
						d.Reconcile.KeysSQL = s
					}
				}},
				yamlstrict.Field{Key: "max_delete", Fn: func(v *yaml.Node, path string) {
					var f float64
					if v.Kind != yaml.ScalarNode || v.Decode(&f) != nil || f < 0 || f > 1 {
						doc.At(v, path, "want a share between 0 and 1 (0.1: refuse to delete more than a tenth of the compared rows), got %s", doc.Describe(v))
						return
					}
					d.Reconcile.MaxDelete = f
				}},
			)
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
	if d.Reconcile != nil {
		checkReconcile(doc, d, reconNode)
	}
	if d.PerPCN != nil && d.Mode != ModeSnapshot && len(d.Key) > 0 && !slices.Contains(d.Key, d.PerPCN.Column) {
		at := d.pos["target"]
		if keyNode != nil {
			at = yamlstrict.PosOf(keyNode)
		}
		doc.Addf(at, "target.key", "a per_pcn ETL's key includes its PCN column %q (two plants may use the same numbers)", d.PerPCN.Column)
	}
	if d.Mode == ModeIncremental && d.Increment != nil && (d.SQL != "" || d.DataSource != nil) && d.Increment.Initial == "" {
		doc.Addf(d.pos["extract"], "incremental.initial", "missing: an sql: or datasource: extract binds :since, and the first run needs a value for it (e.g. '1900-01-01')")
	}
	if d.Mode == ModeIncremental && d.Procedure != nil {
		doc.Addf(d.pos["extract"], "extract.procedure", "an incremental ETL needs sql:, table: or datasource: (the engine binds :since)")
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
							if a != ParamFromPeriod && a != ParamToPeriod && a != ParamPCN {
								doc.At(v.Content[i], yamlstrict.Index(path, i), "unknown argument %q (an ETL procedure takes %s, %s, %s)", a, ParamFromPeriod, ParamToPeriod, ParamPCN)
							}
						}
						p.Args = args
					}
				}},
			)
			d.Procedure = p
		}},
		yamlstrict.Field{Key: "datasource", Fn: func(v *yaml.Node, path string) {
			n++
			d.DataSource = parseDataSource(doc, v, path)
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
		doc.At(v, path, "want exactly one of sql, table, procedure, datasource (got %d)", n)
	}
}

// parseDataSource reads extract.datasource: {key, name, inputs, columns}: a Plex
// web-service data source called through a plexws source. inputs map Plex's input
// names to the engine's parameters (pcn, since, from_period, to_period), optionally
// with a date format; columns are the columns Plex returns, in order, each Name or
// {Name: type}.
func parseDataSource(doc *yamlstrict.Doc, n *yaml.Node, path string) *source.DataSource {
	ds := &source.DataSource{Inputs: map[string]string{}}
	seen := doc.Mapping(n, path,
		yamlstrict.Field{Key: "key", Fn: func(v *yaml.Node, fp string) {
			if k, ok := doc.Int(v, fp); ok {
				if k < 1 {
					doc.At(v, fp, "must be the data source's key (a positive number), got %d", k)
				}
				ds.Key = k
			}
		}},
		yamlstrict.Field{Key: "name", Fn: func(v *yaml.Node, fp string) { ds.Name, _ = doc.Str(v, fp) }},
		yamlstrict.Field{Key: "inputs", Fn: func(v *yaml.Node, fp string) {
			doc.Pairs(v, fp, "a mapping (Plex input: parameter)", "input", func(k, iv *yaml.Node, sub string) {
				if strings.TrimSpace(k.Value) == "" {
					doc.At(k, sub, "empty input name")
				}
				param := func(pv *yaml.Node, pp string) {
					if s, ok := doc.Str(pv, pp); ok {
						if !slices.Contains(engineParams, s) {
							doc.At(pv, pp, "unknown parameter %q (an ETL binds %s)", s, strings.Join(engineParams, ", "))
						}
						ds.Inputs[k.Value] = s
					}
				}
				if iv.Kind == yaml.ScalarNode {
					param(iv, sub)
					return
				}
				doc.Mapping(iv, sub,
					yamlstrict.Field{Key: "param", Fn: param},
					yamlstrict.Field{Key: "format", Fn: func(fv *yaml.Node, fpp string) {
						f, ok := doc.Str(fv, fpp)
						if !ok {
							return
						}
						if !strings.Contains(f, "2006") {
							doc.At(fv, fpp, "bad date format %q (a Go layout such as 01/02/2006 for MM/DD/YYYY)", f)
						}
						if ds.Formats == nil {
							ds.Formats = map[string]string{}
						}
						ds.Formats[k.Value] = f
					}},
				)
				if _, ok := ds.Inputs[k.Value]; !ok && iv.Kind == yaml.MappingNode {
					doc.At(iv, sub+".param", "missing (the parameter this input takes)")
				}
			})
		}},
		yamlstrict.Field{Key: "columns", Fn: func(v *yaml.Node, fp string) {
			if v.Kind != yaml.SequenceNode {
				doc.At(v, fp, "want a list of the columns Plex returns, in order ({Name: type} or Name), got %s", doc.Describe(v))
				return
			}
			seenCol := map[string]bool{}
			for j, c := range v.Content {
				ip := yamlstrict.Index(fp, j)
				name, typ := "", source.TypeString
				switch {
				case c.Kind == yaml.ScalarNode:
					name, _ = doc.Str(c, ip)
				case c.Kind == yaml.MappingNode && len(c.Content) == 2:
					name = c.Content[0].Value
					if t, ok := doc.Str(c.Content[1], yamlstrict.Join(ip, name)); ok {
						typ = source.Type(t)
						if !slices.Contains(columnTypes, typ) {
							doc.At(c.Content[1], yamlstrict.Join(ip, name), "unknown type %q (want %s)", t, joinTypes())
						}
					}
				default:
					doc.At(c, ip, "want Name or {Name: type}, got %s", doc.Describe(c))
					continue
				}
				if !srcColumnRE().MatchString(name) {
					doc.At(c, ip, "bad column name %q", name)
				}
				if seenCol[strings.ToLower(name)] {
					doc.At(c, ip, "column %q twice", name)
				}
				seenCol[strings.ToLower(name)] = true
				ds.Columns = append(ds.Columns, name)
				ds.Types = append(ds.Types, typ)
			}
		}},
	)
	if n.Kind == yaml.MappingNode {
		if seen["key"] == nil {
			doc.At(n, path+".key", "missing (the data source's key in Plex)")
		}
		if seen["columns"] == nil {
			doc.At(n, path+".columns", "missing (the columns Plex returns, in order)")
		}
	}
	return ds
}

// engineParams are the parameters the engine binds (which ones a run binds depends on
// its mode and per_pcn).
var engineParams = []string{ParamPCN, ParamSince, ParamFromPeriod, ParamToPeriod}

var columnTypes = []source.Type{source.TypeInt, source.TypeDecimal, source.TypeFloat, source.TypeString, source.TypeBool, source.TypeDate, source.TypeDateTime, source.TypeBytes}

var srcColumnRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,127}$`) })

func joinTypes() string {
	s := make([]string, len(columnTypes))
	for i, t := range columnTypes {
		s[i] = string(t)
	}
	return strings.Join(s, ", ")
}

// checkReconcile checks reconcile: against the mode and the extract.
func checkReconcile(doc *yamlstrict.Doc, d *Definition, n *yaml.Node) {
	r := d.Reconcile
	if len(d.Key) == 0 {
		doc.At(n, "reconcile", "needs target.key: the columns that say which source row a target row is")
	}
	if d.Mode == ModeSnapshot {
		doc.At(n, "reconcile", "a snapshot ETL appends sets; there is nothing to reconcile")
	}
	if r.Within == WithinLookback && d.Mode != ModeIncremental {
		doc.At(n, "reconcile.within", "%s is the window of an incremental run; a %s ETL replaces its rows each run (use within: %s)", WithinLookback, d.Mode, WithinAll)
	}
	if r.KeysSQL == "" && d.Table == "" {
		keys := "target.key's columns"
		if len(d.Key) > 0 {
			keys = strings.Join(d.Key, ", ")
		}
		doc.At(n, "reconcile.keys_sql", "missing: with an sql:, procedure: or datasource: extract, give the SQL that returns the source's keys (%s)", keys)
	}
	if r.KeysSQL != "" {
		allowed := []string{}
		if r.Within == WithinLookback {
			allowed = append(allowed, ParamSince)
		}
		if d.PerPCN != nil {
			allowed = append(allowed, ParamPCN)
		}
		at := yamlstrict.Lookup(n, "keys_sql")
		for _, ref := range source.ParamRefs(source.DialectMySQL, r.KeysSQL) {
			if ref.Positional || !slices.Contains(allowed, ref.Name) {
				doc.At(at, "reconcile.keys_sql", "line %d: unknown parameter :%s (binds %s)", ref.Line, ref.Name, listOrNone(allowed))
			}
		}
	}
}

// checkExtractParams checks the :name parameters of an sql: extract against the mode.
func checkExtractParams(doc *yamlstrict.Doc, d *Definition, v *yaml.Node) {
	allowed := slices.Clone(map[string][]string{
		ModeIncremental: {ParamSince},
		ModePeriodRange: {ParamFromPeriod, ParamToPeriod},
	}[d.Mode])
	if d.PerPCN != nil {
		allowed = append(allowed, ParamPCN)
	}
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
			if !used[a] && a != ParamPCN {
				doc.At(yamlstrict.Lookup(v, "sql"), "extract.sql", "mode %s needs :%s in the SQL (it selects the rows to load)", d.Mode, a)
			}
		}
	}
	if d.SQL != "" && d.PerPCN != nil {
		used := false
		for _, r := range source.ParamRefs(source.DialectMySQL, d.SQL) {
			used = used || r.Name == ParamPCN
		}
		if !used {
			doc.At(yamlstrict.Lookup(v, "sql"), "extract.sql", "a per_pcn ETL's SQL selects one PCN's rows with :%s", ParamPCN)
		}
	}
	if d.Procedure != nil && d.Mode != ModePeriodRange && d.PerPCN == nil && len(d.Procedure.Args) > 0 {
		doc.At(yamlstrict.Lookup(v, "procedure"), "extract.procedure.args", "only a period-range or per_pcn ETL passes arguments")
	}
	if d.Procedure != nil {
		for i, a := range d.Procedure.Args {
			if a == ParamPCN && d.PerPCN == nil {
				doc.At(yamlstrict.Lookup(v, "procedure"), yamlstrict.Index("extract.procedure.args", i), "%s is bound only in a per_pcn ETL", ParamPCN)
			}
		}
	}
	if ds := d.DataSource; ds != nil {
		at := yamlstrict.Lookup(v, "datasource")
		for _, in := range slices.Sorted(maps.Keys(ds.Inputs)) {
			switch p := ds.Inputs[in]; {
			case slices.Contains(allowed, p):
			case p == ParamPCN:
				doc.At(at, "extract.datasource.inputs."+in, "parameter %s is bound only in a per_pcn ETL (per_pcn: {})", p)
			default:
				doc.At(at, "extract.datasource.inputs."+in, "parameter %s is not bound in a %s ETL (binds %s)", p, d.Mode, listOrNone(allowed))
			}
		}
		if d.PerPCN != nil && !slices.Contains(slices.Collect(maps.Values(ds.Inputs)), ParamPCN) {
			doc.At(at, "extract.datasource.inputs", "a per_pcn ETL passes the PCN to Plex: map an input to pcn (e.g. \"@PCNs\": pcn)")
		}
		if d.Mode == ModeIncremental && !slices.Contains(slices.Collect(maps.Values(ds.Inputs)), ParamSince) {
			doc.At(at, "extract.datasource.inputs", "an incremental ETL passes :since to Plex: map an input to since")
		}
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
