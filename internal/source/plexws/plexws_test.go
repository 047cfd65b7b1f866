package plexws

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"rpt/internal/source"
	"rpt/internal/source/plexws/plexwstest"
)

const (
	pcnA, pcnB   = 123681, 295932
	userA, userB = "AlbionWs@plex.com", "FruitportWs@plex.com"
	pwA, pwB     = "pw-A-7f3c1e", "pw-B-0d9e2a"
)

var accounts = []plexwstest.Account{{User: userA, Password: pwA, PCN: pcnA}, {User: userB, Password: pwB, PCN: pcnB}}

// shift is a cut of the daily shift report (9726), as the tests declare it.
var shift = source.DataSource{
	Key:     9726,
	Name:    "Daily_Shift_Report_Get",
	Inputs:  map[string]string{"@Start_Date": "report_date", "@End_Date": "report_date", "@PCNs": "pcn"},
	Formats: map[string]string{"@Start_Date": "01/02/2006", "@End_Date": "01/02/2006"},
	Columns: []string{"Report_Date", "Workcenter_Code", "Part_No", "Parts_Produced", "Earned_Hours"},
	Types:   []source.Type{source.TypeDate, source.TypeString, source.TypeString, source.TypeInt, source.TypeDecimal},
	PCN:     "pcn",
}

// shiftRows answers with n rows of the shift report for the calling PCN.
func shiftRows(n int) plexwstest.Handler {
	return func(w http.ResponseWriter, r *http.Request, c plexwstest.Call) {
		a := plexwstest.Begin(w, c, plexwstest.Status{})
		for i := range n {
			_ = a.Strings(shift.Columns, "2025-03-14T00:00:00", fmt.Sprintf("WC-%d", c.PCN), "P-"+strconv.Itoa(i), strconv.Itoa(i), "1.2500")
		}
		a.End()
	}
}

func open(t testing.TB, s *plexwstest.Server, mod func(*source.Config)) *Client {
	t.Helper()
	cfg := source.Config{
		Driver:   source.DriverPlexWS,
		URL:      s.URL,
		CAFile:   s.CAFile,
		Accounts: map[int]source.Account{pcnA: {User: userA, Password: pwA}, pcnB: {User: userB, Password: pwB}},
		Timeout:  10 * time.Second,
	}
	if mod != nil {
		mod(&cfg)
	}
	c, err := Open(context.Background(), "plex", cfg)
	if err != nil {
		t.Fatal(err)
	}
	c.backoff = func(int) time.Duration { return 5 * time.Millisecond }
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func params(pcn any) map[string]any {
	return map[string]any{"pcn": pcn, "report_date": "2025-03-14"}
}

// drain reads every row, returning them as text and the rows' error.
func readAll(t testing.TB, rows source.Rows) ([][]any, error) {
	t.Helper()
	defer rows.Close()
	var out [][]any
	for rows.Next() {
		out = append(out, append([]any(nil), rows.Values()...))
	}
	return out, rows.Err()
}

func noSecret(t *testing.T, err error) {
	t.Helper()
	if err == nil {
		return
	}
	for _, pw := range []string{pwA, pwB} {
		if strings.Contains(err.Error(), pw) {
			t.Errorf("password in error: %v", err)
		}
	}
}

func TestEnvelopeAndFanOut(t *testing.T) {
	t.Parallel()
	s := plexwstest.New(t, shiftRows(3), accounts...)
	c := open(t, s, nil)
	rows, err := c.CallDataSource(context.Background(), shift, params([]any{int64(pcnB), int64(pcnA)}))
	if err != nil {
		t.Fatal(err)
	}
	got, err := readAll(t, rows)
	if err != nil {
		t.Fatal(err)
	}
	wantCols := []string{"pcn", "Report_Date", "Workcenter_Code", "Part_No", "Parts_Produced", "Earned_Hours"}
	var names []string
	for _, col := range rows.Columns() {
		names = append(names, col.Name)
	}
	if strings.Join(names, ",") != strings.Join(wantCols, ",") {
		t.Fatalf("columns %v, want %v", names, wantCols)
	}
	if len(got) != 6 {
		t.Fatalf("%d rows, want 3 per PCN", len(got))
	}
	// In the order the PCNs were given, each PCN's rows from its own account's call.
	for i, row := range got {
		pcn := int64(pcnB)
		if i >= 3 {
			pcn = pcnA
		}
		want := []any{pcn, "2025-03-14", fmt.Sprintf("WC-%d", pcn), "P-" + strconv.Itoa(i%3), int64(i % 3), "1.2500"}
		if fmt.Sprint(row) != fmt.Sprint(want) {
			t.Errorf("row %d = %v, want %v", i, row, want)
		}
	}
	calls := s.Calls()
	if len(calls) != 2 {
		t.Fatalf("%d calls, want one per PCN", len(calls))
	}
	for i, want := range []struct {
		pcn  int
		user string
	}{{pcnB, userB}, {pcnA, userA}} {
		cl := calls[i]
		if cl.PCN != want.pcn || cl.User != want.user || cl.Key != 9726 || cl.Name != "Daily_Shift_Report_Get" {
			t.Errorf("call %d = %+v, want PCN %d as %s", i, cl, want.pcn, want.user)
		}
		// Per-input format: the date as Plex reads it, the PCN of this call only.
		if cl.Inputs["@Start_Date"] != "03/14/2025" || cl.Inputs["@End_Date"] != "03/14/2025" || cl.Inputs["@PCNs"] != strconv.Itoa(want.pcn) {
			t.Errorf("call %d inputs = %v", i, cl.Inputs)
		}
	}
}

func TestListInputIsCommaList(t *testing.T) {
	t.Parallel()
	s := plexwstest.New(t, shiftRows(1), accounts...)
	c := open(t, s, func(cfg *source.Config) { delete(cfg.Accounts, pcnB) })
	ds := shift
	ds.PCN = "" // one account: no fan-out; the list goes to Plex as it is
	ds.Inputs = map[string]string{"@PCNs": "pcns", "@Start_Date": "report_date"}
	rows, err := c.CallDataSource(context.Background(), ds, map[string]any{"pcns": []any{int64(1), int64(22), int64(333)}, "report_date": "2025-01-02"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := readAll(t, rows); err != nil {
		t.Fatal(err)
	}
	in := s.Calls()[0].Inputs
	if in["@PCNs"] != "1,22,333" || in["@Start_Date"] != "01/02/2025" {
		t.Errorf("inputs %v", in)
	}
}

func TestSOAPFault(t *testing.T) {
	t.Parallel()
	s := plexwstest.New(t, func(w http.ResponseWriter, r *http.Request, c plexwstest.Call) {
		plexwstest.WriteFault(w, "soap:Server", "Data source 9726 does not exist or you do not have access to it.")
	}, accounts...)
	c := open(t, s, nil)
	_, err := c.CallDataSource(context.Background(), shift, params(int64(pcnA)))
	if !errors.Is(err, ErrPlex) || !errors.Is(err, source.ErrRequest) {
		t.Fatalf("err = %v, want ErrPlex and ErrRequest (a job failure, not retried)", err)
	}
	if !strings.Contains(err.Error(), "does not exist or you do not have access") {
		t.Errorf("err = %v, want Plex's message", err)
	}
	if n := s.Requests(); n != 1 {
		t.Errorf("%d requests: a fault is not retried", n)
	}
	noSecret(t, err)
}

func TestErrorNumberIn200(t *testing.T) {
	t.Parallel()
	s := plexwstest.New(t, func(w http.ResponseWriter, r *http.Request, c plexwstest.Call) {
		plexwstest.WriteError(w, c, 1001, "Invalid parameter @Start_Date.")
	}, accounts...)
	c := open(t, s, nil)
	_, err := c.CallDataSource(context.Background(), shift, params(int64(pcnA)))
	if !errors.Is(err, ErrPlex) || !errors.Is(err, source.ErrRequest) {
		t.Fatalf("err = %v, want ErrPlex", err)
	}
	for _, want := range []string{"Plex error 1001", "Invalid parameter @Start_Date.", "data source 9726", "PCN 123681"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("err = %v, want %q in it", err, want)
		}
	}
}

func TestEmptyResult(t *testing.T) {
	t.Parallel()
	s := plexwstest.New(t, shiftRows(0), accounts...)
	c := open(t, s, nil)
	rows, err := c.CallDataSource(context.Background(), shift, params(int64(pcnA)))
	if err != nil {
		t.Fatal(err)
	}
	got, err := readAll(t, rows)
	if err != nil || len(got) != 0 {
		t.Fatalf("rows %v, err %v; want none and no error", got, err)
	}
	if n := len(rows.Columns()); n != 6 {
		t.Errorf("%d columns, want the declared 5 and pcn", n)
	}
}

func TestRetry5xxThenSuccess(t *testing.T) {
	t.Parallel()
	var n atomic.Int32
	s := plexwstest.New(t, func(w http.ResponseWriter, r *http.Request, c plexwstest.Call) {
		if n.Add(1) <= 2 {
			http.Error(w, "Service Unavailable", http.StatusServiceUnavailable)
			return
		}
		shiftRows(2)(w, r, c)
	}, accounts...)
	c := open(t, s, nil)
	rows, err := c.CallDataSource(context.Background(), shift, params(int64(pcnA)))
	if err != nil {
		t.Fatal(err)
	}
	got, err := readAll(t, rows)
	if err != nil || len(got) != 2 {
		t.Fatalf("rows %d, err %v", len(got), err)
	}
	if tr := rows.(*dsRows).Tries(); tr != 3 {
		t.Errorf("tries = %d, want 3 (two 503s, then the answer)", tr)
	}
	if r := s.Requests(); r != 3 {
		t.Errorf("server saw %d requests, want 3", r)
	}
}

func TestRetriesGiveUp(t *testing.T) {
	t.Parallel()
	s := plexwstest.New(t, func(w http.ResponseWriter, r *http.Request, c plexwstest.Call) {
		http.Error(w, "Bad Gateway", http.StatusBadGateway)
	}, accounts...)
	c := open(t, s, nil)
	_, err := c.CallDataSource(context.Background(), shift, params(int64(pcnA)))
	if !errors.Is(err, source.ErrUnavailable) || !strings.Contains(err.Error(), "gave up after 3 tries") {
		t.Fatalf("err = %v, want unavailable after 3 tries", err)
	}
	if r := s.Requests(); r != DefaultTries {
		t.Errorf("server saw %d requests, want %d", r, DefaultTries)
	}
}

func TestHangPastTimeLimit(t *testing.T) {
	t.Parallel()
	ended := make(chan struct{}, 4)
	s := plexwstest.New(t, func(w http.ResponseWriter, r *http.Request, c plexwstest.Call) {
		<-r.Context().Done() // never answers
		ended <- struct{}{}
	}, accounts...)
	c := open(t, s, func(cfg *source.Config) { cfg.Timeout = 300 * time.Millisecond })
	_, err := c.CallDataSource(context.Background(), shift, params(int64(pcnA)))
	if !errors.Is(err, source.ErrUnavailable) || !strings.Contains(err.Error(), "time limit 300ms") {
		t.Fatalf("err = %v, want unavailable naming the time limit", err)
	}
	if errors.Is(err, context.Canceled) {
		t.Errorf("err = %v: a time-out is not a cancel", err)
	}
	select {
	case <-ended:
	case <-time.After(10 * time.Second):
		t.Fatal("the server's request did not end")
	}
}

func TestCancelMidStream(t *testing.T) {
	t.Parallel()
	ended := make(chan struct{})
	var sent atomic.Int64
	s := plexwstest.New(t, func(w http.ResponseWriter, r *http.Request, c plexwstest.Call) {
		defer close(ended)
		a := plexwstest.Begin(w, c, plexwstest.Status{})
		for i := 0; ; i++ {
			if r.Context().Err() != nil {
				return
			}
			if err := a.Strings(shift.Columns, "2025-03-14", "WC", "P", strconv.Itoa(i), "1.0"); err != nil {
				return
			}
			sent.Add(1)
		}
	}, accounts...)
	c := open(t, s, nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	rows, err := c.CallDataSource(ctx, shift, params(int64(pcnA)))
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for i := 0; i < 1000 && rows.Next(); i++ {
	}
	cancel()
	for rows.Next() {
	}
	if !errors.Is(rows.Err(), context.Canceled) {
		t.Errorf("rows.Err() = %v, want context.Canceled", rows.Err())
	}
	select {
	case <-ended:
	case <-time.After(10 * time.Second):
		t.Fatalf("the server still sends after the cancel (%d rows sent)", sent.Load())
	}
}

func TestBasicAuthPerPCN(t *testing.T) {
	t.Parallel()
	s := plexwstest.New(t, shiftRows(1), accounts...)
	// PCN B's password is wrong: A's call works, B's is refused, naming B's user only.
	c := open(t, s, func(cfg *source.Config) { cfg.Accounts[pcnB] = source.Account{User: userB, Password: "wrong-" + pwA} })
	rows, err := c.CallDataSource(context.Background(), shift, params(int64(pcnA)))
	if err != nil {
		t.Fatal(err)
	}
	if got, err := readAll(t, rows); err != nil || len(got) != 1 {
		t.Fatalf("PCN A: %d rows, err %v", len(got), err)
	}
	_, err = c.CallDataSource(context.Background(), shift, params(int64(pcnB)))
	if !errors.Is(err, ErrAuth) || !errors.Is(err, source.ErrRequest) {
		t.Fatalf("err = %v, want ErrAuth", err)
	}
	if !strings.Contains(err.Error(), userB) || !strings.Contains(err.Error(), "PCN 295932") || !strings.Contains(err.Error(), "HTTP 401") {
		t.Errorf("err = %v, want the user, the PCN and the status", err)
	}
	noSecret(t, err)
	// A PCN without an account is refused before any call.
	before := s.Requests()
	_, err = c.CallDataSource(context.Background(), shift, params(int64(300757)))
	if !errors.Is(err, source.ErrRequest) || !strings.Contains(err.Error(), "no account for PCN 300757") {
		t.Errorf("err = %v", err)
	}
	if s.Requests() != before {
		t.Error("a PCN without an account was called")
	}
}

func TestChangedColumn(t *testing.T) {
	t.Parallel()
	moved := []string{"Report_Date", "Workcenter_Code", "Part_Revision", "Part_No", "Parts_Produced"}
	s := plexwstest.New(t, func(w http.ResponseWriter, r *http.Request, c plexwstest.Call) {
		a := plexwstest.Begin(w, c, plexwstest.Status{})
		_ = a.Strings(moved, "2025-03-14", "WC", "A", "P-1", "5")
		a.End()
	}, accounts...)
	c := open(t, s, nil)
	_, err := c.CallDataSource(context.Background(), shift, params(int64(pcnA)))
	if !errors.Is(err, ErrChanged) || !errors.Is(err, source.ErrRequest) {
		t.Fatalf("err = %v, want ErrChanged", err)
	}
	if want := `data source 9726 changed: column 3 is now "Part_Revision" (the definition expects "Part_No")`; !strings.Contains(err.Error(), want) {
		t.Errorf("err = %v, want %q", err, want)
	}
	// One column more than declared.
	s.SetHandler(func(w http.ResponseWriter, r *http.Request, c plexwstest.Call) {
		a := plexwstest.Begin(w, c, plexwstest.Status{})
		_ = a.Strings(append(append([]string(nil), shift.Columns...), "Scrap_Qty"), "2025-03-14", "WC", "P", "5", "1.0", "0")
		a.End()
	})
	_, err = c.CallDataSource(context.Background(), shift, params(int64(pcnA)))
	if !errors.Is(err, ErrChanged) || !strings.Contains(err.Error(), `column 6 is now "Scrap_Qty"`) {
		t.Errorf("err = %v, want column 6 named", err)
	}
}

func TestBadValueNamesRowAndColumn(t *testing.T) {
	t.Parallel()
	s := plexwstest.New(t, func(w http.ResponseWriter, r *http.Request, c plexwstest.Call) {
		a := plexwstest.Begin(w, c, plexwstest.Status{})
		_ = a.Strings(shift.Columns, "2025-03-14", "WC", "P", "5", "1.0")
		_ = a.Strings(shift.Columns, "2025-03-14", "WC", "P", "five", "1.0")
		a.End()
	}, accounts...)
	c := open(t, s, nil)
	rows, err := c.CallDataSource(context.Background(), shift, params(int64(pcnA)))
	if err != nil {
		t.Fatal(err)
	}
	got, err := readAll(t, rows)
	if len(got) != 1 || !errors.Is(err, source.ErrConvert) || !strings.Contains(err.Error(), `row 2 column "Parts_Produced"`) {
		t.Fatalf("rows %d, err %v", len(got), err)
	}
}

func TestNullsAndUSDates(t *testing.T) {
	t.Parallel()
	s := plexwstest.New(t, func(w http.ResponseWriter, r *http.Request, c plexwstest.Call) {
		a := plexwstest.Begin(w, c, plexwstest.Status{})
		d, wc, p := "3/14/2025 12:00:00 AM", "WC", ""
		_ = a.Row(shift.Columns, []*string{&d, &wc, &p, nil, nil})
		a.End()
	}, accounts...)
	c := open(t, s, nil)
	rows, err := c.CallDataSource(context.Background(), shift, params(int64(pcnA)))
	if err != nil {
		t.Fatal(err)
	}
	got, err := readAll(t, rows)
	if err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprint([]any{int64(pcnA), "2025-03-14", "WC", "", nil, nil}); fmt.Sprint(got[0]) != want {
		t.Errorf("row %v, want %v", got[0], want)
	}
}

func TestMaxConcurrentAndMinInterval(t *testing.T) {
	t.Parallel()
	var (
		mu       sync.Mutex
		inFlight int
		most     int
		starts   []time.Time
	)
	s := plexwstest.New(t, func(w http.ResponseWriter, r *http.Request, c plexwstest.Call) {
		mu.Lock()
		inFlight++
		most = max(most, inFlight)
		starts = append(starts, time.Now())
		mu.Unlock()
		time.Sleep(20 * time.Millisecond)
		shiftRows(1)(w, r, c)
		mu.Lock()
		inFlight--
		mu.Unlock()
	}, accounts...)
	const gap = 50 * time.Millisecond
	c := open(t, s, func(cfg *source.Config) { cfg.MaxConcurrent = 1; cfg.MinInterval = gap })
	t0 := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for range 4 {
		wg.Go(func() {
			rows, err := c.CallDataSource(context.Background(), shift, params(int64(pcnA)))
			if err == nil {
				_, err = readAll(t, rows)
			}
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if most != 1 {
		t.Errorf("%d calls in flight at once, want at most max_concurrent 1", most)
	}
	// Call i (0-based) may start no earlier than i gaps after the first could: a lower
	// bound only, so a slow machine cannot fail it.
	for i, st := range starts {
		if earliest := t0.Add(time.Duration(i) * gap); st.Before(earliest) {
			t.Errorf("call %d started %s after the first could, want at least %s (min_interval %s)", i+1, st.Sub(t0), time.Duration(i)*gap, gap)
		}
	}
}

func TestWrongURL(t *testing.T) {
	t.Parallel()
	s := plexwstest.New(t, shiftRows(1), accounts...)
	c := open(t, s, func(cfg *source.Config) { cfg.URL = strings.TrimSuffix(s.URL, "Service.asmx") + "Nope.asmx" })
	_, err := c.CallDataSource(context.Background(), shift, params(int64(pcnA)))
	if !errors.Is(err, source.ErrRequest) || !strings.Contains(err.Error(), "404") || !strings.Contains(err.Error(), "is the url right") {
		t.Fatalf("err = %v", err)
	}
}

func TestUntrustedCertificate(t *testing.T) {
	t.Parallel()
	s := plexwstest.New(t, shiftRows(1), accounts...)
	c := open(t, s, func(cfg *source.Config) { cfg.CAFile = "" })
	_, err := c.CallDataSource(context.Background(), shift, params(int64(pcnA)))
	if !errors.Is(err, source.ErrRequest) || !strings.Contains(err.Error(), "certificate is not trusted") {
		t.Fatalf("err = %v, want a certificate error (ca_file is how a corporate CA is trusted)", err)
	}
}

func TestPeriodsFanOut(t *testing.T) {
	t.Parallel()
	s := plexwstest.New(t, func(w http.ResponseWriter, r *http.Request, c plexwstest.Call) {
		a := plexwstest.Begin(w, c, plexwstest.Status{})
		_ = a.Strings([]string{"Account_No", "Debit"}, "10000", c.Inputs["@Period_Start"]+"."+c.Inputs["@Period_End"][4:])
		a.End()
	}, accounts...)
	c := open(t, s, nil)
	ds := source.DataSource{
		Key: 4814, Name: "Account_Activity_Summary_xPCN_Get",
		Inputs:  map[string]string{"@PCNs": "pcn", "@Period_Start": "start_period", "@Period_End": "end_period"},
		Columns: []string{"Account_No", "Debit"}, Types: []source.Type{source.TypeString, source.TypeDecimal},
		PCN: "pcn", Periods: [2]string{"start_period", "end_period"},
	}
	rows, err := c.CallDataSource(context.Background(), ds, map[string]any{"pcn": int64(pcnA), "start_period": int64(202411), "end_period": int64(202502)})
	if err != nil {
		t.Fatal(err)
	}
	got, err := readAll(t, rows)
	if err != nil {
		t.Fatal(err)
	}
	want := "[[123681 202411 10000 202411.11] [123681 202412 10000 202412.12] [123681 202501 10000 202501.01] [123681 202502 10000 202502.02]]"
	if fmt.Sprint(got) != want {
		t.Errorf("rows %v\nwant %v", got, want)
	}
}

// BenchmarkLargeAnswer streams a 100,000-row answer and reports the peak heap seen
// while reading it (sampled every 1,000 rows): it stays flat because rows are decoded
// one at a time.
func BenchmarkLargeAnswer(b *testing.B) {
	const n = 100_000
	s := plexwstest.New(b, shiftRows(n), accounts...)
	c := open(b, s, nil)
	var peak uint64
	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	base := ms.HeapAlloc
	b.ResetTimer()
	for range b.N {
		rows, err := c.CallDataSource(context.Background(), shift, params(int64(pcnA)))
		if err != nil {
			b.Fatal(err)
		}
		count := 0
		for rows.Next() {
			count++
			if count%1000 == 0 {
				runtime.ReadMemStats(&ms)
				peak = max(peak, ms.HeapAlloc)
			}
		}
		if err := rows.Err(); err != nil || count != n {
			b.Fatalf("%d rows, err %v", count, err)
		}
		_ = rows.Close()
	}
	b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MiB")
	b.ReportMetric(float64(base)/(1<<20), "start-heap-MiB")
	b.ReportMetric(float64(n), "rows/op")
}

// A source configuration printed or logged by mistake carries no password.
func TestConfigNeverShowsPassword(t *testing.T) {
	t.Parallel()
	cfg := source.Config{Driver: source.DriverPlexWS, Accounts: map[int]source.Account{pcnA: {User: userA, Password: pwA}}}
	var js strings.Builder
	if err := json.NewEncoder(&js).Encode(cfg); err != nil {
		t.Fatal(err)
	}
	var logged strings.Builder
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("config", "source", cfg)
	slog.New(slog.NewTextHandler(&logged, nil)).Info("config", "source", cfg)
	for _, s := range []string{fmt.Sprintf("%v", cfg), fmt.Sprintf("%+v", cfg), fmt.Sprintf("%#v", cfg), js.String(), logged.String()} {
		if strings.Contains(s, pwA) {
			t.Errorf("password in %q", s)
		}
		if !strings.Contains(s, userA) {
			t.Errorf("user missing from %q (the test would pass on an empty print)", s)
		}
	}
}
