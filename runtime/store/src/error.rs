//! The store's error type.

use std::path::PathBuf;

/// What can go wrong opening or using a [`Store`](crate::Store).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The database URL is not one the store understands.
    #[error("invalid database url `{url}`: {reason}")]
    InvalidUrl {
        /// The URL, with any password replaced by `***`.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The directory for the SQLite file could not be created.
    #[error("cannot create the directory {}: {source}", path.display())]
    CreateDir {
        /// The directory.
        path: PathBuf,
        /// Why it failed.
        source: std::io::Error,
    },
    /// The SQLite file (or its WAL or shared-memory file) may be read by the group or by
    /// others: refused rather than opened, since it holds the runs' data.
    #[error(
        "insecure-permissions: {} has mode {mode:o}, readable beyond its owner: \
         run `chmod 600` on it (and on its -wal and -shm files)",
        path.display()
    )]
    InsecurePermissions {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// The database could not be opened: unreachable server, bad credentials, or a file
    /// that is not a SQLite database.
    #[error("cannot open the database {target}: {source}")]
    Open {
        /// The file path or the URL (password hidden).
        target: String,
        /// Why it failed.
        source: sqlx::Error,
    },
    /// The database was created by a newer relo.
    #[error(
        "the database has schema version {found}, newer than this relo supports ({supported}); upgrade relo"
    )]
    SchemaTooNew {
        /// The version found in the database.
        found: i64,
        /// The newest version this build knows.
        supported: i64,
    },
    /// A schema migration failed; the database is left at the previous version.
    #[error("migrating the database to schema version {version} failed: {source}")]
    Migrate {
        /// The version that failed to apply.
        version: i64,
        /// Why it failed.
        source: sqlx::Error,
    },
    /// A query failed.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// An entry handed to [`Store::append`](crate::Store::append) cannot be stored.
    #[error("invalid evidence entry: {0}")]
    InvalidEntry(String),
    /// What the database holds breaks an invariant the store keeps (a negative or
    /// missing sequence number, a hash that is not hex, ...).
    #[error("the stored evidence is inconsistent: {0}")]
    Inconsistent(String),
    /// The hasher refused an entry (its body is not a JSON object, or has no canonical
    /// form); nothing of the append was stored.
    #[error("cannot hash evidence entry {seq} (scope `{scope}`): {source}")]
    Hash {
        /// The `seq` the entry would have had.
        seq: u64,
        /// Its scope.
        scope: String,
        /// Why.
        source: relo_evidence::EntryError,
    },
    /// The owner no longer holds the step: its lease expired (and perhaps another
    /// instance claimed it) or the step ended.
    #[error(
        "{owner} no longer holds step {step_id} of run {run_id}: its lease expired or the step ended"
    )]
    LeaseLost {
        /// The run.
        run_id: String,
        /// The step.
        step_id: String,
        /// Who tried to act on it.
        owner: String,
    },
    /// The run's concurrency group is busy and the workflow says to refuse.
    #[error(
        "concurrency group `{group}` is busy with run {run_id}; the workflow refuses a second run (on_conflict: refuse)"
    )]
    GroupBusy {
        /// The group.
        group: String,
        /// The run holding it.
        run_id: String,
    },
    /// The requester already has as many runs that have not ended as they may.
    #[error(
        "{requester} already has {active} runs that have not ended, the most allowed at once ({limit}); wait for one to end"
    )]
    RunQuota {
        /// Who asked.
        requester: String,
        /// Their runs that have not ended.
        active: u64,
        /// The limit.
        limit: u32,
    },
    /// A row would be stored twice (for example a second approval of a gate by one person).
    #[error("{0}")]
    Duplicate(String),
    /// No user has this name.
    #[error("no user named {0}")]
    UnknownUser(String),
    /// Another component is already stored under this `name@version`.
    #[error("{reference} is already stored with digest {digest}; publish a new version")]
    VersionTaken {
        /// `name@version`.
        reference: String,
        /// The digest stored under it.
        digest: String,
    },
    /// Stored evidence failed a check before it was trusted or signed over.
    #[error(transparent)]
    Tampered(#[from] crate::evidence::EvidenceTampered),
    /// The evidence key could not sign a batch seal; the batch is not stored.
    #[error("cannot seal the evidence batch: {0}")]
    Seal(#[source] relo_trust::TrustError),
    /// The caller's checkpoint function refused to produce a checkpoint.
    #[error("checkpoint refused: {0}")]
    Checkpoint(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// The store's result type.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;
