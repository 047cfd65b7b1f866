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
	return s.namedGet(ctx, "rpt_settings", "setting", name)
}

// SettingInit stores value unless name is set, then returns what is stored.
func (s *Store) SettingInit(ctx context.Context, name, value string) (string, error) {
	return s.namedInit(ctx, "rpt_settings", "setting", name, value)
}

// AgentSecretGet returns an agent secret; ErrNotFound when it is not set.
func (s *Store) AgentSecretGet(ctx context.Context, name string) (string, error) {
	return s.namedGet(ctx, "rpt_agent_secrets", "agent secret", name)
}

// AgentSecretInit stores value unless name is set, then returns what is stored.
func (s *Store) AgentSecretInit(ctx context.Context, name, value string) (string, error) {
	return s.namedInit(ctx, "rpt_agent_secrets", "agent secret", name, value)
}

// namedGet reads name from table, one of the two name/value tables above (a constant,
// never input).
func (s *Store) namedGet(ctx context.Context, table, what, name string) (string, error) {
	var v string
	err := s.r.QueryRowContext(ctx, `SELECT value FROM `+table+` WHERE name = ?`, name).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return "", fmt.Errorf("read %s %s: %w", what, name, queue.ErrNotFound)
	}
	if err != nil {
		return "", fmt.Errorf("read %s %s: %w", what, name, err)
	}
	return v, nil
}

// namedInit stores value under name in table unless name is set, then returns what is
// stored (read in the same write transaction, so concurrent first writers agree).
func (s *Store) namedInit(ctx context.Context, table, what, name, value string) (string, error) {
	var stored string
	err := s.write(ctx, "store "+what+" "+name, func(tx *wtx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO `+table+` (name, value, created_at) VALUES (?, ?, `+nowUS+`)
			ON CONFLICT (name) DO NOTHING`, name, value); err != nil {
			return err
		}
		return tx.QueryRowContext(ctx, `SELECT value FROM `+table+` WHERE name = ?`, name).Scan(&stored)
	})
	if err != nil {
		return "", err
	}
	return stored, nil
}
