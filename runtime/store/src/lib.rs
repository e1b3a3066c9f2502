//! relo's persistent state on SQLite or PostgreSQL, and the append-only evidence log.
//!
//! A [`Store`] owns everything relo keeps: plugins (bytes content-addressed by sha256,
//! with their attestations), approvals, blocks and revocations, runs and steps, evidence
//! entries and checkpoints, and the server's users, refresh tokens and API tokens. It
//! opens a SQLite file in the relo home (the default) or a PostgreSQL database, from one
//! URL, and brings the schema up to date with migrations embedded per backend.
//!
//! Evidence is appended with [`Store::append`]: under one database-wide lock, in one
//! transaction, each entry gets the next gapless global `seq`, the next gapless
//! `scope_seq` of its scope, and the previous entry's hash of that scope as `prev_hash`;
//! the hasher (relo-evidence's [`entry_hash`]) computes its hash. [`EvidenceWriter`] puts that behind
//! relo-evidence's [`EvidenceSink`](relo_evidence::EvidenceSink), batching concurrent
//! records into group commits and cutting signed checkpoints ([`Store::checkpoint`])
//! every N entries and on demand. Triggers refuse UPDATE and DELETE (and TRUNCATE) on the
//! append-only tables, as a guard; the hashes and signed checkpoints are what detect
//! tampering. `docs/store.md` describes the tables and the protocol.
//!
//! ```
//! use std::sync::Arc;
//!
//! use relo_evidence::{EvidenceEvent, EvidenceRecord, EvidenceSink, Scope};
//! use relo_store::{CheckpointPolicy, EvidenceWriter, Store, WriterOptions};
//! use relo_trust::{KeyAlgorithm, PrivateKey};
//!
//! # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
//! let home = tempfile::tempdir()?;
//! // `Store::open(home, configured_url)` does the same, letting RELO_DATABASE_URL win.
//! let store = Store::connect(home.path(), "sqlite://relo.db").await?;
//! let origin = store.evidence_origin().await?;
//!
//! // Entries are hashed with relo-evidence's `entry_hash`; a checkpoint every 1000.
//! let options = WriterOptions {
//!     checkpoints: Some(CheckpointPolicy {
//!         every: 1000,
//!         signer: Arc::new(PrivateKey::generate(KeyAlgorithm::Ed25519)),
//!         key_name: origin.clone(),
//!         origin,
//!     }),
//!     ..WriterOptions::default()
//! };
//! let writer = EvidenceWriter::spawn(store.clone(), options);
//! let record = |name: &str| {
//!     EvidenceRecord::new(
//!         Scope::Run("run-1".into()),
//!         Some("deploy".into()),
//!         EvidenceEvent::SecretRead {
//!             name: name.into(),
//!             reference: "kv/data/app#token".into(),
//!             version: Some(1),
//!         },
//!     )
//! };
//! writer.enqueue(record("token"));
//! let ticket = writer.enqueue(record("key"));
//! writer.durable(ticket).await?; // committed and synced
//! let checkpoint = writer.checkpoint().await?; // a run's end
//! assert_eq!(checkpoint.size, 2);
//!
//! let chain = store.scope_entries("run-1", 0, 100).await?;
//! assert_eq!(chain.len(), 2);
//! assert_eq!(chain[0].prev_hash, relo_store::GENESIS_PREV_HASH);
//! assert_eq!(chain[1].prev_hash, chain[0].hash);
//! assert_eq!(chain[1].hash, hex::encode(relo_store::entry_hash(&chain[1].to_hash())?));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # }).unwrap();
//! ```

mod api_tokens;
mod auth;
mod drivers;
mod error;
mod evidence;
mod gates;
mod people;
mod people_check;
mod plugins;
mod runs;
mod seal;
mod snapshots;
mod state;
mod store;
mod trusted;
mod url;
mod workflows;
mod writer;

pub use api_tokens::{NewApiToken, StoredApiToken};
pub use auth::{NewRefreshToken, NewUser, Rotation, StoredRefreshToken, StoredUser};
pub use drivers::DriverClaim;
pub use error::{Result, StoreError};
pub use evidence::{
    Checkpoint, CheckpointBasis, CheckpointDraft, CheckpointError, EntryDraft, EntryToHash,
    EvidenceTampered, GENESIS_PREV_HASH, Hash, HashFn, StoredEntry, entry_hash,
};
pub use gates::GateApproval;
pub use people::{DirectoryPerson, NewPersonKey, PeopleDirectory, StoredPersonKey};
pub use people_check::{PeopleTampered, check_people};
pub use plugins::{Added, Block, NewApproval, NewPlugin, StoredApproval, StoredPlugin};
pub use relo_evidence::rfc3339_utc;
pub use runs::{
    Advanced, CONTROL_SCOPE, Claim, Finished, NewRun, Placed, RunRow, StepEnd, StepRow,
};
pub use seal::{EvidenceSeal, SealCheck, StoredSeal};
pub use snapshots::{
    SNAPSHOT_CHUNK_BYTES, SnapshotError, SnapshotReader, SnapshotUpload, StoredLogLine,
    StoredSnapshot,
};
pub use state::{StoredRun, check_state};
pub use store::Store;
pub use url::{DATABASE_URL_ENV, DEFAULT_DATABASE_URL, effective_database_url};
pub use workflows::StoredWorkflow;
pub use writer::{CheckpointHook, CheckpointPolicy, EntryHasher, EvidenceWriter, WriterOptions};
