// Package api is rpt's HTTP API: a front door like the command line, over the same job
// service (internal/jobs), so a job submitted, cancelled or retried here behaves
// exactly as with rpt submit, cancel and retry, and every error is answered from the
// error-class table (internal/errclass) with its HTTP status. JSON in and out under
// /api/v1; every route but /api/v1/healthz needs an API token (rpt tokens create) as
// `Authorization: Bearer TOKEN`, with a role high enough for the route. See
// ARCHITECTURE.md, "Packages", and the README's "HTTP API".
package api

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"time"

	"rpt/internal/errclass"
	"rpt/internal/jobs"
	"rpt/internal/notify"
	"rpt/internal/queue"
	"rpt/internal/results"
)

// MaxBody is the largest request body accepted: a submit is a report name and a few
// parameters, far below it.
const MaxBody = 1 << 20

// Server answers the API over one job service.
type Server struct {
	// Jobs is the job service; its Store also holds the API tokens. Each request uses a
	// copy naming the caller's token as the submitter.
	Jobs *jobs.Service
	// OpenResults opens the results store holding job j's result: the one `rpt get`
	// uses, so both read the same bytes.
	OpenResults func(ctx context.Context, j *queue.Job) (results.Store, error)
	// FileName is the download's file name for job j in format ext: the report's
	// filename: template made safe, as `rpt get` saves it.
	FileName func(j *queue.Job, ext string) (string, error)
	// Legacy serves POST /report, the old system's submit call, for scripts written
	// against it (still with a submitter's token).
	Legacy bool
	// Log receives one line per request (never a token nor a body); nil: discarded.
	Log *slog.Logger
	// Broker, when set, tells the event follower of new events at once; without it the
	// follower polls the events table.
	Broker *notify.Client
	// Heartbeat is how often an idle event stream gets a comment (DefaultHeartbeat).
	Heartbeat time.Duration
	// SessionCookie, when set, is the name of a cookie that may carry the API token
	// instead of the Authorization header: the web app's session (HttpOnly,
	// SameSite=Strict), so that the browser's EventSource and download links work.
	SessionCookie string
	// Schedules, when set, serves the database schedules under /api/v1/schedules.
	Schedules Schedules

	hubOnce  sync.Once
	eventHub *hub
}

// hub is the process's one event follower, made on first use.
func (s *Server) hub() *hub {
	s.hubOnce.Do(func() {
		s.eventHub = &hub{src: s.Jobs.Store, client: s.Broker, log: s.log()}
	})
	return s.eventHub
}

// Close stops the event follower and ends every event stream.
func (s *Server) Close() {
	s.hub().close()
}

type caller struct {
	token queue.APIToken
}

type ctxKey struct{}

func callerOf(r *http.Request) caller {
	c, _ := r.Context().Value(ctxKey{}).(caller)
	return c
}

// Route is one registered call: a net/http pattern and the lowest role it needs
// ("" for none).
type Route struct {
	Pattern string
	Role    string
	handler http.HandlerFunc
}

// Routes lists the API's calls; Handler registers exactly these, and the OpenAPI
// document must describe exactly these (a test checks it).
func (s *Server) Routes() []Route {
	rs := []Route{
		{"GET /api/v1/healthz", "", s.healthz},
		{"GET /api/v1/openapi.json", queue.RoleViewer, s.openAPI},
		{"GET /api/v1/reports", queue.RoleViewer, s.listReports},
		{"GET /api/v1/reports/{name}", queue.RoleViewer, s.showReport},
		{"POST /api/v1/jobs", queue.RoleSubmitter, s.submit},
		{"GET /api/v1/jobs", queue.RoleViewer, s.listJobs},
		{"GET /api/v1/jobs/{id}", queue.RoleViewer, s.showJob},
		{"POST /api/v1/jobs/{id}/cancel", queue.RoleSubmitter, s.cancel},
		{"POST /api/v1/jobs/{id}/retry", queue.RoleSubmitter, s.retry},
		{"GET /api/v1/jobs/{id}/result", queue.RoleViewer, s.result},
		{"GET /api/v1/events", queue.RoleViewer, s.events},
		{"GET /api/v1/agents", queue.RoleViewer, s.listAgents},
		{"POST /api/v1/agents/{name}/drain", queue.RoleAdmin, s.drain},
		{"GET /api/v1/pauses", queue.RoleViewer, s.listPauses},
		{"PUT /api/v1/pauses/{kind}/{name}", queue.RoleAdmin, s.pause(true)},
		{"DELETE /api/v1/pauses/{kind}/{name}", queue.RoleAdmin, s.pause(false)},
	}
	if s.Schedules != nil {
		rs = append(rs,
			Route{"GET /api/v1/schedules", queue.RoleViewer, s.listSchedules},
			Route{"POST /api/v1/schedules", queue.RoleSubmitter, s.addSchedule},
			Route{"PATCH /api/v1/schedules/{name}", queue.RoleSubmitter, s.updateSchedule},
			Route{"DELETE /api/v1/schedules/{name}", queue.RoleSubmitter, s.deleteSchedule},
			Route{"POST /api/v1/schedules/{name}/hold", queue.RoleSubmitter, s.holdSchedule(true)},
			Route{"POST /api/v1/schedules/{name}/resume", queue.RoleSubmitter, s.holdSchedule(false)},
		)
	}
	if s.Legacy {
		rs = append(rs, Route{"POST /report", queue.RoleSubmitter, s.legacyReport})
	}
	return rs
}

// Handler is the API's routes.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	for _, rt := range s.Routes() {
		if rt.Role == "" {
			mux.HandleFunc(rt.Pattern, rt.handler)
			continue
		}
		s.route(mux, rt.Pattern, rt.Role, rt.handler)
	}
	// Anything else under /api/v1 is a 404 in the API's shape, but only to a caller with
	// a token: what exists is not told to strangers.
	s.route(mux, "/api/v1/", queue.RoleViewer, func(w http.ResponseWriter, r *http.Request) {
		if allow := allowed(mux, r); len(allow) > 0 {
			w.Header().Set("Allow", strings.Join(allow, ", "))
			writeJSON(w, http.StatusMethodNotAllowed, errorBody{errorDetail{Code: "method_not_allowed",
				Message: fmt.Sprintf("%s %s: allowed: %s", r.Method, r.URL.Path, strings.Join(allow, ", "))}})
			return
		}
		s.fail(w, r, errclass.Errorf(errclass.NotFound, "%s %s: no such route", r.Method, r.URL.Path), "")
	})
	return s.logged(mux)
}

// allowed lists the methods a route of r's path answers (none: the path is unknown).
func allowed(mux *http.ServeMux, r *http.Request) []string {
	var out []string
	for _, m := range []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete} {
		probe := r.Clone(r.Context())
		probe.Method = m
		if _, pattern := mux.Handler(probe); pattern != "" && pattern != "/api/v1/" {
			out = append(out, m)
		}
	}
	return out
}

// route registers h behind authentication and a minimum role.
func (s *Server) route(mux *http.ServeMux, pattern, role string, h http.HandlerFunc) {
	mux.Handle(pattern, s.authorized(role, h))
}

// authorized lets a request through with a known, unrevoked token of at least role.
// The token is looked up by its sha256 and the stored hash compared in constant time;
// the token itself is never stored, logged or echoed.
func (s *Server) authorized(role string, h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		auth := r.Header.Get("Authorization")
		scheme, tok, ok := strings.Cut(auth, " ")
		if auth == "" && s.SessionCookie != "" {
			if c, err := r.Cookie(s.SessionCookie); err == nil && c.Value != "" {
				scheme, tok, ok = "Bearer", c.Value, true
			}
		}
		if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(tok) == "" {
			w.Header().Set("WWW-Authenticate", `Bearer realm="rpt"`)
			s.fail(w, r, errclass.New(errclass.Unauthorized, "missing API token: send `Authorization: Bearer TOKEN` (rpt tokens create NAME --role ROLE)"), "")
			return
		}
		sum := queue.TokenSHA256(strings.TrimSpace(tok))
		t, err := s.Jobs.Store.TokenByHash(r.Context(), sum)
		if errors.Is(err, queue.ErrNotFound) || err == nil && !queue.TokenHashEqual(t.SHA256, sum) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="rpt", error="invalid_token"`)
			s.fail(w, r, errclass.New(errclass.Unauthorized, "unknown API token"), "")
			return
		}
		if err != nil {
			s.fail(w, r, err, "")
			return
		}
		if t.RevokedAt != nil {
			w.Header().Set("WWW-Authenticate", `Bearer realm="rpt", error="invalid_token"`)
			s.fail(w, r, errclass.Errorf(errclass.Unauthorized, "API token %q was revoked", t.Name), "")
			return
		}
		ctx := context.WithValue(r.Context(), ctxKey{}, caller{token: t})
		r = r.WithContext(ctx)
		if rl, ok := w.(*statusRecorder); ok {
			rl.who = t.Name
		}
		if queue.RoleRank(t.Role) < queue.RoleRank(role) {
			s.fail(w, r, errclass.Errorf(errclass.Forbidden, "token %q has role %s; this needs %s", t.Name, t.Role, role), "")
			return
		}
		if err := s.Jobs.Store.TokenTouch(ctx, t.ID); err != nil {
			s.log().Warn("api: record token use", "token", t.Name, "error", err)
		}
		h(w, r)
	})
}

// service is the job service acting for the caller: who submitted, cancelled or
// retried is the token's name.
func (s *Server) service(r *http.Request) *jobs.Service {
	svc := *s.Jobs
	svc.SubmittedBy = "api:" + callerOf(r).token.Name
	return &svc
}

func (s *Server) log() *slog.Logger {
	if s.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return s.Log
}

// errorBody is every error's shape.
type errorBody struct {
	Error errorDetail `json:"error"`
}

type errorDetail struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Field   string `json:"field,omitempty"`
}

// paramField finds the parameter a reportdefs error names ("param \"pcn\" (int): ...").
var paramField = regexp.MustCompile(`^param "([^"]+)"`)

// fail answers err with its class's status. A parameter error is a 422 naming the
// parameter in field; an internal error's text stays in the log, the caller gets its
// class only (it may hold paths or driver details).
func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error, field string) {
	s.failStatus(w, r, err, field, 0)
}

// failStatus is fail with the status forced (0: the class's).
func (s *Server) failStatus(w http.ResponseWriter, r *http.Request, err error, field string, force int) {
	class := jobs.Class(err)
	status := class.HTTP()
	msg := err.Error()
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe):
		class, status = errclass.Invalid, http.StatusRequestEntityTooLarge
		msg = fmt.Sprintf("request body larger than %d bytes", mbe.Limit)
	case class == errclass.Invalid && field == "":
		if m := paramField.FindStringSubmatch(msg); m != nil {
			field, status = m[1], http.StatusUnprocessableEntity
		}
	case class == errclass.Internal:
		s.log().Error("api: internal error", "method", r.Method, "path", r.URL.Path, "error", err)
		msg = "internal error (logged by the server)"
	}
	if force != 0 {
		status = force
	}
	if rl, ok := w.(*statusRecorder); ok {
		rl.err = err
	}
	writeJSON(w, status, errorBody{errorDetail{Code: class.String(), Message: msg, Field: field}})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// decode reads a JSON body strictly: at most MaxBody bytes, one object, no unknown
// fields (a field the API does not take, such as sql, is refused, not ignored).
func decode(w http.ResponseWriter, r *http.Request, v any) (string, error) {
	if ct := r.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(ct, "application/json") {
		return "", errclass.Errorf(errclass.Invalid, "Content-Type %q: want application/json", ct)
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, MaxBody))
	dec.DisallowUnknownFields()
	dec.UseNumber()
	err := dec.Decode(v)
	if err == nil && dec.More() {
		err = errors.New("more than one JSON value")
	}
	if err == nil {
		return "", nil
	}
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return "", err
	}
	var ute *json.UnmarshalTypeError
	if errors.As(err, &ute) {
		return ute.Field, errclass.Errorf(errclass.Invalid, "request body: %s: want %s, got %s", ute.Field, ute.Type, ute.Value)
	}
	if f, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		name := strings.Trim(f, `"`)
		return name, errclass.Errorf(errclass.Invalid, "request body: unknown field %q (the API takes a report name and its parameters only)", name)
	}
	if errors.Is(err, io.EOF) {
		return "", errclass.New(errclass.Invalid, "request body: empty; want a JSON object")
	}
	return "", errclass.Errorf(errclass.Invalid, "request body: invalid JSON: %v", err)
}

func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	if _, err := s.Jobs.Store.EventLastSeq(r.Context()); err != nil {
		s.log().Warn("api: healthz: queue", "error", err)
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "queue unavailable"})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// statusRecorder keeps what the request log line says.
type statusRecorder struct {
	http.ResponseWriter
	status int
	who    string
	err    error
}

func (r *statusRecorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.ResponseWriter.Write(b)
}

func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// logged writes one line per request: method, path (never the query's values, which
// may be parameters, nor any header), status, the token's name, time taken.
func (s *Server) logged(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w}
		h.ServeHTTP(rec, r)
		attrs := []any{"method", r.Method, "path", r.URL.Path, "status", rec.status, "token", rec.who,
			"ms", time.Since(start).Milliseconds()}
		if rec.err != nil && rec.status < 500 {
			attrs = append(attrs, "error", rec.err.Error())
		}
		s.log().Info("api", attrs...)
	})
}

// WriteTimeout bounds how long a response may take to write, except result downloads
// and event streams, which lift it for themselves (a large download, a stream that
// lasts as long as its client).
const WriteTimeout = time.Minute

// Serve answers h on ln until ctx is done, then stops taking requests and lets those
// under way finish for up to 10 s (event streams end at once; clients reconnect
// elsewhere and resume). Header and body reads and writes are time-limited, but for
// downloads and event streams.
func (s *Server) Serve(ctx context.Context, ln net.Listener, h http.Handler) error {
	if h == nil {
		h = s.Handler()
	}
	srv := NewHTTPServer(h, s.log())
	srv.RegisterOnShutdown(s.Close)
	defer s.Close()
	done := make(chan struct{})
	go func() {
		defer close(done)
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	err := srv.Serve(ln)
	if errors.Is(err, http.ErrServerClosed) {
		<-done
		return nil
	}
	return err
}

// NewHTTPServer is an http.Server with rpt's time-outs: a slow client cannot hold a
// connection by trickling headers or a body, nor an idle one for ever.
func NewHTTPServer(h http.Handler, log *slog.Logger) *http.Server {
	return &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: time.Minute,
		WriteTimeout: WriteTimeout, IdleTimeout: 2 * time.Minute, ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
}

// idempotencyToken is the submit token for an Idempotency-Key, in the namespace of the
// caller's token: the same key from another token is another submit.
func idempotencyToken(tokenName, key string) string {
	sum := sha256.Sum256([]byte(tokenName + "\x00" + key))
	return queue.OriginAPI + "-" + hex.EncodeToString(sum[:20])
}

func jobsClass(err error) errclass.Class { return jobs.Class(err) }
