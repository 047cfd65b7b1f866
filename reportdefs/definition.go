// Package reportdefs loads report definitions: one YAML file per report with its
// parameters, SQL (per dialect), limits and optional store/deliver blocks. Decoding is
// strict (unknown keys, bad types and undeclared ":name" parameters are errors naming
// file:line and the field) so a bad definition is caught by `rpt reports validate` and
// at submit, never on an agent hours later. The shipped reports live in reports/ and are
// embedded in the binary.
package reportdefs

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"gopkg.in/yaml.v3"

	"rpt/internal/didyoumean"
	"rpt/internal/inputfile"
	"rpt/internal/source"
	"rpt/internal/storemode"
	"rpt/internal/yamlstrict"
)

// DefaultMaxAttempts is max_attempts when a definition does not set it.
const DefaultMaxAttempts = 3

// Store modes of a store: block (the one set: internal/storemode).
const (
	StoreAppend  = storemode.Append
	StoreUpsert  = storemode.Upsert
	StoreReplace = storemode.Replace
)

// Definition is one parsed, validated report definition.
type Definition struct {
	Name        string
	NamePos     yamlstrict.Pos // where name: is written
	Title       string
	Description string
	Source      string
	// SourcePos is where source: is written, for errors about the source.
	SourcePos yamlstrict.Pos
	Params    []Param
	// Range names two parameters (range: [start_period, end_period]) of which the first
	// may not come after the second: a reversed range is refused at submit.
	Range []string
	// Concurrency is the most runs at once across all agents (0: unlimited); with Group
	// set, the limit is shared by every report of the group.
	Concurrency int
	Group       string
	Timeout     time.Duration // 0: none
	MaxAttempts int
	Requires    map[string]string      // agent labels a run needs
	Columns     map[string]source.Type // output column type overrides
	SQL         string
	Dialects    map[string]string // driver -> SQL overriding SQL
	// Procedure and DataSource are the other ways to ask a source (see request.go);
	// a definition has exactly one of sql:/dialects:, procedure: and datasource:.
	Procedure  *source.Procedure
	DataSource *source.DataSource
	Store      *Store
	// Needs are the ETLs whose data a run needs fresh (needs: [{etl: NAME, max_age:
	// 4h}]): an agent that claims the job with a need's last load older than its
	// max_age, or never loaded, queues (or joins) that ETL and puts the job back to
	// wait, with no failure counted. The names are checked where the ETL catalogue is
	// known (reportdefs cannot import etl: architecture_test.go).
	Needs []Need
	// LoadedBy names the ETLs that load the warehouse tables a run reads, beyond its
	// needs: (loaded_by: [plex-accounts, plex-balances]), so that a result can say how
	// old its copy was; a report that names none says nothing about it rather than
	// guess from its SQL. LoadedByPos is where each name is written.
	LoadedBy    []string
	LoadedByPos []yamlstrict.Pos
	// Filename is the default name `rpt get ID -o xlsx` saves to on a terminal; it may
	// use {param}, {date} (MM-DD), {report}, {job}.
	Filename string
	Deliver  *Deliver
	Raw      []byte // the file as read: the snapshot a job carries
	File     string

	keyPos map[string]yamlstrict.Pos // where each top-level key is, for errors found after parsing
	// lookupPos is where each datasource.lookups entry's source: is written.
	lookupPos []yamlstrict.Pos
}

// Need is one entry of needs:, the freshness a run requires of an ETL's data.
type Need struct {
	ETL    string
	MaxAge time.Duration
	Pos    yamlstrict.Pos // where the entry's etl: is written
}

// Store is a definition's store: block: write each run's rows into a warehouse table.
type Store struct {
	Table        string
	Mode         string // append, upsert or replace
	Key          []string
	ReplaceWhere string
	// Adopt lets the load write into an existing table rpt did not create for history
	// (an ETL table); without it such a table is refused.
	Adopt bool
}

// Deliver is a definition's deliver: block.
type Deliver struct {
	Email *Email
}

// Email delivers a run's result as an attachment.
type Email struct {
	To       []string
	Format   string // xlsx, csv or json
	Filename string // may use {param}, {date}, {report}, {job}
}

var (
	nameRE    = regexp.MustCompile(`^[a-z0-9][a-z0-9-]*$`)
	paramRE   = regexp.MustCompile(`^[a-z_][a-z0-9_]*$`)
	identRE   = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	tableRE   = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[a-z_][a-z0-9_]{0,63}$`) }) // what the history loader accepts
	labelRE   = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._/-]*$`)
	emailRE   = regexp.MustCompile(`^[^@\s]+@[^@\s]+$`)
	placeRE   = regexp.MustCompile(`\{([^{}]*)\}`)
	columnRE  = regexp.MustCompile(`^[^\x00-\x1f]+$`)
	filenames = []string{"date", "report", "job"}
)

var columnTypes = []source.Type{source.TypeInt, source.TypeDecimal, source.TypeFloat, source.TypeString,
	source.TypeBool, source.TypeDate, source.TypeDateTime}

func columnTypeNames() []string {
	out := make([]string, len(columnTypes))
	for i, t := range columnTypes {
		out[i] = string(t)
	}
	return out
}

// validationNow is the fixed instant defaults are checked against at parse time; a
// relative default resolves at any instant, so which one does not matter.
var validationNow = time.Date(2000, 1, 15, 12, 0, 0, 0, time.UTC)

// MaxDefinitionSize is the largest definition file accepted. Real definitions are a
// few KiB; a bigger file is a mistake (a data dump in the reports folder) and is refused
// before it is read into memory.
const MaxDefinitionSize = 1 << 20

// ParseFile reads and parses one definition file, refusing one over
// MaxDefinitionSize, a directory, FIFO or device without reading it.
func ParseFile(path string) (*Definition, error) {
	data, err := ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(path, data)
}

const what = "a report definition"

// ReadFile reads a definition file through inputfile.Read: at most
// MaxDefinitionSize+1 bytes, and nothing from a path that is not a regular file. Every
// error is a *FieldError naming the file and satisfies errors.Is(err, ErrInvalid).
func ReadFile(path string) ([]byte, error) {
	data, err := inputfile.Read(path, MaxDefinitionSize, what)
	if err != nil {
		msg := err.Error()
		var ie *inputfile.Error
		if errors.As(err, &ie) {
			msg = ie.Msg
		}
		return nil, fieldError(path, yamlstrict.Pos{}, "", "%s", msg)
	}
	return data, nil
}

// Parse decodes and validates one definition. file names the source in errors. Every
// problem of the file is returned (errors.Join, ordered by position), each a
// *FieldError satisfying errors.Is(err, ErrInvalid).
func Parse(file string, data []byte) (*Definition, error) {
	doc := &yamlstrict.Doc{File: file, Class: ErrInvalid, What: what, MaxSize: MaxDefinitionSize}
	if len(data) <= MaxDefinitionSize && len(strings.TrimSpace(string(data))) == 0 {
		doc.Addf(yamlstrict.Pos{Line: 1}, "", "empty file")
		return nil, doc.Err()
	}
	root := doc.Parse(data)
	if doc.Failed() {
		return nil, doc.Err()
	}
	if root == nil {
		doc.Addf(yamlstrict.Pos{Line: 1}, "", "empty file")
		return nil, doc.Err()
	}
	data = bytes.TrimPrefix(data, []byte("\xEF\xBB\xBF"))
	d := &Definition{Raw: slices.Clone(data), File: file, MaxAttempts: DefaultMaxAttempts}
	var sqlNode, groupNode, filenameNode, rangeNode *yaml.Node
	dialectNodes := map[string]*yaml.Node{}
	var reqNodes requestNodes
	var store *yaml.Node
	seen := doc.Mapping(root, "",
		yamlstrict.Field{Key: "name", Fn: func(v *yaml.Node, path string) {
			d.NamePos = yamlstrict.PosOf(v)
			if s, ok := doc.Str(v, path); ok {
				if !nameRE.MatchString(s) || len(s) > 100 {
					doc.At(v, path, "bad name %q (want lower-case letters, digits and '-', starting with a letter or digit)", s)
				}
				d.Name = s
			}
		}},
		yamlstrict.Field{Key: "title", Fn: func(v *yaml.Node, path string) { d.Title, _ = doc.Str(v, path) }},
		yamlstrict.Field{Key: "description", Fn: func(v *yaml.Node, path string) { d.Description, _ = doc.Str(v, path) }},
		yamlstrict.Field{Key: "source", Fn: func(v *yaml.Node, path string) {
			d.SourcePos = yamlstrict.PosOf(v)
			if s, ok := doc.Str(v, path); ok {
				if !nameRE.MatchString(s) && !identRE.MatchString(s) {
					doc.At(v, path, "bad source name %q", s)
				}
				d.Source = s
			}
		}},
		yamlstrict.Field{Key: "params", Fn: func(v *yaml.Node, path string) { d.Params = parseParams(doc, v, path) }},
		yamlstrict.Field{Key: "range", Fn: func(v *yaml.Node, path string) {
			rangeNode = v
			if names, ok := doc.StrList(v, path); ok {
				if len(names) != 2 {
					doc.At(v, path, "want two parameters, [from, to], got %d", len(names))
				}
				d.Range = names
			}
		}},
		yamlstrict.Field{Key: "concurrency", Fn: func(v *yaml.Node, path string) {
			if n, ok := doc.Int(v, path); ok {
				if n < 1 {
					doc.At(v, path, "must be at least 1 (omit it for unlimited), got %d", n)
				}
				d.Concurrency = n
			}
		}},
		yamlstrict.Field{Key: "group", Fn: func(v *yaml.Node, path string) {
			groupNode = v
			if s, ok := doc.Str(v, path); ok {
				if !nameRE.MatchString(s) {
					doc.At(v, path, "bad group name %q (want lower-case letters, digits and '-')", s)
				}
				d.Group = s
			}
		}},
		yamlstrict.Field{Key: "timeout", Fn: func(v *yaml.Node, path string) {
			if s, ok := doc.Str(v, path); ok {
				t, err := time.ParseDuration(s)
				switch {
				case err != nil:
					doc.At(v, path, "bad duration %q (want e.g. 90s, 30m, 2h)", s)
				case t <= 0:
					doc.At(v, path, "must be positive (omit it for no timeout), got %q", s)
				}
				d.Timeout = t
			}
		}},
		yamlstrict.Field{Key: "max_attempts", Fn: func(v *yaml.Node, path string) {
			if n, ok := doc.Int(v, path); ok {
				if n < 1 || n > 100 {
					doc.At(v, path, "must be 1-100, got %d", n)
				}
				d.MaxAttempts = n
			}
		}},
		yamlstrict.Field{Key: "requires", Fn: func(v *yaml.Node, path string) {
			d.Requires = map[string]string{}
			doc.StrMap(v, path, func(k *yaml.Node, key, val, vpath string) {
				if !labelRE.MatchString(key) {
					doc.At(k, vpath, "bad label name %q", key)
				}
				d.Requires[key] = val
			})
		}},
		yamlstrict.Field{Key: "columns", Fn: func(v *yaml.Node, path string) {
			d.Columns = map[string]source.Type{}
			doc.StrMap(v, path, func(k *yaml.Node, key, val, vpath string) {
				if !columnRE.MatchString(key) {
					doc.At(k, vpath, "bad column name %q", key)
				}
				if !slices.Contains(columnTypes, source.Type(val)) {
					doc.At(k, vpath, "%s", didyoumean.Append(fmt.Sprintf("unknown column type %q (want int, decimal, float, string, bool, date, datetime)", val), val, columnTypeNames()))
				}
				d.Columns[key] = source.Type(val)
			})
		}},
		yamlstrict.Field{Key: "sql", Fn: func(v *yaml.Node, path string) {
			sqlNode = v
			if s, ok := doc.Str(v, path); ok {
				if strings.TrimSpace(s) == "" {
					doc.At(v, path, "empty SQL")
				}
				d.SQL = s
			}
		}},
		yamlstrict.Field{Key: "dialects", Fn: func(v *yaml.Node, path string) {
			d.Dialects = map[string]string{}
			drivers := source.KnownDrivers()
			doc.Pairs(v, path, "a mapping (driver: SQL)", "key", func(k, sqlv *yaml.Node, vpath string) {
				val, ok := doc.Str(sqlv, vpath)
				if !ok {
					return
				}
				if !slices.Contains(drivers, k.Value) {
					doc.At(k, vpath, "%s", didyoumean.Append(fmt.Sprintf("unknown driver %q (want %s)", k.Value, strings.Join(drivers, ", ")), k.Value, drivers))
				}
				if strings.TrimSpace(val) == "" {
					doc.At(k, vpath, "empty SQL")
				}
				d.Dialects[k.Value] = val
				dialectNodes[k.Value] = sqlv
			})
		}},
		yamlstrict.Field{Key: "procedure", Fn: func(v *yaml.Node, path string) { d.Procedure = parseProcedure(doc, v, path, &reqNodes) }},
		yamlstrict.Field{Key: "datasource", Fn: func(v *yaml.Node, path string) { d.DataSource = parseDataSource(doc, v, path, &reqNodes) }},
		yamlstrict.Field{Key: "store", Fn: func(v *yaml.Node, path string) { store = v; d.Store = parseStore(doc, v, path) }},
		yamlstrict.Field{Key: "needs", Fn: func(v *yaml.Node, path string) { d.Needs = parseNeeds(doc, v, path) }},
		yamlstrict.Field{Key: "loaded_by", Fn: func(v *yaml.Node, path string) { d.LoadedBy, d.LoadedByPos = parseLoadedBy(doc, v, path) }},
		yamlstrict.Field{Key: "deliver", Fn: func(v *yaml.Node, path string) { d.Deliver = parseDeliver(doc, v, path, d) }},
		yamlstrict.Field{Key: "filename", Fn: func(v *yaml.Node, path string) {
			d.Filename, _ = doc.Str(v, path)
			filenameNode = v
		}},
	)
	if root.Kind != yaml.MappingNode {
		return nil, doc.Err()
	}
	for _, req := range []string{"name", "source"} {
		if seen[req] == nil {
			doc.At(root, req, "missing (required)")
		}
	}
	if groupNode != nil && d.Concurrency == 0 {
		doc.At(groupNode, "group", "needs concurrency: (the number of runs the group allows at once)")
	}
	declared := map[string]bool{}
	for _, prm := range d.Params {
		declared[prm.Name] = true
	}
	if rangeNode != nil && len(d.Range) == 2 {
		checkRange(doc, rangeNode, d)
	}
	checkRequest(doc, root, d, seen, &reqNodes)
	// sql: runs on every driver that has no dialects: entry of its own, so it is read
	// as each of them reads it (a MySQL backslash escape is no escape to SQLite).
	var generic []string
	for _, drv := range source.Drivers {
		if _, own := d.Dialects[drv]; !own {
			generic = append(generic, drv)
		}
	}
	if len(generic) == 0 {
		generic = source.Drivers
	}
	checkQuery(doc, sqlNode, "sql", d.SQL, generic, declared)
	for _, drv := range sortedKeys(d.Dialects) {
		checkQuery(doc, dialectNodes[drv], "dialects."+drv, d.Dialects[drv], []string{drv}, declared)
	}
	if d.Store != nil && d.Store.ReplaceWhere != "" {
		where := yamlstrict.Lookup(store, "replace_where")
		checkParams(doc, where, "store.replace_where", d.Store.ReplaceWhere, source.Drivers, declared)
		checkSQL(doc, where, "store.replace_where", d.Store.ReplaceWhere, source.Drivers, source.CheckCondition)
	}
	if d.Deliver != nil && d.Deliver.Email != nil {
		at := yamlstrict.PosOf(yamlstrict.Lookup(root, "deliver", "email", "filename"))
		if at.Line == 0 {
			at = yamlstrict.PosOf(root)
		}
		checkFilename(doc, at, "deliver.email.filename", d.Deliver.Email.Filename, declared)
	}
	if filenameNode != nil {
		checkFilename(doc, yamlstrict.PosOf(filenameNode), "filename", d.Filename, declared)
		if strings.ContainsAny(d.Filename, "/\\") {
			doc.At(filenameNode, "filename", "%q: a file name, not a path", d.Filename)
		}
	}
	if err := doc.Err(); err != nil {
		return nil, err
	}
	return d, nil
}

// checkQuery checks report SQL as each of drivers reads it: its parameters and that it
// is one statement.
func checkQuery(doc *yamlstrict.Doc, n *yaml.Node, path, sql string, drivers []string, declared map[string]bool) {
	checkParams(doc, n, path, sql, drivers, declared)
	checkSQL(doc, n, path, sql, drivers, source.CheckStatement)
}

// checkParams reports, at the place in the file where each is written, every ":name"
// in sql that is not a declared parameter and every positional placeholder, as any of
// drivers reads the text (the scanner Bind uses, so validation sees what runs).
func checkParams(doc *yamlstrict.Doc, n *yaml.Node, path, sql string, drivers []string, declared map[string]bool) {
	if n == nil || sql == "" {
		return
	}
	reported := map[string]bool{}
	for _, drv := range drivers {
		for _, ref := range source.ParamRefs(drv, sql) {
			if (!ref.Positional && declared[ref.Name]) || reported[ref.Name] {
				continue
			}
			reported[ref.Name] = true
			at := yamlstrict.TextPos(n, doc.Source, ref.Offset)
			if ref.Positional {
				doc.Addf(at, path, "positional placeholder %s: parameters are bound by name, write :name", ref.Name)
				continue
			}
			doc.Addf(at, path, ":%s is not a declared parameter (declared: %s)", ref.Name, declaredList(declared))
		}
	}
}

// checkSQL reports the first problem check finds in sql as any of drivers reads it.
func checkSQL(doc *yamlstrict.Doc, n *yaml.Node, path, sql string, drivers []string, check func(dialect, sql string) error) {
	if n == nil || sql == "" {
		return
	}
	for _, drv := range drivers {
		var se *source.SQLError
		if err := check(drv, sql); errors.As(err, &se) {
			doc.Addf(yamlstrict.TextPos(n, doc.Source, se.Offset), path, "%s", se.Msg)
			return
		}
	}
}

func declaredList(declared map[string]bool) string {
	if len(declared) == 0 {
		return "none"
	}
	return strings.Join(sortedKeys(declared), ", ")
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// parseNeeds reads needs:, a list of {etl: NAME, max_age: DURATION}, each ETL once.
func parseNeeds(doc *yamlstrict.Doc, n *yaml.Node, path string) []Need {
	if n.Kind != yaml.SequenceNode {
		doc.At(n, path, "want a list of {etl: NAME, max_age: DURATION}, got %s", doc.Describe(n))
		return nil
	}
	var out []Need
	seenETL := map[string]bool{}
	for i, c := range n.Content {
		ipath := yamlstrict.Index(path, i)
		need := Need{Pos: yamlstrict.PosOf(c)}
		seen := doc.Mapping(c, ipath,
			yamlstrict.Field{Key: "etl", Fn: func(v *yaml.Node, fp string) {
				if s, ok := doc.Str(v, fp); ok {
					switch {
					case !nameRE.MatchString(s) || len(s) > 100:
						doc.At(v, fp, "bad ETL name %q (want lower-case letters, digits and '-')", s)
					case seenETL[s]:
						doc.At(v, fp, "ETL %q is needed twice", s)
					}
					seenETL[s] = true
					need.ETL = s
					need.Pos = yamlstrict.PosOf(v)
				}
			}},
			yamlstrict.Field{Key: "max_age", Fn: func(v *yaml.Node, fp string) {
				if s, ok := doc.Str(v, fp); ok {
					t, err := time.ParseDuration(s)
					switch {
					case err != nil:
						doc.At(v, fp, "bad duration %q (want e.g. 30m, 4h)", s)
					case t < time.Minute:
						doc.At(v, fp, "must be at least 1m, got %q", s)
					}
					need.MaxAge = t
				}
			}},
		)
		if c.Kind == yaml.MappingNode {
			for _, req := range []string{"etl", "max_age"} {
				if seen[req] == nil {
					doc.At(c, ipath+"."+req, "missing (required)")
				}
			}
		}
		out = append(out, need)
	}
	return out
}

// parseLoadedBy reads loaded_by:, a list of ETL names, each once.
func parseLoadedBy(doc *yamlstrict.Doc, n *yaml.Node, path string) ([]string, []yamlstrict.Pos) {
	if n.Kind != yaml.SequenceNode {
		doc.At(n, path, "want a list of the ETLs that load the tables the report reads, got %s", doc.Describe(n))
		return nil, nil
	}
	var names []string
	var pos []yamlstrict.Pos
	for i, c := range n.Content {
		ipath := yamlstrict.Index(path, i)
		s, ok := doc.Str(c, ipath)
		if !ok {
			continue
		}
		switch {
		case !nameRE.MatchString(s) || len(s) > 100:
			doc.At(c, ipath, "bad ETL name %q (want lower-case letters, digits and '-')", s)
		case slices.Contains(names, s):
			doc.At(c, ipath, "ETL %q is named twice", s)
		}
		names = append(names, s)
		pos = append(pos, yamlstrict.PosOf(c))
	}
	return names, pos
}

// CopyETLs are the ETLs whose last loads a run's result reports: needs: then
// loaded_by:, each once.
func (d *Definition) CopyETLs() []string {
	var out []string
	for _, n := range d.Needs {
		out = append(out, n.ETL)
	}
	for _, e := range d.LoadedBy {
		if !slices.Contains(out, e) {
			out = append(out, e)
		}
	}
	return out
}

func parseParams(doc *yamlstrict.Doc, n *yaml.Node, path string) []Param {
	if n.Kind != yaml.SequenceNode {
		doc.At(n, path, "want a list of parameters, got %s", doc.Describe(n))
		return nil
	}
	var out []Param
	names := map[string]int{}
	for i, c := range n.Content {
		ppath := yamlstrict.Index(path, i)
		prm := Param{Required: true, Line: c.Line}
		var typeNode, defNode, valuesNode *yaml.Node
		seen := doc.Mapping(c, ppath,
			yamlstrict.Field{Key: "name", Fn: func(v *yaml.Node, fp string) {
				if s, ok := doc.Str(v, fp); ok {
					if !paramRE.MatchString(s) {
						doc.At(v, fp, "bad parameter name %q (want lower-case letters, digits and '_', not starting with a digit)", s)
					} else if line, dup := names[s]; dup {
						doc.At(v, fp, "duplicate parameter %q (first at line %d)", s, line)
					} else {
						names[s] = v.Line
					}
					prm.Name = s
				}
			}},
			yamlstrict.Field{Key: "type", Fn: func(v *yaml.Node, fp string) {
				typeNode = v
				if s, ok := doc.Str(v, fp); ok {
					if _, _, valid := validType(s); !valid {
						doc.At(v, fp, "%s", didyoumean.Append(fmt.Sprintf("unknown type %q (%s)", s, typeWant), s, knownTypes()))
					}
					prm.Type = s
				}
			}},
			yamlstrict.Field{Key: "title", Fn: func(v *yaml.Node, fp string) { prm.Title, _ = doc.Str(v, fp) }},
			yamlstrict.Field{Key: "description", Fn: func(v *yaml.Node, fp string) { prm.Description, _ = doc.Str(v, fp) }},
			yamlstrict.Field{Key: "values", Fn: func(v *yaml.Node, fp string) {
				valuesNode = v
				vals, _ := doc.StrList(v, fp)
				dup := map[string]bool{}
				for j, s := range vals {
					if dup[s] {
						doc.At(v.Content[j], yamlstrict.Index(fp, j), "duplicate value %q", s)
					}
					dup[s] = true
				}
				prm.Values = vals
			}},
			yamlstrict.Field{Key: "default", Fn: func(v *yaml.Node, fp string) {
				defNode = v
				switch {
				case yamlstrict.IsNull(v):
				case v.Kind == yaml.SequenceNode:
					vals, ok := doc.StrList(v, fp)
					if ok {
						prm.Default, prm.HasDefault = strings.Join(vals, ","), true
					}
				default:
					if s, ok := doc.Str(v, fp); ok {
						prm.Default, prm.HasDefault = s, true
					}
				}
			}},
			yamlstrict.Field{Key: "required", Fn: func(v *yaml.Node, fp string) { prm.Required, _ = doc.Bool(v, fp) }},
		)
		if c.Kind != yaml.MappingNode {
			continue
		}
		if seen["name"] == nil {
			doc.At(c, ppath+".name", "missing (required)")
		}
		if seen["type"] == nil {
			doc.At(c, ppath+".type", "missing (required; %s)", strings.TrimPrefix(typeWant, "want "))
		}
		elem, list, valid := validType(prm.Type)
		if valid {
			if elem == TypeEnum && len(prm.Values) == 0 {
				doc.At(typeNode, ppath+".values", "an enum needs values: [...]")
			}
			if elem != TypeEnum && valuesNode != nil {
				doc.At(valuesNode, ppath+".values", "only an enum parameter takes values")
			}
			if prm.HasDefault && (elem == TypeEnum) == (len(prm.Values) > 0) {
				if prm.Default == "" && !list && elem != TypeString {
					doc.At(defNode, ppath+".default", "empty default (omit it, or use required: false for NULL)")
				} else if _, err := prm.value(prm.Default, validationNow); err != nil {
					doc.At(defNode, ppath+".default", "bad %s default %q: %v", prm.Type, prm.Default, err)
				}
			}
		}
		out = append(out, prm)
	}
	return out
}

// reservedTablePrefix starts the names of rpt's own tables (the queue's rpt_jobs, the
// history fence, ...): a store: block may not load into one.
const reservedTablePrefix = "rpt_"

func parseStore(doc *yamlstrict.Doc, n *yaml.Node, path string) *Store {
	s := &Store{Mode: StoreAppend}
	var modeNode, keyNode, whereNode *yaml.Node
	seen := doc.Mapping(n, path,
		yamlstrict.Field{Key: "table", Fn: func(v *yaml.Node, fp string) {
			if t, ok := doc.Str(v, fp); ok {
				switch {
				case !tableRE().MatchString(t):
					doc.At(v, fp, "bad table name %q (want a plain name: lower-case letters, digits and '_', at most 64)", t)
				case strings.HasPrefix(t, reservedTablePrefix):
					doc.At(v, fp, "table %q: names starting with %s are rpt's own tables; choose another name", t, reservedTablePrefix)
				}
				s.Table = t
			}
		}},
		yamlstrict.Field{Key: "mode", Fn: func(v *yaml.Node, fp string) {
			modeNode = v
			if m, ok := doc.Str(v, fp); ok {
				if !slices.Contains(storemode.All, m) {
					doc.At(v, fp, "%s", didyoumean.Append(fmt.Sprintf("unknown store mode %q (want %s)", m, strings.Join(storemode.All, ", ")), m, storemode.All))
				}
				s.Mode = m
			}
		}},
		yamlstrict.Field{Key: "key", Fn: func(v *yaml.Node, fp string) {
			keyNode = v
			keys, _ := doc.StrList(v, fp)
			for j, k := range keys {
				if !identRE.MatchString(k) {
					doc.At(v.Content[j], yamlstrict.Index(fp, j), "bad column name %q", k)
				}
			}
			s.Key = keys
		}},
		yamlstrict.Field{Key: "adopt", Fn: func(v *yaml.Node, fp string) {
			if b, ok := doc.Bool(v, fp); ok {
				s.Adopt = b
			}
		}},
		yamlstrict.Field{Key: "replace_where", Fn: func(v *yaml.Node, fp string) {
			whereNode = v
			if w, ok := doc.Str(v, fp); ok {
				if strings.TrimSpace(w) == "" {
					doc.At(v, fp, "empty condition")
				}
				s.ReplaceWhere = w
			}
		}},
	)
	if n.Kind != yaml.MappingNode {
		return nil
	}
	if seen["table"] == nil {
		doc.At(n, path+".table", "missing (required)")
	}
	at := modeNode
	if at == nil {
		at = n
	}
	switch s.Mode {
	case StoreUpsert:
		if len(s.Key) == 0 {
			doc.At(at, path+".key", "mode upsert needs key: [columns]")
		}
	case StoreReplace:
		if s.ReplaceWhere == "" && whereNode == nil {
			doc.At(at, path+".replace_where", "mode replace needs replace_where: (a condition on the parameters)")
		}
	}
	if keyNode != nil && s.Mode != StoreUpsert {
		doc.At(keyNode, path+".key", "key: is only for mode upsert")
	}
	if whereNode != nil && s.Mode != StoreReplace {
		doc.At(whereNode, path+".replace_where", "replace_where: is only for mode replace")
	}
	return s
}

var emailFormats = []string{"xlsx", "csv", "json"}

func parseDeliver(doc *yamlstrict.Doc, n *yaml.Node, path string, d *Definition) *Deliver {
	out := &Deliver{}
	doc.Mapping(n, path,
		yamlstrict.Field{Key: "email", Fn: func(v *yaml.Node, fp string) {
			e := &Email{Format: "xlsx"}
			seen := doc.Mapping(v, fp,
				yamlstrict.Field{Key: "to", Fn: func(v *yaml.Node, fp string) {
					e.To, _ = doc.StrOrList(v, fp) // a single address needs no list
					for j, addr := range e.To {
						if !emailRE.MatchString(addr) {
							doc.At(v, yamlstrict.Index(fp, j), "bad e-mail address %q", addr)
						}
					}
				}},
				yamlstrict.Field{Key: "format", Fn: func(v *yaml.Node, fp string) {
					if f, ok := doc.Str(v, fp); ok {
						if !slices.Contains(emailFormats, f) {
							doc.At(v, fp, "%s", didyoumean.Append(fmt.Sprintf("unknown format %q (want %s)", f, strings.Join(emailFormats, ", ")), f, emailFormats))
						}
						e.Format = f
					}
				}},
				yamlstrict.Field{Key: "filename", Fn: func(v *yaml.Node, fp string) {
					if f, ok := doc.Str(v, fp); ok {
						if strings.ContainsAny(f, `/\`) || strings.TrimSpace(f) == "" {
							doc.At(v, fp, "bad file name %q (no directories)", f)
						}
						e.Filename = f
					}
				}},
			)
			if v.Kind == yaml.MappingNode && (seen["to"] == nil || len(e.To) == 0) {
				doc.At(v, fp+".to", "missing (at least one address)")
			}
			out.Email = e
			d.Deliver = out
		}},
	)
	return out
}

// checkFilename reports {placeholders} in a file name template that are neither
// parameters nor the built-ins date, report, job.
func checkFilename(doc *yamlstrict.Doc, at yamlstrict.Pos, field, template string, declared map[string]bool) {
	for _, m := range placeRE.FindAllStringSubmatch(template, -1) {
		if declared[m[1]] || slices.Contains(filenames, m[1]) {
			continue
		}
		doc.Addf(at, field, "unknown placeholder {%s} (want a parameter or date, report, job)", m[1])
	}
}

// FileName expands the definition's filename: template for a finished job: {param}
// from its resolved params, {date} the day it finished (MM-DD, in loc), {report},
// {job}. Without a template: REPORT-JOB.EXT.
func (d *Definition) FileName(job int64, resolved json.RawMessage, finished time.Time, loc *time.Location, ext string) string {
	if d.Filename == "" {
		return fmt.Sprintf("%s-%d.%s", d.Name, job, ext)
	}
	var params map[string]any
	_ = json.Unmarshal(resolved, &params)
	return placeRE.ReplaceAllStringFunc(d.Filename, func(m string) string {
		name := placeRE.FindStringSubmatch(m)[1]
		switch name {
		case "date":
			return finished.In(loc).Format("01-02")
		case "report":
			return d.Name
		case "job":
			return fmt.Sprint(job)
		}
		if v, ok := params[name]; ok && v != nil {
			return strings.NewReplacer("/", "-", "\\", "-").Replace(fmt.Sprint(v))
		}
		return ""
	})
}

// SQLFor returns the SQL to run on a source of the given driver: the dialects: entry
// for that driver if there is one, else sql:.
func (d *Definition) SQLFor(driver string) string {
	if s, ok := d.Dialects[driver]; ok {
		return s
	}
	return d.SQL
}

// Param returns the declared parameter called name, or nil.
func (d *Definition) Param(name string) *Param {
	for i := range d.Params {
		if d.Params[i].Name == name {
			return &d.Params[i]
		}
	}
	return nil
}

// checkRange: range: names two different declared single-value parameters of one
// ordered type (int, date, period).
func checkRange(doc *yamlstrict.Doc, n *yaml.Node, d *Definition) {
	from, to := d.Param(d.Range[0]), d.Param(d.Range[1])
	for i, name := range d.Range {
		if d.Param(name) == nil {
			doc.At(n, fmt.Sprintf("range[%d]", i), "%q is not a declared parameter (declared: %s)", name, d.paramNames())
		}
	}
	if from == nil || to == nil {
		return
	}
	switch {
	case from.Name == to.Name:
		doc.At(n, "range", "names %q twice (want [from, to])", from.Name)
	case from.Type != to.Type:
		doc.At(n, "range", "%s is %s and %s is %s (want one type)", from.Name, from.Type, to.Name, to.Type)
	case from.Type != TypeInt && from.Type != TypeDate && from.Type != TypePeriod:
		doc.At(n, "range", "%s is %s (want int, date or period)", from.Name, from.Type)
	}
}
