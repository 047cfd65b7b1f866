package etl

// The engine. One run of one ETL is one transaction on the warehouse:
//
//  1. Schema first, outside the transaction (MySQL commits implicitly on DDL): the
//     state table rpt_etl_state and, when absent, the target (the definition's
//     create:). Nothing else is ever created or altered.
//  2. BEGIN; lock the ETL's row of rpt_etl_state (SELECT ... FOR UPDATE): runs of one
//     ETL serialize, the watermark read is the one this load will replace, and an
//     attempt older than the one that last loaded (same job, lower attempt) is refused.
//  3. The mode's delete (full: every row; period-range: the window), the streamed
//     extract loaded in batches (LOAD DATA LOCAL INFILE from a reader, or multi-row
//     INSERTs where the server refuses local infile), the guards, the new state row.
//  4. The caller's lease check (the job's fence), then COMMIT.
//
// So a failed, cancelled, SIGKILLed or fenced-out attempt changes neither the target
// nor the watermark: its transaction never commits (a killed client's transaction is
// rolled back by the server when its connection drops).
//
// The full-mode swap rule. RENAME TABLE commits on its own in MySQL and MariaDB and
// cannot be made part of a transaction that also checks the fence and writes the
// state, so a load-then-rename swap would either be unfenced (a zombie could rename
// after losing its lease) or leave state and target disagreeing after a crash between
// the two. rpt therefore never renames: a full load deletes the old rows and loads the
// new ones inside the load transaction. InnoDB's consistent reads give every reader
// the old set until COMMIT and the whole new set after it (atomic for readers), and
// the fence check runs before that COMMIT (safe under the fence). The cost is undo
// log for the deleted rows, paid in the warehouse; TestFullSwapIsAtomicForReaders
// reads the table from another connection during a load.

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"

	"rpt/internal/queue"
	"rpt/internal/source"
)

// ErrGuard is a load a guard refused (an empty or shrunken full load): the target
// and the watermark are unchanged. --force loads it anyway. Not retried.
var ErrGuard = errors.New("etl guard")

// StateTable is the warehouse table of load state, one row per ETL.
const StateTable = "rpt_etl_state"

// Loaders.
const (
	LoaderInfile = "infile" // LOAD DATA LOCAL INFILE from a stream
	LoaderInsert = "insert" // multi-row INSERT (... ON DUPLICATE KEY UPDATE)
)

// DefaultBatchRows is the rows per LOAD DATA statement (and per progress report).
const DefaultBatchRows = 50000

// Fence identifies the attempt that loads. JobID 0 is a run in process (rpt etl run),
// which has no lease; Check (may be nil then) is called just before COMMIT and its
// error (queue.ErrLeaseLost when fenced out) rolls the load back.
type Fence struct {
	JobID   int64
	Attempt int
	Check   func(ctx context.Context) error
}

// Options of one run.
type Options struct {
	Fence Fence
	// Force loads what a guard would refuse.
	Force bool
	// From and To (YYYYMM) replace a period-range ETL's window; 0: the default.
	From, To int
	// Progress is called after each batch with the rows read and written so far.
	Progress func(read, written int64)
	// Loader forces a loader (tests, benchmarks); "" picks infile and falls back.
	Loader string
	// BatchRows per load statement; 0: DefaultBatchRows.
	BatchRows int
	// Now is the clock of snapshot stamps; nil: time.Now.
	Now func() time.Time
	// Reconcile runs a reconcile over every row (within: all) even when the definition
	// has none: source deletes anywhere in the target (of each partition) are removed.
	Reconcile bool
}

// Stats says what a run did.
type Stats struct {
	Read, Written int64
	Deleted       int64 // rows the mode removed first (full: the old set; period-range: the window)
	Loader        string
	Watermark     string // incremental: the new watermark
	From, To      int    // period-range: the window loaded
	Skipped       string // why nothing was loaded, when so
	Elapsed       time.Duration
	// Reconciled is the rows a reconcile deleted (target rows whose keys the source no
	// longer has); Compared the target rows it compared.
	Reconciled, Compared int64
	// AddedColumns are target columns this run added for new source columns.
	AddedColumns []string
	// PCN is a partition's PCN; Parts are the partitions of a per_pcn run, in order,
	// each with its error ("" when it committed).
	PCN   int
	Parts []Stats
	Error string
}

// Run runs one ETL: extract from src, load into the warehouse db (MySQL/MariaDB).
//
// A per_pcn ETL runs one partition per PCN, in PCN order, each in its own
// transaction with its own state row: a partition that fails leaves the others'
// committed loads in place, and the error names every failed PCN (errors.Join, so
// errors.Is sees each partition's error).
func Run(ctx context.Context, def *Definition, src source.Source, wh *sql.DB, opts Options) (Stats, error) {
	start := time.Now()
	if opts.BatchRows <= 0 {
		opts.BatchRows = DefaultBatchRows
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if err := ensureSchema(ctx, wh, def); err != nil {
		return Stats{}, err
	}
	if def.PerPCN == nil {
		st, err := runPart(ctx, def, src, wh, opts, 0)
		st.Elapsed = time.Since(start)
		return st, err
	}
	pcns, err := partitionPCNs(def, src)
	if err != nil {
		return Stats{}, err
	}
	var total Stats
	var errs []error
	for _, pcn := range pcns {
		if _, err := wh.ExecContext(ctx, "INSERT IGNORE INTO "+StateTable+" (etl_name, part, target_table, mode) VALUES (?, ?, ?, ?)", def.Name, partKey(pcn), def.Target, def.Mode); err != nil {
			return total, fmt.Errorf("seed %s row of %s pcn %d: %w", StateTable, def.Name, pcn, err)
		}
		st, err := runPart(ctx, def, src, wh, opts, pcn)
		st.PCN = pcn
		if err != nil {
			st.Error = err.Error()
			errs = append(errs, fmt.Errorf("pcn %d: %w", pcn, err))
		}
		total.Parts = append(total.Parts, st)
		total.Read += st.Read
		total.Written += st.Written
		total.Deleted += st.Deleted
		total.Reconciled += st.Reconciled
		total.Compared += st.Compared
		total.AddedColumns = append(total.AddedColumns, st.AddedColumns...)
		if total.Loader == "" {
			total.Loader = st.Loader
		}
		total.From, total.To = st.From, st.To
		if ctx.Err() != nil || errors.Is(err, queue.ErrLeaseLost) {
			break // the others would fail the same way
		}
	}
	total.Elapsed = time.Since(start)
	if len(errs) > 0 {
		return total, fmt.Errorf("etl %s: %d of %d PCNs failed (the others committed): %w", def.Name, len(errs), len(pcns), errors.Join(errs...))
	}
	return total, nil
}

// partKey is a partition's key in rpt_etl_state ("" for a whole ETL).
func partKey(pcn int) string {
	if pcn == 0 {
		return ""
	}
	return "pcn=" + strconv.Itoa(pcn)
}

// partitionPCNs are the PCNs a per_pcn run loads: the definition's, or every PCN its
// source has an account for (plexws).
func partitionPCNs(def *Definition, src source.Source) ([]int, error) {
	if len(def.PerPCN.PCNs) > 0 {
		return slices.Sorted(slices.Values(def.PerPCN.PCNs)), nil
	}
	if a, ok := src.(interface{ PCNs() []int }); ok && len(a.PCNs()) > 0 {
		return a.PCNs(), nil
	}
	return nil, fmt.Errorf("%w: %s: etl %s runs per_pcn, but source %q (%s) has no accounts to list PCNs from: name them in per_pcn.pcns", ErrInvalid, def.File, def.Name, src.Name(), src.Driver())
}

// runPart runs one partition (pcn 0: the whole ETL). A source column the target does
// not have yet is added (outside the transaction: DDL commits in MySQL) and the load
// started again.
func runPart(ctx context.Context, def *Definition, src source.Source, wh *sql.DB, opts Options, pcn int) (Stats, error) {
	var added []string
	for try := 0; ; try++ {
		st, err := run(ctx, def, src, wh, opts, pcn)
		var add *errAddColumns
		if try == 0 && errors.As(err, &add) {
			if err := addColumns(ctx, wh, def, add.cols); err != nil {
				return st, err
			}
			for _, c := range add.cols {
				added = append(added, c.Name)
			}
			continue
		}
		st.AddedColumns = added
		if err != nil && !errors.Is(err, queue.ErrLeaseLost) {
			noteFailure(ctx, wh, def, pcn, err)
		}
		return st, err
	}
}

// noteFailure records a failed run's error on its state row (outside the rolled-back
// load: what `rpt etl status` shows next to the last success). Best effort.
func noteFailure(ctx context.Context, wh *sql.DB, def *Definition, pcn int, err error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	msg := err.Error()
	if len(msg) > 2000 {
		msg = msg[:2000]
	}
	_, _ = wh.ExecContext(ctx, "UPDATE "+StateTable+" SET last_error = ?, last_error_at = UTC_TIMESTAMP(6) WHERE etl_name = ? AND part = ?", msg, def.Name, partKey(pcn))
}

func ensureSchema(ctx context.Context, wh *sql.DB, def *Definition) error {
	if _, err := wh.ExecContext(ctx, stateDDL); err != nil {
		return fmt.Errorf("create %s: %w", StateTable, err)
	}
	if err := upgradeState(ctx, wh); err != nil {
		return err
	}
	exists, err := tableExists(ctx, wh, def.Target)
	if err != nil {
		return err
	}
	if !exists {
		if def.Create == "" {
			return fmt.Errorf("%w: %s: target table %s does not exist and the definition has no target.create", ErrInvalid, def.File, def.Target)
		}
		if _, err := wh.ExecContext(ctx, def.Create); err != nil {
			return fmt.Errorf("etl %s: create target %s: %w", def.Name, def.Target, err)
		}
		if exists, err = tableExists(ctx, wh, def.Target); err != nil {
			return err
		} else if !exists {
			return fmt.Errorf("%w: %s: target.create did not create table %s", ErrInvalid, def.File, def.Target)
		}
	}
	if def.PerPCN != nil {
		return nil // a row per partition, seeded as each runs
	}
	_, err = wh.ExecContext(ctx, "INSERT IGNORE INTO "+StateTable+" (etl_name, target_table, mode) VALUES (?, ?, ?)", def.Name, def.Target, def.Mode)
	if err != nil {
		return fmt.Errorf("seed %s row of %s: %w", StateTable, def.Name, err)
	}
	return nil
}

// stateAdds are the columns rpt_etl_state gained after its first version, added to a
// table an older rpt created. Each is defaulted, so older rpt versions keep working
// on the table: their INSERT gets the empty part and their reads by etl_name find that row.
var stateAdds = []struct{ name, ddl string }{
	{"part", "ADD COLUMN part VARCHAR(40) NOT NULL DEFAULT '' AFTER etl_name, DROP PRIMARY KEY, ADD PRIMARY KEY (etl_name, part)"},
	{"extract_columns", "ADD COLUMN extract_columns TEXT NULL"},
	{"rows_reconciled", "ADD COLUMN rows_reconciled BIGINT NOT NULL DEFAULT 0"},
	{"last_error", "ADD COLUMN last_error TEXT NULL"},
	{"last_error_at", "ADD COLUMN last_error_at DATETIME(6) NULL"},
}

// upgradeState adds the columns an older rpt_etl_state lacks. Two runs upgrading at
// once: the second's ALTER fails on the duplicate column, which is the state wanted.
func upgradeState(ctx context.Context, wh *sql.DB) error {
	have, err := tableColumnTypes(ctx, wh, StateTable)
	if err != nil {
		return err
	}
	for _, a := range stateAdds {
		if _, ok := have[a.name]; ok {
			continue
		}
		if err := alter(ctx, wh, "ALTER TABLE "+StateTable+" "+a.ddl); err != nil && !isDuplicateColumn(err) {
			return fmt.Errorf("upgrade %s (add %s): %w", StateTable, a.name, err)
		}
	}
	return nil
}

// alterLockWait bounds how long an ALTER waits for the tables's metadata lock. An
// ALTER waiting behind a long transaction (a load of an older rpt, a report reading the
// target) would queue every later reader of the table behind it; failing instead lets
// the run be retried.
var alterLockWait = 20 // seconds; tests shorten it

// alter runs one ALTER TABLE on a connection of its own whose lock_wait_timeout is
// alterLockWait.
func alter(ctx context.Context, wh *sql.DB, stmt string) error {
	conn, err := wh.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, fmt.Sprintf("SET SESSION lock_wait_timeout = %d", alterLockWait)); err != nil {
		return err
	}
	defer func() { _, _ = conn.ExecContext(context.WithoutCancel(ctx), "SET SESSION lock_wait_timeout = DEFAULT") }()
	_, err = conn.ExecContext(ctx, stmt)
	var my *mysql.MySQLError
	if errors.As(err, &my) && my.Number == 1205 {
		return fmt.Errorf("%w: %s: waited %ds for other sessions using the table (a running load or report); try again: %w", source.ErrUnavailable, stmt, alterLockWait, err)
	}
	return err
}

func isDuplicateColumn(err error) bool {
	var my *mysql.MySQLError
	return errors.As(err, &my) && my.Number == 1060
}

func tableExists(ctx context.Context, db *sql.DB, table string) (bool, error) {
	var n int
	err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name = ?", table).Scan(&n)
	if err != nil {
		return false, fmt.Errorf("look for table %s: %w", table, err)
	}
	return n > 0, nil
}

const stateDDL = `CREATE TABLE IF NOT EXISTS rpt_etl_state (
  etl_name VARCHAR(100) NOT NULL,
  part VARCHAR(40) NOT NULL DEFAULT '',
  target_table VARCHAR(64) NOT NULL,
  mode VARCHAR(20) NOT NULL,
  watermark VARCHAR(64) NULL,
  job_id BIGINT NOT NULL DEFAULT 0,
  attempt INT NOT NULL DEFAULT 0,
  runs BIGINT NOT NULL DEFAULT 0,
  last_success_at DATETIME(6) NULL,
  rows_read BIGINT NOT NULL DEFAULT 0,
  rows_written BIGINT NOT NULL DEFAULT 0,
  rows_deleted BIGINT NOT NULL DEFAULT 0,
  period_from INT NULL,
  period_to INT NULL,
  loader VARCHAR(10) NULL,
  duration_ms BIGINT NULL,
  extract_columns TEXT NULL,
  rows_reconciled BIGINT NOT NULL DEFAULT 0,
  last_error TEXT NULL,
  last_error_at DATETIME(6) NULL,
  PRIMARY KEY (etl_name, part)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4`

// stateRow is an ETL's (or a partition's) row of rpt_etl_state as the locked read sees it.
type stateRow struct {
	watermark sql.NullString
	jobID     int64
	attempt   int
	runs      int64
	columns   string // the extract's columns at the last success (JSON)
}

func run(ctx context.Context, def *Definition, src source.Source, wh *sql.DB, opts Options, pcn int) (st Stats, err error) {
	tx, err := wh.BeginTx(ctx, nil)
	if err != nil {
		return st, fmt.Errorf("etl %s: begin: %w", def.Name, err)
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback()
		}
	}()
	var s stateRow
	if err := tx.QueryRowContext(ctx, "SELECT watermark, job_id, attempt, runs, COALESCE(extract_columns, '') FROM "+StateTable+" WHERE etl_name = ? AND part = ? FOR UPDATE", def.Name, partKey(pcn)).
		Scan(&s.watermark, &s.jobID, &s.attempt, &s.runs, &s.columns); err != nil {
		return st, fmt.Errorf("etl %s: lock state row: %w", def.Name, err)
	}
	if opts.Fence.JobID > 0 && s.jobID == opts.Fence.JobID {
		if s.attempt > opts.Fence.Attempt {
			return st, fmt.Errorf("etl %s: attempt %d of job %d already loaded, not attempt %d: %w", def.Name, s.attempt, s.jobID, opts.Fence.Attempt, queue.ErrLeaseLost)
		}
		if def.Mode == ModeSnapshot {
			// An earlier attempt of this job committed its snapshot (its outcome write
			// was lost): appending again would count the set twice.
			_ = tx.Rollback()
			st.Skipped = fmt.Sprintf("attempt %d of job %d already appended this snapshot", s.attempt, s.jobID)
			return st, nil
		}
	}

	params := map[string]any{}
	var conds []string
	var wmCol = ""
	var since any
	switch def.Mode {
	case ModeIncremental:
		inc := def.Increment
		wmCol = inc.Column
		var ok bool
		since, ok, err = sinceOf(s.watermark, inc.Lookback)
		if err != nil {
			return st, fmt.Errorf("etl %s: watermark %q in %s: %w", def.Name, s.watermark.String, StateTable, err)
		}
		switch {
		case ok:
			params[ParamSince] = since
			w := quoteIdent(src.Driver(), inc.Column) + " >= :" + ParamSince
			if inc.Nulls == NullsReload {
				w += " OR " + quoteIdent(src.Driver(), inc.Column) + " IS NULL"
			}
			conds = append(conds, w)
		case def.SQL != "" || def.DataSource != nil:
			params[ParamSince] = inc.Initial
		}
		st.Watermark = s.watermark.String
	case ModePeriodRange:
		st.From, st.To, err = window(ctx, def, src, s, opts)
		if err != nil {
			return st, err
		}
		params[ParamFromPeriod], params[ParamToPeriod] = int64(st.From), int64(st.To)
		conds = append(conds, quoteIdent(src.Driver(), def.Period.Column)+" BETWEEN :"+ParamFromPeriod+" AND :"+ParamToPeriod)
	}
	if pcn != 0 {
		params[ParamPCN] = int64(pcn)
		conds = append(conds, quoteIdent(src.Driver(), def.PerPCN.Column)+" = :"+ParamPCN)
	}
	where := ""
	if def.Table != "" && len(conds) > 0 {
		where = "(" + strings.Join(conds, ") AND (") + ")"
	}
	req := def.request(src.Driver(), params, where)
	if def.Mode == ModeIncremental && def.Table != "" {
		// The update column then the key: a deterministic order, so the watermark is the
		// last row's value whatever the source's plan.
		order := []string{quoteIdent(src.Driver(), def.Increment.Column)}
		for _, k := range def.Key {
			order = append(order, quoteIdent(src.Driver(), k))
		}
		req.SQL += " ORDER BY " + strings.Join(order, ", ")
	}
	rows, err := source.Run(ctx, src, req, def.Columns)
	if err != nil {
		return st, fmt.Errorf("etl %s: extract: %w", def.Name, err)
	}
	defer rows.Close()

	cols := rows.Columns()
	sig, err := checkSchema(ctx, tx, def, src, rows, s.columns)
	if err != nil {
		return st, err
	}
	names := make([]string, 0, len(cols)+1)
	wmIdx, pcnIdx := -1, -1
	for i, c := range cols {
		names = append(names, c.Name)
		if strings.EqualFold(c.Name, wmCol) {
			wmIdx = i
		}
		if pcn != 0 && strings.EqualFold(c.Name, def.PerPCN.Column) {
			pcnIdx = i
		}
	}
	if wmCol != "" && wmIdx < 0 {
		return st, fmt.Errorf("%w: etl %s: incremental.column %q is not a column of the extract", ErrInvalid, def.Name, wmCol)
	}
	if pcn != 0 && pcnIdx < 0 {
		return st, fmt.Errorf("%w: etl %s: per_pcn.column %q is not a column of the extract (each row says its PCN)", ErrInvalid, def.Name, def.PerPCN.Column)
	}
	targetCols, err := columnsOf(ctx, tx, def.Target)
	if err != nil {
		return st, err
	}
	for _, k := range def.Key {
		if !targetCols[k] {
			return st, fmt.Errorf("%w: etl %s: target.key column %q is not a column of %s", ErrInvalid, def.Name, k, def.Target)
		}
	}
	var stamp any
	if def.Mode == ModeSnapshot {
		if !targetCols[def.SnapshotColumn] {
			return st, fmt.Errorf("%w: etl %s: snapshot.column %q is not a column of %s", ErrInvalid, def.Name, def.SnapshotColumn, def.Target)
		}
		names = append(names, def.SnapshotColumn)
		stamp = opts.Now().UTC().Format(mysqlDateTime)
	}

	// The partition's own rows: every statement below is restricted to its PCN.
	pcnCond, pcnArgs := "", []any(nil)
	if pcn != 0 {
		pcnCond, pcnArgs = " AND `"+def.PerPCN.Column+"` = ?", []any{pcn}
	}
	switch def.Mode {
	case ModeFull:
		res, err := tx.ExecContext(ctx, "DELETE FROM `"+def.Target+"` WHERE 1 = 1"+pcnCond, pcnArgs...)
		if err != nil {
			return st, fmt.Errorf("etl %s: delete old rows of %s: %w", def.Name, def.Target, err)
		}
		st.Deleted, _ = res.RowsAffected()
	case ModePeriodRange:
		res, err := tx.ExecContext(ctx, "DELETE FROM `"+def.Target+"` WHERE `"+def.Period.Column+"` BETWEEN ? AND ?"+pcnCond, append([]any{st.From, st.To}, pcnArgs...)...)
		if err != nil {
			return st, fmt.Errorf("etl %s: delete window %d-%d of %s: %w", def.Name, st.From, st.To, def.Target, err)
		}
		st.Deleted, _ = res.RowsAffected()
	}

	l := &loader{def: def, tx: tx, names: names, cols: cols, stamp: stamp, wmIdx: wmIdx, pcnIdx: pcnIdx, pcn: int64(pcn), upsert: def.Mode == ModeIncremental, opts: opts}
	if err := l.load(ctx, rows, &st); err != nil {
		return st, fmt.Errorf("etl %s: load %s: %w", def.Name, def.Target, err)
	}
	if err := rows.Err(); err != nil {
		return st, fmt.Errorf("etl %s: extract: %w", def.Name, err)
	}
	if err := ctx.Err(); err != nil {
		return st, err
	}
	if err := guard(def, opts, st); err != nil {
		return st, err
	}
	if rc := reconcileOf(def, opts); rc != nil {
		if err := reconcile(ctx, tx, def, src, rc, opts, since, pcn, &st); err != nil {
			return st, err
		}
	}
	if def.Mode == ModeIncremental && l.wm != "" {
		st.Watermark = l.wm
	}
	var wm any
	if def.Mode == ModeIncremental && st.Watermark != "" {
		wm = st.Watermark
	}
	var from, to any
	if def.Mode == ModePeriodRange {
		from, to = st.From, st.To
	}
	if _, err := tx.ExecContext(ctx, "UPDATE "+StateTable+` SET target_table = ?, mode = ?, watermark = ?, job_id = ?, attempt = ?, runs = runs + 1,
		last_success_at = UTC_TIMESTAMP(6), rows_read = ?, rows_written = ?, rows_deleted = ?, period_from = ?, period_to = ?, loader = ?, duration_ms = ?,
		extract_columns = ?, rows_reconciled = ?, last_error = NULL, last_error_at = NULL
		WHERE etl_name = ? AND part = ?`, def.Target, def.Mode, wm, opts.Fence.JobID, opts.Fence.Attempt, st.Read, st.Written, st.Deleted, from, to, st.Loader,
		time.Since(l.started).Milliseconds(), sig, st.Reconciled, def.Name, partKey(pcn)); err != nil {
		return st, fmt.Errorf("etl %s: write state: %w", def.Name, err)
	}
	if opts.Fence.Check != nil {
		if err := opts.Fence.Check(ctx); err != nil {
			return st, fmt.Errorf("etl %s: lease check before commit (job %d attempt %d): %w", def.Name, opts.Fence.JobID, opts.Fence.Attempt, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return st, fmt.Errorf("etl %s: commit: %w", def.Name, err)
	}
	return st, nil
}

// guard refuses a load that would empty or shrink the target (full and period-range
// modes: the rows deleted are the old set).
func guard(def *Definition, opts Options, st Stats) error {
	if opts.Force || (def.Mode != ModeFull && def.Mode != ModePeriodRange) || st.Deleted == 0 {
		return nil
	}
	if st.Written == 0 && !def.AllowEmpty {
		return fmt.Errorf("%w: etl %s: the source returned no rows and %s has %d; refusing to empty it (target.allow_empty, or --force)", ErrGuard, def.Name, def.Target, st.Deleted)
	}
	if st.Written > 0 && float64(st.Written) < float64(st.Deleted)*(1-def.MaxShrink) {
		return fmt.Errorf("%w: etl %s: the new set has %d rows where %s had %d, more than target.max_shrink %.2f fewer; refusing (--force to load it)", ErrGuard, def.Name, st.Written, def.Target, st.Deleted, def.MaxShrink)
	}
	return nil
}

// window is a period-range run's window: the options', every period on the first
// run, else the definition's window_sql on the source.
func window(ctx context.Context, def *Definition, src source.Source, s stateRow, opts Options) (int, int, error) {
	if opts.From != 0 || opts.To != 0 {
		if opts.From == 0 || opts.To == 0 || opts.From > opts.To || !isPeriod(opts.From) || !isPeriod(opts.To) {
			return 0, 0, fmt.Errorf("%w: etl %s: --from %d --to %d: want two periods YYYYMM, from <= to", ErrInvalid, def.Name, opts.From, opts.To)
		}
		return opts.From, opts.To, nil
	}
	if s.runs == 0 {
		return 0, 999912, nil // the first run loads every period
	}
	if def.Period.WindowSQL == "" {
		return 0, 0, fmt.Errorf("%w: etl %s: no period_range.window_sql: give --from and --to", ErrInvalid, def.Name)
	}
	rows, err := src.Query(ctx, def.Period.WindowSQL, nil)
	if err != nil {
		return 0, 0, fmt.Errorf("etl %s: window_sql: %w", def.Name, err)
	}
	defer rows.Close()
	if !rows.Next() {
		return 0, 0, fmt.Errorf("etl %s: window_sql returned no row: %w", def.Name, rows.Err())
	}
	v := rows.Values()
	if len(v) != 2 {
		return 0, 0, fmt.Errorf("%w: etl %s: window_sql returns %d columns, want 2 (from, to)", ErrInvalid, def.Name, len(v))
	}
	from, ok1 := toInt(v[0])
	to, ok2 := toInt(v[1])
	if !ok1 || !ok2 || from > to || !isPeriod(from) || !isPeriod(to) {
		return 0, 0, fmt.Errorf("%w: etl %s: window_sql returned (%v, %v), want two periods YYYYMM, from <= to", ErrInvalid, def.Name, v[0], v[1])
	}
	return from, to, nil
}

func isPeriod(p int) bool { m := p % 100; return p >= 100001 && p <= 999912 && m >= 1 && m <= 12 }

func toInt(v any) (int, bool) {
	switch x := v.(type) {
	case int64:
		return int(x), true
	case string:
		n, err := strconv.Atoi(strings.TrimSpace(x))
		return n, err == nil
	case float64:
		if x == math.Trunc(x) {
			return int(x), true
		}
	}
	return 0, false
}

// columnsOf is the target's column names, lower case.
func columnsOf(ctx context.Context, tx *sql.Tx, table string) (map[string]bool, error) {
	rows, err := tx.QueryContext(ctx, "SELECT column_name FROM information_schema.columns WHERE table_schema = DATABASE() AND table_name = ?", table)
	if err != nil {
		return nil, fmt.Errorf("read columns of %s: %w", table, err)
	}
	defer rows.Close()
	out := map[string]bool{}
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			return nil, err
		}
		out[strings.ToLower(n)] = true
	}
	return out, rows.Err()
}

const mysqlDateTime = "2006-01-02 15:04:05.999999"

// sinceOf is the watermark less the lookback, in the form the source compares:
// "YYYY-MM-DD HH:MM:SS[.ffffff]" for a datetime, "YYYY-MM-DD" for a date, an integer
// for an integer column. ok is false on the first run (no watermark).
func sinceOf(wm sql.NullString, lookback time.Duration) (any, bool, error) {
	if !wm.Valid || wm.String == "" {
		return nil, false, nil
	}
	w := wm.String
	if n, err := strconv.ParseInt(w, 10, 64); err == nil {
		return n, true, nil
	}
	if t, err := time.Parse(time.DateOnly, w); err == nil {
		days := int(math.Ceil(lookback.Hours() / 24))
		return t.AddDate(0, 0, -days).Format(time.DateOnly), true, nil
	}
	if t, err := time.Parse(mysqlDateTime, w); err == nil {
		return t.Add(-lookback).Format(mysqlDateTime), true, nil
	}
	return nil, false, fmt.Errorf("not an integer, date or datetime")
}

// isLocalInfileRefused reports a server that does not take LOAD DATA LOCAL: MariaDB
// and MySQL 5.7 say 1148, MySQL 8 3948.
func isLocalInfileRefused(err error) bool {
	var my *mysql.MySQLError
	if errors.As(err, &my) {
		return my.Number == 1148 || my.Number == 3948
	}
	return false
}
