//! `relo evidence verify [--run ID] [--trusted-checkpoint FILE] [--json]`.

use std::process::ExitCode;

use anyhow::{Context as _, bail};
use relo_evidence::{
    EvidenceEntry, InclusionProof, KeyRing, LogTree, TamperKind, Tampering, VerifiedCheckpoint,
    VerifyOptions, VerifyReport, Witness, WitnessedNote, check_witnessed, evidence_origin,
    hash_hex, open_checkpoint, parse_hash_hex, verify_log, verify_scope,
};
use serde_json::json;

use super::keyring::key_ring;
use super::seals::{check_covered, check_seals};
use super::state::check_checkpoint_rows;
use crate::args::{EXIT_FAILED, VerifyArgs};
use crate::home::Home;
use relo_store::{StoredRun, check_state};

/// The stored log as verification reads it: its origin, the key ring, the witnessed
/// checkpoints, every entry and every checkpoint note.
struct StoredLog {
    origin: String,
    ring: KeyRing,
    witness: Witness,
    /// The witness file's records; `None` when the file does not exist yet.
    witnessed: Option<Vec<WitnessedNote>>,
    entries: Vec<EvidenceEntry>,
    checkpoints: Vec<relo_store::Checkpoint>,
    seals: Vec<relo_store::StoredSeal>,
    runs: Vec<StoredRun>,
}

/// Whether verification requires every entry to be covered by a seal or a checkpoint:
/// `relo evidence verify` does; the check before a checkpoint is signed does not, since
/// that checkpoint is what covers a log from before seals (its entries are rechecked).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Coverage {
    Required,
    BeforeSigning,
}

impl StoredLog {
    async fn load(home: &Home, store: &relo_store::Store) -> anyhow::Result<Self> {
        // A log never checkpointed has no origin yet; nothing then needs one.
        let origin = store
            .stored_origin()
            .await
            .context("cannot read the evidence log")?
            .unwrap_or_else(|| evidence_origin("unset"));
        let ring = key_ring(home, &origin)?;
        // The witness before the log: a checkpoint is witnessed only once it is stored,
        // so every one read here is already in what is read next.
        let witness = home.witness(&origin)?;
        let witnessed = witness.read()?;
        let entries = store
            .all_entries()
            .await
            .context("cannot read the evidence entries")?
            .iter()
            .map(|e| e.to_evidence_entry())
            .collect();
        let checkpoints = store
            .checkpoints()
            .await
            .context("cannot read the checkpoints")?;
        let seals = store.seals().await.context("cannot read the seals")?;
        let mut runs = Vec::new();
        let mut rows = store.runs(u32::MAX).await.context("cannot read the runs")?;
        rows.sort_by(|a, b| (&a.created_at, &a.id).cmp(&(&b.created_at, &b.id)));
        for run in rows {
            let steps = store
                .run_steps(&run.id)
                .await
                .with_context(|| format!("cannot read the steps of run {}", run.id))?;
            runs.push(StoredRun { run, steps });
        }
        Ok(Self {
            origin,
            ring,
            witness,
            witnessed,
            entries,
            checkpoints,
            seals,
            runs,
        })
    }

    /// The log (chains, tree, checkpoint notes, the trusted checkpoint), then the log
    /// against every witnessed checkpoint, then the batch seals and what they and the
    /// checkpoints cover, then the checkpoint rows against their notes, then the runs and
    /// steps against the evidence: the first finding of the first check that fails.
    fn verify(
        &self,
        trusted: Option<&VerifiedCheckpoint>,
        coverage: Coverage,
    ) -> Result<(VerifyReport, u64), Tampering> {
        let notes: Vec<&str> = self.checkpoints.iter().map(|c| c.note.as_str()).collect();
        let options = VerifyOptions {
            origin: &self.origin,
            keys: &self.ring,
            trusted,
        };
        let report = verify_log(&self.entries, &notes, &options)?;
        self.check_witness()?;
        let sealed = check_seals(&self.entries, self.seals.clone(), &self.ring, &self.origin)?;
        if coverage == Coverage::Required {
            check_covered(report.entries, sealed, report.covered_by_latest_checkpoint)?;
        }
        check_checkpoint_rows(&self.entries, &self.checkpoints, &self.ring, &self.origin)?;
        check_state(&self.entries, &self.runs)?;
        Ok((report, sealed))
    }

    /// The log against every witnessed checkpoint (`rolled-back`, `forked`; a record the
    /// key ring does not verify is `bad-signature`); the entry hashes were checked by
    /// `verify_log`.
    fn check_witness(&self) -> Result<(), Tampering> {
        let Some(notes) = self.witnessed.as_deref().filter(|w| !w.is_empty()) else {
            return Ok(());
        };
        let witnessed = self
            .witness
            .open_notes(notes, &self.ring, &self.origin)
            .map_err(|err| Tampering {
                kind: TamperKind::BadSignature,
                seq: None,
                scope: None,
                scope_seq: None,
                checkpoint_size: None,
                message: err.to_string(),
            })?;
        let hashes: Vec<_> = self
            .entries
            .iter()
            .map(|e| parse_hash_hex(&e.hash).unwrap_or([0; 32]))
            .collect();
        let tree = LogTree::from_entry_hashes(&hashes);
        check_witnessed(&tree, &self.origin, &witnessed, self.witness.path())
    }

    /// What the summary says about the witness.
    fn witness_summary(&self) -> String {
        let path = self.witness.path().display();
        match &self.witnessed {
            None => format!("witness: {path} does not exist yet (nothing witnessed)"),
            Some(witnessed) => format!(
                "witness: {path} holds {} checkpoints; the log extends every one",
                witnessed.len()
            ),
        }
    }
}

/// The first tampering in the stored log, if any: checked before anything new is signed
/// over it, so a checkpoint never vouches for a log that already fails verification.
pub async fn tampering_before_signing(
    home: &Home,
    store: &relo_store::Store,
) -> anyhow::Result<Option<Tampering>> {
    Ok(StoredLog::load(home, store)
        .await?
        .verify(None, Coverage::BeforeSigning)
        .err())
}

/// The whole log verified: the report, or the first tampering.
pub async fn verify_stored_log(
    home: &Home,
    store: &relo_store::Store,
) -> anyhow::Result<Result<VerifyReport, Tampering>> {
    Ok(StoredLog::load(home, store)
        .await?
        .verify(None, Coverage::Required)
        .map(|(report, _)| report))
}

/// Prints why nothing was signed, in the same form `verify` uses, and exits 1.
pub fn refuse_to_sign(tampering: &Tampering, as_json: bool) -> anyhow::Result<ExitCode> {
    eprintln!("refused: the stored log fails verification, so no checkpoint was signed over it");
    print_tampering(tampering, as_json)
}

/// Verifies the log (or one run) and prints the summary or the tampering.
pub async fn run(home: &Home, args: &VerifyArgs) -> anyhow::Result<ExitCode> {
    let store = home.store().await?;
    let log = StoredLog::load(home, &store).await?;
    let (origin, ring, entries, checkpoints) =
        (&log.origin, &log.ring, &log.entries, &log.checkpoints);
    let trusted = match &args.trusted_checkpoint {
        None => None,
        Some(file) => {
            let bytes = std::fs::read(file).with_context(|| {
                format!("cannot read the trusted checkpoint {}", file.display())
            })?;
            let opened = open_checkpoint(&bytes, ring, Some(origin)).map_err(|err| {
                anyhow::anyhow!(
                    "{} is not a trusted checkpoint of this log ({}): {err}",
                    file.display(),
                    err.code()
                )
            })?;
            Some(opened)
        }
    };
    let target = format!("{} {}", store.backend_name(), store.target());

    let Some(run_id) = &args.run else {
        return Ok(match log.verify(trusted.as_ref(), Coverage::Required) {
            Ok((report, sealed)) => {
                let summary = json!({
                    "verified": true,
                    "store": target,
                    "origin": origin,
                    "entries": report.entries,
                    "scopes": report.scopes,
                    "checkpoints_verified": report.checkpoints_verified,
                    "covered_by_latest_checkpoint": report.covered_by_latest_checkpoint,
                    "uncovered_tail": report.uncovered_tail,
                    "sealed": sealed,
                    "root": hash_hex(&report.root),
                    "trusted_checkpoint_size": report.trusted_size,
                    "witness": {
                        "path": log.witness.path(),
                        "checkpoints": log.witnessed.as_ref().map(Vec::len),
                    },
                });
                if args.json {
                    println!("{}", serde_json::to_string_pretty(&summary)?);
                } else {
                    println!("ok: the evidence log verifies ({target})");
                    println!("  entries: {} in {} scopes", report.entries, report.scopes);
                    println!(
                        "  checkpoints verified: {}; the latest covers {} entries; uncovered tail: {}",
                        report.checkpoints_verified,
                        report.covered_by_latest_checkpoint,
                        report.uncovered_tail
                    );
                    println!("  batch seals cover {sealed} entries");
                    println!("  root: {}", hash_hex(&report.root));
                    if let Some(size) = report.trusted_size {
                        println!("  consistent with the trusted checkpoint of {size} entries");
                    }
                    println!("  {}", log.witness_summary());
                }
                ExitCode::SUCCESS
            }
            Err(tampering) => print_tampering(&tampering, args.json)?,
        });
    };

    // One run: its chain, and its entries' inclusion in the latest checkpoint. A trusted
    // checkpoint is about the whole log, so it is checked first.
    if trusted.is_some()
        && let Err(tampering) = log.verify(trusted.as_ref(), Coverage::Required)
    {
        return print_tampering(&tampering, args.json);
    }
    let mut scope: Vec<EvidenceEntry> = entries
        .iter()
        .filter(|e| &e.scope == run_id)
        .cloned()
        .collect();
    if scope.is_empty() {
        bail!("there is no evidence for run `{run_id}` in {target}");
    }
    scope.sort_by_key(|e| e.scope_seq);
    let latest = match checkpoints.last() {
        None => None,
        Some(stored) => match open_checkpoint(stored.note.as_bytes(), ring, Some(origin)) {
            Ok(opened) => Some(opened),
            Err(err) => {
                let tampering = Tampering {
                    kind: TamperKind::BadSignature,
                    seq: None,
                    scope: None,
                    scope_seq: None,
                    checkpoint_size: Some(stored.size),
                    message: format!(
                        "the latest stored checkpoint (id {}, size {}) does not verify: {err}",
                        stored.id, stored.size
                    ),
                };
                return print_tampering(&tampering, args.json);
            }
        },
    };
    let proofs = match &latest {
        None => Vec::new(),
        Some(checkpoint) => match inclusion_proofs(entries, &scope, checkpoint) {
            Ok(proofs) => proofs,
            Err(tampering) => return print_tampering(&tampering, args.json),
        },
    };
    let covering = latest.as_ref().map(|c| (c, proofs.as_slice()));
    Ok(match verify_scope(&scope, covering) {
        Ok(report) => {
            if args.json {
                let out = json!({
                    "verified": true,
                    "store": target,
                    "run": report.scope,
                    "entries": report.entries,
                    "covered": report.covered,
                    "uncovered": report.uncovered,
                    "checkpoint_size": report.checkpoint_size,
                });
                println!("{}", serde_json::to_string_pretty(&out)?);
            } else {
                println!("ok: run {} verifies ({target})", report.scope);
                println!(
                    "  entries: {}; in the checkpoint of {} entries: {}; after it: {}",
                    report.entries,
                    report
                        .checkpoint_size
                        .map_or_else(|| "(none)".to_owned(), |s| s.to_string()),
                    report.covered,
                    report.uncovered
                );
            }
            ExitCode::SUCCESS
        }
        Err(tampering) => print_tampering(&tampering, args.json)?,
    })
}

/// The inclusion proof of every entry of `scope` the checkpoint covers, from the tree
/// of the whole log as stored. A log shorter than the checkpoint was cut.
pub fn inclusion_proofs(
    all: &[EvidenceEntry],
    scope: &[EvidenceEntry],
    checkpoint: &VerifiedCheckpoint,
) -> Result<Vec<InclusionProof>, Tampering> {
    let size = checkpoint.checkpoint.size;
    if size > all.len() as u64 {
        return Err(Tampering {
            kind: TamperKind::Truncated,
            seq: Some(all.len() as u64 + 1),
            scope: None,
            scope_seq: None,
            checkpoint_size: Some(size),
            message: format!(
                "the latest checkpoint covers {size} entries but the log holds {}",
                all.len()
            ),
        });
    }
    // An unreadable hash becomes a leaf that matches nothing: its entry fails to verify.
    let hashes: Vec<_> = all
        .iter()
        .map(|e| parse_hash_hex(&e.hash).unwrap_or([0; 32]))
        .collect();
    let tree = LogTree::from_entry_hashes(&hashes);
    let mut proofs = Vec::new();
    for entry in scope.iter().filter(|e| e.seq >= 1 && e.seq <= size) {
        let proof = tree
            .inclusion_proof_for(entry.seq, size)
            .map_err(|err| Tampering {
                kind: TamperKind::CheckpointMismatch,
                seq: Some(entry.seq),
                scope: Some(entry.scope.clone()),
                scope_seq: Some(entry.scope_seq),
                checkpoint_size: Some(size),
                message: format!("no inclusion proof for entry {}: {err}", entry.seq),
            })?;
        proofs.push(proof);
    }
    Ok(proofs)
}

/// Prints what was found and returns exit code 1.
fn print_tampering(tampering: &Tampering, as_json: bool) -> anyhow::Result<ExitCode> {
    if as_json {
        let out = json!({
            "verified": false,
            "tampering": {
                "code": tampering.code(),
                "seq": tampering.seq,
                "scope": tampering.scope,
                "scope_seq": tampering.scope_seq,
                "checkpoint_size": tampering.checkpoint_size,
                "message": tampering.message,
            },
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        println!("TAMPERED: {}", tampering.code());
        let mut place: Vec<String> = Vec::new();
        if let Some(seq) = tampering.seq {
            place.push(format!("seq {seq}"));
        }
        if let Some(scope) = &tampering.scope {
            place.push(format!("scope {scope}"));
        }
        if let Some(scope_seq) = tampering.scope_seq {
            place.push(format!("scope_seq {scope_seq}"));
        }
        if !place.is_empty() {
            println!("  first bad entry: {}", place.join(", "));
        }
        if let Some(size) = tampering.checkpoint_size {
            println!("  checkpoint: size {size}");
        }
        println!("  {}", tampering.message);
    }
    Ok(ExitCode::from(EXIT_FAILED))
}
