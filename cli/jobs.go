package cli

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	ucli "github.com/urfave/cli/v2"

	"rpt/internal/errclass"
	"rpt/internal/jobs"
	"rpt/internal/queue"
	"rpt/internal/results"
)

func jobsCommand(d *Deps) *ucli.Command {
	listFlags := func() []ucli.Flag {
		return []ucli.Flag{
			&ucli.StringFlag{Name: "status", Usage: "only jobs in `STATUS`: queued|running|succeeded|failed|cancelled"},
			&ucli.StringFlag{Name: "report", Usage: "only runs of `REPORT`"},
			&ucli.IntFlag{Name: "limit", Value: 50, Usage: "at most `N` jobs, newest first"},
			outputFlag("format: " + listFormats),
		}
	}
	list := func(c *ucli.Context) error {
		if c.NArg() > 0 {
			return usagef("jobs list: unexpected argument %q", c.Args().First())
		}
		format, err := listFormat(c, d)
		if err != nil {
			return err
		}
		p := queue.JobListParams{Status: queue.Status(c.String("status")), Report: c.String("report"), Limit: c.Int("limit")}
		switch p.Status {
		case "", queue.StatusQueued, queue.StatusRunning, queue.StatusSucceeded, queue.StatusFailed, queue.StatusCancelled:
		default:
			return usagef("--status %q: want queued, running, succeeded, failed or cancelled", p.Status)
		}
		if p.Limit <= 0 {
			return usagef("--limit %d: must be positive", p.Limit)
		}
		e, err := loadEnv(c, d)
		if err != nil {
			return err
		}
		store, err := e.openQueue(c.Context, false)
		if err != nil {
			return err
		}
		defer store.Close()
		list, err := e.jobs(store).List(c.Context, p)
		if err != nil {
			return err
		}
		return printJobs(c.Context, d, format, list, false)
	}
	return &ucli.Command{
		Name:   "jobs",
		Usage:  "list and show jobs",
		Flags:  listFlags(),
		Action: list,
		Subcommands: []*ucli.Command{
			{Name: "list", Usage: "list jobs, newest first: id, report, status, attempt, agent, rows, created, elapsed, error", Flags: listFlags(), Action: list},
			{
				Name: "show", Usage: "show one job: its parameters, source, agent, times and, while it is queued, why it waits (csv and tsv: its row of jobs list)", ArgsUsage: "ID",
				Flags: []ucli.Flag{outputFlag("format: " + listFormats)},
				Action: func(c *ucli.Context) error {
					id, err := jobID(c)
					if err != nil {
						return err
					}
					format, err := listFormat(c, d)
					if err != nil {
						return err
					}
					return withStore(c, d, func(e *env, store queue.Store) error {
						svc := e.jobs(store)
						j, err := svc.Get(c.Context, id)
						if err != nil {
							return unknownJob(err)
						}
						v, err := svc.Describe(c.Context, j)
						if err != nil {
							return err
						}
						switch format {
						case "table", "plain":
							return showJob(d, j, v)
						case "csv", "tsv":
							// The job's row of rpt jobs list, with its header.
							return printJobs(c.Context, d, format, []*queue.Job{j}, false)
						case "yaml":
							return writeYAML(d.Stdout, v)
						}
						return writeJSON(d.Stdout, v)
					})
				},
			},
		},
	}
}

// showJob prints one job as "key: value" lines.
func showJob(d *Deps, j *queue.Job, v jobs.View) error {
	w := d.Stdout
	fmt.Fprintf(w, "id:          %d\nreport:      %s\nstatus:      %s\nattempt:     %d (failures %d of %d)\n", v.ID, v.Report, v.Status, v.Attempt, j.Failures, j.MaxAttempts)
	// Values that came from outside (parameters, agent names, error texts) are shown
	// escaped: they cannot move the cursor or recolour the terminal.
	fmt.Fprintf(w, "params:      %s\nsource:      %s\npriority:    %d\n", results.EscapeControl(string(v.Params)), v.Source, v.Priority)
	if v.Agent != nil {
		fmt.Fprintf(w, "agent:       %s\n", results.EscapeControl(*v.Agent))
	}
	fmt.Fprintf(w, "rows:        %d\n", v.Rows)
	if v.Read != nil {
		fmt.Fprintf(w, "read:        %s\n", results.EscapeControl(v.Read.Note))
	}
	if v.Error != nil {
		fmt.Fprintf(w, "error:       %s\n", results.EscapeControl(*v.Error))
	}
	if v.RetryOf != nil {
		fmt.Fprintf(w, "retry of:    %d\n", *v.RetryOf)
	}
	fmt.Fprintf(w, "submitted:   %s by %s (%s)\n", v.CreatedAt.Format("2006-01-02T15:04:05.000Z07:00"), v.By, v.Origin)
	for _, why := range v.Waiting {
		fmt.Fprintf(w, "waiting:     %s\n", why)
	}
	if len(v.After) > 0 && j.Status != queue.StatusQueued {
		// A queued job's pending prerequisites are among its waiting: lines.
		var after []string
		for _, p := range v.After {
			after = append(after, fmt.Sprintf("%s %s", p.Name(), p.Status))
		}
		fmt.Fprintf(w, "after:       %s\n", results.EscapeControl(strings.Join(after, ", ")))
	}
	if v.StartedAt != nil {
		fmt.Fprintf(w, "started:     %s\n", v.StartedAt.Format("2006-01-02T15:04:05.000Z07:00"))
		if j.Status == queue.StatusRunning {
			fmt.Fprintf(w, "running for: %s (%d rows so far)\n", elapsed(d.Now(), v.StartedAt, nil), v.Rows)
		}
	}
	if v.FinishedAt != nil {
		fmt.Fprintf(w, "finished:    %s (%s)\n", v.FinishedAt.Format("2006-01-02T15:04:05.000Z07:00"), elapsed(d.Now(), v.StartedAt, v.FinishedAt))
	}
	for _, dv := range v.Deliveries {
		fmt.Fprintf(w, "delivery:    %s: %s", results.EscapeControl(dv.Target), dv.State)
		if dv.SentAt != nil {
			fmt.Fprintf(w, " %s", dv.SentAt.Format("2006-01-02T15:04:05Z07:00"))
		}
		if dv.DeliverJob != nil {
			fmt.Fprintf(w, " (deliver job %d)", *dv.DeliverJob)
		}
		fmt.Fprintln(w)
	}
	return nil
}

func jobID(c *ucli.Context) (int64, error) {
	if c.NArg() != 1 {
		return 0, usagef("%s: want one job ID, got %d arguments", c.Command.Name, c.NArg())
	}
	id, err := strconv.ParseInt(c.Args().First(), 10, 64)
	if err != nil || id <= 0 {
		return 0, usagef("job ID %q: want a positive integer", c.Args().First())
	}
	return id, nil
}

// unknownJob adds to "job N not found" where to look for the ids there are: a
// mistyped id is the usual cause. Other errors pass unchanged.
func unknownJob(err error) error {
	if !errors.Is(err, queue.ErrNotFound) {
		return err
	}
	return &errclass.Error{Class: errclass.NotFound, Msg: err.Error() + " (rpt jobs list shows the jobs there are)", Err: err}
}

func withStore(c *ucli.Context, d *Deps, fn func(*env, queue.Store) error) error {
	e, err := loadEnv(c, d)
	if err != nil {
		return err
	}
	store, err := e.openQueue(c.Context, false)
	if err != nil {
		return err
	}
	defer store.Close()
	return fn(e, store)
}

func cancelCommand(d *Deps) *ucli.Command {
	return &ucli.Command{
		Name: "cancel", Usage: "cancel a queued job, or stop a running one (its query is killed)", ArgsUsage: "ID",
		Action: func(c *ucli.Context) error {
			id, err := jobID(c)
			if err != nil {
				return err
			}
			return withStore(c, d, func(e *env, store queue.Store) error {
				// The agent learns of a cancel at once; without a broker, at its next heartbeat.
				pub := &lazyNotifier{e: e, ctx: c.Context, store: store}
				defer pub.close()
				svc := e.jobs(store)
				svc.Publisher = pub
				j, err := svc.Cancel(c.Context, id)
				if err != nil {
					return unknownJob(err)
				}
				switch {
				case j.Status == queue.StatusCancelled:
					fmt.Fprintf(d.Stderr, "job %d cancelled\n", id)
				case j.Status == queue.StatusRunning:
					fmt.Fprintf(d.Stderr, "job %d: cancel requested; its agent stops it\n", id)
				default:
					fmt.Fprintf(d.Stderr, "job %d already %s\n", id, j.Status)
				}
				return nil
			})
		},
	}
}

func retryCommand(d *Deps) *ucli.Command {
	return &ucli.Command{
		Name: "retry", Usage: "queue a job again with the same definition and parameters; prints the new id", ArgsUsage: "ID",
		Action: func(c *ucli.Context) error {
			id, err := jobID(c)
			if err != nil {
				return err
			}
			return withStore(c, d, func(e *env, store queue.Store) error {
				j, err := e.jobs(store).Retry(c.Context, id, queue.OriginCLI)
				if err != nil {
					return unknownJob(err)
				}
				fmt.Fprintln(d.Stdout, j.ID)
				return nil
			})
		},
	}
}

// getJob reads one job, an unknown id an error naming it.
func getJob(c *ucli.Context, store queue.Store, id int64) (*queue.Job, error) {
	j, err := (&jobs.Service{Store: store}).Get(c.Context, id)
	if err != nil {
		return nil, unknownJob(err)
	}
	return j, nil
}
