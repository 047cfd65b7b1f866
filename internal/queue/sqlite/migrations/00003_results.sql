-- Results: where each job's result lives and how many chunks it has. Both are written
-- by the fenced completion. Additive only, so an older rpt keeps working on the same
-- file during an update; NULL (older jobs, older agents) means "the queue database,
-- chunk count not recorded".

-- +goose Up
ALTER TABLE rpt_jobs ADD COLUMN result_store TEXT;
ALTER TABLE rpt_jobs ADD COLUMN result_chunks INTEGER;

-- +goose Down
ALTER TABLE rpt_jobs DROP COLUMN result_chunks;
ALTER TABLE rpt_jobs DROP COLUMN result_store;
