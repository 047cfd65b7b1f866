package source

import (
	"context"
	"fmt"
	"sync"
)

// Drivers are the source drivers this binary can open: the values a sources: entry's
// driver may take, and the dialects Bind and the statement checks know. The one list;
// rpt.yaml, report definitions and Open all read it.
var Drivers = []string{DialectSQLite, DialectMySQL, DialectSQLServer}

// PlannedDrivers are drivers rpt knows by name but this binary does not contain yet:
// rpt.yaml refuses them ("not built in this binary") instead of accepting a source no
// agent can open, and a definition may already carry SQL for them in dialects:.
var PlannedDrivers []string // none left: odbc is a tagged driver (TaggedDrivers), plexws registered

// KnownDrivers is Drivers, plexws (registered by its package) then PlannedDrivers: the keys a definition's dialects: may
// name.
func KnownDrivers() []string {
	return append(append(append([]string{}, Drivers...), DriverPlexWS), PlannedDrivers...)
}

// Opener opens a source of a driver that lives in a package of its own
// (internal/source/plexws), which sits above this one and registers itself.
type Opener func(ctx context.Context, name string, cfg Config) (Source, error)

var (
	openersMu sync.RWMutex
	openers   = map[string]Opener{}
)

// RegisterDriver makes Open, Built and the configuration accept driver, opened by
// open. cmd/rpt and cli import the packages that call it.
func RegisterDriver(driver string, open Opener) {
	openersMu.Lock()
	defer openersMu.Unlock()
	openers[driver] = open
}

func registered(driver string) Opener {
	openersMu.RLock()
	defer openersMu.RUnlock()
	return openers[driver]
}

// TaggedDrivers are drivers built only into a binary compiled with their build tag (odbc
// needs cgo and unixODBC, so the default, pure-Go build leaves it out). rpt.yaml accepts
// them in every build: a pure-Go CLI or API may queue jobs for an agent built with the
// tag, and an agent without it does not serve such a source (Built).
var TaggedDrivers = []string{DriverODBC}

// NotBuilt is the message of a tagged driver this binary was built without: what to do
// about it.
func NotBuilt(driver string) string {
	if driver == DriverODBC {
		return "built without ODBC; build with -tags odbc (make build-odbc, or the -odbc image)"
	}
	return fmt.Sprintf("the %s driver is not built in this binary", driver)
}
