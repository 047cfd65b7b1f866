package cli

import (
	"fmt"

	"rpt/internal/queue"
	"rpt/internal/results"
)

// resultsStore is where new results go: rpt.yaml results:, the queue database by
// default. The caller closes it (before the queue it may live in).
func (e *env) resultsStore(q queue.Store) (results.Store, error) {
	name := e.cfg.Results
	if name == "" {
		name = results.QueueStoreName
	}
	return e.openResults(q, name)
}

// resultsOf opens the store job j recorded as holding its result, which need not be the
// one results: names now: changing results: leaves older results readable.
func (e *env) resultsOf(q queue.Store, j *queue.Job) (results.Store, error) {
	rs, err := e.openResults(q, results.StoreOf(j))
	if err != nil {
		return nil, fmt.Errorf("job %d: %w", j.ID, err)
	}
	return rs, nil
}

// openResults opens the results store called name. Only the queue database is built
// in; a store of another name is one a newer rpt, or another configuration, wrote to.
func (e *env) openResults(q queue.Store, name string) (results.Store, error) {
	if name == results.QueueStoreName {
		return results.InQueue(q), nil
	}
	configured := e.cfg.Results
	if configured == "" {
		configured = results.QueueStoreName
	}
	where := "rpt.yaml"
	if e.cfg.File != "" {
		where = e.cfg.File
	}
	return nil, fmt.Errorf("its result is in the results store %q, which is not configured here (%s: results: %s): %w",
		name, where, configured, results.ErrNotConfigured)
}
