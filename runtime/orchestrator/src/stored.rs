//! A run read back from the store to be carried on (resumed, approved, picked up by
//! another instance): its request verified again, so a run whose stored request or
//! workflow was edited is refused, not run.

use relo_evidence::{EvidenceEvent, EvidenceRecord, Scope};
use relo_manifest::Workflow;
use relo_store::{RunRow, Store, StoreError};

use crate::people::{People, PeopleError};
use crate::request::RunRequest;

/// A run that has not ended, with its request verified (the requester's signature, and
/// that the stored workflow is the one signed) and its workflow parsed.
#[derive(Debug, Clone)]
pub struct StoredRun {
    /// The row.
    pub row: RunRow,
    /// The verified request.
    pub request: RunRequest,
    /// The workflow the run runs.
    pub workflow: Workflow,
    /// Its text.
    pub text: String,
}

/// Why a stored run cannot be carried on.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoredRunError {
    /// There is no such run.
    #[error("there is no run {0}")]
    NoRun(String),
    /// The run has ended.
    #[error("run {run_id} has ended ({state})")]
    Ended {
        /// The run.
        run_id: String,
        /// How it ended.
        state: String,
    },
    /// The run was made by a relo that did not keep workflows.
    #[error("run {0} was made by an older relo that did not keep its workflow")]
    NoWorkflow(String),
    /// The stored request does not verify, or is another run's.
    #[error("refused ({code}): {reason}")]
    Refused {
        /// The refusal code (`bad-signature`, `workflow-mismatch`, `wrong-run`, ...).
        code: &'static str,
        /// Why.
        reason: String,
    },
    /// The stored workflow does not parse.
    #[error("the stored workflow is invalid:\n{0}")]
    InvalidWorkflow(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The people whose requests count could not be read.
    #[error(transparent)]
    People(#[from] PeopleError),
}

impl StoredRun {
    /// Loads run `id` and verifies its request against `people` as they are now.
    pub async fn load(
        store: &Store,
        people: &People,
        id: &str,
    ) -> Result<StoredRun, StoredRunError> {
        let row = store
            .run(id)
            .await?
            .ok_or_else(|| StoredRunError::NoRun(id.to_owned()))?;
        if matches!(row.state.as_str(), "succeeded" | "failed" | "cancelled") {
            return Err(StoredRunError::Ended {
                run_id: id.to_owned(),
                state: row.state,
            });
        }
        let text = row
            .workflow_text
            .clone()
            .ok_or_else(|| StoredRunError::NoWorkflow(id.to_owned()))?;
        let request = RunRequest::verify(&row.request, &*people.policy().await?, &text).map_err(
            |refusal| StoredRunError::Refused {
                code: refusal.code,
                reason: format!("the stored run request does not verify: {}", refusal.reason),
            },
        )?;
        if request.run_id != row.id {
            return Err(StoredRunError::Refused {
                code: "wrong-run",
                reason: format!("the stored request is for run {}, not {id}", request.run_id),
            });
        }
        let workflow =
            relo_manifest::parse_workflow(&format!("run {id} workflow"), text.as_bytes())
                .map_err(|d| StoredRunError::InvalidWorkflow(d.render()))?;
        Ok(StoredRun {
            row,
            request,
            workflow,
            text,
        })
    }
}

/// Cancels run `run_id` for `by` (who has been checked to be allowed to): the run becomes
/// `cancelled` and its evidence says by whom; no further step of it starts (a runner
/// checks at every wave). The caller removes any local workspace.
pub async fn cancel_run(store: &Store, run_id: &str, by: &str) -> Result<(), StoreError> {
    store
        .set_run_state(run_id, "cancelled", std::time::SystemTime::now())
        .await?;
    store
        .record(&EvidenceRecord::new(
            Scope::Run(run_id.to_owned()),
            None,
            EvidenceEvent::RunFinished {
                outcome: "cancelled".into(),
                root_cause: Some(format!("cancelled by {by}")),
            },
        ))
        .await
}
