package demo

import (
	"strings"
	"testing"
	"time"
)

// TestLedgerBalances checks the double-entry invariants on the generator's own output:
// every period's balance rows sum to zero per PCN (debits equal credits), and so does
// the trial balance's year-to-date, with December closing the income statement into
// Retained Earnings. Period ranges start and end mid-year and at a year's edge, and the
// last period is once an open December.
func TestLedgerBalances(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		opts Options
	}{
		{"24 periods from November, two PCNs", Options{Scale: 1, End: testEnd, Seed: 42, PCNs: []int{123681, 300758}}},
		{"starts in January, ends with an open December", Options{Scale: 1, Periods: 12, End: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), Seed: 7}},
		{"one period", Options{Scale: 1, Periods: 1, End: time.Date(2025, 7, 1, 0, 0, 0, 0, time.UTC), Seed: 3}},
		{"scale 2, three years from July", Options{Scale: 2, Periods: 30, End: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), Seed: 11}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			o, err := tt.opts.normalize()
			if err != nil {
				t.Fatal(err)
			}
			for _, pcn := range o.PCNs {
				checkLedger(t, tt.opts, pcn)
			}
		})
	}
}

func checkLedger(t *testing.T, opts Options, pcn int) {
	t.Helper()
	ps, err := Periods(opts)
	if err != nil {
		t.Fatal(err)
	}
	seq, err := Balances(opts, pcn)
	if err != nil {
		t.Fatal(err)
	}
	debit, credit, balance := map[int]Cents{}, map[int]Cents{}, map[int]Cents{}
	for b := range seq {
		debit[b.Period] += b.Debit
		credit[b.Period] += b.Credit
		balance[b.Period] += b.Balance
	}
	for _, p := range ps {
		if debit[p.Period] != credit[p.Period] || balance[p.Period] != 0 {
			t.Errorf("pcn %d %d: debits %s, credits %s, balance %s; want debits = credits", pcn, p.Period, debit[p.Period], credit[p.Period], balance[p.Period])
		}
		if debit[p.Period] == 0 {
			t.Errorf("pcn %d %d: no activity", pcn, p.Period)
		}
	}

	rows, err := ExpectedTrialBalance(opts, pcn, ps[0].Period, ps[len(ps)-1].Period)
	if err != nil {
		t.Fatal(err)
	}
	current, ytd := map[int]int64{}, map[int]int64{}
	var retainedDec, closedDec int
	for _, r := range rows {
		current[r.Period] += r.CurrentCents
		ytd[r.Period] += r.YTDCents
		if r.Period%100 != 12 {
			continue
		}
		if RevenueOrExpense(r.CategoryType) && r.YTDCents != 0 {
			t.Errorf("pcn %d %d %s %s: YTD %s after the close, want 0", pcn, r.Period, r.CategoryType, r.AccountNo, Cents(r.YTDCents))
		}
		if RevenueOrExpense(r.CategoryType) && r.CurrentCents != 0 {
			closedDec++
		}
		if r.AccountNo == "32000-000-0000" && r.CurrentCents != 0 {
			retainedDec++
		}
	}
	for _, p := range ps {
		if current[p.Period] != 0 || ytd[p.Period] != 0 {
			t.Errorf("pcn %d %d: trial balance sums to current %s, YTD %s; want 0 and 0", pcn, p.Period, Cents(current[p.Period]), Cents(ytd[p.Period]))
		}
	}
	decembers := 0
	for _, p := range ps {
		if p.FiscalOrder == 12 {
			decembers++
		}
	}
	if retainedDec != decembers || (decembers > 0 && closedDec == 0) {
		t.Errorf("pcn %d: Retained Earnings moved in %d of %d Decembers, %d income-statement rows closed", pcn, retainedDec, decembers, closedDec)
	}
}

// TestLedgerEntries checks where the other sides go: sales to Trade Receivables,
// wages to Accrued Wages, depreciation to its Accumulated Depreciation, and that the
// control accounts, which carry them, are open and have no activity of their own.
func TestLedgerEntries(t *testing.T) {
	t.Parallel()
	o, err := testOptions().normalize()
	if err != nil {
		t.Fatal(err)
	}
	l := newLedger(o, DefaultPCN)
	byNo := map[string]*Account{}
	for i := range l.accts {
		byNo[l.accts[i].No] = &l.accts[i]
	}
	for no, want := range map[string]control{
		"10000-000-0000": ctlCash, "11000-000-0000": ctlReceivables, "20000-000-0000": ctlPayables,
		"21000-000-0000": ctlWages, "32000-000-0000": ctlRetained, "18010-000-0000": ctlAccumDepr + 1,
	} {
		a := byNo[no]
		if a == nil || a.control != want || !a.Active || a.offset != ctlNone {
			t.Errorf("%s: %+v, want an active control account %d without own activity", no, a, want)
		}
	}
	controls := 0
	for _, a := range l.accts {
		if a.control != ctlNone {
			controls++
		}
		want := ctlNone
		switch {
		case a.control != ctlNone, strings.HasPrefix(a.No, "18"), strings.HasPrefix(a.No, "32"):
		case strings.HasPrefix(a.No, "40"), strings.HasPrefix(a.No, "41"), strings.HasPrefix(a.No, "42"), strings.HasPrefix(a.No, "43"):
			want = ctlReceivables
		case strings.HasPrefix(a.No, "510"), strings.HasPrefix(a.No, "600"), strings.HasPrefix(a.No, "700"), strings.HasPrefix(a.No, "710"):
			want = ctlWages
		case strings.HasPrefix(a.No, "630"):
			want = ctlAccumDepr + control(a.No[3]-'0') // 63010: 18010
		case strings.HasPrefix(a.No, "50"), strings.HasPrefix(a.No, "52"), strings.HasPrefix(a.No, "53"):
			want = ctlPayables
		default:
			if a.offset == ctlNone {
				t.Errorf("%s %s is never posted to", a.No, a.Name)
			}
			continue
		}
		if a.offset != want {
			t.Errorf("%s %s: posted against control %d, want %d", a.No, a.Name, a.offset, want)
		}
	}
	if controls != int(numControls) {
		t.Errorf("%d control accounts, want %d", controls, numControls)
	}
	// A control account's period is the other side of its sub-ledger: Trade
	// Receivables' debits are at least the sales it was offset with.
	pi := 5
	var sales Cents
	for i := range l.accts {
		if l.accts[i].offset == ctlReceivables {
			_, c := l.act.of(l.seed, &l.accts[i], l.pers[pi].Period)
			sales += c
		}
	}
	for i, a := range l.accts {
		if a.control == ctlReceivables {
			if d, _ := l.posting(i, pi); d != sales || sales == 0 {
				t.Errorf("Trade Receivables %d: debit %s, want the period's sales %s", l.pers[pi].Period, d, sales)
			}
		}
	}
}
