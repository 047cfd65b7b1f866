-- Deliveries: where a report job's result goes once it succeeds (e-mail, webhook), and
-- whether it went. The deliver job that sends one is an ordinary job of kind deliver.
-- A new table only, so an older rpt keeps working on the same file during an update.

-- +goose Up
CREATE TABLE rpt_deliveries (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id         INTEGER NOT NULL,
    target         TEXT    NOT NULL,
    target_sha256  TEXT    NOT NULL,
    state          TEXT    NOT NULL DEFAULT 'pending',
    deliver_job_id INTEGER,
    message_id     TEXT,
    attempts       INTEGER NOT NULL DEFAULT 0,
    sent_at        INTEGER,
    created_at     INTEGER NOT NULL,
    UNIQUE (job_id, target_sha256)
);
CREATE INDEX rpt_deliveries_state ON rpt_deliveries (state, id);

-- +goose Down
DROP TABLE rpt_deliveries;
