-- The queue schema of rpt on SQLite. Times are INTEGER microseconds since the Unix
-- epoch, UTC, written by the database (see nowUS in store.go), never by Go's clock
-- except a user-given run_after.

-- +goose Up
CREATE TABLE rpt_jobs (
    id                  INTEGER PRIMARY KEY AUTOINCREMENT,
    kind                TEXT    NOT NULL DEFAULT 'report',
    report              TEXT    NOT NULL,
    definition          BLOB,
    definition_sha256   TEXT    NOT NULL DEFAULT '',
    params              TEXT    NOT NULL DEFAULT '{}',
    source              TEXT    NOT NULL DEFAULT '',
    route               TEXT    NOT NULL DEFAULT '{}',
    scopes              TEXT    NOT NULL DEFAULT '[]',
    -- priority negated so the claim index is all-ascending (higher priority first).
    neg_priority        INTEGER NOT NULL DEFAULT 0,
    status              TEXT    NOT NULL DEFAULT 'queued'
        CHECK (status IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')),
    attempt             INTEGER NOT NULL DEFAULT 0,
    failures            INTEGER NOT NULL DEFAULT 0,
    max_attempts        INTEGER NOT NULL DEFAULT 3,
    run_after           INTEGER NOT NULL,
    lease_token         TEXT,
    lease_owner         TEXT,
    lease_expires       INTEGER,
    cancel_requested_at INTEGER,
    dedupe_key          TEXT,
    -- the dedupe key while the job is active; NULLs never collide in the UNIQUE index.
    dedupe_active       TEXT GENERATED ALWAYS AS
        (CASE WHEN status IN ('queued', 'running') THEN dedupe_key END) VIRTUAL,
    once_key            TEXT UNIQUE,
    submit_token        TEXT UNIQUE,
    result_attempt      INTEGER NOT NULL DEFAULT 0,
    "rows"              INTEGER NOT NULL DEFAULT 0,
    error               TEXT    NOT NULL DEFAULT '',
    retry_of            INTEGER,
    submitted_by        TEXT    NOT NULL DEFAULT '',
    origin              TEXT    NOT NULL DEFAULT '',
    timeout_ms          INTEGER NOT NULL DEFAULT 0,
    created_at          INTEGER NOT NULL,
    started_at          INTEGER,
    finished_at         INTEGER
);
CREATE UNIQUE INDEX rpt_jobs_dedupe_active ON rpt_jobs (dedupe_active);
CREATE INDEX rpt_jobs_claim ON rpt_jobs (status, neg_priority, run_after, id);
CREATE INDEX rpt_jobs_lease ON rpt_jobs (status, lease_expires);
CREATE INDEX rpt_jobs_report ON rpt_jobs (report, id);

CREATE TABLE rpt_job_events (
    seq     INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id  INTEGER NOT NULL REFERENCES rpt_jobs (id) ON DELETE CASCADE,
    report  TEXT    NOT NULL,
    event   TEXT    NOT NULL,
    status  TEXT    NOT NULL,
    attempt INTEGER NOT NULL DEFAULT 0,
    agent   TEXT    NOT NULL DEFAULT '',
    "rows"  INTEGER NOT NULL DEFAULT 0,
    error   TEXT    NOT NULL DEFAULT '',
    at      INTEGER NOT NULL
);
CREATE INDEX rpt_job_events_job ON rpt_job_events (job_id, seq);

-- One row per allowed concurrent run of a scope; a slot is free when job_id IS NULL.
CREATE TABLE rpt_slots (
    scope       TEXT    NOT NULL,
    n           INTEGER NOT NULL,
    job_id      INTEGER,
    lease_token TEXT,
    PRIMARY KEY (scope, n)
);
CREATE INDEX rpt_slots_job ON rpt_slots (job_id);

CREATE TABLE rpt_agents (
    name      TEXT    PRIMARY KEY,
    host      TEXT    NOT NULL DEFAULT '',
    labels    TEXT    NOT NULL DEFAULT '{}',
    sources   TEXT    NOT NULL DEFAULT '[]',
    version   TEXT    NOT NULL DEFAULT '',
    running   INTEGER NOT NULL DEFAULT 0,
    draining  INTEGER NOT NULL DEFAULT 0,
    last_seen INTEGER NOT NULL
);

CREATE TABLE rpt_results (
    job_id  INTEGER NOT NULL REFERENCES rpt_jobs (id) ON DELETE CASCADE,
    attempt INTEGER NOT NULL,
    seq     INTEGER NOT NULL,
    data    BLOB    NOT NULL,
    PRIMARY KEY (job_id, attempt, seq)
);

-- Paused reports and sources (kind 'report' or 'source'): claim skips their jobs.
CREATE TABLE rpt_pauses (
    kind       TEXT    NOT NULL CHECK (kind IN ('report', 'source')),
    name       TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (kind, name)
);

-- +goose Down
DROP TABLE rpt_pauses;
DROP TABLE rpt_results;
DROP TABLE rpt_agents;
DROP TABLE rpt_slots;
DROP TABLE rpt_job_events;
DROP TABLE rpt_jobs;
