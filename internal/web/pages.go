package web

import (
	"bytes"
	"encoding/json"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"rpt/internal/errclass"
	"rpt/internal/jobs"
	"rpt/internal/queue"
	"rpt/internal/results"
	"rpt/reportdefs"
)

// parse builds one template per page: the layout and the page's own file.
func (s *Server) parse() {
	if s.pages != nil {
		return
	}
	funcs := template.FuncMap{
		"when": s.when,
		"iso":  func(t *time.Time) string { return isoTime(t) },
		"zone": func() string {
			if s.Jobs.Loc == nil || s.Jobs.Loc == time.Local {
				return "" // the browser's own
			}
			return s.Jobs.Loc.String()
		},
		"elapsed":  elapsed,
		"terminal": func(st queue.Status) bool { return st.Terminal() },
		"can":      func(r *http.Request, role string) bool { return queue.RoleRank(caller(r).Role) >= queue.RoleRank(role) },
		"deref": func(p *string) string {
			if p == nil {
				return ""
			}
			return *p
		},
	}
	layout := template.Must(template.New("layout.html").Funcs(funcs).ParseFS(templateFS, "templates/layout.html"))
	s.pages = map[string]*template.Template{}
	names, _ := fs.Glob(templateFS, "templates/*.html")
	for _, n := range names {
		base := strings.TrimSuffix(path.Base(n), ".html")
		if base == "layout" {
			continue
		}
		s.pages[base] = template.Must(template.Must(layout.Clone()).ParseFS(templateFS, n))
	}
}

// render writes page with data; data's "Req" is the request (for the user's name
// and role in the layout).
func (s *Server) render(w http.ResponseWriter, r *http.Request, status int, page string, data map[string]any) {
	s.parse()
	data["Req"] = r
	data["User"] = caller(r)
	data["HasSchedules"] = s.Schedules != nil
	var buf bytes.Buffer
	tmpl, arg := "layout.html", any(data)
	if frag, ok := data["Fragment"].(string); ok {
		tmpl, arg = frag, data["Of"] // a part of a page, for the live updates
	}
	if err := s.pages[page].ExecuteTemplate(&buf, tmpl, arg); err != nil {
		s.log().Error("web: render", "page", page, "error", err)
		http.Error(w, "internal error (logged by the server)", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// when is a time in the plant's zone, as pages show it.
func (s *Server) when(t any) string {
	var tt time.Time
	switch v := t.(type) {
	case time.Time:
		tt = v
	case *time.Time:
		if v == nil {
			return ""
		}
		tt = *v
	default:
		return ""
	}
	if tt.IsZero() {
		return ""
	}
	loc := s.Jobs.Loc
	if loc == nil {
		loc = time.UTC
	}
	return tt.In(loc).Format("2006-01-02 15:04:05 MST")
}

func isoTime(t *time.Time) string {
	if t == nil {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

// elapsed is how long a job ran (or has been running).
func elapsed(v jobs.View) string {
	if v.StartedAt == nil {
		return ""
	}
	end := time.Now()
	if v.FinishedAt != nil {
		end = *v.FinishedAt
	}
	d := end.Sub(*v.StartedAt).Round(time.Second)
	if d < 0 {
		d = 0
	}
	return d.String()
}

func (s *Server) catalogue(w http.ResponseWriter, r *http.Request) {
	cat, err := s.Jobs.Catalog()
	if err != nil {
		s.errorPage(w, r, err)
		return
	}
	s.render(w, r, http.StatusOK, "catalogue", map[string]any{"Title": "Reports", "Reports": cat.List()})
}

// field is one input of a report's form.
type field struct {
	Name, Label, Help, Input, Step, Default, Value, Error string
	Values                                                []string
	Required                                              bool
}

// inputOf picks the HTML input for a parameter type: numbers as number inputs, enums
// and booleans as choices; dates and periods take text, since they also take relative
// words (yesterday, last-month, -12m) that a date picker cannot.
func inputOf(p reportdefs.Param) (input, step, help string) {
	switch p.Type {
	case reportdefs.TypeInt:
		return "number", "1", "a whole number"
	case reportdefs.TypeDecimal:
		return "number", "any", "a number"
	case reportdefs.TypeBool:
		return "bool", "", ""
	case reportdefs.TypeEnum:
		return "select", "", ""
	case reportdefs.TypeDate:
		return "text", "", "YYYY-MM-DD, or today, yesterday, -7d, -12m"
	case reportdefs.TypePeriod:
		return "text", "", "YYYYMM, or this-month, last-month"
	}
	if p.List() {
		return "text", "", "values separated by commas"
	}
	return "text", "", ""
}

func fieldsOf(d *reportdefs.Definition, values map[string]string) []field {
	out := make([]field, 0, len(d.Params))
	for _, p := range d.Params {
		in, step, help := inputOf(p)
		f := field{Name: p.Name, Label: p.Title, Input: in, Step: step, Help: help, Values: p.Values,
			Required: p.Required && !p.HasDefault, Value: values[p.Name]}
		if f.Label == "" {
			f.Label = p.Name
		}
		if p.Description != "" {
			f.Help = strings.TrimSpace(p.Description + " " + f.Help)
		}
		if p.HasDefault {
			f.Default = p.Default
		}
		out = append(out, f)
	}
	return out
}

func (s *Server) reportForm(w http.ResponseWriter, r *http.Request) {
	d, err := s.definition(r.PathValue("name"))
	if err != nil {
		s.errorPage(w, r, err)
		return
	}
	s.render(w, r, http.StatusOK, "report", map[string]any{"Title": d.Title, "Report": d, "Fields": fieldsOf(d, nil), "Key": formKey()})
}

func (s *Server) definition(name string) (*reportdefs.Definition, error) {
	cat, err := s.Jobs.Catalog()
	if err != nil {
		return nil, err
	}
	return cat.Get(name)
}

// paramField finds the parameter a reportdefs error names ("param \"pcn\" (int): ...").
var paramField = regexp.MustCompile(`param "([^"]+)"`)

func (s *Server) submit(w http.ResponseWriter, r *http.Request) {
	d, err := s.definition(r.PathValue("name"))
	if err != nil {
		s.errorPage(w, r, err)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 1<<20)
	if err := r.ParseForm(); err != nil {
		s.errorPage(w, r, errclass.Errorf(errclass.Invalid, "the form could not be read: %v", err))
		return
	}
	values := map[string]string{}
	params := map[string]string{}
	for _, p := range d.Params {
		v := strings.TrimSpace(r.PostForm.Get(p.Name))
		values[p.Name] = v
		if v != "" {
			params[p.Name] = v
		}
	}
	key := r.PostForm.Get("key")
	if len(key) != 32 {
		key = formKey()
	}
	req := jobs.SubmitRequest{Report: d.Name, Params: params, Origin: queue.OriginWeb, Token: submitToken(caller(r).Name, key)}
	if err == nil {
		err = reportdefs.CheckParamLimits(params)
	}
	var res jobs.SubmitResult
	if err == nil {
		res, err = s.service(r).Submit(r.Context(), req)
	}
	if err != nil {
		class := jobs.Class(err)
		if class != errclass.Invalid && class != errclass.NotFound {
			s.errorPage(w, r, err)
			return
		}
		fields := fieldsOf(d, values)
		general := err.Error()
		if m := paramField.FindStringSubmatch(general); m != nil {
			for i := range fields {
				if fields[i].Name == m[1] {
					fields[i].Error = general
					general = ""
				}
			}
		}
		s.render(w, r, http.StatusUnprocessableEntity, "report", map[string]any{"Title": d.Title, "Report": d, "Fields": fields,
			"Key": key, "Error": general})
		return
	}
	http.Redirect(w, r, fmt.Sprintf("/jobs/%d", res.Job.ID), http.StatusSeeOther)
}

// service is the job service acting for the logged-in user.
func (s *Server) service(r *http.Request) *jobs.Service {
	svc := *s.Jobs
	svc.SubmittedBy = "web:" + caller(r).Name
	return &svc
}

// Job listing: the newest 50.
const listLimit = 50

func (s *Server) jobList(w http.ResponseWriter, r *http.Request) {
	p := queue.JobListParams{Report: r.URL.Query().Get("report"), Limit: listLimit}
	list, err := s.Jobs.List(r.Context(), p)
	if err != nil {
		s.errorPage(w, r, err)
		return
	}
	views := make([]jobs.View, len(list))
	for i, j := range list {
		views[i] = jobs.ViewOf(j)
	}
	s.render(w, r, http.StatusOK, "jobs", map[string]any{"Title": "Jobs", "Jobs": views, "Report": p.Report})
}

func (s *Server) jobOf(w http.ResponseWriter, r *http.Request) (*queue.Job, bool) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id < 1 {
		s.errorPage(w, r, errclass.Errorf(errclass.Invalid, "job id %q: want a positive whole number", r.PathValue("id")))
		return nil, false
	}
	j, err := s.Jobs.Get(r.Context(), id)
	if err != nil {
		s.errorPage(w, r, err)
		return nil, false
	}
	return j, true
}

// jobRow is one row of the job list, for the live list to insert a new job.
func (s *Server) jobRow(w http.ResponseWriter, r *http.Request) {
	j, ok := s.jobOf(w, r)
	if !ok {
		return
	}
	s.render(w, r, http.StatusOK, "jobs", map[string]any{"Fragment": "row", "Of": jobs.ViewOf(j)})
}

// Preview size on the job page.
const previewRows = 100

type preview struct {
	Columns []string
	Rows    [][]string
	More    bool
}

func (s *Server) jobPage(w http.ResponseWriter, r *http.Request) {
	j, ok := s.jobOf(w, r)
	if !ok {
		return
	}
	v, err := s.Jobs.Describe(r.Context(), j)
	if err != nil {
		s.errorPage(w, r, err)
		return
	}
	evs, err := s.Jobs.Store.EventList(r.Context(), j.ID, 0, 1000)
	if err != nil {
		s.errorPage(w, r, fmt.Errorf("events of job %d: %w", j.ID, err))
		return
	}
	var last int64
	if len(evs) > 0 {
		last = evs[len(evs)-1].Seq
	}
	data := map[string]any{"Title": fmt.Sprintf("Job %d: %s", j.ID, j.Report), "Job": v, "Events": evs, "LastSeq": last,
		"Params": paramList(j.Params)}
	if j.Status == queue.StatusSucceeded {
		pv, chart, err := s.result(r, j)
		if err != nil {
			data["ResultError"] = err.Error()
		}
		data["Preview"] = pv
		data["Chart"] = chart
	}
	s.render(w, r, http.StatusOK, "job", data)
}

// paramList is a job's resolved parameters in name order.
func paramList(raw json.RawMessage) [][2]string {
	var m map[string]any
	_ = json.Unmarshal(raw, &m)
	var out [][2]string
	for k, v := range m {
		out = append(out, [2]string{k, paramText(v)})
	}
	slices.SortFunc(out, func(a, b [2]string) int { return strings.Compare(a[0], b[0]) })
	return out
}

// result reads the preview rows and, for a series report, draws its chart from every
// row (a series is small: a row per work center and month).
func (s *Server) result(r *http.Request, j *queue.Job) (*preview, template.HTML, error) {
	rs, err := s.OpenResults(r.Context(), j)
	if err != nil {
		return nil, "", err
	}
	defer rs.Close()
	rows, err := results.Open(r.Context(), rs, results.RefOf(j))
	if err != nil {
		return nil, "", fmt.Errorf("the result of job %d cannot be read (pruned?): %w", j.ID, err)
	}
	defer rows.Close()
	pv := &preview{}
	for _, c := range rows.Columns() {
		pv.Columns = append(pv.Columns, c.Name)
	}
	spec, series := chartSpecs[j.Report]
	var cd *chartData
	if series {
		cd = newChartData(spec, pv.Columns)
	}
	for n := 0; rows.Next(); n++ {
		if n >= previewRows && (cd == nil || n >= maxChartRows) {
			pv.More = true
			break
		}
		vals := rows.Values()
		if cd != nil {
			cd.add(vals)
		}
		if n >= previewRows {
			pv.More = true
			continue
		}
		cells := make([]string, len(vals))
		for i, v := range vals {
			cells[i] = cell(v)
		}
		pv.Rows = append(pv.Rows, cells)
	}
	if err := rows.Err(); err != nil {
		return pv, "", err
	}
	var chart template.HTML
	if cd != nil {
		chart = cd.svg(j.Report)
	}
	return pv, chart, nil
}

// paramText shows a resolved parameter: a list joined by commas, nothing given as such.
func paramText(v any) string {
	switch x := v.(type) {
	case nil:
		return "(not given)"
	case []any:
		parts := make([]string, len(x))
		for i, e := range x {
			parts[i] = fmt.Sprint(e)
		}
		return strings.Join(parts, ",")
	}
	return fmt.Sprint(v)
}

func cell(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case []byte:
		return string(x)
	case time.Time:
		if x.Hour() == 0 && x.Minute() == 0 && x.Second() == 0 && x.Nanosecond() == 0 {
			return x.Format("2006-01-02")
		}
		return x.Format(time.RFC3339)
	}
	return fmt.Sprint(v)
}

func (s *Server) cancel(w http.ResponseWriter, r *http.Request) {
	j, ok := s.jobOf(w, r)
	if !ok {
		return
	}
	if _, err := s.service(r).Cancel(r.Context(), j.ID); err != nil {
		s.errorPage(w, r, err)
		return
	}
	http.Redirect(w, r, fmt.Sprintf("/jobs/%d", j.ID), http.StatusSeeOther)
}

func (s *Server) retry(w http.ResponseWriter, r *http.Request) {
	j, ok := s.jobOf(w, r)
	if !ok {
		return
	}
	n, err := s.service(r).Retry(r.Context(), j.ID, queue.OriginWeb)
	if err != nil {
		s.errorPage(w, r, err)
		return
	}
	http.Redirect(w, r, fmt.Sprintf("/jobs/%d", n.ID), http.StatusSeeOther)
}

// waiting is a queued job and why it waits.
type waiting struct {
	Job jobs.View
}

func (s *Server) agents(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	as, err := s.Jobs.Store.AgentList(ctx)
	if err != nil {
		s.errorPage(w, r, fmt.Errorf("list agents: %w", err))
		return
	}
	pauses, err := s.Jobs.Store.PauseList(ctx)
	if err != nil {
		s.errorPage(w, r, fmt.Errorf("list pauses: %w", err))
		return
	}
	stats, err := s.Jobs.Store.QueueStats(ctx)
	if err != nil {
		s.errorPage(w, r, fmt.Errorf("queue stats: %w", err))
		return
	}
	queued, err := s.Jobs.List(ctx, queue.JobListParams{Status: queue.StatusQueued, Limit: 20})
	if err != nil {
		s.errorPage(w, r, err)
		return
	}
	var waits []jobs.View
	for _, j := range queued {
		v, err := s.Jobs.Describe(ctx, j)
		if err != nil {
			s.errorPage(w, r, err)
			return
		}
		waits = append(waits, v)
	}
	slots := make([]string, 0, len(stats.SlotsInUse))
	for k, n := range stats.SlotsInUse {
		slots = append(slots, fmt.Sprintf("%s: %d", k, n))
	}
	slices.Sort(slots)
	s.render(w, r, http.StatusOK, "agents", map[string]any{"Title": "Agents and queue", "Agents": as, "Pauses": pauses,
		"Stats": stats, "Waiting": waits, "Slots": slots, "Oldest": stats.OldestQueuedAge.Round(time.Second).String()})
}
