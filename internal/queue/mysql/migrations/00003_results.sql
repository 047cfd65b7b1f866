-- Results: where each job's result lives and how many chunks it has. Both are written
-- by the fenced completion. Additive only (instant ADD COLUMNs of nullable columns), so
-- an older rpt keeps working on the same queue during a rolling update; NULL (older
-- jobs, older agents) means "the queue database, chunk count not recorded".

-- +goose Up
ALTER TABLE rpt_jobs ADD COLUMN result_store VARCHAR(64) NULL, ADD COLUMN result_chunks INT NULL;

-- +goose Down
ALTER TABLE rpt_jobs DROP COLUMN result_chunks, DROP COLUMN result_store;
