//! Evidence: the events a step's host decisions produce, the tamper-evident log they are
//! kept in, and the verifier that names any tampering.
//!
//! Every decision the host makes for a step (a grant used, a request denied, a limit
//! hit) becomes an [`EvidenceEvent`]. The sandbox hands each one to an
//! [`EvidenceSink`] with a non-blocking [`enqueue`](EvidenceSink::enqueue) and, before
//! it accepts the step's result, waits for [`durable`](EvidenceSink::durable) to confirm
//! that everything enqueued so far is stored. [`MemorySink`] serves tests and
//! embedding; relo-store's writer is the durable sink.
//!
//! The log (see `docs/evidence.md`):
//!
//! - [`EvidenceEntry`]: a record numbered in the global log (`seq`) and in its scope's
//!   chain (`scope_seq`), linked to the scope's previous entry (`prev_hash`), sealed by
//!   [`entry_hash`] over RFC 8785 canonical JSON. [`EntryContent::from_record`] turns a
//!   record into what is stored; [`EntryChain`] numbers and links in memory.
//! - [`LogTree`]: the RFC 6962 Merkle tree whose leaves are the entry hashes in `seq`
//!   order, with [`InclusionProof`]s and [`ConsistencyProof`]s ([`merkle`] holds the
//!   primitives).
//! - [`Frontier`]: the tree's compact range (one subtree root per set bit of its size),
//!   which gives the root in O(log n) and is kept beside a stored checkpoint, so the next
//!   one reads only the entries after it.
//! - [`Checkpoint`]: origin, size and root as a C2SP signed note, signed with the
//!   Ed25519 evidence key and opened against a [`KeyRing`] of active and retired keys.
//! - [`verify_log`] and [`verify_scope`]: recompute everything and return the first
//!   [`Tampering`] (`changed`, `deleted`, `inserted`, `reordered`, `truncated`,
//!   `bad-signature`, `checkpoint-mismatch`, `forked`, `rolled-back`).
//! - [`Witness`]: every checkpoint appended to a file outside the database and the home,
//!   and [`check_witnessed`], which proves the log extends each (`rolled-back`, `forked`).
//! - [`export`]: one run's entries, proofs and checkpoint as an in-toto Statement
//!   ([`evidence_statement`]), SLSA provenance v1 ([`provenance_statement`]), and the
//!   offline check of an exported statement ([`verify_evidence_statement`]).
//!
//! ```
//! use relo_evidence::{
//!     Checkpoint, EntryChain, EntryContent, EvidenceEvent, EvidenceRecord, KeyRing, KeyStatus,
//!     LogTree, Scope, VerifyOptions, evidence_origin, open_checkpoint, parse_hash_hex,
//!     verify_log,
//! };
//! use relo_trust::{KeyAlgorithm, PrivateKey};
//!
//! let origin = evidence_origin("home-1");
//! let key = PrivateKey::generate(KeyAlgorithm::Ed25519);
//! let mut ring = KeyRing::new();
//! ring.add(&origin, key.public_key().clone(), KeyStatus::Active)?;
//!
//! // Append three records, then checkpoint the tree.
//! let mut chain = EntryChain::new();
//! let mut entries = Vec::new();
//! for name in ["a", "b", "c"] {
//!     let record = EvidenceRecord::new(
//!         Scope::Run("run-1".into()),
//!         Some("deploy".into()),
//!         EvidenceEvent::SecretRead {
//!             name: name.into(),
//!             reference: "kv/data/app#token".into(),
//!             version: Some(1),
//!         },
//!     );
//!     entries.push(chain.append(EntryContent::from_record(&record))?);
//! }
//! let hashes: Vec<_> = entries.iter().filter_map(|e| parse_hash_hex(&e.hash)).collect();
//! let tree = LogTree::from_entry_hashes(&hashes);
//! let note = Checkpoint::new(origin.as_str(), tree.size(), tree.root())?.sign(&[(&origin, &key)])?;
//!
//! let options = VerifyOptions { origin: &origin, keys: &ring, trusted: None };
//! let report = verify_log(&entries, &[note.as_str()], &options).expect("intact");
//! assert_eq!(report.covered_by_latest_checkpoint, 3);
//!
//! // Changing a body is named, with the entry.
//! entries[1].body["name"] = "z".into();
//! let tampering = verify_log(&entries, &[note.as_str()], &options).unwrap_err();
//! assert_eq!((tampering.code(), tampering.seq), ("changed", Some(2)));
//!
//! // An export carries an entry's inclusion proof and the checkpoint.
//! let proof = tree.inclusion_proof_for(2, 3)?;
//! let checkpoint = open_checkpoint(note.as_bytes(), &ring, Some(&origin))?.checkpoint;
//! assert!(proof.verify_in(&hashes[1], &checkpoint));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod checkpoint;
mod entry;
mod event;
pub mod export;
mod frontier;
pub mod merkle;
mod proof;
mod seal;
mod sink;
mod verify;
mod witness;

pub use checkpoint::{
    Checkpoint, CheckpointError, CheckpointSigner, ED25519_SIGNATURE_TYPE, KeyRing, KeyStatus,
    MAX_NOTE_BYTES, MAX_NOTE_SIGNATURES, NoteKey, NoteSignature, SignedNote, VerifiedCheckpoint,
    evidence_origin, note_key_id, open_checkpoint,
};
pub use entry::{
    EntryChain, EntryContent, EntryError, EntryFields, EvidenceEntry, GENESIS_PREV_HASH,
    MAX_SAFE_INTEGER, entry_hash, hash_hex, parse_hash_hex, rfc3339_utc,
};
pub use event::{EgressOutcome, EvidenceEvent, EvidenceRecord, Scope, StepUsage};
pub use export::{
    EVIDENCE_PREDICATE_TYPE, ExportError, ExportReport, RunPacket, SLSA_PROVENANCE_PREDICATE_TYPE,
    evidence_statement, provenance_statement, verify_evidence_statement,
};
pub use frontier::{Frontier, FrontierError};
pub use merkle::Hash;
pub use proof::{ConsistencyProof, InclusionProof, LogTree, ProofError};
pub use seal::{SealError, SealStatement, seal_link, verify_seal};
pub use sink::{EvidenceError, EvidenceSink, MemorySink, Ticket};
pub use verify::{
    ScopeReport, TamperKind, Tampering, VerifyOptions, VerifyReport, verify_log, verify_scope,
};
pub use witness::{
    WITNESS_RECORD_END, Witness, WitnessError, Witnessed, WitnessedNote, check_witnessed,
    default_witness_path, parse_witness, witness_file_name,
};
