package etl

import (
	"encoding/json"
	"fmt"
	"slices"

	"rpt/internal/queue"
)

// JobArgs are an etl job's parameters (the job's params JSON).
type JobArgs struct {
	Force bool `json:"force,omitempty"`
	From  int  `json:"from,omitempty"`
	To    int  `json:"to,omitempty"`
	// Reconcile sweeps every row for source deletes (rpt etl submit --reconcile).
	Reconcile bool `json:"reconcile,omitempty"`
}

// DefaultMaxAttempts of an etl job: a failed load changes nothing, so retrying is safe.
const DefaultMaxAttempts = 3

// JobParams is the enqueue request of one ETL run: kind etl (only agents with the etl
// runner claim it), the definition snapshot the agent runs (it must be one the agent
// trusts), one run of an ETL at a time (scope etl:NAME; runs of one ETL also serialize
// on its state row), and a dedupe key, so submitting an ETL that is already queued or
// running with the same arguments joins that job.
func JobParams(def *Definition, args JobArgs) (queue.JobEnqueueParams, error) {
	raw, err := json.Marshal(args)
	if err != nil {
		return queue.JobEnqueueParams{}, err
	}
	return queue.JobEnqueueParams{
		Kind:             queue.KindETL,
		Report:           def.Name,
		Definition:       slices.Clone(def.Raw),
		DefinitionSHA256: queue.DefinitionSHA256(def.Raw),
		Params:           raw,
		Source:           def.Source,
		Route:            map[string]string{queue.KindLabel(queue.KindETL): queue.CapabilityYes},
		Scopes:           []queue.Scope{{Name: "etl:" + def.Name, Limit: 1}},
		MaxAttempts:      DefaultMaxAttempts,
		DedupeKey:        fmt.Sprintf("etl:%s:%s", def.Name, raw),
	}, nil
}

// ParseJobArgs reads an etl job's params.
func ParseJobArgs(raw json.RawMessage) (JobArgs, error) {
	var a JobArgs
	if len(raw) == 0 {
		return a, nil
	}
	if err := json.Unmarshal(raw, &a); err != nil {
		return a, fmt.Errorf("%w: etl job params: %v", ErrInvalid, err)
	}
	return a, nil
}
