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
    /// Some of the records waited for were never stored (their write failed), though the
    /// sink goes on storing later ones. The text says which records and why.
    #[error("evidence unavailable: {0}")]
    Unavailable(String),
    /// The sink was closed before the records were stored.
    #[error("evidence sink is closed")]
    Closed,
}

impl EvidenceError {
    /// The stable code shown to users: `evidence-unavailable` when records were not
    /// stored ([`Store`](EvidenceError::Store), [`Unavailable`](EvidenceError::Unavailable)),
    /// `evidence-closed` when the sink had stopped ([`Closed`](EvidenceError::Closed)).
    pub fn code(&self) -> &'static str {
        match self {
            EvidenceError::Store(_) | EvidenceError::Unavailable(_) => "evidence-unavailable",
            EvidenceError::Closed => "evidence-closed",
        }
    }
}

/// A destination for evidence records.
///
/// [`enqueue`](EvidenceSink::enqueue) must not block: it runs on the hot path of host
/// calls. [`durable`](EvidenceSink::durable) resolves once the record of the ticket is
/// durably stored; the sandbox awaits [`durable_range`](EvidenceSink::durable_range)
/// over a step's tickets before it returns the step's result.
///
/// A sink may go on after a failed write, so a later ticket can be durable while an
/// earlier one was lost: waiting for the last ticket alone does not vouch for the ones
/// before it. [`durable_range`](EvidenceSink::durable_range) does.
pub trait EvidenceSink: Send + Sync {
    /// Queues a record and returns its ticket.
    fn enqueue(&self, record: EvidenceRecord) -> Ticket;

    /// Resolves when the record of `ticket` is durable, or fails if it never will be.
    fn durable(
        &self,
        ticket: Ticket,
    ) -> Pin<Box<dyn Future<Output = Result<(), EvidenceError>> + Send + '_>>;

    /// Resolves when every record from `first` to `last` (inclusive) is durable, or
    /// fails if any of them never will be ([`EvidenceError::Unavailable`]).
    ///
    /// The default waits for [`durable(last)`](EvidenceSink::durable), which is right
    /// for a sink that stops at its first failure (so `last` durable means everything
    /// before it is); a sink that goes on after a failure overrides it.
    fn durable_range(
        &self,
        first: Ticket,
        last: Ticket,
    ) -> Pin<Box<dyn Future<Output = Result<(), EvidenceError>> + Send + '_>> {
        let _ = first;
        self.durable(last)
    }
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

    #[tokio::test]
    async fn a_range_waits_for_its_last_ticket_by_default() {
        let sink = MemorySink::new();
        let first = sink.enqueue(record("a"));
        let last = sink.enqueue(record("b"));
        sink.durable_range(first, last).await.expect("durable");
        assert!(sink.durable_range(first, Ticket(3)).await.is_err());
    }

    #[test]
    fn errors_have_stable_codes_and_lowercase_messages() {
        let unavailable = EvidenceError::Unavailable("tickets 3..=4 were not stored".into());
        assert_eq!(unavailable.code(), "evidence-unavailable");
        assert_eq!(
            unavailable.to_string(),
            "evidence unavailable: tickets 3..=4 were not stored"
        );
        assert_eq!(
            EvidenceError::Store("disk full".into()).code(),
            "evidence-unavailable"
        );
        assert_eq!(EvidenceError::Closed.code(), "evidence-closed");
    }
}
