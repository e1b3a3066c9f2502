-- relo store, schema version 5, PostgreSQL: the server's API tokens.
-- Keep this file and ../sqlite/0005_api_tokens.sql in step.

-- Long-lived, scoped credentials a user makes for scripts and CI. Only the sha256
-- (lowercase hex) of the token's random bytes is stored, never the token. `scopes` is
-- a JSON array of permission names; what a token may do is its scopes intersected with
-- the current permissions of its user's roles, so the store keeps no role copy here.
CREATE TABLE api_tokens (
    id         TEXT PRIMARY KEY,
    token_hash TEXT NOT NULL UNIQUE CHECK (length(token_hash) = 64),
    user_name  TEXT NOT NULL REFERENCES users (name),
    name       TEXT NOT NULL,
    scopes     TEXT NOT NULL,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    revoked_at TEXT
);
CREATE INDEX api_tokens_by_user ON api_tokens (user_name);
