package reportdefs

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
)

// ErrInvalid marks every error about a malformed definition or parameter value, so the
// CLI can map it to exit code 2 with errors.Is.
var ErrInvalid = errors.New("invalid report definition")

// ErrNotFound is returned by Catalog.Get for an unknown report; the error also
// satisfies errors.Is(err, ErrInvalid) because an unknown name is bad input.
var ErrNotFound = errors.New("unknown report")

// FieldError is one problem in a definition file: where it is and what is wrong.
type FieldError struct {
	File  string
	Line  int
	Field string // path such as "params[2].type"; empty for file-level problems
	Msg   string
}

func (e *FieldError) Error() string {
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

// Is makes every FieldError match ErrInvalid.
func (e *FieldError) Is(target error) bool { return target == ErrInvalid }

// paramError is a bad parameter value at submit time.
type paramError struct{ msg string }

func (e *paramError) Error() string        { return e.msg }
func (e *paramError) Is(target error) bool { return target == ErrInvalid }

func paramErrorf(format string, args ...any) error {
	return &paramError{msg: fmt.Sprintf(format, args...)}
}

type notFoundError struct{ msg string }

func (e *notFoundError) Error() string { return e.msg }
func (e *notFoundError) Is(target error) bool {
	return target == ErrNotFound || target == ErrInvalid
}

// problems collects the errors of one file so all of them are reported at once.
type problems struct {
	file string
	errs []*FieldError
}

func (p *problems) add(line int, field, format string, args ...any) {
	p.errs = append(p.errs, &FieldError{File: p.file, Line: line, Field: field, Msg: fmt.Sprintf(format, args...)})
}

func (p *problems) at(n *yaml.Node, field, format string, args ...any) {
	line := 0
	if n != nil {
		line = n.Line
	}
	p.add(line, field, format, args...)
}

// err returns the collected errors ordered by line, or nil.
func (p *problems) err() error {
	if len(p.errs) == 0 {
		return nil
	}
	slices.SortStableFunc(p.errs, func(a, b *FieldError) int { return cmp.Compare(a.Line, b.Line) })
	errs := make([]error, len(p.errs))
	for i, e := range p.errs {
		errs[i] = e
	}
	if len(errs) == 1 {
		return errs[0]
	}
	return errors.Join(errs...)
}

var yamlLineRE = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// checkText rejects what YAML would misread or report badly: empty files, binary
// content and tab indentation (YAML forbids tabs there, and its own message is cryptic).
func checkText(p *problems, data []byte) bool {
	if len(strings.TrimSpace(string(data))) == 0 {
		p.add(1, "", "empty file")
		return false
	}
	if !utf8.Valid(data) || slices.Contains(data, 0) {
		p.add(1, "", "binary content: not a UTF-8 text file")
		return false
	}
	ok := true
	for i, line := range strings.Split(string(data), "\n") {
		indent := line[:len(line)-len(strings.TrimLeft(line, " \t"))]
		if strings.ContainsRune(indent, '\t') {
			p.add(i+1, "", "tab in indentation: indent with spaces")
			ok = false
		}
	}
	return ok
}

// parseYAML decodes exactly one YAML document into a node tree, turning yaml.v3's
// messages into file:line errors.
func parseYAML(p *problems, data []byte) *yaml.Node {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); errors.Is(err, io.EOF) {
		p.add(1, "", "empty file")
		return nil
	} else if err != nil {
		line, msg := yamlErrLine(err)
		p.add(line, "", "YAML: %s", msg)
		return nil
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) == 0 {
		p.add(1, "", "empty file")
		return nil
	}
	var next yaml.Node
	if err := dec.Decode(&next); err == nil {
		p.add(next.Line, "", "more than one YAML document")
	} else if !errors.Is(err, io.EOF) {
		line, msg := yamlErrLine(err)
		p.add(line, "", "YAML: %s", msg)
	}
	root := doc.Content[0]
	if hasAlias(root, 0) {
		p.at(root, "", "YAML anchors and aliases are not supported")
		return nil
	}
	return root
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

func yamlErrLine(err error) (int, string) {
	msg := err.Error()
	line := 1
	if m := yamlLineRE.FindStringSubmatch(msg); m != nil {
		line, _ = strconv.Atoi(m[1])
		msg = m[2]
	} else {
		msg = strings.TrimPrefix(msg, "yaml: ")
	}
	return line, msg
}

// field is one allowed key of a mapping and what to do with its value.
type field struct {
	key string
	fn  func(v *yaml.Node, path string)
}

// mapping walks a mapping node strictly: unknown and duplicate keys are errors.
// It returns the key nodes seen, for "required" checks.
func mapping(p *problems, n *yaml.Node, path string, fields []field) map[string]*yaml.Node {
	seen := map[string]*yaml.Node{}
	if n.Kind != yaml.MappingNode {
		p.at(n, path, "want a mapping (key: value), got %s", kindName(n))
		return seen
	}
	var want []string
	for _, f := range fields {
		want = append(want, f.key)
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		key := k.Value
		sub := joinPath(path, key)
		if prev, dup := seen[key]; dup {
			p.at(k, sub, "duplicate key (first at line %d)", prev.Line)
			continue
		}
		seen[key] = k
		idx := slices.IndexFunc(fields, func(f field) bool { return f.key == key })
		if idx < 0 {
			p.at(k, sub, "%s", didyoumean.Append(fmt.Sprintf("unknown key %q (want %s)", key, strings.Join(want, ", ")), key, want))
			continue
		}
		fields[idx].fn(v, sub)
	}
	return seen
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
		return fmt.Sprintf("%q", n.Value)
	}
	return "something else"
}

// str returns a non-null scalar's text.
func str(p *problems, n *yaml.Node, path string) (string, bool) {
	if n.Kind != yaml.ScalarNode || n.Tag == "!!null" {
		p.at(n, path, "want a string, got %s", kindName(n))
		return "", false
	}
	return n.Value, true
}

// integer returns an int scalar's value.
func integer(p *problems, n *yaml.Node, path string) (int, bool) {
	if n.Kind != yaml.ScalarNode || n.Tag != "!!int" {
		p.at(n, path, "want an integer, got %s", kindName(n))
		return 0, false
	}
	v, err := strconv.Atoi(n.Value)
	if err != nil {
		p.at(n, path, "want an integer, got %q", n.Value)
		return 0, false
	}
	return v, true
}

func boolean(p *problems, n *yaml.Node, path string) (bool, bool) {
	if n.Kind != yaml.ScalarNode || n.Tag != "!!bool" {
		p.at(n, path, "want true or false, got %s", kindName(n))
		return false, false
	}
	v, err := strconv.ParseBool(strings.ToLower(n.Value))
	if err != nil {
		p.at(n, path, "want true or false, got %q", n.Value)
		return false, false
	}
	return v, true
}

// strList accepts a list of scalars.
func strList(p *problems, n *yaml.Node, path string) ([]string, bool) {
	if n.Kind != yaml.SequenceNode {
		p.at(n, path, "want a list, got %s", kindName(n))
		return nil, false
	}
	out := make([]string, 0, len(n.Content))
	ok := true
	for i, c := range n.Content {
		s, good := str(p, c, fmt.Sprintf("%s[%d]", path, i))
		ok = ok && good
		out = append(out, s)
	}
	return out, ok
}

// strMap accepts a mapping of scalar keys to scalar values, calling fn for each pair.
func strMap(p *problems, n *yaml.Node, path string, fn func(k *yaml.Node, key, val string, vpath string)) {
	if n.Kind != yaml.MappingNode {
		p.at(n, path, "want a mapping (key: value), got %s", kindName(n))
		return
	}
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		sub := joinPath(path, k.Value)
		if line, dup := seen[k.Value]; dup {
			p.at(k, sub, "duplicate key (first at line %d)", line)
			continue
		}
		seen[k.Value] = k.Line
		val, ok := str(p, v, sub)
		if !ok {
			continue
		}
		fn(k, k.Value, val, sub)
	}
}
