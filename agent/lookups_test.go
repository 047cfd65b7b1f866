package agent

import (
	"context"
	"database/sql"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"rpt/internal/queue"
	"rpt/internal/queue/sqlite"
	"rpt/internal/source"
	"rpt/internal/source/plexws/plexwstest"
	"rpt/reportdefs"

	_ "rpt/internal/source/plexws" // the plexws driver
)

// lookupReport shapes a Plex data source with a dimension table read from the
// warehouse: the lookup's source and SQL are the definition's; the job's parameters
// (pcn, prefix) only fill its placeholders.
const lookupReport = `name: ws-categories
source: plex
max_attempts: 1
params:
  - {name: pcn, type: int, default: 123681}
  - {name: prefix, type: string, default: "%"}
datasource:
  key: 4814
  name: Account_Activity_Summary_xPCN_Get
  pcn: pcn
  inputs: {"@PCNs": pcn}
  columns: [Account_No, {Debit: decimal}]
  lookups:
    cats:
      source: warehouse
      sql: SELECT account_no, category_name FROM accounting_account WHERE pcn = :pcn AND account_no LIKE :prefix
      max_rows: MAXROWS
  sql: |
    SELECT d.Account_No AS account_no, c.category_name, d.Debit AS debit
    FROM datasource d LEFT JOIN cats c ON c.account_no = d.Account_No
    ORDER BY d.Account_No
`

// recordingSource records every query a source is asked to run, as it receives it.
type recordingSource struct {
	source.Source
	mu      sync.Mutex
	queries []string
	params  []map[string]any
}

func (r *recordingSource) Query(ctx context.Context, q string, params map[string]any) (source.Rows, error) {
	r.mu.Lock()
	r.queries = append(r.queries, q)
	r.params = append(r.params, params)
	r.mu.Unlock()
	return r.Source.Query(ctx, q, params)
}

func (r *recordingSource) Close() error { return nil } // the test closes the real one

func (r *recordingSource) seen() ([]string, []map[string]any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.queries...), append([]map[string]any(nil), r.params...)
}

// TestLookupTrustBoundary: a report shapes Plex's rows with a warehouse dimension its
// trusted definition declares, and whoever reaches the queue cannot change which
// source that lookup reads or what SQL it runs: a definition with another lookup is
// not trusted and reads nothing, a job row naming another source than its definition
// is refused, a parameter value is bound (the SQL the warehouse receives is the
// definition's, byte for byte), and a lookup larger than its max_rows fails the run
// rather than shape over a cut table.
func TestLookupTrustBoundary(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	store, err := sqlite.Open(ctx, filepath.Join(dir, "queue.db"), queue.Options{RetryBase: time.Hour, RetryMax: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	if err := store.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	whPath := filepath.Join(dir, "warehouse.db")
	whDB, err := sql.Open("sqlite", "file:"+whPath)
	if err != nil {
		t.Fatal(err)
	}
	defer whDB.Close()
	for _, q := range []string{
		"CREATE TABLE accounting_account (pcn INTEGER, account_no TEXT, category_name TEXT)",
		"INSERT INTO accounting_account VALUES (123681, '10000', 'Current Assets'), (123681, '20000', 'Current Liabilities'), (300758, '10000', 'Other plant')",
		"CREATE TABLE victims (id INTEGER PRIMARY KEY)", "INSERT INTO victims VALUES (1), (2), (3)",
	} {
		if _, err := whDB.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	whSrc, err := source.Open(ctx, "warehouse", source.Config{Driver: "sqlite", DSN: "sqlite:" + whPath})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { whSrc.Close() })
	wh := &recordingSource{Source: whSrc}

	srv := plexwstest.New(t, func(w http.ResponseWriter, r *http.Request, c plexwstest.Call) {
		a := plexwstest.Begin(w, c, plexwstest.Status{})
		defer a.End()
		_ = a.Strings([]string{"Account_No", "Debit"}, "10000", "12.50000")
		_ = a.Strings([]string{"Account_No", "Debit"}, "20000", "0.00000")
	}, plexwstest.Account{User: "SouthfieldWs@plex.com", Password: "pw", PCN: 123681})
	plexCfg := source.Config{Driver: source.DriverPlexWS, URL: srv.URL, CAFile: srv.CAFile, Timeout: time.Minute,
		Accounts: map[int]source.Account{123681: {User: "SouthfieldWs@plex.com", Password: "pw"}}}
	var (
		mu     sync.Mutex
		opened []string
	)
	open := func(ctx context.Context, name string) (source.Source, error) {
		mu.Lock()
		opened = append(opened, name)
		mu.Unlock()
		switch name {
		case "plex":
			return source.Open(ctx, name, plexCfg)
		case "warehouse":
			return wh, nil
		}
		return nil, fmt.Errorf("source %q is not configured", name)
	}

	trusted := strings.Replace(lookupReport, "MAXROWS", "10", 1)
	small := strings.Replace(strings.Replace(lookupReport, "MAXROWS", "1", 1), "name: ws-categories", "name: ws-categories-small", 1)
	reports := t.TempDir()
	for name, def := range map[string]string{"ws-categories.yaml": trusted, "ws-categories-small.yaml": small} {
		if err := os.WriteFile(filepath.Join(reports, name), []byte(def), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cfg := testConfig()
	cfg.ReportDirs = []string{reports}
	startAgent(t, store, open, cfg)

	enqueue := func(def string, params map[string]string, edit func(*queue.JobEnqueueParams)) *queue.Job {
		t.Helper()
		d, err := reportdefs.Parse("submitted.yaml", []byte(def))
		if err != nil {
			t.Fatal(err)
		}
		resolved, err := d.Resolve(params, time.Now(), time.UTC)
		if err != nil {
			t.Fatal(err)
		}
		p := d.JobParams(resolved, nil)
		if edit != nil {
			edit(&p)
		}
		res, err := store.JobEnqueue(ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		var j *queue.Job
		waitFor(t, "job to end", func() bool {
			j, err = store.JobGet(ctx, res.Job.ID)
			return err == nil && j.Status.Terminal()
		})
		return j
	}
	lookupSQL := "SELECT account_no, category_name FROM accounting_account WHERE pcn = :pcn AND account_no LIKE :prefix"

	// The trusted definition: Plex's rows with the warehouse's categories.
	j := enqueue(trusted, nil, nil)
	if j.Status != queue.StatusSucceeded {
		t.Fatalf("trusted lookup report: %s %q", j.Status, j.Error)
	}
	if got := fmt.Sprint(readResult(t, store, j.ID, j.ResultAttempt)); got != "[[10000 Current Assets 12.50000] [20000 Current Liabilities 0.00000]]" {
		t.Errorf("trusted lookup report's rows %s", got)
	}

	// A value that would widen the lookup if it were pasted into the SQL is bound: the
	// warehouse receives the definition's SQL unchanged and finds no account named so.
	inject := "%' OR '1'='1"
	j = enqueue(trusted, map[string]string{"prefix": inject}, nil)
	if j.Status != queue.StatusSucceeded {
		t.Fatalf("lookup report with a quoting value: %s %q", j.Status, j.Error)
	}
	if got := fmt.Sprint(readResult(t, store, j.ID, j.ResultAttempt)); got != "[[10000 <nil> 12.50000] [20000 <nil> 0.00000]]" {
		t.Errorf("rows with prefix %q: %s; want no category found (the value is a value, not SQL)", inject, got)
	}
	queries, params := wh.seen()
	if len(queries) != 2 || queries[0] != lookupSQL || queries[1] != lookupSQL || params[1]["prefix"] != inject {
		t.Fatalf("the warehouse ran %q with %v; want the definition's lookup twice, the value bound", queries, params)
	}

	// The same report with the lookup pointed elsewhere (another table, another
	// source): not trusted, so it fails before anything is opened or read.
	mu.Lock()
	opened = nil
	mu.Unlock()
	for _, forged := range []string{
		strings.Replace(trusted, "FROM accounting_account WHERE pcn = :pcn AND account_no LIKE :prefix", "FROM victims, accounting_account WHERE pcn = :pcn AND account_no LIKE :prefix", 1),
		strings.Replace(trusted, "      source: warehouse\n", "      source: queue\n", 1),
	} {
		j = enqueue(forged, nil, nil)
		if j.Status != queue.StatusFailed || !strings.Contains(j.Error, "is neither published nor in this agent's catalogue") {
			t.Errorf("forged lookup: %s %q; want refused as not trusted", j.Status, j.Error)
		}
	}
	mu.Lock()
	if len(opened) != 0 {
		t.Errorf("forged lookups opened %v; want nothing", opened)
	}
	mu.Unlock()
	if q, _ := wh.seen(); len(q) != 2 {
		t.Errorf("forged lookups reached the warehouse: %q", q[2:])
	}

	// The trusted definition on a job row naming another source: refused, not run there.
	j = enqueue(trusted, nil, func(p *queue.JobEnqueueParams) { p.Source = "warehouse" })
	if j.Status != queue.StatusFailed || !strings.Contains(j.Error, `job source "warehouse" is not its definition's source "plex"`) {
		t.Errorf("job row naming another source: %s %q; want refused", j.Status, j.Error)
	}

	// max_rows 1 and two accounts: the run fails rather than shape over a cut table.
	j = enqueue(small, nil, nil)
	if j.Status != queue.StatusFailed || !strings.Contains(j.Error, "lookup cats: ") || !strings.Contains(j.Error, "more than max_rows 1 rows") {
		t.Errorf("lookup over max_rows: %s %q; want failed naming the lookup and its bound", j.Status, j.Error)
	}
}
