-- Settings: small named values every process on the queue must agree on, such as the
-- embedded broker's generated credentials. A new table only, so an older rpt keeps
-- working on the same file during an update.

-- +goose Up
CREATE TABLE rpt_settings (
    name       TEXT    NOT NULL PRIMARY KEY,
    value      TEXT    NOT NULL,
    created_at INTEGER NOT NULL
);

-- +goose Down
DROP TABLE rpt_settings;
