package results

import (
	"context"
	"database/sql"
	"errors"
	"sort"
	"strings"
	"testing"

	"rpt/internal/source"
)

// columnNames lists a warehouse table's columns, sorted.
func columnNames(t *testing.T, w warehouse, table string) []string {
	t.Helper()
	h := &historyLoad{driver: w.driver, spec: HistorySpec{Table: table}}
	cols, err := h.tableColumns(context.Background(), w.db)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for c := range cols {
		out = append(out, c)
	}
	sort.Strings(out)
	return out
}

// TestHistoryRefusesForeignTable: a definition's store.table naming a table rpt did not
// create (an ETL table) is refused before anything is created, altered or deleted, in
// every mode; adopt: true lets it load there.
func TestHistoryRefusesForeignTable(t *testing.T) {
	t.Parallel()
	for _, w := range warehouses(t) {
		t.Run(w.driver, func(t *testing.T) {
			for _, stmt := range []string{"CREATE TABLE etl_orders (id INTEGER, amount INTEGER)", "INSERT INTO etl_orders VALUES (1, 10), (2, 20)"} {
				if _, err := w.db.Exec(stmt); err != nil {
					t.Fatal(err)
				}
			}
			cols := []source.Column{{Name: "id", Type: source.TypeInt}, {Name: "note", Type: source.TypeString}}
			data := [][]any{{int64(3), "x"}}
			for _, spec := range []HistorySpec{
				{Table: "etl_orders"},
				{Table: "etl_orders", Mode: HistoryReplace, ReplaceWhere: "1 = 1"},
				{Table: "etl_orders", Mode: HistoryUpsert, Key: []string{"id"}},
			} {
				_, err := WriteHistory(context.Background(), w.db, w.driver, spec, okFence(1, 1), &histRows{cols: cols, data: data})
				if !errors.Is(err, ErrHistorySpec) || !strings.Contains(err.Error(), "etl_orders: store.table: the table exists and rpt did not create it for history") {
					t.Errorf("mode %q into an ETL table: err = %v, want refused", spec.Mode, err)
				}
				sameStrings(t, "etl_orders columns", columnNames(t, w, "etl_orders"), []string{"amount", "id"})
				sameStrings(t, "etl_orders rows", dump(t, w.db, "SELECT id, amount FROM etl_orders ORDER BY id"), []string{"1|10", "2|20"})
			}

			// Adopted: loads, adding the result's and the bookkeeping columns, keeping its rows.
			load(t, w, HistorySpec{Table: "etl_orders", Adopt: true}, okFence(2, 1), cols, data)
			sameStrings(t, "adopted rows", dump(t, w.db, "SELECT id, amount, note, rpt_job_id FROM etl_orders ORDER BY id"),
				[]string{"1|10|NULL|NULL", "2|20|NULL|NULL", "3|NULL|x|2"})
			// Adopting does not make it rpt's: without adopt it is still refused.
			if _, err := WriteHistory(context.Background(), w.db, w.driver, HistorySpec{Table: "etl_orders"}, okFence(3, 1), &histRows{cols: cols, data: data}); !errors.Is(err, ErrHistorySpec) {
				t.Errorf("load without adopt after an adopted one: err = %v, want refused", err)
			}
		})
	}
}

// TestHistoryRegistry: a table rpt creates is recorded in rpt_history_tables; one rpt
// loaded before the registry existed is recognised (its fence row) and recorded; a
// look-alike with rpt's columns but never loaded by rpt is refused.
func TestHistoryRegistry(t *testing.T) {
	t.Parallel()
	for _, w := range warehouses(t) {
		t.Run(w.driver, func(t *testing.T) {
			cols := []source.Column{{Name: "a", Type: source.TypeInt}}
			load(t, w, HistorySpec{Table: "kept"}, okFence(1, 1), cols, [][]any{{int64(1)}})
			sameStrings(t, "registry", dump(t, w.db, "SELECT table_name, job_id FROM rpt_history_tables"), []string{"kept|1"})

			// As if created by an rpt without the registry.
			if _, err := w.db.Exec("DELETE FROM rpt_history_tables"); err != nil {
				t.Fatal(err)
			}
			load(t, w, HistorySpec{Table: "kept"}, okFence(2, 1), cols, [][]any{{int64(2)}})
			sameStrings(t, "registry after a legacy table's load", dump(t, w.db, "SELECT table_name, job_id FROM rpt_history_tables"), []string{"kept|2"})

			ddl := "CREATE TABLE lookalike (rpt_id INTEGER PRIMARY KEY, a INTEGER, rpt_job_id INTEGER, rpt_attempt INTEGER, rpt_loaded_at DATETIME)"
			if _, err := w.db.Exec(ddl); err != nil {
				t.Fatal(err)
			}
			_, err := WriteHistory(context.Background(), w.db, w.driver, HistorySpec{Table: "lookalike"}, okFence(3, 1), &histRows{cols: cols, data: [][]any{{int64(3)}}})
			if !errors.Is(err, ErrHistorySpec) {
				t.Errorf("load into a look-alike rpt never loaded: err = %v, want refused", err)
			}
		})
	}
}

// TestHistoryNoAlterBeforeRefusal: a load that its first rows already refuse (a decimal
// with more places than the table's column holds, a NULL upsert key) changes nothing of
// the table: no column or index is added before the refusal.
func TestHistoryNoAlterBeforeRefusal(t *testing.T) {
	t.Parallel()
	for _, w := range warehouses(t) {
		t.Run(w.driver, func(t *testing.T) {
			cols := []source.Column{{Name: "k", Type: source.TypeInt}, {Name: "amount", Type: source.TypeDecimal}}
			load(t, w, HistorySpec{Table: "money"}, okFence(1, 1), cols, [][]any{{int64(1), "1.50"}})
			before := columnNames(t, w, "money")
			indexesBefore := indexCount(t, w, "money")

			wider := append(append([]source.Column(nil), cols...), source.Column{Name: "extra", Type: source.TypeString})
			bad := []struct {
				spec HistorySpec
				row  []any
			}{
				{HistorySpec{Table: "money"}, []any{int64(2), "1.505", "x"}},                                   // 3 places into DECIMAL(_,2) on MySQL
				{HistorySpec{Table: "money", Mode: HistoryUpsert, Key: []string{"k"}}, []any{nil, "1.5", "x"}}, // NULL key
			}
			for i, b := range bad {
				if w.driver == source.DialectSQLite && i == 0 {
					continue // SQLite decimals are exact text: any scale fits
				}
				_, err := WriteHistory(context.Background(), w.db, w.driver, b.spec, okFence(int64(10+i), 1), &histRows{cols: wider, data: [][]any{b.row}})
				if !errors.Is(err, ErrHistorySpec) {
					t.Errorf("case %d: err = %v, want refused", i, err)
				}
				sameStrings(t, "columns after the refused load", columnNames(t, w, "money"), before)
				if n := indexCount(t, w, "money"); n != indexesBefore {
					t.Errorf("case %d: the table has %d indexes after the refused load, had %d", i, n, indexesBefore)
				}
			}
		})
	}
}

func indexCount(t *testing.T, w warehouse, table string) int {
	t.Helper()
	q := "SELECT COUNT(DISTINCT INDEX_NAME) FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ?"
	if w.driver == source.DialectSQLite {
		q = "SELECT COUNT(*) FROM pragma_index_list(?)"
	}
	var n int
	if err := w.db.QueryRow(q, table).Scan(&n); err != nil && !errors.Is(err, sql.ErrNoRows) {
		t.Fatal(err)
	}
	return n
}

// TestHistoryReplaceWhereIsACondition: a replace_where carrying a second statement or a
// comment is refused before anything is created or run, on both warehouses.
func TestHistoryReplaceWhereIsACondition(t *testing.T) {
	t.Parallel()
	for _, w := range warehouses(t) {
		t.Run(w.driver, func(t *testing.T) {
			if _, err := w.db.Exec("CREATE TABLE precious (id INTEGER)"); err != nil {
				t.Fatal(err)
			}
			cols := []source.Column{{Name: "a", Type: source.TypeInt}}
			for _, where := range []string{"1 = 1; DROP TABLE precious", "a = 1) OR (1 = 1", "a = 1 -- and the rest"} {
				spec := HistorySpec{Table: "replaced", Mode: HistoryReplace, ReplaceWhere: where}
				_, err := WriteHistory(context.Background(), w.db, w.driver, spec, okFence(1, 1), &histRows{cols: cols, data: [][]any{{int64(1)}}})
				if !errors.Is(err, ErrHistorySpec) || !errors.Is(err, source.ErrStatement) || !strings.Contains(err.Error(), "store.replace_where") {
					t.Errorf("replace_where %q: err = %v, want refused as not a condition", where, err)
				}
			}
			if got := columnNames(t, w, "replaced"); len(got) != 0 {
				t.Errorf("the history table was created: %v", got)
			}
			if got := columnNames(t, w, "precious"); len(got) != 1 {
				t.Errorf("precious has columns %v, want its one", got)
			}
		})
	}
}
