-- Where and when a report's data was read: the source's name and kind (its
-- driver: plexws, odbc, mysql, sqlite, sqlserver) and when its query started, written
-- by the completion. Nullable columns only, so an older rpt keeps completing jobs on
-- the same queue during a rolling update (its jobs just say nothing about the read).

-- +goose Up
ALTER TABLE rpt_jobs ADD COLUMN read_source VARCHAR(128) NULL;
ALTER TABLE rpt_jobs ADD COLUMN read_kind VARCHAR(128) NULL;
ALTER TABLE rpt_jobs ADD COLUMN read_at DATETIME(6) NULL;

-- +goose Down
ALTER TABLE rpt_jobs DROP COLUMN read_at;
ALTER TABLE rpt_jobs DROP COLUMN read_kind;
ALTER TABLE rpt_jobs DROP COLUMN read_source;
