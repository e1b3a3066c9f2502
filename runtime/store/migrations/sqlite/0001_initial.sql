-- relo store, schema version 1, SQLite.
--
-- Times are RFC 3339 UTC text with nine fractional digits (2026-11-03T12:00:00.000000000Z):
-- fixed width, so text order is time order. Digests and hashes are lowercase hex.
-- Keep this file and ../postgres/0001_initial.sql in step: same tables, same columns.

-- Plugins, content-addressed: the digest is the sha256 of `bytes`.
CREATE TABLE plugins (
    digest      TEXT PRIMARY KEY CHECK (length(digest) = 64),
    name        TEXT NOT NULL,
    version     TEXT NOT NULL,
    bytes       BLOB NOT NULL,
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
    id          INTEGER PRIMARY KEY,
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
    seq       INTEGER PRIMARY KEY CHECK (seq >= 1),   -- gapless from 1
    scope     TEXT NOT NULL,                          -- a run id or `control`
    scope_seq INTEGER NOT NULL CHECK (scope_seq >= 1), -- gapless from 1 per scope
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
    id         INTEGER PRIMARY KEY,
    size       INTEGER NOT NULL CHECK (size >= 0),
    root       TEXT NOT NULL CHECK (length(root) = 64),
    note       TEXT NOT NULL,      -- the C2SP signed note
    key_id     TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE INDEX checkpoints_by_size ON checkpoints (size);

-- Defence in depth: refuse changes to the append-only tables. Whoever holds the file can
-- drop these triggers; the hash chains and signed checkpoints are what detect tampering.
CREATE TRIGGER evidence_entries_no_update BEFORE UPDATE ON evidence_entries
BEGIN SELECT RAISE(ABORT, 'evidence_entries is append-only: UPDATE refused'); END;
CREATE TRIGGER evidence_entries_no_delete BEFORE DELETE ON evidence_entries
BEGIN SELECT RAISE(ABORT, 'evidence_entries is append-only: DELETE refused'); END;
CREATE TRIGGER checkpoints_no_update BEFORE UPDATE ON checkpoints
BEGIN SELECT RAISE(ABORT, 'checkpoints is append-only: UPDATE refused'); END;
CREATE TRIGGER checkpoints_no_delete BEFORE DELETE ON checkpoints
BEGIN SELECT RAISE(ABORT, 'checkpoints is append-only: DELETE refused'); END;
CREATE TRIGGER approvals_no_update BEFORE UPDATE ON approvals
BEGIN SELECT RAISE(ABORT, 'approvals is append-only: UPDATE refused'); END;
CREATE TRIGGER approvals_no_delete BEFORE DELETE ON approvals
BEGIN SELECT RAISE(ABORT, 'approvals is append-only: DELETE refused'); END;
CREATE TRIGGER revocations_no_update BEFORE UPDATE ON revocations
BEGIN SELECT RAISE(ABORT, 'revocations is append-only: UPDATE refused'); END;
CREATE TRIGGER revocations_no_delete BEFORE DELETE ON revocations
BEGIN SELECT RAISE(ABORT, 'revocations is append-only: DELETE refused'); END;
