// Package testenv gives tests the real services they run against (MariaDB) in a form
// that isolates them: each test gets its own database, dropped when it ends. Tests that
// need a service skip when it is not configured, unless CI says it must be there.
package testenv

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"rpt/internal/dsn"
)

// Environment variables the helpers read.
const (
	// EnvMySQLDSN is a mysql://user:pass@host:port/ DSN of a server the tests may create
	// and drop databases on, e.g. mysql://root@127.0.0.1:3306/.
	EnvMySQLDSN = "RPT_TEST_MYSQL_DSN"
	// EnvRequireMySQL=1 turns a missing EnvMySQLDSN from a skip into a failure, so CI
	// cannot pass by skipping.
	EnvRequireMySQL = "RPT_TEST_REQUIRE_MYSQL"
)

// MariaDB returns a mysql://... DSN of a new, empty database with a unique name on the
// server named by RPT_TEST_MYSQL_DSN; the database is dropped when the test ends. When
// the variable is unset the test is skipped, or fails when RPT_TEST_REQUIRE_MYSQL=1.
func MariaDB(tb testing.TB) string {
	tb.Helper()
	return mariaDB(tb, os.Getenv(EnvRequireMySQL) == "1")
}

// RequireMariaDB is MariaDB for tests that must not be skipped: it fails the test when
// RPT_TEST_MYSQL_DSN is unset.
func RequireMariaDB(tb testing.TB) string {
	tb.Helper()
	return mariaDB(tb, true)
}

// One small admin pool per server for the whole test binary: parallel tests each
// holding their own would eat the server's max_connections.
var (
	adminMu    sync.Mutex
	adminPools = map[string]*sql.DB{}
)

func adminPool(server string) (*sql.DB, error) {
	adminMu.Lock()
	defer adminMu.Unlock()
	if db, ok := adminPools[server]; ok {
		return db, nil
	}
	cfg, err := dsn.MySQL(server)
	if err != nil {
		return nil, err
	}
	cfg.DBName = ""
	connector, err := mysql.NewConnector(cfg)
	if err != nil {
		return nil, err
	}
	db := sql.OpenDB(connector)
	db.SetMaxOpenConns(2)
	adminPools[server] = db
	return db, nil
}

func mariaDB(tb testing.TB, required bool) string {
	tb.Helper()
	server := os.Getenv(EnvMySQLDSN)
	if server == "" {
		if required {
			tb.Fatalf("%s is not set (and MariaDB is required)", EnvMySQLDSN)
		}
		tb.Skipf("%s is not set; skipping MariaDB test", EnvMySQLDSN)
	}
	admin, err := adminPool(server)
	if err != nil {
		tb.Fatalf("%s: %v", EnvMySQLDSN, err)
	}

	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		tb.Fatalf("random database name: %v", err)
	}
	name := "rpt_test_" + hex.EncodeToString(b[:])
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := admin.ExecContext(ctx, "CREATE DATABASE `"+name+"` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"); err != nil {
		tb.Fatalf("create test database on %s: %v", dsn.Redact(server), err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := admin.ExecContext(ctx, "DROP DATABASE IF EXISTS `"+name+"`"); err != nil {
			tb.Errorf("drop test database %s: %v", name, err)
		}
	})

	u, err := url.Parse(server)
	if err != nil {
		tb.Fatalf("%s: %v", EnvMySQLDSN, err)
	}
	u.Path = "/" + name
	return u.String()
}
