-- Schedules kept in the queue database (rpt schedules): a report, its parameters as
-- given, deliveries, a cron expression and zone; rpt cron run ticks them, each
-- occurrence queued once through the once key "schedule:NAME@TIME". A new table only.

-- +goose Up
CREATE TABLE rpt_schedules (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    name            TEXT    NOT NULL UNIQUE,
    cron            TEXT    NOT NULL,
    timezone        TEXT    NOT NULL,
    report          TEXT    NOT NULL,
    params          TEXT    NOT NULL,
    deliver         TEXT    NOT NULL,
    missed          TEXT    NOT NULL DEFAULT 'skip',
    held            INTEGER NOT NULL DEFAULT 0,
    created_by      TEXT    NOT NULL DEFAULT '',
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL,
    last_occurrence INTEGER,
    last_job_id     INTEGER
);

-- +goose Down
DROP TABLE rpt_schedules;
