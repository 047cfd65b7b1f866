package jobs

import (
	"fmt"
	"time"

	"rpt/internal/queue"
	"rpt/internal/source"
)

// ReadView is where and when a report job read its data: the source's
// name, its kind (the driver), when the query started (UTC), whether that was Plex
// itself (live) rather than a copy, and Note, the same as one line in the plant's zone.
type ReadView struct {
	Source string    `json:"source"`
	Kind   string    `json:"kind"`
	At     time.Time `json:"at"`
	Live   bool      `json:"live"`
	Note   string    `json:"note"`
}

// ReadOf is r as shown, its note in loc (nil: UTC); nil when the job recorded no read
// (not finished, not a report, or completed by an agent older than the record).
func ReadOf(r *queue.ReadInfo, loc *time.Location) *ReadView {
	if r == nil || r.Source == "" {
		return nil
	}
	return &ReadView{Source: r.Source, Kind: r.Kind, At: r.At.UTC(), Live: readLive(r.Kind), Note: ReadNote(r, loc)}
}

func readLive(kind string) bool { return kind == source.DriverPlexWS || kind == source.DriverODBC }

// ReadNote says in one line where and when the data was read, e.g. "live from Plex
// web services (source plex) at 2026-12-07 14:05:03 EST America/Indiana/Indianapolis".
// Only plexws and odbc sources are Plex itself; the others hold a copy (a warehouse
// fed by ETL, an Azure DW snapshot) or the demo file, and say so.
func ReadNote(r *queue.ReadInfo, loc *time.Location) string {
	if r == nil || r.Source == "" {
		return ""
	}
	if loc == nil {
		loc = time.UTC
	}
	var what string
	switch r.Kind {
	case source.DriverPlexWS:
		what = "live from Plex web services"
	case source.DriverODBC:
		what = "live from Plex over ODBC"
	case source.DialectMySQL:
		what = "from a copy in MySQL (warehouse, not live Plex)"
	case source.DialectSQLServer:
		what = "from a copy in SQL Server (snapshot, not live Plex)"
	case source.DialectSQLite:
		what = "from a SQLite file (demo or copy, not live Plex)"
	default:
		what = fmt.Sprintf("from a %q source", r.Kind)
	}
	at := "an unrecorded time"
	if !r.At.IsZero() {
		at = r.At.In(loc).Format("2006-01-02 15:04:05 MST")
		if name := loc.String(); name != "Local" && name != "UTC" {
			at += " " + name
		}
	}
	return fmt.Sprintf("%s (source %s) at %s", what, r.Source, at)
}
