package yamlstrict

import (
	"errors"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

var errBad = errors.New("bad input")

func newDoc() *Doc { return &Doc{File: "f.yaml", Class: errBad, What: "a test file", MaxSize: 1 << 10} }

func TestParseProblems(t *testing.T) {
	t.Parallel()
	tests := []struct{ name, src, want string }{
		{"tab", "a:\n  b: 1\n \tc: 2\n", "f.yaml:3:2: tab in indentation: indent with spaces"},
		{"binary", "a: \x00", "f.yaml:1: binary content: not a UTF-8 text file"},
		{"invalid UTF-8", "a: \xff\n", "f.yaml:1: binary content"},
		{"syntax", "a: [1\nb: 2\n", "f.yaml:1: YAML: did not find expected ',' or ']'"},
		{"two documents", "a: 1\n---\nb: 2\n", "f.yaml:2:1: more than one YAML document"},
		{"anchor", "a: 1\nb: &x {c: 1}\nd: *x\n", "f.yaml:2:4: YAML anchors and aliases are not supported"},
		{"too big", strings.Repeat("#", 1025), "f.yaml: file is 1.0 KiB; a test file may be at most 1 KiB"},
	}
	for _, tt := range tests {
		d := newDoc()
		if root := d.Parse([]byte(tt.src)); root != nil {
			t.Errorf("%s: got a root node", tt.name)
		}
		err := d.Err()
		if err == nil || !strings.HasPrefix(err.Error(), tt.want) {
			t.Errorf("%s: error %v, want prefix %q", tt.name, err, tt.want)
		}
		if !errors.Is(err, errBad) {
			t.Errorf("%s: error does not match its class", tt.name)
		}
	}
	for _, empty := range []string{"", "# only a comment\n", "\xEF\xBB\xBF"} {
		d := newDoc()
		if root := d.Parse([]byte(empty)); root != nil || d.Err() != nil {
			t.Errorf("%q: root %v, error %v; want neither", empty, root, d.Err())
		}
	}
}

func TestWalk(t *testing.T) {
	t.Parallel()
	src := "name: x\ncount: \"${N}\"\nflag: maybe\nlist: [a, [b]]\nnamee: y\nname: z\nsecret: {a: 1}\n"
	d := newDoc()
	d.Expand = func(s string) (string, error) { return strings.ReplaceAll(s, "${N}", "42"), nil }
	root := d.Parse([]byte(src))
	if root == nil {
		t.Fatal(d.Err())
	}
	var name string
	var count int
	d.Mapping(root, "",
		Field{Key: "name", Fn: func(v *yaml.Node, p string) { name, _ = d.Str(v, p) }},
		Field{Key: "count", Fn: func(v *yaml.Node, p string) { count, _ = d.Int(v, p) }},
		Field{Key: "flag", Fn: func(v *yaml.Node, p string) { d.Bool(v, p) }},
		Field{Key: "list", Fn: func(v *yaml.Node, p string) { d.StrList(v, p) }},
		Field{Key: "secret", Fn: func(v *yaml.Node, p string) { d.Str(v, p) }},
	)
	if name != "x" || count != 42 {
		t.Errorf("name %q count %d", name, count)
	}
	want := []string{
		`f.yaml:3:7: flag: want true or false, got "maybe"`,
		`f.yaml:4:11: list[1]: want a string, got a list`,
		"f.yaml:5:1: namee: unknown key \"namee\" (want name, count, flag, list, secret); did you mean `name`?",
		`f.yaml:6:1: name: duplicate key (first at line 1)`,
		`f.yaml:7:9: secret: want a string, got a mapping`,
	}
	if got := d.Err().Error(); got != strings.Join(want, "\n") {
		t.Errorf("errors:\n%s\nwant:\n%s", got, strings.Join(want, "\n"))
	}
}

func TestHideValuesAndNull(t *testing.T) {
	t.Parallel()
	d := newDoc()
	d.HideValues, d.NullIsEmpty = true, true
	root := d.Parse([]byte("a: mysql://u:pw@h/db\nb:\nc:\n"))
	d.Mapping(root, "",
		Field{Key: "a", Fn: func(v *yaml.Node, p string) { d.Mapping(v, p) }},
		Field{Key: "b", Fn: func(v *yaml.Node, p string) {
			if s, ok := d.Str(v, p); !ok || s != "" {
				t.Errorf("null string = %q, %v", s, ok)
			}
		}},
		Field{Key: "c", Fn: func(v *yaml.Node, p string) { d.Mapping(v, p) }},
	)
	err := d.Err()
	if err == nil || err.Error() != "f.yaml:1:4: a: want a mapping (key: value), got a scalar" {
		t.Errorf("error %v", err)
	}
	strict := newDoc()
	root = strict.Parse([]byte("b:\n"))
	strict.Mapping(root, "", Field{Key: "b", Fn: func(v *yaml.Node, p string) { strict.Str(v, p) }})
	if err := strict.Err(); err == nil || err.Error() != "f.yaml:1:3: b: want a string, got null" {
		t.Errorf("strict null: %v", err)
	}
}

// TestTextPos: an offset in a scalar's text maps to where it is written in the file.
func TestTextPos(t *testing.T) {
	t.Parallel()
	src := "a: SELECT :x\nb: |\n  SELECT 1\n    FROM t WHERE :y\nc: \"SELECT :z\"\nd: \"tab\\there :w\"\ne: >\n  one\n  two :v\n"
	d := newDoc()
	root := d.Parse([]byte(src))
	if root == nil {
		t.Fatal(d.Err())
	}
	tests := []struct {
		key, ref string
		want     Pos
	}{
		{"a", ":x", Pos{1, 11}},
		{"b", ":y", Pos{4, 18}},
		{"c", ":z", Pos{5, 12}},
		{"d", ":w", Pos{Line: 6}},  // an escape before it: the line only
		{"e", ":v", Pos{Line: 8}},  // folded: its line breaks are gone from the text, so the line of the text's start
		{"b", "SELECT", Pos{3, 3}}, // the first line of a block
	}
	for _, tt := range tests {
		n := Lookup(root, tt.key)
		off := strings.Index(n.Value, tt.ref)
		if got := TextPos(n, d.Source, off); got != tt.want {
			t.Errorf("%s %s: %+v, want %+v", tt.key, tt.ref, got, tt.want)
		}
	}
}
