package queue

import (
	"strings"
	"testing"
	"time"
)

func TestWaitReasons(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	live := Agent{Name: "a1", Sources: []string{"warehouse"}, Labels: map[string]string{"plant": "edon"}, LastSeen: now.Add(-time.Second)}
	job := func(mod func(*Job)) *Job {
		j := &Job{Status: StatusQueued, Report: "trial-balance", Source: "warehouse", RunAfter: now.Add(-time.Minute),
			Scopes: []Scope{{Name: "report:trial-balance", Limit: 1}}}
		if mod != nil {
			mod(j)
		}
		return j
	}
	tests := []struct {
		name   string
		job    *Job
		pauses []Pause
		agents []Agent
		used   map[string]int
		want   []string // substrings, in order; nil: runnable
	}{
		{name: "runnable", job: job(nil), agents: []Agent{live}},
		{name: "not due", job: job(func(j *Job) { j.RunAfter = now.Add(time.Hour) }), agents: []Agent{live}, want: []string{"not due: run_after 2026-11-29T13:00:00Z (in 1h0m0s)"}},
		{name: "paused report", job: job(nil), agents: []Agent{live}, pauses: []Pause{{Kind: PauseReport, Name: "trial-balance"}}, want: []string{"paused: report trial-balance"}},
		{name: "paused source", job: job(nil), agents: []Agent{live}, pauses: []Pause{{Kind: PauseSource, Name: "warehouse"}, {Kind: PauseSource, Name: "plex"}}, want: []string{"paused: source warehouse"}},
		{name: "no agent", job: job(nil), want: []string{"no agent is running"}},
		{name: "stale agent", job: job(nil), agents: []Agent{{Name: "old", LastSeen: now.Add(-time.Hour)}}, want: []string{"no agent is running"}},
		{name: "no agent with label", job: job(func(j *Job) { j.Route = map[string]string{"plant": "albion"} }), agents: []Agent{live}, want: []string{"no live agent has source warehouse and label plant=albion"}},
		{name: "no agent with the capability", job: job(func(j *Job) { j.Route = map[string]string{FeatureLabel("procedure"): CapabilityYes} }), agents: []Agent{live},
			want: []string{"no live agent has capability rpt/feature.procedure (runs definitions with procedure:): the agents are older than this job needs; update one"}},
		{name: "only a draining agent has the capability", job: job(func(j *Job) { j.Route = map[string]string{KindLabel("etl"): CapabilityYes} }),
			agents: []Agent{live, {Name: "new", Draining: true, Sources: []string{"warehouse"}, Labels: map[string]string{KindLabel("etl"): CapabilityYes}, LastSeen: now}},
			want:   []string{"no live agent has capability rpt/kind.etl (runs etl jobs): the agents are older than this job needs; update one"}},
		{name: "capability present, label missing", job: job(func(j *Job) {
			j.Route = map[string]string{FeatureLabel("procedure"): CapabilityYes, "plant": "albion"}
		}), agents: []Agent{{Name: "new", Sources: []string{"warehouse"}, Labels: map[string]string{FeatureLabel("procedure"): CapabilityYes}, LastSeen: now}},
			want: []string{"no live agent has source warehouse and label plant=albion and label rpt/feature.procedure=yes"}},
		{name: "capable agent", job: job(func(j *Job) { j.Route = map[string]string{FeatureLabel("procedure"): CapabilityYes} }),
			agents: []Agent{live, {Name: "new", Sources: []string{"warehouse"}, Labels: map[string]string{FeatureLabel("procedure"): CapabilityYes}, LastSeen: now}}},
		{name: "no agent with source", job: job(func(j *Job) { j.Source = "plex" }), agents: []Agent{live}, want: []string{"no live agent has source plex"}},
		{name: "draining agent", job: job(nil), agents: []Agent{{Name: "d", Draining: true, LastSeen: now}}, want: []string{"no agent is running (start one: rpt agent); d stopped or is draining"}},
		{name: "draining agent beside one without the source", job: job(nil), agents: []Agent{{Name: "d", Draining: true, Sources: []string{"warehouse"}, LastSeen: now}, {Name: "p", Sources: []string{"plex"}, LastSeen: now}},
			want: []string{"no live agent has source warehouse"}},
		{name: "slots taken", job: job(nil), agents: []Agent{live}, used: map[string]int{"report:trial-balance": 1}, want: []string{"no free slot: report:trial-balance has 1 of 1 running"}},
		{name: "running job has no reasons", job: job(func(j *Job) { j.Status = StatusRunning; j.RunAfter = now.Add(time.Hour) })},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := WaitReasons(tt.job, now, tt.pauses, tt.agents, tt.used)
			if len(got) != len(tt.want) {
				t.Fatalf("got %q, want %d reasons like %q", got, len(tt.want), tt.want)
			}
			for i := range got {
				if !strings.Contains(got[i], tt.want[i]) {
					t.Errorf("reason %d = %q, want it to contain %q", i, got[i], tt.want[i])
				}
			}
		})
	}
}
