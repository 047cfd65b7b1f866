package mysql

import (
	"context"
	"database/sql"
	"errors"

	"rpt/internal/queue"
)

// SettingGet returns a setting; ErrNotFound when it is not set.
func (s *Store) SettingGet(ctx context.Context, name string) (string, error) {
	var v string
	err := s.db.QueryRowContext(ctx, "SELECT value FROM rpt_settings WHERE name = ?", name).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		err = queue.ErrNotFound
	}
	if err != nil {
		return "", s.wrap("read setting "+name, err)
	}
	return v, nil
}

// SettingInit stores value unless name is set, then returns what is stored. INSERT
// IGNORE makes concurrent first writers agree: one insert wins, every reader sees it.
func (s *Store) SettingInit(ctx context.Context, name, value string) (string, error) {
	if _, err := s.db.ExecContext(ctx, "INSERT IGNORE INTO rpt_settings (name, value, created_at) VALUES (?, ?, UTC_TIMESTAMP(6))", name, value); err != nil {
		return "", s.wrap("store setting "+name, err)
	}
	return s.SettingGet(ctx, name)
}
