package demo

import "fmt"

// TrialBalanceRow is one row of the trial-balance report: one account in one period.
type TrialBalanceRow struct {
	Period          int // YYYYMM, the sort key
	PeriodDisplay   string
	CategoryType    string
	CategoryName    string
	SubCategoryName string
	AccountNo       string
	AccountName     string
	// CurrentCents is debit - credit of the period.
	CurrentCents int64
	// YTDCents is the running sum of debit - credit: within the calendar year for
	// revenue and expense accounts, since the first generated period for balance-sheet
	// accounts (including periods before startPeriod).
	YTDCents int64
}

// ExpectedTrialBalance computes the trial balance of one PCN for the periods
// startPeriod..endPeriod (YYYYMM, inclusive) straight from the generator, without SQL,
// so tests can check the shipped report's SQL against it. It has one row for every
// account (active or not, with or without activity) and every generated period in the
// range, ordered by period then account number; periods of the range that were not
// generated have no rows.
func ExpectedTrialBalance(opts Options, pcn int, startPeriod, endPeriod int) ([]TrialBalanceRow, error) {
	o, err := opts.normalize()
	if err != nil {
		return nil, err
	}
	if !o.hasPCN(pcn) {
		return nil, fmt.Errorf("%w: pcn: %d is not one of the options' PCNs %v", ErrInvalid, pcn, o.PCNs)
	}
	for _, p := range []struct {
		name string
		v    int
	}{{"start_period", startPeriod}, {"end_period", endPeriod}} {
		if m := p.v % 100; p.v < 100000 || p.v > 999912 || m < 1 || m > 12 {
			return nil, fmt.Errorf("%w: %s: %d is not a period YYYYMM", ErrInvalid, p.name, p.v)
		}
	}
	if startPeriod > endPeriod {
		return nil, fmt.Errorf("%w: start_period %d is after end_period %d", ErrInvalid, startPeriod, endPeriod)
	}
	l := newLedger(o, pcn)
	accts, pers := l.accts, l.pers
	ytd := make([]int64, len(accts))
	var out []TrialBalanceRow
	year := 0
	for pi, p := range pers {
		if p.Period > endPeriod {
			break
		}
		newYear := p.Period/100 != year
		year = p.Period / 100
		for i := range accts {
			a := &accts[i]
			d, c := l.posting(i, pi)
			cur := int64(d - c)
			if newYear && a.RevenueOrExpense {
				ytd[i] = 0
			}
			ytd[i] += cur
			if p.Period < startPeriod {
				continue
			}
			out = append(out, TrialBalanceRow{
				Period:          p.Period,
				PeriodDisplay:   p.Display,
				CategoryType:    a.CategoryType,
				CategoryName:    a.CategoryName,
				SubCategoryName: a.SubCategoryName,
				AccountNo:       a.No,
				AccountName:     a.Name,
				CurrentCents:    cur,
				YTDCents:        ytd[i],
			})
		}
	}
	return out, nil
}
