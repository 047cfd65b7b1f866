-- Settings: small named values every process on the queue must agree on, such as the
-- embedded broker's generated credentials. A new table only, so an older rpt keeps
-- working on the same queue during a rolling update.

-- +goose Up
CREATE TABLE rpt_settings (
    name       VARCHAR(128) NOT NULL PRIMARY KEY,
    value      TEXT         NOT NULL,
    created_at DATETIME(6)  NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- +goose Down
DROP TABLE rpt_settings;
