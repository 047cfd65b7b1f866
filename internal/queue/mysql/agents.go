package mysql

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"

	"rpt/internal/queue"
)

// AgentHeartbeat records an agent's presence; last_seen is the database clock.
func (s *Store) AgentHeartbeat(ctx context.Context, a queue.Agent) error {
	if a.Name == "" {
		return errors.New("agent heartbeat: agent name is empty")
	}
	if a.Labels == nil {
		a.Labels = map[string]string{}
	}
	if a.Sources == nil {
		a.Sources = []string{}
	}
	labels, err := json.Marshal(a.Labels)
	if err != nil {
		return fmt.Errorf("agent heartbeat: labels: %w", err)
	}
	sources, err := json.Marshal(a.Sources)
	if err != nil {
		return fmt.Errorf("agent heartbeat: sources: %w", err)
	}
	_, err = s.db.ExecContext(ctx, "INSERT INTO rpt_agents (name, host, labels, sources, version, running, draining, last_seen) "+
		"VALUES (?, ?, ?, ?, ?, ?, ?, UTC_TIMESTAMP(6)) ON DUPLICATE KEY UPDATE host = VALUES(host), labels = VALUES(labels), "+
		"sources = VALUES(sources), version = VALUES(version), running = VALUES(running), draining = VALUES(draining), "+
		"last_seen = VALUES(last_seen)",
		a.Name, a.Host, string(labels), string(sources), a.Version, a.Running, a.Draining)
	return s.wrap("agent heartbeat "+a.Name, err)
}

// AgentList lists agents by name.
func (s *Store) AgentList(ctx context.Context) ([]queue.Agent, error) {
	rows, err := s.db.QueryContext(ctx, "SELECT name, host, labels, sources, version, running, draining, last_seen "+
		"FROM rpt_agents ORDER BY name")
	if err != nil {
		return nil, s.wrap("list agents", err)
	}
	defer rows.Close()
	var out []queue.Agent
	for rows.Next() {
		var a queue.Agent
		var labels, sources sql.NullString
		if err := rows.Scan(&a.Name, &a.Host, &labels, &sources, &a.Version, &a.Running, &a.Draining, &a.LastSeen); err != nil {
			return nil, s.wrap("list agents", err)
		}
		if labels.String != "" && labels.String != "null" {
			if err := json.Unmarshal([]byte(labels.String), &a.Labels); err != nil {
				return nil, fmt.Errorf("list agents: agent %s: labels: %w", a.Name, err)
			}
		}
		if sources.String != "" && sources.String != "null" {
			if err := json.Unmarshal([]byte(sources.String), &a.Sources); err != nil {
				return nil, fmt.Errorf("list agents: agent %s: sources: %w", a.Name, err)
			}
		}
		if len(a.Labels) == 0 {
			a.Labels = nil
		}
		if len(a.Sources) == 0 {
			a.Sources = nil
		}
		a.LastSeen = a.LastSeen.UTC()
		out = append(out, a)
	}
	if err := rows.Err(); err != nil {
		return nil, s.wrap("list agents", err)
	}
	return out, nil
}
