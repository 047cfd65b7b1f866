package source

import (
	"errors"
	"fmt"
	"sort"
	"strings"
)

// ErrConvert marks a value that does not fit the type a definition's columns: gives
// its column, or an override naming no column: retrying will not help.
var ErrConvert = errors.New("column type")

// Retype wraps rows so that the columns named in types report that type and their
// values are converted to it (see applyColumnTypes). A value that does not convert ends
// the stream with an error wrapping ErrConvert that names the row and the column.
func Retype(rows Rows, types map[string]Type) (Rows, error) {
	cols, convert, err := applyColumnTypes(rows.Columns(), types)
	if err != nil {
		return nil, err
	}
	if len(types) == 0 {
		return rows, nil
	}
	return &retyped{Rows: rows, cols: cols, convert: convert, row: make([]any, len(cols))}, nil
}

type retyped struct {
	Rows
	cols    []Column
	convert []Type // the type each column's values are converted to; "" leaves them
	row     []any
	n       int64
	err     error
}

func (r *retyped) Columns() []Column { return r.cols }

// ColumnDetails passes the source's column details through (nil when it has none); a
// column whose type was overridden keeps the detail of what the source returned.
func (r *retyped) ColumnDetails() []ColumnDetail {
	if d, ok := r.Rows.(Detailed); ok {
		return d.ColumnDetails()
	}
	return nil
}

func (r *retyped) Values() []any { return r.row }

func (r *retyped) Next() bool {
	if r.err != nil || !r.Rows.Next() {
		return false
	}
	r.n++
	copy(r.row, r.Rows.Values())
	for i, t := range r.convert {
		if t == "" || r.row[i] == nil {
			continue
		}
		v, err := Convert(t, r.row[i])
		if err != nil {
			r.err = fmt.Errorf("row %d column %q: %w: %w", r.n, r.cols[i].Name, err, ErrConvert)
			return false
		}
		r.row[i] = v
	}
	return true
}

func (r *retyped) Err() error {
	if r.err != nil {
		return r.err
	}
	return r.Rows.Err()
}

// applyColumnTypes applies a definition's `columns:` type overrides to the columns the
// source reports. Sources can't always know a column's type (SQLite types values, not
// expressions), so the definition says it, and each value is converted to match: the
// result store keeps types and values consistent. convert[i] is "" for columns without
// an override.
func applyColumnTypes(cols []Column, overrides map[string]Type) ([]Column, []Type, error) {
	out := make([]Column, len(cols))
	copy(out, cols)
	convert := make([]Type, len(cols))
	if len(overrides) == 0 {
		return out, convert, nil
	}
	index := make(map[string]int, len(cols))
	for i, c := range cols {
		index[c.Name] = i
	}
	names := make([]string, 0, len(overrides))
	for name := range overrides {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		typ := overrides[name]
		i, ok := index[name]
		if !ok {
			return nil, nil, fmt.Errorf("columns: %q is not a column of the result (columns: %s): %w",
				name, columnNames(cols), ErrConvert)
		}
		if !knownType(typ) {
			return nil, nil, fmt.Errorf("columns: %q: unknown type %q: %w", name, typ, ErrConvert)
		}
		out[i].Type = typ
		convert[i] = typ
	}
	return out, convert, nil
}

func columnNames(cols []Column) string {
	names := make([]string, len(cols))
	for i, c := range cols {
		names[i] = c.Name
	}
	return strings.Join(names, ", ")
}
