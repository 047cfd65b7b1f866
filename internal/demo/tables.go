package demo

import (
	"fmt"
	"slices"
	"strings"
)

// Kind is the type of a table column; each driver maps it to its own SQL type.
type Kind int

const (
	KindInt      Kind = iota // INT; values int64
	KindTinyInt              // TINYINT 0/1; values int64
	KindVarchar              // VARCHAR(Size); values string
	KindChar                 // CHAR(Size); values string
	KindDate                 // DATE; values string "YYYY-MM-DD"
	KindDateTime             // DATETIME (UTC); values string "YYYY-MM-DD HH:MM:SS"
	KindMoney                // DECIMAL(19,2) on MySQL, INTEGER cents in NAME_cents on SQLite; values Cents
	KindBigInt               // BIGINT; values int64
	KindHours                // DECIMAL(9,4) on MySQL, INTEGER ten-thousandths in NAME_x10000 on SQLite; values Hours
)

// Column is one column of a Table.
type Column struct {
	Name string
	Kind Kind
	Size int // for KindVarchar and KindChar
}

// NameFor returns the column's name on a driver ("sqlite" or "mysql"): SQLite keeps
// money as integer cents in a column with a _cents suffix, and hours as integer
// ten-thousandths of an hour in a column with an _x10000 suffix.
func (c Column) NameFor(driver string) string {
	if driver == "sqlite" {
		switch c.Kind {
		case KindMoney:
			return c.Name + "_cents"
		case KindHours:
			return c.Name + "_x10000"
		}
	}
	return c.Name
}

// Table describes one of the tables the generator fills.
type Table struct {
	Name       string
	Columns    []Column
	PrimaryKey []string
	Unique     []string // one UNIQUE key, if any
	Index      []string // one secondary index, if any
	// IndexMySQLOnly creates Index on MySQL only: for an index that serves a plan of
	// MySQL's optimizer that SQLite's planner does not choose, so SQLite loads skip
	// its cost.
	IndexMySQLOnly bool
	PerPCN         bool // has a pcn column; loads replace the rows of their PCNs
	// PCNColumn names the PCN column when it is not "pcn" (the work-center log has
	// Plex's plexus_customer_no).
	PCNColumn string
	// Nullable names the columns that may be NULL (values nil); the others are NOT NULL.
	Nullable []string
	// Clustered makes SQLite store the rows in primary-key order (WITHOUT ROWID), as
	// InnoDB does anyway, for tables read by range scans of the key.
	Clustered bool
}

// pcnColumn is the name of t's PCN column.
func (t Table) pcnColumn() string {
	if t.PCNColumn != "" {
		return t.PCNColumn
	}
	return "pcn"
}

// column returns t's column called name (a logical name, as in Columns).
func (t Table) column(name string) (Column, bool) {
	for _, c := range t.Columns {
		if c.Name == name {
			return c, true
		}
	}
	return Column{}, false
}

// namesFor maps logical column names of t to their names on a driver.
func (t Table) namesFor(names []string, driver string) string {
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = n
		if c, ok := t.column(n); ok {
			out[i] = c.NameFor(driver)
		}
	}
	return strings.Join(out, ", ")
}

// The accounting tables, in the order Generate emits (and Load creates) them.
var (
	TableCategoryType = Table{
		Name: "accounting_v_category_type",
		Columns: []Column{
			{"category_type", KindVarchar, 20},
			{"revenue_or_expense", KindTinyInt, 0},
		},
		PrimaryKey: []string{"category_type"},
	}
	TableCategory = Table{
		Name: "accounting_v_category_e",
		Columns: []Column{
			{"pcn", KindInt, 0},
			{"category_no", KindInt, 0},
			{"category_name", KindVarchar, 100},
			{"category_type", KindVarchar, 20},
		},
		PrimaryKey: []string{"pcn", "category_no"},
		PerPCN:     true,
	}
	TableSubCategory = Table{
		Name: "accounting_v_sub_category_e",
		Columns: []Column{
			{"pcn", KindInt, 0},
			{"sub_category_no", KindInt, 0},
			{"sub_category_name", KindVarchar, 100},
		},
		PrimaryKey: []string{"pcn", "sub_category_no"},
		PerPCN:     true,
	}
	TableAccount = Table{
		Name: "accounting_v_account_e",
		Columns: []Column{
			{"pcn", KindInt, 0},
			{"account_key", KindInt, 0},
			{"account_no", KindVarchar, 20},
			{"account_name", KindVarchar, 100},
			{"active", KindTinyInt, 0},
			{"category_type", KindVarchar, 20},
			{"revenue_or_expense", KindTinyInt, 0},
		},
		PrimaryKey: []string{"pcn", "account_key"},
		Unique:     []string{"pcn", "account_no"},
		PerPCN:     true,
	}
	TableCategoryAccount = Table{
		Name: "accounting_v_category_account_e",
		Columns: []Column{
			{"pcn", KindInt, 0},
			{"category_no", KindInt, 0},
			{"account_no", KindVarchar, 20},
		},
		PrimaryKey: []string{"pcn", "account_no"},
		PerPCN:     true,
	}
	TableSubCategoryAccount = Table{
		Name: "accounting_v_sub_category_account_e",
		Columns: []Column{
			{"pcn", KindInt, 0},
			{"sub_category_no", KindInt, 0},
			{"account_no", KindVarchar, 20},
		},
		PrimaryKey: []string{"pcn", "account_no"},
		PerPCN:     true,
	}
	TablePeriod = Table{
		Name: "accounting_v_period_e",
		Columns: []Column{
			{"pcn", KindInt, 0},
			{"period_key", KindInt, 0},
			{"period", KindInt, 0},
			{"period_display", KindChar, 7},
			{"fiscal_order", KindInt, 0},
			{"quarter_group", KindInt, 0},
			{"begin_date", KindDate, 0},
			{"end_date", KindDate, 0},
			{"period_status", KindVarchar, 10},
			{"add_date", KindDateTime, 0},
			{"update_date", KindDateTime, 0},
		},
		PrimaryKey: []string{"pcn", "period_key"},
		Unique:     []string{"pcn", "period"},
		PerPCN:     true,
	}
	TableBalance = Table{
		Name: "accounting_v_balance_e",
		Columns: []Column{
			{"pcn", KindInt, 0},
			{"account_key", KindInt, 0},
			{"account_no", KindVarchar, 20},
			{"period", KindInt, 0},
			{"debit", KindMoney, 0},
			{"credit", KindMoney, 0},
			{"balance", KindMoney, 0},
		},
		// trial-balance-live's window reads a PCN's balances by account and period: the
		// primary key's order on SQLite and MariaDB alike, which is why the table has no
		// (pcn, period) index (neither planner used it; SQLite's sorted more with it).
		PrimaryKey: []string{"pcn", "account_key", "period"},
		PerPCN:     true,
	}
)

// Tables returns the accounting tables in the order Generate emits them (the production
// tables are ProductionTables).
func Tables() []Table {
	return []Table{TableCategoryType, TableCategory, TableSubCategory, TableAccount,
		TableCategoryAccount, TableSubCategoryAccount, TablePeriod, TableBalance}
}

// Generate streams every row of the accounting data set: first the category types, then
// for each PCN in order its categories, sub-categories, accounts, category and
// sub-category links, periods and balances, each table's rows together (the production
// tables come from GenerateProduction). Row values follow the columns' Kinds; the
// slice is reused after fn returns, so copy what you keep. An error from fn stops
// generation and is returned as is.
func Generate(opts Options, fn func(Table, []any) error) error {
	o, err := opts.normalize()
	if err != nil {
		return err
	}
	row := make([]any, 0, 16)
	emit := func(t Table, vals ...any) error {
		row = append(row[:0], vals...)
		return fn(t, row)
	}
	for _, ct := range CategoryTypes() {
		if err := emit(TableCategoryType, ct, boolInt(RevenueOrExpense(ct))); err != nil {
			return err
		}
	}
	pers := periods(o)
	for _, pcn := range o.PCNs {
		p := int64(pcn)
		for _, c := range Categories() {
			if err := emit(TableCategory, p, int64(c.No), c.Name, c.Type); err != nil {
				return err
			}
		}
		for _, s := range SubCategories() {
			if err := emit(TableSubCategory, p, int64(s.No), s.Name); err != nil {
				return err
			}
		}
		l := newLedger(o, pcn)
		accts := l.accts
		for _, a := range accts {
			if err := emit(TableAccount, p, int64(a.Key), a.No, a.Name, boolInt(a.Active), a.CategoryType, boolInt(a.RevenueOrExpense)); err != nil {
				return err
			}
		}
		for _, a := range accts {
			if err := emit(TableCategoryAccount, p, int64(a.CategoryNo), a.No); err != nil {
				return err
			}
		}
		for _, a := range accts {
			if err := emit(TableSubCategoryAccount, p, int64(a.SubCategoryNo), a.No); err != nil {
				return err
			}
		}
		for _, pe := range pers {
			if err := emit(TablePeriod, p, int64(pe.Key), int64(pe.Period), pe.Display, int64(pe.FiscalOrder), int64(pe.Quarter),
				pe.Begin.Format(dateLayout), pe.End.Format(dateLayout), pe.Status,
				pe.Added.Format(dateTimeLayout), pe.Updated.Format(dateTimeLayout)); err != nil {
				return err
			}
		}
		for i := range accts {
			a := &accts[i]
			for pi, pe := range pers {
				d, c := l.posting(i, pi)
				if err := emit(TableBalance, p, int64(a.Key), a.No, int64(pe.Period), d, c, d-c); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

const (
	dateLayout     = "2006-01-02"
	dateTimeLayout = "2006-01-02 15:04:05"
)

func boolInt(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

// createSQL returns the CREATE TABLE IF NOT EXISTS statements of t for a driver.
func createSQL(t Table, driver string) []string {
	var b strings.Builder
	fmt.Fprintf(&b, "CREATE TABLE IF NOT EXISTS %s (\n", t.Name)
	for _, c := range t.Columns {
		null := " NOT NULL"
		if slices.Contains(t.Nullable, c.Name) {
			null = ""
		}
		fmt.Fprintf(&b, "  %s %s%s,\n", c.NameFor(driver), sqlType(c, driver), null)
	}
	fmt.Fprintf(&b, "  PRIMARY KEY (%s)", t.namesFor(t.PrimaryKey, driver))
	if len(t.Unique) > 0 {
		if driver == "mysql" {
			fmt.Fprintf(&b, ",\n  UNIQUE KEY ux_%s (%s)", t.Name, t.namesFor(t.Unique, driver))
		} else {
			fmt.Fprintf(&b, ",\n  UNIQUE (%s)", t.namesFor(t.Unique, driver))
		}
	}
	if len(t.Index) > 0 && driver == "mysql" {
		fmt.Fprintf(&b, ",\n  KEY ix_%s (%s)", t.Name, t.namesFor(t.Index, driver))
	}
	b.WriteString("\n)")
	if driver == "mysql" {
		b.WriteString(" ENGINE=InnoDB DEFAULT CHARSET=utf8mb4")
	} else if t.Clustered {
		b.WriteString(" WITHOUT ROWID")
	}
	stmts := []string{b.String()}
	if len(t.Index) > 0 && driver == "sqlite" && !t.IndexMySQLOnly {
		stmts = append(stmts, fmt.Sprintf("CREATE INDEX IF NOT EXISTS ix_%s ON %s (%s)", t.Name, t.Name, t.namesFor(t.Index, driver)))
	}
	return stmts
}

func sqlType(c Column, driver string) string {
	if driver == "sqlite" {
		switch c.Kind {
		case KindInt, KindTinyInt, KindMoney, KindBigInt, KindHours:
			return "INTEGER"
		}
		return "TEXT"
	}
	switch c.Kind {
	case KindInt:
		return "INT"
	case KindTinyInt:
		return "TINYINT"
	case KindVarchar:
		return fmt.Sprintf("VARCHAR(%d)", c.Size)
	case KindChar:
		return fmt.Sprintf("CHAR(%d)", c.Size)
	case KindDate:
		return "DATE"
	case KindDateTime:
		return "DATETIME"
	case KindMoney:
		return "DECIMAL(19,2)"
	case KindBigInt:
		return "BIGINT"
	case KindHours:
		return "DECIMAL(9,4)"
	}
	return "TEXT"
}
