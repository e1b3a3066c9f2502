//! The batching writer behind relo-evidence's `EvidenceSink`.

use std::collections::HashMap;
use std::sync::Arc;

use relo_evidence::{EvidenceError, EvidenceEvent, EvidenceRecord, EvidenceSink, Scope, Ticket};
use relo_store::{CheckpointPolicy, EntryHasher, EvidenceWriter, WriterOptions};

use crate::support::{TestDb, all_entries, assert_log_is_valid, backend_tests, hash};

fn writer(store: &relo_store::Store) -> EvidenceWriter {
    let hasher: Arc<EntryHasher> = Arc::new(hash);
    EvidenceWriter::spawn(
        store.clone(),
        WriterOptions {
            hasher,
            ..WriterOptions::default()
        },
    )
}

fn record(scope: &str, name: &str) -> EvidenceRecord {
    EvidenceRecord::new(
        Scope::Run(scope.to_owned()),
        Some("step".to_owned()),
        EvidenceEvent::SecretRead {
            name: name.to_owned(),
            reference: "kv/data/app#token".into(),
            version: Some(1),
        },
    )
}

async fn concurrent_enqueues_become_durable_in_ticket_order(db: TestDb) {
    let store = db.store().await;
    let writer = Arc::new(writer(&store));
    let mut tasks = Vec::new();
    for task in 0..8 {
        let writer = Arc::clone(&writer);
        tasks.push(tokio::spawn(async move {
            let mut issued = Vec::new();
            for i in 0..150 {
                let scope = if i % 3 == 0 {
                    format!("own-{task}")
                } else {
                    "shared".to_owned()
                };
                let name = format!("{task}-{i}");
                let ticket = writer.enqueue(record(&scope, &name));
                issued.push((name, ticket));
                if i % 10 == 9 {
                    writer.durable(ticket).await.expect("durable");
                }
                if i % 7 == 0 {
                    tokio::task::yield_now().await;
                }
            }
            issued
        }));
    }
    let mut tickets = HashMap::new();
    for task in tasks {
        tickets.extend(task.await.expect("task"));
    }
    let last = tickets.values().max().copied().expect("tickets");
    assert_eq!(
        last,
        Ticket(1200),
        "tickets are numbered from 1 without gaps"
    );
    writer.durable(last).await.expect("everything durable");
    assert_eq!(writer.durable_ticket(), last);

    let entries = all_entries(&store).await;
    assert_eq!(entries.len(), 1200);
    assert_log_is_valid(&entries);
    let mut previous = Ticket(0);
    for entry in &entries {
        let body: serde_json::Value = serde_json::from_str(&entry.body).expect("body");
        assert_eq!(
            body.get("kind"),
            None,
            "the kind is a column, not in the body"
        );
        assert_eq!(entry.kind, "secret.read");
        assert_eq!(entry.step_id.as_deref(), Some("step"));
        let name = body["name"].as_str().expect("name");
        let ticket = tickets[name];
        assert!(
            ticket > previous,
            "stored in ticket order: {ticket:?} after {previous:?}"
        );
        previous = ticket;
    }
    writer.close().await.expect("close");
}

async fn checkpoints_are_cut_every_n_entries_and_on_demand(db: TestDb) {
    let store = db.store().await;
    let origin = store.evidence_origin().await.expect("origin");
    assert_eq!(store.evidence_origin().await.expect("same origin"), origin);
    let key = relo_trust::PrivateKey::generate(relo_trust::KeyAlgorithm::Ed25519);
    let mut ring = relo_evidence::KeyRing::new();
    ring.add(
        &origin,
        key.public_key().clone(),
        relo_evidence::KeyStatus::Active,
    )
    .expect("ring");
    let options = WriterOptions {
        max_batch: 10,
        checkpoints: Some(CheckpointPolicy {
            every: 25,
            signer: Arc::new(key),
            key_name: origin.clone(),
            origin: origin.clone(),
        }),
        ..WriterOptions::default()
    };
    let writer = EvidenceWriter::spawn(store.clone(), options.clone());
    let mut last = Ticket(0);
    for i in 0..60 {
        last = writer.enqueue(record(&format!("run-{}", i % 3), &i.to_string()));
        if i % 10 == 9 {
            writer.durable(last).await.expect("durable");
        }
    }
    writer.durable(last).await.expect("durable");
    // A periodic checkpoint is cut after its batch is announced durable; closing waits.
    writer.close().await.expect("close");
    let periodic = store.checkpoints().await.expect("checkpoints");
    let sizes: Vec<u64> = periodic.iter().map(|c| c.size).collect();
    // Cut after the batch that reaches 25 entries since the last one: that batch holds
    // at most `max_batch` (10) records, so a checkpoint covers 25 to 34 new entries,
    // however the writer happened to split the records into batches.
    assert_eq!(sizes.len(), 2, "{sizes:?}");
    let covers = 25..=34;
    assert!(covers.contains(&sizes[0]), "{sizes:?}");
    assert!(covers.contains(&(sizes[1] - sizes[0])), "{sizes:?}");
    let writer = EvidenceWriter::spawn(store.clone(), options);
    writer.enqueue(record("run-0", "end"));
    let end = writer.checkpoint().await.expect("run-end checkpoint");
    assert_eq!(end.size, 61);

    // What the writer stored verifies with relo-evidence: the real hash and real notes.
    let entries: Vec<_> = all_entries(&store)
        .await
        .iter()
        .map(|e| e.to_evidence_entry())
        .collect();
    let notes: Vec<String> = store
        .checkpoints()
        .await
        .expect("checkpoints")
        .into_iter()
        .map(|c| c.note)
        .collect();
    let options = relo_evidence::VerifyOptions {
        origin: &origin,
        keys: &ring,
        trusted: None,
    };
    let report = relo_evidence::verify_log(&entries, &notes, &options).expect("verifies");
    assert_eq!(report.entries, 61);
    assert_eq!(report.checkpoints_verified, 3);
    assert_eq!(report.uncovered_tail, 0);

    let plain = EvidenceWriter::spawn(store.clone(), WriterOptions::default());
    let err = plain.checkpoint().await.expect_err("no key");
    assert!(err.to_string().contains("no checkpoint key"), "{err}");
}

async fn close_stores_everything_queued(db: TestDb) {
    let store = db.store().await;
    let writer = writer(&store);
    for i in 0..500 {
        writer.enqueue(record("run", &i.to_string()));
    }
    writer.close().await.expect("close");
    assert_eq!(store.evidence_size().await.expect("size"), 500);
    let late = writer.enqueue(record("run", "late"));
    assert!(matches!(
        writer.durable(late).await,
        Err(EvidenceError::Closed)
    ));
    writer
        .durable(Ticket(500))
        .await
        .expect("earlier tickets stay durable");
}

async fn a_failed_append_fails_every_ticket_not_yet_durable(db: TestDb) {
    let store = db.store().await;
    let writer = writer(&store);
    let first = writer.enqueue(record("run", "first"));
    writer.durable(first).await.expect("durable");

    store.close().await;
    let second = writer.enqueue(record("run", "second"));
    let err = writer
        .durable(second)
        .await
        .expect_err("the store is closed");
    let EvidenceError::Store(message) = &err else {
        panic!("expected a store failure, got {err:?}");
    };
    assert!(message.contains("appending evidence to"), "{message}");
    let third = writer.enqueue(record("run", "third"));
    assert!(matches!(
        writer.durable(third).await,
        Err(EvidenceError::Store(_))
    ));
    writer
        .durable(first)
        .await
        .expect("what was durable stays durable");
    assert!(writer.close().await.is_err(), "close reports the failure");
}

async fn an_unissued_ticket_is_an_error(db: TestDb) {
    let store = db.store().await;
    let writer = writer(&store);
    writer
        .durable(Ticket(0))
        .await
        .expect("nothing to wait for");
    let err = writer.durable(Ticket(3)).await.expect_err("never issued");
    assert!(err.to_string().contains("never issued"), "{err}");
}

backend_tests!(
    concurrent_enqueues_become_durable_in_ticket_order,
    checkpoints_are_cut_every_n_entries_and_on_demand,
    close_stores_everything_queued,
    a_failed_append_fails_every_ticket_not_yet_durable,
    an_unissued_ticket_is_an_error,
);
