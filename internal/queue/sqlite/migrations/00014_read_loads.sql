-- How old the warehouse copy a report read was: the last loads of the ETLs that fill
-- the tables it reads (its definition's needs: and loaded_by:), as a JSON array of
-- {etl, at} written by the completion. Nullable, so an older rpt keeps completing
-- jobs on the same queue during a rolling update (its jobs just say nothing of it).

-- +goose Up
ALTER TABLE rpt_jobs ADD COLUMN read_loads TEXT;

-- +goose Down
ALTER TABLE rpt_jobs DROP COLUMN read_loads;
