//! The batching evidence writer: relo-evidence's [`EvidenceSink`] on top of the store.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use relo_evidence::{EntryError, EvidenceError, EvidenceRecord, EvidenceSink, Ticket};
use relo_trust::Signer;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::error::StoreError;
use crate::evidence::{Checkpoint, EntryDraft, EntryToHash, Hash, entry_hash};
use crate::store::Store;

/// The entry hash function the writer chains with: [`entry_hash`] unless a test
/// supplies its own. An error fails the append (and stops the writer).
pub type EntryHasher = dyn Fn(&EntryToHash<'_>) -> Result<Hash, EntryError> + Send + Sync;

/// Cut a signed checkpoint every `every` entries this writer appends.
#[derive(Clone)]
pub struct CheckpointPolicy {
    /// Entries appended between checkpoints (at least 1). A checkpoint is cut after the
    /// batch that reaches the count, so it may cover a few more.
    pub every: u64,
    /// The evidence key (Ed25519).
    pub signer: Arc<dyn Signer>,
    /// The key name on the note's signature line.
    pub key_name: String,
    /// The log's origin ([`Store::evidence_origin`]).
    pub origin: String,
}

impl fmt::Debug for CheckpointPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CheckpointPolicy")
            .field("every", &self.every)
            .field("key_id", &self.signer.key_id())
            .field("key_name", &self.key_name)
            .field("origin", &self.origin)
            .finish()
    }
}

/// How an [`EvidenceWriter`] batches, hashes and checkpoints.
#[derive(Clone)]
pub struct WriterOptions {
    /// The most records appended in one transaction.
    pub max_batch: usize,
    /// The hash entries are chained with.
    pub hasher: Arc<EntryHasher>,
    /// Periodic checkpoints, and the key for [`EvidenceWriter::checkpoint`].
    pub checkpoints: Option<CheckpointPolicy>,
}

impl fmt::Debug for WriterOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WriterOptions")
            .field("max_batch", &self.max_batch)
            .field("checkpoints", &self.checkpoints)
            .finish_non_exhaustive()
    }
}

impl Default for WriterOptions {
    /// Batches of up to 4096 records, hashed with [`entry_hash`], no checkpoints.
    fn default() -> Self {
        WriterOptions {
            max_batch: 4096,
            hasher: Arc::new(entry_hash),
            checkpoints: None,
        }
    }
}

/// An [`EvidenceSink`] that stores records in a [`Store`] with group commits.
///
/// [`enqueue`](EvidenceSink::enqueue) numbers the record and puts it on an unbounded
/// queue; it never waits for the database. A background task takes everything queued
/// (up to [`WriterOptions::max_batch`]), appends it as one transaction with
/// [`Store::append`], and then announces the highest ticket that is durable.
/// [`durable`](EvidenceSink::durable) waits for that announcement. Records are stored in
/// ticket order, so each scope's chain follows the order its records were enqueued.
///
/// Records become drafts with [`EntryDraft::from_record`]. With a
/// [`CheckpointPolicy`], a signed checkpoint is cut after every `every` entries, and
/// [`checkpoint`](EvidenceWriter::checkpoint) cuts one on demand (at a run's end). A
/// checkpoint that fails is logged and retried at the next batch; the entries are
/// stored and chained regardless.
///
/// A failed append is final: the writer stops, and every ticket not yet durable reports
/// the failure, so no step's result is accepted on evidence that was never stored.
#[derive(Debug)]
pub struct EvidenceWriter {
    store: Store,
    checkpoints: Option<CheckpointPolicy>,
    queue: Mutex<Queue>,
    progress: watch::Receiver<Progress>,
    task: Mutex<Option<JoinHandle<()>>>,
}

#[derive(Debug)]
struct Queue {
    issued: u64,
    sender: Option<mpsc::UnboundedSender<(Ticket, EvidenceRecord)>>,
}

#[derive(Debug, Clone, Default)]
struct Progress {
    durable: u64,
    failure: Option<Arc<str>>,
}

impl EvidenceWriter {
    /// Starts the writer task on the current tokio runtime.
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime, like [`tokio::spawn`].
    pub fn spawn(store: Store, options: WriterOptions) -> EvidenceWriter {
        let (sender, receiver) = mpsc::unbounded_channel();
        let (progress_tx, progress) = watch::channel(Progress::default());
        let checkpoints = options.checkpoints.clone();
        let task = tokio::spawn(write_batches(store.clone(), options, receiver, progress_tx));
        EvidenceWriter {
            store,
            checkpoints,
            queue: Mutex::new(Queue {
                issued: 0,
                sender: Some(sender),
            }),
            progress,
            task: Mutex::new(Some(task)),
        }
    }

    /// The highest ticket whose record, and every one before it, is durable.
    pub fn durable_ticket(&self) -> Ticket {
        Ticket(self.progress.borrow().durable)
    }

    /// Stops accepting records, stores everything already queued, and waits for the
    /// writer task to end. Returns the writer's failure, if it had one.
    pub async fn close(&self) -> Result<(), EvidenceError> {
        drop(self.lock_queue().sender.take());
        let task = lock(&self.task).take();
        if let Some(task) = task {
            task.await.map_err(|err| {
                EvidenceError::Store(format!("evidence writer task ended abnormally: {err}"))
            })?;
        }
        match &self.progress.borrow().failure {
            Some(failure) => Err(EvidenceError::Store(failure.to_string())),
            None => Ok(()),
        }
    }

    /// Waits until everything enqueued so far is durable, then cuts a signed checkpoint
    /// of the whole log (what a run's end does). Needs a [`CheckpointPolicy`].
    pub async fn checkpoint(&self) -> Result<Checkpoint, StoreError> {
        let Some(policy) = &self.checkpoints else {
            return Err(StoreError::Checkpoint(
                "this evidence writer has no checkpoint key".into(),
            ));
        };
        let issued = Ticket(self.lock_queue().issued);
        self.durable(issued)
            .await
            .map_err(|err| StoreError::Checkpoint(Box::new(err)))?;
        self.store
            .checkpoint(&*policy.signer, &policy.key_name, &policy.origin)
            .await
    }

    fn lock_queue(&self) -> MutexGuard<'_, Queue> {
        lock(&self.queue)
    }
}

/// Locks `mutex`; a panic while it was held cannot leave these values half-written.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl EvidenceSink for EvidenceWriter {
    fn enqueue(&self, record: EvidenceRecord) -> Ticket {
        // Numbering and queueing under one lock keeps the queue in ticket order.
        let mut queue = self.lock_queue();
        queue.issued += 1;
        let ticket = Ticket(queue.issued);
        if let Some(sender) = &queue.sender {
            // A send fails only once the writer has stopped; `durable` then reports why.
            let _ = sender.send((ticket, record));
        }
        ticket
    }

    fn durable(
        &self,
        ticket: Ticket,
    ) -> Pin<Box<dyn Future<Output = Result<(), EvidenceError>> + Send + '_>> {
        let issued = self.lock_queue().issued;
        let mut progress = self.progress.clone();
        Box::pin(async move {
            if ticket.0 > issued {
                return Err(EvidenceError::Store(format!(
                    "ticket {} was never issued by this writer",
                    ticket.0
                )));
            }
            // An error here means the writer task is gone; its last word is still readable.
            let _ = progress
                .wait_for(|p| p.durable >= ticket.0 || p.failure.is_some())
                .await;
            let last = progress.borrow();
            if last.durable >= ticket.0 {
                Ok(())
            } else if let Some(failure) = &last.failure {
                Err(EvidenceError::Store(failure.to_string()))
            } else {
                Err(EvidenceError::Closed)
            }
        })
    }
}

/// The writer task: drain, append, announce, checkpoint when due; stop at the first
/// failed append.
async fn write_batches(
    store: Store,
    options: WriterOptions,
    mut receiver: mpsc::UnboundedReceiver<(Ticket, EvidenceRecord)>,
    progress: watch::Sender<Progress>,
) {
    let max_batch = options.max_batch.max(1);
    let mut batch = Vec::with_capacity(max_batch);
    let mut drafts = Vec::with_capacity(max_batch);
    let mut since_checkpoint: u64 = 0;
    while receiver.recv_many(&mut batch, max_batch).await > 0 {
        drafts.extend(
            batch
                .iter()
                .map(|(_, record)| EntryDraft::from_record(record)),
        );
        let last = batch.last().map_or(0, |(ticket, _)| ticket.0);
        match store.append(&drafts, &*options.hasher).await {
            Ok(_) => progress.send_modify(|p| p.durable = last),
            Err(err) => {
                tracing::error!(error = %err, "evidence writer stopped: append failed");
                let failure: Arc<str> = Arc::from(format!(
                    "appending evidence to {} failed: {err}",
                    store.target()
                ));
                progress.send_modify(|p| p.failure = Some(failure));
                return;
            }
        }
        since_checkpoint += drafts.len() as u64;
        if let Some(policy) = &options.checkpoints
            && since_checkpoint >= policy.every.max(1)
        {
            match store
                .checkpoint(&*policy.signer, &policy.key_name, &policy.origin)
                .await
            {
                Ok(_) => since_checkpoint = 0,
                Err(err) => tracing::error!(error = %err, "evidence checkpoint failed"),
            }
        }
        batch.clear();
        drafts.clear();
    }
}
