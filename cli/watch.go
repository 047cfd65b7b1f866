package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"

	ucli "github.com/urfave/cli/v2"

	"rpt/internal/notify"
	"rpt/internal/queue"
	"rpt/internal/results"
)

// notifier connects to the configured MQTT broker as an rpt client (it may publish
// wake-ups and cancels only), or returns nil when none is configured. It never fails the
// command: without a broker, callers poll the queue.
func (e *env) notifier(ctx context.Context, store queue.Settings) *notify.Client {
	if e.cfg.MQTT == "" {
		return nil
	}
	user, pw := e.mqttCredentials(ctx, store, notify.ClientUser)
	c, err := notify.Connect(ctx, notify.Options{URL: e.cfg.MQTT, ClientID: notify.NewClientID("rpt-cli"), Prefix: e.mqttPrefix, Logger: e.log,
		Username: user, Password: pw})
	if err != nil {
		fmt.Fprintf(e.d.Stderr, "rpt: mqtt: %v (polling the queue instead)\n", err)
		return nil
	}
	return c
}

// mqttCredentials is the user and password to connect to the broker with in a role
// (notify.AgentUser, notify.ClientUser): none when the configured URL names its own user
// (tcp://user:pw@host wins); else those rpt server generated and keeps with the queue,
// so every rpt on the same queue connects to its broker without configuration.
func (e *env) mqttCredentials(ctx context.Context, store queue.Settings, user string) (string, string) {
	if store == nil || notify.URLHasUser(e.cfg.MQTT) {
		return "", ""
	}
	pw, ok, err := notify.StoredCredentials(ctx, store, user)
	if err != nil {
		e.log.Warn("mqtt: cannot read the broker credentials kept with the queue; connecting without", "error", err)
		return "", ""
	}
	if !ok {
		return "", ""
	}
	return user, pw
}

func closeNotifier(c *notify.Client) {
	if c == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	c.Flush(ctx)
	c.Close()
}

func watchCommand(d *Deps) *ucli.Command {
	return &ucli.Command{
		Name:      "watch",
		Usage:     "live job events: a line per job on a terminal (updated in place), one JSON event per line in a pipe",
		ArgsUsage: "[ID]...",
		Flags: []ucli.Flag{
			&ucli.StringFlag{Name: "report", Usage: "events of every run of `REPORT`"},
			&ucli.BoolFlag{Name: "history", Usage: "with --report or no ID: replay earlier events too"},
			outputFlag("format: json|table (json: one event per line; table: a line per event)"),
		},
		Action: func(c *ucli.Context) error {
			var ids []int64
			for _, a := range c.Args().Slice() {
				id, err := strconv.ParseInt(a, 10, 64)
				if err != nil || id <= 0 {
					return usagef("watch: job ID %q: want a positive integer", a)
				}
				ids = append(ids, id)
			}
			report := c.String("report")
			asJSON := !d.StdoutTTY
			switch c.String("output") {
			case "json":
				asJSON = true
			case "table":
				asJSON = false
			case "":
			default:
				return usagef("-o/--output: unknown format %q (want json or table)", c.String("output"))
			}
			e, err := loadEnv(c, d)
			if err != nil {
				return err
			}
			ctx := c.Context
			store, err := e.openQueue(ctx, false)
			if err != nil {
				return err
			}
			defer store.Close()
			for _, id := range ids {
				if _, err := getJob(c, store, id); err != nil {
					return err
				}
			}
			if report != "" {
				cat, err := e.catalog()
				if err != nil {
					return err
				}
				if _, err := cat.Get(report); err != nil {
					return err
				}
			}
			var after int64
			if len(ids) == 0 && !c.Bool("history") {
				if after, err = store.EventLastSeq(ctx); err != nil {
					return fmt.Errorf("watch: %w", err)
				}
			}
			client := e.notifier(ctx, store)
			defer closeNotifier(client)
			enc := json.NewEncoder(d.Stdout)
			view := &liveView{w: d.Stdout, live: d.StdoutTTY}
			// What the queue database confirms is shown as is. What only the broker says
			// (while the database does not answer) is marked unconfirmed: anyone who can
			// publish there could have said it. Follow drops broker events the database
			// answers without (a job that does not exist, a forged state).
			f := &notify.Follower{Source: store, Client: client, IDs: ids, Report: report, AfterSeq: after,
				Logger: e.log, Unconfirmed: func(ev queue.Event) {
					if asJSON {
						enc.Encode(unconfirmedEvent{Event: notify.EventFrom(ev), Unconfirmed: true})
						return
					}
					view.show(ev, true)
				}}
			err = f.Run(ctx, func(ev queue.Event) {
				if asJSON {
					enc.Encode(notify.EventFrom(ev))
					return
				}
				view.update(ev)
			})
			if errors.Is(err, context.Canceled) && ctx.Err() != nil {
				return nil // Ctrl-C ends a watch; it is how one stops it
			}
			return err
		},
	}
}

// unconfirmedEvent is the JSON form of an event only the broker reported.
type unconfirmedEvent struct {
	notify.Event
	Unconfirmed bool `json:"unconfirmed"`
}

// liveView shows one line per job with its latest state: on a terminal the lines are
// redrawn in place as events arrive; otherwise (-o table in a pipe) each event is a line.
type liveView struct {
	w      io.Writer
	live   bool
	order  []int64
	last   map[int64]queue.Event
	first  map[int64]time.Time // when the job started running, for the elapsed time
	unconf map[int64]bool      // the job's line shows an unconfirmed event
	drawn  int
}

func (v *liveView) update(ev queue.Event) { v.show(ev, false) }

// unconfirmedNote ends the line of an event the queue database has not confirmed.
const unconfirmedNote = "  (unconfirmed: broker only, queue database not answering)"

func (v *liveView) show(ev queue.Event, unconfirmed bool) {
	if !v.live {
		line := results.EscapeControl(eventLine(ev, time.Time{})) // an error text cannot drive the terminal
		if unconfirmed {
			line += unconfirmedNote
		}
		fmt.Fprintln(v.w, line)
		return
	}
	if v.last == nil {
		v.last, v.first, v.unconf = map[int64]queue.Event{}, map[int64]time.Time{}, map[int64]bool{}
	}
	if _, ok := v.last[ev.JobID]; !ok {
		v.order = append(v.order, ev.JobID)
	}
	if ev.Event == queue.EventRunning {
		v.first[ev.JobID] = ev.At
	}
	v.last[ev.JobID] = ev
	v.unconf[ev.JobID] = unconfirmed
	if v.drawn > 0 {
		fmt.Fprintf(v.w, "\x1b[%dA", v.drawn) // back to the first line drawn
	}
	for _, id := range v.order {
		line := results.EscapeControl(eventLine(v.last[id], v.first[id]))
		if v.unconf[id] {
			line += unconfirmedNote
		}
		fmt.Fprintf(v.w, "\r\x1b[2K%s\n", line)
	}
	v.drawn = len(v.order)
}

// eventLine is a job's latest event for people: time, job, report, state, and the
// elapsed time since it started running when started is known.
func eventLine(ev queue.Event, started time.Time) string {
	s := fmt.Sprintf("%s  job %-5d %-22s %-16s attempt %d", ev.At.Local().Format("15:04:05"), ev.JobID, ev.Report, ev.Event, ev.Attempt)
	if !started.IsZero() {
		s += "  " + roundDur(ev.At.Sub(started)).String()
	}
	if ev.Agent != "" {
		s += "  agent " + ev.Agent
	}
	if ev.Rows > 0 {
		s += fmt.Sprintf("  %d rows", ev.Rows)
	}
	if ev.Error != "" {
		s += "  error: " + ev.Error
	}
	return s
}
