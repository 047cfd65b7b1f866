package source

import (
	"slices"
	"strings"
	"testing"
)

func TestApplyColumnTypes(t *testing.T) {
	t.Parallel()
	cols := []Column{{Name: "period", Type: TypeString}, {Name: "amount", Type: TypeInt}, {Name: "at", Type: TypeString}}
	tests := []struct {
		name      string
		overrides map[string]Type
		row       []any
		want      []any
		wantTypes []Type
		err       string
	}{
		{name: "none", row: []any{"x", int64(1), "y"}, want: []any{"x", int64(1), "y"},
			wantTypes: []Type{TypeString, TypeInt, TypeString}},
		{name: "convert", overrides: map[string]Type{"period": TypeInt, "amount": TypeDecimal, "at": TypeDateTime},
			row:       []any{"202401", int64(-1250), "2024-01-02 03:04:05"},
			want:      []any{int64(202401), "-1250", "2024-01-02T03:04:05Z"},
			wantTypes: []Type{TypeInt, TypeDecimal, TypeDateTime}},
		{name: "date from datetime text", overrides: map[string]Type{"at": TypeDate},
			row: []any{"x", int64(1), "2024-01-02T00:00:00Z"}, want: []any{"x", int64(1), "2024-01-02"},
			wantTypes: []Type{TypeString, TypeInt, TypeDate}},
		{name: "unknown column", overrides: map[string]Type{"nope": TypeInt}, err: `"nope" is not a column`},
		{name: "bad value", overrides: map[string]Type{"period": TypeInt}, row: []any{"2024-01", int64(1), "y"},
			err: "cannot convert string value 2024-01 to int"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, convert, err := applyColumnTypes(cols, tt.overrides)
			row := slices.Clone(tt.row)
			if err == nil {
				for i, typ := range convert {
					if typ != "" && row[i] != nil {
						row[i], err = Convert(typ, row[i])
						if err != nil {
							break
						}
					}
				}
			}
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v, want one containing %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for i, c := range got {
				if c.Type != tt.wantTypes[i] {
					t.Errorf("column %s type %s, want %s", c.Name, c.Type, tt.wantTypes[i])
				}
			}
			if !slices.Equal(row, tt.want) {
				t.Errorf("row %v, want %v", row, tt.want)
			}
			if cols[0].Type != TypeString {
				t.Errorf("input columns were modified")
			}
		})
	}
}

func TestRetype(t *testing.T) {
	t.Parallel()
	cols := []Column{{Name: "amount", Type: TypeString}, {Name: "n", Type: TypeInt}}
	rows := &sliceRows{cols: cols, rows: [][]any{{"12.30", int64(1)}, {nil, int64(2)}, {"x", int64(3)}}}
	r, err := Retype(rows, map[string]Type{"amount": TypeDecimal})
	if err != nil {
		t.Fatal(err)
	}
	if r.Columns()[0].Type != TypeDecimal {
		t.Fatalf("columns %v", r.Columns())
	}
	var got [][]any
	for r.Next() {
		got = append(got, slices.Clone(r.Values()))
	}
	if len(got) != 2 || got[0][0] != "12.30" || got[1][0] != nil {
		t.Fatalf("rows %v", got)
	}
	if err := r.Err(); err == nil || !strings.Contains(err.Error(), `row 3 column "amount"`) {
		t.Fatalf("Err() = %v, want row 3 column amount", err)
	}
	if _, err := Retype(rows, map[string]Type{"nope": TypeInt}); err == nil {
		t.Fatal("an override naming no column was accepted")
	}
}

type sliceRows struct {
	cols []Column
	rows [][]any
	i    int
}

func (s *sliceRows) Columns() []Column { return s.cols }
func (s *sliceRows) Next() bool        { s.i++; return s.i <= len(s.rows) }
func (s *sliceRows) Values() []any     { return s.rows[s.i-1] }
func (s *sliceRows) Err() error        { return nil }
func (s *sliceRows) Close() error      { return nil }
