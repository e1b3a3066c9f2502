//! The signed export of a run (issue 4 part 5): the evidence statement and SLSA provenance
//! built from an in-memory log of two runs, signed into DSSE envelopes, verified back,
//! refused when an entry, a proof or the checkpoint is tampered with, and checked by
//! independent verifiers (PyPI `securesystemslib` and `in-toto-attestation`).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, UNIX_EPOCH};

use relo_evidence::export::{RELO_BUILD_TYPE, evidence_statement_generated_at};
use relo_evidence::{
    Checkpoint, EVIDENCE_PREDICATE_TYPE, EntryChain, EntryContent, EvidenceEntry, EvidenceEvent,
    EvidenceRecord, ExportError, InclusionProof, KeyRing, KeyStatus, LogTree,
    SLSA_PROVENANCE_PREDICATE_TYPE, Scope, StepUsage, evidence_origin, evidence_statement,
    parse_hash_hex, provenance_statement, verify_evidence_statement,
};
use relo_evidence::{RunPacket, rfc3339_utc};
use relo_trust::{Envelope, KeyAlgorithm, PrivateKey, Statement, Subject};
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

const RUN: &str = "run-7";
const OTHER_RUN: &str = "run-8";
const BUILDER: &str = "https://relo.dev/orchestrator/test-home";
const PLUGIN_A: &str = "acme/build";

fn digest(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

/// A log of two runs interleaved, the tree, a signed checkpoint over all of it, and the
/// keys.
struct Log {
    origin: String,
    key: PrivateKey,
    ring: KeyRing,
    entries: Vec<EvidenceEntry>,
    tree: LogTree,
    note: String,
    checkpoint: Checkpoint,
}

impl Log {
    fn new() -> Self {
        Self::with(contents())
    }

    fn with(contents: Vec<EntryContent>) -> Self {
        let origin = evidence_origin("test-home");
        let key = PrivateKey::generate(KeyAlgorithm::Ed25519);
        let mut ring = KeyRing::new();
        ring.add(&origin, key.public_key().clone(), KeyStatus::Active)
            .expect("key");

        let mut chain = EntryChain::new();
        let mut entries = Vec::new();
        for (i, content) in contents.into_iter().enumerate() {
            let mut content = content;
            content.time = rfc3339_utc(UNIX_EPOCH + Duration::from_secs(1_780_000_000 + i as u64));
            entries.push(chain.append(content).expect("append"));
        }
        let hashes: Vec<_> = entries
            .iter()
            .map(|e| parse_hash_hex(&e.hash).expect("hash"))
            .collect();
        let tree = LogTree::from_entry_hashes(&hashes);
        let checkpoint = Checkpoint::new(origin.as_str(), tree.size(), tree.root()).expect("cp");
        let note = checkpoint.sign(&[(&origin, &key)]).expect("sign");
        Self {
            origin,
            key,
            ring,
            entries,
            tree,
            note,
            checkpoint,
        }
    }

    fn run_entries(&self, run: &str) -> Vec<EvidenceEntry> {
        self.entries
            .iter()
            .filter(|e| e.scope == run)
            .cloned()
            .collect()
    }

    fn proofs(&self, entries: &[EvidenceEntry]) -> Vec<InclusionProof> {
        entries
            .iter()
            .map(|e| {
                self.tree
                    .inclusion_proof_for(e.seq, self.checkpoint.size)
                    .expect("proof")
            })
            .collect()
    }
}

fn record(run: &str, step: Option<&str>, event: EvidenceEvent) -> EntryContent {
    EntryContent::from_record(&EvidenceRecord::new(
        Scope::Run(run.into()),
        step.map(str::to_owned),
        event,
    ))
}

fn raw(run: &str, kind: &str, body: Value) -> EntryContent {
    EntryContent {
        scope: run.into(),
        step_id: None,
        kind: kind.into(),
        time: String::new(),
        body,
    }
}

fn started(run: &str, step: &str, plugin: &str, name: Option<&str>) -> EntryContent {
    let mut content = record(
        run,
        Some(step),
        EvidenceEvent::StepStarted {
            digest: digest(plugin),
            attempt: 1,
            grant: json!({"egress": ["api.example.com"]}),
            limits: json!({"fuel": 1_000_000}),
        },
    );
    if let Some(name) = name {
        content.body["plugin"] = name.into();
    }
    content
}

fn finished(run: &str, step: &str, output: Option<&str>) -> EntryContent {
    record(
        run,
        Some(step),
        EvidenceEvent::StepFinished {
            outcome: "ok".into(),
            usage: StepUsage {
                fuel: 1234,
                wall_ms: 5,
                ..StepUsage::default()
            },
            output_sha256: output.map(digest),
        },
    )
}

/// Run 7: run.started, two steps (the first plugin named, the second by digest only,
/// the first used twice), an egress denial, outputs; run 8 interleaved, without digests.
fn contents() -> Vec<EntryContent> {
    vec![
        raw(
            RUN,
            "run.started",
            json!({"workflow": "release", "version": "1.2.0"}),
        ),
        raw(OTHER_RUN, "run.started", json!({"workflow": "nightly"})),
        started(RUN, "build", "plugin-a.wasm", Some(PLUGIN_A)),
        record(
            RUN,
            Some("build"),
            EvidenceEvent::EgressDenied {
                method: "GET".into(),
                scheme: "https".into(),
                host: "evil.example.com".into(),
                port: 443,
                path: "/".into(),
                code: "egress-denied".into(),
                reason: "no rule".into(),
            },
        ),
        record(
            OTHER_RUN,
            Some("lint"),
            EvidenceEvent::SecretRead {
                name: "token".into(),
                reference: "kv/data/app#token".into(),
                version: Some(1),
            },
        ),
        finished(RUN, "build", Some("build output")),
        started(RUN, "publish", "plugin-b.wasm", None),
        finished(RUN, "publish", Some("publish output")),
        started(RUN, "publish-again", "plugin-a.wasm", Some(PLUGIN_A)),
        finished(RUN, "publish-again", None),
        raw(OTHER_RUN, "run.finished", json!({"outcome": "ok"})),
        raw(RUN, "run.finished", json!({"outcome": "ok"})),
    ]
}

fn packet<'a>(
    log: &'a Log,
    run: &'a str,
    entries: &'a [EvidenceEntry],
    proofs: &'a [InclusionProof],
) -> RunPacket<'a> {
    RunPacket {
        run_id: run,
        entries,
        proofs,
        checkpoint_note: &log.note,
        checkpoint: &log.checkpoint,
        builder_id: BUILDER,
    }
}

fn code(result: Result<impl std::fmt::Debug, ExportError>) -> &'static str {
    match result {
        Ok(value) => panic!("expected an error, got {value:?}"),
        Err(error) => error.code(),
    }
}

/// The run's evidence statement, built and checked to round-trip through an envelope.
fn evidence(log: &Log) -> Statement {
    let entries = log.run_entries(RUN);
    let proofs = log.proofs(&entries);
    evidence_statement(&packet(log, RUN, &entries, &proofs)).expect("statement")
}

#[test]
fn evidence_statement_names_plugins_and_outputs_and_verifies() {
    let log = Log::new();
    let statement = evidence(&log);
    statement.validate().expect("valid in-toto statement");
    assert_eq!(statement.predicate_type, EVIDENCE_PREDICATE_TYPE);
    assert_eq!(
        statement.subject,
        [
            Subject::sha256(format!("plugin:{PLUGIN_A}"), digest("plugin-a.wasm")),
            Subject::sha256(
                format!("plugin:{}", digest("plugin-b.wasm")),
                digest("plugin-b.wasm")
            ),
            Subject::sha256("output:build", digest("build output")),
            Subject::sha256("output:publish", digest("publish output")),
        ]
    );
    let predicate = &statement.predicate;
    assert_eq!(predicate["run_id"], RUN);
    assert_eq!(predicate["origin"], log.origin.as_str());
    assert_eq!(predicate["checkpoint"]["note"], log.note.as_str());
    assert_eq!(predicate["checkpoint"]["size"], 12);
    assert_eq!(
        predicate["checkpoint"]["root"],
        hex::encode(log.checkpoint.root)
    );
    assert_eq!(predicate["entries"].as_array().map(Vec::len), Some(9));
    assert_eq!(predicate["proofs"].as_array().map(Vec::len), Some(9));
    assert!(predicate.get("generated_at").is_none());

    // Deterministic: the same packet gives the same bytes.
    assert_eq!(
        evidence(&log).to_canonical_json().expect("jcs"),
        statement.to_canonical_json().expect("jcs")
    );

    // Signed, sent as JSON, verified back, then the evidence re-checked offline.
    let envelope = statement.sign(&[&log.key]).expect("sign");
    let received = Envelope::from_json(envelope.to_json().as_bytes()).expect("parse");
    let verified = received
        .verify_statement(&[log.key.public_key().clone()], 1)
        .expect("envelope verifies");
    assert_eq!(verified.statement, statement);
    let report =
        verify_evidence_statement(&verified.statement, &log.ring, &log.origin).expect("verifies");
    assert_eq!(report.run_id, RUN);
    assert_eq!(report.entries, 9);
    assert_eq!(report.checkpoint, log.checkpoint);
    assert_eq!(report.signers.len(), 1);
    assert_eq!(report.subjects, statement.subject);
    assert_eq!(report.generated_at, None);
}

#[test]
fn generated_at_is_carried_when_given() {
    let log = Log::new();
    let entries = log.run_entries(RUN);
    let proofs = log.proofs(&entries);
    let statement = evidence_statement_generated_at(
        &packet(&log, RUN, &entries, &proofs),
        "2026-06-01T00:00:00Z",
    )
    .expect("statement");
    let report = verify_evidence_statement(&statement, &log.ring, &log.origin).expect("verifies");
    assert_eq!(report.generated_at.as_deref(), Some("2026-06-01T00:00:00Z"));
}

#[test]
fn a_run_without_digests_is_its_own_subject() {
    let log = Log::new();
    let entries = log.run_entries(OTHER_RUN);
    let proofs = log.proofs(&entries);
    let statement = evidence_statement(&packet(&log, OTHER_RUN, &entries, &proofs)).expect("ok");
    let canonical = relo_trust::to_canonical_json(&entries).expect("jcs");
    assert_eq!(
        statement.subject,
        [Subject::sha256(
            format!("run:{OTHER_RUN}"),
            hex::encode(Sha256::digest(&canonical))
        )]
    );
    verify_evidence_statement(&statement, &log.ring, &log.origin).expect("verifies");

    let provenance = provenance_statement(&packet(&log, OTHER_RUN, &entries, &proofs)).expect("ok");
    assert_eq!(provenance.subject, statement.subject);
    assert_eq!(
        provenance.predicate["buildDefinition"]["resolvedDependencies"],
        json!([])
    );
}

#[test]
fn a_changed_entry_body_is_named() {
    let log = Log::new();
    let mut statement = evidence(&log);
    // The egress denial (entry 4 of the log, third of the run).
    let denied = &mut statement.predicate["entries"][2];
    assert_eq!(denied["kind"], "egress.denied");
    denied["body"]["host"] = "harmless.example.com".into();
    let error = verify_evidence_statement(&statement, &log.ring, &log.origin).unwrap_err();
    assert_eq!(error.code(), "changed", "{error}");
    match error {
        ExportError::Tampered(tampering) => assert_eq!(tampering.seq, Some(4)),
        other => panic!("{other:?}"),
    }
}

#[test]
fn an_altered_proof_is_named() {
    let log = Log::new();
    let mut statement = evidence(&log);
    let path = &mut statement.predicate["proofs"][1]["path"][0];
    let mut bytes = hex::decode(path.as_str().expect("hex")).expect("hex");
    bytes[0] ^= 1;
    *path = hex::encode(bytes).into();
    let error = verify_evidence_statement(&statement, &log.ring, &log.origin).unwrap_err();
    assert_eq!(error.code(), "checkpoint-mismatch", "{error}");

    // A proof for another entry is named too.
    let mut statement = evidence(&log);
    statement.predicate["proofs"][1]["seq"] = 1.into();
    let error = verify_evidence_statement(&statement, &log.ring, &log.origin).unwrap_err();
    assert_eq!(error.code(), "checkpoint-mismatch", "{error}");
}

#[test]
fn a_checkpoint_signed_by_another_key_is_refused() {
    let log = Log::new();
    let impostor = PrivateKey::generate(KeyAlgorithm::Ed25519);
    let forged = log
        .checkpoint
        .sign(&[(&log.origin, &impostor)])
        .expect("sign");
    let mut statement = evidence(&log);
    statement.predicate["checkpoint"]["note"] = forged.into();
    let error = verify_evidence_statement(&statement, &log.ring, &log.origin).unwrap_err();
    assert_eq!(error.code(), "unknown-key", "{error}");
    assert!(matches!(error, ExportError::Checkpoint(_)));

    // Of another log.
    let error = verify_evidence_statement(&evidence(&log), &log.ring, "relo.dev/evidence/other")
        .unwrap_err();
    assert_eq!(error.code(), "wrong-origin", "{error}");
}

#[test]
fn a_statement_that_disagrees_with_its_evidence_is_refused() {
    let log = Log::new();

    let mut statement = evidence(&log);
    statement.subject[0] = Subject::sha256(format!("plugin:{PLUGIN_A}"), digest("other"));
    let error = verify_evidence_statement(&statement, &log.ring, &log.origin).unwrap_err();
    assert_eq!(error.code(), "subject-mismatch", "{error}");

    let mut statement = evidence(&log);
    statement.subject.pop();
    let error = verify_evidence_statement(&statement, &log.ring, &log.origin).unwrap_err();
    assert_eq!(error.code(), "subject-mismatch", "{error}");

    let mut statement = evidence(&log);
    statement.predicate["checkpoint"]["size"] = 11.into();
    let error = verify_evidence_statement(&statement, &log.ring, &log.origin).unwrap_err();
    assert_eq!(error.code(), "predicate-mismatch", "{error}");

    let mut statement = evidence(&log);
    statement.predicate["run_id"] = OTHER_RUN.into();
    let error = verify_evidence_statement(&statement, &log.ring, &log.origin).unwrap_err();
    assert_eq!(error.code(), "foreign-entry", "{error}");

    let mut statement = evidence(&log);
    let removed = statement.predicate["entries"]
        .as_array_mut()
        .expect("array")
        .remove(3);
    assert_eq!(removed["kind"], "step.finished");
    statement.predicate["proofs"]
        .as_array_mut()
        .expect("array")
        .remove(3);
    let error = verify_evidence_statement(&statement, &log.ring, &log.origin).unwrap_err();
    assert_eq!(error.code(), "deleted", "{error}");

    let mut statement = evidence(&log);
    statement.predicate_type = SLSA_PROVENANCE_PREDICATE_TYPE.into();
    let error = verify_evidence_statement(&statement, &log.ring, &log.origin).unwrap_err();
    assert_eq!(error.code(), "wrong-predicate-type", "{error}");

    let mut statement = evidence(&log);
    statement.predicate["entries"] = json!("none");
    let error = verify_evidence_statement(&statement, &log.ring, &log.origin).unwrap_err();
    assert_eq!(error.code(), "malformed-predicate", "{error}");
}

#[test]
fn the_builders_refuse_a_packet_that_does_not_verify() {
    let log = Log::new();
    let entries = log.run_entries(RUN);
    let proofs = log.proofs(&entries);

    let mut changed = entries.clone();
    changed[2].body["host"] = "x".into();
    let result = evidence_statement(&packet(&log, RUN, &changed, &proofs));
    assert_eq!(code(result), "changed");

    let result = provenance_statement(&packet(&log, RUN, &entries, &proofs[1..]));
    assert_eq!(code(result), "proof-mismatch");

    let result = evidence_statement(&packet(&log, OTHER_RUN, &entries, &proofs));
    assert_eq!(code(result), "foreign-entry");

    let result = evidence_statement(&packet(&log, RUN, &[], &[]));
    assert_eq!(code(result), "empty-run");

    let older =
        Checkpoint::new(log.origin.as_str(), 3, log.tree.root_at(3).expect("root")).expect("cp");
    let mut other = packet(&log, RUN, &entries, &proofs);
    other.checkpoint = &older;
    assert_eq!(code(evidence_statement(&other)), "checkpoint-note-mismatch");

    // A digest that is not SHA-256 hex, in an intact log.
    let mut bad = started(RUN, "build", "plugin-a.wasm", None);
    bad.body["digest"] = "ABC".into();
    let bad_log = Log::with(vec![bad]);
    let bad_entries = bad_log.run_entries(RUN);
    let bad_proofs = bad_log.proofs(&bad_entries);
    let result = evidence_statement(&packet(&bad_log, RUN, &bad_entries, &bad_proofs));
    assert_eq!(code(result), "bad-digest");

    let mut nameless = packet(&log, RUN, &entries, &proofs);
    nameless.builder_id = "";
    assert_eq!(code(provenance_statement(&nameless)), "missing-builder-id");
}

#[test]
fn provenance_lists_plugins_as_dependencies() {
    let log = Log::new();
    let entries = log.run_entries(RUN);
    let proofs = log.proofs(&entries);
    let statement = provenance_statement(&packet(&log, RUN, &entries, &proofs)).expect("ok");
    statement.validate().expect("valid");
    assert_eq!(statement.predicate_type, SLSA_PROVENANCE_PREDICATE_TYPE);
    assert_eq!(
        statement.subject,
        [
            Subject::sha256("output:build", digest("build output")),
            Subject::sha256("output:publish", digest("publish output")),
        ]
    );
    let definition = &statement.predicate["buildDefinition"];
    assert_eq!(definition["buildType"], RELO_BUILD_TYPE);
    assert_eq!(
        definition["externalParameters"],
        json!({"run_id": RUN, "workflow": "release", "version": "1.2.0"})
    );
    assert_eq!(
        definition["internalParameters"]["evidence"]["checkpoint_size"],
        12
    );
    assert_eq!(
        definition["resolvedDependencies"],
        json!([
            {"uri": format!("relo-plugin:{PLUGIN_A}"), "name": PLUGIN_A,
             "digest": {"sha256": digest("plugin-a.wasm")}},
            {"uri": format!("relo-plugin:{}", digest("plugin-b.wasm")),
             "digest": {"sha256": digest("plugin-b.wasm")}},
        ])
    );
    let details = &statement.predicate["runDetails"];
    assert_eq!(details["builder"]["id"], BUILDER);
    assert_eq!(details["metadata"]["invocationId"], RUN);
    assert_eq!(details["metadata"]["startedOn"], entries[0].time.as_str());
    assert_eq!(
        details["metadata"]["finishedOn"],
        entries[entries.len() - 1].time.as_str()
    );
    assert_eq!(details["byproducts"], json!([]));

    let envelope = statement.sign(&[&log.key]).expect("sign");
    let verified = envelope
        .verify_statement(&[log.key.public_key().clone()], 1)
        .expect("verifies");
    assert_eq!(verified.statement, statement);
    // The provenance is not an evidence statement.
    assert_eq!(
        code(verify_evidence_statement(
            &statement,
            &log.ring,
            &log.origin
        )),
        "wrong-predicate-type"
    );
}

// ---- Independent verifiers ----

const PIP_INSTALL: &str = "run `scripts/test.sh` (it installs them into target/interop/venv and \
     exports RELO_PYTHON), or `python3 -m pip install 'securesystemslib[crypto]' in-toto-attestation`";
const SCRIPT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/interop/verify_export.py"
);

fn temp_dir() -> PathBuf {
    let nanos = std::time::SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let dir = std::env::temp_dir().join(format!(
        "relo-evidence-export-{}-{nanos}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

fn write_case(dir: &Path, name: &str, envelope: &Envelope, log: &Log, expect: &str) {
    let case = dir.join(name);
    std::fs::create_dir(&case).expect("case folder");
    let public = log.key.public_key();
    let files = [
        ("envelope.json", envelope.to_json_pretty()),
        ("public.pem", public.to_pem()),
        ("keyid", public.key_id().to_owned()),
        ("expect", expect.to_owned()),
    ];
    for (name, contents) in files {
        std::fs::write(case.join(name), contents).expect("case file");
    }
}

#[test]
fn securesystemslib_and_in_toto_attestation_check_the_export() {
    if relo_test_env::skip_requested("INTEROP") {
        eprintln!("skipping the export interop check");
        return;
    }
    let log = Log::new();
    let entries = log.run_entries(RUN);
    let proofs = log.proofs(&entries);
    let evidence = evidence_statement(&packet(&log, RUN, &entries, &proofs)).expect("ok");
    let provenance = provenance_statement(&packet(&log, RUN, &entries, &proofs)).expect("ok");

    let dir = temp_dir();
    let signed = evidence.sign(&[&log.key]).expect("sign");
    write_case(&dir, "evidence", &signed, &log, "evidence");
    let signed_provenance = provenance.sign(&[&log.key]).expect("sign");
    write_case(&dir, "provenance", &signed_provenance, &log, "provenance");

    // A changed entry, re-signed by the exporter's key: the envelope verifies, the
    // evidence does not.
    let mut changed = evidence.clone();
    changed.predicate["entries"][2]["body"]["host"] = "harmless.example.com".into();
    let resigned = changed.sign(&[&log.key]).expect("sign");
    write_case(
        &dir,
        "evidence-changed-entry",
        &resigned,
        &log,
        "bad-evidence",
    );

    let impostor = PrivateKey::generate(KeyAlgorithm::Ed25519);
    let mut forged = evidence.clone();
    forged.predicate["checkpoint"]["note"] = log
        .checkpoint
        .sign(&[(&log.origin, &impostor)])
        .expect("sign")
        .into();
    let resigned = forged.sign(&[&log.key]).expect("sign");
    write_case(
        &dir,
        "evidence-note-by-another-key",
        &resigned,
        &log,
        "bad-evidence",
    );

    let mut tampered = signed.clone();
    let at = tampered.payload.len() / 2;
    tampered.payload[at] ^= 0x01;
    write_case(&dir, "evidence-tampered-payload", &tampered, &log, "reject");

    // The Python that has the verifiers: RELO_PYTHON (set by scripts/test.sh), else python3.
    let python = std::env::var_os("RELO_PYTHON")
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| "python3".into());
    let output = match Command::new(&python).arg(SCRIPT).arg(&dir).output() {
        Ok(output) => output,
        Err(e) => panic!(
            "cannot run {} ({e}); install Python 3 and {PIP_INSTALL}, \
             or set RELO_SKIP_INTEROP=1",
            python.display()
        ),
    };
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let _ = std::fs::remove_dir_all(&dir);
    if output.status.code() == Some(3) {
        panic!(
            "{stderr}the interop check needs its Python packages: {PIP_INSTALL} \
             (or set RELO_SKIP_INTEROP=1)"
        );
    }
    println!("{stdout}");
    assert!(
        output.status.success(),
        "{SCRIPT} failed:\n{stdout}\n{stderr}"
    );
    assert_eq!(stdout.lines().count(), 5, "{stdout}");
}
