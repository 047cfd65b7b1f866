package demo

import "math/rand/v2"

// The accounting data is a double-entry ledger: every amount posted to an account is
// one side of a journal entry whose other side is posted to another account of the
// same PCN in the same period, so each period's debits equal its credits (the trial
// balance's current amounts sum to zero per PCN and period), and the year closes into
// retained earnings (so year-to-date sums to zero too).
//
// The entries are built in three layers, so that most accounts keep activity that
// depends on nothing but the seed, the PCN, the account number and the period:
//
//   - Each posting account's own activity (activity.of: a normal-side amount, often an
//     other-side one) is posted against the control account of its sub-category
//     (offsets): sales against Trade Receivables, purchases of material, services,
//     inventory and equipment against Trade Payables, wages and benefits against
//     Accrued Wages, depreciation against the matching Accumulated Depreciation,
//     everything else on the balance sheet and other income against Cash - Operating.
//   - Settlements between control accounts each period: customers pay 85-100% of the
//     period's net receivables (debit cash, credit receivables), vendors and payroll
//     are paid the same way (debit payables or wages, credit cash).
//   - The year-end close, posted in December (the fiscal year is the calendar year):
//     every revenue and expense account gets the line that brings its year to zero,
//     and Retained Earnings the opposite of their sum, the year's net income. December's
//     trial balance is therefore the post-closing one: income-statement accounts show
//     zero year-to-date, Retained Earnings carries the year. A year whose first months
//     were not generated closes what was generated, so year-to-date (which starts at
//     the first generated period) still sums to zero.
//
// Control accounts (the General department, location 0, of a few sub-categories) have
// no own activity; their amounts are the other sides of everything above, so they
// depend on the whole chart and change with the scale. The other accounts of
// Accumulated Depreciation and Retained Earnings are never posted to.

// control names a control account; 0 is none.
type control int8

const (
	ctlNone control = iota
	ctlCash
	ctlReceivables
	ctlPayables
	ctlWages
	ctlRetained
	ctlAccumDepr                         // + the natural account's index: Buildings, Machinery, Tooling, Computers
	numControls  = int(ctlAccumDepr) + 3 // controls are 1..numControls
)

// controlAccounts are the (sub-category, natural index) of each control; the account
// is the one in department 000, location 0.
var controlAccounts = map[[2]int]control{
	{1000, 0}: ctlCash,        // Cash - Operating
	{1010, 0}: ctlReceivables, // Trade Receivables
	{2000, 0}: ctlPayables,    // Trade Payables
	{2010, 0}: ctlWages,       // Accrued Wages
	{3020, 0}: ctlRetained,    // Retained Earnings
	{1530, 0}: ctlAccumDepr,   // Accum Depr - Buildings
	{1530, 1}: ctlAccumDepr + 1,
	{1530, 2}: ctlAccumDepr + 2,
	{1530, 3}: ctlAccumDepr + 3,
}

// offsets is the control each sub-category's activity is posted against; a
// sub-category not listed is not posted to. Depreciation's natural accounts map to
// the Accumulated Depreciation of the same index.
var offsets = map[int]control{
	1000: ctlCash, 1010: ctlCash, 1020: ctlPayables, 1030: ctlCash,
	1500: ctlPayables, 1510: ctlPayables, 1520: ctlPayables,
	2000: ctlCash, 2010: ctlCash, 2020: ctlCash, 2030: ctlCash,
	2500: ctlCash, 2510: ctlCash, 2520: ctlCash, 2530: ctlCash,
	3000: ctlCash, 3010: ctlCash, 3030: ctlCash,
	4000: ctlReceivables, 4010: ctlReceivables, 4020: ctlReceivables, 4030: ctlReceivables,
	4500: ctlCash, 4510: ctlCash, 4520: ctlCash, 4530: ctlCash,
	5000: ctlPayables, 5010: ctlWages, 5020: ctlPayables, 5030: ctlPayables,
	6000: ctlWages, 6010: ctlPayables, 6020: ctlPayables, 6030: ctlAccumDepr,
	7000: ctlWages, 7010: ctlWages, 7020: ctlPayables, 7030: ctlPayables,
}

// amounts is a debit and a credit.
type amounts struct{ debit, credit Cents }

// post adds the amount v (debit - credit) on its side.
func (x *amounts) post(v Cents) {
	if v > 0 {
		x.debit += v
	} else {
		x.credit -= v
	}
}

// ledger posts one PCN's journal entries: own activity per account, and the control
// accounts' totals per period, computed up front (they need every account).
type ledger struct {
	seed  int64
	accts []Account
	pers  []Period
	ctl   [][numControls]amounts // per period index; index ctl-1
	act   activity
}

func newLedger(o Options, pcn int) *ledger {
	l := &ledger{seed: o.Seed, accts: accounts(o, pcn), pers: periods(o)}
	l.ctl = make([][numControls]amounts, len(l.pers))
	var pcg rand.PCG
	r := rand.New(&pcg)
	var yearNet Cents // revenue and expense debit - credit of the year so far
	for pi, p := range l.pers {
		if pi == 0 || p.FiscalOrder == 1 {
			yearNet = 0
		}
		c := &l.ctl[pi]
		for i := range l.accts {
			a := &l.accts[i]
			if a.offset == ctlNone {
				continue
			}
			d, cr := l.act.of(l.seed, a, p.Period)
			x := &c[a.offset-1]
			x.debit += cr
			x.credit += d
			if a.RevenueOrExpense {
				yearNet += d - cr
			}
		}
		if p.FiscalOrder == 12 {
			c[ctlRetained-1].post(yearNet)
		}
		pcg.Seed(mix(uint64(l.seed), uint64(pcn), uint64(p.Period), 0x736574746c65)) // "settle"
		// Customers pay part of what they owe: debit cash, credit receivables.
		if net := c[ctlReceivables-1].debit - c[ctlReceivables-1].credit; net > 0 {
			amt := net * Cents(85+r.IntN(16)) / 100
			c[ctlCash-1].debit += amt
			c[ctlReceivables-1].credit += amt
		}
		// Vendors and employees are paid: debit payables or wages, credit cash.
		for _, k := range []control{ctlPayables, ctlWages} {
			if net := c[k-1].credit - c[k-1].debit; net > 0 {
				amt := net * Cents(85+r.IntN(16)) / 100
				c[k-1].debit += amt
				c[ctlCash-1].credit += amt
			}
		}
	}
	return l
}

// posting returns account i's debit and credit in period index pi: its own activity,
// the other sides posted to it if it is a control account, and its closing line.
func (l *ledger) posting(i, pi int) (debit, credit Cents) {
	a := &l.accts[i]
	p := l.pers[pi]
	debit, credit = l.act.of(l.seed, a, p.Period)
	if a.control != ctlNone {
		x := l.ctl[pi][a.control-1]
		debit += x.debit
		credit += x.credit
	}
	if a.RevenueOrExpense && p.FiscalOrder == 12 {
		// The close: the opposite of the year's own activity, recomputed (cheaper than
		// keeping a running sum per account for callers that go period by period).
		var year Cents
		for k := pi; k >= 0 && l.pers[k].Period/100 == p.Period/100; k-- {
			d, c := l.act.of(l.seed, a, l.pers[k].Period)
			year += d - c
		}
		x := amounts{debit, credit}
		x.post(-year)
		debit, credit = x.debit, x.credit
	}
	return debit, credit
}
