// Package source runs report SQL against named data sources (SQLite, MySQL/MariaDB,
// SQL Server; Plex web services and ODBC later) and streams typed rows. Parameters are
// always bound: ":name" in the SQL becomes the driver's placeholder, and a list value
// becomes one placeholder per element.
package source

import (
	"context"
	"errors"
	"time"

	"rpt/internal/dsn"
)

// Type is the portable type of a result column. Values are carried as:
// TypeInt int64, TypeDecimal string (exact, e.g. "-12.30"), TypeFloat float64,
// TypeString string, TypeBool bool, TypeDate string "YYYY-MM-DD",
// TypeDateTime string RFC 3339 in UTC, TypeBytes []byte; NULL is nil in any type.
type Type string

const (
	TypeInt      Type = "int"
	TypeDecimal  Type = "decimal"
	TypeFloat    Type = "float"
	TypeString   Type = "string"
	TypeBool     Type = "bool"
	TypeDate     Type = "date"
	TypeDateTime Type = "datetime"
	TypeBytes    Type = "bytes"
)

// Column names a result column and its type.
type Column struct {
	Name string `json:"name"`
	Type Type   `json:"type"`
}

// Rows is a stream of typed rows. Values returns the current row; the slice is reused
// by the next call to Next, so copy what you keep.
type Rows interface {
	Columns() []Column
	Next() bool
	Values() []any
	Err() error
	Close() error
}

// Source is one named, opened data source.
type Source interface {
	// Name is the name the source has in the configuration.
	Name() string
	// Driver is the driver name (sqlite, mysql, sqlserver) that picks a definition's dialect SQL.
	Driver() string
	// Query runs sql with ":name" parameters bound from params (int64, string, bool,
	// float64, nil, or []any for lists). Cancelling ctx cancels the query on the server.
	Query(ctx context.Context, sql string, params map[string]any) (Rows, error)
	Close() error
}

// Config is one entry of rpt.yaml's sources:.
type Config struct {
	Driver        string `yaml:"driver"`
	DSN           string `yaml:"dsn"`
	URL           string `yaml:"url"`
	User          string `yaml:"user"`
	Password      string `yaml:"password"`
	MaxConcurrent int    `yaml:"max_concurrent"`

	// Plex web services (driver plexws, package internal/source/plexws): the account
	// of each PCN, the smallest gap between two calls, one call's time limit (retries
	// included) and a CA file for a corporate TLS proxy.
	Accounts    map[int]Account `yaml:"-"`
	MinInterval time.Duration   `yaml:"-"`
	Timeout     time.Duration   `yaml:"-"`
	CAFile      string          `yaml:"-"`

	// Dialect is the SQL an odbc source's server speaks (sqlserver, the default: Plex's
	// ODBC data source; mysql: MariaDB through its ODBC driver, the tests' stand-in). It
	// picks a definition's dialects: entry and how procedures are called; the other
	// drivers speak their own.
	Dialect string `yaml:"dialect"`
}

// Account is a Plex web-service user: Password, or else the contents of PasswordFile
// (a mounted Kubernetes Secret), read when the source is opened.
type Account struct {
	User         string `json:"user"`
	Password     string `json:"-"`
	PasswordFile string `json:"password_file,omitempty"`
}

// ODBCDialects are the dialects an odbc source may speak, the default first.
var ODBCDialects = []string{DialectSQLServer, DialectMySQL}

// SQLDialect is the dialect of the SQL a source of this configuration runs: the
// definition's dialects: entry it picks, and how it calls procedures. It is what the
// opened source's Driver returns.
func (c Config) SQLDialect() string {
	d := c.DriverName()
	if d == DriverODBC {
		if c.Dialect != "" {
			return c.Dialect
		}
		return ODBCDialects[0]
	}
	return d
}

// NeedsColumnTypes reports whether a definition run on a source of driver must type
// every result column in its columns: (odbc: what an ODBC driver says of a column's type
// is not trusted with money, so the definition says it).
func NeedsColumnTypes(driver string) bool { return driver == DriverODBC }

// ColumnTyped is a Source whose every result column a definition must type (see
// NeedsColumnTypes); Run refuses a result with a column the types do not name.
type ColumnTyped interface {
	NeedsColumnTypes() bool
}

// String never shows the password, so a configuration printed or logged by mistake
// (%v, %+v, a text log) does not carry it; JSON leaves it out by its tag.
func (a Account) String() string {
	s := a.User
	if a.PasswordFile != "" {
		s += " (password from " + a.PasswordFile + ")"
	} else if a.Password != "" {
		s += " (password hidden)"
	}
	return s
}

// GoString is String for %#v.
func (a Account) GoString() string { return "source.Account{" + a.String() + "}" }

// DriverName is the source's driver: Driver, or else the scheme of DSN (as Open picks
// it); "" when neither says.
func (c Config) DriverName() string {
	if c.Driver != "" {
		return c.Driver
	}
	if s, err := dsn.Scheme(c.DSN); err == nil && c.DSN != "" {
		return s
	}
	return ""
}

// ErrUnavailable wraps errors reaching a source (exit code 5).
var ErrUnavailable = errors.New("source unavailable")

// ErrUnknownParam is returned when the SQL names a parameter that was not given.
var ErrUnknownParam = errors.New("unknown parameter")
