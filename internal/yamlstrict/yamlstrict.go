// Package yamlstrict decodes rpt's YAML files (rpt.yaml, report definitions, and the
// crontab and ETL files to come) strictly, by walking yaml.v3's node tree: an unknown
// or duplicate key, a value of the wrong kind, tabs in indentation, anchors, binary
// content and a second document are errors, and every error names file:line:column and
// the field (a path such as "params[2].type"). A Doc collects all of a file's problems,
// so one run reports them all, ordered by position. See ARCHITECTURE.md, "Strict YAML".
package yamlstrict

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"gopkg.in/yaml.v3"

	"rpt/internal/didyoumean"
	"rpt/internal/inputfile"
)

// Error is one problem in a file: where it is and what is wrong.
type Error struct {
	File   string
	Line   int // 0: the file as a whole
	Column int // 0: not known (a message about a whole line)
	Field  string
	Msg    string
	// Class is what errors.Is(err, target) matches: the caller's "invalid input"
	// sentinel (config.ErrInvalid, reportdefs.ErrInvalid), which its exit code hangs on.
	Class error
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		b.WriteString(":" + strconv.Itoa(e.Line))
		if e.Column > 0 {
			b.WriteString(":" + strconv.Itoa(e.Column))
		}
	}
	b.WriteString(": ")
	if e.Field != "" {
		b.WriteString(e.Field + ": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Is matches the error's Class.
func (e *Error) Is(target error) bool { return e.Class != nil && target == e.Class }

// Pos is a place in a file; Column 0 means the whole line.
type Pos struct{ Line, Column int }

// PosOf is where node n starts (the zero Pos for nil).
func PosOf(n *yaml.Node) Pos {
	if n == nil {
		return Pos{}
	}
	return Pos{n.Line, n.Column}
}

// Doc is one file being decoded. Set the fields, call Parse, walk the returned root
// with Mapping and the typed readers, then return Err.
type Doc struct {
	File  string
	Class error // see Error.Class
	// What names the kind of file in messages: "a config file", "a report definition".
	What string
	// MaxSize is the largest input Parse accepts (0: no limit).
	MaxSize int64
	// Expand, when set, rewrites every string Str returns (rpt.yaml's ${VAR}); an error
	// is reported at the node. With Expand set, Int also accepts a string that expands
	// to an integer, so a number can come from the environment.
	Expand func(string) (string, error)
	// HideValues keeps a scalar's text out of "want X, got Y" messages: in rpt.yaml a
	// value in the wrong place may be a password.
	HideValues bool
	// NullIsEmpty lets a key with nothing after it ("retention:") stand for an empty
	// mapping, list or string instead of being an error.
	NullIsEmpty bool

	// Source is the text Parse decoded (a byte-order mark removed), for TextPos.
	Source []byte

	errs []*Error
}

// Addf records a problem at pos.
func (d *Doc) Addf(pos Pos, field, format string, args ...any) {
	d.errs = append(d.errs, &Error{File: d.File, Line: pos.Line, Column: pos.Column, Field: field, Msg: fmt.Sprintf(format, args...), Class: d.Class})
}

// At records a problem at node n (nil: the whole file).
func (d *Doc) At(n *yaml.Node, field, format string, args ...any) {
	d.Addf(PosOf(n), field, format, args...)
}

// Failed reports whether a problem has been recorded.
func (d *Doc) Failed() bool { return len(d.errs) > 0 }

// Err returns the problems ordered by position (one *Error, or several joined with
// errors.Join, one per line), or nil.
func (d *Doc) Err() error {
	if len(d.errs) == 0 {
		return nil
	}
	slices.SortStableFunc(d.errs, func(a, b *Error) int {
		return cmp.Or(cmp.Compare(a.Line, b.Line), cmp.Compare(a.Column, b.Column))
	})
	if len(d.errs) == 1 {
		return d.errs[0]
	}
	errs := make([]error, len(d.errs))
	for i, e := range d.errs {
		errs[i] = e
	}
	return errors.Join(errs...)
}

// Error returns a single problem as an *Error of this document, for callers that check
// something outside the tree walk (a file that is too big, a reference to config).
func (d *Doc) Error(pos Pos, field, format string, args ...any) *Error {
	return &Error{File: d.File, Line: pos.Line, Column: pos.Column, Field: field, Msg: fmt.Sprintf(format, args...), Class: d.Class}
}

var yamlLineRE = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// Parse checks data as text and decodes exactly one YAML document, returning its root
// node. It returns nil when the input has no document at all (empty, or only comments:
// whether that is an error is the caller's call) and when it records a problem: a file
// over MaxSize, binary content, a tab in indentation, a syntax error, a second
// document, an anchor or alias (their expansion is how a small file becomes a huge one,
// and they hide where a value came from).
func (d *Doc) Parse(data []byte) *yaml.Node {
	if d.MaxSize > 0 && int64(len(data)) > d.MaxSize {
		d.Addf(Pos{}, "", "file is %s; %s may be at most %s", inputfile.Size(int64(len(data))), d.what(), inputfile.Size(d.MaxSize))
		return nil
	}
	data = bytes.TrimPrefix(data, []byte("\xEF\xBB\xBF"))
	d.Source = data
	if !utf8.Valid(data) || bytes.IndexByte(data, 0) >= 0 {
		d.Addf(Pos{Line: 1}, "", "binary content: not a UTF-8 text file")
		return nil
	}
	for i, line := range strings.Split(string(data), "\n") {
		indent := line[:len(line)-len(strings.TrimLeft(line, " \t"))]
		if j := strings.IndexByte(indent, '\t'); j >= 0 {
			d.Addf(Pos{i + 1, j + 1}, "", "tab in indentation: indent with spaces")
		}
	}
	if d.Failed() {
		return nil
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); errors.Is(err, io.EOF) {
		return nil
	} else if err != nil {
		d.syntax(err)
		return nil
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) == 0 {
		return nil
	}
	var next yaml.Node
	if err := dec.Decode(&next); err == nil {
		d.At(&next, "", "more than one YAML document")
	} else if !errors.Is(err, io.EOF) {
		d.syntax(err)
	}
	root := doc.Content[0]
	if n := alias(root, 0); n != nil {
		d.At(n, "", "YAML anchors and aliases are not supported")
		return nil
	}
	if d.Failed() {
		return nil
	}
	return root
}

func (d *Doc) what() string {
	if d.What == "" {
		return "the file"
	}
	return d.What
}

// syntax records a yaml.v3 error at the line it names (it names no column).
func (d *Doc) syntax(err error) {
	msg := err.Error()
	line := 1
	if m := yamlLineRE.FindStringSubmatch(msg); m != nil {
		line, _ = strconv.Atoi(m[1])
		msg = m[2]
	} else {
		msg = strings.TrimPrefix(msg, "yaml: ")
	}
	d.Addf(Pos{Line: line}, "", "YAML: %s", msg)
}

// alias returns the first node with an anchor or alias, or one nested deeper than any
// real file (a bomb of nested flow collections).
func alias(n *yaml.Node, depth int) *yaml.Node {
	if n.Kind == yaml.AliasNode || n.Anchor != "" || depth > 100 {
		return n
	}
	for _, c := range n.Content {
		if a := alias(c, depth+1); a != nil {
			return a
		}
	}
	return nil
}

// IsNull reports whether n is an explicit or implied null ("key:", "~", "null").
func IsNull(n *yaml.Node) bool {
	return n != nil && n.Kind == yaml.ScalarNode && n.Tag == "!!null"
}

// Describe names what n is for a "want X, got Y" message: a mapping, a list, null, or
// the scalar's text quoted (unless HideValues).
func (d *Doc) Describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		if IsNull(n) {
			return "null"
		}
		if d.HideValues {
			return "a scalar"
		}
		return strconv.Quote(n.Value)
	}
	return "something else"
}

// Field is one allowed key of a mapping and what to do with its value; path is the
// key's field path ("agent.lease").
type Field struct {
	Key string
	Fn  func(v *yaml.Node, path string)
}

// Join appends key to a field path.
func Join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// Index appends a list index to a field path.
func Index(path string, i int) string { return fmt.Sprintf("%s[%d]", path, i) }

// Mapping walks a mapping strictly: each key must be one of fields (an unknown key is an
// error listing the allowed ones, with a suggestion for a typo) and appear once. It
// calls the fields' functions in the file's order and returns the key nodes seen, for
// "missing" checks. A null counts as an empty mapping when NullIsEmpty.
func (d *Doc) Mapping(n *yaml.Node, path string, fields ...Field) map[string]*yaml.Node {
	seen := map[string]*yaml.Node{}
	if n.Kind != yaml.MappingNode {
		if !(d.NullIsEmpty && IsNull(n)) {
			d.At(n, path, "want a mapping (key: value), got %s", d.Describe(n))
		}
		return seen
	}
	want := make([]string, len(fields))
	for i, f := range fields {
		want[i] = f.Key
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		sub := Join(path, k.Value)
		if prev, dup := seen[k.Value]; dup {
			d.At(k, sub, "duplicate key (first at line %d)", prev.Line)
			continue
		}
		seen[k.Value] = k
		idx := slices.IndexFunc(fields, func(f Field) bool { return f.Key == k.Value })
		if idx < 0 {
			d.At(k, sub, "%s", didyoumean.Append(fmt.Sprintf("unknown key %q (want %s)", k.Value, strings.Join(want, ", ")), k.Value, want))
			continue
		}
		fields[idx].Fn(v, sub)
	}
	return seen
}

// Pairs walks a mapping whose keys are names the file chooses (sources, labels,
// columns): each key once, fn called for each pair in order. what names the keys in
// the duplicate message ("duplicate source").
func (d *Doc) Pairs(n *yaml.Node, path, want, what string, fn func(k, v *yaml.Node, path string)) {
	if n.Kind != yaml.MappingNode {
		if !(d.NullIsEmpty && IsNull(n)) {
			d.At(n, path, "want %s, got %s", want, d.Describe(n))
		}
		return
	}
	seen := map[string]*yaml.Node{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		sub := Join(path, k.Value)
		if prev, dup := seen[k.Value]; dup {
			d.At(k, sub, "duplicate %s (first at line %d)", what, prev.Line)
			continue
		}
		seen[k.Value] = k
		fn(k, v, sub)
	}
}

// Str returns a scalar's text, expanded when Expand is set. A null is "" when
// NullIsEmpty, else an error.
func (d *Doc) Str(n *yaml.Node, path string) (string, bool) {
	if n.Kind != yaml.ScalarNode || (IsNull(n) && !d.NullIsEmpty) {
		d.At(n, path, "want a string, got %s", d.Describe(n))
		return "", false
	}
	if IsNull(n) {
		return "", true
	}
	if d.Expand == nil {
		return n.Value, true
	}
	s, err := d.Expand(n.Value)
	if err != nil {
		d.At(n, path, "%v", err)
		return "", false
	}
	return s, true
}

// Int returns an integer scalar's value. With Expand set, a string that expands to an
// integer is accepted too. The message quotes the text as written, never as expanded
// (a mistyped ${VAR} may hold a secret).
func (d *Doc) Int(n *yaml.Node, path string) (int, bool) {
	text := n.Value
	switch {
	case n.Kind == yaml.ScalarNode && n.Tag == "!!int":
	case n.Kind == yaml.ScalarNode && n.Tag == "!!str" && d.Expand != nil:
		s, ok := d.Str(n, path)
		if !ok {
			return 0, false
		}
		text = strings.TrimSpace(s)
	default:
		d.At(n, path, "want an integer, got %s", d.Describe(n))
		return 0, false
	}
	v, err := strconv.Atoi(text)
	if err != nil {
		d.At(n, path, "want an integer, got %q", n.Value)
		return 0, false
	}
	return v, true
}

// Bool returns a true/false scalar's value.
func (d *Doc) Bool(n *yaml.Node, path string) (bool, bool) {
	if n.Kind != yaml.ScalarNode || n.Tag != "!!bool" {
		d.At(n, path, "want true or false, got %s", d.Describe(n))
		return false, false
	}
	v, err := strconv.ParseBool(strings.ToLower(n.Value))
	if err != nil {
		d.At(n, path, "want true or false, got %q", n.Value)
		return false, false
	}
	return v, true
}

// StrList returns a list of strings; ok is false when any element was not one. A null
// is an empty list when NullIsEmpty.
func (d *Doc) StrList(n *yaml.Node, path string) ([]string, bool) {
	if n.Kind != yaml.SequenceNode {
		if d.NullIsEmpty && IsNull(n) {
			return nil, true
		}
		d.At(n, path, "want a list, got %s", d.Describe(n))
		return nil, false
	}
	out := make([]string, 0, len(n.Content))
	ok := true
	for i, c := range n.Content {
		s, good := d.Str(c, Index(path, i))
		ok = ok && good
		out = append(out, s)
	}
	return out, ok
}

// StrOrList accepts one string or a list of them ("reports: ./defs" or
// "reports: [a, b]"): one item needs no list.
func (d *Doc) StrOrList(n *yaml.Node, path string) ([]string, bool) {
	if n.Kind == yaml.ScalarNode && !IsNull(n) {
		s, ok := d.Str(n, path)
		if !ok {
			return nil, false
		}
		return []string{s}, true
	}
	return d.StrList(n, path)
}

// StrMap walks a mapping of names to strings, calling fn for each pair whose value is
// a string.
func (d *Doc) StrMap(n *yaml.Node, path string, fn func(k *yaml.Node, key, val, path string)) {
	d.Pairs(n, path, "a mapping (key: value)", "key", func(k, v *yaml.Node, sub string) {
		if val, ok := d.Str(v, sub); ok {
			fn(k, k.Value, val, sub)
		}
	})
}

// Lookup follows keys down from n through mappings and returns the value node, or nil.
func Lookup(n *yaml.Node, keys ...string) *yaml.Node {
	for _, key := range keys {
		if n == nil || n.Kind != yaml.MappingNode {
			return nil
		}
		var next *yaml.Node
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == key {
				next = n.Content[i+1]
				break
			}
		}
		n = next
	}
	return n
}

// TextPos is where byte offset off of scalar n's text is in the file: exact for literal
// block (|) scalars, the usual form of SQL, and for one-line scalars whose text stands
// in the file as read (checked, not assumed); otherwise the line is counted from the
// text's newlines and the column left out (a folded scalar's line breaks are gone from
// its text, so there it is the line the text starts on).
func TextPos(n *yaml.Node, src []byte, off int) Pos {
	if n == nil {
		return Pos{}
	}
	text := n.Value
	if off > len(text) {
		off = len(text)
	}
	before := text[:off]
	nl := strings.Count(before, "\n")
	lineStart := strings.LastIndexByte(before, '\n') + 1
	switch {
	case n.Style&yaml.LiteralStyle != 0:
		// The text starts on the line after the "|"; each of its lines is indented by
		// the block's indentation, which yaml.v3 strips.
		line := n.Line + 1 + nl
		indent := blockIndent(src, n.Line+1)
		if indent < 0 {
			return Pos{Line: line}
		}
		return Pos{line, indent + off - lineStart + 1}
	case n.Style&yaml.FoldedStyle != 0:
		return Pos{Line: n.Line + 1 + nl}
	case nl > 0:
		return Pos{Line: n.Line + nl}
	}
	// A scalar on one line: exact when the file holds the text as read (no escapes or
	// folded line breaks before off), which is checked rather than assumed.
	col := n.Column
	if n.Style&(yaml.DoubleQuotedStyle|yaml.SingleQuotedStyle) != 0 {
		col++
	}
	lines := strings.Split(string(src), "\n")
	if n.Line-1 < len(lines) {
		l := lines[n.Line-1]
		if start := col - 1; start >= 0 && start+off <= len(l) && l[start:start+off] == before {
			return Pos{n.Line, col + off}
		}
	}
	return Pos{Line: n.Line}
}

// blockIndent is the indentation of the first non-blank line at or after line (1-based)
// of src, or -1.
func blockIndent(src []byte, line int) int {
	lines := strings.Split(string(src), "\n")
	for i := line - 1; i >= 0 && i < len(lines); i++ {
		l := strings.TrimRight(lines[i], "\r")
		if strings.TrimSpace(l) == "" {
			continue
		}
		return len(l) - len(strings.TrimLeft(l, " "))
	}
	return -1
}
