//! relo's persistent state on SQLite or PostgreSQL, and the append-only evidence log.
//!
//! A [`Store`] owns everything relo keeps: plugins (bytes content-addressed by sha256,
//! with their attestations), approvals, blocks and revocations, runs and steps, evidence
//! entries and checkpoints. It opens a SQLite file in the relo home (the default) or a
//! PostgreSQL database, from one URL, and brings the schema up to date with migrations
//! embedded per backend.
//!
//! Evidence is appended with [`Store::append`]: under one database-wide lock, in one
//! transaction, each entry gets the next gapless global `seq`, the next gapless
//! `scope_seq` of its scope, and the previous entry's hash of that scope as `prev_hash`;
//! the caller's hasher computes its hash. [`EvidenceWriter`] puts that behind
//! relo-evidence's [`EvidenceSink`](relo_evidence::EvidenceSink), batching concurrent
//! records into group commits. Triggers refuse UPDATE and DELETE (and TRUNCATE) on the
//! append-only tables, as a guard; the hashes and signed checkpoints are what detect
//! tampering. `docs/store.md` describes the tables and the protocol.
//!
//! ```
//! use std::sync::Arc;
//!
//! use relo_evidence::{EvidenceEvent, EvidenceRecord, EvidenceSink, Scope};
//! use relo_store::{EntryToHash, EvidenceWriter, Store, WriterOptions};
//! use sha2::{Digest, Sha256};
//!
//! // relo-evidence supplies the real hash (over canonical JSON of these fields).
//! fn hash(entry: &EntryToHash<'_>) -> [u8; 32] {
//!     let mut h = Sha256::new();
//!     for part in [entry.scope, entry.kind, entry.time, entry.body, entry.prev_hash] {
//!         h.update(part.len().to_be_bytes());
//!         h.update(part);
//!     }
//!     h.update(entry.seq.to_be_bytes());
//!     h.update(entry.scope_seq.to_be_bytes());
//!     h.finalize().into()
//! }
//!
//! # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
//! let home = tempfile::tempdir()?;
//! // `Store::open(home, configured_url)` does the same, letting RELO_DATABASE_URL win.
//! let store = Store::connect(home.path(), "sqlite://relo.db").await?;
//!
//! let writer = EvidenceWriter::spawn(store.clone(), Arc::new(hash), WriterOptions::default());
//! let record = |name: &str| {
//!     EvidenceRecord::new(
//!         Scope::Run("run-1".into()),
//!         Some("deploy".into()),
//!         EvidenceEvent::SecretRead { name: name.into() },
//!     )
//! };
//! writer.enqueue(record("token"));
//! let ticket = writer.enqueue(record("key"));
//! writer.durable(ticket).await?; // committed and synced
//!
//! let chain = store.scope_entries("run-1", 0, 100).await?;
//! assert_eq!(chain.len(), 2);
//! assert_eq!(chain[0].prev_hash, relo_store::GENESIS_PREV_HASH);
//! assert_eq!(chain[1].prev_hash, chain[0].hash);
//! assert_eq!(chain[1].hash, hex::encode(hash(&chain[1].to_hash())));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # }).unwrap();
//! ```

mod error;
mod evidence;
mod store;
mod time;
mod url;
mod writer;

pub use error::{Result, StoreError};
pub use evidence::{
    Checkpoint, CheckpointBasis, CheckpointDraft, CheckpointError, EntryDraft, EntryToHash,
    GENESIS_PREV_HASH, Hash, StoredEntry,
};
pub use store::Store;
pub use time::rfc3339_utc;
pub use url::{DATABASE_URL_ENV, DEFAULT_DATABASE_URL, effective_database_url};
pub use writer::{EntryHasher, EvidenceWriter, WriterOptions};
