package crontab

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"rpt/internal/config"
	"rpt/internal/jobs"
	"rpt/internal/queue"
	"rpt/internal/queue/mysql"
	"rpt/internal/queue/sqlite"
	"rpt/internal/source"
	"rpt/internal/testenv"
)

const runFile = `CRON_TZ=America/Detroit
RPT_CONFIG=/etc/rpt/rpt.yaml
10 3,7,11,15,19,23 * * * /usr/local/bin/rpt submit trial-balance --once-per 1h
10 19 * * 1 /usr/local/bin/rpt submit trial-balance --once-per 1h
20 7 * * * /usr/local/bin/rpt submit daily-production --once-per 1h
`

// queueOpener opens one more connection to a shared queue, as another replica would.
type queueOpener func(t *testing.T) queue.Store

func sharedQueues(t *testing.T) map[string]queueOpener {
	path := filepath.Join(t.TempDir(), "q.db")
	out := map[string]queueOpener{"sqlite": func(t *testing.T) queue.Store {
		st, err := sqlite.Open(context.Background(), path, queue.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		return st
	}}
	if os.Getenv("RPT_TEST_MYSQL_DSN") != "" {
		dsn := testenv.MariaDB(t)
		out["mariadb"] = func(t *testing.T) queue.Store {
			st, err := mysql.Open(context.Background(), dsn, queue.Options{})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { st.Close() })
			return st
		}
	}
	return out
}

func runService(st queue.Store) *jobs.Service {
	cfg := config.Default()
	cfg.Sources = map[string]source.Config{
		"warehouse": {Driver: "mysql", DSN: "mysql://u@127.0.0.1:1/w"},
		"plex":      {Driver: "mysql", DSN: "mysql://u@127.0.0.1:1/p"},
	}
	// Now is the real clock on purpose: only the occurrence the runner passes makes the
	// once keys and relative dates of a simulated week right.
	return &jobs.Service{Store: st, Config: cfg, Loc: mustLocT("America/Detroit"), SubmittedBy: "cron@test"}
}

func mustLocT(name string) *time.Location {
	loc, err := time.LoadLocation(name)
	if err != nil {
		panic(err)
	}
	return loc
}

func allJobs(t *testing.T, st queue.Store) []*queue.Job {
	t.Helper()
	list, err := st.JobList(context.Background(), queue.JobListParams{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	return list
}

// Three runners on one file and one queue, driven through a simulated week that
// crosses the autumn 2027 transition, queue exactly one job per occurrence.
func TestThreeRunnersOneJobPerOccurrence(t *testing.T) {
	for name, open := range sharedQueues(t) {
		t.Run(name, func(t *testing.T) {
			first := open(t)
			if err := first.Migrate(context.Background()); err != nil {
				t.Fatal(err)
			}
			f, err := Parse("reports.crontab", []byte(runFile))
			if err != nil {
				t.Fatal(err)
			}
			var runners []*Runner
			for i := 0; i < 3; i++ {
				r, err := NewRunner([]*File{f}, runService(open(t)), slog.New(slog.NewJSONHandler(&bytes.Buffer{}, nil)))
				if err != nil {
					t.Fatal(err)
				}
				runners = append(runners, r)
			}
			start := time.Date(2027, 11, 4, 0, 0, 0, 0, time.UTC)
			for at := start; at.Before(start.Add(7 * 24 * time.Hour)); at = at.Add(time.Hour) {
				var wg sync.WaitGroup
				for _, r := range runners {
					wg.Add(1)
					go func() { defer wg.Done(); r.RunDue(context.Background(), at, at.Add(time.Hour)) }()
				}
				wg.Wait()
			}
			list := allJobs(t, first)
			counts := map[string]int{}
			for _, j := range list {
				counts[j.Report]++
				if j.Origin != queue.OriginCron {
					t.Errorf("job %d origin %q", j.ID, j.Origin)
				}
			}
			// The week is Wednesday 20:00 EDT to the next Wednesday 19:00 EST: the refreshes
			// are 1 + 6x6 + 4 = 41 (Monday's weekly line is the same report, parameters and
			// hour as the 19:10 refresh: one job), and seven daily runs.
			if counts["trial-balance"] != 41 || counts["daily-production"] != 7 || len(list) != 48 {
				t.Fatalf("jobs: %v (total %d), want trial-balance 41, daily-production 7", counts, len(list))
			}
			// Relative parameters mean the occurrence's day in the configured zone.
			var days []string
			for _, j := range list {
				if j.Report == "daily-production" {
					var p map[string]any
					if err := json.Unmarshal(j.Params, &p); err != nil {
						t.Fatal(err)
					}
					days = append(days, p["report_date"].(string))
				}
			}
			if got := strings.Join(days, " "); !strings.Contains(got, "2027-11-03") || !strings.Contains(got, "2027-11-09") || len(days) != 7 {
				t.Errorf("report dates %s: want 2027-11-03 to 2027-11-09", got)
			}
		})
	}
}

// Run takes occurrences from its clock until ctx ends, and returns nil then.
func TestRunStopsOnCancel(t *testing.T) {
	path := filepath.Join(t.TempDir(), "q.db")
	st, err := sqlite.Open(context.Background(), path, queue.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	f, err := Parse("c", []byte(runFile))
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	r, err := NewRunner([]*File{f}, runService(st), slog.New(slog.NewJSONHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2027, 11, 8, 0, 0, 0, 0, time.UTC) // Sunday 19:00 EST
	stopAt := now.Add(16 * time.Hour)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	r.Now = func() time.Time { return now }
	r.Sleep = func(_ context.Context, d time.Duration) {
		now = now.Add(d)
		if now.After(stopAt) {
			cancel()
		}
	}
	if err := r.Run(ctx); err != nil {
		t.Fatal(err)
	}
	// Sunday 19:10 and 23:10 and Monday 03:10 and 07:10 refreshes, Monday 07:20 daily
	// production; 11:10 is after the stop (16:00 UTC is 11:00 EST).
	if n := len(allJobs(t, st)); n != 5 {
		t.Errorf("%d jobs, want 5; log:\n%s", n, logs.String())
	}
	if !strings.Contains(logs.String(), `"msg":"submitted"`) || !strings.Contains(logs.String(), `"occurrence":"2027-11-08T12:20:00Z"`) {
		t.Errorf("log lacks the submits:\n%s", logs.String())
	}
}

// A line that is not rpt submit runs through /bin/sh with the file's environment and
// its '%' stdin; its exit status and output are logged.
func TestRunShellLine(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "out")
	src := "GREETING=hello there\n0 * * * * cat > " + out + "; echo \"$GREETING\" >> " + out + "; exit 3 %line1%line2\n"
	f, err := Parse("c", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	r, err := NewRunner([]*File{f}, nil, slog.New(slog.NewJSONHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	r.RunDue(context.Background(), time.Date(2027, 1, 1, 0, 30, 0, 0, time.UTC), time.Date(2027, 1, 1, 1, 0, 0, 0, time.UTC))
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if string(data) != "line1\nline2hello there\n" {
		t.Errorf("output %q", data)
	}
	if !strings.Contains(logs.String(), `"exit_status":3`) {
		t.Errorf("log: %s", logs.String())
	}
}

// A file with an error, or an rpt submit line in a pipe, does not start.
func TestNewRunnerRefuses(t *testing.T) {
	for _, src := range []string{
		"0 * * * * /usr/local/bin/rpt submit trial-balance --once-per 1h | logger\n",
		"0 * * * * /usr/local/bin/rpt submit trial-balance --once-pre 1h\n",
	} {
		f, err := Parse("c", []byte(src))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := NewRunner([]*File{f}, nil, slog.Default()); err == nil {
			t.Errorf("%q: started", src)
		}
	}
}
