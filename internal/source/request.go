package source

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync"
)

// Drivers that are named in configurations but not built into this binary yet.
const (
	DriverPlexWS = "plexws" // Plex web-service data sources
	DriverODBC   = "odbc"
)

// ErrRequest marks a request its source cannot run (a stored procedure on SQLite, a
// Plex data-source call on a SQL database): retrying will not help.
var ErrRequest = errors.New("bad source request")

// ErrNotBuilt is the error of a driver this binary does not contain.
var ErrNotBuilt = errors.New("not built in this binary")

// Request is what a run asks of its source: exactly one of SQL (with ":name"
// parameters), a stored-procedure call, or a Plex data-source call. Params holds the
// bound parameter values by name (see Source.Query for their Go types).
type Request struct {
	SQL        string
	Procedure  *Procedure
	DataSource *DataSource
	Params     map[string]any

	// Sources opens the other sources a request reads: a data source's lookups. nil:
	// a request with lookups fails.
	Sources SourceFunc
}

// Procedure is a stored-procedure call (a definition's procedure:). Args are parameter
// names, passed in this order; each is bound, never pasted into the call.
type Procedure struct {
	Name string // a name, or schema.name
	Args []string
}

// DataSource is a Plex web-service data-source call (a definition's datasource:).
type DataSource struct {
	Key     int               // the data source's key in Plex
	Name    string            // its name, for messages and logs
	Inputs  map[string]string // Plex input name -> parameter name
	Columns []string          // the output columns kept, in this order; empty: all

	// What the plexws driver adds (internal/source/plexws):
	Types   []Type            // the type of each of Columns (same length), or nil: all strings
	Formats map[string]string // Plex input name -> how its value is written ("01/02/2006" for a date)
	PCN     string            // the parameter naming the PCN(s): one call per PCN with its account, rows get a pcn column
	Periods [2]string         // first and last period parameter: one call per period, rows get a period column
	SQL     string            // SQLite run over the rows (table datasource) to shape the result; "" returns them
	Lookups []Lookup          // small tables from other sources that SQL reads beside datasource

	// Open opens the configured source a lookup names; the caller owns what it returns
	// (it is not closed by the call). Run sets it from Request.Sources.
	Open SourceFunc
}

// SourceFunc opens a configured source by name, as the caller keeps them (an agent's pool,
// a command's configuration). What it returns belongs to the caller.
type SourceFunc func(ctx context.Context, name string) (Source, error)

// Lookup is a small table a data source's shaping SQL reads beside the table
// datasource (a definition's datasource.lookups): the rows of SQL, run read-only on the
// configured source Source with the definition's parameters bound, loaded as the table
// Name. It is the definition's, like all its SQL: a job's parameters only fill its
// :name placeholders. More than MaxRows rows, or more than LookupMaxBytes of values,
// fail the run rather than shape over a cut table.
type Lookup struct {
	Name    string
	Source  string
	SQL     string
	MaxRows int
}

// Lookup bounds: the rows a lookup may declare at most and its default, and the bytes
// of values one lookup may load.
const (
	LookupMaxRowsLimit   = 1_000_000
	LookupDefaultMaxRows = 100_000
	LookupMaxBytes       = 64 << 20
)

// DataSourceCaller is a Source that runs Plex data-source calls (the plexws driver).
type DataSourceCaller interface {
	CallDataSource(ctx context.Context, ds DataSource, params map[string]any) (Rows, error)
}

// procNameRE is a procedure name, optionally schema-qualified; it is quoted in the
// call, but only plain names are accepted so that nothing needs escaping.
var procNameRE = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_$]{0,127}(\.[A-Za-z_][A-Za-z0-9_$]{0,127})?$`)
})

// argRE is a parameter name, as reportdefs declares them.
var argRE = regexp.MustCompile(`^[a-z_][a-z0-9_]*$`)

// What returns "sql", "procedure" or "datasource": the form of the request, as the
// definition key that wrote it.
func (r Request) What() string {
	switch {
	case r.Procedure != nil:
		return "procedure"
	case r.DataSource != nil:
		return "datasource"
	}
	return "sql"
}

// Validate checks that the request is well formed and that a source of the given
// driver can run it. Errors wrap ErrRequest and say what to use instead.
func (r Request) Validate(driver string) error {
	n := 0
	if r.SQL != "" {
		n++
	}
	if r.Procedure != nil {
		n++
	}
	if r.DataSource != nil {
		n++
	}
	if n != 1 {
		return fmt.Errorf("%w: want exactly one of sql, procedure, datasource (got %d)", ErrRequest, n)
	}
	switch {
	case r.Procedure != nil:
		p := r.Procedure
		if !procNameRE().MatchString(p.Name) {
			return fmt.Errorf("%w: procedure name %q: want a name or schema.name of letters, digits and '_'", ErrRequest, p.Name)
		}
		for i, a := range p.Args {
			if !argRE.MatchString(a) {
				return fmt.Errorf("%w: procedure args[%d] %q: want a parameter name", ErrRequest, i, a)
			}
		}
		switch driver {
		case DialectMySQL, DialectSQLServer:
		case DialectSQLite:
			return fmt.Errorf("%w: SQLite has no stored procedures; write the query as sql:", ErrRequest)
		case DriverPlexWS:
			return fmt.Errorf("%w: a plexws source runs datasource: calls, not procedures", ErrRequest)
		default:
			return fmt.Errorf("%w: stored procedures need a mysql or sqlserver source, not %s", ErrRequest, driver)
		}
	case r.DataSource != nil:
		ds := r.DataSource
		if ds.Key <= 0 {
			return fmt.Errorf("%w: datasource key %d: want the data source's positive key", ErrRequest, ds.Key)
		}
		for input, param := range ds.Inputs {
			if strings.TrimSpace(input) == "" || !argRE.MatchString(param) {
				return fmt.Errorf("%w: datasource input %q: %q is not a parameter name", ErrRequest, input, param)
			}
		}
		if driver != DriverPlexWS {
			return fmt.Errorf("%w: datasource: calls need a plexws source, not %s; use sql: or procedure:", ErrRequest, driver)
		}
		for _, lk := range ds.Lookups {
			if !argRE.MatchString(lk.Name) || lk.Name == "datasource" || lk.Source == "" || lk.SQL == "" || lk.MaxRows < 1 || lk.MaxRows > LookupMaxRowsLimit {
				return fmt.Errorf("%w: datasource lookup %q: want a table name other than datasource, a source, sql and max_rows 1 to %d", ErrRequest, lk.Name, LookupMaxRowsLimit)
			}
		}
		if len(ds.Lookups) > 0 && ds.SQL == "" {
			return fmt.Errorf("%w: datasource lookups are read by datasource.sql, which is missing", ErrRequest)
		}
	}
	// SQL goes to any driver: whether the plexws driver (not built yet) will take SQL is
	// for it to say when it exists.
	return nil
}

// procedureSQL is the call statement of p in the driver's dialect, with ":name"
// parameters for Bind: CALL `schema`.`name`(:a, :b) on MySQL/MariaDB, EXEC
// [schema].[name] :a, :b on SQL Server. The name is checked by Validate, so quoting it
// needs no escaping.
func procedureSQL(driver string, p *Procedure) string {
	parts := strings.Split(p.Name, ".")
	args := make([]string, len(p.Args))
	for i, a := range p.Args {
		args[i] = ":" + a
	}
	if driver == DialectSQLServer {
		for i, s := range parts {
			parts[i] = "[" + s + "]"
		}
		q := "EXEC " + strings.Join(parts, ".")
		if len(args) > 0 {
			q += " " + strings.Join(args, ", ")
		}
		return q
	}
	for i, s := range parts {
		parts[i] = "`" + s + "`"
	}
	return "CALL " + strings.Join(parts, ".") + "(" + strings.Join(args, ", ") + ")"
}

// Run is the one way a request is run: it validates req against src's driver, runs
// it (SQL and procedure calls through src.Query, so a wrapper around Query, such as a
// read-only transaction, covers both; data-source calls through the driver's
// DataSourceCaller) and applies the definition's columns: type overrides (Retype).
// The caller closes the rows; their Err wraps ErrConvert when a value does not fit
// its override.
func Run(ctx context.Context, src Source, req Request, types map[string]Type) (Rows, error) {
	if err := req.Validate(src.Driver()); err != nil {
		return nil, fmt.Errorf("source %q (%s): %w", src.Name(), src.Driver(), err)
	}
	var (
		rows Rows
		err  error
	)
	switch {
	case req.DataSource != nil:
		dc, ok := src.(DataSourceCaller)
		if !ok {
			return nil, fmt.Errorf("source %q (%s): %w: the driver cannot call data sources", src.Name(), src.Driver(), ErrRequest)
		}
		ds := *req.DataSource
		if len(ds.Lookups) > 0 {
			if req.Sources == nil {
				return nil, fmt.Errorf("source %q: %w: data source %d reads lookups from other sources, and this caller opens none", src.Name(), ErrRequest, ds.Key)
			}
			ds.Open = req.Sources
		}
		rows, err = dc.CallDataSource(ctx, ds, req.Params)
	case req.Procedure != nil:
		rows, err = src.Query(ctx, procedureSQL(src.Driver(), req.Procedure), req.Params)
	default:
		rows, err = src.Query(ctx, req.SQL, req.Params)
	}
	if err != nil {
		return nil, err // names the source already: `query source "NAME": ...`
	}
	if ct, ok := src.(ColumnTyped); ok && ct.NeedsColumnTypes() {
		for _, c := range rows.Columns() {
			if _, typed := types[c.Name]; !typed {
				_ = rows.Close()
				return nil, fmt.Errorf("source %q: %w: column %q has no type in the definition's columns: (every column of a report on this source is typed, so money stays exact: add %s: decimal, string, int, ...)",
					src.Name(), ErrRequest, c.Name, c.Name)
			}
		}
	}
	typed, err := Retype(rows, types)
	if err != nil {
		_ = rows.Close()
		return nil, err
	}
	return typed, nil
}
