package crontab

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"rpt/internal/queue"
	"rpt/internal/queue/sqlite"
)

func openRunQueue(t *testing.T) queue.Store {
	t.Helper()
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "q.db"), queue.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	return st
}

// runClock runs r.Run from `from` with an injected clock; at each sleep, step is
// called with the new time; the run stops at until.
func runClock(t *testing.T, r *Runner, from, until time.Time, step func(now time.Time)) {
	t.Helper()
	now := from
	var mu sync.Mutex
	r.Now = func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	r.Sleep = func(_ context.Context, d time.Duration) {
		mu.Lock()
		now = now.Add(d)
		n := now
		mu.Unlock()
		if step != nil {
			step(n)
		}
		if !n.Before(until) {
			cancel()
		}
	}
	if err := r.Run(ctx); err != nil {
		t.Fatal(err)
	}
}

// rpt cron run re-reads a changed file within a minute and runs the new lines; a
// broken edit is logged and the old lines keep running.
func TestRunReloadsChangedFile(t *testing.T) {
	st := openRunQueue(t)
	path := filepath.Join(t.TempDir(), "reports.crontab")
	write := func(s string) {
		if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("CRON_TZ=America/Detroit\n20 7 * * * /usr/local/bin/rpt submit daily-production --once-per 1h\n")
	f, err := Load(path, time.UTC)
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	r, err := NewRunner([]*File{f}, runService(st), slog.New(slog.NewJSONHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	r.Watch([]string{path}, time.UTC)
	// Monday 8 November 2027 00:00 EST for two days. At 09:00 Monday a broken edit;
	// at 10:00 the file runs the trial balance at 11:10 instead.
	start := time.Date(2027, 11, 8, 5, 0, 0, 0, time.UTC)
	broken, fixed := start.Add(9*time.Hour), start.Add(10*time.Hour)
	done := map[string]bool{}
	runClock(t, r, start, start.Add(48*time.Hour), func(now time.Time) {
		switch {
		case !now.Before(fixed) && !done["fixed"]:
			done["fixed"] = true
			write("CRON_TZ=America/Detroit\n10 11 * * * /usr/local/bin/rpt submit trial-balance --once-per 1h\n")
		case !now.Before(broken) && !done["broken"]:
			done["broken"] = true
			write("CRON_TZ=America/Detroit\n20 77 * * * /usr/local/bin/rpt submit daily-production --once-per 1h\n")
		}
	})
	counts := map[string]int{}
	for _, j := range allJobs(t, st) {
		counts[j.Report]++
	}
	// Monday 07:20 daily production (old file); Monday and Tuesday 11:10 trial balance.
	if counts["daily-production"] != 1 || counts["trial-balance"] != 2 || len(counts) != 2 {
		t.Fatalf("jobs %v; want daily-production 1 (before the edit), trial-balance 2; log:\n%s", counts, logs.String())
	}
	if !strings.Contains(logs.String(), "changed crontab not loaded") || !strings.Contains(logs.String(), `"msg":"crontab reloaded"`) {
		t.Errorf("log lacks the refused and the accepted reload:\n%s", logs.String())
	}
}

// RPT_MISSED=once in a file: a runner starting after downtime submits the line's
// latest missed occurrence; two runners starting together queue it once.
func TestRunFileMissedOnce(t *testing.T) {
	st := openRunQueue(t)
	src := "CRON_TZ=America/Detroit\nRPT_MISSED=once\n20 7 * * * /usr/local/bin/rpt submit daily-production --once-per 1h\n" +
		"RPT_MISSED=skip\n10 11 * * * /usr/local/bin/rpt submit trial-balance --once-per 1h\n"
	f, err := Parse("c", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	wed := time.Date(2027, 11, 10, 17, 0, 0, 0, time.UTC) // Wednesday 12:00 EST
	var wg sync.WaitGroup
	for range 2 {
		r, err := NewRunner([]*File{f}, runService(st), slog.New(slog.NewJSONHandler(&bytes.Buffer{}, nil)))
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() { defer wg.Done(); runClock(t, r, wed, wed, nil) }()
	}
	wg.Wait()
	list := allJobs(t, st)
	if len(list) != 1 || list[0].Report != "daily-production" || !strings.Contains(string(list[0].Params), "2027-11-09") {
		var got []string
		for _, j := range list {
			got = append(got, j.Report+" "+string(j.Params))
		}
		t.Fatalf("jobs %v; want one daily-production for Wednesday's 07:20 (report_date 2027-11-09)", got)
	}
	bad, err := Parse("c", []byte("RPT_MISSED=always\n20 7 * * * /usr/local/bin/rpt submit daily-production --once-per 1h\n"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := NewRunner([]*File{bad}, nil, slog.Default()); err == nil || !strings.Contains(err.Error(), `c:1:12: RPT_MISSED: "always": want skip or once`) {
		t.Fatalf("RPT_MISSED=always: %v", err)
	}
}
