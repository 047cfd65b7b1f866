package agent

import (
	"context"
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"rpt/internal/queue"
	"rpt/internal/queue/mysql"
	"rpt/internal/queue/sqlite"
	"rpt/internal/results"
	"rpt/internal/source"
	"rpt/internal/testenv"
	"rpt/reportdefs"
)

// trustRig is a real queue and a real source database holding a table a forged
// definition would like to drop.
type trustRig struct {
	store  queue.Store
	srcCfg source.Config
	db     *sql.DB // the source database, to count the victim's rows
}

func newTrustRig(t *testing.T, backend string) *trustRig {
	t.Helper()
	ctx := context.Background()
	rig := &trustRig{}
	switch backend {
	case "sqlite":
		dir := t.TempDir()
		st, err := sqlite.Open(ctx, filepath.Join(dir, "queue.db"), queue.Options{RetryBase: time.Hour, RetryMax: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		rig.store = st
		path := filepath.Join(dir, "warehouse.db")
		rig.srcCfg = source.Config{Driver: "sqlite", DSN: "sqlite:" + path}
		rig.db, err = sql.Open("sqlite", "file:"+path)
		if err != nil {
			t.Fatal(err)
		}
	case "mariadb":
		dsn := testenv.MariaDB(t)
		st, err := mysql.Open(ctx, dsn, queue.Options{RetryBase: time.Hour, RetryMax: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		rig.store = st
		rig.srcCfg = source.Config{Driver: "mysql", DSN: dsn}
		rig.db = st.DB()
	}
	t.Cleanup(func() { rig.store.Close() })
	if err := rig.store.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	for _, stmt := range []string{"CREATE TABLE victims (id INTEGER PRIMARY KEY)", "INSERT INTO victims (id) VALUES (1), (2), (3)"} {
		if _, err := rig.db.ExecContext(ctx, stmt); err != nil {
			t.Fatal(err)
		}
	}
	return rig
}

func (rig *trustRig) open(ctx context.Context, name string) (source.Source, error) {
	return source.Open(ctx, name, rig.srcCfg)
}

// submit enqueues def as rpt submit does: anyone who reaches the queue can.
func (rig *trustRig) submit(t *testing.T, def string) int64 {
	t.Helper()
	d, err := reportdefs.Parse("submitted.yaml", []byte(def))
	if err != nil {
		t.Fatal(err)
	}
	resolved, err := d.Resolve(nil, time.Now(), time.UTC)
	if err != nil {
		t.Fatal(err)
	}
	p := d.JobParams(resolved, nil)
	p.MaxAttempts = 3
	res, err := rig.store.JobEnqueue(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	return res.Job.ID
}

func (rig *trustRig) wait(t *testing.T, id int64) *queue.Job {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		j, err := rig.store.JobGet(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		if j.Status.Terminal() {
			return j
		}
		if time.Now().After(deadline) {
			t.Fatalf("job %d still %s after 30s", id, j.Status)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (rig *trustRig) victims(t *testing.T) int {
	t.Helper()
	var n int
	if err := rig.db.QueryRow("SELECT COUNT(*) FROM victims").Scan(&n); err != nil {
		t.Fatalf("count victims (the table must survive): %v", err)
	}
	return n
}

const (
	forgedDef    = "name: forged\nsource: db\nsql: DROP TABLE victims\n"
	publishedDef = "name: counted\nsource: db\nsql: SELECT COUNT(*) AS n FROM victims\n"
	catalogueDef = "name: listed\nsource: db\nsql: SELECT id FROM victims ORDER BY id\n"
	addedLater   = "name: later\nsource: db\nsql: SELECT MAX(id) AS top FROM victims\n"
)

func TestTrustedDefinitionsOnly(t *testing.T) {
	for _, backend := range []string{"sqlite", "mariadb"} {
		t.Run(backend, func(t *testing.T) {
			rig := newTrustRig(t, backend)
			ctx := context.Background()
			reports := t.TempDir()
			if err := os.WriteFile(filepath.Join(reports, "listed.yaml"), []byte(catalogueDef), 0o644); err != nil {
				t.Fatal(err)
			}
			if _, _, err := rig.store.DefinitionPublish(ctx, queue.DefinitionPublishParams{Report: "counted", Definition: []byte(publishedDef), PublishedBy: "admin"}); err != nil {
				t.Fatal(err)
			}
			cfg := testConfig()
			cfg.ReportDirs = []string{reports}
			startAgent(t, rig.store, rig.open, cfg)

			// A definition from the submitter's own folder: refused, not retried, and the
			// table is still there.
			forged := rig.wait(t, rig.submit(t, forgedDef))
			want := "definition of report forged (sha256 " + queue.DefinitionSHA256([]byte(forgedDef))[:12] + "…) is neither published nor in this agent's catalogue: publish it with rpt reports publish"
			if forged.Status != queue.StatusFailed || forged.Error != want || forged.Attempt != 1 {
				t.Errorf("forged job: status %s attempt %d error %q; want failed at attempt 1 with %q", forged.Status, forged.Attempt, forged.Error, want)
			}
			if n := rig.victims(t); n != 3 {
				t.Errorf("victims has %d rows after the forged job, want 3", n)
			}

			// The sha256 column is the submitter's word: naming a published hash for other
			// bytes is refused too.
			d, err := reportdefs.Parse("forged.yaml", []byte(forgedDef))
			if err != nil {
				t.Fatal(err)
			}
			resolved, _ := d.Resolve(nil, time.Now(), time.UTC)
			p := d.JobParams(resolved, nil)
			p.DefinitionSHA256 = queue.DefinitionSHA256([]byte(publishedDef))
			res, err := rig.store.JobEnqueue(ctx, p)
			if err != nil {
				t.Fatal(err)
			}
			if j := rig.wait(t, res.Job.ID); j.Status != queue.StatusFailed || !strings.Contains(j.Error, "neither published") {
				t.Errorf("forged job naming a published hash: status %s error %q; want refused", j.Status, j.Error)
			}

			for _, tc := range []struct{ name, def string }{
				{"published", publishedDef},
				{"catalogue", catalogueDef},
			} {
				j := rig.wait(t, rig.submit(t, tc.def))
				if j.Status != queue.StatusSucceeded {
					t.Errorf("%s definition: status %s error %q, want succeeded", tc.name, j.Status, j.Error)
				}
			}

			// A file put into the agent's reports folder while it runs is its catalogue too.
			if err := os.WriteFile(filepath.Join(reports, "later.yaml"), []byte(addedLater), 0o644); err != nil {
				t.Fatal(err)
			}
			if j := rig.wait(t, rig.submit(t, addedLater)); j.Status != queue.StatusSucceeded {
				t.Errorf("definition added to the reports folder: status %s error %q, want succeeded", j.Status, j.Error)
			}
			if n := rig.victims(t); n != 3 {
				t.Errorf("victims has %d rows at the end, want 3", n)
			}
		})
	}
}

// A queue that does not answer the trust lookup gives the job back instead of failing it.
func TestTrustLookupUnavailableReleases(t *testing.T) {
	store := newMemStore()
	id := store.enqueueUnpublished("numbers", numbersDef, `{"count": 1}`)
	a := New(store, results.InQueue(store), (&fakeSource{rows: countRows}).opener(), testConfig(), nil)
	store.down.Store(true)
	r := &run{job: &queue.Job{ID: id, Report: "numbers", Definition: []byte(numbersDef)}, log: a.log}
	err := a.checkTrusted(context.Background(), r)
	if !errors.Is(err, queue.ErrUnavailable) || errors.Is(err, ErrUntrusted) {
		t.Fatalf("check with the queue down: err = %v, want ErrUnavailable (not untrusted)", err)
	}
	store.down.Store(false)
	if err := a.checkTrusted(context.Background(), r); !errors.Is(err, ErrUntrusted) || !errors.Is(err, reportdefs.ErrInvalid) {
		t.Fatalf("check of an unpublished definition: err = %v, want ErrUntrusted and reportdefs.ErrInvalid", err)
	}
	store.publish(numbersDef)
	if err := a.checkTrusted(context.Background(), r); err != nil {
		t.Fatalf("check after publishing: %v", err)
	}
}

// A trusted definition whose store: names a table rpt did not create (here the source's
// own table) fails without a retry, and the table gains no column and loses no row.
func TestHistoryIntoForeignTableRefused(t *testing.T) {
	const def = "name: hist\nsource: db\nsql: SELECT id + 10 AS id FROM victims\nstore:\n  table: victims\n"
	for _, backend := range []string{"sqlite", "mariadb"} {
		t.Run(backend, func(t *testing.T) {
			rig := newTrustRig(t, backend)
			if _, _, err := rig.store.DefinitionPublish(context.Background(), queue.DefinitionPublishParams{Report: "hist", Definition: []byte(def)}); err != nil {
				t.Fatal(err)
			}
			startAgent(t, rig.store, rig.open, testConfig())
			j := rig.wait(t, rig.submit(t, def))
			if j.Status != queue.StatusFailed || j.Attempt != 1 || !strings.Contains(j.Error, "the table exists and rpt did not create it for history") {
				t.Errorf("job: status %s attempt %d error %q; want failed at once, refused", j.Status, j.Attempt, j.Error)
			}
			if n := rig.victims(t); n != 3 {
				t.Errorf("victims has %d rows, want 3", n)
			}
			var cols int
			q := "SELECT COUNT(*) FROM pragma_table_info('victims')"
			if backend == "mariadb" {
				q = "SELECT COUNT(*) FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'victims'"
			}
			if err := rig.db.QueryRow(q).Scan(&cols); err != nil || cols != 1 {
				t.Errorf("victims has %d columns (%v), want its 1", cols, err)
			}

			// The definition that adopts the table loads there, keeping its rows.
			adopting := strings.Replace(def, "  table: victims\n", "  table: victims\n  adopt: true\n", 1)
			if _, _, err := rig.store.DefinitionPublish(context.Background(), queue.DefinitionPublishParams{Report: "hist", Definition: []byte(adopting)}); err != nil {
				t.Fatal(err)
			}
			if j := rig.wait(t, rig.submit(t, adopting)); j.Status != queue.StatusSucceeded {
				t.Errorf("adopting job: status %s error %q, want succeeded", j.Status, j.Error)
			}
			if n := rig.victims(t); n != 6 {
				t.Errorf("victims has %d rows after the adopting load, want its 3 and 3 loaded", n)
			}
		})
	}
}
