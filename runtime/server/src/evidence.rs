//! Evidence over the API: a run's signed export, the verdict on the whole log, and the
//! checkpoints.
//!
//! Exporting signs with the evidence key and verifying needs the retired keys: both live
//! in the relo home, which the server does not read itself. Whoever starts the server
//! hands it an [`EvidenceService`] that does these with the home (`relo serve` gives
//! it the same code as `relo evidence export` and `relo evidence verify`).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Serialize;
use serde_json::Value;

use crate::error::ApiError;
use crate::state::AppState;

/// A future an [`EvidenceService`] answers with.
pub type ServiceFuture<T> =
    Pin<Box<dyn Future<Output = Result<T, EvidenceServiceError>> + Send + 'static>>;

/// Exports and verifies evidence with the keys of a relo home.
pub trait EvidenceService: Send + Sync + std::fmt::Debug {
    /// The run's evidence and provenance statements, each a signed DSSE envelope (JSON),
    /// as `relo evidence export --run` writes them.
    fn export_run(&self, run_id: String) -> ServiceFuture<ExportedRun>;
    /// Verifies the whole log and its checkpoints, as `relo evidence verify` does.
    fn verify(&self) -> ServiceFuture<Verdict>;
}

/// A run's export.
#[derive(Debug, Clone)]
pub struct ExportedRun {
    /// The evidence statement's envelope, JSON.
    pub evidence: String,
    /// The provenance statement's envelope, JSON.
    pub provenance: String,
}

/// What verifying the log found.
#[derive(Debug, Clone, Serialize)]
pub struct Verdict {
    /// Whether everything verifies.
    pub verified: bool,
    /// Entries in the log.
    pub entries: u64,
    /// Checkpoints whose signatures and consistency verified.
    pub checkpoints_verified: u64,
    /// The first tampering found, described (empty when verified).
    pub problems: Vec<String>,
}

/// Why an [`EvidenceService`] could not answer.
#[derive(Debug, Clone, thiserror::Error)]
pub enum EvidenceServiceError {
    /// The run has no evidence.
    #[error("{0}")]
    NotFound(String),
    /// The log fails verification, so nothing is signed over it.
    #[error("{0}")]
    Tampered(String),
    /// Anything else (logged, not described to the client).
    #[error("{0}")]
    Failed(String),
}

/// A checkpoint as listed.
#[derive(Debug, Serialize)]
pub(crate) struct CheckpointView {
    id: u64,
    size: u64,
    root: String,
    key_id: String,
    created_at: String,
    note: String,
}

/// The two envelopes of a run's export.
#[derive(Debug, Serialize)]
pub(crate) struct ExportView {
    evidence: Value,
    provenance: Value,
}

fn service(state: &AppState) -> Result<&Arc<dyn EvidenceService>, ApiError> {
    state.evidence_service().ok_or_else(|| {
        ApiError::new(
            StatusCode::CONFLICT,
            "no-evidence-key",
            "this server was started without the relo home's evidence keys, so it cannot \
             export or verify evidence",
        )
    })
}

fn answer(error: EvidenceServiceError) -> ApiError {
    match error {
        EvidenceServiceError::NotFound(message) => {
            ApiError::new(StatusCode::NOT_FOUND, "no-evidence", message)
        }
        EvidenceServiceError::Tampered(message) => {
            ApiError::new(StatusCode::CONFLICT, "evidence-tampered", message)
        }
        EvidenceServiceError::Failed(message) => ApiError::internal(message),
    }
}

/// `GET /v1/runs/{id}/evidence`: the run's signed evidence and provenance statements.
pub(crate) async fn export(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<ExportView>, ApiError> {
    let exported = service(&state)?.export_run(id).await.map_err(answer)?;
    let parse = |text: &str| serde_json::from_str::<Value>(text).map_err(ApiError::internal);
    Ok(Json(ExportView {
        evidence: parse(&exported.evidence)?,
        provenance: parse(&exported.provenance)?,
    }))
}

/// `GET /v1/evidence/verify`: whether the whole log and its checkpoints verify.
pub(crate) async fn verify(State(state): State<AppState>) -> Result<Json<Verdict>, ApiError> {
    Ok(Json(service(&state)?.verify().await.map_err(answer)?))
}

/// `GET /v1/evidence/checkpoints`: every stored checkpoint, oldest first, with its signed
/// note.
pub(crate) async fn checkpoints(
    State(state): State<AppState>,
) -> Result<Json<Vec<CheckpointView>>, ApiError> {
    let all = state
        .store()
        .checkpoints()
        .await
        .map_err(ApiError::internal)?;
    Ok(Json(
        all.into_iter()
            .map(|c| CheckpointView {
                id: c.id,
                size: c.size,
                root: c.root,
                key_id: c.key_id,
                created_at: c.created_at,
                note: c.note,
            })
            .collect(),
    ))
}
