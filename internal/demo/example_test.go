package demo_test

import (
	"fmt"
	"time"

	"rpt/internal/demo"
)

// The generator is deterministic: these figures are the same on every machine and
// every store, so a change to them is a change to the demo data set.
func ExampleExpectedTrialBalance() {
	opts := demo.Options{Scale: 1, Seed: 1, End: time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)}
	rows, err := demo.ExpectedTrialBalance(opts, demo.DefaultPCN, 202601, 202601)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(len(rows), "rows")
	// The first account, and the first revenue account with activity: its YTD in
	// January is the month's amount, as the fiscal year starts again.
	show := []demo.TrialBalanceRow{rows[0]}
	for _, r := range rows {
		if r.CategoryType == demo.TypeRevenue && r.CurrentCents != 0 {
			show = append(show, r)
			break
		}
	}
	for _, r := range show {
		fmt.Printf("%s %-9s %s %-40s %14s %14s\n", r.PeriodDisplay, r.CategoryType, r.AccountNo, r.AccountName,
			demo.Cents(r.CurrentCents), demo.Cents(r.YTDCents))
	}
	// A double-entry ledger: the month's debits equal its credits, and year-to-date
	// balances too, the earlier years closed into Retained Earnings.
	var current, ytd int64
	for _, r := range rows {
		current += r.CurrentCents
		ytd += r.YTDCents
	}
	fmt.Println("sums", demo.Cents(current), demo.Cents(ytd))
	// Output:
	// 4600 rows
	// 2026-01 Asset     10000-000-0000 Cash - Operating - General                 161319333.12  3025539296.51
	// 2026-01 Revenue   40000-000-0000 Sales - Production Parts - General            -20710.72      -20710.72
	// sums 0.00 0.00
}
