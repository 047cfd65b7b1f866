-- Operations: drain requests and an index for retention. Additive only (an instant
-- ADD COLUMN and an online index build), so an older rpt keeps working on the same
-- queue during a rolling update.

-- +goose Up
-- Set by `rpt agents drain`; the agent reads it back, and its heartbeat never clears it.
ALTER TABLE rpt_agents ADD COLUMN drain_requested TINYINT(1) NOT NULL DEFAULT 0;
-- Prune finds finished jobs by age.
CREATE INDEX rpt_jobs_finished ON rpt_jobs (status, finished_at);

-- +goose Down
DROP INDEX rpt_jobs_finished ON rpt_jobs;
ALTER TABLE rpt_agents DROP COLUMN drain_requested;
