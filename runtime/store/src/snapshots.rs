//! Run workspaces saved into the store, and what steps logged.
//!
//! A snapshot is a tar archive of the run's workspace, stored once per sha256 (runs that
//! start from the same folder share it); each run lists its snapshots in order, and its
//! row names the newest, which an instance taking the run over restores.

use std::time::SystemTime;

use relo_evidence::rfc3339_utc;

use crate::Result;
use crate::Store;
use crate::store::on_backend;

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

impl Store {
    /// Stores `bytes` (a tar archive of sha256 `digest`) as the run's newest workspace
    /// snapshot, taken after `step_id` (or at the start, `None`).
    pub async fn put_snapshot(
        &self,
        run_id: &str,
        step_id: Option<&str>,
        digest: &str,
        bytes: &[u8],
        now: SystemTime,
    ) -> Result<()> {
        let at = rfc3339_utc(now);
        let mut locked = self.begin_locked().await?;
        on_backend!(&mut locked.tx, |tx| {
            sqlx::query(
                "INSERT INTO snapshots (digest, bytes, created_at) VALUES ($1, $2, $3)
                 ON CONFLICT (digest) DO NOTHING",
            )
            .bind(digest)
            .bind(bytes)
            .bind(&at)
            .execute(&mut **tx)
            .await?;
            sqlx::query(
                "INSERT INTO run_snapshots (run_id, seq, step_id, digest, created_at)
                 SELECT $1, COALESCE(MAX(seq) + 1, 0), $2, $3, $4 FROM run_snapshots WHERE run_id = $1",
            )
            .bind(run_id)
            .bind(step_id)
            .bind(digest)
            .bind(&at)
            .execute(&mut **tx)
            .await?;
            sqlx::query("UPDATE runs SET workspace_digest = $2, updated_at = $3 WHERE id = $1")
                .bind(run_id)
                .bind(digest)
                .bind(&at)
                .execute(&mut **tx)
                .await?;
        });
        locked.commit().await
    }

    /// The bytes of the snapshot `digest`.
    pub async fn snapshot(&self, digest: &str) -> Result<Option<Vec<u8>>> {
        Ok(on_backend!(self.pools(), |pool| {
            sqlx::query_scalar("SELECT bytes FROM snapshots WHERE digest = $1")
                .bind(digest)
                .fetch_optional(pool)
                .await?
        }))
    }

    /// A run's snapshots in order: (the step after which it was taken, digest).
    pub async fn run_snapshots(&self, run_id: &str) -> Result<Vec<(Option<String>, String)>> {
        Ok(on_backend!(self.pools(), |pool| {
            sqlx::query_as(
                "SELECT step_id, digest FROM run_snapshots WHERE run_id = $1 ORDER BY seq",
            )
            .bind(run_id)
            .fetch_all(pool)
            .await?
        }))
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
