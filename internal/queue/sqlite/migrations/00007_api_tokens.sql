-- API tokens: who may call the HTTP API, and as what role. Only the sha256 of a token
-- is kept, never the token. A new table only, so an older rpt keeps working on the
-- same file during an update.

-- +goose Up
CREATE TABLE rpt_api_tokens (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    name         TEXT    NOT NULL UNIQUE,
    token_sha256 TEXT    NOT NULL UNIQUE,
    role         TEXT    NOT NULL,
    created_at   INTEGER NOT NULL,
    last_used_at INTEGER,
    revoked_at   INTEGER
);

-- +goose Down
DROP TABLE rpt_api_tokens;
