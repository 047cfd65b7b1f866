package mysql

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"testing"
	"time"

	"rpt/internal/queue"
)

// explain returns the EXPLAIN rows of query as column -> value maps.
func explain(t *testing.T, db *sql.DB, query string, args ...any) []map[string]string {
	t.Helper()
	rows, err := db.QueryContext(context.Background(), "EXPLAIN "+query, args...)
	if err != nil {
		t.Fatalf("explain: %v", err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		t.Fatal(err)
	}
	var plans []map[string]string
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		plan := map[string]string{}
		for i, c := range cols {
			switch v := vals[i].(type) {
			case []byte:
				plan[c] = string(v)
			case nil:
			default:
				plan[c] = fmt.Sprint(v)
			}
		}
		plans = append(plans, plan)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return plans
}

// Prune runs while agents claim: its reads must walk an index, never sort or scan a
// table, so each batch stays short however large the history.
func TestPruneQueriesUseIndexes(t *testing.T) {
	t.Parallel()
	s := newStore(t, 2)
	ctx := context.Background()
	for i := range 60 {
		j := enqueue(t, s, queue.JobEnqueueParams{Report: fmt.Sprintf("r%d", i%5)})
		if i%2 == 0 {
			if _, err := s.JobCancel(ctx, j.ID, ""); err != nil {
				t.Fatal(err)
			}
		}
	}
	if _, err := s.DB().ExecContext(ctx, "ANALYZE TABLE rpt_jobs, rpt_results"); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, query, table, key string
		args                    []any
	}{
		{"old jobs", oldJobsQuery, "rpt_jobs", "rpt_jobs_finished", []any{"cancelled", time.Now().UTC(), pruneBatch}},
		{"jobs with results", resultJobsQuery, "rpt_results", "PRIMARY", []any{0, pruneBatch}},
	}
	for _, tc := range tests {
		plans := explain(t, s.DB(), tc.query, tc.args...)
		if len(plans) != 1 {
			t.Fatalf("%s: EXPLAIN has %d rows, want 1: %v", tc.name, len(plans), plans)
		}
		p := plans[0]
		if p["table"] != tc.table || p["key"] != tc.key {
			t.Errorf("%s: reads %s with key %q, want %s with %s; plan %v", tc.name, p["table"], p["key"], tc.table, tc.key, p)
		}
		if strings.Contains(p["Extra"], "filesort") || strings.Contains(p["Extra"], "temporary") || p["type"] == "ALL" {
			t.Errorf("%s: sorts or scans: %v", tc.name, p)
		}
	}
}

// The drain_requested column arrives in migration 2; an agent of the version before
// writes its heartbeat without it, and a request already made must survive that.
func TestDrainSurvivesOldHeartbeat(t *testing.T) {
	t.Parallel()
	s := newStore(t, 2)
	ctx := context.Background()
	if err := s.AgentHeartbeat(ctx, queue.Agent{Name: "old", Version: "v0"}); err != nil {
		t.Fatal(err)
	}
	if err := s.AgentDrain(ctx, "old"); err != nil {
		t.Fatal(err)
	}
	// The upsert of 00001's code, verbatim in its columns.
	if _, err := s.DB().ExecContext(ctx, "INSERT INTO rpt_agents (name, host, labels, sources, version, running, draining, last_seen) "+
		"VALUES ('old', '', '{}', '[]', 'v0', 0, 0, UTC_TIMESTAMP(6)) ON DUPLICATE KEY UPDATE host = VALUES(host), "+
		"labels = VALUES(labels), sources = VALUES(sources), version = VALUES(version), running = VALUES(running), "+
		"draining = VALUES(draining), last_seen = VALUES(last_seen)"); err != nil {
		t.Fatal(err)
	}
	a, err := s.AgentGet(ctx, "old")
	if err != nil {
		t.Fatal(err)
	}
	if !a.DrainRequested {
		t.Errorf("drain request lost to an old agent's heartbeat")
	}
}
