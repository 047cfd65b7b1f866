package notify

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"rpt/internal/queue"
)

// memSettings is queue.Settings in memory: settings in m, agent secrets in secrets.
type memSettings struct {
	mu         sync.Mutex
	m, secrets map[string]string
}

func (s *memSettings) get(m map[string]string, name string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := m[name]
	if !ok {
		return "", fmt.Errorf("setting %s: %w", name, queue.ErrNotFound)
	}
	return v, nil
}

func (s *memSettings) init(m *map[string]string, name, value string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if *m == nil {
		*m = map[string]string{}
	}
	if v, ok := (*m)[name]; ok {
		return v, nil
	}
	(*m)[name] = value
	return value, nil
}

func (s *memSettings) SettingGet(_ context.Context, name string) (string, error) {
	return s.get(s.m, name)
}

func (s *memSettings) SettingInit(_ context.Context, name, value string) (string, error) {
	return s.init(&s.m, name, value)
}

func (s *memSettings) AgentSecretGet(_ context.Context, name string) (string, error) {
	return s.get(s.secrets, name)
}

func (s *memSettings) AgentSecretInit(_ context.Context, name, value string) (string, error) {
	return s.init(&s.secrets, name, value)
}

// The server generates the passwords once; every client on the queue finds its role's,
// and connects to the broker with them.
func TestGeneratedCredentialsAreSharedThroughTheQueue(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	st := &memSettings{}
	if _, ok, err := StoredCredentials(ctx, st, ClientUser); ok || err != nil {
		t.Fatalf("before any server: StoredCredentials = %v, %v; want none", ok, err)
	}
	first, err := BrokerCredentials(ctx, st)
	if err != nil {
		t.Fatal(err)
	}
	if len(first.AgentPassword) < 32 || first.AgentPassword == first.ClientPassword {
		t.Fatalf("generated passwords %d and %d chars, equal %v: want two long, different ones",
			len(first.AgentPassword), len(first.ClientPassword), first.AgentPassword == first.ClientPassword)
	}
	// The agent's password is kept only among the agent secrets (the submitter role
	// reads the settings), the client's among the settings (submitters need it).
	for _, v := range st.m {
		if v == first.AgentPassword {
			t.Error("the agent's broker password is kept among the settings every role reads")
		}
	}
	if st.secrets[settingName(AgentUser)] != first.AgentPassword || st.m[settingName(ClientUser)] != first.ClientPassword || len(st.secrets) != 1 {
		t.Errorf("kept: settings %d names, agent secrets %d names; want the agent's password alone among the secrets, the client's among the settings", len(st.m), len(st.secrets))
	}
	again, err := BrokerCredentials(ctx, st)
	if err != nil || again.AgentPassword != first.AgentPassword || again.ClientPassword != first.ClientPassword {
		t.Fatalf("a second server start changed the passwords (err %v)", err)
	}
	first.Logger = quietLogger()
	b, err := StartBroker(ctx, "127.0.0.1:0", first)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	for _, user := range []string{AgentUser, ClientUser} {
		pw, ok, err := StoredCredentials(ctx, st, user)
		if !ok || err != nil {
			t.Fatalf("StoredCredentials(%s) = %v, %v", user, ok, err)
		}
		if _, err := rawClient(t, b.Addr(), user, pw, nil); err != nil {
			t.Errorf("%s with the stored password: %v", user, err)
		}
	}
	for raw, want := range map[string]bool{
		"tcp://h:1883": false, "tcp://rpt-client:pw@h:1883": true, "tcp://rpt-client@h:1883": true, "tcp://:pw@h:1883": false, "%zz": false,
	} {
		if got := URLHasUser(raw); got != want {
			t.Errorf("URLHasUser(%q) = %v, want %v", raw, got, want)
		}
	}
}
