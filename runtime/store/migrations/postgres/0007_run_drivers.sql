-- relo store, schema version 7: who drives each run. A runner holds a run under a lease
-- (`driver`, `driver_expires_at`) while it carries the run on, renewing it; when the
-- instance dies, the lease runs out and another instance picks the run up. Workflows
-- registered with the server are kept by the sha256 of their text. Keep the SQLite and
-- PostgreSQL files of this version in step.
ALTER TABLE runs ADD COLUMN driver TEXT;
ALTER TABLE runs ADD COLUMN driver_expires_at TEXT;
CREATE INDEX runs_by_requester ON runs (requested_by, state);

CREATE TABLE workflows (
    sha256        TEXT PRIMARY KEY,
    name          TEXT NOT NULL,
    text          TEXT NOT NULL,
    registered_by TEXT NOT NULL,
    registered_at TEXT NOT NULL
);
CREATE INDEX workflows_by_name ON workflows (name, registered_at);

-- `/metrics` counts denials and limit hits by kind across every instance.
CREATE INDEX evidence_by_kind ON evidence_entries (kind);
