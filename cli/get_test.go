package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"rpt/cli"
	"rpt/internal/queue"
	"rpt/internal/queue/sqlite"
	"rpt/internal/results"
	"rpt/internal/source"
)

// getResultRows is a result of three chunks (the writer puts 10,000 rows a chunk).
const getResultRows = 25000

// finishedJob queues, runs and completes a job on the SQLite queue at path whose result
// has getResultRows rows; store is what the completion records as the result's store.
func finishedJob(t *testing.T, path, store string) *queue.Job {
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
		Definition: []byte("name: numbers\nsql: SELECT 1\n"), Params: json.RawMessage(`{}`), Source: "demo", MaxAttempts: 1}); err != nil {
		t.Fatal(err)
	}
	jobs, err := s.JobClaim(ctx, queue.JobClaimParams{Agent: "test", Limit: 1, LeaseDuration: time.Minute})
	if err != nil || len(jobs) != 1 {
		t.Fatalf("claim: %d jobs, %v", len(jobs), err)
	}
	w := results.NewWriter(results.InQueue(s), jobs[0].Lease(), []source.Column{{Name: "n", Type: source.TypeInt}})
	for i := range getResultRows {
		if err := w.Write(ctx, []any{int64(i)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.JobComplete(ctx, jobs[0].Lease(), queue.Completion{Rows: getResultRows, ResultStore: store, ResultChunks: w.Chunks()}); err != nil {
		t.Fatal(err)
	}
	j, err := s.JobGet(ctx, jobs[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	return j
}

// pruneOnRead is a queue whose result chunks are pruned (all results, as retention
// would) just before chunk 1 is read: `rpt get` is then half-way through the result.
type pruneOnRead struct {
	queue.Store
	pruned atomic.Bool
}

func (p *pruneOnRead) ResultChunkGet(ctx context.Context, jobID int64, attempt, seq int) ([]byte, error) {
	if seq == 1 && !p.pruned.Swap(true) {
		if _, err := p.Store.Prune(ctx, queue.PruneParams{ResultsBefore: time.Now().Add(time.Hour)}); err != nil {
			return nil, err
		}
	}
	return p.Store.ResultChunkGet(ctx, jobID, attempt, seq)
}

// runGet runs rpt get on the queue at path, the queue wrapped by wrap when not nil.
func runGet(t *testing.T, path string, wrap func(queue.Store) queue.Store, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	d := deps(&out, &errb)
	d.OpenQueue = func(ctx context.Context, s string, opts queue.Options) (queue.Store, error) {
		q, err := openQueue(ctx, s, opts)
		if err != nil || wrap == nil {
			return q, err
		}
		return wrap(q), nil
	}
	cfg := filepath.Join(filepath.Dir(path), "rpt.yaml")
	if err := os.WriteFile(cfg, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	code := cli.Main(context.Background(), append([]string{"rpt", "--config", cfg, "--queue", "sqlite:" + path, "get"}, args...), d)
	return code, out.String(), errb.String()
}

// TestGetPrunedWhileRead: a result pruned while `rpt get` reads it fails the command,
// saying so; it used to end cleanly with the rows read so far (exit 0, 10,000 of 25,000
// rows here).
func TestGetPrunedWhileRead(t *testing.T) {
	t.Setenv("XDG_DATA_HOME", t.TempDir())
	for _, tc := range []struct {
		name string
		file bool
	}{{"stdout", false}, {"file", true}} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "queue.db")
			j := finishedJob(t, path, results.QueueStoreName)
			if j.ResultChunks != 3 {
				t.Fatalf("the job records %d chunks, want 3", j.ResultChunks)
			}
			args := []string{strconv.FormatInt(j.ID, 10), "--csv"}
			file := filepath.Join(dir, "out.csv")
			if tc.file {
				args = append(args, "--file", file)
			}
			code, stdout, stderr := runGet(t, path, func(q queue.Store) queue.Store { return &pruneOnRead{Store: q} }, args...)
			if code != cli.ExitUsage {
				t.Errorf("exit %d, want %d (the result is gone); stderr: %s", code, cli.ExitUsage, stderr)
			}
			want := "result of job " + strconv.FormatInt(j.ID, 10) + " was pruned while it was read (chunk 2 of 3 missing)"
			if !strings.Contains(stderr, want) {
				t.Errorf("stderr = %q, want it to say %q", stderr, want)
			}
			if lines := strings.Count(stdout, "\n"); lines >= getResultRows {
				t.Errorf("printed %d lines of a result pruned half-way", lines)
			}
			if _, err := os.Stat(file); tc.file && !os.IsNotExist(err) {
				t.Errorf("--file of a pruned result was written (stat: %v)", err)
			}
		})
	}
}

// TestGetIncompleteResult: a chunk missing from a result that is otherwise there fails
// the command (exit 5: the store's trouble, not the job's), naming the chunk.
func TestGetIncompleteResult(t *testing.T) {
	t.Setenv("XDG_DATA_HOME", t.TempDir())
	path := filepath.Join(t.TempDir(), "queue.db")
	j := finishedJob(t, path, results.QueueStoreName)
	s, err := sqlite.Open(context.Background(), path, queue.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.DB().Exec("DELETE FROM rpt_results WHERE job_id = ? AND seq = 1", j.ID); err != nil {
		t.Fatal(err)
	}
	s.Close()
	code, _, stderr := runGet(t, path, nil, strconv.FormatInt(j.ID, 10), "--csv")
	want := "result of job " + strconv.FormatInt(j.ID, 10) + " attempt 1 is incomplete: chunk 2 of 3 missing"
	if code != cli.ExitUnreachable || !strings.Contains(stderr, want) {
		t.Errorf("exit %d, stderr %q; want %d and %q", code, stderr, cli.ExitUnreachable, want)
	}
}

// TestGetResultInUnconfiguredStore: a job whose result went to a store this rpt.yaml
// does not configure is an error naming the store, not an empty or missing result.
func TestGetResultInUnconfiguredStore(t *testing.T) {
	t.Setenv("XDG_DATA_HOME", t.TempDir())
	path := filepath.Join(t.TempDir(), "queue.db")
	j := finishedJob(t, path, "archive")
	code, stdout, stderr := runGet(t, path, nil, strconv.FormatInt(j.ID, 10), "--csv")
	want := `its result is in the results store "archive", which is not configured here`
	if code != cli.ExitUsage || !strings.Contains(stderr, want) || stdout != "" {
		t.Errorf("exit %d, stdout %d bytes, stderr %q; want %d, nothing, %q", code, len(stdout), stderr, cli.ExitUsage, want)
	}
	// The same queue read with the store the job names works.
	j2 := finishedJob(t, path, results.QueueStoreName)
	code, stdout, stderr = runGet(t, path, nil, strconv.FormatInt(j2.ID, 10), "--csv")
	if code != 0 || strings.Count(stdout, "\n") != getResultRows+1 {
		t.Errorf("exit %d, %d lines, stderr %q; want 0 and %d lines", code, strings.Count(stdout, "\n"), stderr, getResultRows+1)
	}
}

// TestGetTSVFlag: --tsv prints what -o tsv prints (a header of column names, tab
// separated; firsthour.txtar checks the tabs on a many-column result), and goes with
// no other format flag.
func TestGetTSVFlag(t *testing.T) {
	t.Setenv("XDG_DATA_HOME", t.TempDir())
	path := filepath.Join(t.TempDir(), "queue.db")
	j := finishedJob(t, path, results.QueueStoreName)
	id := strconv.FormatInt(j.ID, 10)
	code, flag, stderr := runGet(t, path, nil, id, "--tsv")
	if code != 0 {
		t.Fatalf("get --tsv: exit %d: %s", code, stderr)
	}
	code, opt, stderr := runGet(t, path, nil, id, "-o", "tsv")
	if code != 0 {
		t.Fatalf("get -o tsv: exit %d: %s", code, stderr)
	}
	if flag != opt {
		t.Errorf("--tsv and -o tsv differ:\n%.300s\n---\n%.300s", flag, opt)
	}
	if strings.Count(flag, "\n") < 2 {
		t.Errorf("get --tsv printed %q: want a header and rows", flag)
	}
	code, _, stderr = runGet(t, path, nil, id, "--tsv", "--csv")
	if code != cli.ExitUsage || !strings.Contains(stderr, "give one of --csv, --tsv, --json, -o") {
		t.Errorf("--tsv --csv: exit %d, stderr %q; want exit 2 and one of", code, stderr)
	}
}
