-- Schedules kept in the queue database (rpt schedules): a report, its parameters as
-- given, deliveries, a cron expression and zone; rpt cron run ticks them, each
-- occurrence queued once through the once key "schedule:NAME@TIME". A new table only,
-- so an older rpt keeps working on the same queue during a rolling update.

-- +goose Up
CREATE TABLE rpt_schedules (
    id              BIGINT        NOT NULL AUTO_INCREMENT PRIMARY KEY,
    name            VARCHAR(64)   NOT NULL,
    cron            VARCHAR(255)  NOT NULL,
    timezone        VARCHAR(64)   NOT NULL,
    report          VARCHAR(255)  NOT NULL,
    params          TEXT          NOT NULL,
    deliver         TEXT          NOT NULL,
    missed          VARCHAR(8)    NOT NULL DEFAULT 'skip',
    held            BOOLEAN       NOT NULL DEFAULT FALSE,
    created_by      VARCHAR(255)  NOT NULL DEFAULT '',
    created_at      DATETIME(6)   NOT NULL,
    updated_at      DATETIME(6)   NOT NULL,
    last_occurrence DATETIME(6)   NULL,
    last_job_id     BIGINT        NULL,
    UNIQUE KEY rpt_schedules_name (name)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- +goose Down
DROP TABLE rpt_schedules;
