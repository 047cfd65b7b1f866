package source

// Drivers are the source drivers this binary can open: the values a sources: entry's
// driver may take, and the dialects Bind and the statement checks know. The one list;
// rpt.yaml, report definitions and Open all read it.
var Drivers = []string{DialectSQLite, DialectMySQL, DialectSQLServer}

// PlannedDrivers are drivers rpt knows by name but this binary does not contain yet:
// rpt.yaml refuses them ("not built in this binary") instead of accepting a source no
// agent can open, and a definition may already carry SQL for them in dialects:.
var PlannedDrivers = []string{"plexws", "odbc"}

// KnownDrivers is Drivers then PlannedDrivers: the keys a definition's dialects: may
// name.
func KnownDrivers() []string {
	return append(append([]string{}, Drivers...), PlannedDrivers...)
}
