package source

import (
	"context"
	"database/sql"
	"fmt"
	"unsafe"
)

// maxPeekRows bounds how many rows a query with undeclared column types reads
// ahead to find a non-NULL value for each; a column still all NULL after that
// is a string column.
const maxPeekRows = 256

// sqlRows adapts *sql.Rows to Rows: each driver value is scanned into an *any
// (so decimals stay the driver's text, never a float) and converted to the
// carrier of its column's Type.
type sqlRows struct {
	ctx     context.Context
	rows    *sql.Rows
	cols    []Column
	details []ColumnDetail
	guid    []bool // SQL Server uniqueidentifier: bytes shown as text
	raw     []any
	holders []any
	vals    []any
	peeked  [][]any // rows read ahead while inferring types, served first
	row     int64
	err     error
	onClose func() error
	abort   func() // stops the statement on the server when rows are closed before their end
	onEOF   func() // runs once when the result has been read to its end (readonly.go)
	closed  bool
	eof     bool
}

// newRows takes ownership of rows (and onClose, which runs after rows.Close).
func newRows(ctx context.Context, driver string, rows *sql.Rows, onClose func() error) (*sqlRows, error) {
	cts, err := rows.ColumnTypes()
	if err != nil {
		_ = rows.Close()
		if onClose != nil {
			_ = onClose()
		}
		return nil, fmt.Errorf("column types: %w", err)
	}
	r := &sqlRows{
		ctx:     ctx,
		rows:    rows,
		cols:    make([]Column, len(cts)),
		details: make([]ColumnDetail, len(cts)),
		guid:    make([]bool, len(cts)),
		raw:     make([]any, len(cts)),
		holders: make([]any, len(cts)),
		vals:    make([]any, len(cts)),
		onClose: onClose,
	}
	unknown := 0
	for i, ct := range cts {
		r.holders[i] = &r.raw[i]
		t, ok := ColumnType(driver, ct.DatabaseTypeName())
		if !ok {
			unknown++
		}
		r.cols[i] = Column{Name: ct.Name(), Type: t}
		r.details[i] = detailOf(ct)
		r.guid[i] = driver == DialectSQLServer && ct.DatabaseTypeName() == "UNIQUEIDENTIFIER"
	}
	if unknown > 0 {
		r.inferTypes()
	}
	return r, nil
}

// inferTypes reads ahead until every untyped column has shown a non-NULL
// value, keeping the rows read for Next.
func (r *sqlRows) inferTypes() {
	for len(r.peeked) < maxPeekRows && r.untyped() {
		if !r.rows.Next() {
			r.eof = true
			break
		}
		if err := r.rows.Scan(r.holders...); err != nil {
			r.err = fmt.Errorf("scan: %w", err)
			break
		}
		row := make([]any, len(r.raw))
		copy(row, r.raw)
		r.peeked = append(r.peeked, row)
		for i, v := range row {
			if r.cols[i].Type == "" && v != nil {
				if t, ok := inferType(v); ok {
					r.cols[i].Type = t
				}
			}
		}
	}
	for i := range r.cols {
		if r.cols[i].Type == "" {
			r.cols[i].Type = TypeString
		}
	}
}

func (r *sqlRows) untyped() bool {
	for _, c := range r.cols {
		if c.Type == "" {
			return true
		}
	}
	return false
}

func (r *sqlRows) Columns() []Column { return r.cols }

// ColumnDetails says what the driver reported of each column (Detailed).
func (r *sqlRows) ColumnDetails() []ColumnDetail { return r.details }

// ColumnDetail is what a SQL driver says of a result column beyond its portable Type:
// its database type name, the precision and scale of a decimal (the fractional-second
// digits of a datetime in Scale), and a string's length in bytes. An ETL that adds a
// column to its target reads it to give the column the source's exact type.
type ColumnDetail struct {
	DBType           string // the driver's name, e.g. DECIMAL, VARCHAR, UNSIGNED BIGINT
	Precision, Scale int64
	HasPrecision     bool
	Length           int64
	HasLength        bool
}

// Detailed is Rows that say more of their columns than Columns (SQL sources).
type Detailed interface {
	ColumnDetails() []ColumnDetail
}

func detailOf(ct *sql.ColumnType) ColumnDetail {
	d := ColumnDetail{DBType: ct.DatabaseTypeName()}
	d.Precision, d.Scale, d.HasPrecision = ct.DecimalSize()
	d.Length, d.HasLength = ct.Length()
	return d
}

func (r *sqlRows) Values() []any { return r.vals }

func (r *sqlRows) Next() bool {
	if r.err != nil || r.closed {
		return false
	}
	var raw []any
	switch {
	case len(r.peeked) > 0:
		raw = r.peeked[0]
		r.peeked[0] = nil
		r.peeked = r.peeked[1:]
	case r.eof:
		return false
	default:
		if !r.rows.Next() {
			r.eof = true
			if r.onEOF != nil && r.rows.Err() == nil {
				// Closed first: a procedure call's further result sets are read off the
				// connection before anything else is sent on it.
				if err := r.rows.Close(); err != nil {
					r.err = err
					return false
				}
				r.onEOF()
			}
			return false
		}
		if err := r.rows.Scan(r.holders...); err != nil {
			r.err = fmt.Errorf("scan row %d: %w", r.row+1, err)
			return false
		}
		raw = r.raw
	}
	r.row++
	for i, v := range raw {
		if b, ok := v.([]byte); ok {
			switch t := r.cols[i].Type; {
			case r.guid[i] && len(b) == 16:
				v = guidString(b)
			case t != TypeBytes && t != TypeBool:
				// Text of another type, read as the string it is without a copy: Scan
				// into *any hands over a copy of the driver's bytes that the caller
				// owns (database/sql's documented contract), and nothing writes to it
				// again; the next row is scanned into new copies.
				v = unsafe.String(unsafe.SliceData(b), len(b))
			}
		}
		c, err := Convert(r.cols[i].Type, v)
		if err != nil {
			r.err = fmt.Errorf("row %d column %q: %w", r.row, r.cols[i].Name, err)
			return false
		}
		r.vals[i] = c
	}
	return true
}

// Err reports the first error; a query stopped because ctx ended reports
// ctx's error (drivers variously say "interrupted" or "invalid connection").
func (r *sqlRows) Err() error {
	err := r.err
	if err == nil {
		err = r.rows.Err()
	}
	if err == nil {
		return nil
	}
	if r.ctx.Err() == nil {
		return connLost(err)
	}
	return ctxError(r.ctx, err)
}

func (r *sqlRows) Close() error {
	if r.closed {
		return nil
	}
	r.closed = true
	r.peeked = nil
	aborted := false
	if r.abort != nil && !r.finished() {
		r.abort()
		aborted = true
	}
	err := r.rows.Close()
	if aborted {
		err = nil // the interruption we caused ("Query execution was interrupted")
	}
	if r.onClose != nil {
		if cerr := r.onClose(); err == nil {
			err = cerr
		}
	}
	return err
}

// finished reports whether the result was read to its end without error, so
// there is no query left to cancel.
func (r *sqlRows) finished() bool {
	return r.eof && r.err == nil && r.rows.Err() == nil
}

// ctxError returns ctx's error (errors.Is context.Canceled or DeadlineExceeded)
// with the driver's own error kept in the text.
func ctxError(ctx context.Context, err error) error {
	cerr := ctx.Err()
	if cerr == nil {
		return err
	}
	if err == nil || err == cerr {
		return cerr
	}
	return fmt.Errorf("%w (%v)", cerr, err)
}
