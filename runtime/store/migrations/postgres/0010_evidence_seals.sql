-- relo store, schema version 10, PostgreSQL: batch seals. Each write transaction of the
-- evidence log also stores one row here: a signature by the evidence key over the log's
-- size after the batch and the RFC 6962 root at that size (relo-evidence's
-- `SealStatement`), chained to the previous seal by `previous` (SHA-256 of its signature).
-- `id` counts seals from 1 without gaps; `first_seq`..`size` are the entries the batch
-- appended; `frontier` is the tree's compact range at `size` (`Frontier::to_text`), so
-- the next seal extends it. A reader trusts an entry only if a seal or a checkpoint covers
-- it. Keep this file and ../sqlite/0010_evidence_seals.sql in step.
CREATE TABLE evidence_seals (
    id        BIGINT PRIMARY KEY,
    first_seq BIGINT NOT NULL,
    size      BIGINT NOT NULL UNIQUE,
    root      TEXT   NOT NULL,
    previous  TEXT   NOT NULL,
    frontier  TEXT   NOT NULL,
    key_id    TEXT   NOT NULL,
    signature TEXT   NOT NULL
);
CREATE TRIGGER evidence_seals_append_only
    BEFORE UPDATE OR DELETE OR TRUNCATE ON evidence_seals
    FOR EACH STATEMENT EXECUTE FUNCTION relo_refuse_change();
