//! Evidence events and the sink that makes them durable.
//!
//! Every decision the host makes for a step (a grant used, a request denied, a limit
//! hit) becomes an [`EvidenceEvent`]. The sandbox hands each one to an
//! [`EvidenceSink`] with a non-blocking [`enqueue`](EvidenceSink::enqueue) and, before
//! it accepts the step's result, waits for [`durable`](EvidenceSink::durable) to confirm
//! that everything enqueued so far is stored. A later issue adds the hash chain, the
//! Merkle tree and the store-backed sink; [`MemorySink`] serves tests and embedding.
//!
//! ```
//! use relo_evidence::{EvidenceEvent, EvidenceRecord, EvidenceSink, MemorySink, Scope};
//!
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let sink = MemorySink::new();
//! let ticket = sink.enqueue(EvidenceRecord::new(
//!     Scope::Run("run-1".into()),
//!     Some("deploy".into()),
//!     EvidenceEvent::SecretDenied { name: "token".into(), code: "secret-not-declared".into(), reason: "not declared".into() },
//! ));
//! sink.durable(ticket).await.unwrap();
//! assert_eq!(sink.records()[0].event.kind(), "secret.denied");
//! # });
//! ```

mod event;
pub mod merkle;
mod sink;

pub use event::{EgressOutcome, EvidenceEvent, EvidenceRecord, Scope, StepUsage};
pub use sink::{EvidenceError, EvidenceSink, MemorySink, Ticket};
