// Package odbc is the odbc source driver: report SQL and stored-procedure calls through
// an ODBC driver manager (unixODBC) and a vendor driver, as Plex's ODBC data source is
// reached. It is built only with -tags odbc (it needs cgo and libodbc); the default,
// pure-Go build leaves it out and says so when an odbc source is opened
// (source.NotBuilt). cmd/rpt imports it in that build, and it registers itself with
// source.Register.
//
// It talks to the driver manager directly (ODBC's W functions) rather than through a
// database/sql driver, for three reasons: every value is fetched as text, so a DECIMAL
// arrives exact (a database/sql ODBC driver binds it as a double, and
// 12345678901234567.89 becomes 1.2345678901234568e+16); a cancel calls SQLCancel while
// the statement runs, which the vendor driver turns into a server-side cancel (MariaDB's
// sends KILL QUERY, SQL Server's an attention); and parameters are bound with
// SQLBindParameter from C memory the driver may keep until the statement ends.
package odbc
