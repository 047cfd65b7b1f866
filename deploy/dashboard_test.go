package deploy_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

const dashboardPath = "grafana/rpt-dashboard.json"

// queueWide are the metrics every agent reports with the same value (read from the queue
// database, not about the agent): a dashboard must take max() over agents, never sum().
var queueWide = []string{
	"rpt_queue_depth", "rpt_queue_oldest_queued_seconds", "rpt_queue_waiting_jobs",
	"rpt_queue_waiting_oldest_seconds", "rpt_slots_in_use",
}

var metricRE = regexp.MustCompile(`\brpt_[a-z0-9_]+`)

// dashboardExprs returns every query of the dashboard, as "panel title: expr".
func dashboardExprs(data []byte) (map[string][]string, error) {
	var d struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(data, &d); err != nil {
		return nil, err
	}
	out := map[string][]string{}
	for _, p := range d.Panels {
		for _, t := range p.Targets {
			out[p.Title] = append(out[p.Title], t.Expr)
		}
	}
	return out, nil
}

// family is the metric family a series name belongs to: a histogram's _bucket, _sum
// and _count series are its family's.
func family(name string, families map[string]string) (string, bool) {
	if _, ok := families[name]; ok {
		return name, true
	}
	for _, suf := range []string{"_bucket", "_sum", "_count"} {
		if base, ok := strings.CutSuffix(name, suf); ok {
			if typ := families[base]; typ == "histogram" || typ == "summary" {
				return base, true
			}
		}
	}
	return "", false
}

// checkDashboard returns what is wrong with the dashboard given the metric families an
// agent exports (name -> type): a query naming a metric the agent does not export, a
// queue-wide metric not taken with max(), an exported rpt_ metric no panel shows, a
// panel with no query.
func checkDashboard(data []byte, families map[string]string) []string {
	exprs, err := dashboardExprs(data)
	if err != nil {
		return []string{"dashboard JSON: " + err.Error()}
	}
	if len(exprs) == 0 {
		return []string{"dashboard has no queries"}
	}
	var problems []string
	shown := map[string]bool{}
	for title, es := range exprs {
		for _, e := range es {
			if strings.TrimSpace(e) == "" {
				problems = append(problems, fmt.Sprintf("panel %q: empty query", title))
			}
			for _, name := range metricRE.FindAllString(e, -1) {
				fam, ok := family(name, families)
				if !ok {
					problems = append(problems, fmt.Sprintf("panel %q: %s is not a metric the agent exports", title, name))
					continue
				}
				shown[fam] = true
			}
			for _, q := range queueWide {
				all := len(regexp.MustCompile(`\b`+q+`\b`).FindAllString(e, -1))
				wrapped := len(regexp.MustCompile(`\bmax\s*(by\s*\([^)]*\)\s*)?\(\s*`+q+`\b`).FindAllString(e, -1))
				if all != wrapped {
					problems = append(problems, fmt.Sprintf("panel %q: %s is the same from every agent: aggregate it with max(), not %q", title, q, e))
				}
			}
		}
	}
	for name := range families {
		if strings.HasPrefix(name, "rpt_") && !shown[name] {
			problems = append(problems, fmt.Sprintf("%s is exported but no panel shows it", name))
		}
	}
	slices.Sort(problems)
	return problems
}

// parseFamilies reads the # TYPE lines of a Prometheus text exposition.
func parseFamilies(body string) map[string]string {
	out := map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(body))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if f := strings.Fields(sc.Text()); len(f) == 4 && f[0] == "#" && f[1] == "TYPE" {
			out[f[2]] = f[3]
		}
	}
	return out
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// TestDashboardMatchesLiveAgent runs rpt server (an agent with the embedded broker), has
// it run a job and keeps another waiting, so every metric family the agent has is on
// /metrics, then holds the dashboard to it.
func TestDashboardMatchesLiveAgent(t *testing.T) {
	bin := builtBinary(t)
	dir := t.TempDir()
	reports := filepath.Join(dir, "reports")
	if err := os.MkdirAll(reports, 0o755); err != nil {
		t.Fatal(err)
	}
	// slow runs (holding its concurrency slot) until it is cancelled.
	for name, sql := range map[string]string{"count": "SELECT 1 AS x UNION ALL SELECT 2", "waiter": "SELECT 1 AS x",
		"slow": "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 4000000000) SELECT count(*) FROM c"} {
		def := fmt.Sprintf("name: %s\nsource: demo\nconcurrency: 1\nsql: %s\n", name, sql)
		if err := os.WriteFile(filepath.Join(reports, name+".yaml"), []byte(def), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "demo.db"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "rpt.yaml")
	conf := fmt.Sprintf("queue: sqlite:%s/queue.db\nreports: [%s]\nsources:\n  demo: {driver: sqlite, dsn: \"sqlite:%s/demo.db\"}\n", dir, reports, dir)
	if err := os.WriteFile(cfg, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	rpt := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(bin, append([]string{"--config", cfg}, args...)...)
		cmd.Dir, cmd.Env = dir, []string{"HOME=" + dir, "PATH=/usr/bin:/bin"}
		var stderr strings.Builder
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("rpt %s: %v\n%s%s", strings.Join(args, " "), err, out, stderr.String())
		}
		return strings.TrimSpace(string(out))
	}
	rpt("db", "migrate")
	listen := freeAddr(t)
	srv := exec.Command(bin, "--config", cfg, "server", "--broker", freeAddr(t), "--listen", listen)
	srv.Dir, srv.Env = dir, []string{"HOME=" + dir, "PATH=/usr/bin:/bin"}
	var logs strings.Builder
	srv.Stdout, srv.Stderr = &logs, &logs
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- srv.Wait() }()
	t.Cleanup(func() {
		srv.Process.Signal(os.Interrupt)
		select {
		case <-exited:
		case <-time.After(20 * time.Second):
			srv.Process.Kill()
			<-exited
		}
	})

	scrape := func() string {
		resp, err := http.Get("http://" + listen + "/metrics")
		if err != nil {
			return ""
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	rpt("submit", "count")
	rpt("pause", "report", "waiter")
	rpt("submit", "waiter")
	slow := rpt("submit", "slow")
	defer rpt("cancel", slow)
	var body string
	deadline := time.Now().Add(60 * time.Second)
	for {
		body = scrape()
		if strings.Contains(body, `rpt_jobs_finished_total{outcome="succeeded",report="count"}`) &&
			strings.Contains(body, `rpt_queue_waiting_jobs{report="waiter",source="demo"} 1`) &&
			strings.Contains(body, "rpt_mqtt_connected 1") &&
			strings.Contains(body, `rpt_slots_in_use{scope="report:slow"} 1`) {
			break
		}
		select {
		case err := <-exited:
			t.Fatalf("rpt server exited: %v\n%s", err, logs.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("the agent's /metrics never showed the finished job, the waiting one and the broker:\n%s\nlogs:\n%s", body, logs.String())
		}
		time.Sleep(200 * time.Millisecond)
	}
	data, err := os.ReadFile(dashboardPath)
	if err != nil {
		t.Fatal(err)
	}
	families := parseFamilies(body)
	for _, p := range checkDashboard(data, families) {
		t.Error(p)
	}
	n := 0
	for name := range families {
		if strings.HasPrefix(name, "rpt_") {
			n++
		}
	}
	t.Logf("%d rpt_ metric families on the live agent's /metrics, all on the dashboard", n)
}

// TestDashboardRulesFail breaks each rule on purpose and expects checkDashboard to say so.
func TestDashboardRulesFail(t *testing.T) {
	families := map[string]string{"rpt_queue_depth": "gauge", "rpt_job_duration_seconds": "histogram", "rpt_jobs_claimed_total": "counter"}
	dash := func(exprs ...string) []byte {
		var targets []string
		for _, e := range exprs {
			b, _ := json.Marshal(e)
			targets = append(targets, `{"expr": `+string(b)+`}`)
		}
		return []byte(`{"panels": [{"title": "p", "targets": [` + strings.Join(targets, ",") + `]}]}`)
	}
	good := []string{"max by (state) (rpt_queue_depth)", "histogram_quantile(0.9, sum by (le) (rate(rpt_job_duration_seconds_bucket[5m])))", "sum(rate(rpt_jobs_claimed_total[5m]))"}
	if p := checkDashboard(dash(good...), families); len(p) != 0 {
		t.Fatalf("a good dashboard: %v", p)
	}
	for _, tc := range []struct {
		name  string
		exprs []string
		want  string
	}{
		{"unknown metric", append(slices.Clone(good), "rpt_jobs_claimed"), "rpt_jobs_claimed is not a metric the agent exports"},
		{"queue-wide summed", []string{"sum by (state) (rpt_queue_depth)", good[1], good[2]}, "aggregate it with max()"},
		{"queue-wide bare", []string{"rpt_queue_depth", good[1], good[2]}, "aggregate it with max()"},
		{"metric not shown", good[:2], "rpt_jobs_claimed_total is exported but no panel shows it"},
		{"histogram suffix of a counter", append(slices.Clone(good), "rpt_jobs_claimed_total_bucket"), "rpt_jobs_claimed_total_bucket is not a metric"},
		{"empty query", append(slices.Clone(good), " "), "empty query"},
		{"not JSON", nil, "dashboard"},
	} {
		data := dash(tc.exprs...)
		if tc.exprs == nil {
			data = []byte("{panels")
		}
		p := checkDashboard(data, families)
		if !strings.Contains(strings.Join(p, "\n"), tc.want) {
			t.Errorf("%s: problems %v, want one with %q", tc.name, p, tc.want)
		}
	}
}
