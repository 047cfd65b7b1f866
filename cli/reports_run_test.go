package cli_test

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/go-sql-driver/mysql"

	"rpt/internal/dsn"
	"rpt/internal/testenv"
)

// `rpt reports run` takes the agent's path (source.Run): a stored-procedure report on
// MariaDB is called with its parameters bound and its rows typed per columns:.
func TestReportsRunProcedureMariaDB(t *testing.T) {
	db := testenv.MariaDB(t)
	mc, err := dsn.MySQL(db)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := mysql.NewConnector(mc)
	if err != nil {
		t.Fatal(err)
	}
	pool := sql.OpenDB(conn)
	defer pool.Close()
	for _, s := range []string{
		"CREATE TABLE bal (account_no VARCHAR(20), pcn INT, amount DECIMAL(12,2))",
		"INSERT INTO bal VALUES ('100-00', 1, 12.50), ('200-00', 1, -3.00), ('300-00', 2, 7.00)",
		`CREATE PROCEDURE balances(IN p_pcn INT, IN p_label VARCHAR(40))
		BEGIN
			SELECT account_no, amount, p_label AS label FROM bal WHERE pcn = p_pcn ORDER BY account_no;
		END`,
	} {
		if _, err := pool.Exec(s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
	work := t.TempDir()
	isolateEnv(t, work)
	writeFile(t, filepath.Join(work, "rpt.yaml"), []byte(fmt.Sprintf("reports: [defs]\nsources:\n  erp: {driver: mysql, dsn: %q}\n", db)))
	writeFile(t, filepath.Join(work, "defs", "balances.yaml"), []byte(`name: balances
source: erp
params:
  - {name: pcn, type: int}
  - {name: label, type: string, default: "it's"}
procedure: {name: balances, args: [pcn, label]}
columns: {amount: float}
`))
	code, stdout, stderr := runCLI(t, context.Background(), []string{"--config", filepath.Join(work, "rpt.yaml"), "reports", "run", "balances", "-p", "pcn=1", "-o", "json"})
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	// amount is a float by the override (a DECIMAL would print as exact text "12.50").
	want := `{"account_no":"100-00","amount":12.5,"label":"it's"},` + "\n" + `{"account_no":"200-00","amount":-3,"label":"it's"}`
	if !strings.Contains(stdout, want) {
		t.Errorf("output:\n%s\nwant rows:\n%s", stdout, want)
	}
	if strings.Contains(stdout, "300-00") {
		t.Errorf("pcn was not bound: %s", stdout)
	}
}
