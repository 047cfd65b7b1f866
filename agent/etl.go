package agent

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"rpt/etl"
	"rpt/internal/queue"
	"rpt/internal/source"
	"rpt/reportdefs"
)

// etlRunner runs etl jobs: it parses the job's ETL definition snapshot (trusted like a
// report's: trust.go knows the shipped ETLs), opens its source and the warehouse (the
// history source), and calls etl.Run with the job's fence: the load transaction locks
// the ETL's state row, refuses an older attempt of the job and checks the lease (a
// heartbeat) just before COMMIT, so a zombie attempt writes nothing. Progress is the
// rows written, reported with the heartbeats.
type etlRunner struct{}

func (etlRunner) kind() queue.Kind { return queue.KindETL }

func (etlRunner) features() []string { return nil }

func (etlRunner) run(a *Agent, r *run) error {
	ctx := r.ctx
	job := r.job
	def, err := etl.Parse(job.Report+".yaml", job.Definition)
	if err != nil {
		return notRetryable(fmt.Errorf("parse etl definition: %w", err))
	}
	args, err := etl.ParseJobArgs(job.Params)
	if err != nil {
		return notRetryable(err)
	}
	src, err := a.open(ctx, job.Source)
	if err != nil {
		return fmt.Errorf("open source %q: %w", job.Source, err)
	}
	defer src.Close()
	name := a.cfg.HistorySource
	wh, err := a.open(ctx, name)
	if err != nil {
		return fmt.Errorf("etl: open warehouse %q: %w", name, err)
	}
	defer wh.Close()
	withDB, ok := wh.(interface{ DB() *sql.DB })
	if !ok || wh.Driver() != source.DialectMySQL {
		return notRetryable(fmt.Errorf("etl: warehouse %q is %s; ETL targets must be mysql", name, wh.Driver()))
	}
	opts := etl.Options{
		Force: args.Force, From: args.From, To: args.To, Reconcile: args.Reconcile,
		Fence: etl.Fence{JobID: r.lease.JobID, Attempt: r.lease.Attempt, Check: func(ctx context.Context) error {
			_, err := a.store.JobHeartbeat(ctx, r.lease, r.rows.Load(), a.cfg.LeaseDuration)
			return err
		}},
		Progress: func(read, written int64) { r.rows.Store(written) },
	}
	st, err := etl.Run(ctx, def, src, withDB.DB(), opts)
	if err != nil {
		if errors.Is(err, etl.ErrInvalid) || errors.Is(err, etl.ErrGuard) {
			return notRetryable(err)
		}
		return err
	}
	r.rows.Store(st.Written)
	r.log.Info("etl loaded", "target", def.Target, "mode", def.Mode, "read", st.Read, keyRows, st.Written,
		"deleted", st.Deleted, "reconciled", st.Reconciled, "added_columns", st.AddedColumns, "pcns", len(st.Parts), "loader", st.Loader, "watermark", st.Watermark, "skipped", st.Skipped)
	return nil
}

// notRetryable marks an error another attempt cannot fix (a bad definition, a guard's
// refusal): decide fails such a job without a retry, as it does a bad report.
func notRetryable(err error) error { return &etlFatal{err} }

type etlFatal struct{ err error }

func (e *etlFatal) Error() string   { return e.err.Error() }
func (e *etlFatal) Unwrap() []error { return []error{e.err, reportdefs.ErrInvalid} }
