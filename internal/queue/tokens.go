package queue

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"sync"
	"time"
)

// Roles an API token may have, lowest first: each may do what the ones before it may.
const (
	RoleViewer    = "viewer"    // reads reports, jobs and results
	RoleSubmitter = "submitter" // also submits, cancels and retries jobs
	RoleAdmin     = "admin"     // also pauses, resumes and drains
)

// Roles lists the roles, lowest first.
var Roles = []string{RoleViewer, RoleSubmitter, RoleAdmin}

// RoleRank orders roles (viewer 1, submitter 2, admin 3); 0 for an unknown role, which
// may do nothing.
func RoleRank(role string) int {
	for i, r := range Roles {
		if r == role {
			return i + 1
		}
	}
	return 0
}

// ErrExists: a row with that name exists already (a token name is never reused, so
// that who did what stays unambiguous in the job events).
var ErrExists = errors.New("already exists")

// APIToken is one row of rpt_api_tokens. The token itself is never stored: only its
// sha256, which is all a stolen copy of the queue database gives away.
type APIToken struct {
	ID         int64      `json:"id"`
	Name       string     `json:"name"`
	Role       string     `json:"role"`
	SHA256     string     `json:"-"`
	CreatedAt  time.Time  `json:"created_at"`
	LastUsedAt *time.Time `json:"last_used_at"`
	RevokedAt  *time.Time `json:"revoked_at"`
}

// TokenTouchEvery is how stale last_used_at may be: a busy client does not write to the
// queue on every request, only once a minute.
const TokenTouchEvery = time.Minute

// Tokens is the table of API tokens. Every Store implements it.
type Tokens interface {
	// TokenCreate stores a token's name, role and sha256 (hex); ErrExists when the name
	// is taken (revoked tokens keep theirs), ErrInvalid for a bad name, role or hash.
	TokenCreate(ctx context.Context, name, role, sha256hex string) (APIToken, error)
	// TokenByHash returns the token with this sha256, revoked or not (the caller refuses
	// a revoked one); ErrNotFound when none has it.
	TokenByHash(ctx context.Context, sha256hex string) (APIToken, error)
	// TokenTouch records that token id was used now, unless it was within TokenTouchEvery.
	TokenTouch(ctx context.Context, id int64) error
	// TokenList lists tokens by name.
	TokenList(ctx context.Context) ([]APIToken, error)
	// TokenRevoke revokes the token called name and returns it; revoking twice keeps
	// the first time. ErrNotFound for an unknown name.
	TokenRevoke(ctx context.Context, name string) (APIToken, error)
}

var tokenName = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$`) })

// CheckToken validates TokenCreate's arguments; both stores call it.
func CheckToken(name, role, sha256hex string) error {
	switch {
	case !tokenName().MatchString(name):
		return fmt.Errorf("%w: token name %q: want 1 to 64 letters, digits, '.', '_', '@' or '-', starting with a letter or digit", ErrInvalid, name)
	case RoleRank(role) == 0:
		return fmt.Errorf("%w: role %q: want viewer, submitter or admin", ErrInvalid, role)
	case len(sha256hex) != 64 || !isLowerHex(sha256hex):
		return fmt.Errorf("%w: token hash: want 64 lower-case hex digits", ErrInvalid)
	}
	return nil
}

func isLowerHex(s string) bool {
	for _, c := range s {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// TokenPrefix starts every API token, so that one pasted where it does not belong is
// recognisable (and secret scanners can find it).
const TokenPrefix = "rpt_"

// NewAPIToken makes a token: TokenPrefix and 32 random bytes, base64url.
func NewAPIToken() (string, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("make a token: %w", err)
	}
	return TokenPrefix + base64.RawURLEncoding.EncodeToString(b[:]), nil
}

// TokenSHA256 is the hex sha256 of a token, as rpt_api_tokens keys it.
func TokenSHA256(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// TokenHashEqual compares two hex hashes in constant time.
func TokenHashEqual(a, b string) bool {
	return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}
