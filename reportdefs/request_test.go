package reportdefs

import (
	"encoding/json"
	"errors"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"rpt/internal/queue"
	"rpt/internal/source"
)

const procDef = `name: balances
source: erp
params:
  - {name: pcn, type: int}
  - {name: period, type: period, default: last-month}
procedure:
  name: acct.trial_balance
  args: [pcn, period]
columns: {amount: decimal}
`

const dataSourceDef = `name: plex-balances
source: plex
params:
  - {name: period, type: period, default: last-month}
datasource:
  key: 4506
  name: Trial_Balance_Get
  inputs: {Begin_Period: period, End_Period: period}
  columns: [Account_No, Amount]
`

func TestParseRequestForms(t *testing.T) {
	t.Parallel()
	d := mustParse(t, procDef)
	if d.Procedure == nil || d.Procedure.Name != "acct.trial_balance" || !reflect.DeepEqual(d.Procedure.Args, []string{"pcn", "period"}) || d.SQL != "" {
		t.Fatalf("procedure = %+v, sql %q", d.Procedure, d.SQL)
	}
	req := d.Request("mysql", map[string]any{"pcn": int64(1)})
	if req.Procedure == nil || req.SQL != "" || req.Params["pcn"] != int64(1) || req.Validate("mysql") != nil {
		t.Errorf("request = %+v", req)
	}
	if got := d.Features(); !reflect.DeepEqual(got, []string{FeatureProcedure}) {
		t.Errorf("features = %v", got)
	}

	onlyLite := mustParse(t, "name: x\nsource: w\ndialects:\n  sqlite: SELECT 1\n")
	if err := onlyLite.CheckDriver("sqlite"); err != nil {
		t.Errorf("dialect for the driver: %v", err)
	}
	if err := onlyLite.CheckDriver("mysql"); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), `test.yaml:3:1: dialects: source "w": no entry for mysql and no sql:`) {
		t.Errorf("no dialect for the driver: %v", err)
	}
	ds := mustParse(t, dataSourceDef)
	want := &source.DataSource{Key: 4506, Name: "Trial_Balance_Get", Inputs: map[string]string{"Begin_Period": "period", "End_Period": "period"},
		Columns: []string{"Account_No", "Amount"}, Types: []source.Type{source.TypeString, source.TypeString}}
	if !reflect.DeepEqual(ds.DataSource, want) {
		t.Errorf("datasource = %+v, want %+v", ds.DataSource, want)
	}
	if got := ds.Features(); !reflect.DeepEqual(got, []string{FeatureDataSource}) {
		t.Errorf("features = %v", got)
	}

	plain := mustParse(t, base)
	if r := plain.Request("sqlite", nil); r.SQL != "SELECT :a" || r.Procedure != nil || len(plain.Features()) != 0 {
		t.Errorf("plain request = %+v, features %v", r, plain.Features())
	}
}

func TestParseRequestErrors(t *testing.T) {
	t.Parallel()
	head := "name: x\nsource: w\nparams:\n  - {name: a, type: int}\n  - {name: ids, type: list<int>}\n"
	tests := []struct {
		name, yaml string
		want       string // file:line: field: message part
	}{
		{"nothing to run", "name: x\nsource: w\n", "x.yaml:1: sql: missing (a definition needs sql:, dialects:, procedure: or datasource:)"},
		{"sql and procedure", head + "sql: SELECT 1\nprocedure: {name: p}\n", "x.yaml:7: procedure: cannot be combined with sql:"},
		{"procedure and datasource", head + "procedure: {name: p}\ndatasource: {key: 1}\n", "x.yaml:7: datasource: cannot be combined with procedure:"},
		{"procedure without name", head + "procedure: {args: [a]}\n", "x.yaml:6: procedure.name: missing"},
		{"bad procedure name", head + "procedure: {name: \"p; DROP TABLE t\"}\n", `x.yaml:6: procedure.name: bad procedure name "p; DROP TABLE t"`},
		{"undeclared arg", head + "procedure:\n  name: p\n  args: [a, b]\n", `x.yaml:8: procedure.args[1]: "b" is not a declared parameter (declared: a, ids)`},
		{"list arg", head + "procedure:\n  name: p\n  args: [ids]\n", `x.yaml:8: procedure.args[0]: "ids" is a list (list<int>)`},
		{"args not a list", head + "procedure: {name: p, args: a}\n", "x.yaml:6: procedure.args: want a list"},
		{"unknown procedure key", head + "procedure: {name: p, params: [a]}\n", `x.yaml:6: procedure.params: unknown key "params" (want name, args)`},
		{"datasource without key", head + "datasource: {name: n}\n", "x.yaml:6: datasource.key: missing"},
		{"datasource key zero", head + "datasource: {key: 0}\n", "x.yaml:6: datasource.key: must be the data source's key"},
		{"datasource undeclared input", head + "datasource:\n  key: 1\n  inputs: {Begin: zz}\n", `x.yaml:8: datasource.inputs.Begin: "zz" is not a declared parameter`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := Parse("x.yaml", []byte(tt.yaml))
			// want names the line; the column (checked in TestPositions) may follow it.
			file, rest, _ := strings.Cut(tt.want, ": ")
			want := regexp.MustCompile(regexp.QuoteMeta(file) + `(:\d+)?: ` + regexp.QuoteMeta(rest))
			if err == nil || !errors.Is(err, ErrInvalid) || !want.MatchString(err.Error()) {
				t.Fatalf("Parse: %v\nwant an error matching %q", err, want)
			}
		})
	}
}

// A definition the configured source cannot run is a definition error at its request
// key, before anything is queued or connected.
func TestCheckDriver(t *testing.T) {
	t.Parallel()
	d := mustParse(t, procDef)
	for _, drv := range []string{"mysql", "sqlserver"} {
		if err := d.CheckDriver(drv); err != nil {
			t.Errorf("CheckDriver(%s) = %v", drv, err)
		}
	}
	err := d.CheckDriver("sqlite")
	if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), `test.yaml:6:1: procedure: source "erp": SQLite has no stored procedures`) {
		t.Errorf("CheckDriver(sqlite) = %v", err)
	}
	ds := mustParse(t, dataSourceDef)
	if err := ds.CheckDriver("mysql"); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "test.yaml:5:1: datasource: ") {
		t.Errorf("datasource on mysql: %v", err)
	}
}

// A run that uses a feature v0.1.0 agents lack requires its capability label; a plain
// one gets no new route label, so old agents keep taking it.
func TestJobParamsCapabilities(t *testing.T) {
	t.Parallel()
	resolved := json.RawMessage(`{"pcn":1,"period":"2024-01"}`)
	p := mustParse(t, procDef).JobParams(resolved, nil)
	if !reflect.DeepEqual(p.Route, map[string]string{"rpt/feature.procedure": "yes"}) {
		t.Errorf("procedure route = %v", p.Route)
	}
	withReq := mustParse(t, strings.Replace(procDef, "columns:", "requires: {plant: albion}\ncolumns:", 1)).JobParams(resolved, nil)
	if !reflect.DeepEqual(withReq.Route, map[string]string{"plant": "albion", queue.FeatureLabel(FeatureProcedure): queue.CapabilityYes}) {
		t.Errorf("route with requires = %v", withReq.Route)
	}
	if p := mustParse(t, base).JobParams(json.RawMessage(`{"a":1}`), nil); p.Route != nil {
		t.Errorf("plain route = %v, want none", p.Route)
	}
}

// On an odbc source the definition's SQL and procedure call are those of the source's
// dialect:, and a definition without columns: is refused (every column typed).
func TestCheckSourceODBC(t *testing.T) {
	t.Parallel()
	typed := mustParse(t, "name: r\nsource: plex-odbc\nsql: SELECT 1 AS one\ndialects:\n  sqlserver: SELECT TOP 1 1 AS one\ncolumns: {one: int}\n")
	untyped := mustParse(t, "name: r\nsource: plex-odbc\nsql: SELECT 1 AS one\n")
	proc := mustParse(t, "name: r\nparams:\n  - {name: pcn, type: int}\nsource: plex-odbc\nprocedure: {name: acct.tb, args: [pcn]}\ncolumns: {x: int}\n")
	for _, dialect := range []string{"", "sqlserver", "mysql"} {
		sources := map[string]source.Config{"plex-odbc": {Driver: "odbc", DSN: "DSN=Plex", Dialect: dialect}}
		if err := typed.CheckSource(sources, "rpt.yaml"); err != nil {
			t.Errorf("typed, dialect %q: %v", dialect, err)
		}
		if err := proc.CheckSource(sources, "rpt.yaml"); err != nil {
			t.Errorf("procedure, dialect %q: %v", dialect, err)
		}
		err := untyped.CheckSource(sources, "rpt.yaml")
		if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), `test.yaml:2:9: columns: source "plex-odbc" is odbc: every column must be typed in columns:`) {
			t.Errorf("untyped, dialect %q: %v", dialect, err)
		}
	}
	if got := typed.Request(source.Config{Driver: "odbc", DSN: "DSN=Plex"}.SQLDialect(), nil).SQL; got != "SELECT TOP 1 1 AS one" {
		t.Errorf("SQL for a default odbc source = %q, want the sqlserver entry", got)
	}
	// The same definition on a mysql source needs no columns: (its driver types decimals).
	if err := untyped.CheckSource(map[string]source.Config{"plex-odbc": {Driver: "mysql", DSN: "mysql://h/db"}}, "rpt.yaml"); err != nil {
		t.Errorf("untyped on mysql: %v", err)
	}
}

const liveShiftDef = `name: shift-live
source: plex
params:
  - {name: pcn, type: list<int>, default: [300758]}
  - {name: report_date, type: date, default: yesterday}
datasource:
  key: 9726
  name: Daily_Shift_Report_Get
  pcn: pcn
  inputs:
    "@PCNs": pcn
    "@Start_Date": {param: report_date, format: "01/02/2006"}
    "@End_Date": {param: report_date, format: "01/02/2006"}
  columns:
    - {Report_Date: date}
    - Workcenter_Code
    - {Parts_Produced: int}
    - {Earned_Hours: decimal}
  sql: |
    SELECT pcn, Workcenter_Code, SUM(Parts_Produced) AS parts, decimal_sum(Earned_Hours) AS hours
    FROM datasource WHERE Report_Date = :report_date GROUP BY pcn, Workcenter_Code
`

func TestParseDataSourceFull(t *testing.T) {
	t.Parallel()
	d := mustParse(t, liveShiftDef)
	want := &source.DataSource{Key: 9726, Name: "Daily_Shift_Report_Get",
		Inputs:  map[string]string{"@PCNs": "pcn", "@Start_Date": "report_date", "@End_Date": "report_date"},
		Formats: map[string]string{"@Start_Date": "01/02/2006", "@End_Date": "01/02/2006"},
		Columns: []string{"Report_Date", "Workcenter_Code", "Parts_Produced", "Earned_Hours"},
		Types:   []source.Type{source.TypeDate, source.TypeString, source.TypeInt, source.TypeDecimal},
		PCN:     "pcn",
		SQL:     "SELECT pcn, Workcenter_Code, SUM(Parts_Produced) AS parts, decimal_sum(Earned_Hours) AS hours\nFROM datasource WHERE Report_Date = :report_date GROUP BY pcn, Workcenter_Code\n",
	}
	if !reflect.DeepEqual(d.DataSource, want) {
		t.Errorf("datasource = %+v\nwant %+v", d.DataSource, want)
	}
	if err := d.CheckDriver("plexws"); err != nil {
		t.Errorf("CheckDriver(plexws): %v", err)
	}
}

func TestParseDataSourceBad(t *testing.T) {
	t.Parallel()
	sub := func(old, new string) string {
		if !strings.Contains(liveShiftDef, old) {
			t.Fatalf("%q not in the definition", old)
		}
		return strings.Replace(liveShiftDef, old, new, 1)
	}
	tests := []struct{ name, yaml, want string }{
		{"undeclared pcn", sub("  pcn: pcn\n", "  pcn: plant\n"), `x.yaml:9:8: datasource.pcn: "plant" is not a declared parameter`},
		{"pcn of a date", sub("  pcn: pcn\n", "  pcn: report_date\n"), `x.yaml:9:8: datasource.pcn: "report_date" is date; the PCN parameter is an int or list<int>`},
		{"periods not periods", sub("  pcn: pcn\n", "  pcn: pcn\n  periods: [report_date, report_date]\n"), `x.yaml:10:13: datasource.periods[0]: "report_date" is date, not a period`},
		{"one period", sub("  pcn: pcn\n", "  pcn: pcn\n  periods: [report_date]\n"), `x.yaml:10:12: datasource.periods: want [first_period, last_period]`},
		{"bad format", sub(`format: "01/02/2006"}`, `format: "MM/DD/YYYY"}`), `x.yaml:12:49: datasource.inputs.@Start_Date.format: bad date format "MM/DD/YYYY"`},
		{"input without param", sub(`{param: report_date, format: "01/02/2006"}`, `{format: "01/02/2006"}`), `x.yaml:12:20: datasource.inputs.@Start_Date.param: missing`},
		{"unknown column type", sub("{Parts_Produced: int}", "{Parts_Produced: integer}"), `x.yaml:17:24: datasource.columns[2].Parts_Produced: unknown type "integer"`},
		{"column twice", sub("    - Workcenter_Code\n", "    - Workcenter_Code\n    - workcenter_code\n"), `x.yaml:17:7: datasource.columns[2]: column "workcenter_code" twice`},
		{"sql undeclared param", sub("= :report_date", "= :day"), `x.yaml:21:41: datasource.sql: :day is not a declared parameter`},
		{"sql two statements", sub("GROUP BY pcn, Workcenter_Code\n", "GROUP BY pcn, Workcenter_Code; DELETE FROM datasource\n"), `datasource.sql: `},
		{"columns not a list", sub("  columns:\n", "  columns: Report_Date\n  cols:\n"), `datasource.columns: want a list`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := Parse("x.yaml", []byte(tt.yaml))
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v\nwant %q", err, tt.want)
			}
		})
	}
}

const lookupDef = liveShiftDef + `  lookups:
    workcenters:
      source: warehouse
      sql: SELECT workcenter_code, workcenter_name FROM part_v_workcenter_e WHERE pcn IN (:pcn)
      max_rows: 500
`

// A data source's shaping may read lookups: tables from another configured SQL source,
// each declared in full in the definition (its source, its SQL, its bound), checked
// like any report SQL, and refused at file:line when it is not sound.
func TestParseDataSourceLookups(t *testing.T) {
	t.Parallel()
	d := mustParse(t, lookupDef)
	want := []source.Lookup{{Name: "workcenters", Source: "warehouse", SQL: "SELECT workcenter_code, workcenter_name FROM part_v_workcenter_e WHERE pcn IN (:pcn)", MaxRows: 500}}
	if !reflect.DeepEqual(d.DataSource.Lookups, want) {
		t.Errorf("lookups = %+v, want %+v", d.DataSource.Lookups, want)
	}
	if got := d.Features(); !reflect.DeepEqual(got, []string{FeatureDataSource, FeatureLookups}) {
		t.Errorf("features %v: an agent that cannot read lookups must not claim the job", got)
	}
	plex := source.Config{Driver: "plexws", URL: "https://plex.example/ds"}
	wh := source.Config{Driver: "mysql", DSN: "mysql://h/wh"}
	if err := d.CheckSource(map[string]source.Config{"plex": plex, "warehouse": wh}, "rpt.yaml"); err != nil {
		t.Errorf("CheckSource: %v", err)
	}
	for name, tc := range map[string]struct {
		srcs map[string]source.Config
		want string
	}{
		"lookup source not configured": {map[string]source.Config{"plex": plex, "wh": wh}, `x.yaml:24:15: datasource.lookups.workcenters.source: "warehouse" is not configured in rpt.yaml (sources: plex, wh)`},
		"lookup source is Plex":        {map[string]source.Config{"plex": plex, "warehouse": plex}, `x.yaml:24:15: datasource.lookups.workcenters.source: source "warehouse" is plexws; a lookup reads a SQL source`},
	} {
		d, err := Parse("x.yaml", []byte(lookupDef))
		if err != nil {
			t.Fatal(err)
		}
		if err := d.CheckSource(tc.srcs, "rpt.yaml"); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v\nwant %q", name, err, tc.want)
		}
	}
	sub := func(old, new string) string {
		if !strings.Contains(lookupDef, old) {
			t.Fatalf("%q not in the definition", old)
		}
		return strings.Replace(lookupDef, old, new, 1)
	}
	for _, tt := range []struct{ name, yaml, want string }{
		{"undeclared param", sub("IN (:pcn)", "IN (:plant)"), `x.yaml:25:91: datasource.lookups.workcenters.sql: :plant is not a declared parameter`},
		{"two statements", sub("IN (:pcn)\n", "IN (:pcn); DELETE FROM part_v_workcenter_e\n"), `datasource.lookups.workcenters.sql: `},
		{"named datasource", sub("    workcenters:\n", "    datasource:\n"), `x.yaml:23:5: datasource.lookups.datasource: bad table name "datasource"`},
		{"bad name", sub("    workcenters:\n", "    Work-Centers:\n"), `datasource.lookups.Work-Centers: bad table name`},
		{"no source", sub("      source: warehouse\n", ""), `x.yaml:24:7: datasource.lookups.workcenters.source: missing`},
		{"no sql", sub("      sql: SELECT workcenter_code, workcenter_name FROM part_v_workcenter_e WHERE pcn IN (:pcn)\n", ""), `datasource.lookups.workcenters.sql: missing`},
		{"unbounded", sub("max_rows: 500", "max_rows: 5000000"), `x.yaml:26:17: datasource.lookups.workcenters.max_rows: must be 1 to 1000000, got 5000000`},
		{"unknown key", sub("max_rows: 500", "max_rows: 500\n      params: {pcn: 1}"), `datasource.lookups.workcenters.params`},
		{"without sql", sub("  sql: |\n    SELECT pcn, Workcenter_Code, SUM(Parts_Produced) AS parts, decimal_sum(Earned_Hours) AS hours\n    FROM datasource WHERE Report_Date = :report_date GROUP BY pcn, Workcenter_Code\n", ""),
			`datasource.lookups: datasource.sql reads the lookups, and there is none`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("x.yaml", []byte(tt.yaml))
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v\nwant %q", err, tt.want)
			}
		})
	}
}
