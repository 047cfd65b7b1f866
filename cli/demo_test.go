package cli_test

import (
	"context"
	"database/sql"
	"path/filepath"
	"strings"
	"testing"

	"rpt/cli"
	"rpt/internal/demo"
)

// TestDemoLoadIntoForeignDatabase: `rpt demo load --into` a database that has the demo's
// tables but was not made by a demo load exits 2 naming --force and leaves it alone;
// with --force it loads.
func TestDemoLoadIntoForeignDatabase(t *testing.T) {
	work := t.TempDir()
	isolateEnv(t, work)
	path := filepath.Join(work, "plex.db")
	into := "sqlite:" + path
	load := []string{"demo", "load", "--into", into, "--periods", "2", "--log-days", "0"}
	if code, _, stderr := runCLI(t, context.Background(), load); code != 0 {
		t.Fatalf("first load: exit %d: %s", code, stderr)
	}
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec("DROP TABLE " + demo.MarkerTable); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec("DELETE FROM " + demo.TableBalance.Name); err != nil {
		t.Fatal(err)
	}
	code, _, stderr := runCLI(t, context.Background(), load)
	if code != cli.ExitUsage || !strings.Contains(stderr, "not a demo database") || !strings.Contains(stderr, "--force") {
		t.Fatalf("load into a foreign database: exit %d, want 2 naming --force: %s", code, stderr)
	}
	var n int
	if err := db.QueryRow("SELECT COUNT(*) FROM " + demo.TableBalance.Name).Scan(&n); err != nil || n != 0 {
		t.Fatalf("the refused load wrote %d balances (%v)", n, err)
	}
	if code, _, stderr := runCLI(t, context.Background(), append(load, "--force")); code != 0 {
		t.Fatalf("--force: exit %d: %s", code, stderr)
	}
	if err := db.QueryRow("SELECT COUNT(*) FROM " + demo.TableBalance.Name).Scan(&n); err != nil || n == 0 {
		t.Fatalf("--force loaded %d balances (%v)", n, err)
	}
}
