package queuetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"rpt/internal/queue"
)

var settingsTests = []struct {
	name string
	run  func(t *testing.T, s queue.Store)
}{
	{"SettingsInitOnce", testSettingsInitOnce},
	{"SettingsConcurrentInitAgree", testSettingsConcurrentInit},
	{"AgentSecretsApartFromSettings", testAgentSecrets},
}

// The first value stored under a name stays; unset names are ErrNotFound.
func testSettingsInitOnce(t *testing.T, s queue.Store) {
	ctx := context.Background()
	if _, err := s.SettingGet(ctx, "mqtt.agent_password"); !errors.Is(err, queue.ErrNotFound) {
		t.Fatalf("SettingGet of an unset name = %v, want ErrNotFound", err)
	}
	long := fmt.Sprintf("%0300d", 7) // longer than a VARCHAR(255) would hold
	got, err := s.SettingInit(ctx, "mqtt.agent_password", long)
	if err != nil || got != long {
		t.Fatalf("SettingInit = %q, %v; want the value stored", got, err)
	}
	got, err = s.SettingInit(ctx, "mqtt.agent_password", "second")
	if err != nil || got != long {
		t.Fatalf("second SettingInit = %q, %v; want the first value kept", got, err)
	}
	if got, err := s.SettingGet(ctx, "mqtt.agent_password"); err != nil || got != long {
		t.Fatalf("SettingGet = %q, %v; want the first value", got, err)
	}
	if _, err := s.SettingGet(ctx, "MQTT.AGENT_PASSWORD"); !errors.Is(err, queue.ErrNotFound) {
		t.Errorf("names are case-sensitive: SettingGet(upper case) = %v, want ErrNotFound", err)
	}
}

// Processes starting together all end up with one value.
func testSettingsConcurrentInit(t *testing.T, s queue.Store) {
	ctx := context.Background()
	const n = 8
	got := make([]string, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got[i], errs[i] = s.SettingInit(ctx, "mqtt.client_password", fmt.Sprintf("value-%d", i))
		}()
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("SettingInit %d: %v", i, errs[i])
		}
		if got[i] != got[0] {
			t.Fatalf("concurrent SettingInit disagree: %q and %q", got[0], got[i])
		}
	}
}

// Agent secrets are a name space of their own: the first value stays, concurrent first
// writers agree, and a setting of the same name neither shows nor changes them (the
// agent's broker password must not be readable where the client's is).
func testAgentSecrets(t *testing.T, s queue.Store) {
	ctx := context.Background()
	const name = "mqtt.password.rpt-agent"
	if _, err := s.AgentSecretGet(ctx, name); !errors.Is(err, queue.ErrNotFound) {
		t.Fatalf("AgentSecretGet of an unset name = %v, want ErrNotFound", err)
	}
	if _, err := s.SettingInit(ctx, name, "a setting"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AgentSecretGet(ctx, name); !errors.Is(err, queue.ErrNotFound) {
		t.Fatalf("a setting shows as an agent secret: AgentSecretGet = %v, want ErrNotFound", err)
	}
	const n = 8
	got := make([]string, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got[i], errs[i] = s.AgentSecretInit(ctx, name, fmt.Sprintf("secret-%d", i))
		}()
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("AgentSecretInit %d: %v", i, errs[i])
		}
		if got[i] != got[0] || got[0] == "a setting" {
			t.Fatalf("concurrent AgentSecretInit: %q and %q; want one of the secrets for all", got[0], got[i])
		}
	}
	if v, err := s.AgentSecretInit(ctx, name, "later"); err != nil || v != got[0] {
		t.Fatalf("a later AgentSecretInit = %q, %v; want the first value %q kept", v, err, got[0])
	}
	if v, err := s.AgentSecretGet(ctx, name); err != nil || v != got[0] {
		t.Fatalf("AgentSecretGet = %q, %v; want %q", v, err, got[0])
	}
	if v, err := s.SettingGet(ctx, name); err != nil || v != "a setting" {
		t.Fatalf("the setting of the same name changed: %q, %v", v, err)
	}
}
