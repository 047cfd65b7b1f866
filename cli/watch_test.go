package cli

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"rpt/internal/queue"
)

func TestLiveViewRedrawsOneLinePerJob(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	v := &liveView{w: &out, live: true}
	at := time.Date(2026, 11, 29, 10, 0, 0, 0, time.UTC)
	v.update(queue.Event{Seq: 1, JobID: 7, Report: "trial-balance", Event: queue.EventQueued, At: at})
	v.update(queue.Event{Seq: 2, JobID: 8, Report: "daily-production", Event: queue.EventQueued, At: at})
	v.update(queue.Event{Seq: 3, JobID: 7, Report: "trial-balance", Event: queue.EventRunning, Attempt: 1, At: at.Add(time.Second)})
	v.update(queue.Event{Seq: 4, JobID: 7, Report: "trial-balance", Event: queue.EventProgress, Attempt: 1, Rows: 1200, At: at.Add(3 * time.Second)})
	got := out.String()
	// The last redraw moves up over both lines and shows job 7 with its rows and elapsed time.
	last := got[strings.LastIndex(got, "\x1b[2A"):]
	if !strings.Contains(last, "job 7") || !strings.Contains(last, "1200 rows") || !strings.Contains(last, "2s") || !strings.Contains(last, "job 8") {
		t.Errorf("last redraw = %q", last)
	}
	if strings.Count(last, "\n") != 2 {
		t.Errorf("last redraw has %d lines, want one per job", strings.Count(last, "\n"))
	}
	var plain bytes.Buffer
	p := &liveView{w: &plain}
	p.update(queue.Event{Seq: 1, JobID: 7, Report: "r", Event: queue.EventQueued, At: at})
	p.update(queue.Event{Seq: 2, JobID: 7, Report: "r", Event: queue.EventRunning, At: at})
	if strings.Count(plain.String(), "\n") != 2 || strings.Contains(plain.String(), "\x1b") {
		t.Errorf("not a terminal: want a plain line per event, got %q", plain.String())
	}
}

func TestLiveViewMarksUnconfirmedEvents(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 11, 29, 10, 0, 0, 0, time.UTC)
	var plain bytes.Buffer
	p := &liveView{w: &plain}
	p.show(queue.Event{Seq: 9, JobID: 7, Report: "r", Event: queue.EventSucceeded, At: at}, true)
	p.show(queue.Event{Seq: 9, JobID: 7, Report: "r", Event: queue.EventSucceeded, At: at}, false)
	lines := strings.Split(strings.TrimSpace(plain.String()), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], "unconfirmed") || strings.Contains(lines[1], "unconfirmed") {
		t.Errorf("want the broker-only line marked and the confirmed one not, got %q", lines)
	}
	var live bytes.Buffer
	v := &liveView{w: &live, live: true}
	v.show(queue.Event{Seq: 9, JobID: 7, Report: "r", Event: queue.EventSucceeded, At: at}, true)
	v.show(queue.Event{Seq: 9, JobID: 7, Report: "r", Event: queue.EventSucceeded, At: at}, false)
	last := live.String()[strings.LastIndex(live.String(), "\x1b[1A"):]
	if !strings.Contains(live.String(), "unconfirmed") || strings.Contains(last, "unconfirmed") {
		t.Errorf("the redraw after confirmation still says unconfirmed: %q", live.String())
	}
}
