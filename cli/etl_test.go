package cli_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/go-sql-driver/mysql"

	"rpt/internal/dsn"
	"rpt/internal/testenv"
)

// The etl commands end to end against MariaDB: list and show the shipped ETLs, run
// one from a folder in process (exit 0, a summary line), status from the warehouse,
// verify (0 while equal, 1 after the target is changed), and the exit codes of bad
// input (2) and a refused guard (2, nothing written).
func TestETLCommandsMariaDB(t *testing.T) {
	plexDSN, whDSN := testenv.MariaDB(t), testenv.MariaDB(t)
	open := func(d string) *sql.DB {
		mc, err := dsn.MySQL(d)
		if err != nil {
			t.Fatal(err)
		}
		conn, err := mysql.NewConnector(mc)
		if err != nil {
			t.Fatal(err)
		}
		db := sql.OpenDB(conn)
		t.Cleanup(func() { db.Close() })
		return db
	}
	plex, wh := open(plexDSN), open(whDSN)
	for _, s := range []string{"CREATE TABLE src (id INT PRIMARY KEY, amount DECIMAL(19,2))", "INSERT INTO src VALUES (1, 1.10), (2, 2.20), (3, 3.30)"} {
		if _, err := plex.Exec(s); err != nil {
			t.Fatal(err)
		}
	}
	work := t.TempDir()
	isolateEnv(t, work)
	cfg := filepath.Join(work, "rpt.yaml")
	writeFile(t, cfg, []byte(fmt.Sprintf("sources:\n  erp: {driver: mysql, dsn: %q}\n  warehouse: {driver: mysql, dsn: %q}\n", plexDSN, whDSN)))
	writeFile(t, filepath.Join(work, "etl", "copy.yaml"), []byte(`name: copy
source: erp
extract: {table: src}
mode: full
target:
  table: copied
  key: [id]
  create: CREATE TABLE copied (id INT PRIMARY KEY, amount DECIMAL(19,2))
`))
	writeFile(t, filepath.Join(work, "bad", "bad.yaml"), []byte("name: bad\nsource: erp\nextract: {table: src}\nmode: fulll\ntarget: {table: x}\n"))
	run := func(args ...string) (int, string, string) {
		return runCLI(t, context.Background(), append([]string{"--config", cfg}, args...))
	}
	etlDir := filepath.Join(work, "etl")

	if code, out, errs := run("etl", "list", "-o", "json"); code != 0 || !strings.Contains(out, `"name": "plex-balances"`) || !strings.Contains(out, `"mode": "period-range"`) {
		t.Errorf("etl list: exit %d\n%s\n%s", code, out, errs)
	}
	if code, out, _ := run("etl", "show", "accounting-ytd"); code != 0 || !strings.Contains(out, "# shipped:accounting-ytd.yaml") || !strings.Contains(out, "PARTITION BY") {
		t.Errorf("etl show: exit %d\n%s", code, out)
	}
	if code, out, errs := run("etl", "run", "copy", "--etl", etlDir); code != 0 || !strings.Contains(out, "copy: full -> copied: read 3, wrote 3 (infile") {
		t.Fatalf("etl run: exit %d\n%s\n%s", code, out, errs)
	}
	code, out, errs := run("etl", "status", "--etl", etlDir, "-o", "json")
	var states []map[string]any
	if code != 0 || json.Unmarshal([]byte(out), &states) != nil {
		t.Fatalf("etl status: exit %d\n%s\n%s", code, out, errs)
	}
	found := false
	for _, s := range states {
		if s["name"] == "copy" {
			found = s["rows_written"] == float64(3) && s["runs"] == float64(1) && s["last_success"] != nil && s["rows_per_second"] != nil
		}
	}
	if !found {
		t.Errorf("etl status has no successful run of copy with 3 rows: %s", out)
	}
	if code, out, errs := run("etl", "verify", "copy", "--etl", etlDir); code != 0 {
		t.Errorf("etl verify of an equal copy: exit %d\n%s\n%s", code, out, errs)
	}
	if _, err := wh.Exec("UPDATE copied SET amount = 9.99 WHERE id = 2"); err != nil {
		t.Fatal(err)
	}
	if code, out, _ := run("etl", "verify", "copy", "--etl", etlDir); code != 1 || !strings.Contains(out, "amount") {
		t.Errorf("etl verify of a changed copy: exit %d, want 1 naming amount\n%s", code, out)
	}

	// Bad input: exit 2 with file:line, nothing run.
	if code, _, errs := run("etl", "list", "--etl", filepath.Join(work, "bad")); code != 2 || !strings.Contains(errs, "bad.yaml:4:7: mode: unknown mode") {
		t.Errorf("a bad definition: exit %d, %s", code, errs)
	}
	if code, _, errs := run("etl", "run", "copy", "--etl", etlDir, "--from", "202601"); code != 2 || !strings.Contains(errs, "--from and --to go together") {
		t.Errorf("--from alone: exit %d, %s", code, errs)
	}
	if code, _, errs := run("etl", "run", "no-such-etl"); code != 2 || !strings.Contains(errs, "unknown etl") {
		t.Errorf("unknown etl: exit %d, %s", code, errs)
	}
	// The shrink guard: the source lost two of three rows; refused (exit 2), target kept.
	if _, err := plex.Exec("DELETE FROM src WHERE id > 1"); err != nil {
		t.Fatal(err)
	}
	if code, _, errs := run("etl", "run", "copy", "--etl", etlDir); code != 2 || !strings.Contains(errs, "max_shrink") {
		t.Errorf("shrunken load: exit %d, %s", code, errs)
	}
	var n int
	if err := wh.QueryRow("SELECT COUNT(*) FROM copied").Scan(&n); err != nil || n != 3 {
		t.Errorf("after the refused load the target has %d rows (%v), want 3", n, err)
	}
}

// A per_pcn ETL end to end: `etl run` prints a line per PCN, `etl status` a line for
// the ETL and one per PCN; `--reconcile` deletes the rows the source no longer has,
// per PCN; a PCN its guard refuses fails the run (exit 2) while the other PCN's load
// stays committed, and its status line carries the error.
func TestETLPerPCNCommandsMariaDB(t *testing.T) {
	plexDSN, whDSN := testenv.MariaDB(t), testenv.MariaDB(t)
	mc, err := dsn.MySQL(plexDSN)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := mysql.NewConnector(mc)
	if err != nil {
		t.Fatal(err)
	}
	plex := sql.OpenDB(conn)
	t.Cleanup(func() { plex.Close() })
	exec := func(q string) {
		t.Helper()
		if _, err := plex.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	exec("CREATE TABLE ord (pcn INT, id INT, amount DECIMAL(19,2), updated DATETIME, PRIMARY KEY (pcn, id))")
	exec("INSERT INTO ord VALUES (1, 1, 1.10, '2026-01-01'), (1, 2, 2.20, '2026-01-01'), (1, 3, 3.30, '2026-01-01'), (1, 4, 4.40, '2026-01-01'), (2, 1, 5.50, '2026-01-01'), (2, 2, 6.60, '2026-01-01')")
	work := t.TempDir()
	isolateEnv(t, work)
	cfg := filepath.Join(work, "rpt.yaml")
	writeFile(t, cfg, []byte(fmt.Sprintf("sources:\n  erp: {driver: mysql, dsn: %q}\n  warehouse: {driver: mysql, dsn: %q}\n", plexDSN, whDSN)))
	writeFile(t, filepath.Join(work, "etl", "ord.yaml"), []byte(`name: ord
source: erp
extract: {table: ord}
mode: incremental
incremental: {column: updated}
per_pcn: {pcns: [1, 2]}
reconcile: {within: lookback, max_delete: 0.3}
target:
  table: ord_wh
  key: [pcn, id]
  create: CREATE TABLE ord_wh (pcn INT, id INT, amount DECIMAL(19,2), updated DATETIME, PRIMARY KEY (pcn, id))
`))
	etlDir := filepath.Join(work, "etl")
	run := func(args ...string) (int, string, string) {
		return runCLI(t, context.Background(), append([]string{"--config", cfg}, append(args, "--etl", etlDir)...))
	}
	if code, out, errs := run("etl", "run", "ord"); code != 0 || !strings.Contains(out, "ord pcn 1: incremental -> ord_wh: read 4, wrote 4") || !strings.Contains(out, "ord pcn 2: incremental -> ord_wh: read 2, wrote 2") {
		t.Fatalf("etl run: exit %d\n%s\n%s", code, out, errs)
	}
	exec("DELETE FROM ord WHERE pcn = 1 AND id = 1")
	if code, out, errs := run("etl", "run", "ord", "--reconcile"); code != 0 || !strings.Contains(out, "ord pcn 1: incremental -> ord_wh: read 3, wrote 3, reconcile deleted 1 of 4") {
		t.Fatalf("etl run --reconcile: exit %d\n%s\n%s", code, out, errs)
	}
	// PCN 2 loses both its rows: more than max_delete; PCN 1 gains one.
	exec("DELETE FROM ord WHERE pcn = 2")
	exec("INSERT INTO ord VALUES (1, 9, 9.90, '2026-01-02')")
	code, out, errs := run("etl", "run", "ord", "--reconcile")
	if code != 2 || !strings.Contains(errs, "pcn 2") || !strings.Contains(errs, "max_delete") || !strings.Contains(out, "ord pcn 1: incremental") || !strings.Contains(out, "ord pcn 2: failed") {
		t.Fatalf("a refused PCN: exit %d\n%s\n%s", code, out, errs)
	}
	code, out, errs = run("etl", "status", "-o", "json")
	var states []map[string]any
	if code != 0 || json.Unmarshal([]byte(out), &states) != nil {
		t.Fatalf("etl status: exit %d\n%s\n%s", code, out, errs)
	}
	lines := map[float64]map[string]any{}
	for _, s := range states {
		if s["name"] == "ord" {
			pcn, _ := s["pcn"].(float64)
			lines[pcn] = s
		}
	}
	if len(lines) != 3 || lines[1]["rows_written"] != float64(4) || lines[1]["runs"] != float64(3) || lines[2]["runs"] != float64(2) ||
		!strings.Contains(fmt.Sprint(lines[2]["last_error"]), "max_delete") || lines[1]["last_error"] != nil {
		t.Errorf("etl status: want the ETL's line and one per PCN, PCN 1 loaded three times, PCN 2 twice with its error:\n%s", out)
	}
	if code, out, _ := run("etl", "status"); code != 0 || !strings.Contains(out, "pcn 2") || !strings.Contains(out, "failed") {
		t.Errorf("etl status table: exit %d\n%s", code, out)
	}
}
