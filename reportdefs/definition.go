// Package reportdefs loads report definitions: one YAML file per report with its
// parameters, SQL (per dialect), limits and optional store/deliver blocks. Decoding is
// strict (unknown keys, bad types and undeclared ":name" parameters are errors naming
// file:line and the field) so a bad definition is caught by `rpt reports validate` and
// at submit, never on an agent hours later. The shipped reports live in reports/ and are
// embedded in the binary.
package reportdefs

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"regexp"
	"slices"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"rpt/internal/didyoumean"
	"rpt/internal/source"
)

// DefaultMaxAttempts is max_attempts when a definition does not set it.
const DefaultMaxAttempts = 3

// Store modes of a store: block.
const (
	StoreAppend  = "append"
	StoreUpsert  = "upsert"
	StoreReplace = "replace"
)

// Drivers a dialects: entry may name (the source drivers).
var Drivers = []string{"sqlite", "mysql", "sqlserver", "plexws", "odbc"}

// Definition is one parsed, validated report definition.
type Definition struct {
	Name        string
	Title       string
	Description string
	Source      string
	Params      []Param
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
	// Filename is the default name `rpt get ID -o xlsx` saves to on a terminal; it may
	// use {param}, {date} (MM-DD), {report}, {job}.
	Filename string
	Deliver  *Deliver
	Raw      []byte // the file as read: the snapshot a job carries
	File     string

	keyLines map[string]int // line of each top-level key, for errors found after parsing
}

// Store is a definition's store: block: write each run's rows into a warehouse table.
type Store struct {
	Table        string
	Mode         string // append, upsert or replace
	Key          []string
	ReplaceWhere string
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

// ParseFile reads and parses one definition file, refusing one over MaxDefinitionSize
// without reading it whole.
func ParseFile(path string) (*Definition, error) {
	data, err := ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(path, data)
}

// ReadFile reads a definition file, reading at most MaxDefinitionSize+1 bytes: a
// larger file is an error satisfying errors.Is(err, ErrInvalid).
func ReadFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read report definition: %w", err)
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil && st.Mode().IsRegular() && st.Size() > MaxDefinitionSize {
		return nil, tooBig(path, st.Size())
	}
	data, err := io.ReadAll(io.LimitReader(f, MaxDefinitionSize+1))
	if err != nil {
		return nil, fmt.Errorf("read report definition: %w", err)
	}
	if len(data) > MaxDefinitionSize {
		return nil, tooBig(path, -1)
	}
	return data, nil
}

func tooBig(file string, size int64) error {
	what := "more than 1 MiB"
	if size >= 0 {
		what = sizeText(size)
	}
	return &FieldError{File: file, Msg: fmt.Sprintf("file is %s; a report definition may be at most 1 MiB", what)}
}

// sizeText prints a byte count the way people read it: 512 bytes, 64.0 KiB, 50.0 MiB.
func sizeText(n int64) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d bytes", n)
}

// Parse decodes and validates one definition. file names the source in errors. Every
// problem of the file is returned (errors.Join, ordered by line), each a *FieldError
// satisfying errors.Is(err, ErrInvalid).
func Parse(file string, data []byte) (*Definition, error) {
	if len(data) > MaxDefinitionSize {
		return nil, tooBig(file, int64(len(data)))
	}
	p := &problems{file: file}
	data = trimBOM(data)
	if !checkText(p, data) {
		return nil, p.err()
	}
	root := parseYAML(p, data)
	if root == nil {
		return nil, p.err()
	}
	d := &Definition{Raw: slices.Clone(data), File: file, MaxAttempts: DefaultMaxAttempts}
	var sqlNode *yaml.Node
	dialectNodes := map[string]*yaml.Node{}
	var replaceNode *yaml.Node
	var filenameNode *yaml.Node
	var groupNode *yaml.Node
	var reqNodes requestNodes
	seen := mapping(p, root, "", []field{
		{"name", func(v *yaml.Node, path string) {
			if s, ok := str(p, v, path); ok {
				if !nameRE.MatchString(s) || len(s) > 100 {
					p.at(v, path, "bad name %q (want lower-case letters, digits and '-', starting with a letter or digit)", s)
				}
				d.Name = s
			}
		}},
		{"title", func(v *yaml.Node, path string) { d.Title, _ = str(p, v, path) }},
		{"description", func(v *yaml.Node, path string) { d.Description, _ = str(p, v, path) }},
		{"source", func(v *yaml.Node, path string) {
			if s, ok := str(p, v, path); ok {
				if !nameRE.MatchString(s) && !identRE.MatchString(s) {
					p.at(v, path, "bad source name %q", s)
				}
				d.Source = s
			}
		}},
		{"params", func(v *yaml.Node, path string) { d.Params = parseParams(p, v, path) }},
		{"concurrency", func(v *yaml.Node, path string) {
			if n, ok := integer(p, v, path); ok {
				if n < 1 {
					p.at(v, path, "must be at least 1 (omit it for unlimited), got %d", n)
				}
				d.Concurrency = n
			}
		}},
		{"group", func(v *yaml.Node, path string) {
			groupNode = v
			if s, ok := str(p, v, path); ok {
				if !nameRE.MatchString(s) {
					p.at(v, path, "bad group name %q (want lower-case letters, digits and '-')", s)
				}
				d.Group = s
			}
		}},
		{"timeout", func(v *yaml.Node, path string) {
			if s, ok := str(p, v, path); ok {
				t, err := time.ParseDuration(s)
				switch {
				case err != nil:
					p.at(v, path, "bad duration %q (want e.g. 90s, 30m, 2h)", s)
				case t <= 0:
					p.at(v, path, "must be positive (omit it for no timeout), got %q", s)
				}
				d.Timeout = t
			}
		}},
		{"max_attempts", func(v *yaml.Node, path string) {
			if n, ok := integer(p, v, path); ok {
				if n < 1 || n > 100 {
					p.at(v, path, "must be 1-100, got %d", n)
				}
				d.MaxAttempts = n
			}
		}},
		{"requires", func(v *yaml.Node, path string) {
			d.Requires = map[string]string{}
			strMap(p, v, path, func(k *yaml.Node, key, val, vpath string) {
				if !labelRE.MatchString(key) {
					p.at(k, vpath, "bad label name %q", key)
				}
				d.Requires[key] = val
			})
		}},
		{"columns", func(v *yaml.Node, path string) {
			d.Columns = map[string]source.Type{}
			strMap(p, v, path, func(k *yaml.Node, key, val, vpath string) {
				if !columnRE.MatchString(key) {
					p.at(k, vpath, "bad column name %q", key)
				}
				if !slices.Contains(columnTypes, source.Type(val)) {
					p.at(k, vpath, "%s", didyoumean.Append(fmt.Sprintf("unknown column type %q (want int, decimal, float, string, bool, date, datetime)", val), val, columnTypeNames()))
				}
				d.Columns[key] = source.Type(val)
			})
		}},
		{"sql", func(v *yaml.Node, path string) {
			sqlNode = v
			if s, ok := str(p, v, path); ok {
				if strings.TrimSpace(s) == "" {
					p.at(v, path, "empty SQL")
				}
				d.SQL = s
			}
		}},
		{"dialects", func(v *yaml.Node, path string) {
			d.Dialects = map[string]string{}
			if v.Kind == yaml.MappingNode {
				for i := 0; i+1 < len(v.Content); i += 2 {
					dialectNodes[v.Content[i].Value] = v.Content[i+1]
				}
			}
			strMap(p, v, path, func(k *yaml.Node, key, val, vpath string) {
				if !slices.Contains(Drivers, key) {
					p.at(k, vpath, "%s", didyoumean.Append(fmt.Sprintf("unknown driver %q (want %s)", key, strings.Join(Drivers, ", ")), key, Drivers))
				}
				if strings.TrimSpace(val) == "" {
					p.at(k, vpath, "empty SQL")
				}
				d.Dialects[key] = val
			})
		}},
		{"procedure", func(v *yaml.Node, path string) { d.Procedure = parseProcedure(p, v, path, &reqNodes) }},
		{"datasource", func(v *yaml.Node, path string) { d.DataSource = parseDataSource(p, v, path, &reqNodes) }},
		{"store", func(v *yaml.Node, path string) {
			d.Store, replaceNode = parseStore(p, v, path)
		}},
		{"deliver", func(v *yaml.Node, path string) { d.Deliver = parseDeliver(p, v, path, d) }},
		{"filename", func(v *yaml.Node, path string) {
			d.Filename, _ = str(p, v, path)
			filenameNode = v
		}},
	})
	if root.Kind != yaml.MappingNode {
		return nil, p.err()
	}
	for _, req := range []string{"name", "source"} {
		if seen[req] == nil {
			p.at(root, req, "missing (required)")
		}
	}
	if groupNode != nil && d.Concurrency == 0 {
		p.at(groupNode, "group", "needs concurrency: (the number of runs the group allows at once)")
	}
	declared := map[string]bool{}
	for _, prm := range d.Params {
		declared[prm.Name] = true
	}
	checkRequest(p, root, d, seen, &reqNodes)
	checkSQLParams(p, sqlNode, "sql", d.SQL, declared)
	for _, drv := range sortedKeys(d.Dialects) {
		checkSQLParams(p, dialectNodes[drv], "dialects."+drv, d.Dialects[drv], declared)
	}
	if d.Store != nil && replaceNode != nil {
		checkSQLParams(p, replaceNode, "store.replace_where", d.Store.ReplaceWhere, declared)
	}
	if d.Deliver != nil && d.Deliver.Email != nil {
		checkFilename(p, filenameLine(root), "deliver.email.filename", d.Deliver.Email.Filename, declared)
	}
	if filenameNode != nil {
		checkFilename(p, filenameNode.Line, "filename", d.Filename, declared)
		if strings.ContainsAny(d.Filename, "/\\") {
			p.at(filenameNode, "filename", "%q: a file name, not a path", d.Filename)
		}
	}
	if err := p.err(); err != nil {
		return nil, err
	}
	return d, nil
}

func trimBOM(data []byte) []byte {
	if len(data) >= 3 && data[0] == 0xEF && data[1] == 0xBB && data[2] == 0xBF {
		return data[3:]
	}
	return data
}

// checkSQLParams reports each ":name" in sql that is not a declared parameter, at the
// line it is on.
func checkSQLParams(p *problems, n *yaml.Node, path, sql string, declared map[string]bool) {
	if n == nil || sql == "" {
		return
	}
	reported := map[string]bool{}
	for _, ref := range sqlParams(sql) {
		if declared[ref.Name] || reported[ref.Name] {
			continue
		}
		reported[ref.Name] = true
		line := n.Line + strings.Count(sql[:ref.Start], "\n")
		if n.Style&(yaml.LiteralStyle|yaml.FoldedStyle) != 0 {
			line++ // block scalar text starts on the line after the indicator
		}
		p.add(line, path, ":%s is not a declared parameter (declared: %s)", ref.Name, declaredList(declared))
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

func parseParams(p *problems, n *yaml.Node, path string) []Param {
	if n.Kind != yaml.SequenceNode {
		p.at(n, path, "want a list of parameters, got %s", kindName(n))
		return nil
	}
	var out []Param
	names := map[string]int{}
	for i, c := range n.Content {
		ppath := fmt.Sprintf("%s[%d]", path, i)
		prm := Param{Required: true, Line: c.Line}
		var typeNode, defNode, valuesNode *yaml.Node
		seen := mapping(p, c, ppath, []field{
			{"name", func(v *yaml.Node, fp string) {
				if s, ok := str(p, v, fp); ok {
					if !paramRE.MatchString(s) {
						p.at(v, fp, "bad parameter name %q (want lower-case letters, digits and '_', not starting with a digit)", s)
					} else if line, dup := names[s]; dup {
						p.at(v, fp, "duplicate parameter %q (first at line %d)", s, line)
					} else {
						names[s] = v.Line
					}
					prm.Name = s
				}
			}},
			{"type", func(v *yaml.Node, fp string) {
				typeNode = v
				if s, ok := str(p, v, fp); ok {
					if _, _, valid := validType(s); !valid {
						p.at(v, fp, "%s", didyoumean.Append(fmt.Sprintf("unknown type %q (%s)", s, typeWant), s, knownTypes()))
					}
					prm.Type = s
				}
			}},
			{"title", func(v *yaml.Node, fp string) { prm.Title, _ = str(p, v, fp) }},
			{"description", func(v *yaml.Node, fp string) { prm.Description, _ = str(p, v, fp) }},
			{"values", func(v *yaml.Node, fp string) {
				valuesNode = v
				vals, _ := strList(p, v, fp)
				dup := map[string]bool{}
				for j, s := range vals {
					if dup[s] {
						p.at(v.Content[j], fmt.Sprintf("%s[%d]", fp, j), "duplicate value %q", s)
					}
					dup[s] = true
				}
				prm.Values = vals
			}},
			{"default", func(v *yaml.Node, fp string) {
				defNode = v
				switch {
				case v.Kind == yaml.ScalarNode && v.Tag == "!!null":
				case v.Kind == yaml.SequenceNode:
					vals, ok := strList(p, v, fp)
					if ok {
						prm.Default, prm.HasDefault = strings.Join(vals, ","), true
					}
				default:
					if s, ok := str(p, v, fp); ok {
						prm.Default, prm.HasDefault = s, true
					}
				}
			}},
			{"required", func(v *yaml.Node, fp string) { prm.Required, _ = boolean(p, v, fp) }},
		})
		if c.Kind != yaml.MappingNode {
			continue
		}
		if seen["name"] == nil {
			p.at(c, ppath+".name", "missing (required)")
		}
		if seen["type"] == nil {
			p.at(c, ppath+".type", "missing (required; %s)", strings.TrimPrefix(typeWant, "want "))
		}
		elem, list, valid := validType(prm.Type)
		if valid {
			if elem == TypeEnum && len(prm.Values) == 0 {
				p.at(typeNode, ppath+".values", "an enum needs values: [...]")
			}
			if elem != TypeEnum && valuesNode != nil {
				p.at(valuesNode, ppath+".values", "values: is only for enum types")
			}
			if prm.HasDefault && (elem == TypeEnum) == (len(prm.Values) > 0) {
				if prm.Default == "" && !list && elem != TypeString {
					p.at(defNode, ppath+".default", "empty default (omit it, or use required: false for NULL)")
				} else if _, err := prm.value(prm.Default, validationNow); err != nil {
					p.at(defNode, ppath+".default", "bad %s default %q: %v", prm.Type, prm.Default, err)
				}
			}
		}
		out = append(out, prm)
	}
	return out
}

func parseStore(p *problems, n *yaml.Node, path string) (*Store, *yaml.Node) {
	s := &Store{Mode: StoreAppend}
	var modeNode, keyNode, whereNode *yaml.Node
	seen := mapping(p, n, path, []field{
		{"table", func(v *yaml.Node, fp string) {
			if t, ok := str(p, v, fp); ok {
				if !identRE.MatchString(t) || len(t) > 64 {
					p.at(v, fp, "bad table name %q (want letters, digits and '_')", t)
				}
				s.Table = t
			}
		}},
		{"mode", func(v *yaml.Node, fp string) {
			modeNode = v
			if m, ok := str(p, v, fp); ok {
				if m != StoreAppend && m != StoreUpsert && m != StoreReplace {
					p.at(v, fp, "%s", didyoumean.Append(fmt.Sprintf("unknown store mode %q (want append, upsert, replace)", m), m, []string{StoreAppend, StoreUpsert, StoreReplace}))
				}
				s.Mode = m
			}
		}},
		{"key", func(v *yaml.Node, fp string) {
			keyNode = v
			keys, _ := strList(p, v, fp)
			for j, k := range keys {
				if !identRE.MatchString(k) {
					p.at(v.Content[j], fmt.Sprintf("%s[%d]", fp, j), "bad column name %q", k)
				}
			}
			s.Key = keys
		}},
		{"replace_where", func(v *yaml.Node, fp string) {
			whereNode = v
			if w, ok := str(p, v, fp); ok {
				if strings.TrimSpace(w) == "" {
					p.at(v, fp, "empty condition")
				}
				s.ReplaceWhere = w
			}
		}},
	})
	if n.Kind != yaml.MappingNode {
		return nil, nil
	}
	if seen["table"] == nil {
		p.at(n, path+".table", "missing (required)")
	}
	at := modeNode
	if at == nil {
		at = n
	}
	switch s.Mode {
	case StoreUpsert:
		if len(s.Key) == 0 {
			p.at(at, path+".key", "mode upsert needs key: [columns]")
		}
	case StoreReplace:
		if s.ReplaceWhere == "" && whereNode == nil {
			p.at(at, path+".replace_where", "mode replace needs replace_where: (a condition on the parameters)")
		}
	}
	if keyNode != nil && s.Mode != StoreUpsert {
		p.at(keyNode, path+".key", "key: is only for mode upsert")
	}
	if whereNode != nil && s.Mode != StoreReplace {
		p.at(whereNode, path+".replace_where", "replace_where: is only for mode replace")
	}
	return s, whereNode
}

var emailFormats = []string{"xlsx", "csv", "json"}

func parseDeliver(p *problems, n *yaml.Node, path string, d *Definition) *Deliver {
	out := &Deliver{}
	mapping(p, n, path, []field{
		{"email", func(v *yaml.Node, fp string) {
			e := &Email{Format: "xlsx"}
			seen := mapping(p, v, fp, []field{
				{"to", func(v *yaml.Node, fp string) {
					if v.Kind == yaml.ScalarNode && v.Tag != "!!null" {
						e.To = []string{v.Value} // a single address needs no list
					} else {
						e.To, _ = strList(p, v, fp)
					}
					for j, addr := range e.To {
						if !emailRE.MatchString(addr) {
							p.at(v, fmt.Sprintf("%s[%d]", fp, j), "bad e-mail address %q", addr)
						}
					}
				}},
				{"format", func(v *yaml.Node, fp string) {
					if f, ok := str(p, v, fp); ok {
						if !slices.Contains(emailFormats, f) {
							p.at(v, fp, "%s", didyoumean.Append(fmt.Sprintf("unknown format %q (want %s)", f, strings.Join(emailFormats, ", ")), f, emailFormats))
						}
						e.Format = f
					}
				}},
				{"filename", func(v *yaml.Node, fp string) {
					if f, ok := str(p, v, fp); ok {
						if strings.ContainsAny(f, `/\`) || strings.TrimSpace(f) == "" {
							p.at(v, fp, "bad file name %q (no directories)", f)
						}
						e.Filename = f
					}
				}},
			})
			if v.Kind == yaml.MappingNode && (seen["to"] == nil || len(e.To) == 0) {
				p.at(v, fp+".to", "missing (at least one address)")
			}
			out.Email = e
			d.Deliver = out
		}},
	})
	return out
}

// checkFilename reports {placeholders} in a file name template that are neither
// parameters nor the built-ins date, report, job.
func checkFilename(p *problems, line int, field, template string, declared map[string]bool) {
	for _, m := range placeRE.FindAllStringSubmatch(template, -1) {
		if declared[m[1]] || slices.Contains(filenames, m[1]) {
			continue
		}
		p.add(line, field, "unknown placeholder {%s} (want a parameter or date, report, job)", m[1])
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

func filenameLine(root *yaml.Node) int {
	n := root
	for _, key := range []string{"deliver", "email", "filename"} {
		next := (*yaml.Node)(nil)
		for i := 0; n != nil && n.Kind == yaml.MappingNode && i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == key {
				next = n.Content[i+1]
			}
		}
		if next == nil {
			return root.Line
		}
		n = next
	}
	return n.Line
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
