//! Verification speed in entries per second.
//!
//! `cargo bench -p relo-evidence --bench verify` builds a log of 100,000 entries over 101
//! scopes (100 runs and `control`) with a checkpoint every 1,000 entries, then times
//! `verify_log` over it (median of 7 runs) next to its parts: recomputing every entry
//! hash on one thread, and building the Merkle tree.

use std::time::{Duration, Instant, UNIX_EPOCH};

use relo_evidence::{
    Checkpoint, EntryChain, EntryContent, EvidenceEvent, EvidenceRecord, KeyRing, KeyStatus,
    LogTree, Scope, StepUsage, VerifyOptions, entry_hash, evidence_origin, parse_hash_hex,
    verify_log,
};
use relo_trust::{KeyAlgorithm, PrivateKey};

const ENTRIES: usize = 100_000;
const CHECKPOINT_EVERY: usize = 1_000;
const RUNS: usize = 7;

fn record(i: usize) -> EvidenceRecord {
    let scope = match i % 11 {
        0 => Scope::Control,
        _ => Scope::Run(format!("run-{}", i % 100)),
    };
    let event = match i % 3 {
        0 => EvidenceEvent::EgressDenied {
            method: "POST".into(),
            scheme: "https".into(),
            host: "api.example.com".into(),
            port: 443,
            path: "/v1/releases".into(),
            code: "egress-not-granted".into(),
            reason: "no rule allows POST to api.example.com".into(),
        },
        1 => EvidenceEvent::StepFinished {
            outcome: "succeeded".into(),
            usage: StepUsage {
                fuel: 1_234_567,
                memory_peak_bytes: 1 << 20,
                wall_ms: 12,
                ..StepUsage::default()
            },
            output_sha256: Some("ab".repeat(32)),
        },
        _ => EvidenceEvent::SecretRead {
            name: "registry-token".into(),
            reference: "kv/data/app#token".into(),
            version: Some(1),
        },
    };
    EvidenceRecord {
        scope,
        step_id: Some(format!("step-{}", i % 7)),
        time: UNIX_EPOCH + Duration::new(1_780_000_000 + i as u64, 0),
        event,
    }
}

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

fn per_second(count: usize, time: Duration) -> f64 {
    count as f64 / time.as_secs_f64()
}

fn main() {
    let origin = evidence_origin("bench");
    let key = PrivateKey::generate(KeyAlgorithm::Ed25519);
    let mut ring = KeyRing::new();
    ring.add(&origin, key.public_key().clone(), KeyStatus::Active)
        .expect("an Ed25519 key");

    let mut chain = EntryChain::new();
    let entries: Vec<_> = (0..ENTRIES)
        .map(|i| {
            chain
                .append(EntryContent::from_record(&record(i)))
                .expect("hashable")
        })
        .collect();
    let hashes: Vec<_> = entries
        .iter()
        .map(|e| parse_hash_hex(&e.hash).expect("hex"))
        .collect();
    let tree = LogTree::from_entry_hashes(&hashes);
    let notes: Vec<String> = (CHECKPOINT_EVERY..=ENTRIES)
        .step_by(CHECKPOINT_EVERY)
        .map(|size| {
            let root = tree.root_at(size as u64).expect("size");
            Checkpoint::new(origin.as_str(), size as u64, root)
                .expect("origin")
                .sign(&[(&origin, &key)])
                .expect("signs")
        })
        .collect();
    let options = VerifyOptions {
        origin: &origin,
        keys: &ring,
        trusted: None,
    };

    let verify = median(
        (0..RUNS)
            .map(|_| {
                let start = Instant::now();
                let report = verify_log(&entries, &notes, &options).expect("intact");
                assert_eq!(report.entries, ENTRIES as u64);
                start.elapsed()
            })
            .collect(),
    );
    let hashing = median(
        (0..RUNS)
            .map(|_| {
                let start = Instant::now();
                let ok = entries
                    .iter()
                    .filter(|e| entry_hash(&e.fields()).is_ok())
                    .count();
                assert_eq!(ok, ENTRIES);
                start.elapsed()
            })
            .collect(),
    );
    let tree_time = median(
        (0..RUNS)
            .map(|_| {
                let start = Instant::now();
                let tree = LogTree::from_entry_hashes(&hashes);
                assert_eq!(tree.size(), ENTRIES as u64);
                start.elapsed()
            })
            .collect(),
    );
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());

    println!(
        "{ENTRIES} entries, {} scopes, {} checkpoints, {threads} threads available",
        101,
        notes.len()
    );
    println!("| figure | time | entries/s |");
    println!("|---|---|---|");
    println!(
        "| verify_log (chains, tree, {} signatures) | {:.1} ms | {:.0} |",
        notes.len(),
        verify.as_secs_f64() * 1e3,
        per_second(ENTRIES, verify)
    );
    println!(
        "| entry_hash of every entry, one thread | {:.1} ms | {:.0} |",
        hashing.as_secs_f64() * 1e3,
        per_second(ENTRIES, hashing)
    );
    println!(
        "| LogTree over every entry hash | {:.1} ms | {:.0} |",
        tree_time.as_secs_f64() * 1e3,
        per_second(ENTRIES, tree_time)
    );
}
