package demo

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
)

// The warehouse shape of the accounting data: what the ETL writes into the MySQL
// warehouse from the Plex-side views, and what the shipped trial-balance reads. As in
// the old in-house warehouse, an account row carries its category and sub-category
// (flattened from Plex's category views), so a report joins three tables instead of
// seven. The keys serve the trial balance's access paths:
//
//   - accounting_balance is clustered by (pcn, account_no, period): the opening balance
//     (everything before start_period) is one ordered pass per account; on MySQL its
//     covering index (pcn, period, account_no, debit, credit) reads a range of
//     requested periods in the report's output order without touching the rows
//     (SQLite's planner reads the primary key instead, so SQLite has no such index).
//   - accounting_account is keyed by (pcn, account_no), the join and sort key of the
//     report; accounting_period by (pcn, period).
//
// Money follows the same rules as the Plex-side tables (KindMoney).
var (
	TableWarehouseAccount = Table{
		Name: "accounting_account",
		Columns: []Column{
			{"pcn", KindInt, 0},
			{"account_key", KindInt, 0},
			{"account_no", KindVarchar, 20},
			{"account_name", KindVarchar, 100},
			{"active", KindTinyInt, 0},
			{"category_type", KindVarchar, 20},
			{"category_name", KindVarchar, 100},
			{"sub_category_name", KindVarchar, 100},
			{"revenue_or_expense", KindTinyInt, 0},
		},
		PrimaryKey: []string{"pcn", "account_no"},
		Unique:     []string{"pcn", "account_key"},
		// Plex has accounts outside any category or sub-category.
		Nullable:  []string{"category_name", "sub_category_name"},
		PerPCN:    true,
		Clustered: true,
	}
	TableWarehousePeriod = Table{
		Name: "accounting_period",
		Columns: []Column{
			{"pcn", KindInt, 0},
			{"period", KindInt, 0},
			{"period_key", KindInt, 0},
			{"period_display", KindChar, 7},
			{"fiscal_order", KindInt, 0},
			{"quarter_group", KindInt, 0},
			{"begin_date", KindDate, 0},
			{"end_date", KindDate, 0},
			{"period_status", KindVarchar, 10},
			{"add_date", KindDateTime, 0},
			{"update_date", KindDateTime, 0},
		},
		PrimaryKey: []string{"pcn", "period"},
		Unique:     []string{"pcn", "period_key"},
		PerPCN:     true,
		Clustered:  true,
	}
	TableWarehouseBalance = Table{
		Name: "accounting_balance",
		Columns: []Column{
			{"pcn", KindInt, 0},
			{"account_key", KindInt, 0},
			{"account_no", KindVarchar, 20},
			{"period", KindInt, 0},
			{"debit", KindMoney, 0},
			{"credit", KindMoney, 0},
			{"balance", KindMoney, 0},
		},
		PrimaryKey: []string{"pcn", "account_no", "period"},
		Index:      []string{"pcn", "period", "account_no", "debit", "credit"},
		// SQLite's planner reads the requested periods from the primary key (in the
		// window's order) whether the index exists or not.
		IndexMySQLOnly: true,
		PerPCN:         true,
		Clustered:      true,
	}
)

// WarehouseTables returns the warehouse accounting tables, in the order Load fills them.
func WarehouseTables() []Table {
	return []Table{TableWarehouseAccount, TableWarehousePeriod, TableWarehouseBalance}
}

// warehouseAccountFrom extracts accounting_account from the Plex-side views, as the
// ETL does: the account's category and sub-category joined in. %s is the PCN list.
const warehouseAccountFrom = `SELECT a.pcn, a.account_key, a.account_no, a.account_name, a.active,
       COALESCE(c.category_type, a.category_type), c.category_name, s.sub_category_name, a.revenue_or_expense
FROM accounting_v_account_e a
LEFT JOIN accounting_v_category_account_e ca ON ca.pcn = a.pcn AND ca.account_no = a.account_no
LEFT JOIN accounting_v_category_e c ON c.pcn = ca.pcn AND c.category_no = ca.category_no
LEFT JOIN accounting_v_sub_category_account_e sa ON sa.pcn = a.pcn AND sa.account_no = a.account_no
LEFT JOIN accounting_v_sub_category_e s ON s.pcn = sa.pcn AND s.sub_category_no = sa.sub_category_no
WHERE a.pcn IN %s`

// warehouseSource is the Plex-side table each warehouse table is copied from column by
// column (same logical names); accounting_account is warehouseAccountFrom instead.
var warehouseSource = map[string]Table{
	TableWarehousePeriod.Name:  TablePeriod,
	TableWarehouseBalance.Name: TableBalance,
}

// copyWarehouse fills the warehouse tables of the PCNs from the Plex-side tables in the
// load's transaction. The copy runs in the database (INSERT ... SELECT): the rows are
// the generator's, already written once, so they are not generated and bound again.
func copyWarehouse(ctx context.Context, tx *sql.Tx, driver string, pcns []int) error {
	args := make([]any, len(pcns))
	for i, p := range pcns {
		args[i] = int64(p)
	}
	for _, t := range WarehouseTables() {
		if _, err := tx.ExecContext(ctx, warehouseCopySQL(t, driver, len(pcns)), args...); err != nil {
			return fmt.Errorf("fill %s: %w", t.Name, err)
		}
	}
	return nil
}

// warehouseCopySQL is the INSERT ... SELECT of t for n PCNs on a driver.
func warehouseCopySQL(t Table, driver string, n int) string {
	names := make([]string, len(t.Columns))
	for i, c := range t.Columns {
		names[i] = c.NameFor(driver)
	}
	insert := "INSERT INTO " + t.Name + " (" + strings.Join(names, ", ") + ")\n"
	src, ok := warehouseSource[t.Name]
	if !ok {
		return insert + fmt.Sprintf(warehouseAccountFrom, placeholders(n))
	}
	logical := make([]string, len(t.Columns))
	for i, c := range t.Columns {
		logical[i] = c.Name
	}
	return insert + "SELECT " + src.namesFor(logical, driver) + "\nFROM " + src.Name +
		"\nWHERE " + src.pcnColumn() + " IN " + placeholders(n)
}
