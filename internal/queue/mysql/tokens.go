package mysql

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"rpt/internal/queue"
)

var _ queue.Tokens = (*Store)(nil)

// TokenCreate stores a token by its hash; a taken name is ErrExists.
func (s *Store) TokenCreate(ctx context.Context, name, role, sha256hex string) (queue.APIToken, error) {
	op := "create token " + name
	if err := queue.CheckToken(name, role, sha256hex); err != nil {
		return queue.APIToken{}, s.wrap(op, err)
	}
	_, err := s.db.ExecContext(ctx, "INSERT INTO rpt_api_tokens (name, role, token_sha256, created_at) VALUES (?, ?, ?, UTC_TIMESTAMP(6))",
		name, role, sha256hex)
	if mysqlErrNo(err) == errDupEntry {
		return queue.APIToken{}, fmt.Errorf("%s: %w: a token called %q exists (names are not reused; pick another)", op, queue.ErrExists, name)
	}
	if err != nil {
		return queue.APIToken{}, s.wrap(op, err)
	}
	t, err := queue.ScanToken(s.db.QueryRowContext(ctx, "SELECT "+queue.TokenColumns+" FROM rpt_api_tokens WHERE name = ?", name))
	if err != nil {
		return queue.APIToken{}, s.wrap(op, err)
	}
	return t, nil
}

// TokenByHash returns the token with this hash, revoked or not.
func (s *Store) TokenByHash(ctx context.Context, sha256hex string) (queue.APIToken, error) {
	t, err := queue.ScanToken(s.db.QueryRowContext(ctx, "SELECT "+queue.TokenColumns+" FROM rpt_api_tokens WHERE token_sha256 = ?", sha256hex))
	if errors.Is(err, sql.ErrNoRows) {
		err = queue.ErrNotFound
	}
	if err != nil {
		return queue.APIToken{}, s.wrap("find token", err)
	}
	return t, nil
}

// TokenTouch records a use, at most once per queue.TokenTouchEvery.
func (s *Store) TokenTouch(ctx context.Context, id int64) error {
	_, err := s.db.ExecContext(ctx, `UPDATE rpt_api_tokens SET last_used_at = UTC_TIMESTAMP(6)
		WHERE id = ? AND (last_used_at IS NULL OR last_used_at < UTC_TIMESTAMP(6) - INTERVAL ? MICROSECOND)`,
		id, queue.TokenTouchEvery.Microseconds())
	return s.wrap("record token use", err)
}

// TokenList lists tokens by name.
func (s *Store) TokenList(ctx context.Context) ([]queue.APIToken, error) {
	rows, err := s.db.QueryContext(ctx, "SELECT "+queue.TokenColumns+" FROM rpt_api_tokens ORDER BY name")
	if err != nil {
		return nil, s.wrap("list tokens", err)
	}
	out, err := queue.CollectRows(rows, queue.ScanToken)
	return out, s.wrap("list tokens", err)
}

// TokenRevoke revokes a token by name; the first revocation time stays.
func (s *Store) TokenRevoke(ctx context.Context, name string) (queue.APIToken, error) {
	op := "revoke token " + name
	if _, err := s.db.ExecContext(ctx, "UPDATE rpt_api_tokens SET revoked_at = UTC_TIMESTAMP(6) WHERE name = ? AND revoked_at IS NULL", name); err != nil {
		return queue.APIToken{}, s.wrap(op, err)
	}
	t, err := queue.ScanToken(s.db.QueryRowContext(ctx, "SELECT "+queue.TokenColumns+" FROM rpt_api_tokens WHERE name = ?", name))
	if errors.Is(err, sql.ErrNoRows) {
		err = fmt.Errorf("no token called %q: %w", name, queue.ErrNotFound)
	}
	if err != nil {
		return queue.APIToken{}, s.wrap(op, err)
	}
	return t, nil
}
