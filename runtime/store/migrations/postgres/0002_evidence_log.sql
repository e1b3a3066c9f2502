-- relo store, schema version 2, PostgreSQL: the identity of the evidence log.
-- Keep this file and ../sqlite/0002_evidence_log.sql in step.

-- One row: the log's origin (`relo.dev/evidence/<id>`), which every checkpoint note
-- names. Made at first use; never changed.
CREATE TABLE evidence_log (
    id         BIGINT PRIMARY KEY CHECK (id = 1),
    origin     TEXT NOT NULL,
    created_at TEXT NOT NULL
);

CREATE TRIGGER evidence_log_append_only
    BEFORE UPDATE OR DELETE OR TRUNCATE ON evidence_log
    FOR EACH STATEMENT EXECUTE FUNCTION relo_refuse_change();
