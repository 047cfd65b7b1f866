package cli_test

import (
	"context"
	"database/sql"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"rpt/internal/source/plexws/plexwstest"
)

const wsCategoriesDef = `name: ws-categories
source: plex
params:
  - {name: pcn, type: int, default: 123681}
datasource:
  key: 4814
  name: Account_Activity_Summary_xPCN_Get
  pcn: pcn
  inputs: {"@PCNs": pcn}
  columns: [Account_No, {Debit: decimal}]
  lookups:
    cats:
      source: LOOKUP
      sql: SELECT account_no, category_name FROM accounting_account WHERE pcn = :pcn
      max_rows: 10
  sql: |
    SELECT d.Account_No AS account_no, c.category_name, d.Debit AS debit
    FROM datasource d LEFT JOIN cats c ON c.account_no = d.Account_No
    ORDER BY d.Account_No
`

// `rpt reports run` of a data source with a lookup opens the lookup's source by its
// name in rpt.yaml, as the agent does: Plex's rows come out with the warehouse's
// categories. A lookup naming a source rpt.yaml lacks is refused before anything
// connects, at its file:line (exit 2).
func TestReportsRunLookup(t *testing.T) {
	work := t.TempDir()
	isolateEnv(t, work)
	t.Setenv("RPT_TEST_PLEX_HQ", wsPassHQ)
	t.Setenv("RPT_TEST_PLEX_ALBION", wsPassAlbion)
	s := plexwstest.New(t, func(w http.ResponseWriter, r *http.Request, c plexwstest.Call) {
		a := plexwstest.Begin(w, c, plexwstest.Status{})
		defer a.End()
		_ = a.Strings([]string{"Account_No", "Debit"}, "10000", "12.50000")
		_ = a.Strings([]string{"Account_No", "Debit"}, "20000", "0.00000")
	}, plexwstest.Account{User: "SouthfieldWs@plex.com", Password: wsPassHQ, PCN: 123681})
	cfg := plexConfig(t, work, s, s.URL)
	whPath := filepath.Join(work, "none.db") // the config's demo source: the warehouse here
	db, err := sql.Open("sqlite", "file:"+whPath)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{"CREATE TABLE accounting_account (pcn INTEGER, account_no TEXT, category_name TEXT)",
		"INSERT INTO accounting_account VALUES (123681, '10000', 'Current Assets'), (300758, '20000', 'Another plant')"} {
		if _, err := db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()
	reports := filepath.Join(work, "reports")
	writeFile(t, filepath.Join(reports, "ws-categories.yaml"), []byte(strings.Replace(wsCategoriesDef, "LOOKUP", "demo", 1)))
	code, stdout, stderr := runCLI(t, context.Background(), []string{"--config", cfg, "--reports", reports, "reports", "run", "ws-categories", "-o", "csv"})
	want := "account_no,category_name,debit\n10000,Current Assets,12.50000\n20000,,0.00000\n"
	if code != 0 || stdout != want {
		t.Errorf("exit %d\n%s%s\nwant\n%s", code, stdout, stderr, want)
	}

	// reports show -o json says what the lookup reads, for a script or a reviewer.
	code, stdout, stderr = runCLI(t, context.Background(), []string{"--config", cfg, "--reports", reports, "reports", "show", "ws-categories", "-o", "json"})
	wantLookup := `"lookups": [
    {
      "name": "cats",
      "source": "demo",
      "sql": "SELECT account_no, category_name FROM accounting_account WHERE pcn = :pcn",
      "max_rows": 10
    }
  ]`
	if code != 0 || !strings.Contains(stdout, wantLookup) {
		t.Errorf("reports show -o json: exit %d\n%s%s\nwant %s", code, stdout, stderr, wantLookup)
	}

	writeFile(t, filepath.Join(reports, "ws-categories.yaml"), []byte(strings.Replace(wsCategoriesDef, "LOOKUP", "warehouse", 1)))
	calls := len(s.Calls())
	code, stdout, stderr = runCLI(t, context.Background(), []string{"--config", cfg, "--reports", reports, "reports", "run", "ws-categories", "-o", "csv"})
	if wantErr := fmt.Sprintf(`ws-categories.yaml:13:15: datasource.lookups.cats.source: "warehouse" is not configured in %s (sources: demo, plex)`, cfg); code != 2 || !strings.Contains(stderr, wantErr) || stdout != "" {
		t.Errorf("unconfigured lookup source: exit %d\n%s%s\nwant exit 2 and %q", code, stdout, stderr, wantErr)
	}
	if len(s.Calls()) != calls {
		t.Errorf("Plex was called for a definition refused before running")
	}
}
