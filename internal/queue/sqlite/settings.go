package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"rpt/internal/queue"
)

// SettingGet returns a setting; ErrNotFound when it is not set.
func (s *Store) SettingGet(ctx context.Context, name string) (string, error) {
	var v string
	err := s.r.QueryRowContext(ctx, `SELECT value FROM rpt_settings WHERE name = ?`, name).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return "", fmt.Errorf("read setting %s: %w", name, queue.ErrNotFound)
	}
	if err != nil {
		return "", fmt.Errorf("read setting %s: %w", name, err)
	}
	return v, nil
}

// SettingInit stores value unless name is set, then returns what is stored (read in the
// same write transaction, so concurrent first writers agree).
func (s *Store) SettingInit(ctx context.Context, name, value string) (string, error) {
	var stored string
	err := s.write(ctx, "store setting "+name, func(tx *wtx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO rpt_settings (name, value, created_at) VALUES (?, ?, `+nowUS+`)
			ON CONFLICT (name) DO NOTHING`, name, value); err != nil {
			return err
		}
		return tx.QueryRowContext(ctx, `SELECT value FROM rpt_settings WHERE name = ?`, name).Scan(&stored)
	})
	if err != nil {
		return "", err
	}
	return stored, nil
}
