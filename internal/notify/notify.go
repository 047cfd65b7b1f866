// Package notify carries rpt's live signals over MQTT: job events per job and per
// report, the queue wake-up that lets idle agents claim at once, agents' retained
// presence with a last will, cancel requests, and an optional per-node legacy
// completion topic. It also holds the embedded broker of one-machine mode.
//
// The queue database stays the source of truth. MQTT only makes things fast: a Relay
// copies rows of the events table to MQTT, and Follow merges what MQTT brings with what
// the database says, by seq, so a watcher never shows a gap or a state out of order
// even when the broker is down, restarted or loses messages. Nothing in rpt blocks on
// MQTT: the Client buffers (bounded) while disconnected and reconnects on its own.
//
// Topics (Prefix defaults to "rpt"; JSON payloads; QoS 1):
//
//	<prefix>/jobs/<id>          Event
//	<prefix>/reports/<name>     Event
//	<prefix>/jobs/<id>/cancel   {"id": 42, "at": "..."}
//	<prefix>/queue/wake         {"at": "..."}
//	<prefix>/agents/<agent>     Presence, retained; last will {"state": "gone"}
//	<LegacyTopic>               {"id": 42, "report": "...", "status": "succeeded"}
//
// Delivery is at least once: the same event may arrive twice (two relays, a resend after
// a reconnect, the job and the report topic). Subscribers dedupe by seq, as Follow does.
//
// Who publishes events: every agent runs a Relay over all jobs, so events keep flowing
// while any agent lives, with no leader to elect; each event is then published once per
// agent, which the seq dedupe makes harmless (see Relay). Wake-ups and cancels are
// published directly by whoever submits or cancels.
package notify

import (
	"strconv"
	"strings"
	"time"

	"rpt/internal/queue"
)

// DefaultPrefix is the first level of every rpt topic.
const DefaultPrefix = "rpt"

// Presence states published on <prefix>/agents/<agent>.
const (
	PresenceUp       = "up"
	PresenceDraining = "draining"
	PresenceGone     = "gone"
)

// Event is a job event as published on the job and report topics: a row of the events
// table plus, for a succeeded event, a reference to the result that counts.
type Event struct {
	queue.Event
	Result *ResultRef `json:"result,omitempty"`
}

// ResultRef names a stored result: the job and the attempt whose chunks count. For a
// result outside the queue database (MongoDB), a relay that can read jobs adds where it
// lives: the store's name as the job records it (mongodb://host:port/db, no
// credentials) and the result's id there ("JOB.ATTEMPT", the prefix of its chunks'
// _id; the chunks are the documents {job: JOB, attempt: ATTEMPT}).
type ResultRef struct {
	Job     int64  `json:"job"`
	Attempt int    `json:"attempt"`
	Store   string `json:"store,omitempty"`
	ID      string `json:"id,omitempty"`
}

// ResultID is the id of the result of attempt of job in a store other than the queue
// database (internal/results/mongo keys its chunks by it).
func ResultID(job int64, attempt int) string {
	return strconv.FormatInt(job, 10) + "." + strconv.Itoa(attempt)
}

// EventFrom makes the published form of an events-table row: a succeeded event carries
// the result reference (the attempt that completed is the result attempt).
func EventFrom(e queue.Event) Event {
	ev := Event{Event: e}
	if e.Event == queue.EventSucceeded {
		ev.Result = &ResultRef{Job: e.JobID, Attempt: e.Attempt}
	}
	return ev
}

// Presence is an agent's retained state.
type Presence struct {
	Agent string    `json:"agent"`
	State string    `json:"state"` // up, draining, gone
	At    time.Time `json:"at"`
}

// LegacyCompletion is the payload of the per-node <node>-report-complete topic the
// existing subscribers read.
type LegacyCompletion struct {
	ID     int64        `json:"id"`
	Report string       `json:"report"`
	Status queue.Status `json:"status"`
}

// Cancel is the payload of <prefix>/jobs/<id>/cancel.
type Cancel struct {
	ID int64     `json:"id"`
	At time.Time `json:"at"`
}

// Wake is the payload of <prefix>/queue/wake; agents only care that it arrived.
type Wake struct {
	At time.Time `json:"at"`
}

// Topics builds topic names under one prefix. Tests give each run its own prefix so they
// can share one broker.
type Topics struct {
	Prefix string
}

func (t Topics) prefix() string {
	if t.Prefix == "" {
		return DefaultPrefix
	}
	return strings.TrimSuffix(t.Prefix, "/")
}

// Job is the topic of one job's events.
func (t Topics) Job(id int64) string { return t.prefix() + "/jobs/" + strconv.FormatInt(id, 10) }

// AllJobs is the filter matching every job's event topic (not the cancel topics).
func (t Topics) AllJobs() string { return t.prefix() + "/jobs/+" }

// Report is the topic of the events of every job of one report.
func (t Topics) Report(name string) string { return t.prefix() + "/reports/" + segment(name) }

// Cancel is the topic a cancel request of one job is published on.
func (t Topics) Cancel(id int64) string { return t.Job(id) + "/cancel" }

// AllCancels is the filter agents subscribe to for cancel requests.
func (t Topics) AllCancels() string { return t.prefix() + "/jobs/+/cancel" }

// Wake is the queue wake-up topic.
func (t Topics) Wake() string { return t.prefix() + "/queue/wake" }

// Agent is the retained presence topic of one agent.
func (t Topics) Agent(name string) string { return t.prefix() + "/agents/" + segment(name) }

// AllAgents is the filter matching every agent's presence.
func (t Topics) AllAgents() string { return t.prefix() + "/agents/+" }

// segment makes a name safe as one topic level: MQTT forbids wildcards in a published
// topic, and a "/" would add a level that the single-level filters would not match.
func segment(name string) string {
	if name == "" {
		return "_"
	}
	return strings.Map(func(r rune) rune {
		switch r {
		case '/', '+', '#', 0:
			return '_'
		}
		return r
	}, name)
}

// terminalEvent reports whether an event ends its job (the legacy topic's trigger).
func terminalEvent(name string) bool {
	return name == queue.EventSucceeded || name == queue.EventFailed || name == queue.EventCancelled
}
