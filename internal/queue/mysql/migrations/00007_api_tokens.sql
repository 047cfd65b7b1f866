-- API tokens: who may call the HTTP API, and as what role. Only the sha256 of a token
-- is kept, never the token. A new table only, so an older rpt keeps working on the
-- same queue during a rolling update.

-- +goose Up
CREATE TABLE rpt_api_tokens (
    id           BIGINT       NOT NULL AUTO_INCREMENT PRIMARY KEY,
    name         VARCHAR(64)  NOT NULL,
    token_sha256 CHAR(64)     NOT NULL,
    role         VARCHAR(16)  NOT NULL,
    created_at   DATETIME(6)  NOT NULL,
    last_used_at DATETIME(6)  NULL,
    revoked_at   DATETIME(6)  NULL,
    UNIQUE KEY rpt_api_tokens_name (name),
    UNIQUE KEY rpt_api_tokens_sha256 (token_sha256)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- +goose Down
DROP TABLE rpt_api_tokens;
