package agent

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"rpt/internal/queue"
	"rpt/internal/results"
	"rpt/internal/source"
	"rpt/reportdefs"
)

// reportRunner runs report jobs: it parses the job's definition snapshot, runs its
// request on the source (source.Run: SQL, a stored procedure or a data-source call,
// retyped per columns:), streams the rows into the result store and, with store:,
// copies them into the history table.
type reportRunner struct{}

func (reportRunner) kind() queue.Kind { return queue.KindReport }

// features are the definition features this agent's reports understand beyond
// v0.1.0's; a job using one requires its label (reportdefs.Definition.Features).
func (reportRunner) features() []string {
	return []string{reportdefs.FeatureProcedure, reportdefs.FeatureDataSource, reportdefs.FeatureLookups, reportdefs.FeatureLoadedBy}
}

func (reportRunner) run(a *Agent, r *run) error {
	ctx := r.ctx
	job := r.job

	def, err := reportdefs.Parse(job.Report+".yaml", job.Definition)
	if err != nil {
		return fmt.Errorf("parse definition: %w", err)
	}
	if job.Source != def.Source {
		// The source is the definition's, as its SQL is: a job row naming another one
		// (written by hand, not by submit) would run trusted SQL where it was not meant to.
		return fmt.Errorf("job source %q is not its definition's source %q: %w", job.Source, def.Source, reportdefs.ErrInvalid)
	}
	if len(def.Needs) > 0 {
		if err := a.checkNeeds(ctx, r, def); err != nil {
			return err
		}
	}
	values, err := def.BindValues(job.Params)
	if err != nil {
		return fmt.Errorf("bind params: %w", err)
	}
	src, err := a.sources.get(ctx, job.Source)
	if err != nil {
		return fmt.Errorf("open source %q: %w", job.Source, err)
	}

	// Where and when the data was read: when the query started, in UTC.
	r.read = &queue.ReadInfo{Source: job.Source, Kind: src.Driver(), At: time.Now().UTC(), Loads: a.copyLoads(ctx, r, def)}
	req := def.Request(src.Driver(), values)
	req.Sources = a.sources.get // a data source's lookups: the definition names them, never the job
	typed, err := source.Run(ctx, src, req, def.Columns)
	if err != nil {
		return err // names the source already: `query source "NAME": ...`
	}
	defer typed.Close()

	w := results.NewWriter(fencedChunks{a}, r.lease, typed.Columns())
	if def.Store == nil && a.completesWithChunk() {
		// A small result goes with the completion, in its transaction (the history
		// copy below reads the result from the store, so not with store:).
		w.HoldSmall(heldChunkMax)
	}
	// Whatever ends the result set, the chunks put so far are what a discard frees and
	// what the completion records.
	defer func() { r.chunks, r.held = w.Chunks(), w.Held() }()
	for typed.Next() {
		// Also stops a source that ignores cancellation.
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("copy result rows: %w", err)
		}
		if err := w.Write(ctx, typed.Values()); err != nil {
			return fmt.Errorf("write result: %w", err)
		}
		r.rows.Store(w.Rows())
	}
	if err := typed.Err(); err != nil {
		if errors.Is(err, source.ErrConvert) {
			return err
		}
		return fmt.Errorf("read rows from source %q: %w", job.Source, err)
	}
	if err := w.Close(ctx); err != nil {
		return fmt.Errorf("write result: %w", err)
	}
	r.rows.Store(w.Rows())
	if err := ctx.Err(); err != nil {
		// A source that returns early on cancel without an error must not look like
		// success: a cancelled job's result may be short.
		return err
	}
	if def.Store != nil {
		return a.writeHistory(ctx, r, def, values, w.Chunks())
	}
	return nil
}

// writeHistory copies the attempt's stored result into the definition's store: table
// in the history source (the warehouse), in one transaction fenced by the lease: a
// zombie attempt cannot write, and readers see the whole run or none of it.
func (a *Agent) writeHistory(ctx context.Context, r *run, def *reportdefs.Definition, values map[string]any, chunks int) error {
	name := a.cfg.HistorySource
	src, err := a.sources.get(ctx, name)
	if err != nil {
		return fmt.Errorf("history: open source %q: %w", name, err)
	}
	withDB, ok := src.(interface{ DB() *sql.DB })
	if !ok || (src.Driver() != source.DialectMySQL && src.Driver() != source.DialectSQLite) {
		return fmt.Errorf("history: source %q (%s) cannot hold history tables; it must be mysql or sqlite: %w", name, src.Driver(), reportdefs.ErrInvalid)
	}
	rows, err := results.Open(ctx, a.results, results.Ref{JobID: r.lease.JobID, Attempt: r.lease.Attempt, Chunks: chunks})
	if err != nil {
		return fmt.Errorf("history: read result: %w", err)
	}
	defer rows.Close()
	spec := results.HistorySpec{Table: def.Store.Table, Mode: def.Store.Mode, Key: def.Store.Key, ReplaceWhere: def.Store.ReplaceWhere, Params: values, Adopt: def.Store.Adopt}
	fence := results.HistoryFence{JobID: r.lease.JobID, Attempt: r.lease.Attempt, Check: func(ctx context.Context) error {
		_, err := a.store.JobHeartbeat(ctx, r.lease, r.rows.Load(), a.cfg.LeaseDuration)
		return err
	}}
	n, err := results.WriteHistory(ctx, withDB.DB(), src.Driver(), spec, fence, rows)
	if err != nil {
		return fmt.Errorf("history table %s: %w", def.Store.Table, err)
	}
	r.log.Info("history written", "table", def.Store.Table, keyRows, n)
	return nil
}

// fencedChunks is the results store as the result writer sees it: it counts the chunk
// writes the store fences out as stale writes. They are not queue calls for /readyz:
// a failed chunk write ends the job, whose outcome write tells.
type fencedChunks struct{ a *Agent }

func (f fencedChunks) ChunkPut(ctx context.Context, l queue.Lease, seq int, data []byte) error {
	err := f.a.results.ChunkPut(ctx, l, seq, data)
	if errors.Is(err, queue.ErrLeaseLost) {
		f.a.metrics.staleWrites.Inc()
	}
	return err
}
