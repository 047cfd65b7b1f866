package cli

import (
	"context"
	"fmt"
	"time"

	"rpt/internal/config"
	"rpt/internal/queue"
	"rpt/internal/results"
)

// resultsOf opens the store job j recorded as holding its result, which need not be the
// one results: names now: changing results: leaves older results readable while the
// old store is configured (results_read:).
func (e *env) resultsOf(ctx context.Context, q queue.Store, j *queue.Job) (results.Store, error) {
	rs, err := e.openResults(ctx, q, results.StoreOf(j))
	if err != nil {
		return nil, fmt.Errorf("job %d: %w", j.ID, err)
	}
	return rs, nil
}

// configuredResults are the URIs of the results stores this configuration reaches by
// their names: results: and results_read:, the queue database left out.
func (e *env) configuredResults() map[string]string {
	uris := map[string]string{}
	for _, uri := range append([]string{e.cfg.Results}, e.cfg.ResultsRead...) {
		if name, err := config.ResultStoreName(uri); err == nil && name != results.QueueStoreName {
			uris[name] = uri
		}
	}
	return uris
}

// openResults opens the results store called name: the queue database, or a store
// results: or results_read: configures. A store of another name is one another
// configuration (another node's agents, the configuration before a switch) wrote to.
func (e *env) openResults(ctx context.Context, q queue.Store, name string) (results.Store, error) {
	if name == results.QueueStoreName {
		return results.InQueue(q), nil
	}
	if uri, ok := e.configuredResults()[name]; ok {
		if e.d.OpenResults == nil {
			return nil, fmt.Errorf("the results store %s is not built in this binary: %w", name, results.ErrNotConfigured)
		}
		return e.d.OpenResults(ctx, uri, q)
	}
	where := "rpt.yaml"
	if e.cfg.File != "" {
		where = e.cfg.File
	}
	return nil, fmt.Errorf("its result is in the results store %q, which is not configured here (%s: results: %s; add it to results_read: to read it): %w",
		name, where, e.cfg.ResultsName(), results.ErrNotConfigured)
}

// allResults opens every results store this configuration reaches, the configured one
// first, then the queue database and the results_read: stores (rpt db prune prunes
// them all: results left behind by a switch of results: age out too). close closes
// them.
func (e *env) allResults(ctx context.Context, q queue.Store) (stores []results.Store, close func(), err error) {
	close = func() {
		for _, s := range stores {
			s.Close()
		}
	}
	names := []string{e.cfg.ResultsName(), results.QueueStoreName}
	for _, uri := range e.cfg.ResultsRead {
		if name, err := config.ResultStoreName(uri); err == nil {
			names = append(names, name)
		}
	}
	seen := map[string]bool{}
	for _, name := range names {
		if seen[name] {
			continue
		}
		seen[name] = true
		s, err := e.openResults(ctx, q, name)
		if err != nil {
			close()
			return nil, func() {}, err
		}
		stores = append(stores, s)
	}
	return stores, close, nil
}

// pruningAll is the results store an agent writes to, with a Prune that prunes every
// store the configuration reaches (the queue database and results_read: too), so
// results left behind by a switch of results: age out without rpt db prune.
type pruningAll struct {
	results.Store
	others []results.Store
}

func (p pruningAll) Prune(ctx context.Context, before time.Time) (int, error) {
	n, err := p.Store.Prune(ctx, before)
	for _, s := range p.others {
		if err != nil {
			return n, err
		}
		var m int
		m, err = s.Prune(ctx, before)
		n += m
		if err != nil {
			err = fmt.Errorf("prune results in %s: %w", s.Name(), err)
		}
	}
	return n, err
}

func (p pruningAll) Close() error {
	for _, s := range p.others {
		s.Close()
	}
	return p.Store.Close()
}

// agentResults is where an agent writes new results: rpt.yaml results:, the queue
// database by default; its Prune covers every configured store. The caller closes it
// (before the queue it may live in).
func (e *env) agentResults(ctx context.Context, q queue.Store) (results.Store, error) {
	stores, _, err := e.allResults(ctx, q) // pruningAll closes them
	if err != nil {
		return nil, err
	}
	if len(stores) == 1 {
		return stores[0], nil
	}
	return pruningAll{Store: stores[0], others: stores[1:]}, nil
}
