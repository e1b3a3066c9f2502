-- relo store, schema version 11, SQLite: workspace snapshots kept per run, in chunks.
-- A snapshot was one row per sha256, shared by every run that saved the same archive;
-- it is now the run's own: `run_snapshots` records its digest, size and chunk count,
-- and `snapshot_chunks` holds its bytes in 1 MiB pieces (relo-store's
-- `SNAPSHOT_CHUNK_BYTES`: every chunk but the last is exactly that long), so a snapshot
-- is written and read a chunk at a time, and each chunk can later be sealed on its own.
-- A snapshot being written has a row with a NULL digest, size and chunk count; it is
-- listed and restored only once they are set. Existing snapshots are copied into the
-- chunks of every run that references them, then the shared table is dropped.
-- Keep this file and ../postgres/0011_snapshot_chunks.sql in step.

-- SQLite cannot drop a foreign key or a NOT NULL: the table is rebuilt.
CREATE TABLE run_snapshots_v11 (
    run_id     TEXT NOT NULL REFERENCES runs (id),
    seq        INTEGER NOT NULL,
    step_id    TEXT,                -- the step after which it was taken; NULL for the start
    digest     TEXT CHECK (length(digest) = 64), -- sha256 of the archive; NULL until complete
    size       INTEGER CHECK (size >= 0),        -- bytes of the archive
    chunks     INTEGER CHECK (chunks >= 0),      -- rows of snapshot_chunks
    created_at TEXT NOT NULL,
    PRIMARY KEY (run_id, seq),
    CHECK ((digest IS NULL) = (size IS NULL) AND (digest IS NULL) = (chunks IS NULL))
);
INSERT INTO run_snapshots_v11 (run_id, seq, step_id, digest, size, chunks, created_at)
SELECT r.run_id, r.seq, r.step_id, r.digest, length(s.bytes),
       (length(s.bytes) + 1048575) / 1048576, r.created_at
FROM run_snapshots r JOIN snapshots s ON s.digest = r.digest;
DROP TABLE run_snapshots;
ALTER TABLE run_snapshots_v11 RENAME TO run_snapshots;

CREATE TABLE snapshot_chunks (
    run_id TEXT NOT NULL,
    seq    INTEGER NOT NULL,
    chunk  INTEGER NOT NULL CHECK (chunk >= 0), -- 0, 1, ...: its place in the archive
    bytes  BLOB NOT NULL,
    PRIMARY KEY (run_id, seq, chunk),
    FOREIGN KEY (run_id, seq) REFERENCES run_snapshots (run_id, seq)
);
WITH RECURSIVE pieces (chunk) AS (
    SELECT 0
    UNION ALL
    SELECT chunk + 1 FROM pieces
    WHERE chunk + 1 < (SELECT COALESCE(MAX(chunks), 0) FROM run_snapshots)
)
INSERT INTO snapshot_chunks (run_id, seq, chunk, bytes)
SELECT r.run_id, r.seq, p.chunk, substr(s.bytes, p.chunk * 1048576 + 1, 1048576)
FROM run_snapshots r
JOIN snapshots s ON s.digest = r.digest
JOIN pieces p ON p.chunk < r.chunks;

DROP TABLE snapshots;
