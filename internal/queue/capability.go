package queue

import "strings"

// Capabilities ride on agent labels and job routes, so the claim needs nothing new:
// an agent advertises what it can run as labels under CapabilityPrefix (its job kinds
// and the definition features it understands), and a job that needs more than an agent
// of v0.1.0 could run carries the label in its route. The route check (RouteSatisfied:
// every route label among the agent's labels) then keeps an older agent from claiming
// a job it would fail. A job that needs nothing new carries no such label, so agents of
// every version keep taking it during a rolling update.
const (
	// CapabilityPrefix starts every capability label; operators' labels may not use it.
	CapabilityPrefix = "rpt/"
	// CapabilityYes is the value of every capability label.
	CapabilityYes = "yes"
)

// KindLabel is the capability label of an agent that runs jobs of kind k
// (rpt/kind.report). Reports need none in their route: every agent runs them.
func KindLabel(k Kind) string { return CapabilityPrefix + "kind." + string(k) }

// FeatureLabel is the capability label of a definition feature (rpt/feature.procedure).
func FeatureLabel(feature string) string { return CapabilityPrefix + "feature." + feature }

// IsCapability reports whether a label key is a capability label.
func IsCapability(key string) bool { return strings.HasPrefix(key, CapabilityPrefix) }
