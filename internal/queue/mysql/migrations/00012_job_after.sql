-- Job dependencies: job_id waits for after_id (its prerequisite). A dependent is queued
-- not due while a prerequisite has not succeeded; the transaction that ends a
-- prerequisite makes its dependents due, or ends them. A new table only, so an older
-- rpt keeps working on the same queue during a rolling update.

-- +goose Up
CREATE TABLE rpt_job_after (
    job_id   BIGINT NOT NULL,
    after_id BIGINT NOT NULL,
    PRIMARY KEY (job_id, after_id),
    KEY rpt_job_after_after (after_id, job_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- +goose Down
DROP TABLE rpt_job_after;
