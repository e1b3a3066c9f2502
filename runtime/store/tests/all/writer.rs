//! The batching writer behind relo-evidence's `EvidenceSink`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use relo_evidence::{EvidenceError, EvidenceEvent, EvidenceRecord, EvidenceSink, Scope, Ticket};
use relo_store::{CheckpointPolicy, EntryHasher, EntryToHash, EvidenceWriter, WriterOptions};
use tokio::sync::oneshot;

use crate::support::{Backend, TestDb, all_entries, assert_log_is_valid, backend_tests, hash};

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
    // Each checkpoint is recorded by a `checkpoint.cut` entry the next one also covers.
    assert_eq!(sizes.len(), 2, "{sizes:?}");
    let covers = 25..=34;
    assert!(covers.contains(&sizes[0]), "{sizes:?}");
    assert!(covers.contains(&(sizes[1] - sizes[0] - 1)), "{sizes:?}");
    let writer = EvidenceWriter::spawn(store.clone(), options);
    writer.enqueue(record("run-0", "end"));
    let end = writer.checkpoint().await.expect("run-end checkpoint");
    // 61 records and the two periodic checkpoints' `checkpoint.cut` entries.
    assert_eq!(end.size, 63);

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
    assert_eq!(report.entries, 64);
    assert_eq!(report.checkpoints_verified, 3);
    assert_eq!(
        report.uncovered_tail, 1,
        "the last checkpoint's `checkpoint.cut`"
    );

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

async fn a_closed_store_fails_every_later_batch(db: TestDb) {
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
    let EvidenceError::Unavailable(message) = &err else {
        panic!("expected unavailable evidence, got {err:?}");
    };
    assert!(message.contains("appending evidence to"), "{message}");
    assert_eq!(err.code(), "evidence-unavailable");
    let third = writer.enqueue(record("run", "third"));
    assert!(matches!(
        writer.durable(third).await,
        Err(EvidenceError::Unavailable(_))
    ));
    writer
        .durable(first)
        .await
        .expect("what was durable stays durable");
    assert_eq!(writer.durable_ticket(), first);
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

/// Holds the writer once, inside the transaction of the batch that holds the record
/// named `gate`, until the test lets it go, so the records enqueued meanwhile are
/// known to form the next batch.
struct Gate {
    entered: Mutex<Option<oneshot::Sender<()>>>,
    release: Mutex<Option<std::sync::mpsc::Receiver<()>>>,
}

impl Gate {
    /// The gate, the signal that the writer has reached it, and the handle that opens it.
    fn new() -> (
        Arc<Gate>,
        oneshot::Receiver<()>,
        std::sync::mpsc::Sender<()>,
    ) {
        let (entered_tx, entered) = oneshot::channel();
        let (release, release_rx) = std::sync::mpsc::channel();
        let gate = Gate {
            entered: Mutex::new(Some(entered_tx)),
            release: Mutex::new(Some(release_rx)),
        };
        (Arc::new(gate), entered, release)
    }

    /// relo's entry hash, stopping at the first `gate` entry until released. It blocks
    /// one worker thread of the test's runtime, which has two.
    fn hasher(self: Arc<Gate>) -> Arc<EntryHasher> {
        Arc::new(move |entry: &EntryToHash<'_>| {
            if entry.body.contains(r#""gate""#) {
                let entered = self.entered.lock().expect("gate").take();
                if let Some(entered) = entered {
                    let _ = entered.send(());
                }
                let release = self.release.lock().expect("gate").take();
                if let Some(release) = release {
                    // An error means the test ended first; go on either way.
                    let _ = release.recv();
                }
            }
            relo_store::entry_hash(entry)
        })
    }
}

/// An evidence key, its key ring, and a checkpoint policy that only cuts on demand.
async fn evidence_key(store: &relo_store::Store) -> (CheckpointPolicy, relo_evidence::KeyRing) {
    let origin = store.evidence_origin().await.expect("origin");
    let key = relo_trust::PrivateKey::generate(relo_trust::KeyAlgorithm::Ed25519);
    let mut ring = relo_evidence::KeyRing::new();
    ring.add(
        &origin,
        key.public_key().clone(),
        relo_evidence::KeyStatus::Active,
    )
    .expect("ring");
    let policy = CheckpointPolicy {
        every: u64::MAX,
        signer: Arc::new(key),
        key_name: origin.clone(),
        origin,
    };
    (policy, ring)
}

/// The `name` of each stored entry but the `checkpoint.cut` ones, in `seq` order.
async fn stored_names(store: &relo_store::Store) -> Vec<String> {
    all_entries(store)
        .await
        .iter()
        .filter(|entry| entry.kind != "checkpoint.cut")
        .map(|entry| {
            let body: serde_json::Value = serde_json::from_str(&entry.body).expect("body");
            body["name"].as_str().expect("name").to_owned()
        })
        .collect()
}

/// `result` is the writer saying that records were not stored.
fn assert_unavailable(result: Result<(), EvidenceError>, what: &str) {
    match result {
        Err(err @ EvidenceError::Unavailable(_)) => {
            assert_eq!(err.code(), "evidence-unavailable");
            assert!(err.to_string().contains("were not stored"), "{what}: {err}");
        }
        other => panic!("{what}: expected unavailable evidence, got {other:?}"),
    }
}

async fn a_failed_batch_fails_only_its_own_tickets(db: TestDb) {
    let store = db.store().await;
    // Any entry whose body names `poison` is refused by the database, so the batch that
    // holds it fails as a whole; nothing else about the store changes.
    let mut raw = db.raw().await;
    let poison = match db.backend {
        Backend::Sqlite => vec![
            r#"CREATE TRIGGER evidence_entries_poison BEFORE INSERT ON evidence_entries
               WHEN NEW.body LIKE '%"poison"%'
               BEGIN SELECT RAISE(ABORT, 'poisoned evidence'); END"#,
        ],
        Backend::Postgres => vec![
            r#"CREATE FUNCTION evidence_entries_poison() RETURNS trigger LANGUAGE plpgsql AS $$
               BEGIN
                 IF NEW.body LIKE '%"poison"%' THEN RAISE EXCEPTION 'poisoned evidence'; END IF;
                 RETURN NEW;
               END $$"#,
            "CREATE TRIGGER evidence_entries_poison BEFORE INSERT ON evidence_entries
             FOR EACH ROW EXECUTE FUNCTION evidence_entries_poison()",
        ],
    };
    for sql in poison {
        raw.execute(sql).await.expect("install the poison trigger");
    }
    let (policy, ring) = evidence_key(&store).await;
    let origin = policy.origin.clone();
    let (gate, entered, release) = Gate::new();
    let writer = EvidenceWriter::spawn(
        store.clone(),
        WriterOptions {
            hasher: gate.hasher(),
            checkpoints: Some(policy),
            ..WriterOptions::default()
        },
    );

    let before: Vec<Ticket> = ["before-0", "before-1", "before-2"]
        .iter()
        .enumerate()
        .map(|(i, name)| writer.enqueue(record(&format!("run-{}", i % 2), name)))
        .collect();
    writer
        .durable_range(before[0], before[2])
        .await
        .expect("the records before are durable");

    // The writer stops inside the gate's batch; what is enqueued now is the next batch.
    let gate_ticket = writer.enqueue(record("run-0", "gate"));
    entered.await.expect("the writer reached the gate");
    let doomed: Vec<Ticket> = ["doomed-0", "poison", "doomed-1"]
        .iter()
        .enumerate()
        .map(|(i, name)| writer.enqueue(record(&format!("run-{}", i % 2), name)))
        .collect();
    release.send(()).expect("open the gate");
    writer
        .durable(gate_ticket)
        .await
        .expect("the gate's batch is durable");
    for (ticket, name) in doomed.iter().zip(["doomed-0", "poison", "doomed-1"]) {
        assert_unavailable(writer.durable(*ticket).await, name);
    }
    let settled = writer
        .checkpoint()
        .await
        .expect("a checkpoint over what is stored, the newest batch having failed");
    assert_eq!(settled.size, 4);

    // The writer goes on: later batches are stored and chained after the gate's.
    let after: Vec<Ticket> = ["after-0", "after-1", "after-2"]
        .iter()
        .enumerate()
        .map(|(i, name)| writer.enqueue(record(&format!("run-{}", i % 2), name)))
        .collect();
    for ticket in &after {
        writer
            .durable(*ticket)
            .await
            .expect("a later record is durable");
    }
    writer
        .durable_range(after[0], after[2])
        .await
        .expect("a span after the failure is durable");
    writer
        .durable_range(before[0], gate_ticket)
        .await
        .expect("a span before the failure is durable");
    assert_unavailable(
        writer.durable_range(before[0], after[2]).await,
        "a span across the failed batch",
    );
    assert_unavailable(
        writer.durable_range(doomed[2], after[0]).await,
        "a span that starts in the failed batch",
    );
    assert_eq!(
        writer.durable_ticket(),
        gate_ticket,
        "everything up to the gate, and nothing past the failed batch, is durable without a hole"
    );

    let end = writer
        .checkpoint()
        .await
        .expect("a checkpoint after the failure");
    // 7 records and the settled checkpoint's `checkpoint.cut`.
    assert_eq!(end.size, 8);
    assert_unavailable(writer.close().await, "close names the failed batch");
    assert_eq!(
        stored_names(&store).await,
        [
            "before-0", "before-1", "before-2", "gate", "after-0", "after-1", "after-2"
        ],
        "the failed batch is simply not stored"
    );
    // What was stored verifies with relo-evidence: gapless chains and a signed tree.
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
    // 7 records and the two checkpoints' `checkpoint.cut` entries, in the control scope.
    assert_eq!(report.entries, 9);
    assert_eq!(report.scopes, 3);
    assert_eq!(report.checkpoints_verified, 2);
    assert_eq!(report.uncovered_tail, 1);
}

backend_tests!(
    concurrent_enqueues_become_durable_in_ticket_order,
    checkpoints_are_cut_every_n_entries_and_on_demand,
    close_stores_everything_queued,
    a_closed_store_fails_every_later_batch,
    a_failed_batch_fails_only_its_own_tickets,
    an_unissued_ticket_is_an_error,
);

/// PostgreSQL only: the writer's connection is killed by the server, once while idle
/// between batches and once in the middle of an append.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_terminated_connection_fails_one_batch_at_most() {
    let Some(db) = TestDb::postgres().await else {
        return;
    };
    // A name of its own on every connection of this store, to find them on the server.
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let application = format!("relo_writer_test_{}_{nanos}", std::process::id());
    let store = relo_store::Store::connect(
        db.home.path(),
        &format!("{}&application_name={application}", db.url),
    )
    .await
    .expect("open the store");
    let writer = writer(&store);
    let mut admin = db.raw().await;
    let ours = format!("application_name = '{application}'");

    let before = writer.enqueue(record("run", "before"));
    writer.durable(before).await.expect("durable");

    // Killed while idle: the pool pings a connection before handing it out, finds it
    // dead and opens another, so no batch fails at all.
    let killed = admin
        .scalar(&format!(
            "SELECT COUNT(*) FILTER (WHERE pg_terminate_backend(pid, 30000))
             FROM pg_stat_activity WHERE {ours}"
        ))
        .await;
    assert!(killed >= 1, "the store's idle connections were terminated");
    let idle = writer.enqueue(record("run", "after-idle-kill"));
    writer
        .durable(idle)
        .await
        .expect("the writer reconnects after its idle connections were killed");

    // Killed in the middle of an append: the writer's transaction waits for a table
    // lock held by another connection (not `admin`, whose view of pg_stat_activity
    // would stay frozen inside a transaction), and is terminated while it waits.
    let mut locker = db.raw().await;
    locker.execute("BEGIN").await.expect("begin");
    locker
        .execute("LOCK TABLE evidence_entries IN ACCESS EXCLUSIVE MODE")
        .await
        .expect("lock the evidence table");
    let doomed = writer.enqueue(record("run", "doomed"));
    let waiting = format!("{ours} AND wait_event_type = 'Lock'");
    let mut polls = 0;
    while admin
        .scalar(&format!(
            "SELECT COUNT(*) FROM pg_stat_activity WHERE {waiting}"
        ))
        .await
        == 0
    {
        polls += 1;
        assert!(polls < 3000, "the writer never waited for the table lock");
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let killed = admin
        .scalar(&format!(
            "SELECT COUNT(*) FILTER (WHERE pg_terminate_backend(pid, 30000))
             FROM pg_stat_activity WHERE {waiting}"
        ))
        .await;
    assert_eq!(
        killed, 1,
        "the writer's connection was terminated mid-append"
    );
    locker.execute("ROLLBACK").await.expect("release the lock");
    assert_unavailable(
        writer.durable(doomed).await,
        "the batch on the killed connection",
    );

    let after: Vec<Ticket> = (0..3)
        .map(|i| writer.enqueue(record("run", &format!("after-{i}"))))
        .collect();
    writer
        .durable_range(after[0], after[2])
        .await
        .expect("the same writer stores later records");
    assert_unavailable(
        writer.durable_range(before, after[2]).await,
        "a span across the killed batch",
    );
    assert_unavailable(writer.close().await, "close names the killed batch");

    assert_eq!(
        stored_names(&store).await,
        ["before", "after-idle-kill", "after-0", "after-1", "after-2"]
    );
    assert_log_is_valid(&all_entries(&store).await);
}
