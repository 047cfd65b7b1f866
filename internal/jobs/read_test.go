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
