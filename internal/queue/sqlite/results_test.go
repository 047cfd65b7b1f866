package sqlite_test

import (
	"testing"

	"rpt/internal/results"
	"rpt/internal/results/resultstest"
)

// TestResultsConformance holds the queue database as a results store (the default) to
// the result-store suite.
func TestResultsConformance(t *testing.T) {
	resultstest.Run(t, func(t *testing.T) resultstest.Env {
		s := newStore(t, suiteOptions)
		return resultstest.Env{Queue: s, Results: results.InQueue(s)}
	})
}
