-- Deliveries: where a report job's result goes once it succeeds (e-mail, webhook), and
-- whether it went. The deliver job that sends one is an ordinary job of kind deliver.
-- A new table only, so an older rpt keeps working on the same queue during a rolling
-- update (it neither adds nor sends deliveries).

-- +goose Up
CREATE TABLE rpt_deliveries (
    id             BIGINT        NOT NULL AUTO_INCREMENT PRIMARY KEY,
    job_id         BIGINT        NOT NULL,
    target         VARCHAR(1024) NOT NULL,
    target_sha256  CHAR(64)      NOT NULL,
    state          VARCHAR(16)   NOT NULL DEFAULT 'pending',
    deliver_job_id BIGINT        NULL,
    message_id     VARCHAR(255)  NULL,
    attempts       INT           NOT NULL DEFAULT 0,
    sent_at        DATETIME(6)   NULL,
    created_at     DATETIME(6)   NOT NULL,
    UNIQUE KEY rpt_deliveries_target (job_id, target_sha256),
    KEY rpt_deliveries_state (state, id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- +goose Down
DROP TABLE rpt_deliveries;
