package sqlite

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
		return queue.APIToken{}, fmt.Errorf("%s: %w", op, err)
	}
	var t queue.APIToken
	err := s.write(ctx, op, func(tx *wtx) error {
		res, err := tx.ExecContext(ctx, `INSERT INTO rpt_api_tokens (name, role, token_sha256, created_at) VALUES (?, ?, ?, `+nowUS+`)
			ON CONFLICT DO NOTHING`, name, role, sha256hex)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return fmt.Errorf("%w: a token called %q exists (names are not reused; pick another)", queue.ErrExists, name)
		}
		t, err = queue.ScanToken(tx.QueryRowContext(ctx, `SELECT `+queue.TokenColumns+` FROM rpt_api_tokens WHERE name = ?`, name))
		return err
	})
	if err != nil {
		return queue.APIToken{}, err // write names op
	}
	return t, nil
}

// TokenByHash returns the token with this hash, revoked or not.
func (s *Store) TokenByHash(ctx context.Context, sha256hex string) (queue.APIToken, error) {
	t, err := queue.ScanToken(s.r.QueryRowContext(ctx, `SELECT `+queue.TokenColumns+` FROM rpt_api_tokens WHERE token_sha256 = ?`, sha256hex))
	if errors.Is(err, sql.ErrNoRows) {
		return queue.APIToken{}, fmt.Errorf("find token: %w", queue.ErrNotFound)
	}
	if err != nil {
		return queue.APIToken{}, fmt.Errorf("find token: %w", localFault(err))
	}
	return t, nil
}

// TokenTouch records a use, at most once per queue.TokenTouchEvery.
func (s *Store) TokenTouch(ctx context.Context, id int64) error {
	return s.write(ctx, "record token use", func(tx *wtx) error {
		_, err := tx.ExecContext(ctx, `UPDATE rpt_api_tokens SET last_used_at = `+nowUS+`
			WHERE id = ? AND (last_used_at IS NULL OR last_used_at < `+nowUS+` - ?)`, id, queue.TokenTouchEvery.Microseconds())
		return err
	})
}

// TokenList lists tokens by name.
func (s *Store) TokenList(ctx context.Context) ([]queue.APIToken, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+queue.TokenColumns+` FROM rpt_api_tokens ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("list tokens: %w", localFault(err))
	}
	out, err := queue.CollectRows(rows, queue.ScanToken)
	if err != nil {
		return nil, fmt.Errorf("list tokens: %w", localFault(err))
	}
	return out, nil
}

// TokenRevoke revokes a token by name; the first revocation time stays.
func (s *Store) TokenRevoke(ctx context.Context, name string) (queue.APIToken, error) {
	op := "revoke token " + name
	var t queue.APIToken
	err := s.write(ctx, op, func(tx *wtx) error {
		if _, err := tx.ExecContext(ctx, `UPDATE rpt_api_tokens SET revoked_at = `+nowUS+` WHERE name = ? AND revoked_at IS NULL`, name); err != nil {
			return err
		}
		var err error
		t, err = queue.ScanToken(tx.QueryRowContext(ctx, `SELECT `+queue.TokenColumns+` FROM rpt_api_tokens WHERE name = ?`, name))
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("no token called %q: %w", name, queue.ErrNotFound)
		}
		return err
	})
	if err != nil {
		return queue.APIToken{}, err // write names op
	}
	return t, nil
}
