//! Run workspaces saved into the store, and what steps logged.
//!
//! A snapshot is a tar archive of a run's workspace, kept by that run alone (two runs
//! that save the same tree each keep their own rows) as its next `seq`, in chunks of
//! [`SNAPSHOT_CHUNK_BYTES`]: every chunk but the last is exactly that long, so chunk `i`
//! always holds the archive's bytes from `i × SNAPSHOT_CHUNK_BYTES`, and each chunk can
//! be sealed on its own. Neither side ever holds more than a chunk of it:
//!
//! - [`Store::begin_snapshot`] takes the run's next `seq`; [`SnapshotUpload::put_chunk`]
//!   stores one chunk at a time, each in its own short transaction; and
//!   [`SnapshotUpload::finish`] records the archive's sha256, size and chunk count and
//!   points `runs.workspace_digest` at it, in one transaction. Until then the snapshot is
//!   neither listed nor restored ([`SnapshotUpload::abort`] removes it; one whose writer
//!   died stays incomplete and unused).
//! - [`Store::open_snapshot`] opens a run's complete snapshot; [`SnapshotReader`] returns
//!   its chunks in order and, after the last, checks that they hash to the recorded
//!   digest and add up to its size: otherwise `snapshot-tampered`
//!   ([`SnapshotError::Tampered`]), so a restored workspace is used only once the reader
//!   has ended cleanly.

use std::time::SystemTime;

use relo_evidence::rfc3339_utc;
use sha2::{Digest as _, Sha256};

use crate::Result;
use crate::Store;
use crate::StoreError;
use crate::store::on_backend;

/// The length of every chunk of a snapshot but the last (which may be shorter): 1 MiB.
/// Migration 0011 splits the snapshots it copies at the same length.
pub const SNAPSHOT_CHUNK_BYTES: usize = 1 << 20;

/// Why a snapshot could not be stored or read back.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SnapshotError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The snapshot cannot be written as asked: a chunk that is empty, longer than
    /// [`SNAPSHOT_CHUNK_BYTES`] or after a short one, or a snapshot whose row was removed
    /// before it was finished.
    #[error("snapshot {seq} of run {run_id} cannot be written: {reason}")]
    Write {
        /// The run.
        run_id: String,
        /// The snapshot's place among the run's.
        seq: i64,
        /// What is wrong.
        reason: String,
    },
    /// The stored chunks are not the archive that was recorded: a chunk is missing, or
    /// they do not add up to its size or hash to its sha256.
    #[error("snapshot-tampered: snapshot {seq} of run {run_id} (sha256 {digest}) {reason}")]
    Tampered {
        /// The run.
        run_id: String,
        /// The snapshot's place among the run's.
        seq: i64,
        /// The recorded sha256.
        digest: String,
        /// What does not match.
        reason: String,
    },
}

impl From<sqlx::Error> for SnapshotError {
    fn from(error: sqlx::Error) -> Self {
        SnapshotError::Store(error.into())
    }
}

/// One line a step logged, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredLogLine {
    /// The step.
    pub step_id: String,
    /// Its attempt.
    pub attempt: i64,
    /// `step` (the plugin) or `host` (notes from relo).
    pub source: String,
    /// `trace`, `debug`, `info`, `warn` or `error`.
    pub level: String,
    /// The text, redacted by the sandbox before it got here.
    pub message: String,
}

/// A snapshot being written: chunks go in one at a time; it becomes the run's newest
/// snapshot only when [`finish`](SnapshotUpload::finish)ed.
#[derive(Debug)]
#[must_use = "a snapshot is used only once finished; abort it otherwise"]
pub struct SnapshotUpload {
    store: Store,
    run_id: String,
    seq: i64,
    chunks: i64,
    size: i64,
    /// Whether the last chunk was shorter than [`SNAPSHOT_CHUNK_BYTES`] (no chunk may
    /// follow it).
    ended: bool,
}

/// A complete snapshot being read, chunk by chunk; see [`SnapshotReader::next_chunk`].
#[derive(Debug)]
pub struct SnapshotReader {
    store: Store,
    run_id: String,
    seq: i64,
    digest: String,
    size: i64,
    chunks: i64,
    next: i64,
    read: i64,
    hasher: Sha256,
}

/// A run's complete snapshot, as listed by [`Store::run_snapshots`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredSnapshot {
    /// Its place among the run's snapshots (0 is the workspace as the run began).
    pub seq: i64,
    /// The step after which it was taken (`None` at the start).
    pub step_id: Option<String>,
    /// sha256 of the archive, lowercase hex.
    pub digest: String,
    /// Bytes of the archive.
    pub size: i64,
    /// How many chunks hold it.
    pub chunks: i64,
}

impl Store {
    /// Begins the run's next workspace snapshot, taken after `step_id` (or at the start,
    /// `None`): its row is stored incomplete, so it is not listed or restored until
    /// [`SnapshotUpload::finish`].
    pub async fn begin_snapshot(
        &self,
        run_id: &str,
        step_id: Option<&str>,
        now: SystemTime,
    ) -> Result<SnapshotUpload> {
        let mut locked = self.begin_locked().await?;
        let seq: i64 = on_backend!(&mut locked.tx, |tx| {
            sqlx::query_scalar(
                "INSERT INTO run_snapshots (run_id, seq, step_id, created_at)
                 SELECT $1, COALESCE(MAX(seq) + 1, 0), $2, $3 FROM run_snapshots WHERE run_id = $1
                 RETURNING seq",
            )
            .bind(run_id)
            .bind(step_id)
            .bind(rfc3339_utc(now))
            .fetch_one(&mut **tx)
            .await?
        });
        locked.commit().await?;
        Ok(SnapshotUpload {
            store: self.clone(),
            run_id: run_id.to_owned(),
            seq,
            chunks: 0,
            size: 0,
            ended: false,
        })
    }

    /// Opens the run's newest complete snapshot whose sha256 is `digest`, to read it
    /// chunk by chunk; `None` if the run has none.
    pub async fn open_snapshot(
        &self,
        run_id: &str,
        digest: &str,
    ) -> Result<Option<SnapshotReader>> {
        let row: Option<(i64, i64, i64)> = on_backend!(self.pools(), |pool| {
            sqlx::query_as(
                "SELECT seq, size, chunks FROM run_snapshots
                 WHERE run_id = $1 AND digest = $2 ORDER BY seq DESC LIMIT 1",
            )
            .bind(run_id)
            .bind(digest)
            .fetch_optional(pool)
            .await?
        });
        Ok(row.map(|(seq, size, chunks)| SnapshotReader {
            store: self.clone(),
            run_id: run_id.to_owned(),
            seq,
            digest: digest.to_owned(),
            size,
            chunks,
            next: 0,
            read: 0,
            hasher: Sha256::new(),
        }))
    }

    /// A run's complete snapshots, in order.
    pub async fn run_snapshots(&self, run_id: &str) -> Result<Vec<StoredSnapshot>> {
        let rows: Vec<(i64, Option<String>, String, i64, i64)> =
            on_backend!(self.pools(), |pool| {
                sqlx::query_as(
                    "SELECT seq, step_id, digest, size, chunks FROM run_snapshots
                     WHERE run_id = $1 AND digest IS NOT NULL ORDER BY seq",
                )
                .bind(run_id)
                .fetch_all(pool)
                .await?
            });
        Ok(rows
            .into_iter()
            .map(|(seq, step_id, digest, size, chunks)| StoredSnapshot {
                seq,
                step_id,
                digest,
                size,
                chunks,
            })
            .collect())
    }

    /// Stores what one attempt of a step logged: `(source, level, message)` in order.
    pub async fn add_step_logs(
        &self,
        run_id: &str,
        step_id: &str,
        attempt: u32,
        lines: &[(&str, &str, &str)],
    ) -> Result<()> {
        if lines.is_empty() {
            return Ok(());
        }
        let mut locked = self.begin_locked().await?;
        for (seq, (source, level, message)) in lines.iter().enumerate() {
            on_backend!(&mut locked.tx, |tx| {
                sqlx::query(
                    "INSERT INTO step_logs (run_id, step_id, attempt, seq, source, level, message)
                     VALUES ($1, $2, $3, $4, $5, $6, $7)",
                )
                .bind(run_id)
                .bind(step_id)
                .bind(i64::from(attempt))
                .bind(i64::try_from(seq).unwrap_or(i64::MAX))
                .bind(*source)
                .bind(*level)
                .bind(*message)
                .execute(&mut **tx)
                .await?;
            });
        }
        locked.commit().await
    }

    /// What a run's steps logged (one step's, if `step_id` is given), in order.
    pub async fn step_logs(
        &self,
        run_id: &str,
        step_id: Option<&str>,
    ) -> Result<Vec<StoredLogLine>> {
        let rows: Vec<(String, i64, String, String, String)> = on_backend!(self.pools(), |pool| {
            sqlx::query_as(
                "SELECT step_id, CAST(attempt AS BIGINT), source, level, message FROM step_logs
                 WHERE run_id = $1 AND ($2 IS NULL OR step_id = $2)
                 ORDER BY step_id, attempt, seq",
            )
            .bind(run_id)
            .bind(step_id)
            .fetch_all(pool)
            .await?
        });
        Ok(rows
            .into_iter()
            .map(|(step_id, attempt, source, level, message)| StoredLogLine {
                step_id,
                attempt,
                source,
                level,
                message,
            })
            .collect())
    }
}

impl SnapshotUpload {
    /// The snapshot's place among the run's.
    pub fn seq(&self) -> i64 {
        self.seq
    }

    /// Stores the next chunk: exactly [`SNAPSHOT_CHUNK_BYTES`] long, or shorter if it is
    /// the last ([`SnapshotError::Write`] otherwise).
    pub async fn put_chunk(&mut self, bytes: &[u8]) -> Result<(), SnapshotError> {
        if let Some(reason) = self.misfit(bytes.len()) {
            return Err(self.write_error(reason));
        }
        let mut locked = self.store.begin_locked().await?;
        on_backend!(&mut locked.tx, |tx| {
            sqlx::query(
                "INSERT INTO snapshot_chunks (run_id, seq, chunk, bytes) VALUES ($1, $2, $3, $4)",
            )
            .bind(&self.run_id)
            .bind(self.seq)
            .bind(self.chunks)
            .bind(bytes)
            .execute(&mut **tx)
            .await?;
        });
        locked.commit().await?;
        self.chunks += 1;
        self.size += i64::try_from(bytes.len()).unwrap_or(i64::MAX);
        self.ended = bytes.len() < SNAPSHOT_CHUNK_BYTES;
        Ok(())
    }

    /// Why a chunk of `len` bytes cannot come next, if it cannot.
    fn misfit(&self, len: usize) -> Option<String> {
        if len == 0 {
            Some("an empty chunk".to_owned())
        } else if len > SNAPSHOT_CHUNK_BYTES {
            Some(format!(
                "a chunk of {len} bytes, longer than {SNAPSHOT_CHUNK_BYTES}"
            ))
        } else if self.ended {
            Some(format!(
                "chunk {} after a short one (only the last may be short)",
                self.chunks
            ))
        } else {
            None
        }
    }

    /// Completes the snapshot as the archive of sha256 `digest` (lowercase hex), the
    /// chunks stored so far, and makes it the run's newest (`runs.workspace_digest`), in
    /// one transaction.
    pub async fn finish(self, digest: &str, now: SystemTime) -> Result<(), SnapshotError> {
        let at = rfc3339_utc(now);
        let mut locked = self.store.begin_locked().await?;
        let completed = on_backend!(&mut locked.tx, |tx| {
            let completed = sqlx::query(
                "UPDATE run_snapshots SET digest = $3, size = $4, chunks = $5
                 WHERE run_id = $1 AND seq = $2 AND digest IS NULL",
            )
            .bind(&self.run_id)
            .bind(self.seq)
            .bind(digest)
            .bind(self.size)
            .bind(self.chunks)
            .execute(&mut **tx)
            .await?
            .rows_affected();
            sqlx::query("UPDATE runs SET workspace_digest = $2, updated_at = $3 WHERE id = $1")
                .bind(&self.run_id)
                .bind(digest)
                .bind(&at)
                .execute(&mut **tx)
                .await?;
            completed
        });
        if completed != 1 {
            return Err(self.write_error("its row was removed before it was finished".to_owned()));
        }
        locked.commit().await?;
        Ok(())
    }

    /// Removes the unfinished snapshot and its chunks.
    pub async fn abort(self) -> Result<(), SnapshotError> {
        let mut locked = self.store.begin_locked().await?;
        on_backend!(&mut locked.tx, |tx| {
            sqlx::query("DELETE FROM snapshot_chunks WHERE run_id = $1 AND seq = $2")
                .bind(&self.run_id)
                .bind(self.seq)
                .execute(&mut **tx)
                .await?;
            sqlx::query(
                "DELETE FROM run_snapshots WHERE run_id = $1 AND seq = $2 AND digest IS NULL",
            )
            .bind(&self.run_id)
            .bind(self.seq)
            .execute(&mut **tx)
            .await?;
        });
        locked.commit().await?;
        Ok(())
    }

    fn write_error(&self, reason: String) -> SnapshotError {
        SnapshotError::Write {
            run_id: self.run_id.clone(),
            seq: self.seq,
            reason,
        }
    }
}

impl SnapshotReader {
    /// The snapshot's place among the run's.
    pub fn seq(&self) -> i64 {
        self.seq
    }

    /// The recorded sha256 of the archive.
    pub fn digest(&self) -> &str {
        &self.digest
    }

    /// The recorded size of the archive, in bytes.
    pub fn size(&self) -> i64 {
        self.size
    }

    /// The next chunk of the archive, in order; `None` after the last, once every chunk
    /// read hashed to the recorded digest and added up to the recorded size. A missing
    /// chunk, or chunks that do not match, are [`SnapshotError::Tampered`]: what was read
    /// before that must not be used.
    pub async fn next_chunk(&mut self) -> Result<Option<Vec<u8>>, SnapshotError> {
        if self.next == self.chunks {
            return self.verify().map(|()| None);
        }
        let bytes: Option<Vec<u8>> = on_backend!(self.store.pools(), |pool| {
            sqlx::query_scalar(
                "SELECT bytes FROM snapshot_chunks WHERE run_id = $1 AND seq = $2 AND chunk = $3",
            )
            .bind(&self.run_id)
            .bind(self.seq)
            .bind(self.next)
            .fetch_optional(pool)
            .await?
        });
        let Some(bytes) = bytes else {
            return Err(self.tampered(format!("lacks chunk {}", self.next)));
        };
        self.hasher.update(&bytes);
        self.next += 1;
        self.read += i64::try_from(bytes.len()).unwrap_or(i64::MAX);
        Ok(Some(bytes))
    }

    /// Checks what was read against the recorded size and digest.
    fn verify(&self) -> Result<(), SnapshotError> {
        if self.read != self.size {
            return Err(self.tampered(format!(
                "holds {} bytes in its chunks, not the {} recorded",
                self.read, self.size
            )));
        }
        let found = hex::encode(self.hasher.clone().finalize());
        if found != self.digest {
            return Err(self.tampered(format!("has chunks that hash to {found}")));
        }
        Ok(())
    }

    fn tampered(&self, reason: String) -> SnapshotError {
        SnapshotError::Tampered {
            run_id: self.run_id.clone(),
            seq: self.seq,
            digest: self.digest.clone(),
            reason,
        }
    }
}
