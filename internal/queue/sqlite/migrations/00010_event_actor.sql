-- Who caused an event: the submitter of a queued job (a retry's is who retried), who
-- asked for a cancel. Empty for what the agents do. A nullable column only, so an older
-- rpt keeps writing events on the same queue during a rolling update.

-- +goose Up
ALTER TABLE rpt_job_events ADD COLUMN actor TEXT;

-- +goose Down
ALTER TABLE rpt_job_events DROP COLUMN actor;
