//! Workflows registered with the server, kept by the sha256 of their text: a run request
//! signs that digest, so a registered workflow is named exactly by what its requester
//! signed.

use std::time::SystemTime;

use relo_evidence::rfc3339_utc;

use crate::store::on_backend;
use crate::{Result, Store};

/// A registered workflow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredWorkflow {
    /// sha256 of `text`, hex.
    pub sha256: String,
    /// The workflow's `name:`.
    pub name: String,
    /// The YAML text.
    pub text: String,
    /// Who registered it first.
    pub registered_by: String,
    /// When (RFC 3339).
    pub registered_at: String,
}

type WorkflowTuple = (String, String, String, String, String);

impl From<WorkflowTuple> for StoredWorkflow {
    fn from((sha256, name, text, registered_by, registered_at): WorkflowTuple) -> Self {
        Self {
            sha256,
            name,
            text,
            registered_by,
            registered_at,
        }
    }
}

impl Store {
    /// Registers a workflow's text under its sha256 (`sha256` must be the digest of
    /// `text`; the caller computes it). Registering the same text again keeps the first
    /// registration and returns `false`.
    pub async fn register_workflow(
        &self,
        sha256: &str,
        name: &str,
        text: &str,
        by: &str,
        now: SystemTime,
    ) -> Result<bool> {
        let inserted = on_backend!(self.pools(), |pool| {
            sqlx::query(
                "INSERT INTO workflows (sha256, name, text, registered_by, registered_at)
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT (sha256) DO NOTHING",
            )
            .bind(sha256)
            .bind(name)
            .bind(text)
            .bind(by)
            .bind(rfc3339_utc(now))
            .execute(pool)
            .await?
            .rows_affected()
        });
        Ok(inserted == 1)
    }

    /// The workflow registered with digest `sha256`.
    pub async fn workflow(&self, sha256: &str) -> Result<Option<StoredWorkflow>> {
        let row: Option<WorkflowTuple> = on_backend!(self.pools(), |pool| {
            sqlx::query_as(
                "SELECT sha256, name, text, registered_by, registered_at FROM workflows
                 WHERE sha256 = $1",
            )
            .bind(sha256)
            .fetch_optional(pool)
            .await?
        });
        Ok(row.map(StoredWorkflow::from))
    }

    /// Every registered workflow, newest first.
    pub async fn workflows(&self) -> Result<Vec<StoredWorkflow>> {
        let rows: Vec<WorkflowTuple> = on_backend!(self.pools(), |pool| {
            sqlx::query_as(
                "SELECT sha256, name, text, registered_by, registered_at FROM workflows
                 ORDER BY registered_at DESC, sha256",
            )
            .fetch_all(pool)
            .await?
        });
        Ok(rows.into_iter().map(StoredWorkflow::from).collect())
    }
}
