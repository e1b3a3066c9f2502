//! Who drives a run: a lease on the run as a whole, next to the leases on its steps.
//!
//! A runner drives a run (waits for its group's turn, claims its waves, stores their
//! ends) while it holds the run's driver lease, renewing it. When its instance dies the
//! lease runs out and [`Store::claim_orphaned_runs`] hands the run to another instance,
//! which carries it on; the step leases make sure no step of it runs twice meanwhile.
//! On PostgreSQL the scan locks the rows it takes with `FOR UPDATE SKIP LOCKED`, so
//! instances scanning at once take different runs without waiting on each other.

use std::time::{Duration, SystemTime};

use relo_evidence::rfc3339_utc;

use crate::runs::ACTIVE_STATES;
use crate::store::{Backend, on_backend};
use crate::{Result, Store};

/// What [`Store::claim_run_driver`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DriverClaim {
    /// The caller drives the run now (or already did; the lease is extended).
    Claimed,
    /// Another runner holds the run until the time given.
    Held {
        /// Its owner name.
        by: String,
        /// When its lease runs out unless renewed (RFC 3339).
        until: String,
    },
    /// The run has ended: nobody drives it.
    Ended,
    /// There is no such run.
    NoRun,
}

impl Store {
    /// Makes `owner` the run's driver for `lease` from `now`, unless another owner's lease
    /// is still live or the run has ended.
    pub async fn claim_run_driver(
        &self,
        run_id: &str,
        owner: &str,
        lease: Duration,
        now: SystemTime,
    ) -> Result<DriverClaim> {
        let now_text = rfc3339_utc(now);
        let claimed: Option<String> = on_backend!(self.pools(), |pool| {
            sqlx::query_scalar(&format!(
                "UPDATE runs SET driver = $2, driver_expires_at = $3
                 WHERE id = $1 AND state IN ({ACTIVE_STATES})
                   AND (driver IS NULL OR driver = $2 OR driver_expires_at < $4)
                 RETURNING id"
            ))
            .bind(run_id)
            .bind(owner)
            .bind(rfc3339_utc(now + lease))
            .bind(&now_text)
            .fetch_optional(pool)
            .await?
        });
        if claimed.is_some() {
            return Ok(DriverClaim::Claimed);
        }
        let row: Option<(String, Option<String>, Option<String>)> =
            on_backend!(self.pools(), |pool| {
                sqlx::query_as("SELECT state, driver, driver_expires_at FROM runs WHERE id = $1")
                    .bind(run_id)
                    .fetch_optional(pool)
                    .await?
            });
        Ok(match row {
            None => DriverClaim::NoRun,
            Some((_, Some(by), Some(until))) if until >= now_text => {
                DriverClaim::Held { by, until }
            }
            // Not active (or released between the two statements: nobody to name).
            Some(_) => DriverClaim::Ended,
        })
    }

    /// Extends `owner`'s lease on the run; `false` when `owner` no longer drives it.
    pub async fn renew_run_driver(
        &self,
        run_id: &str,
        owner: &str,
        lease: Duration,
        now: SystemTime,
    ) -> Result<bool> {
        let renewed = on_backend!(self.pools(), |pool| {
            sqlx::query(
                "UPDATE runs SET driver_expires_at = $3
                 WHERE id = $1 AND driver = $2 AND driver_expires_at >= $4",
            )
            .bind(run_id)
            .bind(owner)
            .bind(rfc3339_utc(now + lease))
            .bind(rfc3339_utc(now))
            .execute(pool)
            .await?
            .rows_affected()
        });
        Ok(renewed == 1)
    }

    /// Lets go of the run if `owner` drives it, so anyone may drive it next at once.
    pub async fn release_run_driver(&self, run_id: &str, owner: &str) -> Result<()> {
        on_backend!(self.pools(), |pool| {
            sqlx::query(
                "UPDATE runs SET driver = NULL, driver_expires_at = NULL
                 WHERE id = $1 AND driver = $2",
            )
            .bind(run_id)
            .bind(owner)
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    /// Takes up to `limit` runs that need a driver: not ended, not waiting for
    /// approval, and driven by nobody (never driven, released, or whose driver's lease
    /// has run out); `owner` drives them from now, oldest first. Returns their ids.
    pub async fn claim_orphaned_runs(
        &self,
        owner: &str,
        lease: Duration,
        now: SystemTime,
        limit: u32,
    ) -> Result<Vec<String>> {
        let now_text = rfc3339_utc(now);
        let until = rfc3339_utc(now + lease);
        let scan = "SELECT id FROM runs
             WHERE state IN ('pending', 'queued', 'running')
               AND (driver IS NULL OR driver_expires_at < $1)
             ORDER BY created_at, id LIMIT $2";
        let claim = "UPDATE runs SET driver = $2, driver_expires_at = $3
             WHERE id = $1 AND (driver IS NULL OR driver_expires_at < $4)";
        match self.pools() {
            Backend::Sqlite(_) => {
                // One writer at a time on SQLite: the write lock is the isolation.
                let mut locked = self.begin_locked().await?;
                let ids: Vec<String> = on_backend!(&mut locked.tx, |tx| {
                    let ids: Vec<String> = sqlx::query_scalar(scan)
                        .bind(&now_text)
                        .bind(i64::from(limit))
                        .fetch_all(&mut **tx)
                        .await?;
                    for id in &ids {
                        sqlx::query(claim)
                            .bind(id)
                            .bind(owner)
                            .bind(&until)
                            .bind(&now_text)
                            .execute(&mut **tx)
                            .await?;
                    }
                    ids
                });
                locked.commit().await?;
                Ok(ids)
            }
            Backend::Postgres(pool) => {
                // Rows another instance is taking right now are skipped, not waited on.
                let mut tx = pool.begin().await?;
                let ids: Vec<String> =
                    sqlx::query_scalar(&format!("{scan} FOR UPDATE SKIP LOCKED"))
                        .bind(&now_text)
                        .bind(i64::from(limit))
                        .fetch_all(&mut *tx)
                        .await?;
                for id in &ids {
                    sqlx::query(claim)
                        .bind(id)
                        .bind(owner)
                        .bind(&until)
                        .bind(&now_text)
                        .execute(&mut *tx)
                        .await?;
                }
                tx.commit().await?;
                Ok(ids)
            }
        }
    }
}
