package queuetest

import (
	"context"
	"errors"
	"testing"
	"time"

	"rpt/internal/queue"
)

var tokensTests = []struct {
	name string
	run  func(t *testing.T, s queue.Store)
}{
	{"TokensCreateFindRevoke", testTokensCreateFindRevoke},
	{"TokensInvalidWriteNothing", testTokensInvalid},
}

// A token is found by its hash only, keeps its name for good, and stays found (marked
// revoked) after revocation so the caller can say why it is refused.
func testTokensCreateFindRevoke(t *testing.T, s queue.Store) {
	ctx := context.Background()
	tok, err := queue.NewAPIToken()
	if err != nil {
		t.Fatal(err)
	}
	sum := queue.TokenSHA256(tok)
	created, err := s.TokenCreate(ctx, "ci-bot", queue.RoleSubmitter, sum)
	if err != nil {
		t.Fatalf("TokenCreate: %v", err)
	}
	if created.ID == 0 || created.Name != "ci-bot" || created.Role != queue.RoleSubmitter || created.SHA256 != sum ||
		created.CreatedAt.IsZero() || created.LastUsedAt != nil || created.RevokedAt != nil {
		t.Fatalf("created = %+v", created)
	}
	if time.Since(created.CreatedAt) > time.Hour || created.CreatedAt.Location() != time.UTC {
		t.Errorf("created_at = %v, want now in UTC", created.CreatedAt)
	}
	got, err := s.TokenByHash(ctx, sum)
	if err != nil || got.ID != created.ID || got.Role != queue.RoleSubmitter {
		t.Fatalf("TokenByHash = %+v, %v", got, err)
	}
	if _, err := s.TokenByHash(ctx, queue.TokenSHA256(tok+"x")); !errors.Is(err, queue.ErrNotFound) {
		t.Fatalf("TokenByHash(other) = %v, want ErrNotFound", err)
	}
	if _, err := s.TokenCreate(ctx, "ci-bot", queue.RoleViewer, queue.TokenSHA256("other")); !errors.Is(err, queue.ErrExists) {
		t.Fatalf("TokenCreate of a taken name = %v, want ErrExists", err)
	}
	if err := s.TokenTouch(ctx, created.ID); err != nil {
		t.Fatalf("TokenTouch: %v", err)
	}
	got, _ = s.TokenByHash(ctx, sum)
	if got.LastUsedAt == nil {
		t.Fatalf("last_used_at not set by TokenTouch")
	}
	first := *got.LastUsedAt
	if err := s.TokenTouch(ctx, created.ID); err != nil {
		t.Fatal(err)
	}
	if got, _ = s.TokenByHash(ctx, sum); !got.LastUsedAt.Equal(first) {
		t.Errorf("a second touch within %s moved last_used_at %v -> %v", queue.TokenTouchEvery, first, got.LastUsedAt)
	}
	if _, err := s.TokenCreate(ctx, "reader", queue.RoleViewer, queue.TokenSHA256("reader-token")); err != nil {
		t.Fatal(err)
	}
	list, err := s.TokenList(ctx)
	if err != nil || len(list) != 2 || list[0].Name != "ci-bot" || list[1].Name != "reader" {
		t.Fatalf("TokenList = %+v, %v", list, err)
	}
	rev, err := s.TokenRevoke(ctx, "ci-bot")
	if err != nil || rev.RevokedAt == nil {
		t.Fatalf("TokenRevoke = %+v, %v", rev, err)
	}
	again, err := s.TokenRevoke(ctx, "ci-bot")
	if err != nil || again.RevokedAt == nil || !again.RevokedAt.Equal(*rev.RevokedAt) {
		t.Fatalf("second TokenRevoke = %+v, %v; want the first time kept", again, err)
	}
	if got, err := s.TokenByHash(ctx, sum); err != nil || got.RevokedAt == nil {
		t.Fatalf("revoked token: %+v, %v; want it found, marked revoked", got, err)
	}
	if _, err := s.TokenRevoke(ctx, "nobody"); !errors.Is(err, queue.ErrNotFound) {
		t.Fatalf("TokenRevoke(unknown) = %v, want ErrNotFound", err)
	}
	if _, err := s.TokenCreate(ctx, "ci-bot", queue.RoleSubmitter, queue.TokenSHA256("new")); !errors.Is(err, queue.ErrExists) {
		t.Fatalf("a revoked token's name reused: %v, want ErrExists", err)
	}
}

// Bad names, roles and hashes are refused before anything is written.
func testTokensInvalid(t *testing.T, s queue.Store) {
	ctx := context.Background()
	good := queue.TokenSHA256("t")
	for _, c := range []struct{ name, role, sum string }{
		{"", queue.RoleViewer, good},
		{"has space", queue.RoleViewer, good},
		{"-dash", queue.RoleViewer, good},
		{"ok", "root", good},
		{"ok", queue.RoleViewer, "not-a-hash"},
		{"ok", queue.RoleViewer, "AB" + good[2:]},
	} {
		if _, err := s.TokenCreate(ctx, c.name, c.role, c.sum); !errors.Is(err, queue.ErrInvalid) {
			t.Errorf("TokenCreate(%q, %q, %q) = %v, want ErrInvalid", c.name, c.role, c.sum, err)
		}
	}
	if list, err := s.TokenList(ctx); err != nil || len(list) != 0 {
		t.Fatalf("after refused creates: %+v, %v; want no tokens", list, err)
	}
}
