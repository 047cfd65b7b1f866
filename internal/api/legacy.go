package api

import (
	"fmt"
	"net/http"
	"net/mail"

	"rpt/internal/errclass"
	"rpt/internal/jobs"
	"rpt/internal/queue"
)

// legacyBody is the old system's POST /report.
type legacyBody struct {
	ReportName  string `json:"report_name"`
	StartPeriod string `json:"start_period"`
	EndPeriod   string `json:"end_period"`
	Email       string `json:"email"`
}

// legacyResponse says which job the call queued and where its result will be. Where
// rpt.yaml configures smtp:, the address becomes the job's mailto: delivery (checked
// against deliver.email_domains like any other) and Delivered says so; without it the
// address is checked and echoed, and the result waits at Result.
type legacyResponse struct {
	JobID     int64     `json:"job_id"`
	Status    string    `json:"status"`
	Result    string    `json:"result"`
	Email     string    `json:"email,omitempty"`
	Delivered bool      `json:"delivered"`
	Job       jobs.View `json:"job"`
}

// legacyReport submits as POST /api/v1/jobs does, with the old body; every bad input
// is a 422, as the old API answered it.
func (s *Server) legacyReport(w http.ResponseWriter, r *http.Request) {
	fail := func(err error, field string) {
		if c := jobs.Class(err); c == errclass.Invalid || c == errclass.NotFound {
			s.failStatus(w, r, errclass.Wrap(errclass.Invalid, err), field, http.StatusUnprocessableEntity)
			return
		}
		s.fail(w, r, err, field) // 413 for a huge body, 503 for a queue that does not answer
	}
	var b legacyBody
	if field, err := decode(w, r, &b); err != nil {
		fail(err, field)
		return
	}
	switch {
	case b.ReportName == "":
		fail(errclass.New(errclass.Invalid, "report_name: required"), "report_name")
		return
	case b.Email != "":
		if a, err := mail.ParseAddress(b.Email); err != nil || a.Address != b.Email {
			fail(errclass.Errorf(errclass.Invalid, "email %q: not an e-mail address", b.Email), "email")
			return
		}
	}
	params := map[string]string{}
	if b.StartPeriod != "" {
		params["start_period"] = b.StartPeriod
	}
	if b.EndPeriod != "" {
		params["end_period"] = b.EndPeriod
	}
	svc := s.service(r)
	req := jobs.SubmitRequest{Report: b.ReportName, Params: params, Origin: queue.OriginAPI}
	delivered := b.Email != "" && svc.Config != nil && svc.Config.SMTP != nil
	if delivered {
		req.Deliver, req.DeliverField = []string{"mailto:" + b.Email}, "email"
	}
	res, err := svc.Submit(r.Context(), req)
	if err != nil {
		field := ""
		if m := paramField.FindStringSubmatch(err.Error()); m != nil {
			field = m[1]
		}
		if jobs.Class(err) == errclass.NotFound {
			field = "report_name"
		}
		if f := deliverField(err); delivered && field == "" && f != "" {
			field = f // "email": a domain outside deliver.email_domains
		}
		fail(err, field)
		return
	}
	loc := fmt.Sprintf("/api/v1/jobs/%d", res.Job.ID)
	w.Header().Set("Location", loc)
	writeJSON(w, http.StatusCreated, legacyResponse{JobID: res.Job.ID, Status: string(res.Job.Status), Result: loc + "/result",
		Email: b.Email, Delivered: delivered, Job: jobs.ViewOf(res.Job)})
}
