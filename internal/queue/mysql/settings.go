package mysql

import (
	"context"
	"database/sql"
	"errors"

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
	err := s.db.QueryRowContext(ctx, "SELECT value FROM "+table+" WHERE name = ?", name).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		err = queue.ErrNotFound
	}
	if err != nil {
		return "", s.wrap("read "+what+" "+name, err)
	}
	return v, nil
}

// namedInit stores value under name in table unless name is set, then returns what is
// stored. INSERT IGNORE makes concurrent first writers agree: one insert wins, every
// reader sees it.
func (s *Store) namedInit(ctx context.Context, table, what, name, value string) (string, error) {
	if _, err := s.db.ExecContext(ctx, "INSERT IGNORE INTO "+table+" (name, value, created_at) VALUES (?, ?, UTC_TIMESTAMP(6))", name, value); err != nil {
		return "", s.wrap("store "+what+" "+name, err)
	}
	return s.namedGet(ctx, table, what, name)
}
