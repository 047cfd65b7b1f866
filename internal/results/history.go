package results

// History tables: a definition's store: block copies each successful run's rows into a
// typed warehouse table (README, "History tables"). The load is one transaction,
// so readers see a run's rows all at once or not at all, and it is fenced twice: a row
// of rpt_history_fence per table is locked in the transaction (concurrent loads of a
// table serialize, and a stale attempt of a job cannot overwrite a newer one's load),
// and the caller's lease check runs just before commit (a zombie attempt rolls back).
//
// Schema changes happen before the transaction, because MySQL commits implicitly on
// DDL. They are additive only (create table, add column, add index), so a load that
// rolls back afterwards leaves nothing a reader could notice but new NULL columns, and
// they come only after every check that can refuse the load up front has passed: the
// table is rpt's (below), the table's fence still lets this attempt load, and the
// first batch's values fit.
//
// Only rpt's own tables are written: a table rpt created for history (recorded in
// rpt_history_tables in the same database when it creates one), or one the definition
// adopts (store: {adopt: true}). A definition naming an ETL table is refused before
// anything is created, altered or deleted. Tables rpt loaded before it kept the
// registry (they have rpt's bookkeeping columns and a row in rpt_history_fence) are
// recorded on their next load.

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"

	"rpt/internal/queue"
	"rpt/internal/source"
	"rpt/internal/storemode"
)

// History modes, the values of HistorySpec.Mode (a definition's store: mode; the one
// set of names is internal/storemode).
const (
	HistoryAppend  = storemode.Append
	HistoryUpsert  = storemode.Upsert
	HistoryReplace = storemode.Replace
)

// Columns every history table has besides the result's columns: which job and
// attempt loaded a row, and when (UTC, by the warehouse's clock). rpt_id is a
// surrogate primary key (InnoDB replication and Galera want one).
const (
	historyColID       = "rpt_id"
	historyColJobID    = "rpt_job_id"
	historyColAttempt  = "rpt_attempt"
	historyColLoadedAt = "rpt_loaded_at"
	historyFenceTable  = "rpt_history_fence"
	historyTablesTable = "rpt_history_tables"
)

// historyBatchRows is the most rows one INSERT carries; historyMaxArgs keeps wide
// rows under SQLite's 32766 and MySQL's 65535 placeholder limits.
const (
	historyBatchRows = 500
	historyMaxArgs   = 30000
)

// Decimal columns are created as DECIMAL(historyDecimalIntDigits + scale, scale) on
// MySQL, the scale taken from the values of the first batch (see decimalScale).
const (
	historyDecimalIntDigits     = 28
	historyDecimalMaxScale      = 30
	historyDecimalDefaultScale  = 10
	historyLockRetryPause       = 50 * time.Millisecond
	historyStringKeyVarcharSize = 255
)

// ErrHistorySpec marks a store: block or result that cannot be loaded as asked (bad
// identifier, unknown mode, missing key column, NULL key, a decimal the table's column
// cannot hold exactly). Retrying the same job will not help.
var ErrHistorySpec = errors.New("history table")

var historyIdentRE = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,63}$`)

// HistorySpec says where and how a run's rows are kept: the store: block of a
// definition (reportdefs.Store) plus the run's bound parameter values.
type HistorySpec struct {
	Table        string   // warehouse table, [a-z_][a-z0-9_]{0,63}
	Mode         string   // append (default when empty), upsert or replace
	Key          []string // upsert: the columns of the table's UNIQUE key
	ReplaceWhere string   // replace: the condition of the rows a run replaces, with :name parameters
	// Params binds ReplaceWhere's :name parameters (reportdefs.BindValues' result).
	Params map[string]any
	// Adopt lets the load write into an existing table rpt did not create (store:
	// {adopt: true}); without it only rpt's own history tables are written.
	Adopt bool
}

// HistoryFence identifies the attempt that loads and lets the load check, inside its
// transaction, that the attempt still holds its lease.
type HistoryFence struct {
	JobID   int64
	Attempt int
	// Check is called inside the load transaction just before commit; an error (the
	// queue's queue.ErrLeaseLost when fenced out) rolls the load back. When the queue
	// and the warehouse share one SQLite file, Check must only read: the load holds
	// the file's write lock.
	Check func(ctx context.Context) error
}

// WriteHistory loads rows into spec.Table of the warehouse db (driver "mysql" for
// MySQL/MariaDB or "sqlite") and returns how many rows it loaded. It reads rows to the
// end but does not close them.
//
// The table is created when absent, with a typed column per result column plus
// rpt_id, rpt_job_id, rpt_attempt and rpt_loaded_at; a result column the table lacks
// is added (older rows keep NULL); nothing is ever dropped or altered. Types on
// MySQL: int BIGINT, decimal DECIMAL(28+s, s) with s the largest number of decimals
// among the first batch's values (money stays DECIMAL(30,2); 10 when all are NULL),
// float DOUBLE, string TEXT (VARCHAR(255) when a key column, so it can be indexed),
// bool TINYINT(1), date DATE, datetime DATETIME(6), bytes BLOB (VARBINARY(255) as a
// key). A value with more decimals than its column holds is refused, never rounded.
// On SQLite: INTEGER, DECIMAL_TEXT (text affinity: exact), REAL, TEXT, BOOLEAN, DATE,
// DATETIME, BLOB, all of which internal/source reads back as the same types.
//
// Modes: append inserts every row, after removing rows an earlier attempt of the same
// job loaded (so a retried job is not counted twice); upsert inserts or updates by the
// Key columns (a UNIQUE index, created with the table or added when missing; a NULL
// key is refused); replace deletes the rows matching ReplaceWhere (bound from Params),
// then inserts, so re-running a month whose result is now empty still clears it.
//
// Everything of one load is one transaction. It first locks the table's row of
// rpt_history_fence (MySQL: SELECT ... FOR UPDATE, waiting as long as ctx allows;
// SQLite: the transaction takes the write lock first), refuses with
// queue.ErrLeaseLost when a later attempt of the same job has already loaded the
// table, records this attempt there, loads, calls fence.Check and commits.
//
// Pass the stored result (Open) rather than the live query: the transaction stays
// open while rows are read.
func WriteHistory(ctx context.Context, db *sql.DB, driver string, spec HistorySpec, fence HistoryFence, rows source.Rows) (int64, error) {
	h, err := newHistoryLoad(driver, spec, fence, rows.Columns())
	if err != nil {
		return 0, err
	}
	// The first batch is read before any DDL: decimal column scales come from it.
	first, err := h.readBatch(rows)
	if err != nil {
		return 0, fmt.Errorf("load history table %s: %w", spec.Table, err)
	}
	if err := h.prepareSchema(ctx, db, first); err != nil {
		return 0, err
	}
	n, err := h.load(ctx, db, rows, first)
	if err != nil {
		if errors.Is(err, ErrHistorySpec) { // already names the table
			return 0, err
		}
		return 0, fmt.Errorf("load history table %s: %w", spec.Table, err)
	}
	return n, nil
}

// historyLoad is one WriteHistory call.
type historyLoad struct {
	driver string
	spec   HistorySpec
	fence  HistoryFence
	cols   []source.Column
	kinds  []kind
	isKey  []bool
	// scale of each decimal column as it is (or will be) in the table, -1 when the
	// column is not a MySQL DECIMAL.
	scale     []int
	batchRows int
}

func newHistoryLoad(driver string, spec HistorySpec, fence HistoryFence, cols []source.Column) (*historyLoad, error) {
	if driver != source.DialectMySQL && driver != source.DialectSQLite {
		return nil, fmt.Errorf("%w: driver %q cannot hold history tables (want mysql or sqlite)", ErrHistorySpec, driver)
	}
	if !historyIdentRE.MatchString(spec.Table) || strings.HasPrefix(spec.Table, "rpt_") || strings.HasPrefix(spec.Table, "sqlite_") {
		return nil, fmt.Errorf("%w: store.table: bad table name %q (want [a-z_][a-z0-9_]{0,63}, not starting with rpt_ or sqlite_)", ErrHistorySpec, spec.Table)
	}
	if fence.JobID <= 0 || fence.Attempt <= 0 || fence.Check == nil {
		return nil, fmt.Errorf("%w %s: fence needs a job id, an attempt and a lease check", ErrHistorySpec, spec.Table)
	}
	if len(cols) == 0 {
		return nil, fmt.Errorf("%w %s: the result has no columns", ErrHistorySpec, spec.Table)
	}
	h := &historyLoad{driver: driver, spec: spec, fence: fence, cols: cols}
	seen := map[string]int{}
	for i, c := range cols {
		if !historyIdentRE.MatchString(c.Name) {
			return nil, fmt.Errorf("%w %s: result column %d: bad column name %q (want [a-z_][a-z0-9_]{0,63}; alias it in the SQL)", ErrHistorySpec, spec.Table, i+1, c.Name)
		}
		switch c.Name {
		case historyColID, historyColJobID, historyColAttempt, historyColLoadedAt:
			return nil, fmt.Errorf("%w %s: result column %q is reserved for the history table's own bookkeeping", ErrHistorySpec, spec.Table, c.Name)
		}
		if _, dup := seen[c.Name]; dup {
			return nil, fmt.Errorf("%w %s: result column %q appears twice", ErrHistorySpec, spec.Table, c.Name)
		}
		k, ok := kindOf(c.Type)
		if !ok {
			return nil, fmt.Errorf("%w %s: result column %q has unknown type %q", ErrHistorySpec, spec.Table, c.Name, c.Type)
		}
		h.kinds = append(h.kinds, k)
		seen[c.Name] = i
	}
	h.isKey = make([]bool, len(cols))
	switch spec.Mode {
	case "", HistoryAppend:
		h.spec.Mode = HistoryAppend
	case HistoryUpsert:
		if len(spec.Key) == 0 {
			return nil, fmt.Errorf("%w %s: store.key: mode upsert needs key columns", ErrHistorySpec, spec.Table)
		}
		for _, k := range spec.Key {
			i, ok := seen[k]
			if !ok {
				return nil, fmt.Errorf("%w %s: store.key: column %q is not a column of the result", ErrHistorySpec, spec.Table, k)
			}
			if h.isKey[i] {
				return nil, fmt.Errorf("%w %s: store.key: column %q named twice", ErrHistorySpec, spec.Table, k)
			}
			h.isKey[i] = true
		}
	case HistoryReplace:
		if strings.TrimSpace(spec.ReplaceWhere) == "" {
			return nil, fmt.Errorf("%w %s: store.replace_where: mode replace needs a condition", ErrHistorySpec, spec.Table)
		}
		// A condition, never statements (validate checks it too); bound now, so a
		// missing parameter fails before anything is created.
		if err := source.CheckCondition(driver, spec.ReplaceWhere); err != nil {
			return nil, fmt.Errorf("%w %s: store.replace_where: %w", ErrHistorySpec, spec.Table, err)
		}
		if _, _, err := source.Bind(driver, spec.ReplaceWhere, spec.Params); err != nil {
			return nil, fmt.Errorf("%w %s: store.replace_where: %w", ErrHistorySpec, spec.Table, err)
		}
	default:
		return nil, fmt.Errorf("%w %s: store.mode: unknown mode %q (want append, upsert or replace)", ErrHistorySpec, spec.Table, spec.Mode)
	}
	h.batchRows = min(historyBatchRows, max(1, historyMaxArgs/(len(cols)+2)))
	return h, nil
}

// quote quotes an identifier that historyIdentRE has already accepted.
func (h *historyLoad) quote(name string) string {
	if h.driver == source.DialectMySQL {
		return "`" + name + "`"
	}
	return `"` + name + `"`
}

// readBatch reads up to batchRows rows, copying the values (Values reuses its slice).
func (h *historyLoad) readBatch(rows source.Rows) ([][]any, error) {
	var batch [][]any
	for len(batch) < h.batchRows && rows.Next() {
		vals := rows.Values()
		if len(vals) != len(h.cols) {
			return nil, fmt.Errorf("read rows: a row has %d values for %d columns", len(vals), len(h.cols))
		}
		batch = append(batch, append([]any(nil), vals...))
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read rows: %w", err)
	}
	return batch, nil
}

// columnDDL is the column type a new column of result column i gets.
func (h *historyLoad) columnDDL(i int, first [][]any) string {
	c := h.cols[i]
	if h.driver == source.DialectSQLite {
		switch c.Type {
		case source.TypeInt:
			return "INTEGER"
		case source.TypeDecimal:
			return "DECIMAL_TEXT"
		case source.TypeFloat:
			return "REAL"
		case source.TypeBool:
			return "BOOLEAN"
		case source.TypeDate:
			return "DATE"
		case source.TypeDateTime:
			return "DATETIME"
		case source.TypeBytes:
			return "BLOB"
		}
		return "TEXT"
	}
	switch c.Type {
	case source.TypeInt:
		return "BIGINT"
	case source.TypeDecimal:
		s := decimalScale(first, i)
		return fmt.Sprintf("DECIMAL(%d,%d)", historyDecimalIntDigits+s, s)
	case source.TypeFloat:
		return "DOUBLE"
	case source.TypeBool:
		return "TINYINT(1)"
	case source.TypeDate:
		return "DATE"
	case source.TypeDateTime:
		return "DATETIME(6)"
	case source.TypeBytes:
		if h.isKey[i] {
			return fmt.Sprintf("VARBINARY(%d)", historyStringKeyVarcharSize)
		}
		return "BLOB"
	}
	if h.isKey[i] {
		return fmt.Sprintf("VARCHAR(%d)", historyStringKeyVarcharSize)
	}
	return "TEXT"
}

// decimalScale is the largest number of decimals among column i's values of the first
// batch, trailing zeros included: sources print a DECIMAL(19,2) as "0.00", so the
// column keeps the source's scale.
func decimalScale(first [][]any, i int) int {
	scale, seen := 0, false
	for _, row := range first {
		v, _ := canonical(kindDecimal, row[i])
		s, ok := v.(string)
		if !ok {
			continue
		}
		seen = true
		if dot := strings.IndexByte(s, '.'); dot >= 0 {
			scale = max(scale, len(s)-dot-1)
		}
	}
	if !seen {
		return historyDecimalDefaultScale
	}
	return min(scale, historyDecimalMaxScale)
}

// prepareSchema creates the fence table, the history table, missing columns and the
// upsert key's index, and notes the scale of each MySQL decimal column.
func (h *historyLoad) prepareSchema(ctx context.Context, db *sql.DB, first [][]any) error {
	t := h.spec.Table
	if err := retryBusy(ctx, func() error { return h.createFenceTable(ctx, db) }); err != nil {
		return fmt.Errorf("create %s: %w", historyFenceTable, err)
	}
	if err := retryBusy(ctx, func() error { return h.createRegistry(ctx, db) }); err != nil {
		return fmt.Errorf("create %s: %w", historyTablesTable, err)
	}
	existing, err := h.tableColumns(ctx, db)
	if err != nil {
		return fmt.Errorf("read columns of history table %s: %w", t, err)
	}
	if len(existing) > 0 {
		if err := h.checkOwned(ctx, db, existing); err != nil {
			return err
		}
	}
	if err := h.preflight(ctx, db, existing, first); err != nil {
		return err
	}
	if len(existing) == 0 {
		// Recorded first, so that a load of the same table starting meanwhile, which
		// finds the table created but not yet recorded, does not take it for a foreign one.
		if err := retryBusy(ctx, func() error { return h.register(ctx, db) }); err != nil {
			return fmt.Errorf("record history table %s in %s: %w", t, historyTablesTable, err)
		}
		if err := retryBusy(ctx, func() error { return h.createTable(ctx, db, first) }); err != nil {
			return fmt.Errorf("create history table %s: %w", t, err)
		}
		if existing, err = h.tableColumns(ctx, db); err != nil {
			return fmt.Errorf("read columns of history table %s: %w", t, err)
		}
	}
	type addColumn struct{ name, ddl string }
	var adds []addColumn
	for i, c := range h.cols {
		if _, ok := existing[c.Name]; !ok {
			adds = append(adds, addColumn{c.Name, h.columnDDL(i, first)})
		}
	}
	// An adopted table gets the bookkeeping columns the load writes (NULL in its own
	// rows); rpt_id is not needed for loading and is never added.
	for _, b := range h.bookkeeping() {
		if _, ok := existing[b.name]; !ok {
			adds = append(adds, addColumn{b.name, b.ddl})
		}
	}
	for _, a := range adds {
		stmt := "ALTER TABLE " + h.quote(t) + " ADD COLUMN " + h.quote(a.name) + " " + a.ddl
		if err := retryBusy(ctx, func() error {
			_, err := db.ExecContext(ctx, stmt)
			return err
		}); err != nil && !isDuplicateColumn(err) {
			return fmt.Errorf("add column %s to history table %s: %w", a.name, t, err)
		}
	}
	if h.spec.Mode == HistoryUpsert {
		if err := retryBusy(ctx, func() error { return h.ensureKeyIndex(ctx, db) }); err != nil {
			return fmt.Errorf("unique key (%s) of history table %s: %w", strings.Join(h.spec.Key, ", "), t, err)
		}
	}
	if existing, err = h.tableColumns(ctx, db); err != nil {
		return fmt.Errorf("read columns of history table %s: %w", t, err)
	}
	h.scale = make([]int, len(h.cols))
	for i, c := range h.cols {
		h.scale[i] = -1
		if s, ok := existing[c.Name]; ok && c.Type == source.TypeDecimal {
			h.scale[i] = s
		}
	}
	return nil
}

func (h *historyLoad) createFenceTable(ctx context.Context, db *sql.DB) error {
	stmt := `CREATE TABLE IF NOT EXISTS rpt_history_fence (
	table_name VARCHAR(64) NOT NULL PRIMARY KEY,
	job_id BIGINT NOT NULL,
	attempt INT NOT NULL,
	loaded_at DATETIME(6) NULL
)`
	if h.driver == source.DialectSQLite {
		stmt = `CREATE TABLE IF NOT EXISTS rpt_history_fence (
	table_name TEXT NOT NULL PRIMARY KEY,
	job_id INTEGER NOT NULL,
	attempt INTEGER NOT NULL,
	loaded_at DATETIME
)`
	}
	_, err := db.ExecContext(ctx, stmt)
	return err
}

// tableColumns returns the table's columns with the scale of each MySQL DECIMAL
// column (-1 for others); an empty map when the table does not exist.
func (h *historyLoad) tableColumns(ctx context.Context, db *sql.DB) (map[string]int, error) {
	var (
		rows *sql.Rows
		err  error
	)
	if h.driver == source.DialectMySQL {
		rows, err = db.QueryContext(ctx, `SELECT COLUMN_NAME, CASE WHEN DATA_TYPE = 'decimal' THEN NUMERIC_SCALE ELSE -1 END
FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ?`, h.spec.Table)
	} else {
		rows, err = db.QueryContext(ctx, `SELECT name, -1 FROM pragma_table_info(?)`, h.spec.Table)
	}
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	cols := map[string]int{}
	for rows.Next() {
		var (
			name  string
			scale int
		)
		if err := rows.Scan(&name, &scale); err != nil {
			return nil, err
		}
		cols[strings.ToLower(name)] = scale
	}
	return cols, rows.Err()
}

func (h *historyLoad) createTable(ctx context.Context, db *sql.DB, first [][]any) error {
	t := h.spec.Table
	var b strings.Builder
	b.WriteString("CREATE TABLE IF NOT EXISTS " + h.quote(t) + " (\n\t")
	if h.driver == source.DialectMySQL {
		b.WriteString(h.quote(historyColID) + " BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY")
	} else {
		b.WriteString(h.quote(historyColID) + " INTEGER PRIMARY KEY")
	}
	for i, c := range h.cols {
		b.WriteString(",\n\t" + h.quote(c.Name) + " " + h.columnDDL(i, first))
	}
	if h.driver == source.DialectMySQL {
		b.WriteString(",\n\t" + h.quote(historyColJobID) + " BIGINT NOT NULL")
		b.WriteString(",\n\t" + h.quote(historyColAttempt) + " INT NOT NULL")
		b.WriteString(",\n\t" + h.quote(historyColLoadedAt) + " DATETIME(6) NOT NULL")
		b.WriteString(",\n\tKEY `rpt_job` (" + h.quote(historyColJobID) + ", " + h.quote(historyColAttempt) + ")")
		if h.spec.Mode == HistoryUpsert {
			b.WriteString(",\n\tUNIQUE KEY `rpt_key` (" + h.keyList() + ")")
		}
		// Binary collation: upsert keys and replace_where compare strings exactly, as
		// on SQLite, rather than folding case ("a100" and "A100" are two accounts).
		b.WriteString("\n) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin")
		_, err := db.ExecContext(ctx, b.String())
		return err
	}
	b.WriteString(",\n\t" + h.quote(historyColJobID) + " INTEGER NOT NULL")
	b.WriteString(",\n\t" + h.quote(historyColAttempt) + " INTEGER NOT NULL")
	b.WriteString(",\n\t" + h.quote(historyColLoadedAt) + " DATETIME NOT NULL")
	b.WriteString("\n)")
	// SQLite's DDL is transactional: the table and its indexes appear together.
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback() //nolint:errcheck // after Commit it is a no-op
	stmts := []string{
		b.String(),
		"CREATE INDEX IF NOT EXISTS " + h.quote(t+"_rpt_job") + " ON " + h.quote(t) + " (" + h.quote(historyColJobID) + ", " + h.quote(historyColAttempt) + ")",
	}
	for _, s := range stmts {
		if _, err := tx.ExecContext(ctx, s); err != nil {
			return err
		}
	}
	return tx.Commit()
}

func (h *historyLoad) keyList() string {
	q := make([]string, len(h.spec.Key))
	for i, k := range h.spec.Key {
		q[i] = h.quote(k)
	}
	return strings.Join(q, ", ")
}

// ensureKeyIndex adds the upsert key's UNIQUE index to a table created before the
// definition said upsert. It fails when existing rows already repeat a key.
func (h *historyLoad) ensureKeyIndex(ctx context.Context, db *sql.DB) error {
	t := h.spec.Table
	if h.driver == source.DialectSQLite {
		_, err := db.ExecContext(ctx, "CREATE UNIQUE INDEX IF NOT EXISTS "+h.quote(t+"_rpt_key")+" ON "+h.quote(t)+" ("+h.keyList()+")")
		return err
	}
	rows, err := db.QueryContext(ctx, `SELECT INDEX_NAME, COLUMN_NAME FROM information_schema.STATISTICS
WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ? AND NON_UNIQUE = 0 ORDER BY INDEX_NAME, SEQ_IN_INDEX`, t)
	if err != nil {
		return err
	}
	indexes := map[string][]string{}
	for rows.Next() {
		var idx, col string
		if err := rows.Scan(&idx, &col); err != nil {
			rows.Close()
			return err
		}
		indexes[idx] = append(indexes[idx], strings.ToLower(col))
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	want := strings.Join(h.spec.Key, ",")
	for _, cols := range indexes {
		if strings.Join(cols, ",") == want {
			return nil
		}
	}
	// Unnamed: MySQL names it after its first column, so it cannot collide with a
	// rpt_key left by a different key list.
	_, err = db.ExecContext(ctx, "ALTER TABLE "+h.quote(t)+" ADD UNIQUE KEY ("+h.keyList()+")")
	return err
}

// isDuplicateColumn reports a concurrent load having added the same column first.
func isDuplicateColumn(err error) bool {
	var my *mysql.MySQLError
	if errors.As(err, &my) {
		return my.Number == 1060 // ER_DUP_FIELDNAME
	}
	return strings.Contains(strings.ToLower(err.Error()), "duplicate column name") // SQLite
}

// load runs the transaction.
func (h *historyLoad) load(ctx context.Context, db *sql.DB, rows source.Rows, first [][]any) (n int64, err error) {
	t := h.spec.Table
	if err := retryBusy(ctx, func() error {
		_, err := db.ExecContext(ctx, h.fenceSeedSQL(), t)
		return err
	}); err != nil {
		return 0, fmt.Errorf("seed fence row: %w", err)
	}
	var tx *sql.Tx
	if err := retryBusy(ctx, func() (err error) {
		tx, err = db.BeginTx(ctx, nil)
		return err
	}); err != nil {
		return 0, fmt.Errorf("begin: %w", err)
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback()
		}
	}()
	if err := h.lockFence(ctx, tx); err != nil {
		return 0, err
	}

	switch h.spec.Mode {
	case HistoryAppend:
		// A retried job replaces what its earlier attempts loaded rather than doubling it.
		if _, err := tx.ExecContext(ctx, "DELETE FROM "+h.quote(t)+" WHERE "+h.quote(historyColJobID)+" = ?", h.fence.JobID); err != nil {
			return 0, fmt.Errorf("delete rows of earlier attempts: %w", err)
		}
	case HistoryReplace:
		where, args, err := source.Bind(h.driver, h.spec.ReplaceWhere, h.spec.Params)
		if err != nil {
			return 0, fmt.Errorf("%w %s: store.replace_where: %w", ErrHistorySpec, t, err)
		}
		if _, err := tx.ExecContext(ctx, "DELETE FROM "+h.quote(t)+" WHERE "+where, args...); err != nil {
			return 0, fmt.Errorf("delete rows matching replace_where: %w", err)
		}
	}

	var full *sql.Stmt // the statement of a full batch, prepared once
	defer func() {
		if full != nil {
			full.Close()
		}
	}()
	args := make([]any, 0, h.batchRows*(len(h.cols)+2))
	for batch := first; len(batch) > 0; {
		args = args[:0]
		for _, row := range batch {
			n++
			if args, err = h.appendArgs(args, row, n); err != nil {
				return 0, err
			}
		}
		if len(batch) == h.batchRows {
			if full == nil {
				if full, err = tx.PrepareContext(ctx, h.insertSQL(len(batch))); err != nil {
					return 0, fmt.Errorf("prepare insert: %w", err)
				}
			}
			_, err = full.ExecContext(ctx, args...)
		} else {
			_, err = tx.ExecContext(ctx, h.insertSQL(len(batch)), args...)
		}
		if err != nil {
			return 0, fmt.Errorf("insert rows %d-%d: %w", n-int64(len(batch))+1, n, err)
		}
		if len(batch) < h.batchRows {
			break
		}
		if batch, err = h.readBatch(rows); err != nil {
			return 0, err
		}
	}

	if err := h.fence.Check(ctx); err != nil {
		return 0, fmt.Errorf("lease check before commit (job %d attempt %d): %w", h.fence.JobID, h.fence.Attempt, err)
	}
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("commit: %w", err)
	}
	return n, nil
}

func (h *historyLoad) fenceSeedSQL() string {
	if h.driver == source.DialectMySQL {
		return "INSERT IGNORE INTO rpt_history_fence (table_name, job_id, attempt) VALUES (?, 0, 0)"
	}
	return "INSERT OR IGNORE INTO rpt_history_fence (table_name, job_id, attempt) VALUES (?, 0, 0)"
}

// retryBusy runs f until it does not fail on a lock another load holds (MySQL's lock
// wait timeout, SQLite's busy timeout), for as long as ctx allows: SQLite's busy
// timeout and InnoDB's lock wait timeout may both end before a long load of the same
// table does, and that load will finish.
func retryBusy(ctx context.Context, f func() error) error {
	for {
		err := f()
		if err == nil || !isLockBusy(err) {
			return err
		}
		if perr := pause(ctx); perr != nil {
			return fmt.Errorf("%w (waiting since: %w)", perr, err)
		}
	}
}

// lockFence locks the table's fence row, refuses a stale attempt and records this one.
// MySQL's lock wait timeout (1205) rolls back only the statement, so the lock is
// simply tried again.
func (h *historyLoad) lockFence(ctx context.Context, tx *sql.Tx) error {
	t := h.spec.Table
	var jobID int64
	var attempt int
	err := retryBusy(ctx, func() error {
		if h.driver == source.DialectMySQL {
			return tx.QueryRowContext(ctx, "SELECT job_id, attempt FROM rpt_history_fence WHERE table_name = ? FOR UPDATE", t).Scan(&jobID, &attempt)
		}
		// A write first takes SQLite's write lock even when the database was opened
		// without _txlock=immediate, so two loads cannot both read and then collide.
		if _, err := tx.ExecContext(ctx, "UPDATE rpt_history_fence SET table_name = table_name WHERE table_name = ?", t); err != nil {
			return err
		}
		return tx.QueryRowContext(ctx, "SELECT job_id, attempt FROM rpt_history_fence WHERE table_name = ?", t).Scan(&jobID, &attempt)
	})
	if err != nil {
		return fmt.Errorf("lock fence row: %w", err)
	}
	if err := h.staleAttempt(jobID, attempt); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, "UPDATE rpt_history_fence SET job_id = ?, attempt = ?, loaded_at = "+h.nowSQL()+" WHERE table_name = ?",
		h.fence.JobID, h.fence.Attempt, t); err != nil {
		return fmt.Errorf("record attempt in fence row: %w", err)
	}
	return nil
}

func pause(ctx context.Context) error {
	timer := time.NewTimer(historyLockRetryPause)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-timer.C:
		return nil
	}
}

// isLockBusy reports a lock the other load holds: MySQL's lock wait timeout (1205) or
// SQLite's SQLITE_BUSY (5, with extended codes in the high bits).
func isLockBusy(err error) bool {
	var my *mysql.MySQLError
	if errors.As(err, &my) {
		return my.Number == 1205 // ER_LOCK_WAIT_TIMEOUT
	}
	var coded interface{ Code() int }
	if errors.As(err, &coded) {
		return coded.Code()&0xff == 5
	}
	return strings.Contains(err.Error(), "database is locked")
}

// nowSQL is the warehouse's UTC clock as the column type wants it.
func (h *historyLoad) nowSQL() string {
	if h.driver == source.DialectMySQL {
		return "UTC_TIMESTAMP(6)"
	}
	return "strftime('%Y-%m-%dT%H:%M:%fZ', 'now')"
}

// insertSQL is a multi-row INSERT of rows rows, with the mode's conflict clause.
func (h *historyLoad) insertSQL(rows int) string {
	var b strings.Builder
	b.WriteString("INSERT INTO " + h.quote(h.spec.Table) + " (")
	for _, c := range h.cols {
		b.WriteString(h.quote(c.Name) + ", ")
	}
	b.WriteString(h.quote(historyColJobID) + ", " + h.quote(historyColAttempt) + ", " + h.quote(historyColLoadedAt) + ") VALUES ")
	tuple := "(" + strings.Repeat("?, ", len(h.cols)+2) + h.nowSQL() + ")"
	for i := range rows {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(tuple)
	}
	if h.spec.Mode != HistoryUpsert {
		return b.String()
	}
	var set []string
	for i, c := range h.cols {
		if !h.isKey[i] {
			set = append(set, c.Name)
		}
	}
	set = append(set, historyColJobID, historyColAttempt, historyColLoadedAt)
	if h.driver == source.DialectMySQL {
		// VALUES(col) rather than MySQL 8's row alias, which MariaDB lacks.
		b.WriteString(" ON DUPLICATE KEY UPDATE ")
		for i, c := range set {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(h.quote(c) + " = VALUES(" + h.quote(c) + ")")
		}
		return b.String()
	}
	b.WriteString(" ON CONFLICT (" + h.keyList() + ") DO UPDATE SET ")
	for i, c := range set {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(h.quote(c) + " = excluded." + h.quote(c))
	}
	return b.String()
}

// appendArgs appends one row's values (row n of the load) and the attempt's columns.
func (h *historyLoad) appendArgs(args []any, row []any, n int64) ([]any, error) {
	for i, v := range row {
		c := h.cols[i]
		// The same carriers as a stored result, whatever Rows the caller passes.
		v, err := canonical(h.kinds[i], v)
		if err != nil {
			return nil, fmt.Errorf("%w %s: row %d: column %q: %w", ErrHistorySpec, h.spec.Table, n, c.Name, err)
		}
		if v == nil {
			if h.isKey[i] {
				return nil, fmt.Errorf("%w %s: row %d: key column %q is NULL", ErrHistorySpec, h.spec.Table, n, c.Name)
			}
			args = append(args, nil)
			continue
		}
		switch c.Type {
		case source.TypeDecimal:
			s, _ := v.(string)
			if h.scale[i] >= 0 && historyDecimals(s) > h.scale[i] {
				return nil, fmt.Errorf("%w %s: row %d: column %q value %s has more than the %d decimals the table's column holds; it would be rounded", ErrHistorySpec, h.spec.Table, n, c.Name, s, h.scale[i])
			}
		case source.TypeDateTime:
			// MySQL refuses RFC 3339's "T...Z" in strict mode; the driver writes a
			// time.Time in its connection's zone, UTC unless the DSN says otherwise.
			if s, ok := v.(string); ok && h.driver == source.DialectMySQL {
				tm, err := time.Parse(time.RFC3339Nano, s)
				if err != nil {
					return nil, fmt.Errorf("%w %s: row %d: column %q: bad datetime %q", ErrHistorySpec, h.spec.Table, n, c.Name, s)
				}
				v = tm.UTC()
			}
		}
		args = append(args, v)
	}
	return append(args, h.fence.JobID, h.fence.Attempt), nil
}

// historyDecimals counts s's decimals without trailing zeros: "1.500" fits DECIMAL(_,1).
func historyDecimals(s string) int {
	dot := strings.IndexByte(s, '.')
	if dot < 0 {
		return 0
	}
	return len(strings.TrimRight(s[dot+1:], "0"))
}

// staleAttempt refuses the load when a later attempt of the same job has already
// loaded the table (the fence row holds jobID and attempt).
func (h *historyLoad) staleAttempt(jobID int64, attempt int) error {
	if jobID == h.fence.JobID && attempt > h.fence.Attempt {
		return fmt.Errorf("attempt %d of job %d already loaded it, not attempt %d: %w", attempt, jobID, h.fence.Attempt, queue.ErrLeaseLost)
	}
	return nil
}

// createRegistry creates rpt_history_tables, the list of the tables rpt created for
// history in this database.
func (h *historyLoad) createRegistry(ctx context.Context, db *sql.DB) error {
	stmt := `CREATE TABLE IF NOT EXISTS rpt_history_tables (
	table_name VARCHAR(64) NOT NULL PRIMARY KEY,
	job_id BIGINT NOT NULL,
	attempt INT NOT NULL,
	created_at DATETIME(6) NOT NULL
)`
	if h.driver == source.DialectSQLite {
		stmt = `CREATE TABLE IF NOT EXISTS rpt_history_tables (
	table_name TEXT NOT NULL PRIMARY KEY,
	job_id INTEGER NOT NULL,
	attempt INTEGER NOT NULL,
	created_at DATETIME NOT NULL
)`
	}
	_, err := db.ExecContext(ctx, stmt)
	return err
}

// register records the table as one of rpt's history tables.
func (h *historyLoad) register(ctx context.Context, db *sql.DB) error {
	verb := "INSERT OR IGNORE"
	if h.driver == source.DialectMySQL {
		verb = "INSERT IGNORE"
	}
	_, err := db.ExecContext(ctx, verb+" INTO rpt_history_tables (table_name, job_id, attempt, created_at) VALUES (?, ?, ?, "+h.nowSQL()+")",
		h.spec.Table, h.fence.JobID, h.fence.Attempt)
	return err
}

// checkOwned refuses an existing table that is neither one of rpt's history tables nor
// adopted by the definition. A table rpt loaded before the registry existed (rpt's
// bookkeeping columns, and a fence row an attempt wrote) is recorded now.
func (h *historyLoad) checkOwned(ctx context.Context, db *sql.DB, existing map[string]int) error {
	t := h.spec.Table
	var n int
	if err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM rpt_history_tables WHERE table_name = ?", t).Scan(&n); err != nil {
		return fmt.Errorf("read %s: %w", historyTablesTable, err)
	}
	if n > 0 || h.spec.Adopt {
		return nil
	}
	_, hasID := existing[historyColID]
	_, hasJob := existing[historyColJobID]
	_, hasAttempt := existing[historyColAttempt]
	_, hasLoaded := existing[historyColLoadedAt]
	if hasID && hasJob && hasAttempt && hasLoaded {
		var loads int
		if err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM rpt_history_fence WHERE table_name = ? AND job_id > 0", t).Scan(&loads); err != nil {
			return fmt.Errorf("read %s: %w", historyFenceTable, err)
		}
		if loads > 0 {
			if err := retryBusy(ctx, func() error { return h.register(ctx, db) }); err != nil {
				return fmt.Errorf("record history table %s in %s: %w", t, historyTablesTable, err)
			}
			return nil
		}
	}
	return fmt.Errorf("%w %s: store.table: the table exists and rpt did not create it for history (it is not in %s); "+
		"name a new table, or add adopt: true to store: to load into this one", ErrHistorySpec, t, historyTablesTable)
}

// preflight runs, before any schema change, the checks that can refuse the load up
// front: the fence (a later attempt of the job already loaded the table) and the
// first batch's values against the columns they will go into (a NULL key, a
// decimal with more places than an existing column holds).
func (h *historyLoad) preflight(ctx context.Context, db *sql.DB, existing map[string]int, first [][]any) error {
	t := h.spec.Table
	var jobID int64
	var attempt int
	err := db.QueryRowContext(ctx, "SELECT job_id, attempt FROM rpt_history_fence WHERE table_name = ?", t).Scan(&jobID, &attempt)
	switch {
	case errors.Is(err, sql.ErrNoRows):
	case err != nil:
		return fmt.Errorf("read fence row of %s: %w", t, err)
	default:
		if err := h.staleAttempt(jobID, attempt); err != nil {
			return fmt.Errorf("history table %s: %w", t, err)
		}
	}
	h.scale = make([]int, len(h.cols))
	for i, c := range h.cols {
		h.scale[i] = -1
		if c.Type != source.TypeDecimal {
			continue
		}
		if s, ok := existing[c.Name]; ok {
			h.scale[i] = s
		} else if h.driver == source.DialectMySQL {
			h.scale[i] = decimalScale(first, i)
		}
	}
	for i, row := range first {
		if _, err := h.appendArgs(nil, row, int64(i+1)); err != nil {
			return err
		}
	}
	return nil
}

// bookkeeping are the columns every load writes besides the result's, with the type
// they get when added to an adopted table.
func (h *historyLoad) bookkeeping() []struct{ name, ddl string } {
	if h.driver == source.DialectMySQL {
		return []struct{ name, ddl string }{{historyColJobID, "BIGINT NULL"}, {historyColAttempt, "INT NULL"}, {historyColLoadedAt, "DATETIME(6) NULL"}}
	}
	return []struct{ name, ddl string }{{historyColJobID, "INTEGER"}, {historyColAttempt, "INTEGER"}, {historyColLoadedAt, "DATETIME"}}
}
