package demo

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// testEnd fixes the periods: 24 months from 2024-11 to 2026-10, so two year boundaries
// are crossed.
var testEnd = time.Date(2026, 11, 15, 8, 0, 0, 0, time.UTC)

func testOptions() Options {
	return Options{Scale: 1, End: testEnd, Seed: 42}
}

func TestCentsString(t *testing.T) {
	t.Parallel()
	tests := []struct {
		c    Cents
		want string
	}{
		{0, "0.00"},
		{5, "0.05"},
		{-5, "-0.05"},
		{100, "1.00"},
		{123456, "1234.56"},
		{-123450, "-1234.50"},
		{math.MaxInt64, "92233720368547758.07"},
		{math.MinInt64, "-92233720368547758.08"},
	}
	for _, tt := range tests {
		if got := tt.c.String(); got != tt.want {
			t.Errorf("Cents(%d).String() = %q, want %q", int64(tt.c), got, tt.want)
		}
	}
}

func TestOptionsInvalid(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		opts  Options
		field string
	}{
		{"zero scale", Options{}, "scale"},
		{"negative scale", Options{Scale: -1}, "scale"},
		{"huge scale", Options{Scale: MaxScale + 1}, "scale"},
		{"negative periods", Options{Scale: 1, Periods: -3}, "periods"},
		{"too many periods", Options{Scale: 1, Periods: MaxPeriods + 1}, "periods"},
		{"zero pcn", Options{Scale: 1, PCNs: []int{123681, 0}}, "pcns[1]"},
		{"negative pcn", Options{Scale: 1, PCNs: []int{-4}}, "pcns[0]"},
		{"duplicate pcn", Options{Scale: 1, PCNs: []int{300758, 300758}}, "pcns[1]"},
		{"end before 1900", Options{Scale: 1, End: time.Date(1901, 1, 1, 0, 0, 0, 0, time.UTC), Periods: 24}, "end"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			checks := map[string]error{
				"Generate": Generate(tt.opts, func(Table, []any) error { return nil }),
			}
			_, checks["Accounts"] = Accounts(tt.opts, DefaultPCN)
			_, checks["Periods"] = Periods(tt.opts)
			_, checks["Balances"] = Balances(tt.opts, DefaultPCN)
			_, checks["ExpectedTrialBalance"] = ExpectedTrialBalance(tt.opts, DefaultPCN, 202501, 202512)
			for fn, err := range checks {
				if !errors.Is(err, ErrInvalid) {
					t.Errorf("%s: error %v, want ErrInvalid", fn, err)
					continue
				}
				if !strings.Contains(err.Error(), tt.field) {
					t.Errorf("%s: error %q does not name %q", fn, err, tt.field)
				}
			}
		})
	}
}

func TestPCNNotInOptions(t *testing.T) {
	t.Parallel()
	opts := testOptions()
	if _, err := Accounts(opts, 300758); !errors.Is(err, ErrInvalid) {
		t.Errorf("Accounts of a PCN not in the options: %v, want ErrInvalid", err)
	}
	if _, err := Balances(opts, 300758); !errors.Is(err, ErrInvalid) {
		t.Errorf("Balances of a PCN not in the options: %v, want ErrInvalid", err)
	}
	if _, err := ExpectedTrialBalance(opts, 300758, 202501, 202502); !errors.Is(err, ErrInvalid) {
		t.Errorf("ExpectedTrialBalance of a PCN not in the options: %v, want ErrInvalid", err)
	}
}

// digest hashes every row Generate emits, with the table name and the values' types.
func digest(t *testing.T, opts Options) (string, map[string]int) {
	t.Helper()
	h := sha256.New()
	counts := map[string]int{}
	var buf []byte
	err := Generate(opts, func(tb Table, row []any) error {
		counts[tb.Name]++
		if len(row) != len(tb.Columns) {
			return fmt.Errorf("%s: %d values for %d columns", tb.Name, len(row), len(tb.Columns))
		}
		b := append(buf[:0], tb.Name...)
		for _, v := range row {
			switch v := v.(type) {
			case int64:
				b = append(b, "|i"...)
				b = strconv.AppendInt(b, v, 10)
			case Cents:
				b = append(b, "|c"...)
				b = strconv.AppendInt(b, int64(v), 10)
			case string:
				b = append(b, "|s"...)
				b = append(b, v...)
			default:
				return fmt.Errorf("%s: value %#v of unexpected type %T", tb.Name, v, v)
			}
		}
		buf = append(b, '\n')
		h.Write(buf)
		return nil
	})
	if err != nil {
		t.Fatalf("Generate: %v", err)
	}
	return fmt.Sprintf("%x", h.Sum(nil)), counts
}

func TestGenerateDeterministic(t *testing.T) {
	t.Parallel()
	opts := testOptions()
	opts.PCNs = []int{123681, 300758}
	a, counts := digest(t, opts)
	b, _ := digest(t, opts)
	if a != b {
		t.Fatalf("two generations with the same options differ")
	}
	// End is normalized to its month: any time in November gives the same data.
	later := opts
	later.End = time.Date(2026, 11, 30, 23, 59, 0, 0, time.FixedZone("CET", 3600))
	if c, _ := digest(t, later); c != a {
		t.Errorf("an End later in the same month changed the data")
	}
	other := opts
	other.Seed = 43
	if c, _ := digest(t, other); c == a {
		t.Errorf("another seed gave the same data")
	}

	want := map[string]int{
		TableCategoryType.Name:       5,
		TableCategory.Name:           2 * 10,
		TableSubCategory.Name:        2 * 40,
		TableAccount.Name:            2 * AccountsPerScale,
		TableCategoryAccount.Name:    2 * AccountsPerScale,
		TableSubCategoryAccount.Name: 2 * AccountsPerScale,
		TablePeriod.Name:             2 * DefaultPeriods,
		TableBalance.Name:            2 * AccountsPerScale * DefaultPeriods,
	}
	for name, n := range want {
		if counts[name] != n {
			t.Errorf("%s: %d rows, want %d", name, counts[name], n)
		}
	}
}

func TestGenerateStopsOnError(t *testing.T) {
	t.Parallel()
	stop := errors.New("stop")
	n := 0
	err := Generate(testOptions(), func(Table, []any) error {
		n++
		if n == 10 {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) || n != 10 {
		t.Errorf("Generate returned %v after %d rows, want the callback's error after 10", err, n)
	}
}

// TestActivityIndependentOfScale: an account keeps its postings when the scale or the
// number of periods changes, except where they depend on the rest of the chart or on
// the periods generated: the control accounts (the other sides of everything), and the
// close of the first generated year (202411..202412 at scale 1, 202405..202412 here).
func TestActivityIndependentOfScale(t *testing.T) {
	t.Parallel()
	small := testOptions()
	big := small
	big.Scale = 2
	big.Periods = 30 // more periods, ending at the same month
	accts, err := Accounts(small, DefaultPCN)
	if err != nil {
		t.Fatal(err)
	}
	control, revExp := map[string]bool{}, map[string]bool{}
	for _, a := range accts {
		control[a.No], revExp[a.No] = a.control != ctlNone, a.RevenueOrExpense
	}
	want := map[string]Balance{}
	seq, err := Balances(small, DefaultPCN)
	if err != nil {
		t.Fatal(err)
	}
	for b := range seq {
		want[fmt.Sprint(b.AccountNo, b.Period)] = b
	}
	seq, err = Balances(big, DefaultPCN)
	if err != nil {
		t.Fatal(err)
	}
	found, compared := 0, 0
	for b := range seq {
		w, ok := want[fmt.Sprint(b.AccountNo, b.Period)]
		if !ok {
			continue
		}
		found++
		if control[b.AccountNo] || (b.Period == 202412 && revExp[b.AccountNo]) {
			continue
		}
		compared++
		if w.Debit != b.Debit || w.Credit != b.Credit {
			t.Fatalf("%s %d: scale 2 gives %s/%s, scale 1 %s/%s", b.AccountNo, b.Period, b.Debit, b.Credit, w.Debit, w.Credit)
		}
	}
	if found != len(want) || compared < found*9/10 {
		t.Errorf("scale 2 has %d of the %d balances of scale 1, %d compared", found, len(want), compared)
	}
}

var accountNoPattern = regexp.MustCompile(`^[1-7]\d{4}-\d{3}-\d{4}$`)

func TestAccountsShape(t *testing.T) {
	t.Parallel()
	opts := testOptions()
	accts, err := Accounts(opts, DefaultPCN)
	if err != nil {
		t.Fatal(err)
	}
	if len(accts) != AccountsPerScale {
		t.Fatalf("%d accounts, want %d", len(accts), AccountsPerScale)
	}
	if n := len(Categories()); n != 10 {
		t.Errorf("%d categories, want 10", n)
	}
	if n := len(SubCategories()); n != 40 {
		t.Errorf("%d sub-categories, want 40", n)
	}
	byType := map[string]int{}
	subs := map[int]bool{}
	inactive := 0
	for i, a := range accts {
		if !accountNoPattern.MatchString(a.No) {
			t.Errorf("account_no %q is not like 10000-000-0000", a.No)
		}
		if len(a.Name) > 100 || a.Name == "" {
			t.Errorf("account %s: name %q does not fit VARCHAR(100)", a.No, a.Name)
		}
		if i > 0 && (accts[i-1].No >= a.No || accts[i-1].Key >= a.Key) {
			t.Errorf("accounts %d and %d are not in ascending account_no and key order", i-1, i)
		}
		if a.Key <= 0 || a.Key > math.MaxInt32 {
			t.Errorf("account key %d does not fit INT", a.Key)
		}
		if a.RevenueOrExpense != (a.CategoryType == TypeRevenue || a.CategoryType == TypeExpense) {
			t.Errorf("account %s: revenue_or_expense %v for %s", a.No, a.RevenueOrExpense, a.CategoryType)
		}
		byType[a.CategoryType]++
		subs[a.SubCategoryNo] = true
		if !a.Active {
			inactive++
		}
	}
	for _, ct := range CategoryTypes() {
		if byType[ct] == 0 {
			t.Errorf("no accounts of type %s", ct)
		}
	}
	if len(subs) != 40 {
		t.Errorf("accounts use %d sub-categories, want 40", len(subs))
	}
	if inactive == 0 || inactive > len(accts)/5 {
		t.Errorf("%d inactive accounts of %d, want a few", inactive, len(accts))
	}

	// Activity: some accounts never move, most do, and balance = debit - credit.
	moved := map[int]bool{}
	seq, err := Balances(opts, DefaultPCN)
	if err != nil {
		t.Fatal(err)
	}
	rows := 0
	for b := range seq {
		rows++
		if b.Balance != b.Debit-b.Credit || b.Debit < 0 || b.Credit < 0 {
			t.Fatalf("balance row %+v is inconsistent", b)
		}
		if b.Debit != 0 || b.Credit != 0 {
			moved[b.AccountKey] = true
		}
	}
	if rows != AccountsPerScale*DefaultPeriods {
		t.Errorf("%d balance rows, want %d", rows, AccountsPerScale*DefaultPeriods)
	}
	if idle := len(accts) - len(moved); idle <= inactive || idle > len(accts)/4 {
		t.Errorf("%d accounts without any activity (%d inactive), want the inactive ones and some more", idle, inactive)
	}

	scaled := opts
	scaled.Scale = 3
	accts3, err := Accounts(scaled, DefaultPCN)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, a := range accts3 {
		if seen[a.No] || !accountNoPattern.MatchString(a.No) {
			t.Fatalf("scale 3: account_no %q repeated or malformed", a.No)
		}
		seen[a.No] = true
	}
	if len(accts3) != 3*AccountsPerScale {
		t.Errorf("scale 3: %d accounts, want %d", len(accts3), 3*AccountsPerScale)
	}
}

func TestPeriods(t *testing.T) {
	t.Parallel()
	ps, err := Periods(testOptions())
	if err != nil {
		t.Fatal(err)
	}
	if len(ps) != DefaultPeriods {
		t.Fatalf("%d periods, want %d", len(ps), DefaultPeriods)
	}
	if first, last := ps[0], ps[len(ps)-1]; first.Period != 202411 || last.Period != 202610 {
		t.Errorf("periods %d..%d, want 202411..202610", first.Period, last.Period)
	}
	keys := map[int]bool{}
	for i, p := range ps {
		want := fmt.Sprintf("%04d-%02d", p.Period/100, p.Period%100)
		if p.Display != want || p.FiscalOrder != p.Period%100 || p.Quarter != (p.FiscalOrder+2)/3 {
			t.Errorf("period %+v: display, fiscal order or quarter wrong", p)
		}
		if p.Begin.Day() != 1 || p.End.AddDate(0, 0, 1).Day() != 1 || p.Begin.Month() != p.End.Month() {
			t.Errorf("period %d: begin %s end %s", p.Period, p.Begin, p.End)
		}
		wantStatus := "closed"
		if i == len(ps)-1 {
			wantStatus = "open"
		}
		if p.Status != wantStatus {
			t.Errorf("period %d: status %q, want %q", p.Period, p.Status, wantStatus)
		}
		if keys[p.Key] || p.Key == p.Period {
			t.Errorf("period %d: key %d repeated or equal to the period", p.Period, p.Key)
		}
		keys[p.Key] = true
	}
}

func TestExpectedTrialBalance(t *testing.T) {
	t.Parallel()
	opts := testOptions()
	accts, err := Accounts(opts, DefaultPCN)
	if err != nil {
		t.Fatal(err)
	}
	// Independent of ExpectedTrialBalance's loop: sums over the Balances stream.
	type key struct {
		no     string
		period int
	}
	current := map[key]int64{}
	seq, err := Balances(opts, DefaultPCN)
	if err != nil {
		t.Fatal(err)
	}
	for b := range seq {
		current[key{b.AccountNo, b.Period}] = int64(b.Balance)
	}
	ps, _ := Periods(opts)
	ytd := func(a Account, period int) int64 {
		var sum int64
		for _, p := range ps {
			if p.Period > period {
				break
			}
			if a.RevenueOrExpense && p.Period/100 != period/100 {
				continue
			}
			sum += current[key{a.No, p.Period}]
		}
		return sum
	}

	tests := []struct {
		name       string
		start, end int
		periods    int
	}{
		{"13 months across a year end", 202510, 202610, 13},
		{"one month", 202501, 202501, 1},
		{"range wider than the data", 202001, 203012, 24},
		{"range before the data", 201901, 201912, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			rows, err := ExpectedTrialBalance(opts, DefaultPCN, tt.start, tt.end)
			if err != nil {
				t.Fatal(err)
			}
			if len(rows) != tt.periods*len(accts) {
				t.Fatalf("%d rows, want %d", len(rows), tt.periods*len(accts))
			}
			for i, r := range rows {
				a := accts[i%len(accts)]
				if r.AccountNo != a.No || r.AccountName != a.Name || r.CategoryType != a.CategoryType ||
					r.CategoryName != a.CategoryName || r.SubCategoryName != a.SubCategoryName {
					t.Fatalf("row %d: %+v is not account %+v (order: period, account_no)", i, r, a)
				}
				if i > 0 && rows[i-1].Period > r.Period {
					t.Fatalf("row %d: period %d after %d", i, r.Period, rows[i-1].Period)
				}
				if want := current[key{a.No, r.Period}]; r.CurrentCents != want {
					t.Fatalf("row %d %s %d: current %d, want %d", i, a.No, r.Period, r.CurrentCents, want)
				}
				if want := ytd(a, r.Period); r.YTDCents != want {
					t.Fatalf("row %d %s %s %d: ytd %d, want %d", i, a.CategoryType, a.No, r.Period, r.YTDCents, want)
				}
			}
		})
	}

	// The January reset shows in the data: for a revenue account with activity, YTD in
	// 202601 equals its current amount; a balance-sheet account carries 2025 on.
	rows, err := ExpectedTrialBalance(opts, DefaultPCN, 202601, 202601)
	if err != nil {
		t.Fatal(err)
	}
	var resets, carries int
	for _, r := range rows {
		if RevenueOrExpense(r.CategoryType) && r.YTDCents != r.CurrentCents {
			t.Fatalf("%s %s: YTD %d in January is not the month's %d", r.CategoryType, r.AccountNo, r.YTDCents, r.CurrentCents)
		}
		if RevenueOrExpense(r.CategoryType) && r.CurrentCents != 0 {
			resets++
		}
		if !RevenueOrExpense(r.CategoryType) && r.YTDCents != r.CurrentCents {
			carries++
		}
	}
	if resets == 0 || carries == 0 {
		t.Errorf("January: %d revenue/expense rows with activity, %d balance-sheet rows carrying a balance; want both", resets, carries)
	}
}

func TestExpectedTrialBalanceInvalidPeriods(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		start, end int
		field      string
	}{
		{"month 13", 202513, 202601, "start_period"},
		{"month 0", 202501, 202600, "end_period"},
		{"not YYYYMM", 2025, 202601, "start_period"},
		{"start after end", 202602, 202601, "start_period"},
	}
	for _, tt := range tests {
		_, err := ExpectedTrialBalance(testOptions(), DefaultPCN, tt.start, tt.end)
		if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tt.field) {
			t.Errorf("%s: error %v, want ErrInvalid naming %s", tt.name, err, tt.field)
		}
	}
}
