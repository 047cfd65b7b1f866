package jobs_test

import (
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"rpt/internal/jobs"
	"rpt/reportdefs"
)

// A report whose needs: names an ETL the agents do not have is refused at submit, with
// the file:line of needs[N].etl and a suggestion; one naming a shipped ETL is accepted.
func TestSubmitChecksNeeds(t *testing.T) {
	svc := newService(t, nil, time.UTC, fixed(time.Date(2027, 3, 14, 7, 0, 0, 0, time.UTC)))
	dir := svc.Config.Reports[0]
	for name, body := range map[string]string{
		"needs-good.yaml": "name: needs-good\nsource: demo\nneeds:\n  - {etl: plex-accounts, max_age: 4h}\nsql: SELECT 1 AS x\n",
		"needs-bad.yaml":  "name: needs-bad\nsource: demo\nneeds:\n  - {etl: plex-accounts, max_age: 4h}\n  - {etl: plex-acounts, max_age: 4h}\nsql: SELECT 1 AS x\n",
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := svc.Check(jobs.SubmitRequest{Report: "needs-good"}); err != nil {
		t.Errorf("needs a shipped ETL: %v", err)
	}
	err := svc.Check(jobs.SubmitRequest{Report: "needs-bad"})
	want := regexp.MustCompile(`needs-bad\.yaml:5:\d+: needs\[1\]\.etl: unknown ETL "plex-acounts" \(ETLs: .*plex-accounts.*\).*plex-accounts`)
	if err == nil || !want.MatchString(err.Error()) {
		t.Errorf("needs an unknown ETL: %v, want a match of %s", err, want)
	}
	if !errors.Is(err, reportdefs.ErrInvalid) {
		t.Errorf("unknown ETL is not ErrInvalid: %v", err)
	}
}
