//! Runs relo workflows. This first part admits plugins: [`PluginCatalog`] resolves a
//! step's `uses:` through the store, verifies the plugin's attestation against the trust
//! policy (once per digest and attestation per process), and before every step checks
//! blocks, revocations and approval expiry, then computes the step's effective grant
//! (declared ∩ approved ∩ ceilings) and hands the sandbox a loaded component. Nothing is
//! compiled unless all of that checks out; every refusal is a `plugin.refused` evidence
//! entry naming the failed check.
//!
//! [`CredentialSource`] issues each step its credentials: the secrets its grant allows,
//! read (with Vault) through a child token that may read exactly those paths and lives as
//! long as the step's timeout, revoked when the step ends; and the signers of the key
//! names it may use.

mod catalog;
mod credentials;
pub mod expr;
pub mod params;
mod people;
pub mod plan;
mod request;
mod run;
mod stored;
mod workspace;

pub use catalog::{AdmittedPlugin, CatalogError, PluginCatalog, Review};
pub use credentials::{
    CredentialError, CredentialSource, IssuedCredentials, SECRETS_FILE, SecretBackend,
};
pub use people::{People, PeopleError};
pub use request::{
    Approver, GATE_APPROVAL_TYPE, GateApprovalPayload, RUN_REQUEST_TYPE, RunRequest, SignedRefusal,
};
pub use run::{Progress, RunError, RunOutcome, RunSpec, Runner};
pub use stored::{StoredRun, StoredRunError, cancel_run};
pub use workspace::{
    Archived, SEED_LIMITS, Snapshot, WorkspaceError, Workspaces, archive, snapshot_of,
};
