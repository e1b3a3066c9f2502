//! The evidence service `relo serve` gives the API server: exports and verification done
//! by the same code as `relo evidence export` and `relo evidence verify`, with the
//! home's evidence key and retired keys.

use std::sync::Arc;

use relo_server::{EvidenceService, EvidenceServiceError, ExportedRun, ServiceFuture, Verdict};
use relo_store::Store;

use super::export::{ExportFailure, export_run};
use super::verify::verify_stored_log;
use crate::home::Home;

/// Exports and verifies evidence with a relo home's keys.
#[derive(Debug, Clone)]
pub struct HomeEvidence {
    home: Arc<Home>,
    store: Store,
}

impl HomeEvidence {
    /// The service of `home` over `store`.
    pub fn new(home: Arc<Home>, store: Store) -> HomeEvidence {
        HomeEvidence { home, store }
    }
}

fn failed(error: &anyhow::Error) -> EvidenceServiceError {
    EvidenceServiceError::Failed(format!("{error:#}"))
}

impl EvidenceService for HomeEvidence {
    fn export_run(&self, run_id: String) -> ServiceFuture<ExportedRun> {
        let this = self.clone();
        Box::pin(async move {
            // The key may be a Vault Transit key, whose client blocks: not on a runtime
            // thread.
            let home = Arc::clone(&this.home);
            let signer = tokio::task::spawn_blocking(move || home.evidence_signer())
                .await
                .map_err(|e| EvidenceServiceError::Failed(e.to_string()))?
                .map_err(|e| failed(&e))?;
            match export_run(&this.home, &this.store, signer.as_ref(), &run_id).await {
                Ok(exported) => Ok(ExportedRun {
                    evidence: exported.evidence.to_json_pretty(),
                    provenance: exported.provenance.to_json_pretty(),
                }),
                Err(ExportFailure::NoEvidence(message)) => {
                    Err(EvidenceServiceError::NotFound(message))
                }
                Err(ExportFailure::Tampered(tampering)) => {
                    Err(EvidenceServiceError::Tampered(format!(
                        "the stored log fails verification ({}): {}; nothing was signed",
                        tampering.kind, tampering.message
                    )))
                }
                Err(ExportFailure::Other(error)) => Err(failed(&error)),
            }
        })
    }

    fn verify(&self) -> ServiceFuture<Verdict> {
        let this = self.clone();
        Box::pin(async move {
            let verdict = verify_stored_log(&this.home, &this.store)
                .await
                .map_err(|e| failed(&e))?;
            Ok(match verdict {
                Ok(report) => Verdict {
                    verified: true,
                    entries: report.entries,
                    checkpoints_verified: report.checkpoints_verified as u64,
                    problems: Vec::new(),
                },
                Err(tampering) => Verdict {
                    verified: false,
                    entries: this
                        .store
                        .evidence_size()
                        .await
                        .map_err(|e| EvidenceServiceError::Failed(e.to_string()))?,
                    checkpoints_verified: 0,
                    problems: vec![format!("{}: {}", tampering.kind, tampering.message)],
                },
            })
        })
    }
}
