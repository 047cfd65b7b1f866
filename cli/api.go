package cli

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"net/http"

	ucli "github.com/urfave/cli/v2"

	"rpt/crontab"
	"rpt/internal/api"
	"rpt/internal/jobs"
	"rpt/internal/queue"
	"rpt/internal/results"
	"rpt/internal/web"
)

// defaultAPIListen is where the API listens unless told: this machine only.
const defaultAPIListen = "127.0.0.1:8080"

func apiCommand(d *Deps) *ucli.Command {
	return &ucli.Command{
		Name:  "api",
		Usage: "serve the HTTP API (/api/v1; API tokens from rpt tokens create) until stopped",
		Flags: []ucli.Flag{
			&ucli.StringFlag{Name: "listen", Value: defaultAPIListen, Usage: "listen on `ADDR` (host:port)", EnvVars: []string{"RPT_API_LISTEN"}},
			&ucli.BoolFlag{Name: "legacy-report", Usage: "also answer the old system's POST /report (report_name, start_period, end_period, email)", EnvVars: []string{"RPT_API_LEGACY_REPORT"}},
		},
		Action: func(c *ucli.Context) error {
			if c.NArg() > 0 {
				return usagef("api: unexpected argument %q", c.Args().First())
			}
			e, err := loadEnv(c, d)
			if err != nil {
				return err
			}
			store, err := e.openQueueFor(c.Context, queueWrite)
			if err != nil {
				return err
			}
			defer store.Close()
			ln, err := listenAPI(e, c.String("listen"))
			if err != nil {
				return err
			}
			log := slog.New(slog.NewJSONHandler(d.Stderr, nil))
			return serveAPI(c.Context, e, store, ln, c.Bool("legacy-report"), log)
		},
	}
}

// listenAPI listens on addr, with TLS when rpt.yaml's api: names a certificate and
// key; a bad or taken address, or a certificate that does not load, is the caller's
// to fix (exit 2).
func listenAPI(e *env, addr string) (net.Listener, error) {
	var tc *tls.Config
	if a := e.cfg.API; a.TLSCert != "" {
		cert, err := tls.LoadX509KeyPair(a.TLSCert, a.TLSKey)
		if err != nil {
			return nil, usagef("%s: api: tls_cert %s and tls_key %s: %v", e.cfg.File, a.TLSCert, a.TLSKey, err)
		}
		tc = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, usagef("api: listen on %s: %v", addr, err)
	}
	if tc != nil {
		ln = tls.NewListener(ln, tc)
	}
	return ln, nil
}

// apiScheme is how the API is reached: https with api: TLS files, else http.
func apiScheme(e *env) string {
	if e.cfg.API.TLSCert != "" {
		return "https"
	}
	return "http"
}

// serveAPI answers the API over store until ctx ends. Jobs go
// through the same job service as rpt submit, cancel and retry; results are read and
// named as rpt get reads and names them.
func serveAPI(ctx context.Context, e *env, store queue.Store, ln net.Listener, legacy bool, log *slog.Logger) error {
	svc := e.jobs(store)
	// One broker connection for the process, so agents hear of new jobs and cancels at
	// once, and event streams of new events.
	client := e.notifier(ctx, store)
	if client != nil {
		defer closeNotifier(client)
		svc.Publisher = client
	}
	s := &api.Server{
		Jobs: svc,
		OpenResults: func(ctx context.Context, j *queue.Job) (results.Store, error) {
			return e.resultsOf(ctx, store, j)
		},
		FileName: func(j *queue.Job, ext string) (string, error) { return defaultFileName(e, j, ext) },
		Log:      log,
		Legacy:   legacy,
		Broker:   client,
		// The web app's session cookie also works for the API, so the pages' live
		// updates and downloads use the API's own routes and roles.
		SessionCookie: web.CookieName,
		Schedules:     apiSchedules{webSchedules{store: store, svc: svc}},
	}
	app := &web.Server{
		Jobs: svc,
		OpenResults: func(ctx context.Context, j *queue.Job) (results.Store, error) {
			return e.resultsOf(ctx, store, j)
		},
		Log:       log,
		Secure:    apiScheme(e) == "https", // the session cookie goes over TLS only
		Schedules: webSchedules{store: store, svc: svc},
	}
	apiHandler := web.Protect(s.Handler()) // a cookie-carrying cross-site post is refused here too
	mux := http.NewServeMux()
	mux.Handle("/api/", apiHandler)
	if legacy {
		mux.Handle("/report", apiHandler)
	}
	mux.Handle("/", app.Handler())
	fmt.Fprintf(e.d.Stderr, "rpt api: listening on %s://%s/ (web app; the API under /api/v1; queue %s)\n", apiScheme(e), ln.Addr(), redactedQueue(e))
	return s.Serve(ctx, ln, mux)
}

// webSchedules gives the web app the database schedules (crontab.Schedules, which
// sits in the web app's layer, so it comes in through web.Schedules).
type webSchedules struct {
	store queue.Store
	svc   *jobs.Service
}

func (w webSchedules) schedules(by string) *crontab.Schedules {
	svc := *w.svc
	if by != "" {
		svc.SubmittedBy = by
	}
	return &crontab.Schedules{Store: w.store, Jobs: &svc}
}

func (w webSchedules) List(ctx context.Context) ([]web.ScheduleRow, error) {
	list, err := w.schedules("").List(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]web.ScheduleRow, len(list))
	for i, v := range list {
		out[i] = web.ScheduleRow{Schedule: v.Schedule, Next: v.Next}
	}
	return out, nil
}

func (w webSchedules) Add(ctx context.Context, in web.ScheduleInput, by string) error {
	_, err := w.schedules(by).Add(ctx, crontab.ScheduleSpec{Name: in.Name, Cron: in.Cron, Timezone: in.Timezone, Report: in.Report, Params: in.Params})
	return err
}

func (w webSchedules) Delete(ctx context.Context, name string) error {
	return w.schedules("").Delete(ctx, name)
}

func (w webSchedules) Hold(ctx context.Context, name string, held bool) error {
	var err error
	if held {
		_, err = w.schedules("").Hold(ctx, name)
	} else {
		_, err = w.schedules("").Resume(ctx, name)
	}
	return err
}

// apiSchedules gives the API the database schedules, as webSchedules gives the web app.
type apiSchedules struct{ w webSchedules }

func (a apiSchedules) List(ctx context.Context) ([]api.ScheduleView, error) {
	list, err := a.w.schedules("").List(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]api.ScheduleView, len(list))
	for i, v := range list {
		out[i] = api.ScheduleView{Schedule: v.Schedule, Next: v.Next}
	}
	return out, nil
}

func (a apiSchedules) Add(ctx context.Context, s api.ScheduleSpec, by string) (queue.Schedule, error) {
	return a.w.schedules(by).Add(ctx, crontab.ScheduleSpec{Name: s.Name, Cron: s.Cron, Timezone: s.Timezone, Report: s.Report,
		Params: s.Params, Deliver: s.Deliver, Missed: s.Missed})
}

func (a apiSchedules) Update(ctx context.Context, name string, c api.ScheduleChange) (queue.Schedule, error) {
	return a.w.schedules("").Update(ctx, name, crontab.ScheduleChange{Cron: c.Cron, Timezone: c.Timezone, Report: c.Report,
		Missed: c.Missed, Params: c.Params, Deliver: c.Deliver})
}

func (a apiSchedules) Delete(ctx context.Context, name string) error { return a.w.Delete(ctx, name) }

func (a apiSchedules) Hold(ctx context.Context, name string, held bool) (queue.Schedule, error) {
	if held {
		return a.w.schedules("").Hold(ctx, name)
	}
	return a.w.schedules("").Resume(ctx, name)
}
