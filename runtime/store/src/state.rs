//! The state tables (runs and steps) against the evidence entries that recorded them.
//!
//! A database writer can change a run's or a step's row without touching the log. `relo
//! evidence verify` checks every run this way, and an instance taking a run over checks
//! that run before it trusts a finished step's output or a passed gate.

use std::collections::HashMap;

use relo_evidence::{EvidenceEntry, TamperKind, Tampering};

use crate::{RunRow, StepRow};

/// A run as stored, with its steps.
#[derive(Debug, Clone)]
pub struct StoredRun {
    /// The run's row.
    pub run: RunRow,
    /// Its steps' rows.
    pub steps: Vec<StepRow>,
}

/// The latest entry of each `(scope, step, kind)` the state checks read.
struct Latest<'a>(HashMap<(&'a str, Option<&'a str>, &'a str), &'a EvidenceEntry>);

/// The kinds that record what the state tables hold.
const STATE_KINDS: [&str; 4] = [
    "run.finished",
    "step.finished",
    "gate.passed",
    "workspace.snapshot",
];

impl<'a> Latest<'a> {
    /// Indexes `entries` (in `seq` order, so a later entry replaces an earlier one).
    fn new(entries: &'a [EvidenceEntry]) -> Self {
        let mut latest = HashMap::new();
        for entry in entries {
            let kind = entry.kind.as_str();
            if STATE_KINDS.contains(&kind) {
                // A step's end is per step; a run's end and workspace are per run.
                let step = match kind {
                    "step.finished" | "gate.passed" => entry.step_id.as_deref(),
                    _ => None,
                };
                latest.insert((entry.scope.as_str(), step, kind), entry);
            }
        }
        Latest(latest)
    }

    fn get(&self, scope: &str, step: Option<&str>, kind: &str) -> Option<&'a EvidenceEntry> {
        self.0.get(&(scope, step, kind)).copied()
    }
}

/// The text field `field` of an entry's body.
fn body_text<'e>(entry: &'e EvidenceEntry, field: &str) -> Option<&'e str> {
    entry.body.get(field).and_then(serde_json::Value::as_str)
}

/// A finding about `run`'s row or one of its steps; `entry` is the evidence it
/// disagrees with, when there is one.
fn mismatch(run: &str, entry: Option<&EvidenceEntry>, message: String) -> Tampering {
    Tampering {
        kind: TamperKind::StateMismatch,
        seq: entry.map(|e| e.seq),
        scope: Some(run.to_owned()),
        scope_seq: entry.map(|e| e.scope_seq),
        checkpoint_size: None,
        message,
    }
}

/// A succeeded step's stored output against the `output_sha256` its `step.finished`
/// entry recorded (the sandbox hashes the output in the form the store keeps).
fn check_output(run: &str, step: &StepRow, finished: &EvidenceEntry) -> Result<(), Tampering> {
    let Some(recorded) = body_text(finished, "output_sha256") else {
        return Ok(());
    };
    let stored = step
        .output
        .as_deref()
        .map(|output| relo_trust::sha256_hex(output.as_bytes()));
    if stored.as_deref() == Some(recorded) {
        return Ok(());
    }
    Err(mismatch(
        run,
        Some(finished),
        format!(
            "step {} of run {run} has a stored output whose sha256 is {} but its \
             step.finished entry records {recorded}",
            step.step_id,
            stored.as_deref().unwrap_or("(no output)")
        ),
    ))
}

/// Runs and steps against the entries that recorded them, runs oldest first:
///
/// - a run stored as ended (`succeeded`, `failed`, `cancelled`) has the state of its
///   latest `run.finished` entry, and one exists for `succeeded` and `failed` (a run
///   still being driven may have recorded its end before storing it);
/// - a step stored as `succeeded` has a latest `step.finished` entry saying
///   `succeeded` whose `output_sha256` is the stored output's, or, for an approval gate,
///   a `gate.passed` entry;
/// - a run's workspace digest is the digest of its latest `workspace.snapshot` entry.
pub fn check_state(entries: &[EvidenceEntry], runs: &[StoredRun]) -> Result<(), Tampering> {
    let latest = Latest::new(entries);
    for StoredRun { run, steps } in runs {
        let id = run.id.as_str();
        let finished = latest.get(id, None, "run.finished");
        let recorded = finished.and_then(|e| body_text(e, "outcome"));
        let ended = matches!(run.state.as_str(), "succeeded" | "failed" | "cancelled");
        match recorded {
            Some(outcome) if ended && outcome != run.state => {
                return Err(mismatch(
                    id,
                    finished,
                    format!(
                        "run {id} is stored as `{}` but its run.finished entry records `{outcome}`",
                        run.state
                    ),
                ));
            }
            None if matches!(run.state.as_str(), "succeeded" | "failed") => {
                return Err(mismatch(
                    id,
                    None,
                    format!(
                        "run {id} is stored as `{}` but no run.finished entry records its end",
                        run.state
                    ),
                ));
            }
            _ => {}
        }
        for step in steps.iter().filter(|s| s.state == "succeeded") {
            let step_id = step.step_id.as_str();
            let finished = latest.get(id, Some(step_id), "step.finished");
            let outcome = finished.and_then(|e| body_text(e, "outcome"));
            let gate = latest.get(id, Some(step_id), "gate.passed");
            if let Some(finished) = finished.filter(|_| outcome == Some("succeeded")) {
                check_output(id, step, finished)?;
            }
            if outcome != Some("succeeded") && gate.is_none() {
                return Err(mismatch(
                    id,
                    finished,
                    format!(
                        "step {step_id} of run {id} is stored as `succeeded` but {}",
                        match outcome {
                            Some(outcome) =>
                                format!("its latest step.finished entry records `{outcome}`"),
                            None => "no step.finished or gate.passed entry records it".into(),
                        }
                    ),
                ));
            }
        }
        if let Some(digest) = &run.workspace_digest {
            let snapshot = latest.get(id, None, "workspace.snapshot");
            let recorded = snapshot.and_then(|e| body_text(e, "digest"));
            if recorded != Some(digest.as_str()) {
                return Err(mismatch(
                    id,
                    snapshot,
                    format!(
                        "run {id} has workspace digest {digest} but {}",
                        match recorded {
                            Some(recorded) =>
                                format!("its latest workspace.snapshot entry records {recorded}"),
                            None => "no workspace.snapshot entry records it".into(),
                        }
                    ),
                ));
            }
        }
    }
    Ok(())
}
