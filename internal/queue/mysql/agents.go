package mysql

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"rpt/internal/queue"
)

// AgentHeartbeat records an agent's presence; last_seen is the database clock. It
// leaves drain_requested as it is: the agent reports its state, only AgentDrain asks.
func (s *Store) AgentHeartbeat(ctx context.Context, a queue.Agent) error {
	if a.Name == "" {
		return errors.New("agent heartbeat: agent name is empty")
	}
	if a.Sources == nil {
		a.Sources = []string{}
	}
	labels := queue.LabelsJSON(a.Labels)
	sources, err := json.Marshal(a.Sources)
	if err != nil {
		return fmt.Errorf("agent heartbeat: sources: %w", err)
	}
	_, err = s.db.ExecContext(ctx, "INSERT INTO rpt_agents (name, host, labels, sources, version, running, draining, last_seen) "+
		"VALUES (?, ?, ?, ?, ?, ?, ?, UTC_TIMESTAMP(6)) ON DUPLICATE KEY UPDATE host = VALUES(host), labels = VALUES(labels), "+
		"sources = VALUES(sources), version = VALUES(version), running = VALUES(running), draining = VALUES(draining), "+
		"last_seen = VALUES(last_seen)",
		a.Name, a.Host, labels, string(sources), a.Version, a.Running, a.Draining)
	return s.wrap("agent heartbeat "+a.Name, err)
}

// AgentList lists agents by name.
func (s *Store) AgentList(ctx context.Context) ([]queue.Agent, error) {
	rows, err := s.db.QueryContext(ctx, "SELECT "+queue.AgentColumns+" FROM rpt_agents ORDER BY name")
	if err != nil {
		return nil, s.wrap("list agents", err)
	}
	out, err := queue.CollectRows(rows, queue.ScanAgent)
	if err != nil {
		return nil, s.wrap("list agents", err)
	}
	return out, nil
}
