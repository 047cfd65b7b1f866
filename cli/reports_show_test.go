package cli_test

import (
	"context"
	"encoding/json"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

const showDef = `name: sales
title: Sales by day
source: good
params:
  - {name: pcn, type: list<int>, default: [123681, 295932]}
  - {name: from, type: date, default: -7d}
  - {name: to, type: date}
  - {name: kind, type: enum, values: [net, gross], default: net}
  - {name: note, type: string, default: ""}
  - {name: min_amount, type: decimal, required: false}
range: [from, to]
concurrency: 2
timeout: 2h
max_attempts: 5
sql: SELECT :from AS f WHERE :to = :to AND :pcn IN (:pcn) AND :kind = :kind AND :note = :note AND :min_amount IS NULL
store: {table: sales_history, mode: replace, replace_where: "day BETWEEN :from AND :to"}
deliver: {email: {to: [accounting@example.com], format: xlsx}}
`

// `reports show -o json|yaml` prints the parsed definition: parameters with their
// types and defaults (an empty default told from none), limits and the store; the
// delivery addresses stay out.
func TestReportsShowStructured(t *testing.T) {
	work := t.TempDir()
	isolateEnv(t, work)
	cfg := filepath.Join(work, "rpt.yaml")
	writeFile(t, cfg, []byte("timezone: UTC\nreports: [defs]\nsources:\n  good: {driver: sqlite, dsn: \"sqlite:"+filepath.Join(work, "good.db")+"\"}\n"))
	writeFile(t, filepath.Join(work, "defs", "sales.yaml"), []byte(showDef))
	show := func(args ...string) (int, string, string) {
		return runCLI(t, context.Background(), append([]string{"--config", cfg, "reports", "show", "sales"}, args...))
	}

	type param struct {
		Name     string   `json:"name" yaml:"name"`
		Type     string   `json:"type" yaml:"type"`
		Values   []string `json:"values" yaml:"values"`
		Default  *string  `json:"default" yaml:"default"`
		Required bool     `json:"required" yaml:"required"`
	}
	type view struct {
		Name        string            `json:"name" yaml:"name"`
		Title       string            `json:"title" yaml:"title"`
		Source      string            `json:"source" yaml:"source"`
		Params      []param           `json:"params" yaml:"params"`
		Range       []string          `json:"range" yaml:"range"`
		Concurrency int               `json:"concurrency" yaml:"concurrency"`
		Timeout     string            `json:"timeout" yaml:"timeout"`
		MaxAttempts int               `json:"max_attempts" yaml:"max_attempts"`
		Store       map[string]string `json:"store" yaml:"store"`
	}
	s := func(v string) *string { return &v }
	want := view{Name: "sales", Title: "Sales by day", Source: "good",
		Params: []param{
			{Name: "pcn", Type: "list<int>", Default: s("123681,295932"), Required: true},
			{Name: "from", Type: "date", Default: s("-7d"), Required: true},
			{Name: "to", Type: "date", Required: true},
			{Name: "kind", Type: "enum", Values: []string{"net", "gross"}, Default: s("net"), Required: true},
			{Name: "note", Type: "string", Default: s(""), Required: true},
			{Name: "min_amount", Type: "decimal"},
		},
		Range: []string{"from", "to"}, Concurrency: 2, Timeout: "2h0m0s", MaxAttempts: 5,
		Store: map[string]string{"table": "sales_history", "mode": "replace", "replace_where": "day BETWEEN :from AND :to"}}

	for _, format := range []string{"json", "yaml"} {
		code, stdout, stderr := show("-o", format)
		if code != 0 {
			t.Fatalf("-o %s: exit %d: %s", format, code, stderr)
		}
		var got view
		var err error
		if format == "json" {
			err = json.Unmarshal([]byte(stdout), &got)
		} else {
			err = yaml.Unmarshal([]byte(stdout), &got)
			if !strings.HasPrefix(stdout, "name: sales\n") {
				t.Errorf("-o yaml: want the name first, as a definition is written:\n%s", stdout)
			}
		}
		if err != nil {
			t.Fatalf("-o %s: %v\n%s", format, err, stdout)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("-o %s:\n got %+v\nwant %+v", format, got, want)
		}
		if strings.Contains(stdout, "accounting@example.com") || strings.Contains(stdout, "good.db") {
			t.Errorf("-o %s prints delivery addresses or the source's DSN:\n%s", format, stdout)
		}
	}

	// The default (table) is still the file as written.
	code, stdout, stderr := show()
	if code != 0 || !strings.Contains(stdout, showDef) {
		t.Errorf("reports show: exit %d, %s\n%s", code, stderr, stdout)
	}
	if code, _, stderr := show("-o", "csv"); code != 2 || !strings.Contains(stderr, `unknown format "csv" (want table|json|yaml)`) {
		t.Errorf("-o csv: exit %d, %s; want 2 naming the formats", code, stderr)
	}
}
