package crontab

import (
	"strings"
	"testing"
	"time"
)

// The shipped example passes lint without a warning, and runs when its comments say.
func TestExamplePassesLint(t *testing.T) {
	data, err := ReadFile("examples/reports.crontab")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range LintFile("reports.crontab", data, time.UTC, lintOptions(t)) {
		t.Errorf("%s", p)
	}
	f, err := Parse("reports.crontab", data)
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Entries) != 3 {
		t.Fatalf("%d lines, want 3", len(f.Entries))
	}
	// Monday 15 March 2027, the day after clocks went forward: 19:10 EDT is 23:10 UTC.
	from := time.Date(2027, 3, 15, 12, 0, 0, 0, time.UTC)
	want := []string{"2027-03-15T15:10:00Z", "2027-03-15T23:10:00Z", "2027-03-16T11:20:00Z"}
	for i, e := range f.Entries {
		if got := e.Schedule.Next(from, e.Loc).UTC().Format(time.RFC3339); got != want[i] {
			t.Errorf("line %d (%s): next %s, want %s", e.Line, e.Spec, got, want[i])
		}
		if !strings.Contains(e.Command, "--once-per") {
			t.Errorf("line %d: no --once-per", e.Line)
		}
	}
}
