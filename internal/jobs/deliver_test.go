package jobs_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"rpt/internal/config"
	"rpt/internal/errclass"
	"rpt/internal/jobs"
	"rpt/internal/queue"
)

func deliverService(t *testing.T, st queue.Store, now time.Time) *jobs.Service {
	svc := newService(t, st, time.UTC, fixed(now))
	svc.Config.SMTP = &config.SMTP{Host: "smtp.example.com", Port: 587, TLS: "starttls", From: "reports@example.com"}
	svc.Config.Deliver = config.Deliver{EmailDomains: []string{"example.com"}, Webhooks: []string{"https://hooks.example.com/rpt/"}, WebhookSecret: "x"}
	return svc
}

// Bad or disallowed targets are refused at submit, naming the field, and nothing is
// queued; a good one is recorded with the job, canonical and once.
func TestSubmitDeliverChecked(t *testing.T) {
	for _, s := range stores {
		t.Run(s.name, func(t *testing.T) {
			t.Parallel()
			st := s.open(t)
			svc := deliverService(t, st, time.Date(2027, 3, 8, 19, 10, 0, 0, time.UTC))
			ctx := context.Background()
			for _, tt := range []struct {
				targets []string
				class   errclass.Class
				want    string
			}{
				{[]string{"mailto:not-an-address"}, errclass.Invalid, `--deliver: "not-an-address": not an e-mail address`},
				{[]string{"mailto:a@example.com", "ftp://x"}, errclass.Invalid, `--deliver[1]: "ftp://x"`},
				{[]string{"mailto:thief@evil.example.net"}, errclass.Forbidden, "--deliver: thief@evil.example.net: domain evil.example.net is not allowed"},
				{[]string{"https://elsewhere.example.org/hook"}, errclass.Forbidden, "--deliver: https://elsewhere.example.org/hook: not under an allowed prefix"},
				{[]string{"https://hooks.example.com/rpt-evil"}, errclass.Forbidden, "not under an allowed prefix"},
				{[]string{"mailto:a@example.com?format=pdf"}, errclass.Invalid, "format"},
			} {
				_, err := svc.Submit(ctx, jobs.SubmitRequest{Report: "rel", Deliver: tt.targets, DeliverField: "--deliver", Origin: queue.OriginCLI})
				if err == nil || !strings.Contains(err.Error(), tt.want) {
					t.Errorf("%q: error %v; want it to contain %q", tt.targets, err, tt.want)
					continue
				}
				if c, _ := errclass.Of(err); c != tt.class {
					t.Errorf("%q: class %s, want %s", tt.targets, c, tt.class)
				}
			}
			if n := countJobs(t, st); n != 0 {
				t.Fatalf("%d jobs queued by refused submits", n)
			}
			res, err := svc.Submit(ctx, jobs.SubmitRequest{Report: "rel", Deliver: []string{"accounting@Example.COM", "mailto:accounting@example.com"}, Origin: queue.OriginCLI})
			if err != nil {
				t.Fatal(err)
			}
			ds, err := st.DeliveryList(ctx, res.Job.ID)
			if err != nil {
				t.Fatal(err)
			}
			if len(ds) != 1 || ds[0].Target != "mailto:accounting@example.com" || ds[0].State != queue.DeliveryPending {
				t.Fatalf("deliveries %+v: want one pending, mailto:accounting@example.com", ds)
			}
		})
	}
}

// Without smtp: or an allow list nothing can be mailed: delivery is opt-in.
func TestSubmitDeliverNotConfigured(t *testing.T) {
	st := openSQLite(t)
	svc := newService(t, st, time.UTC, fixed(time.Now()))
	_, err := svc.Submit(context.Background(), jobs.SubmitRequest{Report: "rel", Deliver: []string{"mailto:a@example.com"}})
	if err == nil || !strings.Contains(err.Error(), "no smtp: in rpt.yaml") {
		t.Fatalf("error %v; want e-mail delivery not configured", err)
	}
	svc.Config.SMTP = &config.SMTP{Host: "h.example.com", From: "r@example.com"}
	_, err = svc.Submit(context.Background(), jobs.SubmitRequest{Report: "rel", Deliver: []string{"mailto:a@example.com"}})
	if err == nil || !strings.Contains(err.Error(), "deliver.email_domains in rpt.yaml is empty") {
		t.Fatalf("error %v; want no domain allowed", err)
	}
}

// The weekly trial balance (mailed to accounting) and the 19:10 refresh of the same
// report, parameters and hour are two occurrences, not one: the once key includes the
// deliveries. Each line run twice (two nodes) still queues one job each.
func TestOnceKeyDistinguishesDeliveries(t *testing.T) {
	for _, s := range stores {
		t.Run(s.name, func(t *testing.T) {
			t.Parallel()
			st := s.open(t)
			monday := time.Date(2027, 3, 8, 19, 10, 0, 0, time.UTC)
			svc := deliverService(t, st, monday)
			ctx := context.Background()
			refresh := jobs.SubmitRequest{Report: "rel", OncePer: time.Hour, Occurrence: monday, Origin: queue.OriginCron}
			weekly := refresh
			weekly.Deliver = []string{"mailto:accounting@example.com"}
			ids := map[string][]int64{}
			for node := 0; node < 2; node++ {
				for name, req := range map[string]jobs.SubmitRequest{"refresh": refresh, "weekly": weekly} {
					res, err := svc.Submit(ctx, req)
					if err != nil {
						t.Fatal(err)
					}
					ids[name] = append(ids[name], res.Job.ID)
				}
			}
			if ids["refresh"][0] != ids["refresh"][1] || ids["weekly"][0] != ids["weekly"][1] {
				t.Fatalf("a line run on two nodes queued two jobs: %v", ids)
			}
			if ids["refresh"][0] == ids["weekly"][0] {
				t.Fatalf("the weekly mailed run and the refresh share job %d: the mail would never be sent on its own", ids["weekly"][0])
			}
			if n := countJobs(t, st); n != 2 {
				t.Fatalf("%d jobs, want 2", n)
			}
			ds, err := st.DeliveryList(ctx, ids["weekly"][0])
			if err != nil || len(ds) != 1 {
				t.Fatalf("weekly deliveries %v %v: want one", ds, err)
			}
			if ds, _ := st.DeliveryList(ctx, ids["refresh"][0]); len(ds) != 0 {
				t.Fatalf("the refresh has deliveries %v", ds)
			}
		})
	}
}

// submit --wait covers the deliveries: WaitDeliveries ends when each is sent, fails
// naming the target when its deliver job failed or was cancelled, and times out.
func TestWaitDeliveries(t *testing.T) {
	st := openSQLite(t)
	svc := deliverService(t, st, time.Now())
	ctx := context.Background()
	res, err := svc.Submit(ctx, jobs.SubmitRequest{Report: "rel", Deliver: []string{"mailto:a@example.com", "https://hooks.example.com/rpt/x?token=secret"}})
	if err != nil {
		t.Fatal(err)
	}
	id := res.Job.ID
	if _, err := svc.WaitDeliveries(ctx, id, 50*time.Millisecond, 10*time.Millisecond); jobs.Class(err) != errclass.NotFinished {
		t.Fatalf("pending deliveries: %v, want not finished", err)
	}
	ds, err := st.DeliveryList(ctx, id)
	if err != nil || len(ds) != 2 {
		t.Fatal(ds, err)
	}
	if err := st.DeliverySent(ctx, ds[0].ID); err != nil {
		t.Fatal(err)
	}
	dj, err := st.JobEnqueue(ctx, queue.JobEnqueueParams{Kind: queue.KindDeliver, Report: "rel", Definition: []byte("x"), DefinitionSHA256: "x"})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.DeliveryQueued(ctx, ds[1].ID, dj.Job.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := st.JobCancel(ctx, dj.Job.ID, "tester"); err != nil {
		t.Fatal(err)
	}
	_, err = svc.WaitDeliveries(ctx, id, time.Second, 10*time.Millisecond)
	if jobs.Class(err) != errclass.JobFailed || !strings.Contains(err.Error(), "delivery to https://hooks.example.com/rpt/x?... cancelled") || strings.Contains(err.Error(), "secret") {
		t.Fatalf("cancelled deliver job: %v", err)
	}
	view, err := svc.Describe(ctx, res.Job)
	if err != nil || len(view.Deliveries) != 2 || view.Deliveries[0].State != queue.DeliverySent || view.Deliveries[1].Target != "https://hooks.example.com/rpt/x?..." {
		t.Fatalf("view deliveries %+v %v", view.Deliveries, err)
	}
}

// A definition's deliver: block adds its target to every submit of the report, checked
// like --deliver.
func TestDefinitionDeliverAdded(t *testing.T) {
	st := openSQLite(t)
	svc := deliverService(t, st, time.Now())
	def := strings.Replace(relDef, "name: rel\n", "name: mailed\ndeliver:\n  email: {to: [accounting@example.com], format: csv}\n", 1)
	if def == relDef {
		t.Fatal("relDef has no name: line to replace")
	}
	if err := os.WriteFile(filepath.Join(svc.Config.Reports[0], "mailed.yaml"), []byte(def), 0o644); err != nil {
		t.Fatal(err)
	}
	res, err := svc.Submit(context.Background(), jobs.SubmitRequest{Report: "mailed", Deliver: []string{"mailto:b@example.com"}})
	if err != nil {
		t.Fatal(err)
	}
	ds, err := st.DeliveryList(context.Background(), res.Job.ID)
	if err != nil || len(ds) != 2 || ds[0].Target != "mailto:b@example.com" || ds[1].Target != "mailto:accounting@example.com?format=csv" {
		t.Fatalf("deliveries %+v %v", ds, err)
	}
	svc.Config.Deliver.EmailDomains = []string{"other.example.org"}
	if _, err := svc.Submit(context.Background(), jobs.SubmitRequest{Report: "mailed"}); err == nil || !strings.Contains(err.Error(), "accounting@example.com: domain example.com is not allowed") {
		t.Fatalf("definition target outside the allow list: %v", err)
	}
}
