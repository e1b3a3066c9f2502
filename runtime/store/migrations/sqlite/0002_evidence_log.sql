-- relo store, schema version 2, SQLite: the identity of the evidence log.
-- Keep this file and ../postgres/0002_evidence_log.sql in step.

-- One row: the log's origin (`relo.dev/evidence/<id>`), which every checkpoint note
-- names. Made at first use; never changed.
CREATE TABLE evidence_log (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    origin     TEXT NOT NULL,
    created_at TEXT NOT NULL
);

CREATE TRIGGER evidence_log_no_update BEFORE UPDATE ON evidence_log
BEGIN
    SELECT RAISE(ABORT, 'evidence_log is append-only: UPDATE refused');
END;
CREATE TRIGGER evidence_log_no_delete BEFORE DELETE ON evidence_log
BEGIN
    SELECT RAISE(ABORT, 'evidence_log is append-only: DELETE refused');
END;
