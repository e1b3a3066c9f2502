//! Runs and their steps, and the leases by which an instance claims a step.
//!
//! A step is claimed with a compare-and-set: it becomes `claimed` by one owner, with a
//! lease until a given time, only if it is `pending` or its previous owner's lease has
//! expired. Two instances on one database can therefore never both hold a step, and a
//! step whose instance died becomes claimable again when its lease runs out. Every later
//! change (renewal, finishing) names the owner and fails with
//! [`StoreError::LeaseLost`] once someone else holds the step.
//!
//! Times are the RFC 3339 UTC text of [`rfc3339_utc`] (fixed width, so text order is time
//! order); callers pass `now`, so tests can move the clock.

use std::time::{Duration, SystemTime};

use relo_evidence::rfc3339_utc;

use crate::store::{LockedTx, on_backend};
use crate::{Result, Store, StoreError};

/// Claims one step: pending, or held under an expired lease. Binds: run id, step id,
/// owner, lease end, now.
const CLAIM_SQL: &str =
    "UPDATE steps SET state = 'claimed', attempt = attempt + 1, lease_owner = $3,
        lease_expires_at = $4, started_at = COALESCE(started_at, $5)
 WHERE run_id = $1 AND step_id = $2
   AND (state IN ('pending', 'waiting')
        OR (state IN ('claimed', 'running') AND lease_expires_at < $5))
 RETURNING CAST(attempt AS BIGINT)";

/// Ends a step the owner holds. Binds: run id, step id, owner, state, output, error, now.
const FINISH_SQL: &str = "UPDATE steps SET state = $4, output = $5, error = $6, finished_at = $7,
        lease_owner = NULL, lease_expires_at = NULL
 WHERE run_id = $1 AND step_id = $2 AND lease_owner = $3
   AND state IN ('claimed', 'running') AND lease_expires_at >= $7";

/// The states of a run that has not ended, as an SQL list.
pub(crate) const ACTIVE_STATES: &str = "'pending', 'queued', 'running', 'waiting-approval'";

/// The id no run may have: the evidence scope of the control plane.
pub const CONTROL_SCOPE: &str = "control";

/// A run to create.
#[derive(Debug, Clone)]
pub struct NewRun<'a> {
    /// The run id; also its evidence scope.
    pub id: &'a str,
    /// The workflow's name.
    pub workflow: &'a str,
    /// The person whose key signed the request.
    pub requested_by: &'a str,
    /// The signed run request, JSON.
    pub request: &'a str,
    /// The workflow's step ids.
    pub steps: &'a [&'a str],
    /// The workflow's text as requested, kept so the run can be resumed anywhere.
    pub workflow_text: &'a str,
    /// The concurrency group, and whether a busy group queues the run (`true`) or
    /// refuses it.
    pub concurrency: Option<(&'a str, bool)>,
    /// The runner that will drive the run and its lease: the run is created held, so no
    /// other instance takes it up before its creator starts driving it.
    pub driver: Option<(&'a str, Duration)>,
    /// At most this many runs of the requester may not have ended (counting this one);
    /// beyond it the run is refused with [`StoreError::RunQuota`].
    pub active_limit: Option<u32>,
}

/// How [`Store::create_run`] placed a new run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Placed {
    /// It may start now.
    Ready,
    /// Its concurrency group is busy with the run named: it is `queued` until
    /// [`Store::take_group_turn`] lets it start.
    Queued {
        /// The run ahead of it.
        behind: String,
    },
}

/// A run as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunRow {
    /// The run id.
    pub id: String,
    /// The workflow's name.
    pub workflow: String,
    /// `pending`, `running`, `waiting-approval`, `succeeded`, `failed` or `cancelled`.
    pub state: String,
    /// The requester.
    pub requested_by: String,
    /// The signed request, JSON.
    pub request: String,
    /// When it was created (RFC 3339).
    pub created_at: String,
    /// When it ended, if it has.
    pub finished_at: Option<String>,
    /// The workflow's text as requested (absent for runs made before schema 3).
    pub workflow_text: Option<String>,
    /// Its concurrency group.
    pub concurrency_group: Option<String>,
    /// sha256 of its newest workspace snapshot.
    pub workspace_digest: Option<String>,
    /// The runner driving the run, while one does.
    pub driver: Option<String>,
    /// When the driver's lease runs out unless renewed (RFC 3339).
    pub driver_expires_at: Option<String>,
}

/// The columns of a [`RunRow`], in order.
const RUN_COLUMNS: &str = "id, workflow, state, requested_by, request, created_at, finished_at,
     workflow_text, concurrency_group, workspace_digest, driver, driver_expires_at";

type RunTuple = (
    String,
    String,
    String,
    String,
    String,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
);

impl From<RunTuple> for RunRow {
    fn from(
        (
            id,
            workflow,
            state,
            requested_by,
            request,
            created_at,
            finished_at,
            workflow_text,
            concurrency_group,
            workspace_digest,
            driver,
            driver_expires_at,
        ): RunTuple,
    ) -> Self {
        Self {
            id,
            workflow,
            state,
            requested_by,
            request,
            created_at,
            finished_at,
            workflow_text,
            concurrency_group,
            workspace_digest,
            driver,
            driver_expires_at,
        }
    }
}

/// A step as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepRow {
    /// The step id.
    pub step_id: String,
    /// `pending`, `claimed`, `running`, `waiting` (a gate short of its quorum),
    /// `succeeded`, `failed` or `skipped`.
    pub state: String,
    /// Attempts started so far.
    pub attempt: i64,
    /// The instance holding it, while claimed or running.
    pub lease_owner: Option<String>,
    /// Until when, while claimed or running.
    pub lease_expires_at: Option<String>,
    /// The output JSON once succeeded.
    pub output: Option<String>,
    /// Why it failed or was skipped.
    pub error: Option<String>,
    /// When it was first claimed (RFC 3339); a gate's wait is timed from here.
    pub started_at: Option<String>,
}

/// A step an owner now holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    /// The attempt this claim starts (1 for the first).
    pub attempt: i64,
    /// When the lease ends unless renewed.
    pub lease_expires_at: String,
}

/// How a step ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepEnd {
    /// It succeeded, with an output.
    Succeeded,
    /// It failed for good.
    Failed,
    /// It was not run (a condition did not hold, or a step it needs failed).
    Skipped,
}

impl StepEnd {
    fn as_str(self) -> &'static str {
        match self {
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Skipped => "skipped",
        }
    }
}

impl Store {
    /// Creates a run with every step `pending`, in one transaction. The run is `pending`,
    /// or, when its concurrency group already has a run that has not ended, `queued`
    /// behind it (or refused with [`StoreError::GroupBusy`], as the run asks). The id
    /// `control` is refused: it is the control plane's evidence scope; an id already
    /// taken is [`StoreError::Duplicate`].
    pub async fn create_run(&self, run: &NewRun<'_>, now: SystemTime) -> Result<Placed> {
        if run.id == CONTROL_SCOPE || run.id.is_empty() {
            return Err(StoreError::InvalidEntry(format!(
                "`{}` cannot be a run id: `control` is the control plane's evidence scope",
                run.id
            )));
        }
        let at = rfc3339_utc(now);
        let mut locked = self.begin_locked().await?;
        let exists: Option<String> = on_backend!(&mut locked.tx, |tx| {
            sqlx::query_scalar("SELECT id FROM runs WHERE id = $1")
                .bind(run.id)
                .fetch_optional(&mut **tx)
                .await?
        });
        if exists.is_some() {
            return Err(StoreError::Duplicate(format!(
                "run {} exists; a request starts one run",
                run.id
            )));
        }
        let busy: Option<String> = match run.concurrency {
            None => None,
            Some((group, _)) => on_backend!(&mut locked.tx, |tx| {
                // A run holds its group from creation until it ends; queued runs wait
                // in order.
                sqlx::query_scalar(
                    "SELECT id FROM runs WHERE concurrency_group = $1
                       AND state IN ('pending', 'running', 'waiting-approval', 'queued')
                     ORDER BY created_at, id LIMIT 1",
                )
                .bind(group)
                .fetch_optional(&mut **tx)
                .await?
            }),
        };
        if let Some(limit) = run.active_limit {
            let active: i64 = on_backend!(&mut locked.tx, |tx| {
                sqlx::query_scalar(&format!(
                    "SELECT COUNT(*) FROM runs WHERE requested_by = $1 AND state IN ({ACTIVE_STATES})"
                ))
                .bind(run.requested_by)
                .fetch_one(&mut **tx)
                .await?
            });
            if active >= i64::from(limit) {
                return Err(StoreError::RunQuota {
                    requester: run.requested_by.to_owned(),
                    active: u64::try_from(active).unwrap_or(0),
                    limit,
                });
            }
        }
        let placed = match (busy, run.concurrency) {
            (Some(holder), Some((group, false))) => {
                return Err(StoreError::GroupBusy {
                    group: group.to_owned(),
                    run_id: holder,
                });
            }
            (Some(behind), _) => Placed::Queued { behind },
            (None, _) => Placed::Ready,
        };
        let state = match placed {
            Placed::Ready => "pending",
            Placed::Queued { .. } => "queued",
        };
        on_backend!(&mut locked.tx, |tx| {
            sqlx::query(
                "INSERT INTO runs (id, workflow, state, requested_by, request, created_at, updated_at,
                                   workflow_text, concurrency_group, driver, driver_expires_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $6, $7, $8, $9, $10)",
            )
            .bind(run.id)
            .bind(run.workflow)
            .bind(state)
            .bind(run.requested_by)
            .bind(run.request)
            .bind(&at)
            .bind(run.workflow_text)
            .bind(run.concurrency.map(|(group, _)| group))
            .bind(run.driver.map(|(owner, _)| owner))
            .bind(run.driver.map(|(_, lease)| rfc3339_utc(now + lease)))
            .execute(&mut **tx)
            .await?;
            for step in run.steps {
                sqlx::query(
                    "INSERT INTO steps (run_id, step_id, state) VALUES ($1, $2, 'pending')",
                )
                .bind(run.id)
                .bind(*step)
                .execute(&mut **tx)
                .await?;
            }
        });
        locked.commit().await?;
        Ok(placed)
    }

    /// Lets a `queued` run start when no other run of its group holds the group and no
    /// run queued before it is still waiting: it becomes `pending` and `None` is
    /// returned. Otherwise the run ahead of it is named. A run that is not queued is
    /// left alone (`None`).
    pub async fn take_group_turn(&self, run_id: &str, now: SystemTime) -> Result<Option<String>> {
        let mut locked = self.begin_locked().await?;
        let ahead: Option<String> = on_backend!(&mut locked.tx, |tx| {
            let row: Option<(String, Option<String>, String)> = sqlx::query_as(
                "SELECT state, concurrency_group, created_at FROM runs WHERE id = $1",
            )
            .bind(run_id)
            .fetch_optional(&mut **tx)
            .await?;
            match row {
                Some((state, Some(group), created_at)) if state == "queued" => {
                    sqlx::query_scalar(
                        "SELECT id FROM runs WHERE concurrency_group = $1 AND id <> $2
                           AND (state IN ('pending', 'running', 'waiting-approval')
                                OR (state = 'queued' AND (created_at < $3 OR (created_at = $3 AND id < $2))))
                         ORDER BY created_at, id LIMIT 1",
                    )
                    .bind(group)
                    .bind(run_id)
                    .bind(created_at)
                    .fetch_optional(&mut **tx)
                    .await?
                }
                _ => return Ok(None),
            }
        });
        if ahead.is_none() {
            on_backend!(&mut locked.tx, |tx| {
                sqlx::query("UPDATE runs SET state = 'pending', updated_at = $2 WHERE id = $1")
                    .bind(run_id)
                    .bind(rfc3339_utc(now))
                    .execute(&mut **tx)
                    .await?;
            });
        }
        locked.commit().await?;
        Ok(ahead)
    }

    /// Sets a run's state (`running`, `succeeded`, `failed`, ...); a final state also
    /// sets `finished_at`.
    pub async fn set_run_state(&self, run_id: &str, state: &str, now: SystemTime) -> Result<()> {
        let at = rfc3339_utc(now);
        let finished = matches!(state, "succeeded" | "failed" | "cancelled").then_some(at.clone());
        on_backend!(self.pools(), |pool| {
            sqlx::query(
                "UPDATE runs SET state = $2, updated_at = $3, finished_at = COALESCE($4, finished_at)
                 WHERE id = $1",
            )
            .bind(run_id)
            .bind(state)
            .bind(&at)
            .bind(finished)
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    /// The newest `limit` runs, newest first.
    pub async fn runs(&self, limit: u32) -> Result<Vec<RunRow>> {
        let rows: Vec<RunTuple> = on_backend!(self.pools(), |pool| {
            sqlx::query_as(&format!(
                "SELECT {RUN_COLUMNS} FROM runs ORDER BY created_at DESC, id DESC LIMIT $1"
            ))
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await?
        });
        Ok(rows.into_iter().map(RunRow::from).collect())
    }

    /// The run `id`.
    pub async fn run(&self, id: &str) -> Result<Option<RunRow>> {
        let row: Option<RunTuple> = on_backend!(self.pools(), |pool| {
            sqlx::query_as(&format!("SELECT {RUN_COLUMNS} FROM runs WHERE id = $1"))
                .bind(id)
                .fetch_optional(pool)
                .await?
        });
        Ok(row.map(RunRow::from))
    }

    /// The state of a run, if it exists.
    pub async fn run_state(&self, run_id: &str) -> Result<Option<String>> {
        Ok(on_backend!(self.pools(), |pool| {
            sqlx::query_scalar("SELECT state FROM runs WHERE id = $1")
                .bind(run_id)
                .fetch_optional(pool)
                .await?
        }))
    }

    /// The steps of a run, by step id.
    pub async fn run_steps(&self, run_id: &str) -> Result<Vec<StepRow>> {
        let rows: Vec<StepTuple> = on_backend!(self.pools(), |pool| {
            sqlx::query_as(
                "SELECT step_id, state, CAST(attempt AS BIGINT), lease_owner, lease_expires_at, output, error,
                        started_at
                 FROM steps WHERE run_id = $1 ORDER BY step_id",
            )
            .bind(run_id)
            .fetch_all(pool)
            .await?
        });
        Ok(rows.into_iter().map(StepRow::from).collect())
    }

    /// Claims the step for `owner` until `now + lease` if it is pending, or if its
    /// holder's lease has expired (then it starts a new attempt). `None` when someone
    /// else holds it or it has ended.
    pub async fn claim_step(
        &self,
        run_id: &str,
        step_id: &str,
        owner: &str,
        lease: Duration,
        now: SystemTime,
    ) -> Result<Option<Claim>> {
        let now_text = rfc3339_utc(now);
        let until = rfc3339_utc(now + lease);
        let claimed: Option<i64> = on_backend!(self.pools(), |pool| {
            sqlx::query_scalar(CLAIM_SQL)
                .bind(run_id)
                .bind(step_id)
                .bind(owner)
                .bind(&until)
                .bind(&now_text)
                .fetch_optional(pool)
                .await?
        });
        Ok(claimed.map(|attempt| Claim {
            attempt,
            lease_expires_at: until,
        }))
    }

    /// Claims several steps of a run for `owner` in one transaction (one synced commit for
    /// a whole wave), with the same rule as [`Store::claim_step`]; returns the steps it
    /// got, with their claims.
    pub async fn claim_steps(
        &self,
        run_id: &str,
        step_ids: &[&str],
        owner: &str,
        lease: Duration,
        now: SystemTime,
    ) -> Result<Vec<(String, Claim)>> {
        let now_text = rfc3339_utc(now);
        let until = rfc3339_utc(now + lease);
        let mut locked = self.begin_locked().await?;
        let claimed = claim_in(&mut locked, run_id, step_ids, owner, &until, &now_text)
            .await?
            .into_iter()
            .map(|(step_id, attempt)| {
                let claim = Claim {
                    attempt,
                    lease_expires_at: until.clone(),
                };
                (step_id, claim)
            })
            .collect();
        locked.commit().await?;
        Ok(claimed)
    }

    /// Extends `owner`'s lease on the step to `now + lease` and marks it `running`.
    /// [`StoreError::LeaseLost`] if `owner` no longer holds it.
    pub async fn renew_lease(
        &self,
        run_id: &str,
        step_id: &str,
        owner: &str,
        lease: Duration,
        now: SystemTime,
    ) -> Result<()> {
        let until = rfc3339_utc(now + lease);
        let now_text = rfc3339_utc(now);
        let changed = on_backend!(self.pools(), |pool| {
            sqlx::query(
                "UPDATE steps SET state = 'running', lease_expires_at = $4
                 WHERE run_id = $1 AND step_id = $2 AND lease_owner = $3
                   AND state IN ('claimed', 'running') AND lease_expires_at >= $5",
            )
            .bind(run_id)
            .bind(step_id)
            .bind(owner)
            .bind(&until)
            .bind(&now_text)
            .execute(pool)
            .await?
            .rows_affected()
        });
        lease_held(changed, run_id, step_id, owner)
    }

    /// Ends `owner`'s step: its output (succeeded) or error (failed, skipped).
    /// [`StoreError::LeaseLost`] if `owner` no longer holds it, so a result from an
    /// instance that lost its lease is never stored.
    #[allow(clippy::too_many_arguments, reason = "one row's columns, each named")]
    pub async fn finish_step(
        &self,
        run_id: &str,
        step_id: &str,
        owner: &str,
        end: StepEnd,
        output: Option<&str>,
        error: Option<&str>,
        now: SystemTime,
    ) -> Result<()> {
        self.finish_steps(
            run_id,
            owner,
            &[Finished {
                step_id,
                end,
                output,
                error,
            }],
            now,
        )
        .await
    }

    /// Ends several of `owner`'s steps in one transaction (one synced commit for a wave).
    /// If `owner` no longer holds any of them, nothing is stored and the error is
    /// [`StoreError::LeaseLost`] naming it.
    pub async fn finish_steps(
        &self,
        run_id: &str,
        owner: &str,
        steps: &[Finished<'_>],
        now: SystemTime,
    ) -> Result<()> {
        let now_text = rfc3339_utc(now);
        let mut locked = self.begin_locked().await?;
        for step in steps {
            let changed = on_backend!(&mut locked.tx, |tx| {
                sqlx::query(FINISH_SQL)
                    .bind(run_id)
                    .bind(step.step_id)
                    .bind(owner)
                    .bind(step.end.as_str())
                    .bind(step.output)
                    .bind(step.error)
                    .bind(&now_text)
                    .execute(&mut **tx)
                    .await?
                    .rows_affected()
            });
            lease_held(changed, run_id, step.step_id, owner)?;
        }
        locked.commit().await
    }
}

impl Store {
    /// Parks `owner`'s gate step as `waiting` (short of its quorum) and gives up the
    /// claim: whoever continues the run claims it again.
    pub async fn wait_step(
        &self,
        run_id: &str,
        step_id: &str,
        owner: &str,
        now: SystemTime,
    ) -> Result<()> {
        let now_text = rfc3339_utc(now);
        let changed = on_backend!(self.pools(), |pool| {
            sqlx::query(
                "UPDATE steps SET state = 'waiting', lease_owner = NULL, lease_expires_at = NULL
                 WHERE run_id = $1 AND step_id = $2 AND lease_owner = $3
                   AND state IN ('claimed', 'running') AND lease_expires_at >= $4",
            )
            .bind(run_id)
            .bind(step_id)
            .bind(owner)
            .bind(&now_text)
            .execute(pool)
            .await?
            .rows_affected()
        });
        lease_held(changed, run_id, step_id, owner)
    }

    /// Makes the unfinished steps `owner` holds in the run claimable at once, for when
    /// the owner is known to be gone (a local process that no longer exists). Returns
    /// the steps released.
    pub async fn release_leases(&self, run_id: &str, owner: &str) -> Result<Vec<String>> {
        Ok(on_backend!(self.pools(), |pool| {
            sqlx::query_scalar(
                "UPDATE steps SET state = 'pending', lease_owner = NULL, lease_expires_at = NULL
                 WHERE run_id = $1 AND lease_owner = $2 AND state IN ('claimed', 'running')
                 RETURNING step_id",
            )
            .bind(run_id)
            .bind(owner)
            .fetch_all(pool)
            .await?
        }))
    }
}

/// What [`Store::advance`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Advanced {
    /// The steps `owner` now holds, of those it asked for.
    pub claimed: Vec<String>,
    /// The run was cancelled: nothing was claimed.
    pub cancelled: bool,
}

impl Store {
    /// Moves a run on in one transaction (one synced commit): stores the ends of
    /// `owner`'s finished steps (a skipped step need not be held: it is claimed here
    /// first, if it can be), then, unless the run was cancelled, claims `claim` as
    /// [`Store::claim_steps`] does. A runner's wave boundary costs one commit this way.
    /// [`StoreError::LeaseLost`] if `owner` no longer holds a step it ran; then nothing
    /// is stored.
    pub async fn advance(
        &self,
        run_id: &str,
        owner: &str,
        finished: &[Finished<'_>],
        claim: &[&str],
        lease: Duration,
        now: SystemTime,
    ) -> Result<Advanced> {
        let now_text = rfc3339_utc(now);
        let until = rfc3339_utc(now + lease);
        let mut locked = self.begin_locked().await?;
        for step in finished {
            if step.end == StepEnd::Skipped {
                claim_in(
                    &mut locked,
                    run_id,
                    &[step.step_id],
                    owner,
                    &until,
                    &now_text,
                )
                .await?;
            }
            let changed = on_backend!(&mut locked.tx, |tx| {
                sqlx::query(FINISH_SQL)
                    .bind(run_id)
                    .bind(step.step_id)
                    .bind(owner)
                    .bind(step.end.as_str())
                    .bind(step.output)
                    .bind(step.error)
                    .bind(&now_text)
                    .execute(&mut **tx)
                    .await?
                    .rows_affected()
            });
            if step.end != StepEnd::Skipped {
                lease_held(changed, run_id, step.step_id, owner)?;
            }
        }
        let state: Option<String> = on_backend!(&mut locked.tx, |tx| {
            sqlx::query_scalar("SELECT state FROM runs WHERE id = $1")
                .bind(run_id)
                .fetch_optional(&mut **tx)
                .await?
        });
        let cancelled = state.as_deref() == Some("cancelled");
        let claimed = if cancelled {
            Vec::new()
        } else {
            claim_in(&mut locked, run_id, claim, owner, &until, &now_text)
                .await?
                .into_iter()
                .map(|(step_id, _)| step_id)
                .collect()
        };
        locked.commit().await?;
        Ok(Advanced { claimed, cancelled })
    }
}

/// One step's end, for [`Store::finish_steps`].
#[derive(Debug, Clone, Copy)]
pub struct Finished<'a> {
    /// The step.
    pub step_id: &'a str,
    /// How it ended.
    pub end: StepEnd,
    /// Its output JSON, when it succeeded.
    pub output: Option<&'a str>,
    /// Why it failed or was skipped.
    pub error: Option<&'a str>,
}

/// Claims each of `step_ids` that can be claimed ([`CLAIM_SQL`]) inside `locked`;
/// returns the steps claimed with their attempt numbers.
async fn claim_in(
    locked: &mut LockedTx,
    run_id: &str,
    step_ids: &[&str],
    owner: &str,
    until: &str,
    now: &str,
) -> Result<Vec<(String, i64)>> {
    let mut claimed = Vec::new();
    for step_id in step_ids {
        let attempt: Option<i64> = on_backend!(&mut locked.tx, |tx| {
            sqlx::query_scalar(CLAIM_SQL)
                .bind(run_id)
                .bind(*step_id)
                .bind(owner)
                .bind(until)
                .bind(now)
                .fetch_optional(&mut **tx)
                .await?
        });
        if let Some(attempt) = attempt {
            claimed.push(((*step_id).to_owned(), attempt));
        }
    }
    Ok(claimed)
}

fn lease_held(changed: u64, run_id: &str, step_id: &str, owner: &str) -> Result<()> {
    if changed == 1 {
        Ok(())
    } else {
        Err(StoreError::LeaseLost {
            run_id: run_id.to_owned(),
            step_id: step_id.to_owned(),
            owner: owner.to_owned(),
        })
    }
}

type StepTuple = (
    String,
    String,
    i64,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
);

impl From<StepTuple> for StepRow {
    fn from(
        (step_id, state, attempt, lease_owner, lease_expires_at, output, error, started_at): StepTuple,
    ) -> Self {
        Self {
            step_id,
            state,
            attempt,
            lease_owner,
            lease_expires_at,
            output,
            error,
            started_at,
        }
    }
}
