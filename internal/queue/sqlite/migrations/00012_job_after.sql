-- Job dependencies: job_id waits for after_id (its prerequisite). A dependent is queued
-- not due while a prerequisite has not succeeded; the transaction that ends a
-- prerequisite makes its dependents due, or ends them. A new table only, so an older
-- rpt keeps working on the same queue during a rolling update.

-- +goose Up
CREATE TABLE rpt_job_after (
    job_id   INTEGER NOT NULL REFERENCES rpt_jobs (id) ON DELETE CASCADE,
    after_id INTEGER NOT NULL REFERENCES rpt_jobs (id) ON DELETE CASCADE,
    PRIMARY KEY (job_id, after_id)
) WITHOUT ROWID;
CREATE INDEX rpt_job_after_after ON rpt_job_after (after_id, job_id);

-- +goose Down
DROP TABLE rpt_job_after;
