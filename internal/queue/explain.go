package queue

import (
	"fmt"
	"sort"
	"strings"
	"time"
)

// Pause stops claims of one report's or one source's jobs until it is resumed (Plex
// maintenance, a broken report). Kind is "report" or "source".
type Pause struct {
	Kind      string    `json:"kind"`
	Name      string    `json:"name"`
	CreatedAt time.Time `json:"created_at"`
}

// Pause kinds.
const (
	PauseReport = "report"
	PauseSource = "source"
)

// AgentAlive is how recently an agent must have been seen to count as running.
const AgentAlive = 30 * time.Second

// WaitReasons says why a queued job is not running yet, in the order a user should look
// at them: not due, paused, no agent that can run it, concurrency slots taken. An empty
// answer means it is runnable and waits for free capacity.
func WaitReasons(j *Job, now time.Time, pauses []Pause, agents []Agent, slotsUsed map[string]int) []string {
	if j.Status != StatusQueued {
		return nil
	}
	var why []string
	if j.RunAfter.After(now) {
		why = append(why, fmt.Sprintf("not due: run_after %s (in %s)", j.RunAfter.UTC().Format(time.RFC3339), j.RunAfter.Sub(now).Round(time.Second)))
	}
	for _, p := range pauses {
		if (p.Kind == PauseReport && p.Name == j.Report) || (p.Kind == PauseSource && p.Name == j.Source) {
			why = append(why, fmt.Sprintf("paused: %s %s (rpt resume %s %s)", p.Kind, p.Name, p.Kind, p.Name))
		}
	}
	// A draining agent takes no work: one that has stopped (quickstart's, a Ctrl-C'd
	// rpt agent) leaves its last beat draining and looks live for AgentAlive, so it
	// counts as not running, named so a drained one still running is not a surprise.
	alive, able := 0, 0
	var draining []string
	for _, a := range agents {
		if now.Sub(a.LastSeen) > AgentAlive {
			continue
		}
		if a.Draining {
			draining = append(draining, a.Name)
			continue
		}
		alive++
		if !RouteSatisfied(j.Route, a.Labels) {
			continue
		}
		if len(a.Sources) > 0 && !contains(a.Sources, j.Source) {
			continue
		}
		able++
	}
	switch {
	case alive == 0 && len(draining) > 0:
		sort.Strings(draining)
		why = append(why, fmt.Sprintf("no agent is running (start one: rpt agent); %s stopped or is draining", strings.Join(draining, ", ")))
	case alive == 0:
		why = append(why, "no agent is running (start one: rpt agent)")
	case able == 0 && len(missingCapabilities(j, now, agents)) > 0:
		// An agent too old for the job: say which capability, not just which labels.
		for _, k := range missingCapabilities(j, now, agents) {
			why = append(why, fmt.Sprintf("no live agent has capability %s (%s): the agents are older than this job needs; update one", k, capabilityWhat(k)))
		}
	case able == 0:
		need := []string{"source " + j.Source}
		keys := make([]string, 0, len(j.Route))
		for k := range j.Route {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			need = append(need, "label "+k+"="+j.Route[k])
		}
		why = append(why, fmt.Sprintf("no live agent has %s", strings.Join(need, " and ")))
	}
	for _, s := range j.Scopes {
		if used := slotsUsed[s.Name]; used >= s.Limit {
			why = append(why, fmt.Sprintf("no free slot: %s has %d of %d running", s.Name, used, s.Limit))
		}
	}
	return why
}

// missingCapabilities are the capability labels of j's route that no live agent
// that takes work has, sorted.
func missingCapabilities(j *Job, now time.Time, agents []Agent) []string {
	var out []string
	for k, v := range j.Route {
		if !IsCapability(k) {
			continue
		}
		has := false
		for _, a := range agents {
			if now.Sub(a.LastSeen) <= AgentAlive && !a.Draining && a.Labels[k] == v {
				has = true
				break
			}
		}
		if !has {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}

// capabilityWhat says in words what a capability label lets an agent run.
func capabilityWhat(label string) string {
	rest := strings.TrimPrefix(label, CapabilityPrefix)
	if k, ok := strings.CutPrefix(rest, "kind."); ok {
		return "runs " + k + " jobs"
	}
	if f, ok := strings.CutPrefix(rest, "feature."); ok {
		return "runs definitions with " + f + ":"
	}
	return rest
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
