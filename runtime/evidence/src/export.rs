//! The signed export of one run's evidence: an in-toto Statement v1 holding the run's
//! entries, their inclusion proofs and the covering checkpoint note, and SLSA
//! provenance v1 for the run, both to be signed into DSSE envelopes with
//! [`Statement::sign`].
//!
//! [`evidence_statement`] and [`provenance_statement`] build the statements from a
//! [`RunPacket`]; they refuse a packet that does not verify on its own (a proof that does
//! not lead to the checkpoint's root, a broken chain), so nothing inconsistent gets
//! signed. [`verify_evidence_statement`] re-checks an evidence statement offline with
//! only the evidence key ring: the checkpoint note's signature, every entry's hash and
//! link, every inclusion proof, and that the subjects are the ones the entries name.
//!
//! Both builders are deterministic: the same packet gives the same statement, byte for
//! byte once canonicalised. No clock is read; [`evidence_statement_generated_at`] adds
//! a caller-given `generated_at`.

use std::collections::HashSet;

use relo_trust::{Statement, Subject, TrustError};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use sha2::{Digest as _, Sha256};

use crate::checkpoint::{
    Checkpoint, CheckpointError, CheckpointSigner, KeyRing, SignedNote, VerifiedCheckpoint,
    open_checkpoint,
};
use crate::entry::{EvidenceEntry, hash_hex};
use crate::proof::InclusionProof;
use crate::verify::{Tampering, verify_scope};

/// The `predicateType` of the evidence statement.
pub const EVIDENCE_PREDICATE_TYPE: &str = "https://relo.dev/attestation/evidence/v1";

/// The `predicateType` of SLSA provenance v1.
pub const SLSA_PROVENANCE_PREDICATE_TYPE: &str = "https://slsa.dev/provenance/v1";

/// The SLSA `buildType` of a relo workflow run.
pub const RELO_BUILD_TYPE: &str = "https://relo.dev/workflow-run/v1";

/// The URI scheme of a plugin in SLSA `resolvedDependencies`: `relo-plugin:<name or digest>`.
pub const PLUGIN_URI_SCHEME: &str = "relo-plugin";

/// Everything an export of one run is made from, as the store reads it back.
#[derive(Debug, Clone, Copy)]
pub struct RunPacket<'a> {
    /// The run id: the scope of every entry.
    pub run_id: &'a str,
    /// Every entry of the run's scope, in `scope_seq` order (from 1).
    pub entries: &'a [EvidenceEntry],
    /// One inclusion proof per entry, in the same order, against `checkpoint`.
    pub proofs: &'a [InclusionProof],
    /// The signed note text of the covering checkpoint.
    pub checkpoint_note: &'a str,
    /// That checkpoint, parsed.
    pub checkpoint: &'a Checkpoint,
    /// The SLSA builder id, e.g. `https://relo.dev/orchestrator/<host or instance id>`.
    pub builder_id: &'a str,
}

/// Why a run could not be exported, or why an exported statement does not verify.
///
/// Each variant has a stable code ([`ExportError::code`]). A tampered entry or proof is
/// [`ExportError::Tampered`], whose code is the [`Tampering`] code of `relo evidence
/// verify` (`changed`, `checkpoint-mismatch`, ...); a checkpoint note that does not open
/// is [`ExportError::Checkpoint`], with the [`CheckpointError`] code (`unknown-key`,
/// `bad-signature`, `wrong-origin`, ...).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ExportError {
    /// The run has no entries.
    #[error("run {run_id} has no evidence entries to export")]
    EmptyRun {
        /// The run.
        run_id: String,
    },
    /// An entry belongs to another scope than the run.
    #[error("entry {seq} belongs to scope {scope}, not to run {run_id}")]
    ForeignEntry {
        /// The entry.
        seq: u64,
        /// Its scope.
        scope: String,
        /// The run exported.
        run_id: String,
    },
    /// The proofs are not one per entry, in order, for the checkpoint's size.
    #[error("the inclusion proofs do not match the entries: {reason}")]
    ProofMismatch {
        /// What does not match.
        reason: String,
    },
    /// An entry is not covered by the checkpoint.
    #[error("entry {seq} is not covered by the checkpoint of size {size}")]
    NotCovered {
        /// The entry.
        seq: u64,
        /// The checkpoint's size.
        size: u64,
    },
    /// The checkpoint note's text is not the checkpoint given with it.
    #[error("the checkpoint note is not the checkpoint of size {size} given with it")]
    CheckpointNoteMismatch {
        /// The size of the checkpoint given.
        size: u64,
    },
    /// A plugin or output digest in an entry body is not a SHA-256 digest.
    #[error("entry {seq}: {field} {value:?} is not 64 lowercase hex digits")]
    BadDigest {
        /// The entry.
        seq: u64,
        /// The body member (`digest`, `output_sha256`).
        field: &'static str,
        /// Its value.
        value: String,
    },
    /// The SLSA builder id is empty.
    #[error("the SLSA builder id is empty")]
    MissingBuilderId,
    /// The statement's `predicateType` is not the evidence predicate's.
    #[error("predicateType is {found:?}, expected {EVIDENCE_PREDICATE_TYPE:?}")]
    WrongPredicateType {
        /// The type found.
        found: String,
    },
    /// The statement breaks the in-toto rules, or could not be canonicalised.
    #[error("the statement is not a valid in-toto Statement: {0}")]
    Statement(#[source] TrustError),
    /// The predicate is not an evidence predicate.
    #[error("the evidence predicate is malformed: {reason}")]
    MalformedPredicate {
        /// What is wrong.
        reason: String,
    },
    /// A member of the predicate disagrees with the signed checkpoint or the entries.
    #[error("the predicate's {field} does not match {reason}")]
    PredicateMismatch {
        /// The member (`origin`, `checkpoint.size`, `checkpoint.root`, `run_id`).
        field: &'static str,
        /// What it should match.
        reason: String,
    },
    /// The statement's subjects are not the ones its entries name.
    #[error("the statement's subjects are not the digests its entries name: {reason}")]
    SubjectMismatch {
        /// The difference.
        reason: String,
    },
    /// The checkpoint note does not open with the key ring.
    #[error("the covering checkpoint: {0}")]
    Checkpoint(#[source] CheckpointError),
    /// An entry or a proof was tampered with.
    #[error("the exported entries: {0}")]
    Tampered(#[source] Tampering),
}

impl ExportError {
    /// The stable machine code of this error. [`ExportError::Tampered`] and
    /// [`ExportError::Checkpoint`] give the code of the error they carry.
    pub fn code(&self) -> &'static str {
        match self {
            Self::EmptyRun { .. } => "empty-run",
            Self::ForeignEntry { .. } => "foreign-entry",
            Self::ProofMismatch { .. } => "proof-mismatch",
            Self::NotCovered { .. } => "not-covered",
            Self::CheckpointNoteMismatch { .. } => "checkpoint-note-mismatch",
            Self::BadDigest { .. } => "bad-digest",
            Self::MissingBuilderId => "missing-builder-id",
            Self::WrongPredicateType { .. } => "wrong-predicate-type",
            Self::Statement(error) => error.code(),
            Self::MalformedPredicate { .. } => "malformed-predicate",
            Self::PredicateMismatch { .. } => "predicate-mismatch",
            Self::SubjectMismatch { .. } => "subject-mismatch",
            Self::Checkpoint(error) => error.code(),
            Self::Tampered(tampering) => tampering.code(),
        }
    }
}

/// What [`verify_evidence_statement`] established.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportReport {
    /// The run.
    pub run_id: String,
    /// Entries verified, each hashed, linked and proved in the checkpoint.
    pub entries: u64,
    /// The covering checkpoint.
    pub checkpoint: Checkpoint,
    /// The keys of the ring whose signatures on the checkpoint verified.
    pub signers: Vec<CheckpointSigner>,
    /// The statement's subjects (all checked against the entries).
    pub subjects: Vec<Subject>,
    /// The predicate's `generated_at`, if it has one (not covered by the checkpoint).
    pub generated_at: Option<String>,
}

/// The evidence predicate as it is read back.
#[derive(Debug, Serialize, Deserialize)]
struct EvidencePredicate {
    run_id: String,
    origin: String,
    checkpoint: CheckpointMember,
    entries: Vec<EvidenceEntry>,
    proofs: Vec<InclusionProof>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    generated_at: Option<String>,
}

/// The predicate's `checkpoint` member.
#[derive(Debug, Serialize, Deserialize)]
struct CheckpointMember {
    note: String,
    size: u64,
    root: String,
}

/// A plugin the run used: its digest and, when the entry names it, its name.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Plugin {
    digest: String,
    name: Option<String>,
}

/// The digests a run's entries name.
#[derive(Debug, Default)]
struct RunDigests {
    plugins: Vec<Plugin>,
    outputs: Vec<Subject>,
}

/// The evidence statement of a run: subjects are the run's plugin digests and step
/// output digests ([`RunPacket`]'s entries), the predicate holds the entries, their
/// proofs and the checkpoint (see `docs/evidence.md`, "Export").
///
/// Refuses a packet that does not verify on its own: entries of another scope, proofs
/// not one per entry for the checkpoint's size, a note that is not the checkpoint, a
/// broken chain or a proof that does not lead to the root ([`ExportError::Tampered`]).
/// The note's signature is not checked here (no key ring); the verifier does.
pub fn evidence_statement(packet: &RunPacket<'_>) -> Result<Statement, ExportError> {
    build_evidence_statement(packet, None)
}

/// [`evidence_statement`] with a `generated_at` member in the predicate (an RFC 3339
/// time the caller reads from its clock; it is signed by the envelope but not covered by
/// the checkpoint).
pub fn evidence_statement_generated_at(
    packet: &RunPacket<'_>,
    generated_at: &str,
) -> Result<Statement, ExportError> {
    build_evidence_statement(packet, Some(generated_at))
}

fn build_evidence_statement(
    packet: &RunPacket<'_>,
    generated_at: Option<&str>,
) -> Result<Statement, ExportError> {
    check_packet(packet)?;
    let digests = run_digests(packet.entries)?;
    let subject = evidence_subjects(packet.run_id, packet.entries, &digests)?;
    let predicate = EvidencePredicate {
        run_id: packet.run_id.to_owned(),
        origin: packet.checkpoint.origin.clone(),
        checkpoint: CheckpointMember {
            note: packet.checkpoint_note.to_owned(),
            size: packet.checkpoint.size,
            root: hash_hex(&packet.checkpoint.root),
        },
        entries: packet.entries.to_vec(),
        proofs: packet.proofs.to_vec(),
        generated_at: generated_at.map(str::to_owned),
    };
    let predicate = serde_json::to_value(&predicate).map_err(|e| {
        ExportError::Statement(TrustError::MalformedStatement {
            reason: e.to_string(),
        })
    })?;
    let statement = Statement::new(subject, EVIDENCE_PREDICATE_TYPE, predicate);
    statement.validate().map_err(ExportError::Statement)?;
    Ok(statement)
}

/// SLSA provenance v1 for a run: `buildType` [`RELO_BUILD_TYPE`], the `run.started`
/// entry's body (if any) and the run id as `externalParameters`, the checkpoint as
/// `internalParameters`, every plugin digest as a `resolvedDependencies` entry
/// (`relo-plugin:<name or digest>`), the builder id, the run id as `invocationId`, and
/// the first and last entries' times as `startedOn` and `finishedOn`. The subjects are
/// the step outputs, or the run itself when no step produced one.
///
/// Checks the packet as [`evidence_statement`] does.
pub fn provenance_statement(packet: &RunPacket<'_>) -> Result<Statement, ExportError> {
    check_packet(packet)?;
    if packet.builder_id.is_empty() {
        return Err(ExportError::MissingBuilderId);
    }
    let digests = run_digests(packet.entries)?;
    let subject = if digests.outputs.is_empty() {
        vec![run_subject(packet.run_id, packet.entries)?]
    } else {
        digests.outputs.clone()
    };

    let mut external = Map::new();
    if let Some(Value::Object(body)) = packet
        .entries
        .iter()
        .find(|e| e.kind == "run.started")
        .map(|e| &e.body)
    {
        external.extend(body.clone());
    }
    external.insert("run_id".into(), packet.run_id.into());

    let dependencies: Vec<Value> = digests
        .plugins
        .iter()
        .map(|plugin| {
            let mut dependency = Map::new();
            dependency.insert(
                "uri".into(),
                format!(
                    "{PLUGIN_URI_SCHEME}:{}",
                    plugin.name.as_deref().unwrap_or(&plugin.digest)
                )
                .into(),
            );
            dependency.insert("digest".into(), json!({ "sha256": plugin.digest }));
            if let Some(name) = &plugin.name {
                dependency.insert("name".into(), name.as_str().into());
            }
            Value::Object(dependency)
        })
        .collect();

    let (started, finished) = match (packet.entries.first(), packet.entries.last()) {
        (Some(first), Some(last)) => (first.time.as_str(), last.time.as_str()),
        _ => {
            return Err(ExportError::EmptyRun {
                run_id: packet.run_id.to_owned(),
            });
        }
    };
    let predicate = json!({
        "buildDefinition": {
            "buildType": RELO_BUILD_TYPE,
            "externalParameters": external,
            "internalParameters": {
                "evidence": {
                    "origin": packet.checkpoint.origin,
                    "checkpoint_size": packet.checkpoint.size,
                    "checkpoint_root": hash_hex(&packet.checkpoint.root),
                },
            },
            "resolvedDependencies": dependencies,
        },
        "runDetails": {
            "builder": { "id": packet.builder_id },
            "metadata": {
                "invocationId": packet.run_id,
                "startedOn": started,
                "finishedOn": finished,
            },
            "byproducts": [],
        },
    });
    let statement = Statement::new(subject, SLSA_PROVENANCE_PREDICATE_TYPE, predicate);
    statement.validate().map_err(ExportError::Statement)?;
    Ok(statement)
}

/// Re-checks an evidence statement offline, with only the evidence key ring and the
/// log's origin: the statement's rules and predicate type; the checkpoint note (signed by
/// a key of `keys` allowed to sign its size, for `origin`) and that the predicate's
/// `origin`, `checkpoint.size` and `checkpoint.root` are the note's; every entry of the
/// run's scope, from `scope_seq` 1, hashed and linked; every entry covered by the
/// checkpoint with an inclusion proof that leads to its root; and the subjects being
/// exactly those the entries name.
///
/// Verify the DSSE envelope first ([`relo_trust::Envelope::verify_statement`]) and pass
/// the statement it returns: this function checks the evidence, not who exported it.
pub fn verify_evidence_statement(
    statement: &Statement,
    keys: &KeyRing,
    origin: &str,
) -> Result<ExportReport, ExportError> {
    statement.validate().map_err(ExportError::Statement)?;
    if statement.predicate_type != EVIDENCE_PREDICATE_TYPE {
        return Err(ExportError::WrongPredicateType {
            found: statement.predicate_type.clone(),
        });
    }
    let predicate: EvidencePredicate = serde_json::from_value(statement.predicate.clone())
        .map_err(|e| ExportError::MalformedPredicate {
            reason: e.to_string(),
        })?;
    let verified = open_checkpoint(predicate.checkpoint.note.as_bytes(), keys, Some(origin))
        .map_err(ExportError::Checkpoint)?;
    let checkpoint = &verified.checkpoint;
    if predicate.origin != checkpoint.origin {
        return Err(ExportError::PredicateMismatch {
            field: "origin",
            reason: format!("the checkpoint's origin {}", checkpoint.origin),
        });
    }
    if predicate.checkpoint.size != checkpoint.size {
        return Err(ExportError::PredicateMismatch {
            field: "checkpoint.size",
            reason: format!("the signed checkpoint's size {}", checkpoint.size),
        });
    }
    if predicate.checkpoint.root != hash_hex(&checkpoint.root) {
        return Err(ExportError::PredicateMismatch {
            field: "checkpoint.root",
            reason: format!(
                "the signed checkpoint's root {}",
                hash_hex(&checkpoint.root)
            ),
        });
    }

    let packet = RunPacket {
        run_id: &predicate.run_id,
        entries: &predicate.entries,
        proofs: &predicate.proofs,
        checkpoint_note: &predicate.checkpoint.note,
        checkpoint,
        builder_id: "",
    };
    check_scope(&packet)?;
    verify_scope(&predicate.entries, Some((&verified, &predicate.proofs)))
        .map_err(ExportError::Tampered)?;
    check_proofs(&packet)?;

    let digests = run_digests(&predicate.entries)?;
    let expected = evidence_subjects(&predicate.run_id, &predicate.entries, &digests)?;
    if statement.subject != expected {
        return Err(ExportError::SubjectMismatch {
            reason: subject_difference(&statement.subject, &expected),
        });
    }

    Ok(ExportReport {
        run_id: predicate.run_id,
        entries: predicate.entries.len() as u64,
        checkpoint: verified.checkpoint,
        signers: verified.signers,
        subjects: expected,
        generated_at: predicate.generated_at,
    })
}

/// The checks both builders make: one scope, one proof per entry for the checkpoint's
/// size, the note being the checkpoint, the chain and the proofs verifying.
fn check_packet(packet: &RunPacket<'_>) -> Result<(), ExportError> {
    check_scope(packet)?;
    let note =
        SignedNote::parse(packet.checkpoint_note.as_bytes()).map_err(ExportError::Checkpoint)?;
    let in_note = Checkpoint::parse_body(&note.body).map_err(ExportError::Checkpoint)?;
    if &in_note != packet.checkpoint {
        return Err(ExportError::CheckpointNoteMismatch {
            size: packet.checkpoint.size,
        });
    }
    check_proofs(packet)?;
    let unverified = VerifiedCheckpoint {
        checkpoint: packet.checkpoint.clone(),
        note: packet.checkpoint_note.to_owned(),
        signers: Vec::new(),
    };
    verify_scope(packet.entries, Some((&unverified, packet.proofs)))
        .map_err(ExportError::Tampered)?;
    Ok(())
}

/// At least one entry, all of the run's scope.
fn check_scope(packet: &RunPacket<'_>) -> Result<(), ExportError> {
    if packet.entries.is_empty() {
        return Err(ExportError::EmptyRun {
            run_id: packet.run_id.to_owned(),
        });
    }
    if let Some(entry) = packet.entries.iter().find(|e| e.scope != packet.run_id) {
        return Err(ExportError::ForeignEntry {
            seq: entry.seq,
            scope: entry.scope.clone(),
            run_id: packet.run_id.to_owned(),
        });
    }
    Ok(())
}

/// Every entry covered by the checkpoint, with its proof at the same index, for its
/// `seq` and the checkpoint's size. Whether the proofs lead to the root is
/// [`verify_scope`]'s.
fn check_proofs(packet: &RunPacket<'_>) -> Result<(), ExportError> {
    let size = packet.checkpoint.size;
    if let Some(entry) = packet.entries.iter().find(|e| e.seq > size) {
        return Err(ExportError::NotCovered {
            seq: entry.seq,
            size,
        });
    }
    if packet.proofs.len() != packet.entries.len() {
        return Err(ExportError::ProofMismatch {
            reason: format!(
                "{} proofs for {} entries",
                packet.proofs.len(),
                packet.entries.len()
            ),
        });
    }
    for (entry, proof) in packet.entries.iter().zip(packet.proofs) {
        if proof.seq != entry.seq || proof.tree_size != size {
            return Err(ExportError::ProofMismatch {
                reason: format!(
                    "the proof for entry {} is for entry {} in a tree of {} (the checkpoint has {size})",
                    entry.seq, proof.seq, proof.tree_size
                ),
            });
        }
    }
    Ok(())
}

/// The plugin digests (`step.started`), first seen first, one per digest, and the output
/// digests (`step.finished`), one per step and digest.
fn run_digests(entries: &[EvidenceEntry]) -> Result<RunDigests, ExportError> {
    let mut digests = RunDigests::default();
    let mut seen_plugins = HashSet::new();
    let mut seen_outputs = HashSet::new();
    for entry in entries {
        match entry.kind.as_str() {
            "step.started" => {
                let Some(digest) = body_digest(entry, "digest")? else {
                    continue;
                };
                if seen_plugins.insert(digest.clone()) {
                    digests.plugins.push(Plugin {
                        digest,
                        name: plugin_name(&entry.body),
                    });
                }
            }
            "step.finished" => {
                let Some(digest) = body_digest(entry, "output_sha256")? else {
                    continue;
                };
                let step = entry
                    .step_id
                    .clone()
                    .unwrap_or_else(|| format!("seq-{}", entry.seq));
                let name = format!("output:{step}");
                if seen_outputs.insert((name.clone(), digest.clone())) {
                    digests.outputs.push(Subject::sha256(name, digest));
                }
            }
            _ => {}
        }
    }
    Ok(digests)
}

/// A SHA-256 digest from a body member: absent or `null` is `None`; a `sha256:` prefix is
/// dropped; anything but 64 lowercase hex digits is refused.
fn body_digest(entry: &EvidenceEntry, field: &'static str) -> Result<Option<String>, ExportError> {
    let value = match entry.body.get(field) {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::String(text)) => text.as_str(),
        Some(other) => {
            return Err(ExportError::BadDigest {
                seq: entry.seq,
                field,
                value: other.to_string(),
            });
        }
    };
    let hex = value.strip_prefix("sha256:").unwrap_or(value);
    let well_formed = hex.len() == 64
        && hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    if !well_formed {
        return Err(ExportError::BadDigest {
            seq: entry.seq,
            field,
            value: value.to_owned(),
        });
    }
    Ok(Some(hex.to_owned()))
}

/// The plugin's name in a `step.started` body, when it carries one: `plugin` or
/// `plugin_name` as a string, or `plugin.name`.
fn plugin_name(body: &Value) -> Option<String> {
    let name = match body.get("plugin") {
        Some(Value::String(name)) => Some(name.as_str()),
        Some(Value::Object(plugin)) => plugin.get("name").and_then(Value::as_str),
        _ => body.get("plugin_name").and_then(Value::as_str),
    };
    name.filter(|n| !n.is_empty()).map(str::to_owned)
}

/// The evidence statement's subjects: plugins (`plugin:<name or digest>`), then outputs
/// (`output:<step id>`), or the run itself when there are none.
fn evidence_subjects(
    run_id: &str,
    entries: &[EvidenceEntry],
    digests: &RunDigests,
) -> Result<Vec<Subject>, ExportError> {
    let mut subjects: Vec<Subject> = digests
        .plugins
        .iter()
        .map(|plugin| {
            let name = plugin.name.as_deref().unwrap_or(&plugin.digest);
            Subject::sha256(format!("plugin:{name}"), plugin.digest.clone())
        })
        .collect();
    subjects.extend(digests.outputs.iter().cloned());
    if subjects.is_empty() {
        subjects.push(run_subject(run_id, entries)?);
    }
    Ok(subjects)
}

/// The run as a subject: `run:<id>` with the SHA-256 of the RFC 8785 canonical JSON of
/// its entries (the array, each entry as serialised in the predicate).
fn run_subject(run_id: &str, entries: &[EvidenceEntry]) -> Result<Subject, ExportError> {
    let bytes = relo_trust::to_canonical_json(entries).map_err(ExportError::Statement)?;
    Ok(Subject::sha256(
        format!("run:{run_id}"),
        hex::encode(Sha256::digest(&bytes)),
    ))
}

/// A sentence naming the first difference between two subject lists.
fn subject_difference(found: &[Subject], expected: &[Subject]) -> String {
    for (index, (a, b)) in found.iter().zip(expected).enumerate() {
        if a != b {
            return format!(
                "subject {index} is {} {:?}, the entries name {} {:?}",
                a.name,
                a.sha256_digest(),
                b.name,
                b.sha256_digest()
            );
        }
    }
    format!(
        "{} subjects, the entries name {}",
        found.len(),
        expected.len()
    )
}
