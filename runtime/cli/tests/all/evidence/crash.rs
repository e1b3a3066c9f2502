//! A process writing evidence is killed with SIGKILL in the middle of its batches; after
//! a restart the log verifies and every entry whose durability was acknowledged is there.
//!
//! The parent re-runs this test binary with `--exact evidence::crash::child_writer` and
//! `RELO_CLI_TEST_CRASH_HOME` set; in that mode `child_writer` enqueues numbered records
//! through relo-store's writer without pause and prints `durable N` each time the writer
//! confirms that records 1..=N are durable. Run normally, `child_writer` does nothing.

use std::io::{BufRead as _, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use relo_evidence::{EvidenceEvent, EvidenceRecord, EvidenceSink, Scope};
use relo_store::{EvidenceWriter, Store, WriterOptions};

use super::support::{TestHome, describe, stdout};

const CHILD_HOME: &str = "RELO_CLI_TEST_CRASH_HOME";
const BATCH: usize = 37;

fn record(i: u64) -> EvidenceRecord {
    let scope = if i.is_multiple_of(5) {
        Scope::Control
    } else {
        Scope::Run(format!("run-{}", i % 3))
    };
    EvidenceRecord::new(
        scope,
        Some("step".into()),
        EvidenceEvent::SecretRead {
            name: format!("n-{i}"),
            reference: "kv/data/app#token".into(),
            version: Some(1),
        },
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn child_writer() {
    let Ok(home) = std::env::var(CHILD_HOME) else {
        return; // not started as a child: nothing to do
    };
    let store = Store::connect(Path::new(&home), "sqlite://relo.db")
        .await
        .expect("child opens the store");
    let store = super::support::sealed_with_home_key(store, Path::new(&home)).await;
    let writer = Arc::new(EvidenceWriter::spawn(store, WriterOptions::default()));
    let mut next: u64 = 1;
    loop {
        let mut last = None;
        for _ in 0..BATCH {
            last = Some(writer.enqueue(record(next)));
            next += 1;
        }
        let Some(ticket) = last else { continue };
        let writer = Arc::clone(&writer);
        // Durability is awaited off the enqueueing path, so batches are always in flight.
        tokio::spawn(async move {
            writer.durable(ticket).await.expect("durable");
            println!("durable {}", ticket.0);
        });
        tokio::time::sleep(Duration::from_micros(300)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_writer_loses_no_acknowledged_entry() {
    let home = TestHome::sqlite();
    // The store exists (and is migrated) before the child starts.
    home.store().await.close().await;

    let mut child = Command::new(std::env::current_exe().expect("test binary"))
        .args([
            "evidence::crash::child_writer",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_HOME, home.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn the child");
    let pipe = child.stdout.take().expect("child stdout");
    let (lines, received) = mpsc::channel::<u64>();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(pipe).lines() {
            let Ok(line) = line else { break };
            if let Some(n) = line.strip_prefix("durable ").and_then(|n| n.parse().ok()) {
                let _ = lines.send(n);
            }
        }
    });

    // Let it get well into its batches, then kill it (SIGKILL on unix).
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut acknowledged = 0;
    while acknowledged < 2000 {
        assert!(
            Instant::now() < deadline,
            "the child acknowledged only {acknowledged}"
        );
        if let Ok(n) = received.recv_timeout(Duration::from_millis(100)) {
            acknowledged = acknowledged.max(n);
        }
    }
    child.kill().expect("SIGKILL the child");
    let status = child.wait().expect("reap the child");
    assert!(!status.success(), "the child was killed: {status:?}");
    reader.join().expect("reader");
    // Acknowledgements printed before the kill are still in the pipe.
    for n in received.try_iter() {
        acknowledged = acknowledged.max(n);
    }

    // Restart: the log opens, verifies, and holds every acknowledged entry, in order.
    let store = home.store().await;
    let entries = store.all_entries().await.expect("entries");
    assert!(
        entries.len() as u64 >= acknowledged,
        "{} entries stored, {acknowledged} acknowledged",
        entries.len()
    );
    eprintln!(
        "killed after {acknowledged} acknowledged; {} stored",
        entries.len()
    );
    for (index, entry) in entries.iter().enumerate() {
        let body: serde_json::Value = serde_json::from_str(&entry.body).expect("body");
        assert_eq!(
            body["name"],
            format!("n-{}", index + 1),
            "entry {}",
            entry.seq
        );
    }
    store.close().await;
    let out = home.verify(&[]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));

    // Writing goes on after the restart, and a checkpoint covers it all.
    home.write(vec![record(1_000_000)]).await;
    home.relo_ok(&["evidence", "checkpoint"]);
    let out = home.verify(&[]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    // Only the checkpoint's own `checkpoint.cut` entry comes after it.
    assert!(
        stdout(&out).contains("uncovered tail: 1"),
        "{}",
        describe(&out)
    );
}
