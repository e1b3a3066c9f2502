-- relo store, schema version 11, PostgreSQL: workspace snapshots kept per run, in chunks.
-- A snapshot was one row per sha256, shared by every run that saved the same archive;
-- it is now the run's own: `run_snapshots` records its digest, size and chunk count,
-- and `snapshot_chunks` holds its bytes in 1 MiB pieces (relo-store's
-- `SNAPSHOT_CHUNK_BYTES`: every chunk but the last is exactly that long), so a snapshot
-- is written and read a chunk at a time, and each chunk can later be sealed on its own.
-- A snapshot being written has a row with a NULL digest, size and chunk count; it is
-- listed and restored only once they are set. Existing snapshots are copied into the
-- chunks of every run that references them, then the shared table is dropped.
-- Keep this file and ../sqlite/0011_snapshot_chunks.sql in step.

ALTER TABLE run_snapshots DROP CONSTRAINT run_snapshots_digest_fkey;
ALTER TABLE run_snapshots ALTER COLUMN digest DROP NOT NULL;
ALTER TABLE run_snapshots ADD COLUMN size BIGINT CHECK (size >= 0);
ALTER TABLE run_snapshots ADD COLUMN chunks BIGINT CHECK (chunks >= 0);
UPDATE run_snapshots r
SET size = length(s.bytes), chunks = (length(s.bytes) + 1048575) / 1048576
FROM snapshots s WHERE s.digest = r.digest;
ALTER TABLE run_snapshots ADD CHECK (length(digest) = 64);
ALTER TABLE run_snapshots ADD CHECK (
    (digest IS NULL) = (size IS NULL) AND (digest IS NULL) = (chunks IS NULL)
);

CREATE TABLE snapshot_chunks (
    run_id TEXT NOT NULL,
    seq    BIGINT NOT NULL,
    chunk  BIGINT NOT NULL CHECK (chunk >= 0), -- 0, 1, ...: its place in the archive
    bytes  BYTEA NOT NULL,
    PRIMARY KEY (run_id, seq, chunk),
    FOREIGN KEY (run_id, seq) REFERENCES run_snapshots (run_id, seq)
);
INSERT INTO snapshot_chunks (run_id, seq, chunk, bytes)
SELECT r.run_id, r.seq, p.chunk,
       substring(s.bytes FROM (p.chunk * 1048576 + 1)::integer FOR 1048576)
FROM run_snapshots r
JOIN snapshots s ON s.digest = r.digest
CROSS JOIN LATERAL generate_series(0, r.chunks - 1) AS p (chunk);

DROP TABLE snapshots;
