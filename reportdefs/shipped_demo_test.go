package reportdefs_test

import (
	"context"
	"fmt"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"rpt/internal/demo"
	"rpt/internal/source"
	"rpt/internal/testenv"
	"rpt/reportdefs"
)

// TestShippedTrialBalanceMatchesDemo runs both shipped trial balances, trial-balance
// on the warehouse tables and trial-balance-live on the Plex-side views, through the
// real source drivers, over generated demo data on SQLite and on MariaDB, and compares
// every row with demo.ExpectedTrialBalance, which computes the same report in Go
// straight from the generator: YTD resets in 01 for revenue and expense accounts and
// runs on for balance-sheet accounts, cents exact.
func TestShippedTrialBalanceMatchesDemo(t *testing.T) {
	t.Parallel()
	opts := demo.Options{Scale: 1, Periods: 15, End: time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC), PCNs: []int{123681, 300758}, Seed: 7, LogDays: -1}
	stores := map[string]func(t *testing.T) (string, source.Config){
		"sqlite": func(t *testing.T) (string, source.Config) {
			d := "sqlite:" + filepath.Join(t.TempDir(), "demo.db")
			return d, source.Config{Driver: "sqlite", DSN: d}
		},
		"mariadb": func(t *testing.T) (string, source.Config) {
			d := testenv.MariaDB(t)
			return d, source.Config{Driver: "mysql", DSN: d}
		},
	}
	cat, err := reportdefs.LoadCatalog()
	if err != nil {
		t.Fatal(err)
	}
	var defs []*reportdefs.Definition
	for _, name := range []string{"trial-balance", "trial-balance-live"} {
		def, err := cat.Get(name)
		if err != nil {
			t.Fatal(err)
		}
		defs = append(defs, def)
	}
	for name, open := range stores {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			dsnStr, cfg := open(t)
			if _, err := demo.Load(ctx, dsnStr, opts); err != nil {
				t.Fatal(err)
			}
			for _, def := range defs {
				t.Run(def.Name, func(t *testing.T) { checkShippedTrialBalance(t, def, cfg, opts) })
				t.Run(def.Name+"/balances", func(t *testing.T) { checkTrialBalanceBalances(t, def, cfg, opts) })
			}
		})
	}
}

func checkShippedTrialBalance(t *testing.T, def *reportdefs.Definition, cfg source.Config, opts demo.Options) {
	ctx := context.Background()
	src, err := source.Open(ctx, def.Source, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	// 202502..202603 starts after the first generated period (202501) and crosses a
	// year end, so both YTD rules are exercised, and opening balances come from before
	// the range; 202601..202601 is one period with a year's history before it;
	// 202501..202501 is the first period, with nothing before it.
	for _, tc := range []struct{ pcn, start, end int }{{300758, 202502, 202603}, {123681, 202601, 202601}, {123681, 202501, 202501}} {
		resolved, err := def.Resolve(map[string]string{"pcn": fmt.Sprint(tc.pcn), "start_period": fmt.Sprint(tc.start), "end_period": fmt.Sprint(tc.end)}, time.Now(), time.UTC)
		if err != nil {
			t.Fatal(err)
		}
		values, err := def.BindValues(resolved)
		if err != nil {
			t.Fatal(err)
		}
		want, err := demo.ExpectedTrialBalance(opts, tc.pcn, tc.start, tc.end)
		if err != nil {
			t.Fatal(err)
		}
		rows, err := source.Run(ctx, src, def.Request(src.Driver(), values), def.Columns)
		if err != nil {
			t.Fatal(err)
		}
		cols := rows.Columns()
		wantCols := []string{"period_display", "category_type", "category_name", "sub_category_name", "account_no", "account_name", "current_debit_credit", "ytd_debit_credit", "pcn", "period"}
		if len(cols) != len(wantCols) {
			t.Fatalf("columns %v, want %v", cols, wantCols)
		}
		for i, c := range cols {
			if c.Name != wantCols[i] {
				t.Fatalf("column %d = %q, want %q", i, c.Name, wantCols[i])
			}
		}
		if cols[6].Type != source.TypeDecimal || cols[7].Type != source.TypeDecimal {
			t.Errorf("money columns are %s and %s, want decimal", cols[6].Type, cols[7].Type)
		}
		n := 0
		for rows.Next() {
			v := rows.Values()
			if n >= len(want) {
				n++
				continue
			}
			w := want[n]
			got := make([]string, len(v))
			for i := range v {
				got[i] = fmt.Sprint(v[i])
			}
			exp := []string{w.PeriodDisplay, w.CategoryType, w.CategoryName, w.SubCategoryName, w.AccountNo, w.AccountName, demo.Cents(w.CurrentCents).String(), demo.Cents(w.YTDCents).String(), fmt.Sprint(tc.pcn), fmt.Sprint(w.Period)}
			for i := range exp {
				if got[i] != exp[i] {
					t.Fatalf("pcn %d %d..%d row %d column %s = %q, want %q (row %v)", tc.pcn, tc.start, tc.end, n, wantCols[i], got[i], exp[i], got)
				}
			}
			n++
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		rows.Close()
		if n != len(want) || n == 0 {
			t.Fatalf("pcn %d %d..%d: %d rows, want %d", tc.pcn, tc.start, tc.end, n, len(want))
		}
	}
}

// checkTrialBalanceBalances checks the domain's invariant on what the report returns,
// without the generator's help: the demo data is a double-entry ledger, so for every
// PCN and period the trial balance's current_debit_credit sums to zero (debits equal
// credits) and so does ytd_debit_credit (balance-sheet accounts since the first period,
// revenue and expense within the year, the earlier years closed into retained
// earnings). One range covers every generated period; the other starts after the
// first, so year-to-date includes opening balances, and crosses a year end.
func checkTrialBalanceBalances(t *testing.T, def *reportdefs.Definition, cfg source.Config, opts demo.Options) {
	ctx := context.Background()
	src, err := source.Open(ctx, def.Source, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	periods, err := demo.Periods(opts)
	if err != nil {
		t.Fatal(err)
	}
	first, last := periods[0].Period, periods[len(periods)-1].Period
	for _, pcn := range opts.PCNs {
		for _, rng := range [][2]int{{first, last}, {202512, 202601}} {
			resolved, err := def.Resolve(map[string]string{"pcn": fmt.Sprint(pcn), "start_period": fmt.Sprint(rng[0]), "end_period": fmt.Sprint(rng[1])}, time.Now(), time.UTC)
			if err != nil {
				t.Fatal(err)
			}
			values, err := def.BindValues(resolved)
			if err != nil {
				t.Fatal(err)
			}
			rows, err := src.Query(ctx, def.SQLFor(src.Driver()), values)
			if err != nil {
				t.Fatal(err)
			}
			if rows, err = source.Retype(rows, def.Columns); err != nil {
				t.Fatal(err)
			}
			cols := map[string]int{}
			for i, c := range rows.Columns() {
				cols[c.Name] = i
			}
			current, ytd, n := map[string]int64{}, map[string]int64{}, map[string]int{}
			var moved int64
			for rows.Next() {
				v := rows.Values()
				p := fmt.Sprint(v[cols["period"]])
				cur := cents(t, v[cols["current_debit_credit"]])
				current[p] += cur
				ytd[p] += cents(t, v[cols["ytd_debit_credit"]])
				n[p]++
				if cur > 0 {
					moved += cur
				}
			}
			if err := rows.Err(); err != nil {
				t.Fatal(err)
			}
			rows.Close()
			want := 0
			for _, p := range periods {
				if p.Period < rng[0] || p.Period > rng[1] {
					continue
				}
				want++
				k := fmt.Sprint(p.Period)
				if n[k] == 0 {
					t.Errorf("pcn %d %d..%d: no rows for period %s", pcn, rng[0], rng[1], k)
				}
				if current[k] != 0 || ytd[k] != 0 {
					t.Errorf("pcn %d %d..%d period %s: current_debit_credit sums to %s, ytd_debit_credit to %s; a ledger sums to 0.00 and 0.00",
						pcn, rng[0], rng[1], k, demo.Cents(current[k]), demo.Cents(ytd[k]))
				}
			}
			if len(n) != want || moved == 0 {
				t.Errorf("pcn %d %d..%d: %d periods with %d cents of debits, want %d periods with some", pcn, rng[0], rng[1], len(n), moved, want)
			}
		}
	}
}

var moneyText = regexp.MustCompile(`^-?[0-9]+\.[0-9]{2}$`)

// cents reads a money value exactly: a decimal with two places, no float.
func cents(t *testing.T, v any) int64 {
	t.Helper()
	s, ok := v.(string)
	if !ok || !moneyText.MatchString(s) {
		t.Fatalf("money value %#v is not a decimal with two places", v)
	}
	n, err := strconv.ParseInt(strings.Replace(s, ".", "", 1), 10, 64)
	if err != nil {
		t.Fatalf("money value %q: %v", s, err)
	}
	return n
}
