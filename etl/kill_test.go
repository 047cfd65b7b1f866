package etl_test

import (
	"bufio"
	"context"
	"database/sql"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"rpt/etl"
	"rpt/internal/source"
)

// killYAML is a full load of a large enough table that a kill lands mid-load.
const killYAML = `name: big
source: plex
extract: {table: big}
mode: full
target:
  table: big_wh
  create: CREATE TABLE big_wh (id INT PRIMARY KEY, v DECIMAL(19,2), s VARCHAR(40)) ENGINE=InnoDB
`

// TestHelperETLProcess is the process TestSIGKILLMidLoad kills: it runs killYAML
// against the databases named in its environment, printing a line per batch.
func TestHelperETLProcess(t *testing.T) {
	if os.Getenv("RPT_ETL_HELPER") != "1" {
		t.Skip("helper process")
	}
	ctx := context.Background()
	plex, err := source.Open(ctx, "plex", source.Config{Driver: "mysql", DSN: os.Getenv("RPT_ETL_PLEX")})
	if err != nil {
		t.Fatal(err)
	}
	wh, err := source.Open(ctx, "warehouse", source.Config{Driver: "mysql", DSN: os.Getenv("RPT_ETL_WH")})
	if err != nil {
		t.Fatal(err)
	}
	def := mustParse(t, killYAML)
	_, err = etl.Run(ctx, def, plex, wh.(interface{ DB() *sql.DB }).DB(), etl.Options{BatchRows: 2000, Force: true, Progress: func(read, written int64) {
		fmt.Printf("progress %d\n", written)
		time.Sleep(50 * time.Millisecond) // keep the load open long enough to be killed
	}})
	if err != nil {
		t.Fatal(err)
	}
	fmt.Println("done")
}

// TestSIGKILLMidLoad: a process SIGKILLed in the middle of a full load leaves the
// target and its state as they were (the server rolls the open transaction back when
// the connection drops), and the next run completes.
func TestSIGKILLMidLoad(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.plexExec(t, "CREATE TABLE big (id INT PRIMARY KEY, v DECIMAL(19,2), s VARCHAR(40))")
	e.plexExec(t, `INSERT INTO big WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < 199)
		SELECT a.i * 100 + b.i % 100 + 1, (a.i * 100 + b.i % 100 + 1) / 100, CONCAT('old ', a.i * 100 + b.i % 100 + 1)
		FROM n a JOIN n b ON b.i < 100`)
	def := mustParse(t, killYAML)
	first := e.run(t, def, etl.Options{})
	if first.Written != 20000 {
		t.Fatalf("first run %+v", first)
	}
	e.plexExec(t, "UPDATE big SET s = CONCAT('new ', id)")

	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperETLProcess$", "-test.v")
	cmd.Env = append(os.Environ(), "RPT_ETL_HELPER=1", "RPT_ETL_PLEX="+e.plexDSN, "RPT_ETL_WH="+e.whDSN)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(out)
	killed := false
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), "progress 4000") {
			if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			killed = true
			break
		}
		if sc.Text() == "done" {
			break
		}
	}
	_ = cmd.Wait()
	if !killed {
		t.Fatal("the helper finished before it could be killed")
	}
	// The server notices the dropped connection and rolls back; wait for its locks.
	deadline := time.Now().Add(20 * time.Second)
	for {
		got := e.whRows(t, "SELECT COUNT(*), SUM(s LIKE 'old %') FROM big_wh")
		if got[0] == "20000|20000" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the kill the target is %v, want the old 20000 rows", got)
		}
		time.Sleep(200 * time.Millisecond)
	}
	var runs int
	if err := e.whDB.QueryRow("SELECT runs FROM rpt_etl_state WHERE etl_name = 'big'").Scan(&runs); err != nil || runs != 1 {
		t.Errorf("state runs = %d (%v) after the kill, want 1", runs, err)
	}
	again := e.run(t, def, etl.Options{})
	if again.Written != 20000 {
		t.Fatalf("rerun %+v", again)
	}
	if got := e.whRows(t, "SELECT COUNT(*), SUM(s LIKE 'new %') FROM big_wh"); got[0] != "20000|20000" {
		t.Errorf("after the rerun %v, want 20000 new rows", got)
	}
}
