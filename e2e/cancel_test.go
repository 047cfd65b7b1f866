package e2e

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"rpt/internal/queue"
	"rpt/internal/testenv"
)

// Stopping a running job stops its query on the server: after `rpt cancel` of a job
// running a 10-minute query, and after a definition's timeout: 2s, no query of the job
// is left in the server's process list. The cancelled job ends cancelled; the timed-out
// one ends failed at attempt 1, with no retry although max_attempts allows three.
func TestStopKillsServerQuery(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		timeout    string // the definition's timeout:, "" for none
		cancel     bool   // rpt cancel once the query runs
		broker     bool   // agents and CLI talk to a broker: the cancel is announced
		wantStatus queue.Status
		wantEvents string // the job's events but progress
	}{
		{"rpt cancel", "", true, false, queue.StatusCancelled, "queued running cancel_requested cancelled"},
		{"rpt cancel with a broker", "", true, true, queue.StatusCancelled, "queued running cancel_requested cancelled"},
		{"definition timeout", "2s", false, false, queue.StatusFailed, "queued running failed"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			db := testenv.MariaDB(t)
			r := newRig(t, db, db)
			// A literal marker in the SQL finds the query in the process list however the
			// driver binds parameters.
			marker := fmt.Sprintf("e2e-stop-%d-%d-end", i, time.Now().UnixNano())
			yaml := fmt.Sprintf("name: sleeper\nsource: db\nmax_attempts: 3\nsql: \"SELECT '%s' AS marker, SLEEP(600) AS slept\"\n", marker)
			if tt.timeout != "" {
				yaml += "timeout: " + tt.timeout + "\n"
			}
			def := r.define(yaml)
			if tt.broker {
				broker := startPrivateMosquitto(t)
				r.mqtt, r.mqttPrefix = broker.url(), "e2e-stop"
			}
			a := r.startAgent("stop-"+strconv.Itoa(i), 1)
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			id, err := r.enqueue(ctx, def, nil)
			if err != nil {
				t.Fatal(err)
			}
			onServer := func() (int, error) {
				var n int
				err := r.db.QueryRowContext(ctx, "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE INFO LIKE ? AND ID <> CONNECTION_ID()",
					"%"+marker+"%").Scan(&n)
				return n, err
			}
			waitFor(t, 30*time.Second, "the job's query running on the server", func() (bool, error) {
				n, err := onServer()
				return n == 1, err
			})
			stopAsked := time.Now() // for the timeout: about when it started counting
			if tt.cancel {
				if _, err := r.rpt("cancel", strconv.FormatInt(id, 10)); err != nil {
					t.Fatal(err)
				}
			}
			// A few seconds: the agent learns of a cancel at its next heartbeat (1s) and
			// kills the query at once; the deadline is generous for a loaded machine.
			waitFor(t, 20*time.Second, "the job's query gone from the server", func() (bool, error) {
				n, err := onServer()
				return n == 0, err
			})
			gone := time.Since(stopAsked)
			waitFor(t, 20*time.Second, "the job finished", func() (bool, error) {
				j, err := r.job(ctx, id)
				return queue.Status(j.Status).Terminal(), err
			})
			j, err := r.job(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			if j.Status != string(tt.wantStatus) || j.Attempt != 1 {
				t.Errorf("job %d: %s at attempt %d, want %s at attempt 1 (no retry)", id, j.Status, j.Attempt, tt.wantStatus)
			}
			// Still so a moment later: no retry was scheduled behind the final status.
			time.Sleep(agentPoll * 5)
			evs, err := r.events(ctx, "job_id = ?", id)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, e := range evs {
				if e.Event != queue.EventProgress {
					got = append(got, e.Event)
				}
			}
			if strings.Join(got, " ") != tt.wantEvents {
				t.Errorf("events of job %d: %v, want %s", id, got, tt.wantEvents)
			}
			if a.exited() {
				t.Errorf("agent exited: %v", a.err)
			}
			// With a broker the agent acts on the announcement, not its next heartbeat.
			if tt.broker && !strings.Contains(a.logText(), "cancel requested (announced)") {
				t.Errorf("the agent did not act on the announced cancel")
			}
			t.Logf("job %d ended %s; its query left the server %.1fs after the stop was asked", id, j.Status, gone.Seconds())
		})
	}
}
