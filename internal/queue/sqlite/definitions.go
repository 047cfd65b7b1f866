package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"rpt/internal/queue"
)

var _ queue.Definitions = (*Store)(nil)

// DefinitionPublish inserts the definition keyed by the sha256 of its bytes; the same
// bytes published again keep their first row.
func (s *Store) DefinitionPublish(ctx context.Context, p queue.DefinitionPublishParams) (queue.PublishedDefinition, bool, error) {
	op := "publish definition of report " + p.Report
	if err := queue.CheckPublish(p); err != nil {
		return queue.PublishedDefinition{}, false, fmt.Errorf("%s: %w", op, err)
	}
	sum := queue.DefinitionSHA256(p.Definition)
	var inserted int64
	err := s.write(ctx, op, func(tx *wtx) error {
		res, err := tx.ExecContext(ctx, `INSERT INTO rpt_definitions (`+queue.DefinitionColumns+`) VALUES (?, ?, ?, ?, `+nowUS+`)
			ON CONFLICT (sha256) DO NOTHING`, sum, p.Report, p.Definition, p.PublishedBy)
		if err != nil {
			return err
		}
		inserted, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return queue.PublishedDefinition{}, false, err
	}
	d, err := s.DefinitionGet(ctx, sum)
	return d, inserted == 0, err
}

// DefinitionGet returns the published definition with this sha256.
func (s *Store) DefinitionGet(ctx context.Context, sha256 string) (queue.PublishedDefinition, error) {
	d, err := queue.ScanDefinition(s.r.QueryRowContext(ctx, `SELECT `+queue.DefinitionColumns+` FROM rpt_definitions WHERE sha256 = ?`, sha256))
	if errors.Is(err, sql.ErrNoRows) {
		err = queue.ErrNotFound
	}
	if err != nil {
		return queue.PublishedDefinition{}, fmt.Errorf("get published definition %s: %w", sha256, err)
	}
	return d, nil
}

// DefinitionList lists published definitions by report, newest first within one.
func (s *Store) DefinitionList(ctx context.Context) ([]queue.PublishedDefinition, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+queue.DefinitionColumns+` FROM rpt_definitions ORDER BY report, published_at DESC, sha256`)
	if err != nil {
		return nil, fmt.Errorf("list published definitions: %w", err)
	}
	out, err := queue.CollectRows(rows, queue.ScanDefinition)
	if err != nil {
		return nil, fmt.Errorf("list published definitions: %w", err)
	}
	return out, nil
}
