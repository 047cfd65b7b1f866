// Package storemode names the ways a run's rows are kept in a history table (a
// definition's store: mode): the one set of names that report definitions validate and
// the history loader (internal/results) acts on.
package storemode

const (
	Append  = "append"  // add the run's rows (a retried job replaces its own earlier rows)
	Upsert  = "upsert"  // insert or update by the key columns
	Replace = "replace" // delete the rows matching replace_where, then insert
)

// All lists the modes in the order messages show them.
var All = []string{Append, Upsert, Replace}
