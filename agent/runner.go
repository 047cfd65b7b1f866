package agent

import (
	"maps"
	"slices"
	"strings"

	"rpt/internal/queue"
)

// runner runs the claimed jobs of one kind. The lifecycle around it (claim, lease
// keeping, timeout, cancel, the outcome write) is the same for every kind and lives in
// job.go; a runner only does the work, reading r.ctx for cancellation, storing
// progress in r.rows and returning the attempt's error (classified by decide).
//
// A new kind (etl, deliver) plugs in as a runner listed in runners(): the agent then
// advertises queue.KindLabel(kind), and the submit side of that kind puts the same
// label in the job's route, so only agents that have the runner claim its jobs. The
// claim loop does not change.
type runner interface {
	kind() queue.Kind
	// features are the definition features the runner handles beyond what every
	// agent since v0.1.0 runs; each is advertised as queue.FeatureLabel(feature).
	features() []string
	run(a *Agent, r *run) error
}

// runners are the job kinds this build of the agent runs.
func runners() []runner {
	return []runner{reportRunner{}, deliverRunner{}, etlRunner{}}
}

// capabilityLabels are the labels that advertise what the runners can run.
func capabilityLabels(rs map[queue.Kind]runner) map[string]string {
	out := map[string]string{}
	for _, rn := range rs {
		out[queue.KindLabel(rn.kind())] = queue.CapabilityYes
		for _, f := range rn.features() {
			out[queue.FeatureLabel(f)] = queue.CapabilityYes
		}
	}
	return out
}

// withCapabilities is the agent's label set: the operator's labels with the capability
// labels on top (an operator's rpt/ label cannot claim a capability the build lacks).
func withCapabilities(labels map[string]string, rs map[queue.Kind]runner) map[string]string {
	out := make(map[string]string, len(labels)+4)
	for k, v := range labels {
		if !queue.IsCapability(k) {
			out[k] = v
		}
	}
	maps.Copy(out, capabilityLabels(rs))
	return out
}

// kindNames lists the kinds of rs, sorted, for messages.
func kindNames(rs map[queue.Kind]runner) string {
	names := make([]string, 0, len(rs))
	for k := range rs {
		names = append(names, string(k))
	}
	slices.Sort(names)
	return strings.Join(names, ", ")
}
