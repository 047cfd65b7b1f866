-- Published definitions: the report definitions agents trust. An agent runs a job's
-- snapshot only when its sha256 is here or in the agent's own catalogue (rpt reports
-- publish writes it). A new table only, so an older rpt keeps working on the same file.

-- +goose Up
CREATE TABLE rpt_definitions (
    sha256       TEXT    NOT NULL PRIMARY KEY,
    report       TEXT    NOT NULL,
    definition   BLOB    NOT NULL,
    published_by TEXT    NOT NULL DEFAULT '',
    published_at INTEGER NOT NULL
);
CREATE INDEX rpt_definitions_report ON rpt_definitions (report, published_at);

-- +goose Down
DROP TABLE rpt_definitions;
