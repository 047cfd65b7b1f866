package agent

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net"
	"net/http"
	"net/http/httptest"
	"net/mail"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	smtp "github.com/emersion/go-smtp"
	"github.com/xuri/excelize/v2"

	"rpt/internal/config"
	"rpt/internal/deliver"
	"rpt/internal/queue"
	"rpt/internal/queue/mysql"
	"rpt/internal/queue/sqlite"
	"rpt/internal/testenv"
	"rpt/reportdefs"
)

// smtpServer is a real SMTP server (go-smtp) on a loopback port, recording the
// messages it accepts. refuseData makes it answer 451 to that many DATA commands
// before accepting; refuseRcpt refuses recipients of that domain with 550.
type smtpServer struct {
	addr string
	port int

	mu         sync.Mutex
	msgs       []smtpMsg
	refuseData int
	refuseRcpt string
	dataTries  int
}

type smtpMsg struct {
	from string
	to   []string
	data []byte
}

func startSMTP(t *testing.T) *smtpServer {
	t.Helper()
	s := &smtpServer{}
	srv := smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) { return &smtpSession{s: s}, nil }))
	srv.Domain = "localhost"
	srv.AllowInsecureAuth = true
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	s.addr = l.Addr().String()
	s.port = l.Addr().(*net.TCPAddr).Port
	return s
}

func (s *smtpServer) messages() []smtpMsg {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]smtpMsg(nil), s.msgs...)
}

type smtpSession struct {
	s    *smtpServer
	from string
	to   []string
}

func (x *smtpSession) Reset()        { x.from, x.to = "", nil }
func (x *smtpSession) Logout() error { return nil }
func (x *smtpSession) Mail(from string, _ *smtp.MailOptions) error {
	x.from = from
	return nil
}
func (x *smtpSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	x.s.mu.Lock()
	refuse := x.s.refuseRcpt
	x.s.mu.Unlock()
	if refuse != "" && strings.HasSuffix(to, "@"+refuse) {
		return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such user here"}
	}
	x.to = append(x.to, to)
	return nil
}
func (x *smtpSession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	x.s.mu.Lock()
	defer x.s.mu.Unlock()
	x.s.dataTries++
	if x.s.refuseData > 0 {
		x.s.refuseData--
		return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "try again later"}
	}
	x.s.msgs = append(x.s.msgs, smtpMsg{from: x.from, to: x.to, data: b})
	return nil
}

var plants = func() *time.Location {
	loc, err := time.LoadLocation("America/Indiana/Indianapolis")
	if err != nil {
		panic(err)
	}
	return loc
}()

// deliverConfig is an agent config that delivers through the test's SMTP server to
// example.com only, and to webhooks under hooks (if given).
func deliverConfig(port int, hooks string) Config {
	cfg := testConfig()
	smtpCfg := &config.SMTP{Host: "127.0.0.1", Port: port, TLS: "none", From: "Reports <reports@example.com>", Timeout: 5 * time.Second}
	dl := config.Deliver{EmailDomains: []string{"example.com"}, WebhookSecret: "s3cret-hmac", MaxAttachment: config.DefaultMaxAttachment}
	if hooks != "" {
		dl.Webhooks = []string{hooks}
	}
	cfg.Deliver = &deliver.Sender{Deliver: dl, SMTP: smtpCfg, Loc: plants}
	cfg.DeliverInterval = 20 * time.Millisecond
	return cfg
}

// newDeliverEnv is the SQLite rig with retries after 20-50 ms, so a refused delivery
// is tried again within the test.
func newDeliverEnv(t *testing.T) *sqliteEnv {
	return newSQLiteEnvWith(t, queue.Options{RetryBase: 20 * time.Millisecond, RetryMax: 50 * time.Millisecond})
}

func deliveries(t *testing.T, env *sqliteEnv, job int64) []queue.Delivery {
	t.Helper()
	ds, err := env.store.DeliveryList(context.Background(), job)
	if err != nil {
		t.Fatal(err)
	}
	return ds
}

// waitDelivered waits until the job's one delivery is recorded sent and its deliver
// job has ended ("sent" is written before the job's completion).
func waitDelivered(t *testing.T, env *sqliteEnv, id int64) {
	t.Helper()
	waitFor(t, "delivery sent and its job ended", func() bool {
		ds := deliveries(t, env, id)
		if len(ds) != 1 || ds[0].State != queue.DeliverySent {
			return false
		}
		for _, j := range deliverJobs(t, env) {
			if !j.Status.Terminal() {
				return false
			}
		}
		return true
	})
}

func deliverJobs(t *testing.T, env *sqliteEnv) []*queue.Job {
	t.Helper()
	all, err := env.store.JobList(context.Background(), queue.JobListParams{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	var out []*queue.Job
	for _, j := range all {
		if j.Kind == queue.KindDeliver {
			out = append(out, j)
		}
	}
	return out
}

// attachment finds the one attachment of a MIME message.
func attachment(t *testing.T, raw []byte) (header mail.Header, name string, data []byte) {
	t.Helper()
	m, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("message does not parse: %v", err)
	}
	mt, params, err := mime.ParseMediaType(m.Header.Get("Content-Type"))
	if err != nil || !strings.HasPrefix(mt, "multipart/") {
		t.Fatalf("Content-Type %q: want multipart (%v)", m.Header.Get("Content-Type"), err)
	}
	mr := multipart.NewReader(m.Body, params["boundary"])
	found := 0
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		disp, dp, _ := mime.ParseMediaType(p.Header.Get("Content-Disposition"))
		if disp != "attachment" {
			continue
		}
		found++
		b, _ := io.ReadAll(p)
		if strings.EqualFold(p.Header.Get("Content-Transfer-Encoding"), "base64") {
			b, err = base64.StdEncoding.DecodeString(strings.Join(strings.Fields(string(b)), ""))
			if err != nil {
				t.Fatalf("attachment base64: %v", err)
			}
		}
		name, data = dp["filename"], b
	}
	if found != 1 {
		t.Fatalf("message has %d attachments, want 1", found)
	}
	return m.Header, name, data
}

func TestDeliverEmailExactlyOnce(t *testing.T) {
	t.Parallel()
	env := newDeliverEnv(t)
	srv := startSMTP(t)
	id := env.submit(t, balancesDef, nil)
	if err := env.store.DeliveryAdd(context.Background(), id, []string{"mailto:accounting@example.com"}); err != nil {
		t.Fatal(err)
	}
	// A second add of the same target (a retried submit) is the same delivery.
	if err := env.store.DeliveryAdd(context.Background(), id, []string{"mailto:accounting@example.com"}); err != nil {
		t.Fatal(err)
	}
	startAgent(t, env.store, env.open, deliverConfig(srv.port, ""))

	waitDelivered(t, env, id)
	// More sweeps and claims happen; nothing is sent again.
	time.Sleep(200 * time.Millisecond)
	msgs := srv.messages()
	if len(msgs) != 1 {
		t.Fatalf("server got %d messages, want exactly 1", len(msgs))
	}
	if dj := deliverJobs(t, env); len(dj) != 1 || dj[0].Status != queue.StatusSucceeded {
		t.Fatalf("deliver jobs %+v: want one, succeeded", dj)
	}
	m := msgs[0]
	if m.from != "reports@example.com" || len(m.to) != 1 || m.to[0] != "accounting@example.com" {
		t.Fatalf("envelope from %q to %q; want reports@example.com to [accounting@example.com]", m.from, m.to)
	}
	rep := env.job(t, id)
	h, name, data := attachment(t, m.data)
	wantSubject := "Balances Report - " + rep.FinishedAt.In(plants).Format("2006-01-02")
	if got, _ := new(mime.WordDecoder).DecodeHeader(h.Get("Subject")); got != wantSubject {
		t.Errorf("subject %q, want %q", got, wantSubject)
	}
	d := deliveries(t, env, id)[0]
	if got := h.Get("Message-Id"); got != "<"+d.MessageID+">" || d.MessageID == "" {
		t.Errorf("Message-ID %q, recorded %q", got, d.MessageID)
	}
	if name != fmt.Sprintf("balances-%d.xlsx", id) {
		t.Errorf("attachment named %q", name)
	}
	f, err := excelize.OpenReader(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("attachment is not a valid xlsx: %v", err)
	}
	defer f.Close()
	sheets := f.GetSheetList()
	if len(sheets) != 1 {
		t.Fatalf("sheets %q: want one", sheets)
	}
	got, err := f.GetRows(sheets[0], excelize.Options{RawCellValue: true})
	if err != nil {
		t.Fatal(err)
	}
	want := readResult(t, env.store, id, rep.ResultAttempt)
	if len(got) != len(want)+1 || strings.Join(got[0], ",") != "account_no,period,balance" {
		t.Fatalf("sheet rows %q; want the header and %d rows", got, len(want))
	}
	for i, row := range want {
		for j, v := range row {
			if !sameCell(got[i+1][j], v) {
				t.Errorf("row %d col %d: sheet %q, result %v", i+1, j, got[i+1][j], v)
			}
		}
	}
}

// sameCell compares a raw xlsx cell with a result value, numerically when numeric.
func sameCell(cell string, v any) bool {
	want := fmt.Sprint(v)
	if a, err := strconv.ParseFloat(cell, 64); err == nil {
		if b, err := strconv.ParseFloat(want, 64); err == nil {
			return a == b
		}
	}
	return cell == want
}

func TestDeliverRetriesRefusedThenSendsOnce(t *testing.T) {
	t.Parallel()
	env := newDeliverEnv(t)
	srv := startSMTP(t)
	srv.refuseData = 2
	id := env.submit(t, balancesDef, nil)
	if err := env.store.DeliveryAdd(context.Background(), id, []string{"accounting@example.com"}); err != nil {
		t.Fatal(err)
	}
	startAgent(t, env.store, env.open, deliverConfig(srv.port, ""))
	waitDelivered(t, env, id)
	time.Sleep(100 * time.Millisecond)
	if n := len(srv.messages()); n != 1 {
		t.Fatalf("server accepted %d messages, want 1", n)
	}
	dj := deliverJobs(t, env)
	if len(dj) != 1 || dj[0].Status != queue.StatusSucceeded || dj[0].Attempt != 3 {
		t.Fatalf("deliver job %+v: want one, succeeded at attempt 3", dj[0])
	}
	if d := deliveries(t, env, id)[0]; d.Attempts != 3 {
		t.Errorf("delivery attempts %d, want 3", d.Attempts)
	}
	if j := env.job(t, id); j.Attempt != 1 {
		t.Errorf("the report ran %d times; a failed delivery must not run it again", j.Attempt)
	}
}

func TestDeliverRefusedRecipientFails(t *testing.T) {
	t.Parallel()
	env := newDeliverEnv(t)
	srv := startSMTP(t)
	srv.refuseRcpt = "example.com"
	id := env.submit(t, balancesDef, nil)
	if err := env.store.DeliveryAdd(context.Background(), id, []string{"mailto:nobody@example.com"}); err != nil {
		t.Fatal(err)
	}
	startAgent(t, env.store, env.open, deliverConfig(srv.port, ""))
	var dj []*queue.Job
	waitFor(t, "deliver job failed", func() bool {
		dj = deliverJobs(t, env)
		return len(dj) == 1 && dj[0].Status == queue.StatusFailed
	})
	if dj[0].Attempt != deliverMaxAttempts || !strings.Contains(dj[0].Error, "nobody@example.com") || !strings.Contains(dj[0].Error, "550") {
		t.Fatalf("deliver job attempt %d error %q: want %d attempts and an error naming the recipient and the 550", dj[0].Attempt, dj[0].Error, deliverMaxAttempts)
	}
	if rep := env.job(t, id); rep.Status != queue.StatusSucceeded {
		t.Fatalf("report job %s: a failed delivery must leave it (and its result) as it was", rep.Status)
	}
	if n := len(srv.messages()); n != 0 {
		t.Fatalf("%d messages accepted", n)
	}
}

func TestDeliverSMTPDownFails(t *testing.T) {
	t.Parallel()
	env := newDeliverEnv(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close() // nothing listens there now
	id := env.submit(t, balancesDef, nil)
	if err := env.store.DeliveryAdd(context.Background(), id, []string{"mailto:accounting@example.com"}); err != nil {
		t.Fatal(err)
	}
	startAgent(t, env.store, env.open, deliverConfig(port, ""))
	var dj []*queue.Job
	waitFor(t, "deliver job failed", func() bool {
		dj = deliverJobs(t, env)
		return len(dj) == 1 && dj[0].Status == queue.StatusFailed
	})
	if dj[0].Attempt != deliverMaxAttempts || !strings.Contains(dj[0].Error, fmt.Sprintf("127.0.0.1:%d", port)) {
		t.Fatalf("deliver job attempt %d error %q: want %d attempts and the server named", dj[0].Attempt, dj[0].Error, deliverMaxAttempts)
	}
	if d := deliveries(t, env, id)[0]; d.State == queue.DeliverySent {
		t.Fatal("delivery recorded sent with the server down")
	}
}

// A delivery written into the queue outside the allow list (a submitter with queue
// access skipping rpt submit's check) is refused by the agent, once, without sending.
func TestDeliverAgentRefusesTargetOutsideAllowList(t *testing.T) {
	t.Parallel()
	env := newDeliverEnv(t)
	srv := startSMTP(t)
	id := env.submit(t, balancesDef, nil)
	if err := env.store.DeliveryAdd(context.Background(), id, []string{"mailto:thief@evil.example.net"}); err != nil {
		t.Fatal(err)
	}
	startAgent(t, env.store, env.open, deliverConfig(srv.port, "https://hooks.example.com/rpt/"))
	var dj []*queue.Job
	waitFor(t, "deliver job failed", func() bool {
		dj = deliverJobs(t, env)
		return len(dj) == 1 && dj[0].Status == queue.StatusFailed
	})
	if dj[0].Attempt != 1 || !strings.Contains(dj[0].Error, "evil.example.net is not allowed") {
		t.Fatalf("deliver job attempt %d error %q: want one attempt, refused by the allow list", dj[0].Attempt, dj[0].Error)
	}
	if srv.dataTries != 0 || len(srv.messages()) != 0 {
		t.Fatal("something was sent")
	}
}

// An attempt that finds the delivery sent (a crash after the "sent" write and before
// the job's completion) sends nothing.
func TestDeliverAlreadySentSendsNothing(t *testing.T) {
	t.Parallel()
	env := newDeliverEnv(t)
	srv := startSMTP(t)
	id := env.submit(t, balancesDef, nil)
	ctx := context.Background()
	if err := env.store.DeliveryAdd(ctx, id, []string{"mailto:accounting@example.com"}); err != nil {
		t.Fatal(err)
	}
	d := deliveries(t, env, id)[0]
	if err := env.store.DeliverySent(ctx, d.ID); err != nil {
		t.Fatal(err)
	}
	// The sweep only queues pending deliveries; queue the job as a crashed run left it.
	params, _ := json.Marshal(deliverParams{Delivery: d.ID, Job: id})
	rep := env.job(t, id)
	res, err := env.store.JobEnqueue(ctx, queue.JobEnqueueParams{Kind: queue.KindDeliver, Report: rep.Report, Definition: rep.Definition,
		DefinitionSHA256: rep.DefinitionSHA256, Params: params, Source: rep.Source, Route: map[string]string{queue.KindLabel(queue.KindDeliver): queue.CapabilityYes}})
	if err != nil {
		t.Fatal(err)
	}
	startAgent(t, env.store, env.open, deliverConfig(srv.port, ""))
	waitFor(t, "deliver job ends", func() bool { return env.job(t, res.Job.ID).Status.Terminal() })
	if j := env.job(t, res.Job.ID); j.Status != queue.StatusSucceeded {
		t.Fatalf("deliver job %s %q", j.Status, j.Error)
	}
	if srv.dataTries != 0 {
		t.Fatalf("sent %d times; the delivery was already sent", srv.dataTries)
	}
}

func TestDeliverWebhookSigned(t *testing.T) {
	t.Parallel()
	env := newDeliverEnv(t)
	var mu sync.Mutex
	var bodies [][]byte
	var sigOK []bool
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		defer mu.Unlock()
		bodies = append(bodies, b)
		sigOK = append(sigOK, deliver.Verify("s3cret-hmac", b, r.Header.Get(deliver.SignatureHeader)))
		if len(bodies) == 1 {
			w.WriteHeader(http.StatusServiceUnavailable) // once: retried
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(hook.Close)
	id := env.submit(t, balancesDef, nil)
	if err := env.store.DeliveryAdd(context.Background(), id, []string{hook.URL + "/rpt/tb?token=abc"}); err != nil {
		t.Fatal(err)
	}
	startAgent(t, env.store, env.open, deliverConfig(1, hook.URL+"/rpt/"))
	waitDelivered(t, env, id)
	mu.Lock()
	defer mu.Unlock()
	if len(bodies) != 2 || !sigOK[0] || !sigOK[1] {
		t.Fatalf("%d posts, signatures valid %v; want 2 (one refused), both signed", len(bodies), sigOK)
	}
	var b deliver.WebhookBody
	if err := json.Unmarshal(bodies[1], &b); err != nil {
		t.Fatal(err)
	}
	var rows []map[string]any
	if err := json.Unmarshal(b.Result, &rows); err != nil || b.Job != id || b.Rows != 4 || len(rows) != 4 {
		t.Fatalf("body job %d rows %d result %s (%v)", b.Job, b.Rows, b.Result, err)
	}
	// A forged body fails verification.
	if deliver.Verify("s3cret-hmac", append(bodies[1], ' '), deliver.Sign("s3cret-hmac", bodies[1])) {
		t.Fatal("a changed body verified")
	}
}

// Three agents on one MariaDB queue, each sweeping for deliveries and claiming: the
// weekly mail arrives exactly once.
func TestDeliverThreeAgentsMariaDBOnce(t *testing.T) {
	t.Parallel()
	dsn := testenv.MariaDB(t)
	ctx := context.Background()
	st, err := mysql.Open(ctx, dsn, queue.Options{RetryBase: 20 * time.Millisecond, RetryMax: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	env := newDeliverEnv(t) // for its demo source
	d, err := reportdefs.Parse("test.yaml", []byte(balancesDef))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := st.DefinitionPublish(ctx, queue.DefinitionPublishParams{Report: d.Name, Definition: d.Raw}); err != nil {
		t.Fatal(err)
	}
	resolved, err := d.Resolve(nil, time.Now(), time.UTC)
	if err != nil {
		t.Fatal(err)
	}
	res, err := st.JobEnqueue(ctx, d.JobParams(resolved, nil))
	if err != nil {
		t.Fatal(err)
	}
	id := res.Job.ID
	if err := st.DeliveryAdd(ctx, id, []string{"mailto:accounting@example.com"}); err != nil {
		t.Fatal(err)
	}
	srv := startSMTP(t)
	for i := range 3 {
		cfg := deliverConfig(srv.port, "")
		cfg.Name = fmt.Sprintf("agent-%d", i)
		cfg.DeliverInterval = 5 * time.Millisecond
		startAgent(t, st, env.open, cfg)
	}
	waitFor(t, "delivery sent", func() bool {
		ds, err := st.DeliveryList(ctx, id)
		return err == nil && len(ds) == 1 && ds[0].State == queue.DeliverySent
	})
	time.Sleep(300 * time.Millisecond)
	if n := len(srv.messages()); n != 1 {
		t.Fatalf("%d messages, want exactly 1", n)
	}
	all, err := st.JobList(ctx, queue.JobListParams{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	deliverJobs := 0
	for _, j := range all {
		if j.Kind == queue.KindDeliver {
			deliverJobs++
		}
	}
	if deliverJobs != 1 {
		t.Fatalf("%d deliver jobs, want 1", deliverJobs)
	}
}

// failSent is the queue with the "sent" write failing its first n tries, as a queue
// outage right after the server accepted the message would.
type failSent struct {
	*sqlite.Store
	mu sync.Mutex
	n  int
}

func (f *failSent) DeliverySent(ctx context.Context, id int64) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.n > 0 {
		f.n--
		return fmt.Errorf("record delivery sent: %w", queue.ErrUnavailable)
	}
	return f.Store.DeliverySent(ctx, id)
}

// The at-least-once window, shown: the server accepted the message but "sent" could
// not be recorded, so the next attempt sends it again, with the same Message-ID.
func TestDeliverWindowResendsWithSameMessageID(t *testing.T) {
	t.Parallel()
	env := newDeliverEnv(t)
	srv := startSMTP(t)
	id := env.submit(t, balancesDef, nil)
	if err := env.store.DeliveryAdd(context.Background(), id, []string{"mailto:accounting@example.com"}); err != nil {
		t.Fatal(err)
	}
	store := &failSent{Store: env.store, n: 6} // the first attempt's six tries
	startAgent(t, store, env.open, deliverConfig(srv.port, ""))
	waitDelivered(t, env, id)
	msgs := srv.messages()
	if len(msgs) != 2 {
		t.Fatalf("%d messages; want 2 (the window: accepted, not recorded, sent again)", len(msgs))
	}
	h1, _, _ := attachment(t, msgs[0].data)
	h2, _, _ := attachment(t, msgs[1].data)
	if h1.Get("Message-Id") == "" || h1.Get("Message-Id") != h2.Get("Message-Id") {
		t.Fatalf("Message-IDs %q and %q: a resend must carry the same one", h1.Get("Message-Id"), h2.Get("Message-Id"))
	}
	if d := deliveries(t, env, id)[0]; d.Attempts != 2 {
		t.Errorf("attempts %d, want 2", d.Attempts)
	}
}
