package jobs_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"rpt/internal/jobs"
	"rpt/internal/queue"
)

// TestReadNote: only plexws and odbc sources are called live; copies and the demo file
// say they are not live Plex; the time is in the zone given.
func TestReadNote(t *testing.T) {
	at := time.Date(2026, 7, 1, 18, 30, 0, 0, time.UTC)
	ind, err := time.LoadLocation("America/Indiana/Indianapolis")
	if err != nil {
		t.Skip("no tzdata:", err)
	}
	for _, tc := range []struct {
		kind, want string
		live       bool
	}{
		{"plexws", "live from Plex web services (source s) at 2026-07-01 14:30:00 EDT America/Indiana/Indianapolis", true},
		{"odbc", "live from Plex over ODBC (source s)", true},
		{"mysql", "not live Plex", false},
		{"sqlserver", "snapshot, not live Plex", false},
		{"sqlite", "demo or copy, not live Plex", false},
	} {
		r := &queue.ReadInfo{Source: "s", Kind: tc.kind, At: at}
		v := jobs.ReadOf(r, ind)
		if v == nil || v.Live != tc.live || !strings.Contains(v.Note, tc.want) || !strings.HasSuffix(v.Note, "at 2026-07-01 14:30:00 EDT America/Indiana/Indianapolis") {
			t.Errorf("%s: %+v; want live %v and a note with %q", tc.kind, v, tc.live, tc.want)
		}
	}
	if v := jobs.ReadOf(nil, ind); v != nil {
		t.Errorf("no record: %+v, want nil", v)
	}
	// The API's view carries the fields, its note in UTC.
	b, err := json.Marshal(jobs.ViewOf(&queue.Job{ID: 1, Read: &queue.ReadInfo{Source: "plex", Kind: "plexws", At: at}}))
	if err != nil {
		t.Fatal(err)
	}
	want := `"read":{"source":"plex","kind":"plexws","at":"2026-07-01T18:30:00Z","live":true,"note":"live from Plex web services (source plex) at 2026-07-01 18:30:00 UTC"}`
	if !strings.Contains(string(b), want) {
		t.Errorf("view json %s; want %s", b, want)
	}
}

// TestReadNoteLoads: a result read from (or beside) a warehouse copy says when each ETL
// its definition names last loaded it, in the plant's zone, and how long before the read
// (not before now: the note stays true as it ages); one never loaded says so. The API
// carries the loads in UTC.
func TestReadNoteLoads(t *testing.T) {
	ind, err := time.LoadLocation("America/Indiana/Indianapolis")
	if err != nil {
		t.Skip("no tzdata:", err)
	}
	at := time.Date(2026, 12, 7, 19, 5, 3, 0, time.UTC)
	loaded := at.Add(-(2*time.Hour + 55*time.Minute))
	old := at.Add(-(3*24*time.Hour + 4*time.Hour))
	r := &queue.ReadInfo{Source: "warehouse", Kind: "mysql", At: at,
		Loads: []queue.ETLLoad{{ETL: "plex-accounts", At: &loaded}, {ETL: "plex-balances", At: &old}, {ETL: "plex-periods"}}}
	want := "from a copy in MySQL (warehouse, not live Plex) (source warehouse) at 2026-12-07 14:05:03 EST America/Indiana/Indianapolis; " +
		"warehouse copy loaded by etl plex-accounts at 11:10 (2h55m before the read), " +
		"etl plex-balances at 2026-12-04 10:05 (3d4h before the read), etl plex-periods never loaded"
	if got := jobs.ReadNote(r, ind); got != want {
		t.Errorf("note\n%s\nwant\n%s", got, want)
	}
	b, err := json.Marshal(jobs.ViewOf(&queue.Job{ID: 1, Read: r}))
	if err != nil {
		t.Fatal(err)
	}
	wantJSON := `"loads":[{"etl":"plex-accounts","at":"2026-12-07T16:10:03Z"},{"etl":"plex-balances","at":"2026-12-04T15:05:03Z"},{"etl":"plex-periods","at":null}]`
	if !strings.Contains(string(b), wantJSON) {
		t.Errorf("view json %s; want %s", b, wantJSON)
	}
	for d, want := range map[time.Duration]string{20 * time.Second: "under a minute", 45 * time.Minute: "45m", 2 * time.Hour: "2h", 47*time.Hour + 59*time.Minute: "47h59m", 72 * time.Hour: "3d", -time.Hour: "under a minute"} {
		if got := jobs.Age(d); got != want {
			t.Errorf("Age(%s) = %q, want %q", d, got, want)
		}
	}
}
