package cli_test

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
)

// rpt submit --occurrence: relative parameters and the --once-per key are resolved at
// the occurrence in the configured time zone, not at the clock (fixedNow,
// 2026-11-29T10:00Z). 2026-12-01T02:30Z is the evening of Nov 30 in Chicago.
func TestSubmitOccurrence(t *testing.T) {
	work := t.TempDir()
	isolateEnv(t, work)
	cfg := filepath.Join(work, "rpt.yaml")
	writeFile(t, cfg, []byte("timezone: America/Chicago\nreports: ["+filepath.Join(work, "defs")+"]\n"+
		"sources:\n  demo: {driver: sqlite, dsn: \"sqlite:"+filepath.Join(work, "demo.db")+"\"}\n"))
	writeFile(t, filepath.Join(work, "defs", "rel.yaml"), []byte(`name: rel
source: demo
params:
  - {name: day,   type: date,   default: yesterday}
  - {name: month, type: period, default: last-month}
sql: SELECT :day AS day, :month AS month
`))
	run := func(want int, args ...string) (string, string) {
		t.Helper()
		code, stdout, stderr := runCLI(t, context.Background(), append([]string{"--config", cfg}, args...))
		if code != want {
			t.Fatalf("rpt %s: exit %d, want %d: %s", strings.Join(args, " "), code, want, stderr)
		}
		return strings.TrimSpace(stdout), stderr
	}
	params := func(id string) map[string]any {
		t.Helper()
		out, _ := run(0, "jobs", "show", id, "-o", "json")
		var v struct{ Params map[string]any }
		if err := json.Unmarshal([]byte(out), &v); err != nil {
			t.Fatal(err)
		}
		return v.Params
	}

	id, _ := run(0, "submit", "rel", "--occurrence", "2026-12-01T02:30:00Z", "--once-per", "24h")
	if p := params(id); p["day"] != "2026-11-29" || p["month"] != float64(202610) {
		t.Errorf("params %v, want day 2026-11-29 and month 202610 (Nov 30 evening in Chicago)", p)
	}
	// The same occurrence written in the configured zone is the same run: not queued again.
	again, stderr := run(0, "submit", "rel", "--occurrence", "2026-11-30 20:30", "--once-per", "24h")
	if again != id || !strings.Contains(stderr, "already exists") {
		t.Errorf("same occurrence in local time: job %s (%q), want job %s not queued again", again, stderr, id)
	}
	// Without --occurrence, the clock: Nov 29 10:00Z is Nov 29 04:00 in Chicago.
	plain, _ := run(0, "submit", "rel")
	if p := params(plain); p["day"] != "2026-11-28" || p["month"] != float64(202610) {
		t.Errorf("params without --occurrence %v, want day 2026-11-28", p)
	}
	if _, stderr := run(2, "submit", "rel", "--occurrence", "tomorrow"); !strings.Contains(stderr, `--occurrence "tomorrow": want RFC 3339`) {
		t.Errorf("bad --occurrence: %q", stderr)
	}
}
