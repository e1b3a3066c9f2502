//! The batching writer behind relo-evidence's `EvidenceSink`.

use std::collections::HashMap;
use std::sync::Arc;

use relo_evidence::{EvidenceError, EvidenceEvent, EvidenceRecord, EvidenceSink, Scope, Ticket};
use relo_store::{EntryHasher, EvidenceWriter, WriterOptions};

use crate::support::{TestDb, all_entries, assert_log_is_valid, backend_tests, hash};

fn writer(store: &relo_store::Store) -> EvidenceWriter {
    let hasher: Arc<EntryHasher> = Arc::new(hash);
    EvidenceWriter::spawn(store.clone(), hasher, WriterOptions::default())
}

fn record(scope: &str, name: &str) -> EvidenceRecord {
    EvidenceRecord::new(
        Scope::Run(scope.to_owned()),
        Some("step".to_owned()),
        EvidenceEvent::SecretRead {
            name: name.to_owned(),
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
        assert_eq!(body["kind"], "secret.read");
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
    close_stores_everything_queued,
    a_failed_append_fails_every_ticket_not_yet_durable,
    an_unissued_ticket_is_an_error,
);
