package deliver

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"time"
	"unicode"

	"rpt/internal/config"
	"rpt/internal/errclass"
	"rpt/internal/results"
	"rpt/internal/source"
)

// ErrPermanent marks a delivery error that retrying cannot fix (a target the agent's
// allow list refuses, a webhook answering 4xx): the deliver job fails at once.
var ErrPermanent = errors.New("delivery refused")

// Result is the finished report job whose result is delivered.
type Result struct {
	JobID    int64
	Report   string // the report's name (trial-balance)
	Params   json.RawMessage
	Rows     int64
	Finished time.Time
	// Filename is the attachment's name without extension (the definition's filename:
	// or deliver.email.filename template, expanded).
	Filename string
	// Open opens the result's rows (again for each render).
	Open func(ctx context.Context) (source.Rows, error)
}

// Message is an e-mail as handed to a Mailer.
type Message struct {
	From       string
	To         []string
	Subject    string
	Body       string
	MessageID  string // without angle brackets
	Date       time.Time
	Attachment string // file name; empty: none
	Data       []byte
}

// Mailer hands a message to a mail server. SMTPMailer is the real one.
type Mailer interface {
	Send(ctx context.Context, m Message) error
}

// Sender delivers results to targets.
type Sender struct {
	Deliver config.Deliver
	SMTP    *config.SMTP
	// Loc is the plants' zone: the date in a subject is the day the report finished there.
	Loc *time.Location
	// Mailer sends e-mail; nil: SMTPMailer over SMTP.
	Mailer Mailer
	// HTTP posts webhooks; nil: a client with a 30 s timeout.
	HTTP *http.Client
	// Now stamps webhook bodies; nil: time.Now.
	Now func() time.Time
}

// MessageID is the Message-ID of a delivery: the same on every attempt, so that a
// message sent twice (the at-least-once window) is recognisable as one.
func (s *Sender) MessageID(deliveryID int64, jobID int64) string {
	domain := "rpt.invalid"
	if s.SMTP != nil {
		if _, d, ok := strings.Cut(addrOf(s.SMTP.From), "@"); ok && d != "" {
			domain = d
		}
	}
	return fmt.Sprintf("rpt.delivery.%d.job.%d@%s", deliveryID, jobID, domain)
}

func addrOf(from string) string {
	if i := strings.LastIndexByte(from, '<'); i >= 0 {
		return strings.TrimSuffix(from[i+1:], ">")
	}
	return from
}

// Subject is the e-mail subject for a report finished at t: the report's name in title
// case, "Report" and the date in the plants' zone: "Trial Balance Report - 2027-03-08".
func Subject(report string, t time.Time, loc *time.Location) string {
	words := strings.FieldsFunc(report, func(r rune) bool { return r == '-' || r == '_' })
	for i, w := range words {
		r := []rune(w)
		r[0] = unicode.ToUpper(r[0])
		words[i] = string(r)
	}
	if loc == nil {
		loc = time.UTC
	}
	return strings.Join(words, " ") + " Report - " + t.In(loc).Format("2006-01-02")
}

func (s *Sender) loc() *time.Location {
	if s.Loc == nil {
		return time.UTC
	}
	return s.Loc
}

// Send delivers r to t, checking t against the allow lists first. deliveryID names
// the delivery in the Message-ID and the webhook's X-Rpt-Delivery header. before, when
// not nil, is called once the message is built, right before it is handed over; its
// error stops the send and is returned (the deliver job records "sending" there).
func (s *Sender) Send(ctx context.Context, t Target, deliveryID int64, r Result, before func(context.Context) error) error {
	if before == nil {
		before = func(context.Context) error { return nil }
	}
	if err := t.Allowed(s.Deliver, s.SMTP); err != nil {
		return fmt.Errorf("%w: %w", ErrPermanent, err)
	}
	switch t.Kind {
	case KindEmail:
		m, err := s.Mail(ctx, t, deliveryID, r)
		if err != nil {
			return err
		}
		mailer := s.Mailer
		if mailer == nil {
			mailer = &SMTPMailer{Config: *s.SMTP}
		}
		if err := before(ctx); err != nil {
			return err
		}
		if err := mailer.Send(ctx, m); err != nil {
			return fmt.Errorf("send e-mail to %s: %w", strings.Join(t.To, ", "), err)
		}
		return nil
	case KindWebhook:
		return s.post(ctx, t, deliveryID, r, before)
	}
	return fmt.Errorf("%w: unknown target kind %q", ErrPermanent, t.Kind)
}

// Mail builds the e-mail for target t: the result attached in t's format, or, over
// deliver.max_attachment, a body saying how to fetch it.
func (s *Sender) Mail(ctx context.Context, t Target, deliveryID int64, r Result) (Message, error) {
	m := Message{
		To:        t.To,
		Subject:   Subject(r.Report, r.Finished, s.loc()),
		MessageID: s.MessageID(deliveryID, r.JobID),
		Date:      r.Finished,
	}
	if s.SMTP != nil {
		m.From = s.SMTP.From
	}
	var buf bytes.Buffer
	if err := s.render(ctx, &buf, t.Format, r); err != nil {
		return Message{}, err
	}
	fetch := fmt.Sprintf("rpt get %d -o %s", r.JobID, t.Format)
	params := paramText(r.Params)
	limit := s.Deliver.MaxAttachment
	if limit <= 0 {
		limit = config.DefaultMaxAttachment
	}
	if buf.Len() > limit {
		m.Body = fmt.Sprintf("The %s report (job %d%s) finished %s with %d rows.\n\nThe result is %d bytes, over the %d-byte attachment limit (deliver.max_attachment), so it is not attached. Fetch it with:\n\n    %s\n",
			r.Report, r.JobID, params, r.Finished.In(s.loc()).Format("2006-01-02 15:04 MST"), r.Rows, buf.Len(), limit, fetch)
		return m, nil
	}
	m.Attachment = r.Filename + "." + t.Format
	m.Data = buf.Bytes()
	m.Body = fmt.Sprintf("The %s report (job %d%s) finished %s with %d rows; the result is attached as %s.\n\nThe same result: %s\n",
		r.Report, r.JobID, params, r.Finished.In(s.loc()).Format("2006-01-02 15:04 MST"), r.Rows, m.Attachment, fetch)
	return m, nil
}

func paramText(p json.RawMessage) string {
	var m map[string]any
	if json.Unmarshal(p, &m) != nil || len(m) == 0 {
		return ""
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, ", %s=%v", k, m[k])
	}
	return b.String()
}

func (s *Sender) render(ctx context.Context, w io.Writer, format string, r Result) error {
	rows, err := r.Open(ctx)
	if err != nil {
		return fmt.Errorf("read the result of job %d: %w", r.JobID, err)
	}
	defer rows.Close()
	if err := results.Render(ctx, w, format, rows, results.RenderOptions{SheetName: sheetName(r.Report)}); err != nil {
		return fmt.Errorf("render the result of job %d as %s: %w", r.JobID, format, err)
	}
	return nil
}

func sheetName(report string) string {
	s := Subject(report, time.Time{}, time.UTC)
	return strings.TrimSuffix(s[:strings.Index(s, " Report - ")], " ")
}

// SignatureHeader carries a webhook body's HMAC-SHA256 as "sha256=HEX".
const SignatureHeader = "X-Rpt-Signature"

// Sign is the signature header value of body under secret.
func Sign(secret string, body []byte) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

// Verify checks a signature header value in constant time (for receivers and tests).
func Verify(secret string, body []byte, header string) bool {
	return hmac.Equal([]byte(Sign(secret, body)), []byte(header))
}

// WebhookBody is what a webhook receives. Result is the rows as rpt get -o json gives
// them, or null when over deliver.max_attachment (Fetch says how to get them).
type WebhookBody struct {
	Delivery int64           `json:"delivery"`
	Job      int64           `json:"job"`
	Report   string          `json:"report"`
	Params   json.RawMessage `json:"params"`
	Rows     int64           `json:"rows"`
	Finished time.Time       `json:"finished_at"`
	SentAt   time.Time       `json:"sent_at"`
	Result   json.RawMessage `json:"result"`
	Fetch    string          `json:"fetch"`
}

func (s *Sender) post(ctx context.Context, t Target, deliveryID int64, r Result, before func(context.Context) error) error {
	var buf bytes.Buffer
	if err := s.render(ctx, &buf, "json", r); err != nil {
		return err
	}
	now := time.Now
	if s.Now != nil {
		now = s.Now
	}
	b := WebhookBody{Delivery: deliveryID, Job: r.JobID, Report: r.Report, Params: r.Params, Rows: r.Rows,
		Finished: r.Finished.UTC(), SentAt: now().UTC(), Fetch: fmt.Sprintf("rpt get %d -o json", r.JobID)}
	limit := s.Deliver.MaxAttachment
	if limit <= 0 {
		limit = config.DefaultMaxAttachment
	}
	if buf.Len() <= limit {
		b.Result = buf.Bytes()
	} else {
		b.Result = json.RawMessage("null")
	}
	if len(b.Params) == 0 {
		b.Params = json.RawMessage("{}")
	}
	body, err := json.Marshal(b)
	if err != nil {
		return fmt.Errorf("webhook body: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.URL, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("%w: webhook %s: %w", ErrPermanent, redactURL(t.URL), err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "rpt")
	req.Header.Set("X-Rpt-Delivery", fmt.Sprint(deliveryID))
	req.Header.Set(SignatureHeader, Sign(s.Deliver.WebhookSecret, body))
	client := s.HTTP
	if client == nil {
		client = &http.Client{Timeout: 30 * time.Second}
	}
	if err := before(ctx); err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		// The URL's query may hold a token: name the URL without it.
		var ue interface{ Unwrap() error }
		if errors.As(err, &ue) {
			err = ue.Unwrap()
		}
		return errclass.Errorf(errclass.Unavailable, "webhook %s: %v", redactURL(t.URL), err)
	}
	defer resp.Body.Close()
	snippet, _ := io.ReadAll(io.LimitReader(resp.Body, 200))
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		return nil
	case resp.StatusCode >= 400 && resp.StatusCode < 500 && resp.StatusCode != 408 && resp.StatusCode != 429:
		return fmt.Errorf("%w: webhook %s answered %s: %s", ErrPermanent, redactURL(t.URL), resp.Status, results.EscapeControl(string(snippet)))
	}
	return errclass.Errorf(errclass.Unavailable, "webhook %s answered %s: %s", redactURL(t.URL), resp.Status, results.EscapeControl(string(snippet)))
}

// password is the SMTP password: password_file (read now, so a rotated secret is
// used), else password.
func password(c config.SMTP) (string, error) {
	if c.PasswordFile == "" {
		return c.Password, nil
	}
	b, err := os.ReadFile(c.PasswordFile)
	if err != nil {
		return "", fmt.Errorf("smtp.password_file: %w", err)
	}
	return strings.TrimRight(string(b), "\r\n"), nil
}
