package bench

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"testing"

	"rpt/internal/queue"
	"rpt/internal/queue/mysql"
	"rpt/internal/testenv"
)

// BenchmarkCompleteVariants prices ways to complete a claimed no-op job on MariaDB,
// to size suggestions for the store (these are prototypes in SQL on the store's schema,
// not code the store runs). Every variant does what JobComplete does: a fenced update
// to succeeded, slots freed, a "succeeded" event. ns/op is per job.
//   - store: (*mysql.Store).JobComplete, one transaction per job (BEGIN, UPDATE job,
//     UPDATE slots, INSERT event, COMMIT: five round trips and a durable commit);
//   - noslots: the same without the slot UPDATE, which a job without scopes does not
//     need (four round trips);
//   - batch16: one transaction for a batch of 16 leases (the five round trips and the
//     commit shared by 16 jobs), as a JobCompleteMany would.
func BenchmarkCompleteVariants(b *testing.B) {
	for _, v := range []string{"store", "noslots", "batch16"} {
		b.Run(v, func(b *testing.B) { runCompleteVariant(b, v) })
	}
}

func runCompleteVariant(b *testing.B, variant string) {
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
	if err := bulkLoad(ctx, db, b.N, queue.StatusQueued); err != nil {
		b.Fatal(err)
	}
	var leases []queue.Lease
	for len(leases) < b.N {
		jobs, err := s.JobClaim(ctx, queue.JobClaimParams{Agent: "bench", Limit: 64, LeaseDuration: leaseLength})
		if err != nil {
			b.Fatal(err)
		}
		if len(jobs) == 0 {
			b.Fatalf("claimed %d of %d jobs", len(leases), b.N)
		}
		for _, j := range jobs {
			leases = append(leases, j.Lease())
		}
	}
	b.ResetTimer()
	switch variant {
	case "store":
		for _, l := range leases {
			if err := s.JobComplete(ctx, l, queue.Completion{Rows: 0}); err != nil {
				b.Fatal(err)
			}
		}
	case "noslots":
		for _, l := range leases {
			if err := completeTx(ctx, db, []queue.Lease{l}, false); err != nil {
				b.Fatal(err)
			}
		}
	case "batch16":
		for i := 0; i < len(leases); i += 16 {
			if err := completeTx(ctx, db, leases[i:min(i+16, len(leases))], true); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "jobs/s")
	var left int
	if err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM rpt_jobs WHERE status <> 'succeeded'").Scan(&left); err != nil {
		b.Fatal(err)
	}
	if left != 0 {
		b.Fatalf("%d jobs not succeeded after %s", left, variant)
	}
}

// completeTx completes leases in one transaction, fenced: every lease must match.
func completeTx(ctx context.Context, db *sql.DB, leases []queue.Lease, freeSlots bool) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	var fence strings.Builder
	var args, ids []any
	for i, l := range leases {
		if i > 0 {
			fence.WriteString(" OR ")
		}
		fence.WriteString("(id = ? AND lease_token = ?)")
		args = append(args, l.JobID, l.Token)
		ids = append(ids, l.JobID)
	}
	in := "(?" + strings.Repeat(", ?", len(ids)-1) + ")"
	res, err := tx.ExecContext(ctx, "UPDATE rpt_jobs SET status = 'succeeded', `rows` = 0, result_attempt = attempt, error = NULL, "+
		"lease_expires = NULL, finished_at = UTC_TIMESTAMP(6) WHERE status = 'running' AND ("+fence.String()+")", args...)
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err != nil || n != int64(len(leases)) {
		return fmt.Errorf("completed %d of %d leases (%v)", n, len(leases), err)
	}
	if freeSlots {
		if _, err := tx.ExecContext(ctx, "UPDATE rpt_slots SET job_id = NULL, lease_token = NULL WHERE job_id IN "+in, ids...); err != nil {
			return err
		}
	}
	if _, err := tx.ExecContext(ctx, "INSERT INTO rpt_job_events (job_id, report, event, status, attempt, agent, `rows`, error, at) "+
		"SELECT id, report, 'succeeded', status, attempt, COALESCE(lease_owner, ''), `rows`, NULL, UTC_TIMESTAMP(6) "+
		"FROM rpt_jobs WHERE id IN "+in+" ORDER BY id", ids...); err != nil {
		return err
	}
	return tx.Commit()
}

// BenchmarkEnqueueVariants prices ways to enqueue a no-op job on MariaDB, like
// BenchmarkCompleteVariants (prototypes in SQL, not the store's code). ns/op is per job.
//   - store: (*mysql.Store).JobEnqueue (START TRANSACTION, INSERT job, INSERT event,
//     COMMIT, SELECT the job back: one call of five statements and a durable commit;
//     five round trips before the multi-statement pool);
//   - batch16: 16 jobs in one transaction: one multi-row INSERT and one INSERT ...
//     SELECT of their events, as a JobEnqueueMany for a cron fan-out would.
func BenchmarkEnqueueVariants(b *testing.B) {
	for _, v := range []string{"store", "batch16"} {
		b.Run(v, func(b *testing.B) {
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
			b.ResetTimer()
			switch v {
			case "store":
				for range b.N {
					if _, err := s.JobEnqueue(ctx, noop()); err != nil {
						b.Fatal(err)
					}
				}
			case "batch16":
				for i := 0; i < b.N; i += 16 {
					if err := enqueueTx(ctx, s.DB(), min(16, b.N-i)); err != nil {
						b.Fatal(err)
					}
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "jobs/s")
			var n int
			if err := s.DB().QueryRowContext(ctx, "SELECT COUNT(*) FROM rpt_jobs j JOIN rpt_job_events e ON e.job_id = j.id WHERE j.status = 'queued'").Scan(&n); err != nil {
				b.Fatal(err)
			}
			if n != b.N {
				b.Fatalf("%d queued jobs with an event, want %d", n, b.N)
			}
		})
	}
}

// enqueueTx inserts n no-op jobs and their "queued" events in one transaction.
func enqueueTx(ctx context.Context, db *sql.DB, n int) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	p := noop()
	var rows []string
	var args []any
	for range n {
		rows = append(rows, "(?, ?, ?, '', ?, ?, '{}', '[]', 0, 'queued', 3, UTC_TIMESTAMP(6), '', ?, 0, UTC_TIMESTAMP(6))")
		args = append(args, string(p.Kind), p.Report, p.Definition, string(p.Params), p.Source, p.Origin)
	}
	res, err := tx.ExecContext(ctx, "INSERT INTO rpt_jobs (kind, report, definition, definition_sha256, params, source, route, "+
		"scopes, neg_priority, status, max_attempts, run_after, submitted_by, origin, timeout_ms, created_at) VALUES "+
		strings.Join(rows, ", "), args...)
	if err != nil {
		return err
	}
	// InnoDB gives a multi-row INSERT consecutive ids (innodb_autoinc_lock_mode 1 or 2
	// without interleaving inside one statement); LastInsertId is the first.
	first, err := res.LastInsertId()
	if err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, "INSERT INTO rpt_job_events (job_id, report, event, status, attempt, agent, `rows`, error, at) "+
		"SELECT id, report, 'queued', status, attempt, '', 0, NULL, UTC_TIMESTAMP(6) FROM rpt_jobs WHERE id BETWEEN ? AND ? ORDER BY id",
		first, first+int64(n)-1); err != nil {
		return err
	}
	return tx.Commit()
}
