package queue

import (
	"path"

	"github.com/pressly/goose/v3"
)

// MigrationsFromGoose turns goose's status of the embedded migrations into the list
// both stores report (`rpt db status`): the version, the file's name, and when it was
// applied (UTC), nil while pending.
func MigrationsFromGoose(st []*goose.MigrationStatus) []Migration {
	out := make([]Migration, 0, len(st))
	for _, m := range st {
		mig := Migration{Version: m.Source.Version, Name: path.Base(m.Source.Path)}
		if m.State == goose.StateApplied && !m.AppliedAt.IsZero() {
			at := m.AppliedAt.UTC()
			mig.AppliedAt = &at
		}
		out = append(out, mig)
	}
	return out
}
