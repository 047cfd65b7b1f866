package jobs

import (
	"fmt"
	"strings"
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
	// Loads are the last loads of the ETLs that fill the warehouse tables the report
	// read, as they were when it read them (UTC; at null: never loaded).
	Loads []queue.ETLLoad `json:"loads,omitempty"`
	Note  string          `json:"note"`
}

// ReadOf is r as shown, its note in loc (nil: UTC); nil when the job recorded no read
// (not finished, not a report, or completed by an agent older than the record).
func ReadOf(r *queue.ReadInfo, loc *time.Location) *ReadView {
	if r == nil || r.Source == "" {
		return nil
	}
	v := &ReadView{Source: r.Source, Kind: r.Kind, At: r.At.UTC(), Live: readLive(r.Kind), Note: ReadNote(r, loc)}
	for _, l := range r.Loads {
		if l.At != nil {
			at := l.At.UTC()
			l.At = &at
		}
		v.Loads = append(v.Loads, l)
	}
	return v
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
	return fmt.Sprintf("%s (source %s) at %s", what, r.Source, at) + loadsNote(r, loc)
}

// loadsNote says how old the warehouse copy was: "; warehouse copy loaded by etl
// plex-accounts at 11:10 (2h55m before the read)", each ETL the definition names, in
// the read's zone, with the date when it is not the read's day; "" when it names none.
func loadsNote(r *queue.ReadInfo, loc *time.Location) string {
	if len(r.Loads) == 0 {
		return ""
	}
	parts := make([]string, len(r.Loads))
	readDay := r.At.In(loc).Format(time.DateOnly)
	for i, l := range r.Loads {
		if l.At == nil {
			parts[i] = "etl " + l.ETL + " never loaded"
			continue
		}
		// The zone is the read's, written once; the date only when it is another day's.
		at := l.At.In(loc)
		when := at.Format("15:04")
		if r.At.IsZero() || at.Format(time.DateOnly) != readDay {
			when = at.Format("2006-01-02 15:04")
		}
		if r.At.IsZero() {
			parts[i] = fmt.Sprintf("etl %s at %s", l.ETL, when)
			continue
		}
		parts[i] = fmt.Sprintf("etl %s at %s (%s before the read)", l.ETL, when, Age(r.At.Sub(*l.At)))
	}
	return "; warehouse copy loaded by " + strings.Join(parts, ", ")
}

// Age is a duration as a person reads an age: 2h55m, 45m, 3d4h, "under a minute".
func Age(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	d = d.Round(time.Minute)
	switch {
	case d < time.Minute:
		return "under a minute"
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d/time.Minute))
	case d < 48*time.Hour:
		h, m := int(d/time.Hour), int(d%time.Hour/time.Minute)
		if m == 0 {
			return fmt.Sprintf("%dh", h)
		}
		return fmt.Sprintf("%dh%dm", h, m)
	}
	days, h := int(d/(24*time.Hour)), int(d%(24*time.Hour)/time.Hour)
	if h == 0 {
		return fmt.Sprintf("%dd", days)
	}
	return fmt.Sprintf("%dd%dh", days, h)
}
