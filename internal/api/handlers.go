package api

import (
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"rpt/internal/deliver"
	"rpt/internal/errclass"
	"rpt/internal/jobs"
	"rpt/internal/queue"
	"rpt/internal/results"
	"rpt/internal/source"
	"rpt/reportdefs"
)

// reportSummary is one report of the catalogue.
type reportSummary struct {
	Name        string   `json:"name"`
	Title       string   `json:"title"`
	Description string   `json:"description,omitempty"`
	Source      string   `json:"source"`
	Params      []string `json:"params"`
}

// paramSchema is one parameter as a form or a script needs it. The SQL is not shown:
// the API runs reports, it does not publish their queries.
type paramSchema struct {
	Name        string   `json:"name"`
	Type        string   `json:"type"`
	Title       string   `json:"title,omitempty"`
	Description string   `json:"description,omitempty"`
	Values      []string `json:"values,omitempty"`
	Default     *string  `json:"default"`
	Required    bool     `json:"required"`
}

type reportDetail struct {
	reportSummary
	Filename string        `json:"filename,omitempty"`
	Schema   []paramSchema `json:"parameters"`
}

func summaryOf(d *reportdefs.Definition) reportSummary {
	names := make([]string, len(d.Params))
	for i, p := range d.Params {
		names[i] = p.Name
	}
	return reportSummary{Name: d.Name, Title: d.Title, Description: d.Description, Source: d.Source, Params: names}
}

func (s *Server) listReports(w http.ResponseWriter, r *http.Request) {
	cat, err := s.Jobs.Catalog()
	if err != nil {
		s.fail(w, r, err, "")
		return
	}
	out := []reportSummary{}
	for _, d := range cat.List() {
		out = append(out, summaryOf(d))
	}
	writeJSON(w, http.StatusOK, map[string]any{"reports": out})
}

func (s *Server) showReport(w http.ResponseWriter, r *http.Request) {
	cat, err := s.Jobs.Catalog()
	if err != nil {
		s.fail(w, r, err, "")
		return
	}
	d, err := cat.Get(r.PathValue("name"))
	if err != nil {
		s.fail(w, r, err, "")
		return
	}
	out := reportDetail{reportSummary: summaryOf(d), Filename: d.Filename, Schema: []paramSchema{}}
	for _, p := range d.Params {
		ps := paramSchema{Name: p.Name, Type: p.Type, Title: p.Title, Description: p.Description, Values: p.Values, Required: p.Required}
		if p.HasDefault {
			def := p.Default
			ps.Default = &def
		}
		out.Schema = append(out.Schema, ps)
	}
	writeJSON(w, http.StatusOK, out)
}

// submitBody is POST /jobs. Nothing else is taken: a caller names a report and gives
// its parameters; the SQL is the report definition's.
type submitBody struct {
	Report   string                     `json:"report"`
	Params   map[string]json.RawMessage `json:"params"`
	Priority int                        `json:"priority"`
	At       string                     `json:"at"`       // RFC 3339; run at or after
	Dedupe   string                     `json:"dedupe"`   // while a job with this key is queued or running, return it
	OncePer  string                     `json:"once_per"` // a Go duration ("24h"): at most once per bucket
	// Deliver are where the result goes once the report succeeds (mailto:ADDR,
	// https://HOOK), held to rpt.yaml's deliver: allow lists as rpt submit --deliver is.
	Deliver []string `json:"deliver"`
}

// MaxIdempotencyKey is the longest Idempotency-Key accepted.
const MaxIdempotencyKey = 255

func (s *Server) submit(w http.ResponseWriter, r *http.Request) {
	var b submitBody
	if field, err := decode(w, r, &b); err != nil {
		s.fail(w, r, err, field)
		return
	}
	req := jobs.SubmitRequest{Report: b.Report, Priority: b.Priority, Dedupe: b.Dedupe, Origin: queue.OriginAPI,
		Deliver: b.Deliver, DeliverField: "deliver"}
	if b.Report == "" {
		s.fail(w, r, errclass.New(errclass.Invalid, "report: required"), "report")
		return
	}
	params, field, err := paramTexts(b.Params)
	if err != nil {
		s.fail(w, r, err, field)
		return
	}
	req.Params = params
	if err := reportdefs.CheckParamLimits(params); err != nil {
		s.fail(w, r, err, "")
		return
	}
	if err := jobs.CheckPriority(b.Priority); err != nil {
		s.fail(w, r, err, "priority")
		return
	}
	if b.At != "" {
		at, err := time.Parse(time.RFC3339, b.At)
		if err != nil {
			s.fail(w, r, errclass.Errorf(errclass.Invalid, "at %q: want an RFC 3339 time such as 2026-01-31T06:00:00Z", b.At), "at")
			return
		}
		req.At = &at
	}
	if b.OncePer != "" {
		d, err := time.ParseDuration(b.OncePer)
		if err != nil || d <= 0 {
			s.fail(w, r, errclass.Errorf(errclass.Invalid, "once_per %q: want a duration such as 24h", b.OncePer), "once_per")
			return
		}
		req.OncePer = d
	}
	if key := r.Header.Get("Idempotency-Key"); key != "" {
		if len(key) > MaxIdempotencyKey || strings.ContainsFunc(key, func(c rune) bool { return c < 0x21 || c > 0x7e }) {
			s.fail(w, r, errclass.Errorf(errclass.Invalid, "Idempotency-Key: want 1 to %d printable ASCII characters", MaxIdempotencyKey), "Idempotency-Key")
			return
		}
		req.Token = idempotencyToken(callerOf(r).token.Name, key)
	}
	res, err := s.service(r).Submit(r.Context(), req)
	if err != nil {
		field := ""
		if jobs.Class(err) == errclass.Invalid && strings.Contains(err.Error(), "once-per") {
			field = "once_per"
		}
		if f := deliverField(err); len(b.Deliver) > 0 && f != "" {
			field = f
		}
		s.fail(w, r, err, field)
		return
	}
	// 201 for a new job; 200 for the one a dedupe or once key, or a replayed
	// Idempotency-Key, named.
	status := http.StatusCreated
	if res.Existing {
		status = http.StatusOK
	}
	w.Header().Set("Location", fmt.Sprintf("/api/v1/jobs/%d", res.Job.ID))
	writeJSON(w, status, jobs.ViewOf(res.Job))
}

// deliverField is the field of a delivery target the service refused (deliver.Check's
// error carries it), or "".
func deliverField(err error) string {
	var fe *deliver.FieldError
	if errors.As(err, &fe) {
		return fe.Field
	}
	return ""
}

// paramTexts turns JSON parameter values into the texts the CLI's -p takes: strings
// as they are, numbers as written, booleans, and arrays joined by commas (a list<T>);
// null is "not given".
func paramTexts(in map[string]json.RawMessage) (map[string]string, string, error) {
	out := make(map[string]string, len(in))
	for name, raw := range in {
		var v any
		dec := json.NewDecoder(strings.NewReader(string(raw)))
		dec.UseNumber()
		if err := dec.Decode(&v); err != nil {
			return nil, name, errclass.Errorf(errclass.Invalid, "params.%s: %v", name, err)
		}
		if v == nil {
			continue
		}
		text, err := jobs.ParamText(v)
		if err != nil {
			return nil, name, errclass.Errorf(errclass.Invalid, "param %q: %v", name, err)
		}
		out[name] = text
	}
	return out, "", nil
}

// jobList is GET /jobs: newest first; next_before, when set, fetches the next page.
type jobList struct {
	Jobs       []jobs.View `json:"jobs"`
	NextBefore *int64      `json:"next_before"`
}

// Listing limits: a page of 50 by default, at most 1000.
const (
	DefaultListLimit = 50
	MaxListLimit     = 1000
)

func (s *Server) listJobs(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	p := queue.JobListParams{Report: q.Get("report"), Limit: DefaultListLimit}
	if st := q.Get("status"); st != "" {
		switch queue.Status(st) {
		case queue.StatusQueued, queue.StatusRunning, queue.StatusSucceeded, queue.StatusFailed, queue.StatusCancelled:
			p.Status = queue.Status(st)
		default:
			s.fail(w, r, errclass.Errorf(errclass.Invalid, "status %q: want queued, running, succeeded, failed or cancelled", st), "status")
			return
		}
	}
	if l := q.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > MaxListLimit {
			s.fail(w, r, errclass.Errorf(errclass.Invalid, "limit %q: want 1 to %d", l, MaxListLimit), "limit")
			return
		}
		p.Limit = n
	}
	if b := q.Get("before"); b != "" {
		n, err := strconv.ParseInt(b, 10, 64)
		if err != nil || n < 1 {
			s.fail(w, r, errclass.Errorf(errclass.Invalid, "before %q: want a job id", b), "before")
			return
		}
		p.Before = n
	}
	list, err := s.Jobs.List(r.Context(), p)
	if err != nil {
		s.fail(w, r, err, "")
		return
	}
	out := jobList{Jobs: make([]jobs.View, len(list))}
	for i, j := range list {
		out.Jobs[i] = jobs.ViewOf(j)
	}
	if len(list) == p.Limit {
		last := list[len(list)-1].ID
		out.NextBefore = &last
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) jobOf(w http.ResponseWriter, r *http.Request) (int64, bool) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id < 1 {
		s.fail(w, r, errclass.Errorf(errclass.Invalid, "job id %q: want a positive whole number", r.PathValue("id")), "id")
		return 0, false
	}
	return id, true
}

func (s *Server) showJob(w http.ResponseWriter, r *http.Request) {
	id, ok := s.jobOf(w, r)
	if !ok {
		return
	}
	j, err := s.Jobs.Get(r.Context(), id)
	if err != nil {
		s.fail(w, r, err, "")
		return
	}
	v, err := s.Jobs.Describe(r.Context(), j)
	if err != nil {
		s.fail(w, r, err, "")
		return
	}
	writeJSON(w, http.StatusOK, v)
}

// emptyBody refuses a body on a POST that takes none, so nothing is silently ignored.
func (s *Server) emptyBody(w http.ResponseWriter, r *http.Request) bool {
	var b struct{}
	if r.ContentLength == 0 {
		return true
	}
	if field, err := decode(w, r, &b); err != nil {
		s.fail(w, r, err, field)
		return false
	}
	return true
}

func (s *Server) cancel(w http.ResponseWriter, r *http.Request) {
	id, ok := s.jobOf(w, r)
	if !ok || !s.emptyBody(w, r) {
		return
	}
	j, err := s.service(r).Cancel(r.Context(), id)
	if err != nil {
		s.fail(w, r, err, "")
		return
	}
	writeJSON(w, http.StatusOK, jobs.ViewOf(j))
}

func (s *Server) retry(w http.ResponseWriter, r *http.Request) {
	id, ok := s.jobOf(w, r)
	if !ok || !s.emptyBody(w, r) {
		return
	}
	j, err := s.service(r).Retry(r.Context(), id, queue.OriginAPI)
	if err != nil {
		s.fail(w, r, err, "")
		return
	}
	w.Header().Set("Location", fmt.Sprintf("/api/v1/jobs/%d", j.ID))
	writeJSON(w, http.StatusCreated, jobs.ViewOf(j))
}

func (s *Server) drain(w http.ResponseWriter, r *http.Request) {
	if !s.emptyBody(w, r) {
		return
	}
	name := r.PathValue("name")
	if err := s.Jobs.Store.AgentDrain(r.Context(), name); err != nil {
		s.fail(w, r, fmt.Errorf("agent %q: %w", name, err), "")
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"agent": name, "drain_requested": true})
}

// Result formats and their content types.
var contentTypes = map[string]string{
	"csv":  "text/csv; charset=utf-8",
	"json": "application/json",
	"xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}

// MaxPreview is the most rows a ?limit= preview returns.
const MaxPreview = 10000

func (s *Server) result(w http.ResponseWriter, r *http.Request) {
	id, ok := s.jobOf(w, r)
	if !ok {
		return
	}
	q := r.URL.Query()
	format := q.Get("format")
	if format == "" {
		format = "csv"
	}
	ctype, ok := contentTypes[format]
	if !ok {
		s.fail(w, r, errclass.Errorf(errclass.Invalid, "format %q: want csv, json or xlsx", format), "format")
		return
	}
	limit := 0
	if l := q.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		switch {
		case format != "json":
			s.fail(w, r, errclass.New(errclass.Invalid, "limit: a preview is JSON only (format=json)"), "limit")
			return
		case err != nil || n < 1 || n > MaxPreview:
			s.fail(w, r, errclass.Errorf(errclass.Invalid, "limit %q: want 1 to %d", l, MaxPreview), "limit")
			return
		}
		limit = n
	}
	j, err := s.Jobs.Get(r.Context(), id)
	if err != nil {
		s.fail(w, r, err, "")
		return
	}
	if err := jobs.Outcome(j); err != nil {
		s.fail(w, r, err, "")
		return
	}
	// A succeeded job's result never changes: the job, the attempt whose result counts,
	// the format and the preview size name the bytes.
	etag := fmt.Sprintf(`"job-%d-a%d-%s-%d"`, j.ID, j.ResultAttempt, format, limit)
	w.Header().Set("ETag", etag)
	w.Header().Set("Cache-Control", "private, max-age=31536000, immutable")
	if match := r.Header.Get("If-None-Match"); match != "" && etagMatch(match, etag) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	rs, err := s.OpenResults(r.Context(), j)
	if err != nil {
		s.fail(w, r, err, "")
		return
	}
	defer rs.Close()
	rows, err := results.Open(r.Context(), rs, results.RefOf(j))
	if errors.Is(err, queue.ErrNotFound) {
		s.fail(w, r, errclass.Errorf(errclass.NotFound, "job %d: its result is gone (results are kept for a while, then pruned); retry the job to run it again", j.ID), "")
		return
	}
	if err != nil {
		s.fail(w, r, fmt.Errorf("read result of job %d: %w", j.ID, err), "")
		return
	}
	defer rows.Close()
	var src source.Rows = rows
	if limit > 0 {
		src = &limitRows{Rows: rows, left: limit}
	}
	name, err := s.FileName(j, format)
	if err != nil {
		s.fail(w, r, err, "")
		return
	}
	// A download takes as long as it takes: the server's write time-out is lifted here.
	_ = http.NewResponseController(w).SetWriteDeadline(time.Time{})
	w.Header().Set("Content-Type", ctype)
	w.Header().Set("X-Content-Type-Options", "nosniff")
	if limit == 0 {
		cd := mime.FormatMediaType("attachment", map[string]string{"filename": name})
		if cd == "" { // a name mime cannot encode: the plain one
			cd = fmt.Sprintf("attachment; filename=job-%d.%s", j.ID, format)
		}
		w.Header().Set("Content-Disposition", cd)
	}
	if err := results.Render(r.Context(), w, format, src, results.RenderOptions{TotalRows: j.Rows, SheetName: j.Report}); err != nil {
		// The status is sent: cut the connection so the client sees a broken download,
		// never a short file that looks whole.
		s.log().Error("api: result download cut", "job", j.ID, "error", err)
		panic(http.ErrAbortHandler)
	}
}

// etagMatch reports whether an If-None-Match list names etag (or is *).
func etagMatch(header, etag string) bool {
	for _, t := range strings.Split(header, ",") {
		t = strings.TrimSpace(t)
		if t == "*" || t == etag {
			return true
		}
	}
	return false
}

// limitRows ends a result after left rows: the preview.
type limitRows struct {
	source.Rows
	left int
}

func (l *limitRows) Next() bool {
	if l.left <= 0 {
		return false
	}
	l.left--
	return l.Rows.Next()
}

func (s *Server) listPauses(w http.ResponseWriter, r *http.Request) {
	ps, err := s.Jobs.Store.PauseList(r.Context())
	if err != nil {
		s.fail(w, r, fmt.Errorf("list pauses: %w", err), "")
		return
	}
	if ps == nil {
		ps = []queue.Pause{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"pauses": ps})
}

// pause pauses (PUT) or resumes (DELETE) a report's or a source's claims, as rpt pause
// and rpt resume: the name is checked, so a typo is not a pause that never matches.
func (s *Server) pause(paused bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !s.emptyBody(w, r) {
			return
		}
		kind, name := r.PathValue("kind"), r.PathValue("name")
		switch kind {
		case queue.PauseReport:
			cat, err := s.Jobs.Catalog()
			if err == nil {
				_, err = cat.Get(name)
			}
			if err != nil {
				s.fail(w, r, err, "")
				return
			}
		case queue.PauseSource:
			if _, err := s.Jobs.SourceConfig(name); err != nil {
				s.fail(w, r, err, "name")
				return
			}
		default:
			s.fail(w, r, errclass.Errorf(errclass.Invalid, "pause kind %q: want report or source", kind), "kind")
			return
		}
		if err := s.Jobs.Store.PauseSet(r.Context(), kind, name, paused); err != nil {
			s.fail(w, r, fmt.Errorf("pause %s %s: %w", kind, name, err), "")
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"kind": kind, "name": name, "paused": paused})
	}
}

func (s *Server) listAgents(w http.ResponseWriter, r *http.Request) {
	as, err := s.Jobs.Store.AgentList(r.Context())
	if err != nil {
		s.fail(w, r, fmt.Errorf("list agents: %w", err), "")
		return
	}
	if as == nil {
		as = []queue.Agent{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"agents": as})
}

//go:embed openapi.json
var openAPIDoc []byte

// OpenAPI is the API's OpenAPI 3.1 document.
func OpenAPI() []byte { return openAPIDoc }

func (s *Server) openAPI(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	_, _ = w.Write(openAPIDoc)
}
