package mysql

import (
	"context"
	"database/sql"
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

// agentColumns is every column a queue.Agent is read from, in scanAgent's order.
const agentColumns = "name, host, labels, sources, version, running, draining, drain_requested, last_seen"

func scanAgent(r rowScanner) (queue.Agent, error) {
	var a queue.Agent
	var labels, sources sql.NullString
	if err := r.Scan(&a.Name, &a.Host, &labels, &sources, &a.Version, &a.Running, &a.Draining, &a.DrainRequested,
		&a.LastSeen); err != nil {
		return queue.Agent{}, err
	}
	if labels.String != "" && labels.String != "null" {
		if err := json.Unmarshal([]byte(labels.String), &a.Labels); err != nil {
			return queue.Agent{}, fmt.Errorf("agent %s: labels: %w", a.Name, err)
		}
	}
	if sources.String != "" && sources.String != "null" {
		if err := json.Unmarshal([]byte(sources.String), &a.Sources); err != nil {
			return queue.Agent{}, fmt.Errorf("agent %s: sources: %w", a.Name, err)
		}
	}
	if len(a.Labels) == 0 {
		a.Labels = nil
	}
	if len(a.Sources) == 0 {
		a.Sources = nil
	}
	a.LastSeen = a.LastSeen.UTC()
	return a, nil
}

// AgentList lists agents by name.
func (s *Store) AgentList(ctx context.Context) ([]queue.Agent, error) {
	rows, err := s.db.QueryContext(ctx, "SELECT "+agentColumns+" FROM rpt_agents ORDER BY name")
	if err != nil {
		return nil, s.wrap("list agents", err)
	}
	defer rows.Close()
	var out []queue.Agent
	for rows.Next() {
		a, err := scanAgent(rows)
		if err != nil {
			return nil, s.wrap("list agents", err)
		}
		out = append(out, a)
	}
	if err := rows.Err(); err != nil {
		return nil, s.wrap("list agents", err)
	}
	return out, nil
}
