package sqlite

import (
	"context"
	"errors"
	"testing"

	"path/filepath"
	"rpt/internal/queue"
)

// A queue whose agent broker password was kept in rpt_settings (before migration 6)
// has it moved to rpt_agent_secrets: the same password, and no copy left where the
// submitter role reads; the client's password stays.
func TestMigrationMovesTheAgentPassword(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, filepath.Join(t.TempDir(), "rpt.db"), queue.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	p, err := s.provider()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.UpTo(ctx, 5); err != nil {
		t.Fatal(err)
	}
	for name, v := range map[string]string{"mqtt.password.rpt-agent": "agent-pw", "mqtt.password.rpt-client": "client-pw"} {
		if _, err := s.SettingInit(ctx, name, v); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	if v, err := s.AgentSecretGet(ctx, "mqtt.password.rpt-agent"); err != nil || v != "agent-pw" {
		t.Errorf("agent secret after the migration = %q, %v; want the old password", v, err)
	}
	if _, err := s.SettingGet(ctx, "mqtt.password.rpt-agent"); !errors.Is(err, queue.ErrNotFound) {
		t.Errorf("the agent's password is still among the settings: %v", err)
	}
	if v, err := s.SettingGet(ctx, "mqtt.password.rpt-client"); err != nil || v != "client-pw" {
		t.Errorf("client password after the migration = %q, %v", v, err)
	}
}
