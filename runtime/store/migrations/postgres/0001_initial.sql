-- relo store, schema version 1, PostgreSQL.
--
-- Times are RFC 3339 UTC text with nine fractional digits (2026-11-03T12:00:00.000000000Z):
-- fixed width, so text order is time order. Digests and hashes are lowercase hex.
-- Keep this file and ../sqlite/0001_initial.sql in step: same tables, same columns.
-- Everything is created in the first schema of the connection's search_path.

-- Plugins, content-addressed: the digest is the sha256 of `bytes`.
CREATE TABLE plugins (
    digest      TEXT PRIMARY KEY CHECK (length(digest) = 64),
    name        TEXT NOT NULL,
    version     TEXT NOT NULL,
    bytes       BYTEA NOT NULL,
    attestation TEXT NOT NULL,      -- the signed attestation, JSON
    added_at    TEXT NOT NULL,
    UNIQUE (name, version)          -- `uses: name@version` resolves to one digest
);

-- Operator approvals of a plugin digest; append-only (a revocation is a new row below).
CREATE TABLE approvals (
    id          TEXT PRIMARY KEY,
    digest      TEXT NOT NULL REFERENCES plugins (digest),
    approved_by TEXT NOT NULL,      -- the person
    document    TEXT NOT NULL,      -- the signed approval, JSON, destinations resolved
    created_at  TEXT NOT NULL,
    expires_at  TEXT
);
CREATE INDEX approvals_by_digest ON approvals (digest);

-- Revoked approvals; append-only. A NULL approval_id revokes every approval of the digest.
CREATE TABLE revocations (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    digest      TEXT NOT NULL,
    approval_id TEXT REFERENCES approvals (id),
    reason      TEXT NOT NULL,
    revoked_by  TEXT NOT NULL,
    revoked_at  TEXT NOT NULL
);
CREATE INDEX revocations_by_digest ON revocations (digest);

-- Blocked digests: refused before compilation whatever their signature or approval.
CREATE TABLE blocks (
    digest      TEXT PRIMARY KEY,
    reason      TEXT NOT NULL,
    blocked_by  TEXT NOT NULL,
    blocked_at  TEXT NOT NULL
);

CREATE TABLE runs (
    id           TEXT PRIMARY KEY,
    workflow     TEXT NOT NULL,     -- the workflow's name
    state        TEXT NOT NULL,     -- pending, running, waiting-approval, succeeded, failed, cancelled
    requested_by TEXT NOT NULL,     -- the person whose key signed the request
    request      TEXT NOT NULL,     -- the signed run request, JSON
    created_at   TEXT NOT NULL,
    updated_at   TEXT NOT NULL,
    finished_at  TEXT
);
CREATE INDEX runs_by_state ON runs (state);

CREATE TABLE steps (
    run_id           TEXT NOT NULL REFERENCES runs (id),
    step_id          TEXT NOT NULL,
    state            TEXT NOT NULL,  -- pending, claimed, running, succeeded, failed, skipped
    attempt          INTEGER NOT NULL DEFAULT 0,
    plugin_digest    TEXT,
    lease_owner      TEXT,           -- the instance that claimed it
    lease_expires_at TEXT,
    output           TEXT,           -- output JSON once succeeded
    error            TEXT,
    started_at       TEXT,
    finished_at      TEXT,
    PRIMARY KEY (run_id, step_id)
);
CREATE INDEX steps_by_state ON steps (state, lease_expires_at);

-- The evidence log: one global sequence, one hash chain per scope.
CREATE TABLE evidence_entries (
    seq       BIGINT PRIMARY KEY CHECK (seq >= 1),    -- gapless from 1
    scope     TEXT NOT NULL,                          -- a run id or `control`
    scope_seq BIGINT NOT NULL CHECK (scope_seq >= 1), -- gapless from 1 per scope
    step_id   TEXT,
    kind      TEXT NOT NULL,
    time      TEXT NOT NULL,
    body      TEXT NOT NULL,                          -- canonical JSON
    prev_hash TEXT NOT NULL CHECK (length(prev_hash) = 64),
    hash      TEXT NOT NULL CHECK (length(hash) = 64),
    UNIQUE (scope, scope_seq)
);

-- Signed checkpoints of the Merkle tree over evidence_entries.hash in seq order.
CREATE TABLE checkpoints (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    size       BIGINT NOT NULL CHECK (size >= 0),
    root       TEXT NOT NULL CHECK (length(root) = 64),
    note       TEXT NOT NULL,      -- the C2SP signed note
    key_id     TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE INDEX checkpoints_by_size ON checkpoints (size);

-- Defence in depth: refuse changes to the append-only tables. A superuser bypasses these
-- with `SET session_replication_role = replica`; the hash chains and signed checkpoints
-- are what detect tampering.
CREATE FUNCTION relo_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP;
END;
$$;

CREATE TRIGGER evidence_entries_append_only
    BEFORE UPDATE OR DELETE OR TRUNCATE ON evidence_entries
    FOR EACH STATEMENT EXECUTE FUNCTION relo_refuse_change();
CREATE TRIGGER checkpoints_append_only
    BEFORE UPDATE OR DELETE OR TRUNCATE ON checkpoints
    FOR EACH STATEMENT EXECUTE FUNCTION relo_refuse_change();
CREATE TRIGGER approvals_append_only
    BEFORE UPDATE OR DELETE OR TRUNCATE ON approvals
    FOR EACH STATEMENT EXECUTE FUNCTION relo_refuse_change();
CREATE TRIGGER revocations_append_only
    BEFORE UPDATE OR DELETE OR TRUNCATE ON revocations
    FOR EACH STATEMENT EXECUTE FUNCTION relo_refuse_change();
