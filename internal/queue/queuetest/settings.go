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
