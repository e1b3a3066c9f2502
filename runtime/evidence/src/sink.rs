//! Where evidence goes: a non-blocking enqueue and an acknowledgement of durability.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Mutex, MutexGuard, PoisonError};

use crate::event::EvidenceRecord;

/// The position of an enqueued record; [`EvidenceSink::durable`] waits up to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Ticket(pub u64);

/// Why evidence could not be made durable.
#[derive(Debug, thiserror::Error)]
pub enum EvidenceError {
    /// The backing store failed; the records after the last durable ticket may be lost.
    #[error("evidence store failed: {0}")]
    Store(String),
    /// The sink was closed before the records were stored.
    #[error("evidence sink is closed")]
    Closed,
}

/// A destination for evidence records.
///
/// [`enqueue`](EvidenceSink::enqueue) must not block: it runs on the hot path of host
/// calls. [`durable`](EvidenceSink::durable) resolves once every record up to and
/// including the ticket is durably stored; the sandbox awaits it before it returns a
/// step's result.
pub trait EvidenceSink: Send + Sync {
    /// Queues a record and returns its ticket.
    fn enqueue(&self, record: EvidenceRecord) -> Ticket;

    /// Resolves when every record up to `ticket` is durable.
    fn durable(
        &self,
        ticket: Ticket,
    ) -> Pin<Box<dyn Future<Output = Result<(), EvidenceError>> + Send + '_>>;
}

/// An in-memory sink: records are "durable" as soon as they are queued.
///
/// For tests and for embedding where the caller persists records itself.
#[derive(Debug, Default)]
pub struct MemorySink {
    records: Mutex<Vec<EvidenceRecord>>,
}

impl MemorySink {
    /// An empty sink.
    pub fn new() -> Self {
        Self::default()
    }

    /// A copy of every record queued so far, in order.
    pub fn records(&self) -> Vec<EvidenceRecord> {
        self.lock().clone()
    }

    fn lock(&self) -> MutexGuard<'_, Vec<EvidenceRecord>> {
        // A panic while holding the lock cannot leave the Vec half-written.
        self.records.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl EvidenceSink for MemorySink {
    fn enqueue(&self, record: EvidenceRecord) -> Ticket {
        let mut records = self.lock();
        records.push(record);
        Ticket(records.len() as u64)
    }

    fn durable(
        &self,
        ticket: Ticket,
    ) -> Pin<Box<dyn Future<Output = Result<(), EvidenceError>> + Send + '_>> {
        let stored = self.lock().len() as u64;
        Box::pin(async move {
            if ticket.0 <= stored {
                Ok(())
            } else {
                Err(EvidenceError::Store(format!(
                    "ticket {} was never issued by this sink",
                    ticket.0
                )))
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{EvidenceEvent, Scope};

    fn record(name: &str) -> EvidenceRecord {
        EvidenceRecord::new(
            Scope::Control,
            None,
            EvidenceEvent::SecretRead {
                name: name.into(),
                reference: "kv/data/app#token".into(),
                version: Some(1),
            },
        )
    }

    #[tokio::test]
    async fn tickets_increase_and_become_durable() {
        let sink = MemorySink::new();
        let first = sink.enqueue(record("a"));
        let second = sink.enqueue(record("b"));
        assert!(second > first);
        sink.durable(second).await.expect("durable");
        assert_eq!(sink.records().len(), 2);
    }

    #[tokio::test]
    async fn an_unissued_ticket_is_an_error() {
        let sink = MemorySink::new();
        assert!(sink.durable(Ticket(5)).await.is_err());
    }
}
