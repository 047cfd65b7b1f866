package reportdefs

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"rpt/internal/source"
	"rpt/internal/yamlstrict"
)

const goodDef = `name: sales-by-day
title: Sales by day
description: Sales per day and plant.
source: warehouse
params:
  - {name: pcn, type: list<int>, default: [123681, 295932]}
  - {name: from, type: date, default: -7d}
  - {name: to, type: date, default: yesterday}
  - {name: kind, type: enum, values: [net, gross], default: net}
  - {name: min_amount, type: decimal, required: false}
  - {name: note, type: string, default: ""}
  - {name: detail, type: bool, default: false}
concurrency: 2
group: accounting
timeout: 2h
max_attempts: 5
requires: {plant: albion}
columns: {amount: decimal, day: date}
sql: |
  SELECT day, amount::numeric FROM sales -- :not_a_param in a comment
  WHERE pcn IN (:pcn) AND day BETWEEN :from AND :to
    AND (:min_amount IS NULL OR amount >= :min_amount) /* :nor_this */
    AND kind = :kind AND note <> ':nor_in_a_string' AND :detail = :detail
dialects:
  sqlite: SELECT :from, :to
store: {table: sales_history, mode: replace, replace_where: "day BETWEEN :from AND :to"}
deliver: {email: {to: [accounting@example.com], format: xlsx, filename: "sales-{from}_{to}_on_{date}.xlsx"}}
`

func TestParseGood(t *testing.T) {
	t.Parallel()
	d, err := Parse("reports/sales.yaml", []byte(goodDef))
	if err != nil {
		t.Fatal(err)
	}
	if d.Name != "sales-by-day" || d.Title != "Sales by day" || d.Source != "warehouse" || d.Concurrency != 2 ||
		d.Group != "accounting" || d.Timeout != 2*time.Hour || d.MaxAttempts != 5 || d.Requires["plant"] != "albion" ||
		d.Columns["amount"] != "decimal" || d.File != "reports/sales.yaml" || string(d.Raw) != goodDef {
		t.Errorf("definition = %+v", d)
	}
	if len(d.Params) != 7 || d.Params[0].Type != "list<int>" || d.Params[0].Default != "123681,295932" ||
		!d.Params[0].List() || d.Params[0].Elem() != TypeInt || d.Params[4].Required || d.Params[4].HasDefault ||
		!d.Params[5].HasDefault || d.Params[5].Default != "" {
		t.Errorf("params = %+v", d.Params)
	}
	if d.Store == nil || d.Store.Mode != StoreReplace || d.Store.Table != "sales_history" {
		t.Errorf("store = %+v", d.Store)
	}
	if d.Deliver == nil || d.Deliver.Email == nil || d.Deliver.Email.To[0] != "accounting@example.com" {
		t.Errorf("deliver = %+v", d.Deliver)
	}
	if d.SQLFor("sqlite") != "SELECT :from, :to" || d.SQLFor("mysql") != d.SQL || d.SQLFor("sqlserver") != d.SQL {
		t.Error("SQLFor does not pick the dialect")
	}
}

// TestParseNeeds: needs: gives each ETL with its max_age and where it is written.
func TestParseNeeds(t *testing.T) {
	t.Parallel()
	d, err := Parse("reports/x.yaml", []byte(base+"needs:\n  - {etl: plex-accounting, max_age: 4h}\n  - etl: plex-periods\n    max_age: 90m\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := []Need{{ETL: "plex-accounting", MaxAge: 4 * time.Hour, Pos: yamlstrict.Pos{Line: 7, Column: 11}},
		{ETL: "plex-periods", MaxAge: 90 * time.Minute, Pos: yamlstrict.Pos{Line: 8, Column: 10}}}
	if !slices.Equal(d.Needs, want) {
		t.Errorf("needs = %+v, want %+v", d.Needs, want)
	}
}

// base is a valid definition the bad cases below are variations of.
const base = `name: x
source: warehouse
params:
  - {name: a, type: int}
sql: SELECT :a
`

func TestParseBad(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		yaml string
		line int
		// field and msg must both appear in the message.
		field, msg string
	}{
		{"unknown type", "name: x\nsource: w\nparams:\n  - {name: a, type: int}\n  - {name: b, type: perod}\nsql: SELECT :a\n",
			5, "params[1].type", `unknown type "perod" (want int, decimal, string, bool, date, period, enum, list<T>)`},
		{"unknown top-level key", base + "titel: Trial\n", 6, "titel", `unknown key "titel"`},
		{"bad name", strings.Replace(base, "name: x", "name: Trial_Balance", 1), 1, "name", `bad name "Trial_Balance"`},
		{"name starting with dash", strings.Replace(base, "name: x", "name: -x", 1), 1, "name", "bad name"},
		{"duplicate param", base + "", 0, "", ""}, // replaced below
		{"bad int default", strings.Replace(base, "type: int}", "type: int, default: abc}", 1), 4, "params[0].default", `bad int default "abc"`},
		{"enum without values", strings.Replace(base, "type: int}", "type: enum}", 1), 4, "params[0].values", "enum needs values"},
		{"list of a bad type", strings.Replace(base, "type: int}", "type: list<perod>}", 1), 4, "params[0].type", `unknown type "list<perod>"`},
		{"unclosed list type", strings.Replace(base, "type: int}", "type: list<int}", 1), 4, "params[0].type", "unknown type"},
		{"zero concurrency", base + "concurrency: 0\n", 6, "concurrency", "at least 1"},
		{"needs not a list", base + "needs: plex-accounting\n", 6, "needs", "want a list"},
		{"needs bad etl name", base + "needs:\n  - {etl: Plex_Acct, max_age: 4h}\n", 7, "needs[0].etl", `bad ETL name "Plex_Acct"`},
		{"needs bad max_age", base + "needs:\n  - {etl: plex-accounting, max_age: 4 hours}\n", 7, "needs[0].max_age", `bad duration "4 hours"`},
		{"needs tiny max_age", base + "needs:\n  - {etl: plex-accounting, max_age: 10s}\n", 7, "needs[0].max_age", "at least 1m"},
		{"needs without max_age", base + "needs:\n  - {etl: plex-accounting}\n", 7, "needs[0].max_age", "missing (required)"},
		{"needs unknown key", base + "needs:\n  - {etl: plex-accounting, max_age: 4h, maxage: 2h}\n", 7, "needs[0].maxage", `unknown key "maxage"`},
		{"needs twice", base + "needs:\n  - {etl: e, max_age: 4h}\n  - {etl: e, max_age: 2h}\n", 8, "needs[1].etl", "needed twice"},
		{"negative concurrency", base + "concurrency: -2\n", 6, "concurrency", "at least 1"},
		{"concurrency not a number", base + "concurrency: one\n", 6, "concurrency", "want an integer"},
		{"bad timeout", base + "timeout: 2 hours\n", 6, "timeout", `bad duration "2 hours"`},
		{"negative timeout", base + "timeout: -5m\n", 6, "timeout", "must be positive"},
		{"undeclared param in sql", "name: x\nsource: w\nparams:\n  - {name: a, type: int}\nsql: |\n  SELECT *\n  FROM t\n  WHERE a = :a AND b = :b\n",
			8, "sql", ":b is not a declared parameter (declared: a)"},
		{"undeclared param in a dialect", base + "dialects:\n  sqlite: |\n    SELECT\n      :zz\n", 9, "dialects.sqlite", ":zz is not a declared parameter"},
		{"undeclared param in replace_where", base + "store: {table: t, mode: replace, replace_where: \"pcn = :pcn\"}\n",
			6, "store.replace_where", ":pcn is not a declared parameter"},
		{"unknown store mode", base + "store: {table: t, mode: merge}\n", 6, "store.mode", `unknown store mode "merge" (want append, upsert, replace)`},
		{"upsert without key", base + "store: {table: t, mode: upsert}\n", 6, "store.key", "needs key"},
		{"replace without where", base + "store: {table: t, mode: replace}\n", 6, "store.replace_where", "needs replace_where"},
		{"store without table", base + "store: {mode: append}\n", 6, "store.table", "missing"},
		{"bad table name", base + "store: {table: \"drop table\"}\n", 6, "store.table", "bad table name"},
		{"zero max_attempts", base + "max_attempts: 0\n", 6, "max_attempts", "must be 1-100"},
		{"bad column type", base + "columns:\n  amount: money\n", 7, "columns.amount", `unknown column type "money"`},
		{"unknown dialect", base + "dialects:\n  oracle: SELECT 1\n", 7, "dialects.oracle", `unknown driver "oracle"`},
		{"missing source", "name: x\nsql: SELECT 1\n", 1, "source", "missing"},
		{"missing sql", "name: x\nsource: w\n", 1, "sql", "missing"},
		{"tab indentation", "name: x\nsource: w\nparams:\n\t- {name: a, type: int}\nsql: SELECT :a\n", 4, "", "tab in indentation"},
		{"empty file", "\n  \n", 1, "", "empty file"},
		{"comment only", "# nothing here\n", 1, "", "empty file"},
		{"binary content", "name: x\x00\x01\x02", 1, "", "binary content"},
		{"invalid UTF-8", "name: \xff\xfe\n", 1, "", "binary content"},
		{"duplicate key", base + "name: y\n", 6, "name", "duplicate key (first at line 1)"},
		{"params not a list", "name: x\nsource: w\nparams: {a: int}\nsql: SELECT 1\n", 3, "params", "want a list of parameters"},
		{"unknown param key", strings.Replace(base, "{name: a, type: int}", "{name: a, type: int, defualt: 3}", 1), 4, "params[0].defualt", `unknown key "defualt"`},
		{"param without type", strings.Replace(base, "{name: a, type: int}", "{name: a}", 1), 4, "params[0].type", "missing"},
		{"bad param name", strings.Replace(base, "{name: a, type: int}", "{name: A-1, type: int}", 1), 4, "params[0].name", `bad parameter name "A-1"`},
		{"period default month 13", strings.Replace(base, "type: int}", "type: period, default: 202513}", 1), 4, "params[0].default", "month 13 is not 01-12"},
		{"impossible date default", strings.Replace(base, "type: int}", "type: date, default: 2025-02-30}", 1), 4, "params[0].default", `bad date default "2025-02-30"`},
		{"enum default not a value", strings.Replace(base, "type: int}", "type: enum, values: [a, b], default: c}", 1), 4, "params[0].default", "want one of a, b"},
		{"values on an int", strings.Replace(base, "type: int}", "type: int, values: [1, 2]}", 1), 4, "params[0].values", "only an enum parameter takes values"},
		{"bad decimal default", strings.Replace(base, "type: int}", "type: decimal, default: 1.2.3}", 1), 4, "params[0].default", "exact decimal"},
		{"bad list default element", strings.Replace(base, "type: int}", "type: list<int>, default: [1, x]}", 1), 4, "params[0].default", `element 2 "x"`},
		{"required not a bool", strings.Replace(base, "type: int}", "type: int, required: maybe}", 1), 4, "params[0].required", "want true or false"},
		{"group without concurrency", base + "group: accounting\n", 6, "group", "needs concurrency"},
		{"requires not a mapping", base + "requires: [albion]\n", 6, "requires", "want a mapping"},
		{"email bad format", base + "deliver:\n  email: {to: [a@b.c], format: pdf}\n", 7, "deliver.email.format", `unknown format "pdf"`},
		{"email bad address", base + "deliver:\n  email: {to: [nobody]}\n", 7, "deliver.email.to[0]", `bad e-mail address "nobody"`},
		{"email unknown placeholder", base + "deliver:\n  email:\n    to: [a@b.c]\n    filename: \"tb-{perod}.xlsx\"\n", 9, "deliver.email.filename", "unknown placeholder {perod}"},
		{"YAML syntax error", "name: x\nsource: [w\nsql: SELECT 1\n", 0, "", "YAML:"},
		{"two documents", base + "---\nname: y\n", 6, "", "more than one YAML document"},
		{"anchors", "name: &n x\nsource: *n\nsql: SELECT 1\n", 1, "", "anchors and aliases"},
		{"top level is a list", "- name: x\n", 1, "", "want a mapping"},
		{"name not a string", strings.Replace(base, "name: x", "name: [x]", 1), 1, "name", "want a string"},
		{"empty sql", strings.Replace(base, "sql: SELECT :a", "sql: \"  \"", 1), 5, "sql", "empty SQL"},
	}
	tests[4] = struct {
		name       string
		yaml       string
		line       int
		field, msg string
	}{"duplicate param", "name: x\nsource: w\nparams:\n  - {name: a, type: int}\n  - {name: a, type: int}\nsql: SELECT :a\n",
		5, "params[1].name", `duplicate parameter "a" (first at line 4)`}
	if len(tests) < 25 {
		t.Fatalf("only %d cases", len(tests))
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			d, err := Parse("reports/tb.yaml", []byte(tt.yaml))
			if err == nil {
				t.Fatalf("no error; parsed %+v", d)
			}
			if d != nil {
				t.Error("a definition was returned with the error")
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("errors.Is(err, ErrInvalid) = false for %v", err)
			}
			msg := err.Error()
			// The column is checked by TestPositions; here the line and the field.
			want := regexp.QuoteMeta("reports/tb.yaml:")
			if tt.line > 0 {
				want = regexp.QuoteMeta(fmt.Sprintf("reports/tb.yaml:%d", tt.line)) + `(:\d+)?: `
			}
			if tt.field != "" {
				want += regexp.QuoteMeta(tt.field + ": ")
			}
			if !regexp.MustCompile(want).MatchString(msg) {
				t.Errorf("error %q does not match %q", msg, want)
			}
			if !strings.Contains(msg, tt.msg) {
				t.Errorf("error %q does not contain %q", msg, tt.msg)
			}
		})
	}
}

// TestParseAllErrors checks that every problem of a file is reported, ordered by line.
func TestParseAllErrors(t *testing.T) {
	t.Parallel()
	src := "name: Bad Name\nsource: w\nparams:\n  - {name: a, type: perod}\n  - {name: a, type: int}\nconcurrency: 0\nsql: SELECT :b\ncolour: red\n"
	_, err := Parse("x.yaml", []byte(src))
	if err == nil {
		t.Fatal("no error")
	}
	lines := strings.Split(err.Error(), "\n")
	want := []string{"x.yaml:1:7: name:", "x.yaml:4:21: params[0].type:", "x.yaml:5:12: params[1].name:", "x.yaml:6:14: concurrency:",
		"x.yaml:7:13: sql: :b", "x.yaml:8:1: colour:"}
	if len(lines) != len(want) {
		t.Fatalf("got %d errors, want %d:\n%s", len(lines), len(want), err)
	}
	for i, w := range want {
		if !strings.HasPrefix(lines[i], w) {
			t.Errorf("error %d = %q, want prefix %q", i, lines[i], w)
		}
	}
	var fe *FieldError
	if !errors.As(err, &fe) || fe.File != "x.yaml" || fe.Line != 1 || fe.Column != 7 || fe.Field != "name" {
		t.Errorf("errors.As FieldError = %+v", fe)
	}
}

func writeFile(t *testing.T, dir, name, content string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestLoadCatalog(t *testing.T) {
	t.Parallel()
	t.Run("shipped", func(t *testing.T) {
		c, err := LoadCatalog()
		if err != nil {
			t.Fatal(err)
		}
		d, err := c.Get("trial-balance")
		if err != nil {
			t.Fatal(err)
		}
		if d.File != "shipped:trial-balance.yaml" || len(c.List()) == 0 {
			t.Errorf("file %q, %d reports", d.File, len(c.List()))
		}
		_, err = c.Get("trial-balanse")
		if !errors.Is(err, ErrNotFound) || !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), `unknown report "trial-balanse" (known: `) {
			t.Errorf("Get unknown: %v", err)
		}
	})
	t.Run("override and extra", func(t *testing.T) {
		dir := t.TempDir()
		writeFile(t, dir, "tb.yaml", "name: trial-balance\nsource: demo\nsql: SELECT 1\n")
		writeFile(t, dir, "extra.yml", "name: extra\nsource: demo\nsql: SELECT 2\n")
		writeFile(t, dir, "README.md", "not a definition")
		writeFile(t, dir, ".hidden.yaml", "garbage: [")
		c, err := LoadCatalog(dir)
		if err != nil {
			t.Fatal(err)
		}
		d, _ := c.Get("trial-balance")
		if d == nil || d.Source != "demo" || d.File != filepath.Join(dir, "tb.yaml") {
			t.Errorf("override not applied: %+v", d)
		}
		var names []string
		for _, d := range c.List() {
			names = append(names, d.Name)
		}
		// Other shipped reports come and go; these two must be listed, sorted.
		if !slices.Contains(names, "extra") || !slices.Contains(names, "trial-balance") || !slices.IsSorted(names) {
			t.Errorf("List = %v", names)
		}
	})
	t.Run("duplicate across folders", func(t *testing.T) {
		a, b := t.TempDir(), t.TempDir()
		writeFile(t, a, "one.yaml", "name: same\nsource: demo\nsql: SELECT 1\n")
		writeFile(t, b, "two.yaml", "name: same\nsource: demo\nsql: SELECT 2\n")
		_, err := LoadCatalog(a, b)
		if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), filepath.Join(b, "two.yaml")+":1:7: name: ") ||
			!strings.Contains(err.Error(), filepath.Join(a, "one.yaml")) ||
			!strings.Contains(err.Error(), filepath.Join(b, "two.yaml")) {
			t.Errorf("err = %v", err)
		}
	})
	t.Run("bad files are all reported", func(t *testing.T) {
		dir := t.TempDir()
		writeFile(t, dir, "a.yaml", "name: a\nsource: demo\nsql: SELECT :x\n")
		writeFile(t, dir, "b.yaml", "name: b\n")
		_, err := LoadCatalog(dir)
		if err == nil || !strings.Contains(err.Error(), "a.yaml:3:13: sql:") || !strings.Contains(err.Error(), "b.yaml:1:1: source:") {
			t.Errorf("err = %v", err)
		}
	})
	t.Run("missing folder", func(t *testing.T) {
		if _, err := LoadCatalog(filepath.Join(t.TempDir(), "nope")); err == nil {
			t.Error("no error for a missing folder")
		}
	})
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(goodDef))
	f.Add([]byte(base))
	data, err := shipped.ReadFile("reports/trial-balance.yaml")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(data)
	f.Add([]byte("name: &a [*a]\n"))
	f.Add([]byte("params:\n  - {name: a, type: list<enum>, values: [x], default: [x, y]}\n"))
	f.Add([]byte(procDef))
	f.Add([]byte(dataSourceDef))
	f.Fuzz(func(t *testing.T, data []byte) {
		d, err := Parse("fuzz.yaml", data)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error not ErrInvalid: %v", err)
			}
			return
		}
		// Every driver gets an answer about the request, never a panic.
		for _, drv := range source.KnownDrivers() {
			if err := d.CheckDriver(drv); err != nil && !errors.Is(err, ErrInvalid) {
				t.Fatalf("CheckDriver(%s): error not ErrInvalid: %v", drv, err)
			}
		}
		// A parsed definition resolves its defaults and binds them without panicking.
		if resolved, err := d.Resolve(nil, time.Date(2025, 3, 31, 0, 0, 0, 0, time.UTC), time.UTC); err == nil {
			if _, err := d.BindValues(resolved); err != nil {
				t.Fatalf("BindValues of Resolve's own output: %v", err)
			}
		}
	})
}

func TestFileName(t *testing.T) {
	t.Parallel()
	d, err := Parse("tb.yaml", []byte("name: tb\nsource: warehouse\nparams:\n  - {name: start_period, type: period}\n  - {name: end_period, type: period}\nfilename: \"TB-{start_period}_to_{end_period}_on_{date}.xlsx\"\nsql: SELECT :start_period, :end_period\n"))
	if err != nil {
		t.Fatal(err)
	}
	detroit, _ := time.LoadLocation("America/Detroit")
	finished := time.Date(2026, 12, 1, 2, 0, 0, 0, time.UTC) // still Nov 30 in Detroit
	got := d.FileName(7, []byte(`{"start_period":202501,"end_period":202512}`), finished, detroit, "xlsx")
	if want := "TB-202501_to_202512_on_11-30.xlsx"; got != want {
		t.Errorf("FileName = %q, want %q", got, want)
	}
	plain, err := Parse("x.yaml", []byte("name: x\nsource: warehouse\nsql: SELECT 1\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got := plain.FileName(7, nil, finished, time.UTC, "xlsx"); got != "x-7.xlsx" {
		t.Errorf("FileName without a template = %q", got)
	}
	for _, bad := range []string{"filename: \"{nope}.xlsx\"", "filename: \"../{date}.xlsx\""} {
		if _, err := Parse("b.yaml", []byte("name: b\nsource: warehouse\n"+bad+"\nsql: SELECT 1\n")); err == nil || !strings.Contains(err.Error(), "b.yaml:3:11: filename") {
			t.Errorf("%s: error %v, want b.yaml:3:11: filename", bad, err)
		}
	}
}
