-- Agent secrets: values only the agent and admin roles may read (the embedded broker's
-- agent password). They lived in rpt_settings, which the submitter role reads for the
-- client's password; a table of their own lets the grants keep them apart. A new table,
-- and the agent's row moves here.

-- +goose Up
CREATE TABLE rpt_agent_secrets (
    name       VARCHAR(128) NOT NULL PRIMARY KEY,
    value      TEXT         NOT NULL,
    created_at DATETIME(6)  NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
INSERT INTO rpt_agent_secrets (name, value, created_at)
    SELECT name, value, created_at FROM rpt_settings WHERE name = 'mqtt.password.rpt-agent';
DELETE FROM rpt_settings WHERE name = 'mqtt.password.rpt-agent';

-- +goose Down
INSERT IGNORE INTO rpt_settings (name, value, created_at)
    SELECT name, value, created_at FROM rpt_agent_secrets WHERE name = 'mqtt.password.rpt-agent';
DROP TABLE rpt_agent_secrets;
