-- relo store, schema version 10, SQLite: batch seals. Each write transaction of the
-- evidence log also stores one row here: a signature by the evidence key over the log's
-- size after the batch and the RFC 6962 root at that size (relo-evidence's
-- `SealStatement`), chained to the previous seal by `previous` (SHA-256 of its signature).
-- `id` counts seals from 1 without gaps; `first_seq`..`size` are the entries the batch
-- appended; `frontier` is the tree's compact range at `size` (`Frontier::to_text`), so
-- the next seal extends it. A reader trusts an entry only if a seal or a checkpoint covers
-- it. Keep this file and ../postgres/0010_evidence_seals.sql in step.
CREATE TABLE evidence_seals (
    id        INTEGER PRIMARY KEY,
    first_seq BIGINT NOT NULL,
    size      BIGINT NOT NULL UNIQUE,
    root      TEXT   NOT NULL,
    previous  TEXT   NOT NULL,
    frontier  TEXT   NOT NULL,
    key_id    TEXT   NOT NULL,
    signature TEXT   NOT NULL
);
CREATE TRIGGER evidence_seals_no_update BEFORE UPDATE ON evidence_seals
BEGIN
    SELECT RAISE(ABORT, 'evidence_seals is append-only: UPDATE refused');
END;
CREATE TRIGGER evidence_seals_no_delete BEFORE DELETE ON evidence_seals
BEGIN
    SELECT RAISE(ABORT, 'evidence_seals is append-only: DELETE refused');
END;
