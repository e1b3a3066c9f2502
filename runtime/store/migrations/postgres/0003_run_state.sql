-- relo store, schema version 3, PostgreSQL: what a run needs to wait for
-- approvals, queue behind its concurrency group, hand its workspace over, and resume.
-- Keep this file and ../sqlite/0003_run_state.sql in step.

-- The workflow text as requested (its sha256 is in the signed request, so an edited
-- text is detected on resume), the run's concurrency group, and its newest workspace
-- snapshot. A run waiting for its group's turn is in state 'queued'.
ALTER TABLE runs ADD COLUMN workflow_text TEXT;
ALTER TABLE runs ADD COLUMN concurrency_group TEXT;
ALTER TABLE runs ADD COLUMN workspace_digest TEXT;
CREATE INDEX runs_by_group ON runs (concurrency_group, state);

-- Signed approvals of a run's approval gates; append-only. The runner verifies each
-- envelope again before counting it, so an edited row is refused, not trusted.
CREATE TABLE gate_approvals (
    run_id      TEXT NOT NULL REFERENCES runs (id),
    step_id     TEXT NOT NULL,
    approver    TEXT NOT NULL,      -- the person, as the signing key says
    key_id      TEXT NOT NULL,
    envelope    TEXT NOT NULL,      -- the signed approval (DSSE), JSON
    approved_at TEXT NOT NULL,
    PRIMARY KEY (run_id, step_id, approver)
);

-- Workspace snapshots: tar archives, content-addressed; each run lists its own in order
-- (seq 0 is the workspace as the run began).
CREATE TABLE snapshots (
    digest     TEXT PRIMARY KEY CHECK (length(digest) = 64),
    bytes      BYTEA NOT NULL,
    created_at TEXT NOT NULL
);
CREATE TABLE run_snapshots (
    run_id     TEXT NOT NULL REFERENCES runs (id),
    seq        BIGINT NOT NULL,
    step_id    TEXT,                -- the step after which it was taken; NULL for the start
    digest     TEXT NOT NULL REFERENCES snapshots (digest),
    created_at TEXT NOT NULL,
    PRIMARY KEY (run_id, seq)
);

-- What steps logged (already redacted by the sandbox), per attempt.
CREATE TABLE step_logs (
    run_id  TEXT NOT NULL REFERENCES runs (id),
    step_id TEXT NOT NULL,
    attempt BIGINT NOT NULL,
    seq     BIGINT NOT NULL,
    source  TEXT NOT NULL,          -- step or host
    level   TEXT NOT NULL,
    message TEXT NOT NULL,
    PRIMARY KEY (run_id, step_id, attempt, seq)
);

CREATE TRIGGER gate_approvals_append_only
    BEFORE UPDATE OR DELETE OR TRUNCATE ON gate_approvals
    FOR EACH STATEMENT EXECUTE FUNCTION relo_refuse_change();
