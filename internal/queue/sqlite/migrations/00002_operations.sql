-- Operations: drain requests and an index for retention. Additive only, so an older rpt
-- keeps working on the same file during an update.

-- +goose Up
-- Set by `rpt agents drain`; the agent reads it back, and its heartbeat never clears it.
ALTER TABLE rpt_agents ADD COLUMN drain_requested INTEGER NOT NULL DEFAULT 0;
-- Prune finds finished jobs by age.
CREATE INDEX rpt_jobs_finished ON rpt_jobs (status, finished_at);

-- +goose Down
DROP INDEX rpt_jobs_finished;
ALTER TABLE rpt_agents DROP COLUMN drain_requested;
