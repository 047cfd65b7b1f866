package mysql

import (
	"context"
	"database/sql"
	"errors"

	"rpt/internal/errclass"
	"rpt/internal/queue"
)

var _ queue.Definitions = (*Store)(nil)

// DefinitionPublish inserts the definition keyed by the sha256 of its bytes; the same
// bytes published again keep their first row. The INSERT is what a submitter's grants
// refuse (no INSERT on rpt_definitions): that refusal is queue.ErrDenied.
func (s *Store) DefinitionPublish(ctx context.Context, p queue.DefinitionPublishParams) (queue.PublishedDefinition, bool, error) {
	op := "publish definition of report " + p.Report
	if err := queue.CheckPublish(p); err != nil {
		return queue.PublishedDefinition{}, false, s.wrap(op, err)
	}
	sum := queue.DefinitionSHA256(p.Definition)
	_, err := s.db.ExecContext(ctx, "INSERT INTO rpt_definitions ("+queue.DefinitionColumns+") VALUES (?, ?, ?, ?, UTC_TIMESTAMP(6))",
		sum, p.Report, p.Definition, p.PublishedBy)
	existing := false
	switch mysqlErrNo(err) {
	case errDupEntry:
		existing, err = true, nil
	case errTableDenied, errDBAccessDenied:
		// Refused like any missing grant (class unavailable, exit 5), in words that name
		// the role this command needs.
		return queue.PublishedDefinition{}, false, errclass.Errorf(errclass.Unavailable,
			"%s: %w: publishing needs the admin role's grants (INSERT on rpt_definitions); the server said: %w", op, queue.ErrDenied, err)
	}
	if err != nil {
		return queue.PublishedDefinition{}, false, s.wrap(op, err)
	}
	d, err := s.DefinitionGet(ctx, sum)
	return d, existing, err
}

// DefinitionGet returns the published definition with this sha256.
func (s *Store) DefinitionGet(ctx context.Context, sha256 string) (queue.PublishedDefinition, error) {
	d, err := queue.ScanDefinition(s.db.QueryRowContext(ctx, "SELECT "+queue.DefinitionColumns+" FROM rpt_definitions WHERE sha256 = ?", sha256))
	if errors.Is(err, sql.ErrNoRows) {
		err = queue.ErrNotFound
	}
	if err != nil {
		return queue.PublishedDefinition{}, s.wrap("get published definition "+sha256, err)
	}
	return d, nil
}

// DefinitionList lists published definitions by report, newest first within one.
func (s *Store) DefinitionList(ctx context.Context) ([]queue.PublishedDefinition, error) {
	rows, err := s.db.QueryContext(ctx, "SELECT "+queue.DefinitionColumns+" FROM rpt_definitions ORDER BY report, published_at DESC, sha256")
	if err != nil {
		return nil, s.wrap("list published definitions", err)
	}
	out, err := queue.CollectRows(rows, queue.ScanDefinition)
	if err != nil {
		return nil, s.wrap("list published definitions", err)
	}
	return out, nil
}
