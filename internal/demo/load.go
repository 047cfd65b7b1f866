package demo

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"
	_ "modernc.org/sqlite" // driver "sqlite"

	"rpt/internal/dsn"
)

// batchRows is the number of rows per multi-row INSERT: large enough that round trips
// and statement overhead vanish, small enough for every driver's placeholder limit.
const batchRows = 500

// Stats says what a Load wrote.
type Stats struct {
	PCNs     int
	Accounts int // over all PCNs
	Periods  int // per PCN
	Balances int // over all PCNs

	Plants       int // PCNs with production data
	WorkCenters  int // over all plants
	LogEntries   int // work-center log rows over all plants
	ShiftReports int // daily shift report rows over all plants

	Elapsed time.Duration
}

// Load writes the data set of opts into the database named by a "sqlite:PATH" or
// "mysql://user:pass@host:port/db" DSN: the accounting tables for Options.PCNs, both
// the Plex-side views (Tables) and their warehouse shape (WarehouseTables, filled from
// the former as the ETL does), and the production tables for Options.Plants. It
// creates the tables when absent and replaces the rows of the PCNs and plants it loads
// (and the category types) in one transaction, so a failed or cancelled load leaves
// the previous data as it was; other PCNs are kept. A database that has the demo's
// table names but was not made by a demo load (no MarkerTable) is refused with
// ErrNotDemo unless opts.Force.
func Load(ctx context.Context, dsnStr string, opts Options) (Stats, error) {
	start := time.Now()
	o, err := opts.normalize()
	if err != nil {
		return Stats{}, err
	}
	scheme, err := dsn.Scheme(dsnStr)
	if err != nil {
		return Stats{}, fmt.Errorf("demo load: %w", err)
	}
	var db *sql.DB
	switch scheme {
	case "sqlite":
		db, err = openSQLite(dsnStr)
	case "mysql":
		db, err = openMySQL(dsnStr)
	default:
		return Stats{}, fmt.Errorf("demo load: %w: %s databases are not supported; want sqlite:PATH or mysql://", dsn.ErrInvalid, scheme)
	}
	if err != nil {
		return Stats{}, fmt.Errorf("demo load: %w", err)
	}
	defer db.Close()

	st, err := load(ctx, db, scheme, o)
	if err != nil {
		return Stats{}, fmt.Errorf("demo load into %s: %w", dsn.Redact(dsnStr), err)
	}
	st.Elapsed = time.Since(start)
	return st, nil
}

func openSQLite(s string) (*sql.DB, error) {
	path, err := dsn.SQLitePath(s)
	if err != nil {
		return nil, err
	}
	// IMMEDIATE takes the write lock at BEGIN, so a concurrent writer waits on
	// busy_timeout instead of failing the load half way.
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_txlock=immediate")
	if err != nil {
		return nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}
	db.SetMaxOpenConns(1)
	return db, nil
}

func openMySQL(s string) (*sql.DB, error) {
	cfg, err := dsn.MySQL(s)
	if err != nil {
		return nil, err
	}
	if cfg.DBName == "" {
		return nil, fmt.Errorf("%w: %q names no database", dsn.ErrInvalid, dsn.Redact(s))
	}
	connector, err := mysql.NewConnector(cfg)
	if err != nil {
		return nil, fmt.Errorf("mysql %s: %w", dsn.Redact(s), err)
	}
	db := sql.OpenDB(connector)
	db.SetMaxOpenConns(2)
	return db, nil
}

// MarkerTable is the table a demo load creates first, before any data table: a
// database that has the demo's table names without it was not made by rpt (a real Plex
// replica, a warehouse), and a load that deletes and replaces PCN rows there would
// destroy real data, so Load refuses it unless Options.Force.
const MarkerTable = "rpt_demo_marker"

// ErrNotDemo is a database whose tables rpt's demo load did not create. It is also
// ErrInvalid (exit 2: the command was pointed at the wrong database).
var ErrNotDemo error = notDemo{}

type notDemo struct{}

func (notDemo) Error() string        { return "not a demo database" }
func (notDemo) Is(target error) bool { return target == ErrInvalid }

// checkDemo refuses a database that holds any of the demo's tables but no marker.
func checkDemo(ctx context.Context, db *sql.DB, driver string, force bool) error {
	names := []string{MarkerTable}
	for _, t := range slices.Concat(Tables(), WarehouseTables(), ProductionTables()) {
		names = append(names, t.Name)
	}
	args := make([]any, len(names))
	for i, n := range names {
		args[i] = n
	}
	q := "SELECT name FROM sqlite_master WHERE type IN ('table', 'view') AND name IN " + placeholders(len(names))
	if driver == "mysql" {
		q = "SELECT table_name FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name IN " + placeholders(len(names))
	}
	rows, err := db.QueryContext(ctx, q, args...)
	if err != nil {
		return fmt.Errorf("look for existing tables: %w", err)
	}
	defer rows.Close()
	var found []string
	marker := false
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			return fmt.Errorf("look for existing tables: %w", err)
		}
		if strings.EqualFold(n, MarkerTable) {
			marker = true
		} else {
			found = append(found, n)
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("look for existing tables: %w", err)
	}
	if marker || len(found) == 0 || force {
		return nil
	}
	slices.Sort(found)
	shown := found
	if len(shown) > 3 {
		shown = append(slices.Clone(shown[:3]), fmt.Sprintf("and %d more", len(found)-3))
	}
	return fmt.Errorf("%w: it has tables named like the demo's (%s) that no demo load created (no %s table); "+
		"loading would delete and replace their rows for the PCNs loaded; give --force if this database is yours to overwrite",
		ErrNotDemo, strings.Join(shown, ", "), MarkerTable)
}

func load(ctx context.Context, db *sql.DB, driver string, o Options) (Stats, error) {
	if err := db.PingContext(ctx); err != nil {
		return Stats{}, fmt.Errorf("connect: %w", err)
	}
	if err := checkDemo(ctx, db, driver, o.Force); err != nil {
		return Stats{}, err
	}
	// The marker first: if a later CREATE fails, the next load still knows the
	// database as rpt's.
	if _, err := db.ExecContext(ctx, "CREATE TABLE IF NOT EXISTS "+MarkerTable+" (id INT NOT NULL PRIMARY KEY, note VARCHAR(200) NOT NULL)"); err != nil {
		return Stats{}, fmt.Errorf("create table %s: %w", MarkerTable, err)
	}
	if _, err := db.ExecContext(ctx, "DELETE FROM "+MarkerTable); err != nil {
		return Stats{}, fmt.Errorf("mark demo database: %w", err)
	}
	if _, err := db.ExecContext(ctx, "INSERT INTO "+MarkerTable+" (id, note) VALUES (1, ?)", "made by rpt demo load: its tables hold generated data"); err != nil {
		return Stats{}, fmt.Errorf("mark demo database: %w", err)
	}
	// DDL before the transaction: MySQL commits implicitly on CREATE TABLE.
	for _, t := range slices.Concat(Tables(), o.warehouseTables(), ProductionTables()) {
		for _, stmt := range createSQL(t, driver) {
			if _, err := db.ExecContext(ctx, stmt); err != nil {
				return Stats{}, fmt.Errorf("create table %s: %w", t.Name, err)
			}
		}
	}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return Stats{}, fmt.Errorf("begin: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // after Commit it is a no-op

	if err := deleteRows(ctx, tx, o); err != nil {
		return Stats{}, err
	}
	ins := &inserter{ctx: ctx, tx: tx, driver: driver, stmts: map[string]*sql.Stmt{}}
	defer ins.close()
	var st Stats
	err = Generate(o, func(t Table, row []any) error {
		switch t.Name {
		case TableAccount.Name:
			st.Accounts++
		case TableBalance.Name:
			st.Balances++
		}
		return ins.add(t, row)
	})
	if err == nil {
		err = ins.flush()
	}
	if err == nil && o.Shape != ShapePlex {
		err = copyWarehouse(ctx, tx, driver, o.PCNs)
	}
	if err == nil && o.Shape == ShapeWarehouse {
		// The warehouse shape is copied from the Plex side in the database; the Plex
		// side's rows then go (its tables stay, empty for these PCNs).
		err = deletePlexRows(ctx, tx, o)
	}
	if err == nil {
		err = GenerateProduction(o, func(t Table, row []any) error {
			switch t.Name {
			case TableWorkcenter.Name:
				st.WorkCenters++
			case TableWorkcenterLog.Name:
				st.LogEntries++
			case TableShiftReport.Name:
				st.ShiftReports++
			}
			return ins.add(t, row)
		})
	}
	if err == nil {
		err = ins.flush()
	}
	if err != nil {
		return Stats{}, err
	}
	if err := tx.Commit(); err != nil {
		return Stats{}, fmt.Errorf("commit: %w", err)
	}
	if driver == "mysql" {
		// InnoDB's statistics of a table filled in one transaction lag behind (they
		// are recomputed in the background); the trial balance's plan depends on
		// them, so refresh them now, as the ETL should after a load.
		for _, t := range o.warehouseTables() {
			if _, err := db.ExecContext(ctx, "ANALYZE TABLE "+t.Name); err != nil {
				return Stats{}, fmt.Errorf("analyze %s: %w", t.Name, err)
			}
		}
	}
	st.PCNs = len(o.PCNs)
	st.Periods = o.Periods
	if o.logDays() > 0 {
		st.Plants = len(o.Plants)
	}
	return st, nil
}

// deleteRows removes what the load replaces: the PCNs' rows (Plex-side and warehouse)
// and the category types.
func deleteRows(ctx context.Context, tx *sql.Tx, o Options) error {
	pcns := make([]any, len(o.PCNs))
	for i, p := range o.PCNs {
		pcns[i] = int64(p)
	}
	in := placeholders(len(pcns))
	for _, t := range slices.Concat(Tables(), o.warehouseTables()) {
		var err error
		if t.PerPCN {
			_, err = tx.ExecContext(ctx, "DELETE FROM "+t.Name+" WHERE pcn IN "+in, pcns...)
		} else {
			types := CategoryTypes()
			args := make([]any, len(types))
			for i, ct := range types {
				args[i] = ct
			}
			_, err = tx.ExecContext(ctx, "DELETE FROM "+t.Name+" WHERE category_type IN "+placeholders(len(args)), args...)
		}
		if err != nil {
			return fmt.Errorf("delete old rows of %s: %w", t.Name, err)
		}
	}
	if o.logDays() == 0 {
		return nil // plants keep their production data when none is loaded
	}
	plantArgs := make([]any, len(o.Plants))
	for i, p := range o.Plants {
		plantArgs[i] = int64(p)
	}
	for _, t := range ProductionTables() {
		if _, err := tx.ExecContext(ctx, "DELETE FROM "+t.Name+" WHERE "+t.pcnColumn()+" IN "+placeholders(len(plantArgs)), plantArgs...); err != nil {
			return fmt.Errorf("delete old rows of %s: %w", t.Name, err)
		}
	}
	return nil
}

// deletePlexRows removes the PCNs' rows of the Plex-side accounting tables (the
// warehouse shape keeps only the warehouse's).
func deletePlexRows(ctx context.Context, tx *sql.Tx, o Options) error {
	pcns := make([]any, len(o.PCNs))
	for i, p := range o.PCNs {
		pcns[i] = int64(p)
	}
	for _, t := range Tables() {
		if !t.PerPCN {
			continue
		}
		if _, err := tx.ExecContext(ctx, "DELETE FROM "+t.Name+" WHERE pcn IN "+placeholders(len(pcns)), pcns...); err != nil {
			return fmt.Errorf("delete Plex-side rows of %s: %w", t.Name, err)
		}
	}
	return nil
}

// warehouseTables are the warehouse accounting tables the load fills: none for the
// Plex shape.
func (o Options) warehouseTables() []Table {
	if o.Shape == ShapePlex {
		return nil
	}
	return WarehouseTables()
}

func placeholders(n int) string {
	return "(" + strings.TrimSuffix(strings.Repeat("?, ", n), ", ") + ")"
}

// inserter batches rows per table into multi-row INSERTs; full batches reuse one
// prepared statement per table.
type inserter struct {
	ctx    context.Context
	tx     *sql.Tx
	driver string
	stmts  map[string]*sql.Stmt
	table  Table
	args   []any
	rows   int
}

func (ins *inserter) add(t Table, row []any) error {
	if ins.rows > 0 && t.Name != ins.table.Name {
		if err := ins.flush(); err != nil {
			return err
		}
	}
	ins.table = t
	for _, v := range row {
		switch x := v.(type) {
		case Cents:
			if ins.driver == "sqlite" {
				v = int64(x)
			} else {
				v = x.String() // DECIMAL from an exact string, never a float
			}
		case Hours:
			if ins.driver == "sqlite" {
				v = int64(x)
			} else {
				v = x.String()
			}
		}
		ins.args = append(ins.args, v)
	}
	ins.rows++
	if ins.rows == batchRows {
		return ins.flush()
	}
	return nil
}

func (ins *inserter) flush() error {
	if ins.rows == 0 {
		return nil
	}
	t := ins.table
	var err error
	if ins.rows == batchRows {
		stmt, ok := ins.stmts[t.Name]
		if !ok {
			stmt, err = ins.tx.PrepareContext(ins.ctx, insertSQL(t, ins.driver, batchRows))
			if err != nil {
				return fmt.Errorf("prepare insert into %s: %w", t.Name, err)
			}
			ins.stmts[t.Name] = stmt
		}
		_, err = stmt.ExecContext(ins.ctx, ins.args...)
	} else {
		_, err = ins.tx.ExecContext(ins.ctx, insertSQL(t, ins.driver, ins.rows), ins.args...)
	}
	if err != nil {
		return fmt.Errorf("insert into %s: %w", t.Name, err)
	}
	ins.args = ins.args[:0]
	ins.rows = 0
	return nil
}

func (ins *inserter) close() {
	for _, s := range ins.stmts {
		s.Close()
	}
}

func insertSQL(t Table, driver string, rows int) string {
	names := make([]string, len(t.Columns))
	for i, c := range t.Columns {
		names[i] = c.NameFor(driver)
	}
	one := placeholders(len(t.Columns))
	var b strings.Builder
	b.Grow(len(t.Name) + 64 + rows*(len(one)+2))
	b.WriteString("INSERT INTO ")
	b.WriteString(t.Name)
	b.WriteString(" (")
	b.WriteString(strings.Join(names, ", "))
	b.WriteString(") VALUES ")
	for i := range rows {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(one)
	}
	return b.String()
}

// Loaded reports whether the database of dsnStr holds demo balances up to the period
// before now's month and a work-center log, so the quickstart can skip loading again.
func Loaded(ctx context.Context, dsnStr string, now time.Time) bool {
	var db *sql.DB
	var err error
	switch scheme, _ := dsn.Scheme(dsnStr); scheme {
	case "sqlite":
		path, perr := dsn.SQLitePath(dsnStr)
		if perr != nil {
			return false
		}
		if _, serr := os.Stat(path); serr != nil {
			return false
		}
		db, err = openSQLite(dsnStr)
	case "mysql":
		db, err = openMySQL(dsnStr)
	default:
		return false
	}
	if err != nil {
		return false
	}
	defer db.Close()
	last := now.UTC().AddDate(0, 0, -now.UTC().Day()+1).AddDate(0, -1, 0)
	// A demo database from before the warehouse tables existed is loaded again.
	for _, t := range []Table{TableBalance, TableWarehouseBalance} {
		var latest sql.NullInt64
		if err := db.QueryRowContext(ctx, "SELECT MAX(period) FROM "+t.Name).Scan(&latest); err != nil {
			return false
		}
		if !latest.Valid || latest.Int64 < int64(last.Year()*100+int(last.Month())) {
			return false
		}
	}
	// A demo database from before the production tables existed is loaded again.
	var logs int
	err = db.QueryRowContext(ctx, "SELECT COUNT(*) FROM (SELECT 1 FROM "+TableWorkcenterLog.Name+" LIMIT 1) t").Scan(&logs)
	return err == nil && logs > 0
}
