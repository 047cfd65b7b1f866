package web_test

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/chromedp"
)

// chromium finds a Chromium or Chrome to drive; "" when there is none.
func chromium() string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// artefacts is where the browser test keeps its screenshots and download:
// $RPT_ARTEFACTS/browser, else artefacts/browser at the module root (git-ignored).
func artefacts(t *testing.T) string {
	dir := os.Getenv("RPT_ARTEFACTS")
	if dir == "" {
		dir = filepath.Join("..", "..", "artefacts")
	}
	dir = filepath.Join(dir, "browser")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		t.Fatal(err)
	}
	return abs
}

// rptProc is the rpt binary with its own HOME: the embedded queue and demo data.
type rptProc struct {
	t    *testing.T
	bin  string
	home string
}

func (r *rptProc) env() []string {
	return append(os.Environ(), "HOME="+r.home, "XDG_DATA_HOME="+filepath.Join(r.home, ".local", "share"),
		"XDG_CONFIG_HOME="+filepath.Join(r.home, ".config"), "RPT_CONFIG=")
}

func (r *rptProc) run(args ...string) []byte {
	r.t.Helper()
	cmd := exec.Command(r.bin, args...)
	cmd.Env, cmd.Dir = r.env(), r.home
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		r.t.Fatalf("rpt %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return out
}

func freePort(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// The whole path a user takes, in a real browser (headless Chromium) against a real
// `rpt server --api`: log in, submit the trial balance through its form, watch it go
// queued -> running -> succeeded in the job list without a reload, preview its rows,
// download the CSV (the same bytes as `rpt get --csv`), and open the chart of the
// mean-time-to-failure report, and add and delete a schedule. Screenshots go to the
// artefact folder.
func TestBrowser(t *testing.T) {
	exe := chromium()
	if exe == "" {
		if os.Getenv("RPT_TEST_REQUIRE_BROWSER") != "" {
			t.Fatal("no chromium on PATH, and RPT_TEST_REQUIRE_BROWSER is set (.ci/run installs Debian's chromium)")
		}
		t.Skip("no chromium on PATH: install Debian's chromium (apt-get install chromium; .ci/run does) to run the browser test")
	}
	if testing.Short() {
		t.Skip("-short: the browser test builds rpt and starts a browser")
	}
	out := artefacts(t)
	tmp := t.TempDir()
	r := &rptProc{t: t, bin: filepath.Join(tmp, "rpt"), home: filepath.Join(tmp, "home")}
	if err := os.MkdirAll(r.home, 0o755); err != nil {
		t.Fatal(err)
	}
	build := exec.Command("go", "build", "-o", r.bin, "./cmd/rpt")
	build.Dir = filepath.Join("..", "..")
	if b, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, b)
	}
	r.run("demo", "load", "--periods", "2")
	token := strings.TrimSpace(string(r.run("tokens", "create", "browser", "--role", "admin")))
	addr := freePort(t)
	base := "http://" + addr
	server := exec.Command(r.bin, "server", "--broker", "", "--api", addr)
	server.Env, server.Dir = r.env(), r.home
	var serverLog bytes.Buffer
	server.Stdout, server.Stderr = &serverLog, &serverLog
	if err := server.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = server.Process.Signal(syscall.SIGINT)
		done := make(chan error, 1)
		go func() { done <- server.Wait() }()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			_ = server.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("rpt server log:\n%s", serverLog.String())
		}
	})
	waitHTTP(t, base+"/api/v1/healthz")

	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(exe), chromedp.NoSandbox,
		chromedp.WindowSize(1280, 900), chromedp.Flag("disable-dev-shm-usage", true))
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelAlloc()
	browserCtx, cancelBrowser := chromedp.NewContext(actx)
	defer cancelBrowser()
	if err := chromedp.Do(browserCtx); err != nil { // starts the browser, with no time-out
		t.Fatalf("start chromium: %v", err)
	}
	ctx, cancel := context.WithTimeout(browserCtx, 3*time.Minute)
	defer cancel()
	shot := func(ctx context.Context, name string) {
		t.Helper()
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatalf("screenshot %s: %v", name, err)
		}
		if err := os.WriteFile(filepath.Join(out, name+".png"), png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	do := func(ctx context.Context, what string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, actions...); err != nil {
			shot(ctx, "failed-"+strings.ReplaceAll(what, " ", "-"))
			t.Fatalf("%s: %v", what, err)
		}
	}
	eval := func(ctx context.Context, expr string, v any) {
		t.Helper()
		var err error
		switch p := v.(type) {
		case *bool:
			*p, err = chromedp.Run(ctx, chromedp.Evaluate[bool](expr))
		case *int:
			*p, err = chromedp.Run(ctx, chromedp.Evaluate[int](expr))
		case *string:
			*p, err = chromedp.Run(ctx, chromedp.Evaluate[string](expr))
		case *[]string:
			*p, err = chromedp.Run(ctx, chromedp.Evaluate[[]string](expr))
		default:
			_, err = chromedp.Run(ctx, chromedp.Evaluate[chromedp.Void](expr))
		}
		if err != nil {
			t.Fatalf("evaluate %s: %v", expr, err)
		}
	}

	// Log in.
	do(ctx, "open the login page", chromedp.Navigate(base+"/jobs"), chromedp.WaitVisible(chromedp.ID("token")))
	shot(ctx, "01-login")
	do(ctx, "log in",
		chromedp.SendKeys(chromedp.ID("token"), token),
		chromedp.Submit(chromedp.ID("token")),
		chromedp.WaitVisible(chromedp.ID("jobs")),
		textIs("#live-state", "Live updates: on"),
	)
	// The job list stays this page: a marker that a reload would lose, and every
	// status any row shows, in order.
	eval(ctx, `window.__noReload = 1; window.__seen = [];
		new MutationObserver(() => {
			for (const el of document.querySelectorAll('#jobs [data-field="status"]')) {
				const id = el.closest('tr').dataset.job, last = window.__seen.filter(s => s.id === id).pop();
				if (!last || last.status !== el.textContent) window.__seen.push({id, status: el.textContent});
			}
		}).observe(document.getElementById('jobs'), {subtree: true, childList: true, characterData: true}); 1`, nil)

	// Hold the report, so the list shows it queued, then submit it through the form in
	// a second tab.
	api(t, base, token, "PUT", "/api/v1/pauses/report/trial-balance")
	form, cancelForm := chromedp.NewContext(ctx)
	defer cancelForm()
	do(form, "open the form", chromedp.Navigate(base+"/reports/trial-balance"), chromedp.WaitVisible(chromedp.ID("p-start_period")))
	shot(form, "02-form")
	do(form, "submit the form", chromedp.Click(chromedp.ID("submit")), chromedp.WaitVisible(chromedp.ID("job")))
	jobURL, err := chromedp.Run(form, chromedp.Location())
	if err != nil {
		t.Fatal(err)
	}
	eval(form, `window.__noReload = 1`, nil)
	id := jobURL[strings.LastIndex(jobURL, "/")+1:]
	if _, err := strconv.Atoi(id); err != nil {
		t.Fatalf("after submit: %s, want /jobs/ID", jobURL)
	}
	do(ctx, "see it queued", textIs(`#jobs tr[data-job="`+id+`"] [data-field="status"]`, "queued"))
	shot(ctx, "03-list-queued")
	api(t, base, token, "DELETE", "/api/v1/pauses/report/trial-balance")
	do(ctx, "see it succeed", textIs(`#jobs tr[data-job="`+id+`"] [data-field="status"]`, "succeeded"))
	shot(ctx, "04-list-succeeded")
	var seen []string
	var noReload bool
	eval(ctx, `window.__seen.filter(s => s.id === `+strconv.Quote(id)+`).map(s => s.status)`, &seen)
	eval(ctx, `window.__noReload === 1`, &noReload)
	if !noReload {
		t.Errorf("the job list was reloaded")
	}
	if strings.Join(seen, " ") != "queued running succeeded" {
		t.Errorf("the job list showed %v, want queued running succeeded", seen)
	}

	// The job page (loaded while the job was held) follows it too: status, preview.
	do(form, "see the preview", textIs("#status", "succeeded"), chromedp.WaitVisible(chromedp.CSS("#preview tbody tr")))
	var rows int
	eval(form, `document.querySelectorAll('#preview tbody tr').length`, &rows)
	eval(form, `window.__noReload === 1`, &noReload)
	if rows != 100 || !noReload {
		t.Errorf("job page: %d preview rows (want 100 of a trial balance), reloaded %v", rows, !noReload)
	}
	var events []string
	eval(form, `[...document.querySelectorAll('#events li strong')].map(e => e.textContent)`, &events)
	if !strings.HasPrefix(strings.Join(events, " "), "queued running") || events[len(events)-1] != "succeeded" {
		t.Errorf("job page events %v", events)
	}
	var lastTime string
	eval(form, `[...document.querySelectorAll('#events li time')].pop().textContent`, &lastTime)
	if !regexp.MustCompile(`^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC$`).MatchString(lastTime) {
		t.Errorf("a live event's time reads %q; want the server's form in the plant's zone (UTC here)", lastTime)
	}
	shot(form, "05-job")

	// Download the CSV as a user does: click, and the browser saves it.
	dl := filepath.Join(tmp, "downloads")
	dctx, dcancel := context.WithTimeout(form, 30*time.Second)
	defer dcancel()
	progress := chromedp.Events(dctx, browser.DownloadProgress)
	do(form, "download the CSV",
		chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
			_, err := chromedp.Call(ctx, browser.SetDownloadBehavior, browser.SetDownloadBehaviorParams{
				Behavior: browser.SetDownloadBehaviorBehaviorAllowAndName, DownloadPath: dl, EventsEnabled: ptr(true)})
			return err
		}),
		chromedp.Click(chromedp.ID("download-csv")))
	var guid string
	for ev, err := range progress { // ends with an error when dctx does
		if err != nil {
			t.Fatalf("download: %v", err)
		}
		if ev.State == browser.DownloadProgressStateCompleted {
			guid = ev.GUID
			break
		}
	}
	if guid == "" {
		t.Fatal("the CSV download did not complete")
	}
	got, err := os.ReadFile(filepath.Join(dl, guid))
	if err != nil {
		t.Fatal(err)
	}
	want := r.run("get", id, "--csv")
	if !bytes.Equal(got, want) || len(want) < 1000 {
		t.Errorf("downloaded CSV: %d bytes; rpt get --csv: %d bytes; want the same bytes", len(got), len(want))
	}
	_ = os.WriteFile(filepath.Join(out, "trial-balance.csv"), got, 0o644)

	// The mean-time-to-failure report: its defaults, its chart.
	do(form, "chart",
		chromedp.Navigate(base+"/reports/mean-time-to-failure"),
		chromedp.WaitVisible(chromedp.ID("submit")),
		chromedp.Click(chromedp.ID("submit")),
		chromedp.WaitVisible(chromedp.ID("chart")),
	)
	var lines int
	eval(form, `document.querySelectorAll('#chart polyline.series').length`, &lines)
	if lines == 0 {
		t.Errorf("the chart has no lines")
	}
	shot(form, "06-chart")

	// A schedule: added through its form, then deleted.
	do(form, "add a schedule",
		chromedp.Navigate(base+"/schedules"),
		chromedp.WaitVisible(chromedp.ID("s-name")),
		chromedp.SendKeys(chromedp.ID("s-name"), "weekly-tb"),
		chromedp.SendKeys(chromedp.ID("s-cron"), "10 19 * * 1"),
		chromedp.Click(chromedp.ID("add-schedule")),
		chromedp.WaitVisible(chromedp.CSS(`tr[data-schedule="weekly-tb"]`)),
	)
	shot(form, "08-schedules")
	if got := r.run("schedules", "list"); !strings.Contains(string(got), "weekly-tb") {
		t.Errorf("rpt schedules list after the web form's add:\n%s", got)
	}
	do(form, "delete the schedule",
		chromedp.Click(chromedp.CSS(`tr[data-schedule="weekly-tb"] button[aria-label="Delete schedule weekly-tb"]`)),
		chromedp.WaitVisible(chromedp.ID("s-name")),
		chromedp.WaitNotPresent(chromedp.CSS(`tr[data-schedule="weekly-tb"]`)),
	)
	if got := r.run("schedules", "list"); strings.Contains(string(got), "weekly-tb") {
		t.Errorf("rpt schedules list after the web form's delete:\n%s", got)
	}

	// Phone width: the list still fits (its table scrolls in its own box).
	do(form, "phone",
		chromedp.EmulateViewport(390, 844),
		chromedp.Navigate(base+"/jobs"),
		chromedp.WaitVisible(chromedp.ID("jobs")),
	)
	var overflow bool
	eval(form, `document.documentElement.scrollWidth > window.innerWidth + 1`, &overflow)
	if overflow {
		t.Errorf("the job list is wider than a phone's screen")
	}
	shot(form, "07-phone-jobs")
}

func ptr[T any](v T) *T { return &v }

// textIs waits until the element's text is want (polling in the page, every 50 ms).
func textIs(sel, want string) chromedp.Action[chromedp.Void] {
	expr := fmt.Sprintf(`(() => { const el = document.querySelector(%s); return !!el && el.textContent.trim() === %s; })()`,
		strconv.Quote(sel), strconv.Quote(want))
	poll := chromedp.Poll[bool](expr, chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(90*time.Second))
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := poll(ctx, t)
		return err
	})
}

func waitHTTP(t *testing.T, url string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if res, err := http.Get(url); err == nil {
			res.Body.Close()
			if res.StatusCode == 200 {
				return
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s did not answer within 30s", url)
}

func api(t *testing.T, base, token, method, path string) {
	t.Helper()
	req, _ := http.NewRequest(method, base+path, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 200 {
		t.Fatalf("%s %s: %d", method, path, res.StatusCode)
	}
}
