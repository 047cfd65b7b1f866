package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/xuri/excelize/v2"

	"rpt/cli"
	"rpt/internal/queue"
	"rpt/internal/queue/sqlite"
	"rpt/internal/results"
	"rpt/internal/source"
)

// readJob completes a two-row job on the SQLite queue at path whose completion records
// read (nil: none, as an older agent's).
func readJob(t *testing.T, path string, read *queue.ReadInfo) int64 {
	t.Helper()
	ctx := context.Background()
	s, err := sqlite.Open(ctx, path, queue.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := s.JobEnqueue(ctx, queue.JobEnqueueParams{Kind: queue.KindReport, Report: "numbers",
		Definition: []byte("name: numbers\nsql: SELECT 1\n"), Params: json.RawMessage(`{}`), Source: "plex", MaxAttempts: 1}); err != nil {
		t.Fatal(err)
	}
	js, err := s.JobClaim(ctx, queue.JobClaimParams{Agent: "test", Limit: 1, LeaseDuration: time.Minute})
	if err != nil || len(js) != 1 {
		t.Fatalf("claim: %d jobs, %v", len(js), err)
	}
	w := results.NewWriter(results.InQueue(s), js[0].Lease(), []source.Column{{Name: "n", Type: source.TypeInt}})
	for i := range 2 {
		if err := w.Write(ctx, []any{int64(i + 1)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.JobComplete(ctx, js[0].Lease(), queue.Completion{Rows: 2, ResultStore: results.QueueStoreName, ResultChunks: w.Chunks(), Read: read}); err != nil {
		t.Fatal(err)
	}
	return js[0].ID
}

// runRead runs rpt with a plant timezone on the queue at path; tty sets both TTY flags.
func runRead(t *testing.T, path string, tty bool, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	d := deps(&out, &errb)
	d.StdoutTTY, d.StderrTTY = tty, tty
	cfg := filepath.Join(filepath.Dir(path), "rpt.yaml")
	if err := os.WriteFile(cfg, []byte("timezone: America/Indiana/Indianapolis\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	code := cli.Main(context.Background(), append([]string{"rpt", "--config", cfg, "--queue", "sqlite:" + path}, args...), d)
	return code, out.String(), errb.String()
}

// 19:05:03 UTC is 14:05:03 EST in Indianapolis.
var readAt = time.Date(2026, 12, 7, 19, 5, 3, 0, time.UTC)

const wantLiveNote = "live from Plex web services (source plex) at 2026-12-07 14:05:03 EST America/Indiana/Indianapolis"

// TestJobsShowRead: jobs show prints where and when the data was read, in the plant's
// zone, and -o json carries it as fields; a job without the record shows no read line.
func TestJobsShowRead(t *testing.T) {
	t.Setenv("XDG_DATA_HOME", t.TempDir())
	path := filepath.Join(t.TempDir(), "queue.db")
	id := strconv.FormatInt(readJob(t, path, &queue.ReadInfo{Source: "plex", Kind: "plexws", At: readAt}), 10)
	code, out, stderr := runRead(t, path, false, "jobs", "show", id)
	if code != 0 || !strings.Contains(out, "read:        "+wantLiveNote+"\n") {
		t.Fatalf("jobs show: exit %d, stdout %q, stderr %q; want the read line %q", code, out, stderr, wantLiveNote)
	}
	code, out, _ = runRead(t, path, false, "jobs", "show", "-o", "json", id)
	var v struct {
		Read *struct {
			Source, Kind, Note string
			At                 time.Time
			Live               bool
		} `json:"read"`
	}
	if err := json.Unmarshal([]byte(out), &v); code != 0 || err != nil || v.Read == nil {
		t.Fatalf("jobs show -o json: exit %d, %v, %q", code, err, out)
	}
	if v.Read.Source != "plex" || v.Read.Kind != "plexws" || !v.Read.Live || !v.Read.At.Equal(readAt) || v.Read.Note != wantLiveNote {
		t.Errorf("json read %+v", *v.Read)
	}

	old := strconv.FormatInt(readJob(t, path, nil), 10)
	code, out, _ = runRead(t, path, false, "jobs", "show", old)
	if code != 0 || strings.Contains(out, "read:") {
		t.Errorf("job without a read record: exit %d, stdout %q; want no read line", code, out)
	}
	code, out, _ = runRead(t, path, false, "jobs", "show", "-o", "json", old)
	if code != 0 || strings.Contains(out, `"read"`) {
		t.Errorf("job without a read record, json: exit %d, %q; want no read field", code, out)
	}
}

// TestGetReadNote: rpt get says where the data was read on stderr on a terminal only,
// never in the CSV on stdout, and the xlsx file carries it in its document properties
// while its sheet holds only the header and the data.
func TestGetReadNote(t *testing.T) {
	t.Setenv("XDG_DATA_HOME", t.TempDir())
	dir := t.TempDir()
	path := filepath.Join(dir, "queue.db")
	id := strconv.FormatInt(readJob(t, path, &queue.ReadInfo{Source: "warehouse", Kind: "mysql", At: readAt}), 10)
	const wantCSV = "n\n1\n2\n"
	wantNote := "from a copy in MySQL (warehouse, not live Plex) (source warehouse) at 2026-12-07 14:05:03 EST America/Indiana/Indianapolis"

	code, out, stderr := runRead(t, path, false, "get", id, "--csv")
	if code != 0 || out != wantCSV || strings.Contains(stderr, "read") {
		t.Errorf("get in a pipe: exit %d, stdout %q, stderr %q; want %q and no note", code, out, stderr, wantCSV)
	}
	code, out, stderr = runRead(t, path, true, "get", id, "--csv")
	if code != 0 || out != wantCSV || !strings.Contains(stderr, "job "+id+" read "+wantNote) {
		t.Errorf("get on a terminal: exit %d, stdout %q, stderr %q; want %q and the note %q", code, out, stderr, wantCSV, wantNote)
	}

	file := filepath.Join(dir, "out.xlsx")
	if code, _, stderr = runRead(t, path, false, "get", id, "--file", file); code != 0 {
		t.Fatalf("get --file: exit %d, %s", code, stderr)
	}
	f, err := excelize.OpenFile(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	props, err := f.GetDocProps()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(props.Description, wantNote) || !strings.Contains(props.Subject, wantNote) {
		t.Errorf("xlsx description %q, subject %q; want the note %q", props.Description, props.Subject, wantNote)
	}
	rows, err := f.GetRows(f.GetSheetName(0))
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 3 || rows[0][0] != "n" || rows[1][0] != "1" || rows[2][0] != "2" {
		t.Errorf("xlsx sheet %q; want the header n then 1, 2", rows)
	}
}
