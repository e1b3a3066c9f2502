//! Signed approvals of a run's approval gates.
//!
//! An approval is stored together with its `gate.approved` evidence entry, in one
//! transaction, so the evidence lists every approval the store holds. The table is
//! append-only; the runner verifies each envelope again before counting it.

use std::time::SystemTime;

use relo_evidence::{EvidenceRecord, rfc3339_utc};

use crate::store::on_backend;
use crate::{Result, Store, StoreError};

/// A gate approval as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GateApproval {
    /// The run.
    pub run_id: String,
    /// The gate's step id.
    pub step_id: String,
    /// The approving person, as their key says.
    pub approver: String,
    /// The key id that signed it.
    pub key_id: String,
    /// The signed approval, a DSSE envelope (JSON).
    pub envelope: String,
    /// When it was stored (RFC 3339).
    pub approved_at: String,
}

impl Store {
    /// Stores `approval` and appends `record` (its `gate.approved` entry) in one
    /// transaction. A second approval of the same gate by the same person is refused with
    /// [`StoreError::Duplicate`]. With `resume`, a run waiting for approval becomes
    /// `running` in the same transaction, so that if whoever stored the approval dies
    /// before driving the run on, another instance's sweep takes it up.
    pub async fn add_gate_approval(
        &self,
        approval: &GateApproval,
        record: &EvidenceRecord,
        now: SystemTime,
        resume: bool,
    ) -> Result<()> {
        let mut locked = self.begin_locked().await?;
        let existing: Option<String> = on_backend!(&mut locked.tx, |tx| {
            sqlx::query_scalar(
                "SELECT approver FROM gate_approvals WHERE run_id = $1 AND step_id = $2 AND approver = $3",
            )
            .bind(&approval.run_id)
            .bind(&approval.step_id)
            .bind(&approval.approver)
            .fetch_optional(&mut **tx)
            .await?
        });
        if existing.is_some() {
            return Err(StoreError::Duplicate(format!(
                "{} has already approved step {} of run {}",
                approval.approver, approval.step_id, approval.run_id
            )));
        }
        on_backend!(&mut locked.tx, |tx| {
            sqlx::query(
                "INSERT INTO gate_approvals (run_id, step_id, approver, key_id, envelope, approved_at)
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(&approval.run_id)
            .bind(&approval.step_id)
            .bind(&approval.approver)
            .bind(&approval.key_id)
            .bind(&approval.envelope)
            .bind(rfc3339_utc(now))
            .execute(&mut **tx)
            .await?;
        });
        if resume {
            on_backend!(&mut locked.tx, |tx| {
                sqlx::query(
                    "UPDATE runs SET state = 'running', updated_at = $2
                     WHERE id = $1 AND state = 'waiting-approval'",
                )
                .bind(&approval.run_id)
                .bind(rfc3339_utc(now))
                .execute(&mut **tx)
                .await?;
            });
        }
        self.record_in(&mut locked, record).await?;
        locked.commit().await
    }

    /// The approvals stored for one gate of a run, oldest first.
    pub async fn gate_approvals(&self, run_id: &str, step_id: &str) -> Result<Vec<GateApproval>> {
        let rows: Vec<(String, String, String, String, String, String)> =
            on_backend!(self.pools(), |pool| {
                sqlx::query_as(
                    "SELECT run_id, step_id, approver, key_id, envelope, approved_at
                     FROM gate_approvals WHERE run_id = $1 AND step_id = $2
                     ORDER BY approved_at, approver",
                )
                .bind(run_id)
                .bind(step_id)
                .fetch_all(pool)
                .await?
            });
        Ok(rows
            .into_iter()
            .map(
                |(run_id, step_id, approver, key_id, envelope, approved_at)| GateApproval {
                    run_id,
                    step_id,
                    approver,
                    key_id,
                    envelope,
                    approved_at,
                },
            )
            .collect())
    }
}
