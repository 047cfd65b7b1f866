package plexws

import (
	"context"
	"database/sql"
	"strings"
	"testing"
)

func TestDecimalFunctions(t *testing.T) {
	t.Parallel()
	db, err := sql.Open("sqlite", ":memory:")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	for _, tc := range []struct{ q, want string }{
		{"SELECT decimal_add('0.10', '0.20')", "0.30"},
		{"SELECT decimal_sub('12345678901234567.89', '0.90')", "12345678901234566.99"},
		{"SELECT decimal_sub('1.5', '2.25')", "-0.75"},
		{"SELECT decimal_sub('-0.05000', '0')", "-0.05000"},
		{"SELECT decimal_scale('1234.50000', 2)", "1234.50"},
		{"SELECT decimal_scale('-0.07000', 2)", "-0.07"},
		{"SELECT decimal_scale('7', 2)", "7.00"},
		{"SELECT decimal_sum(x) FROM (SELECT '0.10' x UNION ALL SELECT '0.20' UNION ALL SELECT NULL UNION ALL SELECT '-0.05')", "0.25"},
		{"SELECT group_concat(s, ' ') FROM (SELECT decimal_sum(x) OVER (ORDER BY i ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) s FROM (SELECT 1 i, '0.10' x UNION ALL SELECT 2, '0.20' UNION ALL SELECT 3, '-0.30'))", "0.10 0.30 0.00"},
	} {
		var got sql.NullString
		if err := db.QueryRowContext(ctx, tc.q).Scan(&got); err != nil {
			t.Errorf("%s: %v", tc.q, err)
			continue
		}
		if got.String != tc.want {
			t.Errorf("%s = %q, want %q", tc.q, got.String, tc.want)
		}
	}
	var got sql.NullString
	if err := db.QueryRowContext(ctx, "SELECT decimal_add(NULL, '1')").Scan(&got); err != nil || got.Valid {
		t.Errorf("NULL + 1 = %v, %v; want NULL", got, err)
	}
	for q, want := range map[string]string{
		"SELECT decimal_scale('0.125', 2)": "would round",
		"SELECT decimal_add(0.1, '1')":     "not the float",
		"SELECT decimal_add('1e5', '1')":   "not a decimal",
	} {
		err := db.QueryRowContext(ctx, q).Scan(&got)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: err %v, want %q", q, err, want)
		}
	}
}
