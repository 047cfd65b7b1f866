package etl

import (
	"errors"
	"os"
	"strings"
	"testing"
)

// TestParseErrors: bad definitions are refused with every problem named at
// file:line:column and its field.
func TestParseErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ name, yaml, want string }{
		{"unknown key", "name: a\nsource: plex\nextract: {table: t}\nmode: full\ntarget: {table: x}\ntargte: 1\n", "bad.yaml:6:1: targte: unknown key"},
		{"bad mode", "name: a\nsource: plex\nextract: {table: t}\nmode: fulll\ntarget: {table: x}\n", "bad.yaml:4:7: mode: unknown mode \"fulll\""},
		{"two extracts", "name: a\nsource: plex\nextract: {table: t, sql: SELECT 1}\nmode: full\ntarget: {table: x}\n", "bad.yaml:3:10: extract: want exactly one of sql, table, procedure, datasource (got 2)"},
		{"incremental without block", "name: a\nsource: plex\nextract: {table: t}\nmode: incremental\ntarget: {table: x, key: [id]}\n", "bad.yaml:4:7: incremental: missing"},
		{"incremental without key", "name: a\nsource: plex\nextract: {table: t}\nmode: incremental\nincremental: {column: u}\ntarget: {table: x}\n", "target.key: mode incremental upserts by key"},
		{"sql without since", "name: a\nsource: plex\nextract:\n  sql: SELECT * FROM t\nmode: incremental\nincremental: {column: u, initial: '1900-01-01'}\ntarget: {table: x, key: [id]}\n", "bad.yaml:4:8: extract.sql: mode incremental needs :since"},
		{"unknown param", "name: a\nsource: plex\nextract:\n  sql: SELECT * FROM t WHERE p = :pcn\nmode: full\ntarget: {table: x}\n", "extract.sql: line 1: unknown parameter :pcn"},
		{"two statements", "name: a\nsource: plex\nextract:\n  sql: SELECT 1; DELETE FROM t\nmode: full\ntarget: {table: x}\n", "bad.yaml:4:8: extract.sql:"},
		{"rpt table", "name: a\nsource: plex\nextract: {table: t}\nmode: full\ntarget: {table: rpt_jobs}\n", "bad.yaml:5:17: target.table: bad table name \"rpt_jobs\""},
		{"create not a table", "name: a\nsource: plex\nextract: {table: t}\nmode: full\ntarget: {table: x, create: DROP TABLE y}\n", "target.create: want one CREATE TABLE statement"},
		{"block of another mode", "name: a\nsource: plex\nextract: {table: t}\nmode: full\nperiod_range: {column: p}\ntarget: {table: x}\n", "bad.yaml:5:15: period_range: only for mode: period-range"},
		{"missing", "name: a\n", "bad.yaml:1: source: missing"},
		{"shrink share", "name: a\nsource: plex\nextract: {table: t}\nmode: full\ntarget: {table: x, max_shrink: 2}\n", "bad.yaml:5:32: target.max_shrink: want a share between 0 and 1"},
		{"pcn without per_pcn", "name: a\nsource: ws\nextract:\n  datasource: {key: 1, inputs: {\"@PCN\": pcn}, columns: [A]}\nmode: full\ntarget: {table: x}\n", "bad.yaml:4:15: extract.datasource.inputs.@PCN: parameter pcn is bound only in a per_pcn ETL"},
		{"per_pcn sql without pcn", "name: a\nsource: plex\nextract: {sql: SELECT 1}\nmode: full\nper_pcn: true\ntarget: {table: x}\n", "extract.sql: a per_pcn ETL's SQL selects one PCN's rows with :pcn"},
		{"reconcile lookback in full", "name: a\nsource: plex\nextract: {table: t}\nmode: full\nreconcile: {}\ntarget: {table: x, key: [id]}\n", "bad.yaml:5:12: reconcile.within: lookback is the window of an incremental run"},
		{"after itself", "name: a\nsource: plex\nafter: [a]\nextract: {table: t}\nmode: full\ntarget: {table: x}\n", "after: \"a\" cannot run after itself"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("bad.yaml", []byte(tc.yaml))
			if err == nil || !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an ErrInvalid containing %q", err, tc.want)
			}
		})
	}
}

// TestShippedCatalog: the shipped definitions parse, their dependencies exist, and
// the pipeline order puts each after its dependencies.
func TestShippedCatalog(t *testing.T) {
	t.Parallel()
	cat, err := LoadCatalog()
	if err != nil {
		t.Fatal(err)
	}
	order, err := cat.Order([]string{"accounting-ytd"})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, d := range order {
		names = append(names, d.Name)
	}
	if got := strings.Join(names, " "); got != "plex-accounts plex-periods plex-balances accounting-ytd" {
		t.Errorf("order of accounting-ytd: %s", got)
	}
	if _, err := cat.Get("plex-acounts"); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "plex-accounts") {
		t.Errorf("a mistyped name: %v, want a suggestion", err)
	}
}

// TestCycle: a dependency cycle in a folder is refused naming it.
func TestCycle(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write := func(name, after string) {
		y := "name: " + name + "\nsource: plex\nafter: [" + after + "]\nextract: {table: t}\nmode: full\ntarget: {table: x}\n"
		if err := writeFile(dir+"/"+name+".yaml", y); err != nil {
			t.Fatal(err)
		}
	}
	write("c-one", "c-two")
	write("c-two", "c-one")
	_, err := LoadCatalog(dir)
	// At the after: entry that closes the cycle: c-two's, line 3, column 9.
	if err == nil || !strings.Contains(err.Error(), "c-two.yaml:3:9: after[0]: dependency cycle: c-one -> c-two -> c-one") {
		t.Fatalf("cycle: %v", err)
	}
	// An unknown name is refused at its own entry.
	write("c-two", "c-three, c-fuor")
	write("c-three", "")
	_, err = LoadCatalog(dir)
	if err == nil || !strings.Contains(err.Error(), `c-two.yaml:3:18: after[1]: unknown etl "c-fuor"`) {
		t.Fatalf("unknown: %v", err)
	}
}

func writeFile(path, s string) error { return os.WriteFile(path, []byte(s), 0o644) }
