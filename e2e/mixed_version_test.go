package e2e

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"rpt/internal/queue"
	"rpt/internal/testenv"
)

// oldTag is the release whose agents must keep working beside new ones; oldCommit is
// the commit it tags, an ancestor of main, so a clone without tags still has it.
const (
	oldTag    = "v0.1.0"
	oldCommit = "e1ccbf1f86af44a6cf237da04083d8a19b88f772"
)

var (
	oldOnce sync.Once
	oldPath string
	oldSkip string // why the old binary cannot be built here (no git, no tag)
	oldErr  error
)

// oldBinary builds cmd/rpt as it was at oldTag (git archive of the tag into a temporary
// directory, then go build; never -race: its races are not this build's), once per test
// binary. It skips the test when git or the
// tag is not available (a source tarball, a shallow clone), and fails it when the tag
// is there but does not build.
func oldBinary(t *testing.T) string {
	t.Helper()
	oldOnce.Do(func() {
		gitTool, err := exec.LookPath("git")
		if err != nil {
			oldSkip = "git is not installed"
			return
		}
		root, err := exec.Command(gitTool, "-C", "..", "rev-parse", "--show-toplevel").Output()
		if err != nil {
			oldSkip = "not a git checkout: " + err.Error()
			return
		}
		repo := strings.TrimSpace(string(root))
		rev := oldTag
		if out, err := exec.Command(gitTool, "-C", repo, "rev-parse", "--verify", "--quiet", oldTag+"^{commit}").Output(); err == nil {
			if got := strings.TrimSpace(string(out)); got != oldCommit {
				oldErr = fmt.Errorf("tag %s is commit %s, want %s", oldTag, got, oldCommit)
				return
			}
		} else if exec.Command(gitTool, "-C", repo, "cat-file", "-e", oldCommit+"^{commit}").Run() == nil {
			rev = oldCommit // a clone without tags
		} else {
			oldSkip = "neither tag " + oldTag + " nor its commit is in this clone (a shallow clone? git fetch --tags)"
			return
		}
		// The old tree goes next to the new binary, in binDir, which TestMain removes.
		rptBinary(t)
		dir := binDir
		src := filepath.Join(dir, "src-"+oldTag)
		if err := os.Mkdir(src, 0o755); err != nil {
			oldErr = err
			return
		}
		archive := exec.Command(gitTool, "-C", repo, "archive", "--format=tar", rev)
		untar := exec.Command("tar", "-x", "-C", src)
		pipe, err := archive.StdoutPipe()
		if err != nil {
			oldErr = err
			return
		}
		untar.Stdin = pipe
		var aerr, uerr bytes.Buffer
		archive.Stderr, untar.Stderr = &aerr, &uerr
		if err := untar.Start(); err != nil {
			oldErr = fmt.Errorf("tar: %w", err)
			return
		}
		if err := archive.Run(); err != nil {
			oldErr = fmt.Errorf("git archive %s: %v: %s", oldTag, err, aerr.String())
			return
		}
		if err := untar.Wait(); err != nil {
			oldErr = fmt.Errorf("untar %s: %v: %s", oldTag, err, uerr.String())
			return
		}
		goTool := "go"
		if _, err := exec.LookPath(goTool); err != nil {
			if r := os.Getenv("GOROOT"); r != "" {
				goTool = filepath.Join(r, "bin", "go")
			}
		}
		path := filepath.Join(dir, "rpt-"+oldTag)
		build := exec.Command(goTool, "build", "-o", path, "./cmd/rpt")
		build.Dir = src
		if out, err := build.CombinedOutput(); err != nil {
			oldErr = fmt.Errorf("go build %s: %v\n%s", oldTag, err, out)
			return
		}
		_ = os.RemoveAll(src)
		oldPath = path
	})
	if oldSkip != "" {
		t.Skipf("mixed-version test needs the %s binary: %s", oldTag, oldSkip)
	}
	if oldErr != nil {
		t.Fatal(oldErr)
	}
	return oldPath
}

// startAgentBinary starts an agent from another rpt binary (an older release) with the
// rig's flags: the harness starts r.bin, so it is swapped for the one start.
func (r *rig) startAgentBinary(bin, name string, concurrency int) *agent {
	r.t.Helper()
	saved := r.bin
	r.bin = bin
	defer func() { r.bin = saved }()
	return r.startAgent(name, concurrency)
}

// A rolling update from v0.1.0: an old agent and a new one share a MariaDB queue. Jobs
// that only the new build can run (a report calling a stored procedure) carry the
// capability label rpt/feature.procedure in their route, so the old agent never claims
// them: while it is the only agent they wait, and rpt jobs show says which capability
// is missing; once the new agent runs they succeed there, at their first attempt.
// Ordinary reports carry no new label, and the old agent keeps taking them.
func TestMixedVersionAgents(t *testing.T) {
	t.Parallel()
	db := testenv.MariaDB(t)
	oldBin := oldBinary(t)
	r := newRig(t, db, db)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	// The source is the rig's database: give it a procedure to call.
	if _, err := r.db.ExecContext(ctx, `CREATE PROCEDURE e2e_numbers(IN p_n INT)
		BEGIN
			SELECT p_n AS n, p_n * 2 AS twice;
		END`); err != nil {
		t.Fatalf("create procedure: %v", err)
	}
	plain := r.define(`name: plain
source: db
params:
  - {name: n, type: int}
sql: SELECT :n AS n
`)
	proc := r.define(`name: proc
source: db
params:
  - {name: n, type: int}
procedure: {name: e2e_numbers, args: [n]}
`)
	const plainJobs, procJobs = 20, 6
	procIDs := map[int64]bool{}
	plainIDs := map[int64]bool{}
	n := 0
	enqueue := func(def string, count int) {
		t.Helper()
		for range count {
			n++
			d, ids := plain, plainIDs
			if def == "proc" {
				d, ids = proc, procIDs
			}
			id, err := r.enqueue(ctx, d, map[string]string{"n": strconv.Itoa(n)})
			if err != nil {
				t.Fatalf("enqueue %s: %v", def, err)
			}
			ids[id] = true
		}
	}

	// Phase 1: only the old agent. The procedure jobs come first in the queue, so an
	// agent that could claim them would take them before the plain ones.
	old := r.startAgentBinary(oldBin, "old", 2)
	enqueue("proc", procJobs)
	enqueue("plain", plainJobs)
	waitFor(t, 90*time.Second, "the old agent to finish the plain jobs", func() (bool, error) {
		js, err := r.jobs(ctx, "report = 'plain' AND status = 'succeeded'")
		return len(js) == plainJobs, err
	})
	js, err := r.jobs(ctx, "report = 'proc'")
	if err != nil {
		t.Fatal(err)
	}
	for _, j := range js {
		if j.Status != string(queue.StatusQueued) || j.Attempt != 0 {
			t.Errorf("procedure job %d: %s at attempt %d while only the %s agent runs; want queued, never claimed", j.ID, j.Status, j.Attempt, oldTag)
		}
	}
	var someProc int64
	for id := range procIDs {
		someProc = id
		break
	}
	out, err := r.rpt("jobs", "show", strconv.FormatInt(someProc, 10))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "no live agent has capability rpt/feature.procedure") {
		t.Errorf("rpt jobs show %d does not name the missing capability:\n%s", someProc, out)
	}

	// Phase 2: the new agent joins; both run, with more of both kinds queued meanwhile.
	r.startAgent("new", 2)
	enqueue("plain", plainJobs)
	enqueue("proc", procJobs)
	// One procedure run submitted through the CLI, as an operator would.
	out, err = r.rpt("submit", "proc", "-p", "n=99", "--wait", "--timeout", "60s")
	if err != nil {
		t.Fatalf("rpt submit proc --wait: %v\n%s", err, out)
	}
	cliID, err := strconv.ParseInt(strings.TrimSpace(out), 10, 64)
	if err != nil {
		t.Fatalf("rpt submit printed %q", out)
	}
	procIDs[cliID] = true

	all := r.waitFinished(ctx, 90*time.Second, "all jobs finished")
	if want := 2*plainJobs + 2*procJobs + 1; len(all) != want {
		t.Errorf("%d jobs, want %d", len(all), want)
	}
	oldPlain := 0
	for _, j := range all {
		if j.Status != string(queue.StatusSucceeded) || j.Failures != 0 || j.Rows != 1 {
			t.Errorf("job %d: %s, %d failures, %d rows; want succeeded with one row and no failure", j.ID, j.Status, j.Failures, j.Rows)
		}
		switch {
		case procIDs[j.ID]:
			if j.Owner != "new" || j.Attempt != 1 {
				t.Errorf("procedure job %d ran on %q at attempt %d; want the new agent, first attempt", j.ID, j.Owner, j.Attempt)
			}
		case plainIDs[j.ID] && j.Owner == "old":
			oldPlain++
		}
	}
	if oldPlain < plainJobs {
		t.Errorf("the %s agent ran %d plain jobs, want at least the %d it ran alone", oldTag, oldPlain, plainJobs)
	}
	// No attempt of a procedure job ever started on the old agent (the events say who
	// ran each attempt).
	evs, err := r.events(ctx, "event = ?", queue.EventRunning)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range evs {
		if procIDs[e.JobID] && e.Agent != "new" {
			t.Errorf("procedure job %d attempt %d started on agent %q", e.JobID, e.Attempt, e.Agent)
		}
	}
	// The result is the procedure's: n and twice.
	out, err = r.rpt("get", strconv.FormatInt(cliID, 10), "-o", "csv")
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(out); got != "n,twice\n99,198" {
		t.Errorf("result of job %d = %q, want n,twice / 99,198", cliID, got)
	}
	// The new agent advertises its capabilities; the old one has none.
	out, err = r.rpt("agents", "list", "-o", "json")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, `"rpt/feature.procedure": "yes"`) || !strings.Contains(out, `"rpt/kind.report": "yes"`) {
		t.Errorf("rpt agents list does not show the new agent's capabilities:\n%s", out)
	}
	if old.exited() {
		t.Errorf("the %s agent exited early: %v", oldTag, old.err)
	}
}
