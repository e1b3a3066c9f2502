//! Hands one step's evidence to the sink and remembers the last ticket to await.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use relo_evidence::{EvidenceEvent, EvidenceRecord, EvidenceSink, Scope, Ticket};

/// Records the events of one step in its run's scope.
#[derive(Clone)]
pub(crate) struct Recorder {
    sink: Arc<dyn EvidenceSink>,
    scope: Scope,
    step_id: Arc<str>,
    last: Arc<AtomicU64>,
}

impl Recorder {
    pub(crate) fn new(sink: Arc<dyn EvidenceSink>, scope: Scope, step_id: &str) -> Self {
        Self {
            sink,
            scope,
            step_id: step_id.into(),
            last: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Queues an event without blocking.
    pub(crate) fn record(&self, event: EvidenceEvent) {
        let ticket = self.sink.enqueue(EvidenceRecord::new(
            self.scope.clone(),
            Some(self.step_id.to_string()),
            event,
        ));
        self.last.fetch_max(ticket.0, Ordering::AcqRel);
    }

    /// Waits until everything this recorder queued is durable.
    pub(crate) async fn durable(&self) -> Result<(), relo_evidence::EvidenceError> {
        match self.last.load(Ordering::Acquire) {
            0 => Ok(()),
            last => self.sink.durable(Ticket(last)).await,
        }
    }
}
