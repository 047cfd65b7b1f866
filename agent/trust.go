package agent

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"rpt/etl"
	"rpt/internal/deffiles"
	"rpt/internal/queue"
	"rpt/reportdefs"
)

// The trust model: a job carries its definition snapshot, and whoever can reach the
// queue can enqueue one. The SQL an agent runs with its sources' credentials must come
// from someone trusted with them, so an agent runs a snapshot only when the sha256 of
// its bytes (computed here: the job's definition_sha256 column is the submitter's word)
// is that of
//   - a definition in the agent's own catalogue: the reports shipped in the binary and
//     the files of its configured reports folders, put there by whoever runs the agent;
//   - or a definition published to the queue (rpt_definitions), which only the admin
//     role's grants may write.
// Anything else fails the job, not retryable, naming the report and hash.

// ErrUntrusted is the failure of a job whose definition is neither published nor in
// the agent's catalogue. It also satisfies errors.Is(err, reportdefs.ErrInvalid), so
// the job fails without a retry: another attempt cannot make it trusted.
var ErrUntrusted = errors.New("definition not trusted")

type untrustedError struct{ report, sum string }

func (e *untrustedError) Error() string {
	return fmt.Sprintf("definition of report %s (sha256 %s…) is neither published nor in this agent's catalogue: publish it with rpt reports publish",
		e.report, e.sum[:12])
}

func (e *untrustedError) Unwrap() []error { return []error{ErrUntrusted, reportdefs.ErrInvalid} }

// trust is the agent's set of trusted definition hashes.
type trust struct {
	dirs []string

	mu        sync.Mutex
	known     map[string]bool // sha256 of the catalogue's files and of published rows seen
	shipped   map[string]bool
	readError error // the last read's problem, logged once per change
}

func newTrust(dirs []string) *trust {
	t := &trust{dirs: dirs, known: map[string]bool{}, shipped: map[string]bool{}}
	if cat, err := reportdefs.LoadCatalog(); err == nil {
		for _, d := range cat.List() {
			t.shipped[queue.DefinitionSHA256(d.Raw)] = true
		}
	}
	// The shipped ETL definitions run as etl jobs.
	if cat, err := etl.LoadCatalog(); err == nil {
		for _, d := range cat.List() {
			t.shipped[queue.DefinitionSHA256(d.Raw)] = true
		}
	}
	return t
}

// inCatalogue reports whether sum is a shipped definition or a file of the reports
// folders. With reread it reads the folders again first, so a definition file added
// while the agent runs is trusted without a restart. Only a miss rereads: refusals
// are rare, and a folder holds a few small files.
func (t *trust) inCatalogue(sum string, reread bool) (bool, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.shipped[sum] || t.known[sum] {
		return true, nil
	}
	if !reread {
		return false, nil
	}
	var errs []error
	for _, dir := range t.dirs {
		files, err := deffiles.Files(dir) // the same files LoadCatalog takes as definitions
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, file := range files {
			data, err := reportdefs.ReadFile(file)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			t.known[queue.DefinitionSHA256(data)] = true
		}
	}
	// A folder's problem is reported when it first appears, not at every miss.
	err := errors.Join(errs...)
	var report error
	if err != nil && (t.readError == nil || err.Error() != t.readError.Error()) {
		report = err
	}
	t.readError = err
	return t.known[sum], report
}

func (t *trust) remember(sum string) {
	t.mu.Lock()
	t.known[sum] = true
	t.mu.Unlock()
}

// checkTrusted returns nil when the job's definition snapshot may run, an error
// satisfying ErrUntrusted when it may not, and a queue.ErrUnavailable error when the
// published definitions could not be read (the job is given back, not failed).
func (a *Agent) checkTrusted(ctx context.Context, r *run) error {
	job := r.job
	sum := queue.DefinitionSHA256(job.Definition)
	if ok, _ := a.trust.inCatalogue(sum, false); ok {
		return nil
	}
	_, err := a.store.DefinitionGet(ctx, sum)
	switch {
	case err == nil:
		a.trust.remember(sum) // published rows are never removed
		return nil
	case !errors.Is(err, queue.ErrNotFound):
		return fmt.Errorf("check definition of report %s: %w", job.Report, err)
	}
	ok, rerr := a.trust.inCatalogue(sum, true)
	if rerr != nil {
		r.log.Warn("reading the reports folders for trusted definitions", keyError, rerr.Error())
	}
	if ok {
		return nil
	}
	return &untrustedError{report: job.Report, sum: sum}
}
