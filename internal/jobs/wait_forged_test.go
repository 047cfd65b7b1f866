package jobs_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"rpt/internal/errclass"
	"rpt/internal/jobs"
	"rpt/internal/notify"
	"rpt/internal/queue"
)

// A forged terminal event on the broker, even from someone holding the agent password,
// does not end a wait: Wait ends on what the queue says. Before, the forged
// "succeeded" ended it after the one-second hold with "still queued" (exit 4).
func TestWaitIgnoresAForgedTerminalEvent(t *testing.T) {
	for _, s := range stores {
		t.Run(s.name, func(t *testing.T) {
			st := s.open(t)
			svc := newService(t, st, time.UTC, time.Now)
			ctx := context.Background()
			res, err := svc.Submit(ctx, jobs.SubmitRequest{Report: "rel"})
			if err != nil {
				t.Fatal(err)
			}
			creds, err := notify.BrokerCredentials(ctx, st)
			if err != nil {
				t.Fatal(err)
			}
			b, err := notify.StartBroker(ctx, "127.0.0.1:0", creds)
			if err != nil {
				t.Fatal(err)
			}
			defer b.Close()
			connect := func(user, pw string) *notify.Client {
				c, err := notify.Connect(ctx, notify.Options{URL: b.URL(), Username: user, Password: pw, Prefix: "rpt"})
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { c.Close() })
				return c
			}
			watcher := connect(notify.ClientUser, creds.ClientPassword)
			forger := connect(notify.AgentUser, creds.AgentPassword)

			wctx, cancel := context.WithTimeout(ctx, 3*time.Second)
			defer cancel()
			done := make(chan error, 1)
			started := make(chan struct{})
			var once bool
			go func() {
				_, err := svc.Wait(wctx, res.Job.ID, jobs.WaitOptions{Client: watcher, OnEvent: func(queue.Event) {
					if !once {
						once = true
						close(started) // subscribed and read: the forgery arrives live
					}
				}})
				done <- err
			}()
			<-started
			forger.PublishEvent(notify.EventFrom(queue.Event{Seq: 1 << 40, JobID: res.Job.ID, Report: "rel",
				Event: queue.EventSucceeded, Status: queue.StatusSucceeded, Attempt: 1, At: time.Now().UTC()}))
			start := time.Now()
			err = <-done
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("wait ended after %s with %v (class %v); want it still waiting when its context ends",
					time.Since(start).Round(time.Millisecond), err, jobs.Class(err))
			}
			if jobs.Class(err) == errclass.NotFinished {
				t.Fatal("the forged event ended the wait as not finished")
			}
		})
	}
}
