package reportdefs

import (
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"os"
	"strings"
	"testing"

	"github.com/go-sql-driver/mysql"

	"rpt/internal/dsn"
)

// tbSchemaMySQL is tbSchema on MySQL, both shapes: money is DECIMAL(19,2).
var tbSchemaMySQL = []string{
	`CREATE TABLE accounting_v_category_type (category_type VARCHAR(20) PRIMARY KEY, revenue_or_expense TINYINT)`,
	`CREATE TABLE accounting_v_category_e (pcn INT, category_no INT, category_name VARCHAR(100), category_type VARCHAR(20), PRIMARY KEY (pcn, category_no))`,
	`CREATE TABLE accounting_v_category_account_e (pcn INT, category_no INT, account_no VARCHAR(20), PRIMARY KEY (pcn, account_no))`,
	`CREATE TABLE accounting_v_sub_category_e (pcn INT, sub_category_no INT, sub_category_name VARCHAR(100), PRIMARY KEY (pcn, sub_category_no))`,
	`CREATE TABLE accounting_v_sub_category_account_e (pcn INT, sub_category_no INT, account_no VARCHAR(20), PRIMARY KEY (pcn, account_no))`,
	`CREATE TABLE accounting_v_account_e (pcn INT, account_key INT, account_no VARCHAR(20), account_name VARCHAR(100), active TINYINT,
	  category_type VARCHAR(20), revenue_or_expense TINYINT, PRIMARY KEY (pcn, account_key), UNIQUE (pcn, account_no))`,
	`CREATE TABLE accounting_v_period_e (pcn INT, period_key INT, period INT, period_display CHAR(7), fiscal_order INT,
	  quarter_group INT, begin_date DATE, end_date DATE, period_status VARCHAR(10), add_date DATETIME, update_date DATETIME,
	  PRIMARY KEY (pcn, period_key), UNIQUE (pcn, period))`,
	`CREATE TABLE accounting_v_balance_e (pcn INT, account_key INT, account_no VARCHAR(20), period INT,
	  debit DECIMAL(19,2), credit DECIMAL(19,2), balance DECIMAL(19,2), PRIMARY KEY (pcn, account_key, period))`,
	`CREATE TABLE accounting_account (pcn INT, account_key INT, account_no VARCHAR(20), account_name VARCHAR(100), active TINYINT,
	  category_type VARCHAR(20), category_name VARCHAR(100), sub_category_name VARCHAR(100), revenue_or_expense TINYINT,
	  PRIMARY KEY (pcn, account_no))`,
	`CREATE TABLE accounting_period (pcn INT, period INT, period_key INT, period_display CHAR(7), fiscal_order INT,
	  quarter_group INT, begin_date DATE, end_date DATE, period_status VARCHAR(10), add_date DATETIME, update_date DATETIME,
	  PRIMARY KEY (pcn, period))`,
	`CREATE TABLE accounting_balance (pcn INT, account_key INT, account_no VARCHAR(20), period INT,
	  debit DECIMAL(19,2), credit DECIMAL(19,2), balance DECIMAL(19,2), PRIMARY KEY (pcn, account_no, period))`,
}

// TestTrialBalanceMySQL runs both trial balances' MySQL SQL on MariaDB/MySQL against the same
// hand-worked values as the SQLite test. It needs RPT_TEST_MYSQL_DSN.
func TestTrialBalanceMySQL(t *testing.T) {
	t.Parallel()
	url := os.Getenv("RPT_TEST_MYSQL_DSN")
	if url == "" {
		t.Skip("RPT_TEST_MYSQL_DSN not set")
	}
	cfg, err := dsn.MySQL(url)
	if err != nil {
		t.Fatal(err)
	}
	admin, err := sql.Open("mysql", cfg.FormatDSN())
	if err != nil {
		t.Fatal(err)
	}
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	name := "rpt_test_tb_" + hex.EncodeToString(b[:])
	if _, err := admin.Exec("CREATE DATABASE " + name); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if _, err := admin.Exec("DROP DATABASE " + name); err != nil {
			t.Errorf("drop test database: %v", err)
		}
		admin.Close()
	})
	dbCfg := cfg.Clone()
	dbCfg.DBName = name
	connector, err := mysql.NewConnector(dbCfg)
	if err != nil {
		t.Fatal(err)
	}
	db := sql.OpenDB(connector)
	t.Cleanup(func() { db.Close() })
	for _, q := range tbSchemaMySQL {
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("%s: %v", strings.Fields(q)[2], err)
		}
	}
	fillTrialBalance(t, db, false)
	for _, report := range trialBalanceReports {
		t.Run(report, func(t *testing.T) { checkTrialBalance(t, db, "mysql", report) })
	}
}
