-- Agent secrets: values only the agent and admin roles may read (the embedded broker's
-- agent password), kept apart from rpt_settings as on MySQL/MariaDB, where the grants
-- tell them apart. A new table, and the agent's row moves here.

-- +goose Up
CREATE TABLE rpt_agent_secrets (
    name       TEXT    NOT NULL PRIMARY KEY,
    value      TEXT    NOT NULL,
    created_at INTEGER NOT NULL
);
INSERT INTO rpt_agent_secrets (name, value, created_at)
    SELECT name, value, created_at FROM rpt_settings WHERE name = 'mqtt.password.rpt-agent';
DELETE FROM rpt_settings WHERE name = 'mqtt.password.rpt-agent';

-- +goose Down
INSERT OR IGNORE INTO rpt_settings (name, value, created_at)
    SELECT name, value, created_at FROM rpt_agent_secrets WHERE name = 'mqtt.password.rpt-agent';
DROP TABLE rpt_agent_secrets;
