-- The queue schema for MySQL 8 and MariaDB 10.6+. Every later migration is additive
-- (new tables, columns, indexes) so two versions of rpt can share a queue during a
-- rolling update. Times are DATETIME(6) in UTC, written by the database (UTC_TIMESTAMP(6)).

-- +goose Up
CREATE TABLE rpt_jobs (
    id                  BIGINT       NOT NULL AUTO_INCREMENT,
    kind                VARCHAR(16)  NOT NULL,
    report              VARCHAR(255) NOT NULL,
    definition          MEDIUMBLOB   NOT NULL,
    definition_sha256   CHAR(64)     NOT NULL DEFAULT '',
    params              LONGTEXT     NOT NULL,
    source              VARCHAR(255) NOT NULL DEFAULT '',
    route               LONGTEXT     NULL,
    scopes              LONGTEXT     NULL,
    -- priority stored negated so the claim index is all ascending (MariaDB < 10.8
    -- ignores DESC in an index) and still serves "higher priority first".
    neg_priority        INT          NOT NULL DEFAULT 0,
    status              VARCHAR(16)  NOT NULL,
    attempt             INT          NOT NULL DEFAULT 0,
    failures            INT          NOT NULL DEFAULT 0,
    max_attempts        INT          NOT NULL,
    run_after           DATETIME(6)  NOT NULL,
    lease_token         CHAR(32)     NULL,
    lease_owner         VARCHAR(255) NULL,
    lease_expires       DATETIME(6)  NULL,
    cancel_requested_at DATETIME(6)  NULL,
    dedupe_key          VARCHAR(255) NULL,
    -- The dedupe key while the job is active, else NULL: the UNIQUE index lets only one
    -- active job hold a key and never collides on NULLs.
    dedupe_active       VARCHAR(255) AS (CASE WHEN status IN ('queued', 'running') THEN dedupe_key END) STORED,
    once_key            VARCHAR(255) NULL,
    submit_token        VARCHAR(255) NULL,
    result_attempt      INT          NOT NULL DEFAULT 0,
    `rows`              BIGINT       NOT NULL DEFAULT 0,
    error               TEXT         NULL,
    retry_of            BIGINT       NULL,
    submitted_by        VARCHAR(255) NOT NULL DEFAULT '',
    origin              VARCHAR(32)  NOT NULL DEFAULT '',
    timeout_ms          BIGINT       NOT NULL DEFAULT 0,
    created_at          DATETIME(6)  NOT NULL,
    started_at          DATETIME(6)  NULL,
    finished_at         DATETIME(6)  NULL,
    PRIMARY KEY (id),
    KEY rpt_jobs_claim (status, neg_priority, run_after, id),
    KEY rpt_jobs_lease (status, lease_expires),
    KEY rpt_jobs_report (report, id),
    UNIQUE KEY rpt_jobs_dedupe_active (dedupe_active),
    UNIQUE KEY rpt_jobs_once_key (once_key),
    UNIQUE KEY rpt_jobs_submit_token (submit_token)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE rpt_job_events (
    seq     BIGINT       NOT NULL AUTO_INCREMENT,
    job_id  BIGINT       NOT NULL,
    report  VARCHAR(255) NOT NULL,
    event   VARCHAR(32)  NOT NULL,
    status  VARCHAR(16)  NOT NULL,
    attempt INT          NOT NULL DEFAULT 0,
    agent   VARCHAR(255) NOT NULL DEFAULT '',
    `rows`  BIGINT       NOT NULL DEFAULT 0,
    error   TEXT         NULL,
    at      DATETIME(6)  NOT NULL,
    PRIMARY KEY (seq),
    KEY rpt_job_events_job (job_id, seq)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- One row per allowed concurrent run of a scope (report:NAME, source:NAME, group:NAME);
-- a slot is free when job_id IS NULL and n <= the job's limit for the scope.
CREATE TABLE rpt_slots (
    scope       VARCHAR(255) NOT NULL,
    n           INT          NOT NULL,
    job_id      BIGINT       NULL,
    lease_token CHAR(32)     NULL,
    PRIMARY KEY (scope, n),
    KEY rpt_slots_job (job_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE rpt_agents (
    name      VARCHAR(255) NOT NULL,
    host      VARCHAR(255) NOT NULL DEFAULT '',
    labels    LONGTEXT     NULL,
    sources   LONGTEXT     NULL,
    version   VARCHAR(64)  NOT NULL DEFAULT '',
    running   INT          NOT NULL DEFAULT 0,
    draining  TINYINT(1)   NOT NULL DEFAULT 0,
    last_seen DATETIME(6)  NOT NULL,
    PRIMARY KEY (name)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE rpt_results (
    job_id  BIGINT   NOT NULL,
    attempt INT      NOT NULL,
    seq     INT      NOT NULL,
    data    LONGBLOB NOT NULL,
    PRIMARY KEY (job_id, attempt, seq)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- Paused reports and sources (kind 'report' or 'source'): the claim skips their jobs.
CREATE TABLE rpt_pauses (
    kind       VARCHAR(16)  NOT NULL,
    name       VARCHAR(255) NOT NULL,
    created_at DATETIME(6)  NOT NULL,
    PRIMARY KEY (kind, name)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- +goose Down
DROP TABLE rpt_pauses;
DROP TABLE rpt_results;
DROP TABLE rpt_agents;
DROP TABLE rpt_slots;
DROP TABLE rpt_job_events;
DROP TABLE rpt_jobs;
