package plexws

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"time"

	"modernc.org/sqlite"

	"rpt/internal/source"
)

// A data source has a fixed shape: the account activity summary has no categories or
// year-to-date, the daily shift report is per shift. A definition's datasource.sql
// shapes it: the rows are loaded into a table named datasource in a SQLite file of
// their own (temporary, so a large answer stays on disk, not in memory), and the
// statement runs over it through the sqlite source, with the definition's parameters
// bound as in any report SQL. Decimal columns are stored as text and SQLite has no
// exact decimal type, so decimal_add(a, b), decimal_sub(a, b), decimal_sum(x) (an
// aggregate and window function) and decimal_scale(x, n) (trailing zeros only, never
// rounding), exact on math/big, are registered for the statements to use.

func init() {
	sqlite.MustRegisterDeterministicScalarFunction("decimal_add", 2, func(_ *sqlite.FunctionContext, args []driver.Value) (driver.Value, error) {
		return decimalOp(args[0], args[1], false)
	})
	sqlite.MustRegisterDeterministicScalarFunction("decimal_sub", 2, func(_ *sqlite.FunctionContext, args []driver.Value) (driver.Value, error) {
		return decimalOp(args[0], args[1], true)
	})
	sqlite.MustRegisterDeterministicScalarFunction("decimal_scale", 2, func(_ *sqlite.FunctionContext, args []driver.Value) (driver.Value, error) {
		return decimalScale(args[0], args[1])
	})
	sqlite.MustRegisterFunction("decimal_sum", &sqlite.FunctionImpl{
		NArgs:         1,
		Deterministic: true,
		MakeAggregate: func(sqlite.FunctionContext) (sqlite.AggregateFunction, error) { return &decimalSum{}, nil },
	})
}

// decimal is an exact decimal: unscaled / 10^scale.
type decimal struct {
	unscaled *big.Int
	scale    int
}

func parseDecimal(v driver.Value) (decimal, bool, error) {
	var s string
	switch x := v.(type) {
	case nil:
		return decimal{}, false, nil
	case string:
		s = x
	case []byte:
		s = string(x)
	case int64:
		return decimal{big.NewInt(x), 0}, true, nil
	case float64:
		return decimal{}, false, fmt.Errorf("decimal functions take exact text, not the float %v", x)
	default:
		return decimal{}, false, fmt.Errorf("decimal functions take text, not %T", v)
	}
	s = strings.TrimSpace(s)
	if s == "" {
		return decimal{}, false, nil
	}
	intPart, frac, _ := strings.Cut(s, ".")
	u, ok := new(big.Int).SetString(intPart+frac, 10)
	if !ok || strings.ContainsAny(frac, "+-") {
		return decimal{}, false, fmt.Errorf("%q is not a decimal number", s)
	}
	return decimal{u, len(frac)}, true, nil
}

func (d decimal) rescale(scale int) *big.Int {
	if scale == d.scale {
		return d.unscaled
	}
	m := new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(scale-d.scale)), nil)
	return new(big.Int).Mul(d.unscaled, m)
}

func (d decimal) String() string {
	neg := d.unscaled.Sign() < 0
	digits := new(big.Int).Abs(d.unscaled).String()
	if d.scale > 0 {
		if len(digits) <= d.scale {
			digits = strings.Repeat("0", d.scale-len(digits)+1) + digits
		}
		digits = digits[:len(digits)-d.scale] + "." + digits[len(digits)-d.scale:]
	}
	if neg {
		return "-" + digits
	}
	return digits
}

func add(a, b decimal, sub bool) decimal {
	scale := max(a.scale, b.scale)
	y := b.rescale(scale)
	if sub {
		y = new(big.Int).Neg(y)
	}
	return decimal{new(big.Int).Add(a.rescale(scale), y), scale}
}

// decimalOp is a + b or a - b; NULL when either is NULL, as SQL's + and - are.
func decimalOp(x, y driver.Value, sub bool) (driver.Value, error) {
	a, ok1, err := parseDecimal(x)
	if err != nil {
		return nil, err
	}
	b, ok2, err := parseDecimal(y)
	if err != nil {
		return nil, err
	}
	if !ok1 || !ok2 {
		return nil, nil
	}
	return add(a, b, sub).String(), nil
}

// decimalScale writes x with exactly n decimal places: trailing zeros are added or
// dropped, but a digit that is not zero is never dropped (that would be rounding,
// which money must not be): it is an error naming the value.
func decimalScale(x, nv driver.Value) (driver.Value, error) {
	d, ok, err := parseDecimal(x)
	if err != nil || !ok {
		return nil, err
	}
	n, isInt := nv.(int64)
	if !isInt || n < 0 || n > 38 {
		return nil, fmt.Errorf("decimal_scale: the scale must be 0 to 38, got %v", nv)
	}
	if int(n) >= d.scale {
		return decimal{d.rescale(int(n)), int(n)}.String(), nil
	}
	div := new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(d.scale)-n), nil)
	q, r := new(big.Int).QuoRem(d.unscaled, div, new(big.Int))
	if r.Sign() != 0 {
		return nil, fmt.Errorf("decimal_scale(%s, %d) would round: the value has more decimal places that are not zero", d, n)
	}
	return decimal{q, int(n)}.String(), nil
}

// decimalSum is SUM over decimal text: NULLs skipped, NULL for no values.
type decimalSum struct {
	sum decimal
	any bool
}

func (s *decimalSum) Step(_ *sqlite.FunctionContext, args []driver.Value) error {
	d, ok, err := parseDecimal(args[0])
	if err != nil || !ok {
		return err
	}
	if !s.any {
		s.sum, s.any = decimal{new(big.Int).Set(d.unscaled), d.scale}, true
		return nil
	}
	s.sum = add(s.sum, d, false)
	return nil
}

func (s *decimalSum) WindowInverse(_ *sqlite.FunctionContext, args []driver.Value) error {
	d, ok, err := parseDecimal(args[0])
	if err != nil || !ok {
		return err
	}
	s.sum = add(s.sum, d, true)
	return nil
}

func (s *decimalSum) WindowValue(*sqlite.FunctionContext) (driver.Value, error) {
	if !s.any {
		return nil, nil
	}
	return s.sum.String(), nil
}

func (s *decimalSum) Final(ctx *sqlite.FunctionContext) { /* value from WindowValue */ }

// sqliteType is the column type a value of t is stored with: decimals as TEXT, so that
// SQLite's numeric affinity never turns 12.30 into the float 12.3.
func sqliteType(t source.Type) string {
	switch t {
	case source.TypeInt, source.TypeBool:
		return "INTEGER"
	case source.TypeFloat:
		return "REAL"
	case source.TypeBytes:
		return "BLOB"
	}
	return "TEXT"
}

// shape loads rows into the table datasource of a temporary SQLite file and returns
// the result of ds.SQL over it. The file goes when the returned rows are closed.
func (c *Client) shape(ctx context.Context, ds source.DataSource, params map[string]any, rows *dsRows) (source.Rows, error) {
	dir, err := os.MkdirTemp("", "rpt-plexws-")
	if err != nil {
		_ = rows.Close()
		return nil, fmt.Errorf("source %q: shape data source %d: %w", c.name, ds.Key, err)
	}
	fail := func(err error) (source.Rows, error) {
		_ = rows.Close()
		_ = os.RemoveAll(dir)
		return nil, err
	}
	path := filepath.Join(dir, "datasource.db")
	if err := load(ctx, path, rows); err != nil {
		return fail(err)
	}
	if err := rows.Close(); err != nil {
		return fail(err)
	}
	// The lookups are read after Plex has answered, so that no read transaction on
	// another source stays open while the calls run.
	for _, lk := range ds.Lookups {
		if err := c.loadLookup(ctx, path, ds, lk, params); err != nil {
			return fail(fmt.Errorf("source %q: data source %d: lookup %s: %w", c.name, ds.Key, lk.Name, err))
		}
	}
	src, err := source.Open(ctx, c.name, source.Config{Driver: source.DialectSQLite, DSN: "sqlite:" + path})
	if err != nil {
		return fail(fmt.Errorf("source %q: shape data source %d: %w", c.name, ds.Key, err))
	}
	out, err := src.Query(ctx, ds.SQL, params)
	if err != nil {
		_ = src.Close()
		return fail(fmt.Errorf("data source %d: datasource.sql: %w", ds.Key, err))
	}
	return &shaped{Rows: out, src: src, dir: dir, readAt: rows.readAt, tries: rows.tries}, nil
}

// load writes every row into the table datasource.
func load(ctx context.Context, path string, rows *dsRows) error {
	return loadTable(ctx, path, "datasource", rows, func(int, []any) error { return nil },
		func(err error) error { return fmt.Errorf("shape: load row %d: %w", rows.total, err) })
}

// loadLookup reads lk from its source, read-only and with the parameters bound as in
// any report SQL, into the table lk.Name: at most lk.MaxRows rows and
// source.LookupMaxBytes of values, or the run fails (a cut dimension table would
// leave rows without their categories).
func (c *Client) loadLookup(ctx context.Context, path string, ds source.DataSource, lk source.Lookup, params map[string]any) error {
	if ds.Open == nil {
		return fmt.Errorf("%w: no way to open source %q", source.ErrRequest, lk.Source)
	}
	src, err := ds.Open(ctx, lk.Source)
	if err != nil {
		return fmt.Errorf("open source %q: %w", lk.Source, err)
	}
	if d := src.Driver(); d == source.DriverPlexWS {
		return fmt.Errorf("%w: source %q is %s; a lookup reads a SQL source (the warehouse)", source.ErrRequest, lk.Source, d)
	}
	rows, err := src.Query(ctx, lk.SQL, params)
	if err != nil {
		return err
	}
	defer rows.Close()
	size := 0
	over := func(n int, vals []any) error {
		if n > lk.MaxRows {
			return fmt.Errorf("%w: more than max_rows %d rows from source %q: raise max_rows or narrow its sql", source.ErrRequest, lk.MaxRows, lk.Source)
		}
		for _, v := range vals {
			switch x := v.(type) {
			case string:
				size += len(x)
			case []byte:
				size += len(x)
			default:
				size += 8
			}
		}
		if size > source.LookupMaxBytes {
			return fmt.Errorf("%w: more than %d MiB of values from source %q: narrow its sql", source.ErrRequest, source.LookupMaxBytes>>20, lk.Source)
		}
		return nil
	}
	return loadTable(ctx, path, lk.Name, rows, over, func(err error) error { return err })
}

// loadTable creates the table name with rows' columns in the SQLite file at path and
// loads every row into it, in one transaction; check sees each row (its number, from
// 1) before it is written, and wrap the error of a write.
func loadTable(ctx context.Context, path, name string, rows source.Rows, check func(n int, vals []any) error, wrap func(error) error) error {
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=journal_mode(OFF)&_pragma=synchronous(OFF)")
	if err != nil {
		return err
	}
	defer db.Close()
	cols := rows.Columns()
	defs := make([]string, len(cols))
	marks := make([]string, len(cols))
	for i, col := range cols {
		defs[i] = quoteIdent(col.Name) + " " + sqliteType(col.Type)
		marks[i] = "?"
	}
	if _, err := db.ExecContext(ctx, "CREATE TABLE "+quoteIdent(name)+" ("+strings.Join(defs, ", ")+")"); err != nil {
		return fmt.Errorf("shape: create the table %s: %w", name, err)
	}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback() }()
	st, err := tx.PrepareContext(ctx, "INSERT INTO "+quoteIdent(name)+" VALUES ("+strings.Join(marks, ", ")+")")
	if err != nil {
		return err
	}
	defer st.Close()
	n := 0
	for rows.Next() {
		n++
		vals := rows.Values()
		if err := check(n, vals); err != nil {
			return err
		}
		if _, err := st.ExecContext(ctx, vals...); err != nil {
			return wrap(err)
		}
	}
	if err := rows.Err(); err != nil {
		return err
	}
	return tx.Commit()
}

func quoteIdent(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }

// shaped is the result of a datasource.sql statement; closing it removes its file.
type shaped struct {
	source.Rows
	src    source.Source
	dir    string
	readAt time.Time
	tries  int
}

func (s *shaped) Close() error {
	err := s.Rows.Close()
	if cerr := s.src.Close(); err == nil {
		err = cerr
	}
	if rerr := os.RemoveAll(s.dir); err == nil {
		err = rerr
	}
	return err
}
