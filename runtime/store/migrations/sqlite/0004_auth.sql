-- relo store, schema version 4, SQLite: the server's users and refresh tokens.
-- Keep this file and ../postgres/0004_auth.sql in step.

-- People who log in to the server. `password_hash` is an argon2id PHC string; `roles`
-- is a JSON array of role names. A disabled user cannot log in or refresh.
CREATE TABLE users (
    name          TEXT PRIMARY KEY,
    password_hash TEXT NOT NULL,
    roles         TEXT NOT NULL,
    created_at    TEXT NOT NULL,
    disabled      BOOLEAN NOT NULL DEFAULT FALSE
);

-- Refresh tokens, by the sha256 (lowercase hex) of the token; the token itself is never
-- stored. Each login starts a family; each refresh marks the presented token used and
-- adds the next one to the same family. Presenting a used or revoked token revokes the
-- whole family.
CREATE TABLE refresh_tokens (
    token_hash TEXT PRIMARY KEY CHECK (length(token_hash) = 64),
    family_id  TEXT NOT NULL,
    user_name  TEXT NOT NULL REFERENCES users (name),
    issued_at  TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    used_at    TEXT,
    revoked_at TEXT
);
CREATE INDEX refresh_tokens_by_family ON refresh_tokens (family_id);
CREATE INDEX refresh_tokens_by_user ON refresh_tokens (user_name);
