//go:build odbc

package main

// The ODBC build (-tags odbc, cgo and unixODBC): the odbc source driver registers itself,
// so odbc sources open (source.Built) and agents serve them.
import _ "rpt/internal/source/odbc"
