-- Published definitions: the report definitions agents trust. An agent runs a job's
-- snapshot only when its sha256 is here or in the agent's own catalogue. Admins write
-- this table (rpt reports publish); submitters' grants do not include it. A new table
-- only, so an older rpt keeps working on the same queue during a rolling update.

-- +goose Up
CREATE TABLE rpt_definitions (
    sha256       CHAR(64)     NOT NULL,
    report       VARCHAR(255) NOT NULL,
    definition   MEDIUMBLOB   NOT NULL,
    published_by VARCHAR(255) NOT NULL DEFAULT '',
    published_at DATETIME(6)  NOT NULL,
    PRIMARY KEY (sha256),
    KEY rpt_definitions_report (report, published_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- +goose Down
DROP TABLE rpt_definitions;
