//go:build odbc && cgo

package odbc

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	"rpt/internal/demo"
	"rpt/internal/dsn"
	"rpt/internal/source"
	"rpt/internal/testenv"
	"rpt/reportdefs"
)

// cents is c as the exact decimal text the report returns.
func cents(c int64) string {
	sign := ""
	if c < 0 {
		sign, c = "-", -c
	}
	return fmt.Sprintf("%s%d.%02d", sign, c/100, c%100)
}

// TestTrialBalanceLiveODBC runs the shipped trial-balance-live, as a plex-odbc source
// runs it (its every column typed, its SQL picked by the source's dialect), through
// MariaDB's ODBC driver on the demo's Plex-side views, and checks it cents-exact against
// the trial balance computed in Go from the generator.
func TestTrialBalanceLiveODBC(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	d := testenv.MariaDB(t)
	opts := demo.Options{Scale: 1, Periods: 3, End: time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC), Seed: 1,
		Shape: demo.ShapePlex, LogDays: -1}
	if _, err := demo.Load(ctx, d, opts); err != nil {
		t.Fatal(err)
	}
	mc, err := dsn.MySQL(d)
	if err != nil {
		t.Fatal(err)
	}
	host, port, _ := stringsCut(mc.Addr)
	cfg := source.Config{Driver: source.DriverODBC, Dialect: source.DialectMySQL, User: mc.User, Password: mc.Passwd,
		DSN: "Driver=" + dsn.ODBCValue(odbcDriver()) + ";Server=" + host + ";Port=" + port + ";Database=" + mc.DBName}
	cat, err := reportdefs.LoadCatalog()
	if err != nil {
		t.Fatal(err)
	}
	def, err := cat.Get("trial-balance-live")
	if err != nil {
		t.Fatal(err)
	}
	if err := def.CheckSource(map[string]source.Config{def.Source: cfg}, "test"); err != nil {
		t.Fatal(err)
	}
	src, err := source.Open(ctx, def.Source, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	const period = 202611
	resolved, err := def.Resolve(map[string]string{"start_period": strconv.Itoa(period), "end_period": strconv.Itoa(period),
		"pcn": strconv.Itoa(demo.DefaultPCN)}, opts.End, time.UTC)
	if err != nil {
		t.Fatal(err)
	}
	values, err := def.BindValues(resolved)
	if err != nil {
		t.Fatal(err)
	}
	rows, err := source.Run(ctx, src, def.Request(src.Driver(), values), def.Columns)
	if err != nil {
		t.Fatal(err)
	}
	got := readAll(t, rows)
	want, err := demo.ExpectedTrialBalance(opts, demo.DefaultPCN, period, period)
	if err != nil {
		t.Fatal(err)
	}
	if len(want) < 4000 || len(got) != len(want) {
		t.Fatalf("%d rows, want %d (expected at least 4000)", len(got), len(want))
	}
	var sum int64
	for i, w := range want {
		g := got[i]
		if g[0] != w.PeriodDisplay || g[4] != w.AccountNo || g[5] != w.AccountName || g[6] != cents(w.CurrentCents) || g[7] != cents(w.YTDCents) ||
			g[8] != int64(demo.DefaultPCN) || g[9] != int64(period) {
			t.Fatalf("row %d: got %v, want %+v", i+1, g, w)
		}
		sum += w.CurrentCents
	}
	// A period's debits and credits balance per PCN: the column sums to zero.
	if sum != 0 {
		t.Errorf("the period's activity sums to %s, want 0.00", cents(sum))
	}
}

func stringsCut(addr string) (host, port string, ok bool) {
	for i := len(addr) - 1; i >= 0; i-- {
		if addr[i] == ':' {
			return addr[:i], addr[i+1:], true
		}
	}
	return addr, "3306", false
}
