package bench

import (
	"context"
	"database/sql"
	"fmt"
	"testing"
	"time"

	"rpt/internal/queue"
	"rpt/internal/queue/mysql"
	"rpt/internal/testenv"
)

// BenchmarkClaimCost times one JobClaim (limit 1) plus the JobComplete of the claimed
// job on a queue that already holds `queued` runnable jobs and `finished` succeeded
// ones. The claim walks the claim index under status = 'queued', so finished jobs and a
// deep queue should barely change it. After each op a new queued row is inserted with
// the timer stopped, so the depth stays the same. The rows are bulk-loaded with
// INSERT ... SELECT from MariaDB's seq_1_to_N tables, not through JobEnqueue.
//
// compare (RPT_BENCH_BIG=1 only) loads two databases, one with 1,000 queued jobs and one
// with 100,000 queued and 1,000,000 finished, and alternates one op on each, so both see
// the same machine load; it reports the claim time on each and their ratio.
func BenchmarkClaimCost(b *testing.B) {
	b.Run("queued=1000/finished=0", func(b *testing.B) {
		q := loadQueue(b, 1000, 0)
		var claim time.Duration
		for b.Loop() {
			claim += claimCostOp(b, q)
		}
		b.ReportMetric(ms(claim)/float64(b.N), "claim-ms")
	})
	b.Run("compare/queued=1000,finished=0/queued=100000,finished=1000000", func(b *testing.B) {
		if !big() {
			b.Skipf("set %s=1 to load 1,000,000 finished jobs", EnvBig)
		}
		small := loadQueue(b, 1000, 0)
		large := loadQueue(b, 100_000, 1_000_000)
		settle(b, large.db)
		var cs, cl time.Duration
		for b.Loop() {
			cs += claimCostOp(b, small)
			cl += claimCostOp(b, large)
		}
		b.ReportMetric(ms(cs)/float64(b.N), "small-claim-ms")
		b.ReportMetric(ms(cl)/float64(b.N), "large-claim-ms")
		b.ReportMetric(float64(cl)/float64(cs), "large/small")
	})
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

type loadedQueue struct {
	s  *mysql.Store
	db *sql.DB
}

// loadQueue makes a migrated queue database holding `finished` succeeded and `queued`
// runnable jobs.
func loadQueue(b *testing.B, queued, finished int) loadedQueue {
	b.Helper()
	dsn := testenv.MariaDB(b)
	ctx := context.Background()
	s, err := mysql.Open(ctx, dsn, queue.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	if err := s.Migrate(ctx); err != nil {
		b.Fatal(err)
	}
	db := s.DB()
	start := time.Now()
	// Finished first, so the queued jobs have the higher ids, as in a queue in use.
	if err := bulkLoad(ctx, db, finished, queue.StatusSucceeded); err != nil {
		b.Fatal(err)
	}
	if err := bulkLoad(ctx, db, queued, queue.StatusQueued); err != nil {
		b.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, "ANALYZE TABLE rpt_jobs"); err != nil {
		b.Fatal(err)
	}
	b.Logf("loaded %d finished and %d queued jobs in %s", finished, queued, time.Since(start).Round(time.Millisecond))
	return loadedQueue{s: s, db: db}
}

// settle waits (up to two minutes) until InnoDB has written most dirty pages of the
// bulk load, so the timed ops do not compete with the page cleaner.
func settle(b *testing.B, db *sql.DB) {
	b.Helper()
	ctx := context.Background()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		var name string
		var dirty int64
		if err := db.QueryRowContext(ctx, "SHOW GLOBAL STATUS LIKE 'Innodb_buffer_pool_pages_dirty'").Scan(&name, &dirty); err != nil {
			b.Fatal(err)
		}
		if dirty < 1000 || time.Now().After(deadline) {
			b.Logf("%d dirty pages in the buffer pool", dirty)
			return
		}
		time.Sleep(time.Second)
	}
}

// claimCostOp claims and completes one job, then (untimed) queues a new one; it returns
// the claim's time.
func claimCostOp(b *testing.B, q loadedQueue) time.Duration {
	ctx := context.Background()
	t0 := time.Now()
	jobs, err := q.s.JobClaim(ctx, queue.JobClaimParams{Agent: "bench", Limit: 1, LeaseDuration: leaseLength})
	claim := time.Since(t0)
	if err != nil {
		b.Fatal(err)
	}
	if len(jobs) != 1 {
		b.Fatalf("claimed %d jobs, want 1", len(jobs))
	}
	if err := q.s.JobComplete(ctx, jobs[0].Lease(), queue.Completion{Rows: 0}); err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	if _, err := q.db.ExecContext(ctx, fmt.Sprintf(bulkInsert, 1), string(queue.StatusQueued), 0, nil, 0, 0, nil, nil); err != nil {
		b.Fatal(err)
	}
	b.StartTimer()
	return claim
}

// The columns bulk-loaded jobs get; definition is a few hundred bytes like a real
// snapshot.
const bulkInsert = "INSERT INTO rpt_jobs (kind, report, definition, definition_sha256, params, source, route, scopes, " +
	"neg_priority, status, attempt, max_attempts, run_after, lease_owner, result_attempt, `rows`, created_at, started_at, finished_at) " +
	"SELECT 'report', CONCAT('report-', seq MOD 40), REPEAT('x', 400), REPEAT('0', 64), " +
	"CONCAT('{\"start_period\": ', 202400 + seq MOD 12 + 1, ', \"pcn\": 123681}'), 'warehouse', '{}', '[]', 0, ?, ?, 3, " +
	"UTC_TIMESTAMP(6) - INTERVAL 1 DAY + INTERVAL seq MICROSECOND, ?, ?, ?, " +
	"UTC_TIMESTAMP(6) - INTERVAL 1 DAY, ?, ? FROM seq_1_to_%d"

// bulkLoad inserts n jobs of one status in chunks (a chunk is one transaction).
func bulkLoad(ctx context.Context, db *sql.DB, n int, status queue.Status) error {
	const chunk = 100_000
	for left := n; left > 0; left -= chunk {
		k := min(left, chunk)
		var args []any
		if status == queue.StatusQueued {
			args = []any{string(status), 0, nil, 0, 0, nil, nil}
		} else {
			args = []any{string(status), 1, "agent-old", 1, 1000, time.Now().UTC().Add(-23 * time.Hour), time.Now().UTC().Add(-23 * time.Hour)}
		}
		if _, err := db.ExecContext(ctx, fmt.Sprintf(bulkInsert, k), args...); err != nil {
			return fmt.Errorf("bulk load %d %s jobs: %w", k, status, err)
		}
	}
	return nil
}
