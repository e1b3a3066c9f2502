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
/// supplies its own. An error fails the append of that batch (the writer goes on).
pub type EntryHasher = dyn Fn(&EntryToHash<'_>) -> Result<Hash, EntryError> + Send + Sync;

/// Called with every checkpoint the writer cuts, once it is stored (the CLI appends it
/// to the evidence witness). An error is logged for a periodic checkpoint and returned
/// by [`EvidenceWriter::checkpoint`].
#[derive(Clone)]
pub struct CheckpointHook(Arc<HookFn>);

/// What a [`CheckpointHook`] calls.
type HookFn = dyn Fn(&Checkpoint) -> Result<(), HookError> + Send + Sync;

/// Why a [`CheckpointHook`] failed.
type HookError = Box<dyn std::error::Error + Send + Sync>;

impl CheckpointHook {
    /// The hook that calls `hook`.
    pub fn new(
        hook: impl Fn(&Checkpoint) -> Result<(), HookError> + Send + Sync + 'static,
    ) -> Self {
        Self(Arc::new(hook))
    }

    fn call(&self, checkpoint: &Checkpoint) -> Result<(), StoreError> {
        (self.0)(checkpoint).map_err(StoreError::Checkpoint)
    }
}

impl fmt::Debug for CheckpointHook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CheckpointHook")
    }
}

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
    /// Called with each checkpoint cut, after it is stored.
    pub on_checkpoint: Option<CheckpointHook>,
}

impl fmt::Debug for WriterOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WriterOptions")
            .field("max_batch", &self.max_batch)
            .field("checkpoints", &self.checkpoints)
            .field("on_checkpoint", &self.on_checkpoint)
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
            on_checkpoint: None,
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
/// A failed append fails that batch only. Its records are never stored; the writer
/// logs the failure, remembers the batch's ticket range, and goes on with the next
/// batch. The store numbers and links each batch inside its own transaction, so the
/// chains stay gapless and linked without the lost entries. Waiting on a ticket of the
/// failed batch gives [`EvidenceError::Unavailable`], and so does
/// [`durable_range`](EvidenceSink::durable_range) over any span that includes one,
/// even once later tickets are durable. A step awaits the range of its own tickets, so
/// no step's result is accepted on evidence that was never stored, while a step whose
/// records all landed is not failed for a neighbour's lost batch.
///
/// Failed ranges are rare and kept for the writer's lifetime: consecutive failed
/// batches (an outage) make one range, and past 1024 distinct ranges the two oldest
/// are merged into one. A merged range may then cover records that were stored;
/// waiting on them reports them unavailable, erring towards refusing a step's result
/// rather than accepting one.
#[derive(Debug)]
pub struct EvidenceWriter {
    store: Store,
    checkpoints: Option<CheckpointPolicy>,
    on_checkpoint: Option<CheckpointHook>,
    queue: Mutex<Queue>,
    progress: watch::Receiver<Progress>,
    task: Mutex<Option<JoinHandle<()>>>,
}

#[derive(Debug)]
struct Queue {
    issued: u64,
    sender: Option<mpsc::UnboundedSender<(Ticket, EvidenceRecord)>>,
}

/// How many distinct failed ticket ranges an [`EvidenceWriter`] remembers before it
/// merges the two oldest.
const MAX_FAILED_RANGES: usize = 1024;

/// What the writer task has done, announced on a watch channel.
#[derive(Debug, Default)]
struct Progress {
    /// Every ticket up to this one is settled: stored, or in `failed`.
    settled: u64,
    failed: FailedRanges,
}

/// The ticket ranges of failed batches, in ticket order, disjoint and not adjacent.
#[derive(Debug, Default)]
struct FailedRanges(Vec<FailedRange>);

#[derive(Debug)]
struct FailedRange {
    first: u64,
    last: u64,
    /// Why the first batch of the range failed.
    reason: Arc<str>,
}

impl FailedRanges {
    /// Remembers that tickets `first..=last` were not stored. Batches settle in ticket
    /// order, so a range extends the newest one or comes after it.
    fn add(&mut self, first: u64, last: u64, reason: Arc<str>) {
        if let Some(newest) = self.0.last_mut()
            && newest.last.saturating_add(1) >= first
        {
            newest.last = newest.last.max(last);
            return;
        }
        self.0.push(FailedRange {
            first,
            last,
            reason,
        });
        if self.0.len() > MAX_FAILED_RANGES {
            let second = self.0.remove(1);
            self.0[0].last = second.last;
        }
    }

    /// The first failed range that shares a ticket with `first..=last`.
    fn find(&self, first: u64, last: u64) -> Option<&FailedRange> {
        if first > last {
            return None;
        }
        let index = self.0.partition_point(|range| range.last < first);
        self.0.get(index).filter(|range| range.first <= last)
    }
}

impl FailedRange {
    fn error(&self) -> EvidenceError {
        EvidenceError::Unavailable(format!(
            "records {}..={} were not stored: {}",
            self.first, self.last, self.reason
        ))
    }
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
        let on_checkpoint = options.on_checkpoint.clone();
        let task = tokio::spawn(write_batches(store.clone(), options, receiver, progress_tx));
        EvidenceWriter {
            store,
            checkpoints,
            on_checkpoint,
            queue: Mutex::new(Queue {
                issued: 0,
                sender: Some(sender),
            }),
            progress,
            task: Mutex::new(Some(task)),
        }
    }

    /// The highest ticket whose record, and every one before it, is durable. It stops
    /// for good short of the first failed batch.
    pub fn durable_ticket(&self) -> Ticket {
        let progress = self.progress.borrow();
        match progress.failed.0.first() {
            Some(failed) => Ticket(failed.first - 1),
            None => Ticket(progress.settled),
        }
    }

    /// Stops accepting records, stores everything already queued, and waits for the
    /// writer task to end. Returns [`EvidenceError::Unavailable`] (naming the first
    /// failed range) if any batch of this writer failed, so `Ok` means every record it
    /// queued is stored.
    pub async fn close(&self) -> Result<(), EvidenceError> {
        drop(self.lock_queue().sender.take());
        let task = lock(&self.task).take();
        if let Some(task) = task {
            task.await.map_err(|err| {
                EvidenceError::Store(format!("evidence writer task ended abnormally: {err}"))
            })?;
        }
        match self.progress.borrow().failed.0.first() {
            Some(failed) => Err(failed.error()),
            None => Ok(()),
        }
    }

    /// Waits until everything enqueued so far is settled (stored, or its batch failed),
    /// then cuts a signed checkpoint of the whole log as stored (what a run's end does).
    /// A failed batch is its own waiters' error, not the checkpoint's. Needs a
    /// [`CheckpointPolicy`]. A failing [`CheckpointHook`] is this call's error (the
    /// checkpoint is stored).
    pub async fn checkpoint(&self) -> Result<Checkpoint, StoreError> {
        let Some(policy) = &self.checkpoints else {
            return Err(StoreError::Checkpoint(
                "this evidence writer has no checkpoint key".into(),
            ));
        };
        let issued = Ticket(self.lock_queue().issued);
        match self.durable(issued).await {
            Ok(()) | Err(EvidenceError::Unavailable(_)) => {}
            Err(err) => return Err(StoreError::Checkpoint(Box::new(err))),
        }
        let checkpoint = self
            .store
            .checkpoint(&*policy.signer, &policy.key_name, &policy.origin)
            .await?;
        if let Some(hook) = &self.on_checkpoint {
            hook.call(&checkpoint)?;
        }
        Ok(checkpoint)
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

    /// Resolves once `ticket`'s batch is stored; [`EvidenceError::Unavailable`] if that
    /// batch failed, whatever happened to the batches around it.
    fn durable(
        &self,
        ticket: Ticket,
    ) -> Pin<Box<dyn Future<Output = Result<(), EvidenceError>> + Send + '_>> {
        self.durable_range(ticket, ticket)
    }

    /// Waits until `last` is settled (stored or failed), then fails with
    /// [`EvidenceError::Unavailable`] if any ticket of `first..=last` was in a failed
    /// batch. An empty range (`last` before `first`) only waits for `last`.
    fn durable_range(
        &self,
        first: Ticket,
        last: Ticket,
    ) -> Pin<Box<dyn Future<Output = Result<(), EvidenceError>> + Send + '_>> {
        let issued = self.lock_queue().issued;
        let mut progress = self.progress.clone();
        Box::pin(async move {
            if last.0 > issued {
                return Err(EvidenceError::Store(format!(
                    "ticket {} was never issued by this writer",
                    last.0
                )));
            }
            // An error here means the writer task is gone; what it settled is still readable.
            let _ = progress.wait_for(|p| p.settled >= last.0).await;
            let now = progress.borrow();
            if let Some(failed) = now.failed.find(first.0, last.0) {
                Err(failed.error())
            } else if now.settled >= last.0 {
                Ok(())
            } else {
                Err(EvidenceError::Closed)
            }
        })
    }
}

/// The writer task: drain, append, announce, checkpoint when due. A failed append is
/// logged and announced as a failed range, and the task goes on with the next batch.
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
        let first = batch.first().map_or(0, |(ticket, _)| ticket.0);
        let last = batch.last().map_or(0, |(ticket, _)| ticket.0);
        match store.append(&drafts, &*options.hasher).await {
            Ok(_) => {
                progress.send_modify(|p| p.settled = last);
                since_checkpoint += drafts.len() as u64;
            }
            Err(err) => {
                tracing::error!(
                    error = %err,
                    first_ticket = first,
                    last_ticket = last,
                    records = drafts.len(),
                    "evidence batch not stored: append failed; the writer goes on"
                );
                let reason: Arc<str> = Arc::from(format!(
                    "appending evidence to {} failed: {err}",
                    store.target()
                ));
                progress.send_modify(|p| {
                    p.failed.add(first, last, reason);
                    p.settled = last;
                });
            }
        }
        // A failed batch adds nothing to the count; a checkpoint still due is tried again.
        if let Some(policy) = &options.checkpoints
            && since_checkpoint >= policy.every.max(1)
        {
            match store
                .checkpoint(&*policy.signer, &policy.key_name, &policy.origin)
                .await
            {
                Ok(checkpoint) => {
                    since_checkpoint = 0;
                    if let Some(Err(err)) =
                        options.on_checkpoint.as_ref().map(|h| h.call(&checkpoint))
                    {
                        tracing::error!(error = %err, size = checkpoint.size, "evidence checkpoint hook failed");
                    }
                }
                Err(err) => tracing::error!(error = %err, "evidence checkpoint failed"),
            }
        }
        batch.clear();
        drafts.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reason(text: &str) -> Arc<str> {
        Arc::from(text)
    }

    fn spans(ranges: &FailedRanges) -> Vec<(u64, u64)> {
        ranges.0.iter().map(|r| (r.first, r.last)).collect()
    }

    fn record(name: &str) -> EvidenceRecord {
        EvidenceRecord::new(
            relo_evidence::Scope::Run("run-1".into()),
            None,
            relo_evidence::EvidenceEvent::SecretRead {
                name: name.into(),
                reference: "kv/data/app#token".into(),
                version: None,
            },
        )
    }

    #[tokio::test]
    async fn every_checkpoint_cut_is_handed_to_the_hook() {
        let dir = tempfile::tempdir().expect("dir");
        let store = Store::connect(dir.path(), "sqlite://relo.db")
            .await
            .expect("store");
        let origin = store.evidence_origin().await.expect("origin");
        let policy = CheckpointPolicy {
            every: 2,
            signer: Arc::new(relo_trust::PrivateKey::generate(
                relo_trust::KeyAlgorithm::Ed25519,
            )),
            key_name: origin.clone(),
            origin,
        };
        let seen = Arc::new(Mutex::new(Vec::new()));
        let recorded = Arc::clone(&seen);
        let options = WriterOptions {
            max_batch: 2,
            checkpoints: Some(policy),
            on_checkpoint: Some(CheckpointHook::new(move |checkpoint| {
                lock(&recorded).push(checkpoint.note.clone());
                Ok(())
            })),
            ..WriterOptions::default()
        };
        let writer = EvidenceWriter::spawn(store.clone(), options.clone());
        let ticket = writer.enqueue(record("a"));
        writer.enqueue(record("b"));
        writer.durable(ticket).await.expect("durable");
        writer.close().await.expect("close");
        let writer = EvidenceWriter::spawn(store.clone(), options.clone());
        writer.enqueue(record("c"));
        writer.checkpoint().await.expect("on demand");
        let stored: Vec<String> = store
            .checkpoints()
            .await
            .expect("checkpoints")
            .into_iter()
            .map(|c| c.note)
            .collect();
        assert_eq!(stored.len(), 2, "a periodic and an on-demand checkpoint");
        assert_eq!(*lock(&seen), stored);

        let failing = WriterOptions {
            on_checkpoint: Some(CheckpointHook::new(|_| Err("witness unwritable".into()))),
            ..options
        };
        let writer = EvidenceWriter::spawn(store.clone(), failing);
        writer.enqueue(record("d"));
        let err = writer.checkpoint().await.expect_err("the hook failed");
        assert!(err.to_string().contains("witness unwritable"), "{err}");
    }

    #[test]
    fn consecutive_failed_batches_make_one_range() {
        let mut failed = FailedRanges::default();
        failed.add(3, 5, reason("first"));
        failed.add(6, 9, reason("second"));
        failed.add(12, 12, reason("third"));
        assert_eq!(spans(&failed), [(3, 9), (12, 12)]);
        assert_eq!(
            &*failed.0[0].reason, "first",
            "the range keeps its first reason"
        );
    }

    #[test]
    fn a_range_is_found_by_any_ticket_it_shares() {
        let mut failed = FailedRanges::default();
        failed.add(3, 5, reason("a"));
        failed.add(10, 12, reason("b"));
        assert!(failed.find(1, 2).is_none());
        assert!(failed.find(6, 9).is_none());
        assert!(failed.find(13, 99).is_none());
        assert_eq!(failed.find(1, 3).map(|r| r.first), Some(3));
        assert_eq!(failed.find(5, 5).map(|r| r.first), Some(3));
        assert_eq!(failed.find(6, 10).map(|r| r.first), Some(10));
        assert_eq!(failed.find(1, 99).map(|r| r.first), Some(3));
        assert!(failed.find(5, 3).is_none(), "an empty span shares nothing");
    }

    #[test]
    fn past_the_cap_the_two_oldest_ranges_merge() {
        let mut failed = FailedRanges::default();
        for i in 0..=MAX_FAILED_RANGES as u64 {
            failed.add(i * 10, i * 10 + 1, reason("down"));
        }
        assert_eq!(failed.0.len(), MAX_FAILED_RANGES);
        assert_eq!(spans(&failed)[..2], [(0, 11), (20, 21)]);
        assert!(
            failed.find(5, 5).is_some(),
            "a merged range errs towards unavailable"
        );
        let newest = MAX_FAILED_RANGES as u64 * 10;
        assert_eq!(
            failed.find(newest, newest).map(|r| r.last),
            Some(newest + 1)
        );
    }
}
