//! Hands one step's evidence to the sink, remembers the span of tickets to await, and
//! bounds what the step may have enqueued but not yet known durable.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use relo_evidence::{EvidenceError, EvidenceEvent, EvidenceRecord, EvidenceSink, Scope, Ticket};

/// The most records one step may have enqueued but not yet known durable (DESIGN §3).
/// Past it, [`Recorder::pace`] makes the step's next host call await its own evidence,
/// so the writer's queue is bounded by the steps in flight.
pub(crate) const MAX_PENDING: u64 = 256;

/// Records the events of one step in its run's scope.
///
/// Clones share one set of counters, so the host functions and background tasks of a
/// step (egress bodies finishing late) all count towards the same step.
#[derive(Clone)]
pub(crate) struct Recorder {
    sink: Arc<dyn EvidenceSink>,
    scope: Scope,
    step_id: Arc<str>,
    tickets: Arc<Tickets>,
}

/// The step's tickets, shared by every clone of its [`Recorder`].
struct Tickets {
    /// The lowest ticket issued to the step; `u64::MAX` until the first record.
    first: AtomicU64,
    /// The highest ticket issued to the step; 0 until the first record.
    last: AtomicU64,
    /// Records enqueued since the step last learned its evidence was durable.
    pending: AtomicU64,
}

impl Recorder {
    pub(crate) fn new(sink: Arc<dyn EvidenceSink>, scope: Scope, step_id: &str) -> Self {
        Self {
            sink,
            scope,
            step_id: step_id.into(),
            tickets: Arc::new(Tickets {
                first: AtomicU64::new(u64::MAX),
                last: AtomicU64::new(0),
                pending: AtomicU64::new(0),
            }),
        }
    }

    /// Queues an event without blocking.
    pub(crate) fn record(&self, event: EvidenceEvent) {
        let ticket = self.sink.enqueue(EvidenceRecord::new(
            self.scope.clone(),
            Some(self.step_id.to_string()),
            event,
        ));
        // In this order: whoever reads a `pending` count that includes this record also
        // reads a `last` (and `first`) that includes its ticket.
        self.tickets.first.fetch_min(ticket.0, Ordering::AcqRel);
        self.tickets.last.fetch_max(ticket.0, Ordering::AcqRel);
        self.tickets.pending.fetch_add(1, Ordering::AcqRel);
    }

    /// Waits until everything this recorder queued is durable: every ticket from its
    /// first to its last, so one lost batch in between fails the step even when later
    /// records were stored.
    pub(crate) async fn durable(&self) -> Result<(), EvidenceError> {
        let pending = self.tickets.pending.load(Ordering::Acquire);
        let last = self.tickets.last.load(Ordering::Acquire);
        if last == 0 {
            return Ok(());
        }
        let first = self.tickets.first.load(Ordering::Acquire);
        self.sink.durable_range(Ticket(first), Ticket(last)).await?;
        // Only what was counted before the wait is known durable; records enqueued
        // meanwhile stay pending. Saturating, in case two waits overlap.
        let _ = self
            .tickets
            .pending
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |now| {
                Some(now.saturating_sub(pending))
            });
        Ok(())
    }

    /// Keeps the step within [`MAX_PENDING`] records enqueued but not known durable;
    /// host functions await it when they record, before returning to the guest.
    ///
    /// Below the bound it returns at once, with one atomic load and without touching
    /// the sink. At the bound it waits until everything this recorder has enqueued is
    /// durable (as [`durable`](Recorder::durable) does), which resets the count; if that
    /// evidence was lost it returns the sink's error, which the host call should report
    /// rather than go on recording evidence that a step's result could not rest on.
    pub(crate) async fn pace(&self) -> Result<(), EvidenceError> {
        if self.tickets.pending.load(Ordering::Acquire) < MAX_PENDING {
            return Ok(());
        }
        self.durable().await
    }
}

#[cfg(test)]
mod tests {
    use std::future::Future;
    use std::pin::Pin;
    use std::sync::Mutex;

    use relo_evidence::MemorySink;

    use super::*;

    /// A sink that counts the waits it is asked for, and fails the tickets it is told to.
    #[derive(Default)]
    struct Watched {
        inner: MemorySink,
        ranges: Mutex<Vec<(u64, u64)>>,
        lost: Mutex<Option<u64>>,
    }

    impl Watched {
        fn ranges(&self) -> Vec<(u64, u64)> {
            self.ranges.lock().expect("ranges").clone()
        }
    }

    impl EvidenceSink for Watched {
        fn enqueue(&self, record: EvidenceRecord) -> Ticket {
            self.inner.enqueue(record)
        }

        fn durable(
            &self,
            ticket: Ticket,
        ) -> Pin<Box<dyn Future<Output = Result<(), EvidenceError>> + Send + '_>> {
            self.durable_range(ticket, ticket)
        }

        fn durable_range(
            &self,
            first: Ticket,
            last: Ticket,
        ) -> Pin<Box<dyn Future<Output = Result<(), EvidenceError>> + Send + '_>> {
            self.ranges.lock().expect("ranges").push((first.0, last.0));
            let lost = *self.lost.lock().expect("lost");
            Box::pin(async move {
                match lost {
                    Some(ticket) if (first.0..=last.0).contains(&ticket) => Err(
                        EvidenceError::Unavailable(format!("record {ticket} was not stored")),
                    ),
                    _ => self.inner.durable(last).await,
                }
            })
        }
    }

    fn event(i: u64) -> EvidenceEvent {
        EvidenceEvent::SecretRead {
            name: format!("s{i}"),
            reference: "kv/data/app#token".into(),
            version: Some(1),
        }
    }

    fn recorder(sink: &Arc<Watched>) -> Recorder {
        let sink: Arc<dyn EvidenceSink> = Arc::clone(sink) as Arc<dyn EvidenceSink>;
        Recorder::new(sink, Scope::Run("run".into()), "step")
    }

    #[tokio::test]
    async fn durable_waits_for_the_steps_whole_span() {
        let sink = Arc::new(Watched::default());
        let other = recorder(&sink);
        let step = recorder(&sink);
        step.durable()
            .await
            .expect("nothing recorded, nothing to wait for");
        assert!(sink.ranges().is_empty());

        other.record(event(0));
        step.record(event(1));
        other.record(event(2));
        step.clone().record(event(3));
        step.durable().await.expect("durable");
        assert_eq!(sink.ranges(), [(2, 4)], "from its first ticket to its last");

        *sink.lost.lock().expect("lost") = Some(2);
        let err = step
            .durable()
            .await
            .expect_err("an earlier record was lost");
        assert!(matches!(err, EvidenceError::Unavailable(_)), "{err:?}");
    }

    #[tokio::test]
    async fn pace_waits_only_at_the_bound() {
        let sink = Arc::new(Watched::default());
        let step = recorder(&sink);
        for i in 0..MAX_PENDING - 1 {
            step.record(event(i));
            step.pace().await.expect("below the bound");
        }
        assert!(
            sink.ranges().is_empty(),
            "below the bound the sink is not asked"
        );

        step.record(event(MAX_PENDING));
        step.pace().await.expect("at the bound");
        assert_eq!(sink.ranges(), [(1, MAX_PENDING)]);

        // The count starts again from zero: the next wait is another full bound away.
        for i in 0..MAX_PENDING - 1 {
            step.record(event(i));
            step.pace().await.expect("below the bound again");
        }
        assert_eq!(sink.ranges().len(), 1);
        step.record(event(0));
        step.pace().await.expect("at the bound again");
        assert_eq!(sink.ranges(), [(1, MAX_PENDING), (1, 2 * MAX_PENDING)]);
    }

    #[tokio::test]
    async fn pace_reports_lost_evidence_and_keeps_counting() {
        let sink = Arc::new(Watched::default());
        let step = recorder(&sink);
        *sink.lost.lock().expect("lost") = Some(7);
        for i in 0..MAX_PENDING {
            step.record(event(i));
        }
        let err = step.pace().await.expect_err("record 7 was lost");
        assert!(matches!(err, EvidenceError::Unavailable(_)), "{err:?}");
        assert!(
            step.pace().await.is_err(),
            "a failed wait resets nothing: the next call waits, and fails, again"
        );
        assert_eq!(sink.ranges().len(), 2);
    }
}
