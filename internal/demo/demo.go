// Package demo generates deterministic, Plex-shaped data at any scale: accounting (chart
// of accounts with categories and sub-categories, fiscal periods, monthly balances) and
// production and maintenance (work-center statuses with their flags, work centers,
// parts, work-center logs and daily shift report rows, see production.go), and loads
// it into SQLite or MySQL/MariaDB with the table names and columns Plex has, so the
// shipped reports run without access to Plex. The accounting data is also written in
// its warehouse shape (WarehouseTables: accounting_account with the categories
// flattened in, accounting_period, accounting_balance), what the ETL writes into the
// MySQL warehouse; the shipped trial-balance reads that shape, trial-balance-live the
// Plex-side one.
//
// The same Options give the same data on every store and every run: each account's
// parameters come from a PCG generator seeded by (seed, pcn, account number), and each
// month's activity from one seeded by (seed, pcn, account number, period). The
// balances are a double-entry ledger (ledger.go): each account's activity is posted
// against a control account (sales against receivables, purchases against payables,
// wages against accrued wages, ...), so every period's debits equal its credits per
// PCN, and each December closes the year's revenue and expense into Retained
// Earnings, so year-to-date balances too. An account other than a control account
// therefore keeps its activity when the scale changes, and when the number of
// periods changes too, but for the close of the first generated year. Each shift of
// a work-center log likewise has its own seed.
//
// The API:
//   - Load writes a data set into "sqlite:PATH" or "mysql://..." (tables created when
//     absent, the loaded PCNs' and plants' rows replaced in one transaction, the
//     warehouse tables filled from the Plex-side ones in the same transaction).
//   - Generate streams every row of every accounting table (see Tables for names and
//     columns) and GenerateProduction every row of the production tables
//     (ProductionTables), the way Load writes them; Accounts, Periods, Balances,
//     WorkCenters, Parts, WorkCenterLog and ShiftReports give the same data as Go
//     values, per PCN.
//   - ExpectedTrialBalance, ExpectedMTTF, ExpectedMTTR and ExpectedDailyProduction
//     compute the shipped reports in Go, independently of any SQL, for tests of the
//     reports' SQL.
//
// Money is exact: int64 cents (Cents) in Go, DECIMAL(19,2) on MySQL bound as decimal
// strings, and INTEGER cents on SQLite in columns named with a _cents suffix
// (debit_cents, credit_cents, balance_cents). Hours are exact too: Hours counts
// ten-thousandths of an hour, DECIMAL(9,4) on MySQL, INTEGER in columns named with an
// _x10000 suffix on SQLite (log_hours_x10000). All other columns are the same on both.
package demo

import (
	"errors"
	"fmt"
	"iter"
	"math/rand/v2"
	"slices"
	"strconv"
	"time"
)

// ErrInvalid marks bad Options or arguments.
var ErrInvalid = errors.New("invalid demo options")

// DefaultPCN is the Southfield (HQ, accounting) plant, the trial balance's default.
const DefaultPCN = 123681

// AccountsPerScale is the number of accounts per PCN at scale 1, as at the real HQ.
const AccountsPerScale = 4600

// DefaultPeriods is the number of monthly periods generated when Options.Periods is 0.
const DefaultPeriods = 24

// Limits keep account keys inside INT and loads within reason.
const (
	MaxScale   = 1000
	MaxPeriods = 1200
)

// Options say what to generate. The zero value is not valid: Scale must be at least 1
// (a zero scale is a forgotten flag more often than a wish for no data).
type Options struct {
	// Scale multiplies the number of accounts per PCN (AccountsPerScale each); 1..MaxScale.
	Scale int
	// PCNs are the plants to generate, each with its own chart; default [DefaultPCN].
	PCNs []int
	// Periods is the number of monthly periods, ending with the month before End;
	// default DefaultPeriods.
	Periods int
	// End is a time in the month after the last period; default now. Its day (UTC) is
	// also the first day after the work-center log.
	End time.Time
	// Seed selects the data set; the same seed gives the same data.
	Seed int64

	// Plants are the PCNs that get production and maintenance data (work centers,
	// work-center logs, parts, daily shift reports); default DefaultPlants. They are
	// independent of PCNs, which get the accounting data.
	Plants []int
	// LogDays is the number of days of work-center logs and daily shift reports,
	// ending with the day before End's day (UTC); default DefaultLogDays; -1 for no
	// production data at all.
	LogDays int

	// Shape is which side of the accounting data Load writes: ShapeBoth (the default,
	// ""), ShapePlex (the Plex-side views only: a database standing in for Plex, for the
	// ETL) or ShapeWarehouse (the warehouse tables only; the Plex-side tables are created
	// but left without the PCNs' rows). Production tables have one shape and are
	// written in all three.
	Shape string

	// Force lets Load write into a database that has the demo's table names but no
	// MarkerTable (rows of the loaded PCNs there are deleted); Generate ignores it.
	Force bool

	// logEnd is End's day (UTC): the first day without logs. Set by normalize.
	logEnd time.Time
}

// Shapes of Options.Shape.
const (
	ShapeBoth      = "both"
	ShapePlex      = "plex"
	ShapeWarehouse = "warehouse"
)

// normalize fills defaults and validates; the result is what generation uses.
func (o Options) normalize() (Options, error) {
	switch o.Shape {
	case "":
		o.Shape = ShapeBoth
	case ShapeBoth, ShapePlex, ShapeWarehouse:
	default:
		return o, fmt.Errorf("%w: shape: %q: want plex, warehouse or both", ErrInvalid, o.Shape)
	}
	if o.Scale < 1 || o.Scale > MaxScale {
		return o, fmt.Errorf("%w: scale: %d: must be 1..%d", ErrInvalid, o.Scale, MaxScale)
	}
	switch {
	case o.Periods == 0:
		o.Periods = DefaultPeriods
	case o.Periods < 0 || o.Periods > MaxPeriods:
		return o, fmt.Errorf("%w: periods: %d: must be 1..%d", ErrInvalid, o.Periods, MaxPeriods)
	}
	if len(o.PCNs) == 0 {
		o.PCNs = []int{DefaultPCN}
	} else {
		seen := make(map[int]bool, len(o.PCNs))
		for i, p := range o.PCNs {
			if p <= 0 || p > 1<<31-1 {
				return o, fmt.Errorf("%w: pcns[%d]: %d: must be a positive INT", ErrInvalid, i, p)
			}
			if seen[p] {
				return o, fmt.Errorf("%w: pcns[%d]: %d appears twice", ErrInvalid, i, p)
			}
			seen[p] = true
		}
		o.PCNs = slices.Clone(o.PCNs)
	}
	if o.End.IsZero() {
		o.End = time.Now()
	}
	e := o.End.UTC()
	if o.logEnd.IsZero() { // normalizing normalized options must keep the day
		o.logEnd = time.Date(e.Year(), e.Month(), e.Day(), 0, 0, 0, 0, time.UTC)
	}
	o.End = time.Date(e.Year(), e.Month(), 1, 0, 0, 0, 0, time.UTC)
	if first := o.End.AddDate(0, -o.Periods, 0); first.Year() < 1900 || o.End.Year() > 9999 {
		return o, fmt.Errorf("%w: end: %s with %d periods is outside the years 1900..9999", ErrInvalid, o.End.Format("2006-01"), o.Periods)
	}
	return o.normalizeProduction()
}

func (o Options) hasPCN(pcn int) bool { return slices.Contains(o.PCNs, pcn) }

// Category types as Plex names them.
const (
	TypeAsset     = "Asset"
	TypeLiability = "Liability"
	TypeEquity    = "Equity"
	TypeRevenue   = "Revenue"
	TypeExpense   = "Expense"
)

// CategoryTypes lists the five category types in the order of the balance sheet and
// income statement.
func CategoryTypes() []string {
	return []string{TypeAsset, TypeLiability, TypeEquity, TypeRevenue, TypeExpense}
}

// RevenueOrExpense reports whether a category type is an income-statement type, whose
// year-to-date resets at the start of each fiscal (calendar) year.
func RevenueOrExpense(categoryType string) bool {
	return categoryType == TypeRevenue || categoryType == TypeExpense
}

// Category is a row of accounting_v_category_e (the same chart for every PCN).
type Category struct {
	No   int
	Name string
	Type string
}

// SubCategory is a row of accounting_v_sub_category_e; each belongs to one category.
type SubCategory struct {
	No         int
	Name       string
	CategoryNo int
}

// Account is a row of accounting_v_account_e with its category and sub-category.
type Account struct {
	PCN              int
	Key              int
	No               string // e.g. "51000-800-0000": natural account, department, location
	Name             string
	Active           bool
	CategoryType     string
	RevenueOrExpense bool
	CategoryNo       int
	CategoryName     string
	SubCategoryNo    int
	SubCategoryName  string

	// Generation parameters.
	hash         uint64  // of No; seeds the activity so it is independent of scale
	creditNormal bool    // the side the account's activity is mostly on
	dormant      bool    // active but never posted to
	magnitude    int64   // typical monthly amount in cents
	quietPct     int     // chance in percent of a month without activity
	control      control // the control account this is, if any (see ledger.go)
	offset       control // the control its own activity is posted against; none: no own activity
}

// Period is a row of accounting_v_period_e.
type Period struct {
	Key         int
	Period      int    // YYYYMM
	Display     string // "YYYY-MM"
	FiscalOrder int    // 1..12 (fiscal year = calendar year)
	Quarter     int    // 1..4
	Begin, End  time.Time
	Status      string // "closed", or "open" for the last period
	Added       time.Time
	Updated     time.Time
}

// Balance is a row of accounting_v_balance_e: one account's activity in one period.
type Balance struct {
	PCN        int
	AccountKey int
	AccountNo  string
	Period     int
	Debit      Cents
	Credit     Cents
	Balance    Cents // Debit - Credit
}

// Cents is an amount of money in hundredths; it formats as an exact decimal.
type Cents int64

// String formats c as a decimal with two places, "-1234.05", for DECIMAL columns.
func (c Cents) String() string {
	neg := c < 0
	u := uint64(c)
	if neg {
		u = -u // two's complement: exact even for the smallest int64
	}
	b := make([]byte, 0, 24)
	if neg {
		b = append(b, '-')
	}
	b = strconv.AppendUint(b, u/100, 10)
	b = append(b, '.', byte('0'+u%100/10), byte('0'+u%10))
	return string(b)
}

type subDef struct {
	no           int
	name         string
	base         int  // first natural account number
	creditNormal bool // contra accounts differ from their category type
	naturals     []string
}

type catDef struct {
	no     int
	name   string
	typ    string
	weight int // accounts per sub-category, relative
	subs   []subDef
}

// chart is the corporate chart of accounts every PCN shares; account numbers are
// natural-department-location, as the plants' Plex charts are.
var chart = []catDef{
	{100, "Current Assets", TypeAsset, 8, []subDef{
		{1000, "Cash", 10000, false, []string{"Cash - Operating", "Cash - Payroll", "Petty Cash", "Cash - Lockbox"}},
		{1010, "Accounts Receivable", 11000, false, []string{"Trade Receivables", "Intercompany Receivables", "Employee Advances", "Allowance Clearing"}},
		{1020, "Inventory", 12000, false, []string{"Raw Material", "Work in Process", "Finished Goods", "Purchased Components", "Inventory Reserve"}},
		{1030, "Prepaid Expenses", 13000, false, []string{"Prepaid Insurance", "Prepaid Rent", "Prepaid Software", "Deposits"}},
	}},
	{150, "Fixed Assets", TypeAsset, 8, []subDef{
		{1500, "Land and Buildings", 15000, false, []string{"Land", "Buildings", "Building Improvements", "Leasehold Improvements"}},
		{1510, "Machinery and Equipment", 16000, false, []string{"Presses", "CNC Machines", "Material Handling Equipment", "Computer Equipment", "Vehicles"}},
		{1520, "Tooling", 17000, false, []string{"Customer Tooling", "Perishable Tooling", "Dies and Molds", "Gauges and Fixtures"}},
		{1530, "Accumulated Depreciation", 18000, true, []string{"Accum Depr - Buildings", "Accum Depr - Machinery", "Accum Depr - Tooling", "Accum Depr - Computers"}},
	}},
	{200, "Current Liabilities", TypeLiability, 4, []subDef{
		{2000, "Accounts Payable", 20000, false, []string{"Trade Payables", "Accrued Receipts", "Intercompany Payables - Current", "Freight Payables"}},
		{2010, "Accrued Payroll", 21000, false, []string{"Accrued Wages", "Accrued Vacation", "Accrued Bonus", "Payroll Withholdings"}},
		{2020, "Accrued Taxes", 22000, false, []string{"Sales and Use Tax Payable", "Property Tax Payable", "Income Tax Payable", "Payroll Taxes Payable"}},
		{2030, "Other Accrued Liabilities", 23000, false, []string{"Accrued Utilities", "Accrued Interest", "Customer Deposits", "Warranty Reserve"}},
	}},
	{250, "Long-Term Liabilities", TypeLiability, 4, []subDef{
		{2500, "Long-Term Debt", 25000, false, []string{"Term Loan", "Revolving Credit Line", "Equipment Notes"}},
		{2510, "Capital Leases", 26000, false, []string{"Capital Lease Obligations", "Lease Liability - Buildings", "Lease Liability - Equipment"}},
		{2520, "Deferred Taxes", 27000, false, []string{"Deferred Income Taxes", "Deferred Revenue - Tooling"}},
		{2530, "Intercompany Payables", 28000, false, []string{"Due to Parent", "Due to Affiliates", "Intercompany Notes"}},
	}},
	{300, "Equity", TypeEquity, 1, []subDef{
		{3000, "Common Stock", 30000, false, []string{"Common Stock", "Preferred Stock"}},
		{3010, "Additional Paid-In Capital", 31000, false, []string{"Paid-In Capital", "Capital Contributions"}},
		{3020, "Retained Earnings", 32000, false, []string{"Retained Earnings", "Current Year Earnings"}},
		{3030, "Distributions", 33000, true, []string{"Shareholder Distributions", "Dividends Declared"}},
	}},
	{400, "Sales", TypeRevenue, 8, []subDef{
		{4000, "Product Sales", 40000, false, []string{"Sales - Production Parts", "Sales - Service Parts", "Sales - Prototype Parts", "Sales - Intercompany"}},
		{4010, "Tooling Sales", 41000, false, []string{"Tooling Sales", "Engineering Change Revenue", "Tooling Amortization Revenue"}},
		{4020, "Sales Returns and Allowances", 42000, true, []string{"Customer Returns", "Price Adjustments", "Customer Chargebacks", "Early Pay Discounts"}},
		{4030, "Scrap Sales", 43000, false, []string{"Steel Scrap Sales", "Aluminum Scrap Sales", "Other Scrap Sales"}},
	}},
	{450, "Other Income", TypeRevenue, 8, []subDef{
		{4500, "Interest Income", 45000, false, []string{"Interest Income", "Intercompany Interest Income"}},
		{4510, "Gain on Asset Sales", 46000, false, []string{"Gain on Equipment Sales", "Gain on Tooling Sales"}},
		{4520, "Miscellaneous Income", 47000, false, []string{"Miscellaneous Income", "Rental Income", "Insurance Recoveries"}},
		{4530, "Rebates", 48000, false, []string{"Vendor Rebates", "Utility Rebates", "Purchasing Card Rebates"}},
	}},
	{500, "Cost of Sales", TypeExpense, 24, []subDef{
		{5000, "Direct Material", 50000, false, []string{"Steel", "Aluminum", "Resin", "Purchased Components", "Fasteners", "Packaging Material"}},
		{5010, "Direct Labor", 51000, false, []string{"Direct Labor - Straight Time", "Direct Labor - Overtime", "Direct Labor - Temporary", "Direct Labor - Shift Premium"}},
		{5020, "Freight In", 52000, false, []string{"Inbound Freight", "Premium Freight In", "Customs and Duties"}},
		{5030, "Outside Processing", 53000, false, []string{"Outside Heat Treat", "Outside Plating", "Outside Machining", "Outside Painting"}},
	}},
	{600, "Manufacturing Overhead", TypeExpense, 24, []subDef{
		{6000, "Indirect Labor", 60000, false, []string{"Supervision", "Material Handlers", "Quality Inspectors", "Indirect Labor - Overtime"}},
		{6010, "Maintenance and Repairs", 61000, false, []string{"Repairs - Machinery", "Repairs - Buildings", "Maintenance Supplies", "Preventive Maintenance Contracts"}},
		{6020, "Utilities", 62000, false, []string{"Electricity", "Natural Gas", "Water and Sewer", "Compressed Air"}},
		{6030, "Depreciation", 63000, false, []string{"Depreciation - Buildings", "Depreciation - Machinery", "Depreciation - Tooling", "Depreciation - Computers"}},
	}},
	{700, "Selling, General and Administrative", TypeExpense, 24, []subDef{
		{7000, "Salaries and Wages", 70000, false, []string{"Salaries - Management", "Salaries - Office", "Wages - Hourly Office", "Commissions"}},
		{7010, "Employee Benefits", 71000, false, []string{"Health Insurance", "401k Match", "Workers Compensation", "Payroll Taxes"}},
		{7020, "Professional Fees", 72000, false, []string{"Audit Fees", "Legal Fees", "Consulting Fees", "Plex Subscription"}},
		{7030, "Office and IT", 73000, false, []string{"Office Supplies", "Telephone and Internet", "Software Licenses", "Travel and Entertainment"}},
	}},
}

// departments are the middle segment of an account number.
var departments = []struct {
	code string
	name string
}{
	{"000", "General"}, {"100", "Administration"}, {"110", "Accounting"}, {"120", "Human Resources"},
	{"130", "Information Technology"}, {"200", "Sales"}, {"210", "Customer Service"}, {"300", "Purchasing"},
	{"310", "Receiving"}, {"320", "Shipping"}, {"400", "Production Control"}, {"500", "Quality"},
	{"600", "Maintenance"}, {"610", "Tool Room"}, {"700", "Engineering"}, {"800", "Machining"},
	{"810", "Stamping"}, {"820", "Welding"}, {"830", "Assembly"}, {"840", "Paint"},
	{"850", "Heat Treat"}, {"860", "Molding"}, {"870", "Packaging"}, {"900", "Plant Facilities"},
}

// Categories returns the categories of the chart, by number.
func Categories() []Category {
	out := make([]Category, 0, len(chart))
	for _, c := range chart {
		out = append(out, Category{No: c.no, Name: c.name, Type: c.typ})
	}
	return out
}

// SubCategories returns the sub-categories of the chart, by number.
func SubCategories() []SubCategory {
	var out []SubCategory
	for _, c := range chart {
		for _, s := range c.subs {
			out = append(out, SubCategory{No: s.no, Name: s.name, CategoryNo: c.no})
		}
	}
	return out
}

// Accounts returns the chart of accounts of one PCN, Scale*AccountsPerScale accounts
// ordered by account number, with keys ascending in that order.
func Accounts(opts Options, pcn int) ([]Account, error) {
	o, err := opts.normalize()
	if err != nil {
		return nil, err
	}
	if !o.hasPCN(pcn) {
		return nil, fmt.Errorf("%w: pcn: %d is not one of the options' PCNs %v", ErrInvalid, pcn, o.PCNs)
	}
	return accounts(o, pcn), nil
}

// accounts builds the chart of one PCN for normalized options.
func accounts(o Options, pcn int) []Account {
	total := o.Scale * AccountsPerScale
	counts := allocate(total)
	out := make([]Account, 0, total)
	var pcg rand.PCG
	r := rand.New(&pcg)
	i := 0
	for _, c := range chart {
		for _, s := range c.subs {
			n := counts[i]
			i++
			k := len(s.naturals)
			for j := range n {
				nat := j % k
				rest := j / k
				dept := departments[rest%len(departments)]
				loc := rest / len(departments)
				no := fmt.Sprintf("%05d-%s-%04d", s.base+10*nat, dept.code, loc)
				name := s.naturals[nat] + " - " + dept.name
				if loc > 0 {
					name += " - Location " + strconv.Itoa(loc)
				}
				a := Account{
					PCN:              pcn,
					No:               no,
					Name:             name,
					CategoryType:     c.typ,
					RevenueOrExpense: RevenueOrExpense(c.typ),
					CategoryNo:       c.no,
					CategoryName:     c.name,
					SubCategoryNo:    s.no,
					SubCategoryName:  s.name,
					hash:             hashString(no),
					creditNormal:     s.creditNormal != (c.typ == TypeLiability || c.typ == TypeEquity || c.typ == TypeRevenue),
				}
				pcg.Seed(mix(uint64(o.Seed), uint64(pcn), a.hash, 0x6163636f756e74)) // "account"
				a.Active = r.IntN(100) >= 5
				a.dormant = r.IntN(100) < 6
				lo, hi := magnitudeRange(c.typ)
				a.magnitude = int64(1+r.IntN(9)) * pow10(lo+r.IntN(hi-lo+1))
				a.quietPct = 15
				if c.typ == TypeEquity {
					a.quietPct = 85 // equity moves a few times a year
				}
				a.offset = offsets[s.no]
				if a.offset == ctlAccumDepr {
					a.offset += control(nat) // Depreciation - Machinery: Accum Depr - Machinery
				}
				if k, ok := controlAccounts[[2]int{s.no, nat}]; ok && rest == 0 && loc == 0 {
					// Control accounts are posted to every month (and must be open for it).
					a.control, a.offset, a.Active, a.dormant = k, ctlNone, true, false
				}
				out = append(out, a)
			}
		}
	}
	slices.SortFunc(out, func(a, b Account) int {
		switch {
		case a.No < b.No:
			return -1
		case a.No > b.No:
			return 1
		}
		return 0
	})
	// Keys differ between PCNs so that a join that forgets pcn finds nothing.
	base := (pcn % 1000) * 1_000_000
	for i := range out {
		out[i].Key = base + i + 1
	}
	return out
}

// allocate splits total accounts over the sub-categories by their categories' weights
// (largest remainder, at least one each), in chart order.
func allocate(total int) []int {
	var weights []int
	sum := 0
	for _, c := range chart {
		for range c.subs {
			weights = append(weights, c.weight)
			sum += c.weight
		}
	}
	counts := make([]int, len(weights))
	type rem struct{ i, r int }
	rems := make([]rem, len(weights))
	given := 0
	for i, w := range weights {
		counts[i] = total * w / sum
		rems[i] = rem{i, total * w % sum}
		given += counts[i]
	}
	slices.SortStableFunc(rems, func(a, b rem) int { return b.r - a.r })
	for k := 0; given < total; k++ {
		counts[rems[k%len(rems)].i]++
		given++
	}
	for i := range counts {
		if counts[i] == 0 { // only at tiny totals, which Scale >= 1 never gives
			counts[i] = 1
		}
	}
	return counts
}

// magnitudeRange gives the powers of ten (in cents) of an account's typical monthly amount.
func magnitudeRange(typ string) (lo, hi int) {
	switch typ {
	case TypeAsset, TypeLiability:
		return 4, 7
	case TypeEquity:
		return 5, 7
	case TypeRevenue:
		return 5, 8
	}
	return 3, 7
}

func pow10(n int) int64 {
	p := int64(1)
	for range n {
		p *= 10
	}
	return p
}

// Periods returns the monthly periods, oldest first: Options.Periods months ending with
// the month before Options.End. The last one is open, the others closed.
func Periods(opts Options) ([]Period, error) {
	o, err := opts.normalize()
	if err != nil {
		return nil, err
	}
	return periods(o), nil
}

func periods(o Options) []Period {
	out := make([]Period, 0, o.Periods)
	for i := range o.Periods {
		begin := o.End.AddDate(0, i-o.Periods, 0)
		end := begin.AddDate(0, 1, -1)
		y, m := begin.Year(), int(begin.Month())
		p := Period{
			// Not YYYYMM, so that a join of period_key to period fails loudly.
			Key:         (y-1900)*12 + m,
			Period:      y*100 + m,
			Display:     fmt.Sprintf("%04d-%02d", y, m),
			FiscalOrder: m,
			Quarter:     (m-1)/3 + 1,
			Begin:       begin,
			End:         end,
			Status:      "closed",
			Added:       begin.AddDate(0, -1, 0).Add(6 * time.Hour),
		}
		p.Updated = end.AddDate(0, 0, 12).Add(17*time.Hour + 30*time.Minute)
		if i == o.Periods-1 {
			p.Status = "open"
			p.Updated = p.Added
		}
		out = append(out, p)
	}
	return out
}

// Balances returns the balance rows of one PCN: every account in every period (zero
// rows for no activity), ordered by account key then period. Each period's rows sum to
// zero: they are the totals of a balanced ledger (see ledger.go).
func Balances(opts Options, pcn int) (iter.Seq[Balance], error) {
	o, err := opts.normalize()
	if err != nil {
		return nil, err
	}
	if !o.hasPCN(pcn) {
		return nil, fmt.Errorf("%w: pcn: %d is not one of the options' PCNs %v", ErrInvalid, pcn, o.PCNs)
	}
	return func(yield func(Balance) bool) {
		l := newLedger(o, pcn)
		for i := range l.accts {
			a := &l.accts[i]
			for pi, p := range l.pers {
				d, c := l.posting(i, pi)
				if !yield(Balance{PCN: pcn, AccountKey: a.Key, AccountNo: a.No, Period: p.Period, Debit: d, Credit: c, Balance: d - c}) {
					return
				}
			}
		}
	}, nil
}

// activity computes one account's own debit and credit in one period (what it posts
// against its control account; see ledger.go); it holds a PCG that is reseeded per
// call rather than allocated.
type activity struct {
	pcg rand.PCG
	r   *rand.Rand
}

func (act *activity) of(seed int64, a *Account, period int) (debit, credit Cents) {
	if !a.Active || a.dormant || a.offset == ctlNone {
		return 0, 0
	}
	if act.r == nil {
		act.r = rand.New(&act.pcg)
	}
	act.pcg.Seed(mix(uint64(seed), uint64(a.PCN), a.hash, uint64(period)))
	r := act.r
	if r.IntN(100) < a.quietPct {
		return 0, 0
	}
	normal := r.Int64N(a.magnitude) + a.magnitude/4
	var other int64
	if r.IntN(100) < 60 {
		other = r.Int64N(a.magnitude/2 + 1)
	}
	if a.creditNormal {
		return Cents(other), Cents(normal)
	}
	return Cents(normal), Cents(other)
}

// hashString is 64-bit FNV-1a.
func hashString(s string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= 1099511628211
	}
	return h
}

// mix turns four values into the two seeds of a PCG (splitmix64 finalizer chain), so
// nearby inputs give unrelated streams.
func mix(a, b, c, d uint64) (uint64, uint64) {
	h := splitmix(a ^ 0x9e3779b97f4a7c15)
	h = splitmix(h ^ b)
	h = splitmix(h ^ c)
	h = splitmix(h ^ d)
	return h, splitmix(h ^ 0xda942042e4dd58b5)
}

func splitmix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}
