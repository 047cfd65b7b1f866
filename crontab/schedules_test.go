package crontab

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"rpt/internal/errclass"
	"rpt/internal/jobs"
	"rpt/internal/queue"
)

func TestSchedulesValidateAndManage(t *testing.T) {
	for name, open := range sharedQueues(t) {
		t.Run(name, func(t *testing.T) {
			st := open(t)
			ctx := context.Background()
			if err := st.Migrate(ctx); err != nil {
				t.Fatal(err)
			}
			svc := runService(st)
			s := &Schedules{Store: st, Jobs: svc}
			for _, tt := range []struct {
				spec ScheduleSpec
				want string
			}{
				{ScheduleSpec{Name: "Bad Name", Cron: "0 * * * *", Report: "trial-balance"}, `name: "Bad Name": want`},
				{ScheduleSpec{Name: "tb", Cron: "0 25 * * *", Report: "trial-balance"}, `--cron: "0 25 * * *": column 3: hour: 25 is outside 0-23`},
				{ScheduleSpec{Name: "tb", Cron: "0 0 30 2 *", Report: "trial-balance"}, "never runs"},
				{ScheduleSpec{Name: "tb", Cron: "0 * * * *", Timezone: "Mars/Olympus", Report: "trial-balance"}, `--timezone: "Mars/Olympus": unknown time zone`},
				{ScheduleSpec{Name: "tb", Cron: "0 * * * *", Report: "trial-balanse"}, `unknown report "trial-balanse"`},
				{ScheduleSpec{Name: "tb", Cron: "0 * * * *", Report: "trial-balance", Params: map[string]string{"pcn": "x"}}, `param "pcn"`},
				{ScheduleSpec{Name: "tb", Cron: "0 * * * *", Report: "trial-balance", Deliver: []string{"mailto:nope"}}, `--deliver: "nope": not an e-mail address`},
				{ScheduleSpec{Name: "tb", Cron: "0 * * * *", Report: "trial-balance", Missed: "always"}, `--missed: "always": want skip or once`},
			} {
				_, err := s.Add(ctx, tt.spec)
				if err == nil || !strings.Contains(err.Error(), tt.want) {
					t.Errorf("%+v: error %v, want %q", tt.spec, err, tt.want)
				} else if c := jobs.Class(err); c != errclass.Invalid && c != errclass.NotFound {
					t.Errorf("%+v: class %s, want invalid", tt.spec, c)
				}
			}
			if list, _ := s.List(ctx); len(list) != 0 {
				t.Fatalf("refused adds stored %d schedules", len(list))
			}
			sc, err := s.Add(ctx, ScheduleSpec{Name: "weekly-tb", Cron: "10 19 * * 1", Timezone: "America/Indiana/Indianapolis",
				Report: "trial-balance", Params: map[string]string{"pcn": "123681"}, Missed: "once"})
			if err != nil {
				t.Fatal(err)
			}
			if sc.Missed != queue.MissedOnce || sc.Params["pcn"] != "123681" || sc.CreatedBy != "cron@test" {
				t.Fatalf("stored %+v", sc)
			}
			if _, err := s.Add(ctx, ScheduleSpec{Name: "weekly-tb", Cron: "0 * * * *", Report: "trial-balance"}); !errors.Is(err, queue.ErrExists) {
				t.Fatalf("second add: %v, want ErrExists", err)
			}
			cron := "10 19 * * 2"
			if sc, err = s.Update(ctx, "weekly-tb", ScheduleChange{Cron: &cron}); err != nil || sc.Cron != cron || sc.Params["pcn"] != "123681" {
				t.Fatalf("update: %+v %v", sc, err)
			}
			bad := "61 * * * *"
			if _, err := s.Update(ctx, "weekly-tb", ScheduleChange{Cron: &bad}); err == nil || !strings.Contains(err.Error(), "minute") {
				t.Fatalf("bad update: %v", err)
			}
			if _, err := s.Update(ctx, "nope", ScheduleChange{Cron: &cron}); !errors.Is(err, queue.ErrNotFound) {
				t.Fatalf("update of unknown: %v", err)
			}
			v, err := s.Show(ctx, "weekly-tb")
			if err != nil || v.Next == nil || v.Next.In(mustLocT("America/Indiana/Indianapolis")).Weekday() != time.Tuesday {
				t.Fatalf("show: %+v %v", v, err)
			}
			if sc, err = s.Hold(ctx, "weekly-tb"); err != nil || !sc.Held {
				t.Fatalf("hold: %+v %v", sc, err)
			}
			if v, _ = s.Show(ctx, "weekly-tb"); v.Next != nil {
				t.Fatalf("a held schedule has a next run %v", v.Next)
			}
			if sc, err = s.Resume(ctx, "weekly-tb"); err != nil || sc.Held {
				t.Fatalf("resume: %+v %v", sc, err)
			}
			// Render: a crontab file that parses back, held ones commented out.
			if _, err := s.Add(ctx, ScheduleSpec{Name: "daily", Cron: "20 7 * * *", Timezone: "America/Detroit", Report: "daily-production",
				Params: map[string]string{"report_date": "yesterday"}}); err != nil {
				t.Fatal(err)
			}
			if _, err := s.Hold(ctx, "daily"); err != nil {
				t.Fatal(err)
			}
			list, err := st.ScheduleList(ctx)
			if err != nil {
				t.Fatal(err)
			}
			text := Render(list, "/usr/local/bin/rpt", "/etc/rpt/rpt.yaml")
			f, err := Parse("rendered", []byte(text))
			if err != nil {
				t.Fatalf("rendered file does not parse: %v\n%s", err, text)
			}
			if len(f.Entries) != 1 || f.Entries[0].Spec != cron || f.Entries[0].Loc.String() != "America/Indiana/Indianapolis" ||
				!strings.Contains(f.Entries[0].Command, "submit trial-balance -p pcn=123681 --once-per 1m") {
				t.Fatalf("rendered:\n%s", text)
			}
			if !strings.Contains(text, "# 20 7 * * *  /usr/local/bin/rpt submit daily-production -p report_date=yesterday") {
				t.Fatalf("the held schedule is not commented out:\n%s", text)
			}
			if err := s.Delete(ctx, "daily"); err != nil {
				t.Fatal(err)
			}
			if err := s.Delete(ctx, "daily"); !errors.Is(err, queue.ErrNotFound) {
				t.Fatalf("second delete: %v", err)
			}
		})
	}
}

// Three runners tick the database schedules through a simulated week: one job per
// occurrence; the weekly trial balance and the 19:10 refresh are two schedules, so two
// jobs on Monday; a held schedule stops firing.
func TestThreeRunnersDatabaseSchedules(t *testing.T) {
	for name, open := range sharedQueues(t) {
		t.Run(name, func(t *testing.T) {
			first := open(t)
			ctx := context.Background()
			if err := first.Migrate(ctx); err != nil {
				t.Fatal(err)
			}
			s := &Schedules{Store: first, Jobs: runService(first)}
			for _, spec := range []ScheduleSpec{
				{Name: "tb-refresh", Cron: "10 3,7,11,15,19,23 * * *", Timezone: "America/Detroit", Report: "trial-balance"},
				{Name: "tb-weekly", Cron: "10 19 * * 1", Timezone: "America/Detroit", Report: "trial-balance"},
				{Name: "daily", Cron: "20 7 * * *", Timezone: "America/Detroit", Report: "daily-production", Params: map[string]string{"report_date": "yesterday"}},
			} {
				if _, err := s.Add(ctx, spec); err != nil {
					t.Fatal(err)
				}
			}
			var runners []*Runner
			for i := 0; i < 3; i++ {
				st := open(t)
				r, err := NewRunner(nil, runService(st), slog.New(slog.NewJSONHandler(&bytes.Buffer{}, nil)))
				if err != nil {
					t.Fatal(err)
				}
				r.Schedules = &Schedules{Store: st, Jobs: r.Jobs}
				runners = append(runners, r)
			}
			// Wednesday 3 November 2027 00:00 Detroit (04:00 UTC) for a week; "daily" is
			// held from Saturday 00:00 on.
			start := time.Date(2027, 11, 3, 4, 0, 0, 0, time.UTC)
			holdAt := time.Date(2027, 11, 6, 4, 0, 0, 0, time.UTC)
			for at := start; at.Before(start.Add(7 * 24 * time.Hour)); at = at.Add(time.Hour) {
				if at.Equal(holdAt) {
					if _, err := s.Hold(ctx, "daily"); err != nil {
						t.Fatal(err)
					}
				}
				var wg sync.WaitGroup
				for _, r := range runners {
					wg.Add(1)
					go func() { defer wg.Done(); r.schedulesDue(ctx, at, at.Add(time.Hour)) }()
				}
				wg.Wait()
			}
			counts := map[string]int{}
			for _, j := range allJobs(t, first) {
				counts[strings.SplitN(j.OnceKey, "@", 2)[0]]++
			}
			// The week is Wednesday 00:00 EDT to Tuesday 23:00 EST (clocks go back on
			// Sunday): 6 refreshes a day but Tuesday's 23:10, 41; Monday's weekly, on its own
			// beside Monday's 19:10 refresh; daily Wed, Thu, Fri only.
			if counts["schedule:tb-refresh"] != 41 || counts["schedule:tb-weekly"] != 1 || counts["schedule:daily"] != 3 || len(counts) != 3 {
				t.Fatalf("jobs by schedule %v; want tb-refresh 41, tb-weekly 1, daily 3", counts)
			}
			sc, err := first.ScheduleGet(ctx, "tb-weekly")
			if err != nil || sc.LastOccurrence == nil || !sc.LastOccurrence.Equal(time.Date(2027, 11, 8, 19+5, 10, 0, 0, time.UTC)) || sc.LastJobID == 0 {
				t.Fatalf("tb-weekly last run %v job %d (%v)", sc.LastOccurrence, sc.LastJobID, err)
			}
		})
	}
}

// A runner killed and restarted with the policy once queues the latest missed
// occurrence, once even when two runners restart together; skip queues nothing.
func TestMissedOnceAfterDowntime(t *testing.T) {
	for name, open := range sharedQueues(t) {
		t.Run(name, func(t *testing.T) {
			first := open(t)
			ctx := context.Background()
			if err := first.Migrate(ctx); err != nil {
				t.Fatal(err)
			}
			s := &Schedules{Store: first, Jobs: runService(first)}
			for _, spec := range []ScheduleSpec{
				{Name: "daily-once", Cron: "20 7 * * *", Timezone: "America/Detroit", Report: "daily-production", Params: map[string]string{"report_date": "yesterday"}, Missed: "once"},
				{Name: "daily-skip", Cron: "20 7 * * *", Timezone: "America/Detroit", Report: "daily-production", Params: map[string]string{"report_date": "yesterday", "pcn": "300758"}},
			} {
				if _, err := s.Add(ctx, spec); err != nil {
					t.Fatal(err)
				}
			}
			run := func(from, until time.Time) {
				t.Helper()
				r, err := NewRunner(nil, runService(open(t)), slog.New(slog.NewJSONHandler(&bytes.Buffer{}, nil)))
				if err != nil {
					t.Fatal(err)
				}
				r.Schedules = &Schedules{Store: first, Jobs: r.Jobs}
				now := from
				var mu sync.Mutex
				r.Now = func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
				rctx, cancel := context.WithCancel(ctx)
				defer cancel()
				r.Sleep = func(_ context.Context, d time.Duration) {
					mu.Lock()
					defer mu.Unlock()
					now = now.Add(d)
					if !now.Before(until) {
						cancel()
					}
				}
				if err := r.Run(rctx); err != nil {
					t.Fatal(err)
				}
			}
			// Monday 8 November 2027 00:00 to 12:00 Detroit (EST): both run at 07:20. The
			// schedules were added before (now, in 2026) and no runner ran on Sunday: the
			// once one catches Sunday's 07:20 up at start.
			mon := time.Date(2027, 11, 8, 5, 0, 0, 0, time.UTC)
			run(mon, mon.Add(12*time.Hour))
			// Down until Wednesday 12:00: Tuesday's and Wednesday's 07:20 were missed. Two
			// runners come back at once.
			wed := mon.Add(2*24*time.Hour + 12*time.Hour)
			var wg sync.WaitGroup
			for range 2 {
				wg.Add(1)
				go func() { defer wg.Done(); run(wed, wed) }()
			}
			wg.Wait()
			var keys []string
			for _, j := range allJobs(t, first) {
				keys = append(keys, j.OnceKey)
			}
			want := map[string]bool{
				"schedule:daily-once@2027-11-07T12:20:00Z": true,
				"schedule:daily-once@2027-11-08T12:20:00Z": true, "schedule:daily-skip@2027-11-08T12:20:00Z": true,
				"schedule:daily-once@2027-11-10T12:20:00Z": true, // the latest missed one, once
			}
			if len(keys) != len(want) {
				t.Fatalf("jobs %v; want %v", keys, want)
			}
			for _, k := range keys {
				if !want[k] {
					t.Fatalf("unexpected job %s (all: %v)", k, keys)
				}
			}
		})
	}
}
