//! The evidence log end to end: a log of 210 entries over three scopes with checkpoints
//! every 50 entries and at the end, then each tampering of issue 4 part 6, each of which
//! must be named with its code and its first bad entry.

use std::time::{Duration, UNIX_EPOCH};

use proptest::prelude::*;
use relo_evidence::{
    Checkpoint, EntryChain, EntryContent, EvidenceEntry, EvidenceEvent, EvidenceRecord,
    InclusionProof, KeyRing, KeyStatus, LogTree, Scope, StepUsage, TamperKind, Tampering,
    VerifiedCheckpoint, VerifyOptions, VerifyReport, entry_hash, evidence_origin, hash_hex,
    open_checkpoint, parse_hash_hex, verify_log, verify_scope,
};
use relo_trust::{KeyAlgorithm, PrivateKey};
use serde_json::json;

const SIZE: usize = 210;
const SCOPES: [&str; 3] = ["run-a", "run-b", "control"];

fn origin() -> String {
    evidence_origin("test-home")
}

fn record(i: usize) -> EvidenceRecord {
    let scope = SCOPES[(i * 7 + i / 3) % 3];
    let event = match i % 4 {
        0 => EvidenceEvent::SecretRead {
            name: format!("secret-{i}"),
            reference: "kv/data/app#token".into(),
            version: Some(1),
        },
        1 => EvidenceEvent::EgressDenied {
            method: "GET".into(),
            scheme: "https".into(),
            host: format!("host{i}.example"),
            port: 443,
            path: "/".into(),
            code: "egress-not-granted".into(),
            reason: "no rule matches".into(),
        },
        2 => EvidenceEvent::StepFinished {
            outcome: "succeeded".into(),
            usage: StepUsage {
                fuel: i as u64 * 1000,
                ..StepUsage::default()
            },
            output_sha256: Some(hex::encode([i as u8; 32])),
        },
        _ => EvidenceEvent::LimitExceeded {
            limit: "memory".into(),
            allowed: 1 << 20,
            requested: u64::MAX - i as u64,
        },
    };
    EvidenceRecord {
        scope: if scope == "control" {
            Scope::Control
        } else {
            Scope::Run(scope.into())
        },
        step_id: (scope != "control").then(|| format!("step-{}", i % 5)),
        time: UNIX_EPOCH + Duration::new(1_780_000_000 + i as u64, i as u32),
        event,
    }
}

fn build(records: impl IntoIterator<Item = EvidenceRecord>) -> Vec<EvidenceEntry> {
    let mut chain = EntryChain::new();
    records
        .into_iter()
        .map(|r| {
            chain
                .append(EntryContent::from_record(&r))
                .expect("hashable")
        })
        .collect()
}

fn hashes(entries: &[EvidenceEntry]) -> Vec<[u8; 32]> {
    entries
        .iter()
        .map(|e| parse_hash_hex(&e.hash).expect("hex"))
        .collect()
}

fn sign(entries: &[EvidenceEntry], size: usize, key: &PrivateKey) -> String {
    let tree = LogTree::from_entry_hashes(&hashes(&entries[..size]));
    Checkpoint::new(origin(), size as u64, tree.root())
        .expect("origin")
        .sign(&[(&origin(), key)])
        .expect("signs")
}

fn checkpoints(entries: &[EvidenceEntry], key: &PrivateKey) -> Vec<String> {
    let mut sizes: Vec<usize> = (50..=entries.len()).step_by(50).collect();
    if sizes.last() != Some(&entries.len()) {
        sizes.push(entries.len());
    }
    sizes.into_iter().map(|s| sign(entries, s, key)).collect()
}

struct Log {
    key: PrivateKey,
    ring: KeyRing,
    entries: Vec<EvidenceEntry>,
    notes: Vec<String>,
}

impl Log {
    fn new() -> Self {
        let key = PrivateKey::generate(KeyAlgorithm::Ed25519);
        let mut ring = KeyRing::new();
        ring.add(&origin(), key.public_key().clone(), KeyStatus::Active)
            .expect("Ed25519");
        let entries = build((0..SIZE).map(record));
        let notes = checkpoints(&entries, &key);
        Log {
            key,
            ring,
            entries,
            notes,
        }
    }

    fn trusted(&self, note: &str) -> VerifiedCheckpoint {
        open_checkpoint(note.as_bytes(), &self.ring, Some(&origin())).expect("verifies")
    }

    fn verify(
        &self,
        entries: &[EvidenceEntry],
        notes: &[String],
        trusted: Option<&VerifiedCheckpoint>,
    ) -> Result<VerifyReport, Tampering> {
        let origin = origin();
        verify_log(
            entries,
            notes,
            &VerifyOptions {
                origin: &origin,
                keys: &self.ring,
                trusted,
            },
        )
    }

    fn tampering(&self, entries: &[EvidenceEntry]) -> Tampering {
        self.verify(entries, &self.notes, None)
            .expect_err("tampering must be detected")
    }
}

fn rehash(entry: &mut EvidenceEntry) {
    entry.hash = hash_hex(&entry_hash(&entry.fields()).expect("hashable"));
}

fn assert_names(t: &Tampering, kind: TamperKind, entry: &EvidenceEntry) {
    assert_eq!(t.kind, kind, "{t}");
    assert_eq!(t.seq, Some(entry.seq), "{t}");
    assert_eq!(t.scope.as_deref(), Some(entry.scope.as_str()), "{t}");
    assert_eq!(t.scope_seq, Some(entry.scope_seq), "{t}");
    assert!(t.message.contains(&format!("entry {}", entry.seq)), "{t}");
}

/// The position of the first entry after `from` in `scope`.
fn next_in_scope(entries: &[EvidenceEntry], from: usize, scope: &str) -> usize {
    (from + 1..entries.len())
        .find(|&j| entries[j].scope == scope)
        .expect("a later entry of the scope")
}

#[test]
fn an_intact_log_verifies() {
    let log = Log::new();
    let report = log.verify(&log.entries, &log.notes, None).expect("intact");
    assert_eq!(report.entries, SIZE as u64);
    assert_eq!(report.scopes, 3);
    assert_eq!(report.checkpoints_verified, 5);
    assert_eq!(report.covered_by_latest_checkpoint, SIZE as u64);
    assert_eq!(report.uncovered_tail, 0);
    assert_eq!(
        report.root,
        LogTree::from_entry_hashes(&hashes(&log.entries)).root()
    );

    // Entries after the latest checkpoint are the uncovered tail.
    let report = log
        .verify(&log.entries, &log.notes[..4], None)
        .expect("intact");
    assert_eq!(report.covered_by_latest_checkpoint, 200);
    assert_eq!(report.uncovered_tail, 10);

    let trusted = log.trusted(&log.notes[3]);
    let report = log
        .verify(&log.entries, &log.notes, Some(&trusted))
        .expect("consistent with the trusted checkpoint");
    assert_eq!(report.trusted_size, Some(200));

    let empty: [&str; 0] = [];
    let origin = origin();
    let options = VerifyOptions {
        origin: &origin,
        keys: &log.ring,
        trusted: None,
    };
    assert_eq!(verify_log(&[], &empty, &options).expect("empty").entries, 0);
}

#[test]
fn a_changed_body_is_named() {
    let log = Log::new();
    let mut entries = log.entries.clone();
    entries[119].body["changed"] = json!(true);
    let t = log.tampering(&entries);
    assert_names(&t, TamperKind::Changed, &entries[119]);
    assert_eq!(t.code(), "changed");

    // Any field: kind, time, step, scope_seq and prev_hash are all sealed.
    for edit in [
        |e: &mut EvidenceEntry| e.kind = "secret.revealed".into(),
        |e: &mut EvidenceEntry| e.time = e.time.replace("2026", "2025"),
        |e: &mut EvidenceEntry| e.step_id = None,
        |e: &mut EvidenceEntry| e.prev_hash = "1".repeat(64),
        |e: &mut EvidenceEntry| e.hash = "2".repeat(64),
        |e: &mut EvidenceEntry| e.hash = e.hash.to_uppercase(),
        |e: &mut EvidenceEntry| e.body = EvidenceEntry::parse_stored_body("{not json"),
    ] {
        let mut entries = log.entries.clone();
        edit(&mut entries[77]);
        let t = log.tampering(&entries);
        assert_names(&t, TamperKind::Changed, &entries[77]);
    }
}

#[test]
fn an_edited_seq_is_a_change_not_a_gap() {
    let log = Log::new();
    for seq in [500, 49, 51, 0] {
        let mut entries = log.entries.clone();
        entries[49].seq = seq;
        let t = log.tampering(&entries);
        assert_names(&t, TamperKind::Changed, &entries[49]);
        assert!(t.message.contains("was written as seq 50"), "{t}");
    }
}

#[test]
fn a_replaced_hash_is_named_as_such() {
    let log = Log::new();
    let mut entries = log.entries.clone();
    entries[30].hash = "3".repeat(64);
    let t = log.tampering(&entries);
    assert_names(&t, TamperKind::Changed, &entries[30]);
    assert!(t.message.contains("stored hash replaced"), "{t}");
}

#[test]
fn a_change_rehashed_down_the_chain_is_caught_by_the_checkpoint() {
    let log = Log::new();
    let mut entries = log.entries.clone();
    // Someone without the key changes entry 120 and rehashes its whole scope's chain.
    let scope = entries[119].scope.clone();
    entries[119].body["changed"] = json!(true);
    let mut previous = None;
    for entry in entries.iter_mut().skip(119).filter(|e| e.scope == scope) {
        if let Some(prev) = previous.take() {
            entry.prev_hash = prev;
        }
        rehash(entry);
        previous = Some(entry.hash.clone());
    }
    let t = log.tampering(&entries);
    assert_eq!(t.kind, TamperKind::CheckpointMismatch, "{t}");
    assert_eq!(t.checkpoint_size, Some(150));
    assert!(t.message.contains("101 to 150"), "{t}");

    // Rehashing only the changed entry breaks its successor's link: named at the entry.
    let mut entries = log.entries.clone();
    entries[119].body["changed"] = json!(true);
    rehash(&mut entries[119]);
    let t = log.tampering(&entries);
    assert_names(&t, TamperKind::Changed, &entries[119]);
    assert!(t.message.contains("rehashed"), "{t}");
}

#[test]
fn a_deleted_middle_entry_is_named() {
    let log = Log::new();
    let mut entries = log.entries.clone();
    let deleted = entries.remove(99);
    let t = log.tampering(&entries);
    assert_eq!(t.kind, TamperKind::Deleted, "{t}");
    assert_eq!(t.seq, Some(100));
    assert_eq!(t.scope.as_deref(), Some(deleted.scope.as_str()));
    assert_eq!(t.scope_seq, Some(deleted.scope_seq));

    // Deleted and everything after renumbered to close the gap.
    let mut entries = log.entries.clone();
    let deleted = entries.remove(99);
    for entry in &mut entries[99..] {
        entry.seq -= 1;
    }
    let t = log.tampering(&entries);
    assert_eq!(t.kind, TamperKind::Deleted, "{t}");
    assert_eq!(t.seq, Some(100));
    assert_eq!(t.scope.as_deref(), Some(deleted.scope.as_str()));
}

#[test]
fn swapped_entries_are_named() {
    let log = Log::new();
    // Two rows exchange their seq: read back in seq order, they trade places.
    for (a, b) in [(59, 139), (100, 101), (10, 11)] {
        let mut entries = log.entries.clone();
        entries.swap(a, b);
        let (seq_a, seq_b) = (entries[a].seq, entries[b].seq);
        entries[a].seq = seq_b;
        entries[b].seq = seq_a;
        let t = log.tampering(&entries);
        assert_names(&t, TamperKind::Reordered, &entries[a]);
    }

    // Two entries of one scope exchange both numbers.
    let a = 40;
    let b = next_in_scope(&log.entries, a, &log.entries[a].scope.clone());
    let mut entries = log.entries.clone();
    entries.swap(a, b);
    let (seq_a, seq_b) = (entries[a].seq, entries[b].seq);
    let (scope_seq_a, scope_seq_b) = (entries[a].scope_seq, entries[b].scope_seq);
    entries[a].seq = seq_b;
    entries[b].seq = seq_a;
    entries[a].scope_seq = scope_seq_b;
    entries[b].scope_seq = scope_seq_a;
    let t = log.tampering(&entries);
    assert_names(&t, TamperKind::Reordered, &entries[a]);
}

#[test]
fn a_truncated_tail_is_named() {
    let log = Log::new();
    let entries = &log.entries[..205];
    let t = log.tampering(entries);
    assert_eq!(t.kind, TamperKind::Truncated, "{t}");
    assert_eq!(t.seq, Some(206));
    assert_eq!(t.checkpoint_size, Some(210));

    let entries = &log.entries[..120];
    let t = log.tampering(entries);
    assert_eq!(
        (t.kind, t.seq, t.checkpoint_size),
        (TamperKind::Truncated, Some(121), Some(150))
    );
}

fn forged_after(entries: &[EvidenceEntry], position: usize, scope: &str) -> EvidenceEntry {
    let previous = entries[..position]
        .iter()
        .rev()
        .find(|e| e.scope == scope)
        .expect("an earlier entry of the scope");
    let mut forged = EvidenceEntry {
        seq: position as u64 + 1,
        scope: scope.into(),
        scope_seq: previous.scope_seq + 1,
        step_id: Some("step-0".into()),
        kind: "secret.read".into(),
        time: previous.time.clone(),
        body: json!({"name": "forged"}),
        prev_hash: previous.hash.clone(),
        hash: String::new(),
    };
    rehash(&mut forged);
    forged
}

#[test]
fn an_inserted_entry_is_named_with_and_without_renumbering() {
    let log = Log::new();
    let scope = log.entries[100].scope.clone();

    // Renumbered after it, scope_seq included: a perfect forgery but for the shift.
    let mut entries = log.entries.clone();
    let forged = forged_after(&entries, 100, &scope);
    for entry in &mut entries[100..] {
        entry.seq += 1;
        if entry.scope == scope {
            entry.scope_seq += 1;
        }
    }
    entries.insert(100, forged.clone());
    let t = log.tampering(&entries);
    assert_names(&t, TamperKind::Inserted, &forged);

    // Renumbered, but the forged row does not even hash.
    let mut entries = log.entries.clone();
    let mut garbage = forged_after(&entries, 100, &scope);
    garbage.hash = "4".repeat(64);
    for entry in &mut entries[100..] {
        entry.seq += 1;
    }
    entries.insert(100, garbage.clone());
    let t = log.tampering(&entries);
    assert_names(&t, TamperKind::Inserted, &garbage);

    // Not renumbered: it shares seq 101 with the real entry, before or after it.
    for position in [100, 101] {
        let mut entries = log.entries.clone();
        let forged = forged_after(&entries, 100, &scope);
        entries.insert(position, forged.clone());
        let t = log.tampering(&entries);
        assert_names(&t, TamperKind::Inserted, &forged);
    }

    // Appended at the end with the next numbers but a link to nothing.
    let mut entries = log.entries.clone();
    let mut forged = forged_after(&entries, SIZE, &scope);
    forged.prev_hash = "5".repeat(64);
    rehash(&mut forged);
    entries.push(forged.clone());
    let t = log.tampering(&entries);
    assert_names(&t, TamperKind::Inserted, &forged);

    // Appended at the end into the middle of a scope's chain, with a seq of its own.
    let mut entries = log.entries.clone();
    let mut forged = forged_after(&entries, 100, &scope);
    forged.seq = SIZE as u64 + 1;
    rehash(&mut forged);
    entries.push(forged.clone());
    let t = log.tampering(&entries);
    assert_names(&t, TamperKind::Inserted, &forged);
}

#[test]
fn a_checkpoint_signed_by_another_key_is_named() {
    let log = Log::new();
    let other = PrivateKey::generate(KeyAlgorithm::Ed25519);
    let mut notes = log.notes.clone();
    let last = notes.len() - 1;
    notes[last] = sign(&log.entries, SIZE, &other);
    let t = log
        .verify(&log.entries, &notes, None)
        .expect_err("a foreign checkpoint");
    assert_eq!(t.kind, TamperKind::BadSignature, "{t}");
    assert_eq!(t.checkpoint_size, Some(SIZE as u64));
    assert!(
        t.message.contains("not signed by any known evidence key"),
        "{t}"
    );

    // A note that is not a note at all, and a note for another log.
    notes[last] = "not a note".into();
    let t = log.verify(&log.entries, &notes, None).expect_err("garbage");
    assert_eq!(t.kind, TamperKind::BadSignature, "{t}");
    let tree = LogTree::from_entry_hashes(&hashes(&log.entries));
    notes[last] = Checkpoint::new(evidence_origin("elsewhere"), SIZE as u64, tree.root())
        .expect("origin")
        .sign(&[(&origin(), &log.key)])
        .expect("signs");
    let t = log
        .verify(&log.entries, &notes, None)
        .expect_err("other log");
    assert_eq!(t.kind, TamperKind::BadSignature, "{t}");
    assert!(t.message.contains("elsewhere"), "{t}");
}

#[test]
fn a_rollback_after_a_trusted_checkpoint_is_named() {
    let log = Log::new();
    let trusted = log.trusted(log.notes.last().expect("a checkpoint"));

    // An older copy of the database: 150 entries and the checkpoints of that time.
    let t = log
        .verify(&log.entries[..150], &log.notes[..3], Some(&trusted))
        .expect_err("rolled back");
    assert_eq!(t.kind, TamperKind::RolledBack, "{t}");
    assert_eq!(t.seq, Some(151));
    assert_eq!(t.code(), "rolled-back");

    // Only the checkpoints rolled back.
    let t = log
        .verify(&log.entries, &log.notes[..3], Some(&trusted))
        .expect_err("checkpoints rolled back");
    assert_eq!(t.kind, TamperKind::RolledBack, "{t}");

    // The older copy then grew again past the trusted size: a fork.
    let mut grown = log.entries[..150].to_vec();
    let mut chain = EntryChain::resume(
        150,
        heads(&grown)
            .iter()
            .map(|(s, n, h)| (s.as_str(), *n, h.as_str())),
    );
    for i in 0..70 {
        let mut r = record(i + 1000);
        r.step_id = Some("regrown".into());
        grown.push(
            chain
                .append(EntryContent::from_record(&r))
                .expect("hashable"),
        );
    }
    let notes = checkpoints(&grown, &log.key);
    let t = log
        .verify(&grown, &notes, Some(&trusted))
        .expect_err("forked");
    assert_eq!(t.kind, TamperKind::Forked, "{t}");
    assert_eq!(t.checkpoint_size, Some(SIZE as u64));
}

fn heads(entries: &[EvidenceEntry]) -> Vec<(String, u64, String)> {
    let mut heads: Vec<(String, u64, String)> = Vec::new();
    for entry in entries {
        match heads.iter_mut().find(|(s, _, _)| *s == entry.scope) {
            Some(head) => *head = (entry.scope.clone(), entry.scope_seq, entry.hash.clone()),
            None => heads.push((entry.scope.clone(), entry.scope_seq, entry.hash.clone())),
        }
    }
    heads
}

#[test]
fn a_fork_of_the_same_size_is_named() {
    let log = Log::new();
    let trusted = log.trusted(&log.notes[3]);
    // Same size, same key, different history from entry 121 on.
    let forked = build((0..SIZE).map(|i| {
        let mut r = record(i);
        if i >= 120 {
            r.time += Duration::from_secs(1);
        }
        r
    }));
    let notes = checkpoints(&forked, &log.key);
    log.verify(&forked, &notes, None)
        .expect("consistent in itself");
    let t = log
        .verify(&forked, &notes, Some(&trusted))
        .expect_err("forked");
    assert_eq!(t.kind, TamperKind::Forked, "{t}");
    assert_eq!(t.checkpoint_size, Some(200));
    assert_eq!(t.code(), "forked");
}

#[test]
fn rotated_keys_keep_old_checkpoints_verifying() {
    let old = PrivateKey::generate(KeyAlgorithm::Ed25519);
    let new = PrivateKey::generate(KeyAlgorithm::Ed25519);
    let entries = build((0..SIZE).map(record));
    // Rotation after entry 100: the old key signed 50 and 100, the new one the rest.
    let notes: Vec<String> = [50, 100, 150, 200, 210]
        .into_iter()
        .map(|s| sign(&entries, s, if s <= 100 { &old } else { &new }))
        .collect();
    let origin = origin();
    let verify = |ring: &KeyRing| {
        verify_log(
            &entries,
            &notes,
            &VerifyOptions {
                origin: &origin,
                keys: ring,
                trusted: None,
            },
        )
    };

    let mut ring = KeyRing::new();
    ring.add(
        &origin,
        old.public_key().clone(),
        KeyStatus::Retired {
            last_size: Some(100),
        },
    )
    .expect("adds");
    ring.add(&origin, new.public_key().clone(), KeyStatus::Active)
        .expect("adds");
    assert_eq!(verify(&ring).expect("verifies").checkpoints_verified, 5);

    // The old key removed instead of retired: its checkpoints fail.
    let mut removed = KeyRing::new();
    removed
        .add(&origin, new.public_key().clone(), KeyStatus::Active)
        .expect("adds");
    let t = verify(&removed).expect_err("unknown key");
    assert_eq!(
        (t.kind, t.checkpoint_size),
        (TamperKind::BadSignature, Some(50))
    );

    // A retired key may not vouch for more than it signed before retirement.
    let mut early = KeyRing::new();
    early
        .add(
            &origin,
            old.public_key().clone(),
            KeyStatus::Retired {
                last_size: Some(50),
            },
        )
        .expect("adds");
    early
        .add(&origin, new.public_key().clone(), KeyStatus::Active)
        .expect("adds");
    let t = verify(&early).expect_err("retired");
    assert_eq!(
        (t.kind, t.checkpoint_size),
        (TamperKind::BadSignature, Some(100))
    );
    assert!(t.message.contains("retired"), "{t}");
}

#[test]
fn one_run_verifies_with_inclusion_proofs() {
    let log = Log::new();
    let latest = log.trusted(&log.notes[3]); // size 200
    let tree = LogTree::from_entry_hashes(&hashes(&log.entries));
    let run: Vec<EvidenceEntry> = log
        .entries
        .iter()
        .filter(|e| e.scope == "run-b")
        .cloned()
        .collect();
    let proofs: Vec<InclusionProof> = run
        .iter()
        .filter(|e| e.seq <= 200)
        .map(|e| tree.inclusion_proof_for(e.seq, 200).expect("in range"))
        .collect();
    let report = verify_scope(&run, Some((&latest, &proofs))).expect("intact");
    assert_eq!(report.scope, "run-b");
    assert_eq!(report.entries, run.len() as u64);
    assert_eq!(report.covered, proofs.len() as u64);
    assert_eq!(report.uncovered, (run.len() - proofs.len()) as u64);
    verify_scope(&run, None).expect("chain only");

    let mut changed = run.clone();
    changed[5].body["x"] = json!(1);
    let t = verify_scope(&changed, Some((&latest, &proofs))).expect_err("changed");
    assert_names(&t, TamperKind::Changed, &changed[5]);

    let mut deleted = run.clone();
    let gone = deleted.remove(5);
    let t = verify_scope(&deleted, Some((&latest, &proofs))).expect_err("deleted");
    assert_eq!(
        (t.kind, t.scope_seq),
        (TamperKind::Deleted, Some(gone.scope_seq))
    );

    let mut swapped = run.clone();
    swapped.swap(3, 4);
    let t = verify_scope(&swapped, None).expect_err("reordered");
    assert_eq!(t.kind, TamperKind::Reordered, "{t}");

    // A rehashed change is caught by its inclusion proof.
    let mut rehashed = run.clone();
    rehashed[2].body["x"] = json!(1);
    let mut previous = None;
    for entry in rehashed.iter_mut().skip(2) {
        if let Some(prev) = previous.take() {
            entry.prev_hash = prev;
        }
        rehash(entry);
        previous = Some(entry.hash.clone());
    }
    let t = verify_scope(&rehashed, Some((&latest, &proofs))).expect_err("not included");
    assert_names(&t, TamperKind::CheckpointMismatch, &rehashed[2]);

    let t = verify_scope(&run, Some((&latest, &proofs[1..]))).expect_err("no proof");
    assert_names(&t, TamperKind::CheckpointMismatch, &run[0]);

    let mut mixed = run.clone();
    mixed.push(log.entries[0].clone());
    assert_eq!(
        verify_scope(&mixed, None).expect_err("other scope").kind,
        TamperKind::Inserted
    );
}

#[test]
fn consistency_proofs_link_checkpoints() {
    let log = Log::new();
    let tree = LogTree::from_entry_hashes(&hashes(&log.entries));
    let old = log.trusted(&log.notes[1]).checkpoint;
    let new = log.trusted(&log.notes[4]).checkpoint;
    let proof = tree.consistency_proof(old.size, new.size).expect("sizes");
    assert!(proof.verify_between(&old, &new));
    let other = build((0..SIZE).map(|i| record(i + 1)));
    let forked = LogTree::from_entry_hashes(&hashes(&other));
    let forked_old =
        Checkpoint::new(origin(), 100, forked.root_at(100).expect("size")).expect("origin");
    assert!(!proof.verify_between(&forked_old, &new));
}

/// A small log with a checkpoint over all of it, for the properties below.
fn small_log() -> &'static (Log, Vec<EvidenceEntry>, Vec<String>) {
    static LOG: std::sync::OnceLock<(Log, Vec<EvidenceEntry>, Vec<String>)> =
        std::sync::OnceLock::new();
    LOG.get_or_init(|| {
        let log = Log::new();
        let entries = build((0..24).map(record));
        let notes = vec![sign(&entries, 12, &log.key), sign(&entries, 24, &log.key)];
        (log, entries, notes)
    })
}

#[derive(Debug, Clone)]
enum Mutation {
    Body(usize, String),
    Seq(usize, u64),
    ScopeSeq(usize, u64),
    Scope(usize, String),
    Time(usize, String),
    PrevHash(usize, String),
    Hash(usize, String),
    Delete(usize),
    Duplicate(usize, usize),
    Swap(usize, usize),
    Move(usize, usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let at = 0usize..24;
    prop_oneof![
        (at.clone(), "\\PC{0,8}").prop_map(|(i, s)| Mutation::Body(i, s)),
        (at.clone(), any::<u64>()).prop_map(|(i, n)| Mutation::Seq(i, n)),
        (at.clone(), 0u64..40).prop_map(|(i, n)| Mutation::ScopeSeq(i, n)),
        (at.clone(), "run-a|run-b|control|x").prop_map(|(i, s)| Mutation::Scope(i, s)),
        (at.clone(), "\\PC{0,30}").prop_map(|(i, s)| Mutation::Time(i, s)),
        (at.clone(), "[0-9a-f]{64}|[0-9A-F]{0,64}").prop_map(|(i, s)| Mutation::PrevHash(i, s)),
        (at.clone(), "[0-9a-f]{64}|\\PC{0,10}").prop_map(|(i, s)| Mutation::Hash(i, s)),
        at.clone().prop_map(Mutation::Delete),
        (at.clone(), 0usize..25).prop_map(|(i, j)| Mutation::Duplicate(i, j)),
        (at.clone(), at.clone()).prop_map(|(i, j)| Mutation::Swap(i, j)),
        (at.clone(), at).prop_map(|(i, j)| Mutation::Move(i, j)),
    ]
}

fn apply(entries: &mut Vec<EvidenceEntry>, mutation: &Mutation, renumber: bool) {
    let (Mutation::Body(i, _)
    | Mutation::Seq(i, _)
    | Mutation::ScopeSeq(i, _)
    | Mutation::Scope(i, _)
    | Mutation::Time(i, _)
    | Mutation::PrevHash(i, _)
    | Mutation::Hash(i, _)
    | Mutation::Delete(i)
    | Mutation::Duplicate(i, _)
    | Mutation::Swap(i, _)
    | Mutation::Move(i, _)) = *mutation;
    let j = match *mutation {
        Mutation::Swap(_, j) | Mutation::Move(_, j) => j,
        _ => 0,
    };
    if i >= entries.len() || j >= entries.len() {
        return;
    }
    match mutation.clone() {
        Mutation::Body(i, s) => entries[i].body["mutated"] = json!(s),
        Mutation::Seq(i, n) => entries[i].seq = n,
        Mutation::ScopeSeq(i, n) => entries[i].scope_seq = n,
        Mutation::Scope(i, s) => entries[i].scope = s,
        Mutation::Time(i, s) => entries[i].time = s,
        Mutation::PrevHash(i, s) => entries[i].prev_hash = s,
        Mutation::Hash(i, s) => entries[i].hash = s,
        Mutation::Delete(i) => {
            entries.remove(i);
        }
        Mutation::Duplicate(i, j) => {
            let copy = entries[i].clone();
            entries.insert(j.min(entries.len()), copy);
        }
        Mutation::Swap(i, j) => entries.swap(i, j),
        Mutation::Move(i, j) => {
            let entry = entries.remove(i);
            entries.insert(j.min(entries.len()), entry);
        }
    }
    if renumber {
        for (k, entry) in entries.iter_mut().enumerate() {
            entry.seq = k as u64 + 1;
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    /// Any change to a log covered by a checkpoint is detected, whatever it is, and
    /// verification never panics.
    #[test]
    fn every_change_is_detected(first in mutation(), second in proptest::option::of(mutation()), renumber: bool) {
        let (log, entries, notes) = small_log();
        let mut mutated = entries.clone();
        apply(&mut mutated, &first, renumber);
        if let Some(second) = &second {
            apply(&mut mutated, second, renumber);
        }
        let result = log.verify(&mutated, notes, None);
        if mutated == *entries {
            prop_assert!(result.is_ok());
        } else {
            prop_assert!(result.is_err(), "undetected: {first:?} {second:?}");
        }
    }

    /// Arbitrary entries and notes never make the verifiers panic.
    #[test]
    fn arbitrary_input_never_panics(
        rows in proptest::collection::vec(
            (any::<u64>(), "[ab]", 0u64..5, "[0-9a-f]{64}|[0-9]{1,3}", "[0-9a-f]{64}|x"),
            0..12,
        ),
        notes in proptest::collection::vec("\\PC{0,80}|[a-z./]{1,20}\n[0-9]{1,3}\n[A-Za-z0-9+/=]{44}\n\n\u{2014} [a-z]{1,5} [A-Za-z0-9+/=]{4,100}\n", 0..3),
    ) {
        let (log, _, _) = small_log();
        let entries: Vec<EvidenceEntry> = rows
            .into_iter()
            .map(|(seq, scope, scope_seq, prev_hash, hash)| EvidenceEntry {
                seq: seq % 16,
                scope,
                scope_seq,
                step_id: None,
                kind: "k".into(),
                time: "t".into(),
                body: json!({}),
                prev_hash,
                hash,
            })
            .collect();
        let _ = log.verify(&entries, &notes, None);
        let _ = verify_scope(&entries, None);
    }
}

fn full_log() -> &'static Log {
    static LOG: std::sync::OnceLock<Log> = std::sync::OnceLock::new();
    LOG.get_or_init(Log::new)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// A single change, deletion or swap anywhere is named with its kind and entry.
    #[test]
    fn single_tamperings_are_named_wherever_they_are(what in 0u8..4, i in 0usize..SIZE - 1, j in 0usize..SIZE - 1) {
        let log = full_log();
        let mut entries = log.entries.clone();
        let (kind, seq) = match what {
            0 => {
                entries[i].body["x"] = json!(1);
                (TamperKind::Changed, i + 1)
            }
            1 => {
                entries.remove(i);
                (TamperKind::Deleted, i + 1)
            }
            2 => {
                let (a, b) = (i.min(j), i.max(j));
                prop_assume!(a != b);
                entries.swap(a, b);
                entries[a].seq = a as u64 + 1;
                entries[b].seq = b as u64 + 1;
                (TamperKind::Reordered, a + 1)
            }
            _ => {
                let scope = entries[i].scope.clone();
                prop_assume!(entries[..i].iter().any(|e| e.scope == scope));
                let forged = forged_after(&entries, i, &scope);
                entries.insert(i, forged);
                (TamperKind::Inserted, i + 1)
            }
        };
        let t = log.tampering(&entries);
        prop_assert_eq!(t.kind, kind, "{}", t);
        prop_assert_eq!(t.seq, Some(seq as u64), "{}", t);
    }
}
