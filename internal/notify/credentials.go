package notify

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net/url"

	"rpt/internal/queue"
)

// settingName is where a user's generated password is kept with the queue.
func settingName(user string) string { return "mqtt.password." + user }

// initPassword and getPassword keep the agent's password among the agent secrets, which
// the submitter role cannot read (with it, a submitter could publish forged agent
// events), and the client's among the settings every role reads.
func initPassword(ctx context.Context, s queue.Settings, user, value string) (string, error) {
	if user == AgentUser {
		return s.AgentSecretInit(ctx, settingName(user), value)
	}
	return s.SettingInit(ctx, settingName(user), value)
}

func getPassword(ctx context.Context, s queue.Settings, user string) (string, error) {
	if user == AgentUser {
		return s.AgentSecretGet(ctx, settingName(user))
	}
	return s.SettingGet(ctx, settingName(user))
}

// BrokerCredentials returns the embedded broker's passwords kept with the queue,
// generating and storing them the first time (rpt server does this at start). Several
// servers starting on one queue end up with the same passwords.
func BrokerCredentials(ctx context.Context, s queue.Settings) (BrokerOptions, error) {
	var o BrokerOptions
	for _, u := range []struct {
		user string
		dst  *string
	}{{AgentUser, &o.AgentPassword}, {ClientUser, &o.ClientPassword}} {
		pw, err := initPassword(ctx, s, u.user, newPassword())
		if err != nil {
			return BrokerOptions{}, fmt.Errorf("broker credentials: %w", err)
		}
		*u.dst = pw
	}
	return o, nil
}

// StoredCredentials returns the user and password kept with the queue for a role
// (AgentUser or ClientUser); ok false when the queue holds none (no rpt server ever
// ran on it: the broker is someone else's and the URL carries any credentials).
func StoredCredentials(ctx context.Context, s queue.Settings, user string) (password string, ok bool, err error) {
	pw, err := getPassword(ctx, s, user)
	if errors.Is(err, queue.ErrNotFound) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("broker credentials: %w", err)
	}
	return pw, true, nil
}

// URLHasUser reports whether a broker URL names its own user (tcp://user:pw@host),
// which then wins over stored credentials.
func URLHasUser(raw string) bool {
	u, err := url.Parse(raw)
	return err == nil && u.User != nil && u.User.Username() != ""
}

// newPassword is 24 random bytes, URL-safe base64 (fits a URL's userinfo unescaped).
func newPassword() string {
	var b [24]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}
