package agent

import (
	"context"
	"sync"

	"rpt/internal/source"
)

// sources keeps one opened Source per source name for the agent's life, so a job does
// not pay for a new connection pool (and the ping that checks it) every time: the
// pool's connections are reused across jobs. A cancelled query is still killed on its
// own connection (source.Source.Query pins one per query and kills that one's
// statement; internal/source TestMariaDBCancelOneOfSharedPool). A failed open is not
// kept, so the next job tries again.
type sources struct {
	open SourceOpener
	mu   sync.Mutex
	srcs map[string]source.Source
}

func newSources(open SourceOpener) *sources {
	return &sources{open: open, srcs: map[string]source.Source{}}
}

// get returns the named source, opening it on first use. The caller must not Close it.
func (s *sources) get(ctx context.Context, name string) (source.Source, error) {
	s.mu.Lock()
	src, ok := s.srcs[name]
	s.mu.Unlock()
	if ok {
		return src, nil
	}
	src, err := s.open(ctx, name)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if have, ok := s.srcs[name]; ok {
		// Another job opened it meanwhile: keep one.
		_ = src.Close()
		return have, nil
	}
	s.srcs[name] = src
	return src, nil
}

// closeAll closes every kept source; the agent calls it once its jobs have ended.
func (s *sources) closeAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for name, src := range s.srcs {
		_ = src.Close()
		delete(s.srcs, name)
	}
}
