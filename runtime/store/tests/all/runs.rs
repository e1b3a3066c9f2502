//! Runs and leased step claims on both backends: one holder per step, expired leases
//! claimable again, a holder that lost its lease cannot store a result, `control` is not
//! a run id, concurrent claimers never share a step; concurrency groups queue in order or
//! refuse; gate approvals are append-only and once per person; waiting gates and a dead
//! owner's steps are claimable again; step logs round-trip (snapshots: `snapshots.rs`).

#![allow(
    clippy::unwrap_used,
    reason = "the backend tests are plain async fns run by a macro; a failure must fail loudly"
)]

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use relo_evidence::{EvidenceEvent, EvidenceRecord, Scope};
use relo_store::{GateApproval, NewRun, Placed, StepEnd, Store, StoreError};

use crate::support::{TestDb, backend_tests};

const LEASE: Duration = Duration::from_secs(30);

async fn create(store: &Store, id: &str, steps: &[&str], now: SystemTime) {
    store
        .create_run(&new_run(id, steps, None), now)
        .await
        .expect("create the run");
}

fn new_run<'a>(id: &'a str, steps: &'a [&'a str], group: Option<(&'a str, bool)>) -> NewRun<'a> {
    NewRun {
        id,
        workflow: "release",
        requested_by: "rita",
        request: "{}",
        steps,
        workflow_text: "name: release",
        concurrency: group,
        driver: None,
        active_limit: None,
    }
}

async fn a_step_has_one_holder_until_its_lease_expires(db: TestDb) {
    let store = db.store().await;
    let now = SystemTime::now();
    create(&store, "run-1", &["verify", "tag"], now).await;

    let first = store
        .claim_step("run-1", "verify", "instance-a", LEASE, now)
        .await
        .unwrap()
        .expect("a pending step is claimable");
    assert_eq!(first.attempt, 1);
    let taken = store
        .claim_step(
            "run-1",
            "verify",
            "instance-b",
            LEASE,
            now + Duration::from_secs(5),
        )
        .await
        .unwrap();
    assert_eq!(taken, None, "a live lease keeps others out");
    store
        .renew_lease(
            "run-1",
            "verify",
            "instance-a",
            LEASE,
            now + Duration::from_secs(10),
        )
        .await
        .unwrap();

    // instance-a dies; after its lease another instance takes the step over.
    let later = now + Duration::from_secs(10) + LEASE + Duration::from_secs(1);
    let second = store
        .claim_step("run-1", "verify", "instance-b", LEASE, later)
        .await
        .unwrap()
        .expect("an expired lease is claimable");
    assert_eq!(second.attempt, 2);

    // The old holder's result is refused; the new holder's is stored.
    let lost = store
        .finish_step(
            "run-1",
            "verify",
            "instance-a",
            StepEnd::Succeeded,
            Some("{}"),
            None,
            later,
        )
        .await
        .unwrap_err();
    assert!(matches!(lost, StoreError::LeaseLost { .. }), "{lost}");
    store
        .finish_step(
            "run-1",
            "verify",
            "instance-b",
            StepEnd::Succeeded,
            Some(r#"{"tag":"v1.2.3"}"#),
            None,
            later,
        )
        .await
        .unwrap();
    let ended = store
        .claim_step("run-1", "verify", "instance-c", LEASE, later + LEASE * 10)
        .await
        .unwrap();
    assert_eq!(ended, None, "an ended step is never claimed again");

    let steps = store.run_steps("run-1").await.unwrap();
    let verify = steps.iter().find(|s| s.step_id == "verify").unwrap();
    assert_eq!(verify.state, "succeeded");
    assert_eq!(verify.attempt, 2);
    assert_eq!(verify.output.as_deref(), Some(r#"{"tag":"v1.2.3"}"#));
    assert_eq!(verify.lease_owner, None);
    let tag = steps.iter().find(|s| s.step_id == "tag").unwrap();
    assert_eq!((tag.state.as_str(), tag.attempt), ("pending", 0));
}

async fn control_is_not_a_run_id(db: TestDb) {
    let store = db.store().await;
    let error = store
        .create_run(&new_run("control", &["a"], None), SystemTime::now())
        .await
        .unwrap_err();
    assert!(error.to_string().contains("control"), "{error}");
}

async fn concurrent_claimers_never_share_a_step(db: TestDb) {
    let steps: Vec<String> = (0..40).map(|i| format!("s{i:02}")).collect();
    let ids: Vec<&str> = steps.iter().map(String::as_str).collect();
    let now = SystemTime::now();
    create(&db.store().await, "run-many", &ids, now).await;
    let mut tasks = Vec::new();
    for owner in ["a", "b", "c"] {
        // Each claimer has its own store (connection pool), like separate instances.
        let store = db.store().await;
        let steps = steps.clone();
        tasks.push(tokio::spawn(async move {
            let mut won = Vec::new();
            for step in &steps {
                if store
                    .claim_step("run-many", step, owner, LEASE, now)
                    .await
                    .unwrap()
                    .is_some()
                {
                    won.push(step.clone());
                }
            }
            (owner, won)
        }));
    }
    let mut holders: BTreeMap<String, &str> = BTreeMap::new();
    for task in tasks {
        let (owner, won) = task.await.unwrap();
        for step in won {
            assert!(
                holders.insert(step.clone(), owner).is_none(),
                "{step} claimed twice"
            );
        }
    }
    assert_eq!(holders.len(), steps.len(), "every step was claimed once");
}

async fn a_concurrency_group_queues_runs_in_order_or_refuses(db: TestDb) {
    let store = db.store().await;
    let t0 = SystemTime::now();
    let at = |s: u64| t0 + Duration::from_secs(s);
    let group = Some(("release", true));
    assert_eq!(
        store
            .create_run(&new_run("a", &["x"], group), at(0))
            .await
            .unwrap(),
        Placed::Ready
    );
    let refused = store
        .create_run(&new_run("r", &["x"], Some(("release", false))), at(1))
        .await
        .unwrap_err();
    assert!(
        matches!(&refused, StoreError::GroupBusy { run_id, .. } if run_id == "a"),
        "{refused}"
    );
    assert_eq!(
        store.run("r").await.unwrap(),
        None,
        "nothing of a refused run is stored"
    );
    for (id, second) in [("b", 2), ("c", 3)] {
        let placed = store
            .create_run(&new_run(id, &["x"], group), at(second))
            .await
            .unwrap();
        assert_eq!(placed, Placed::Queued { behind: "a".into() });
    }
    // b and c wait while a holds the group (waiting for approval holds it too).
    store
        .set_run_state("a", "waiting-approval", at(4))
        .await
        .unwrap();
    assert_eq!(
        store.take_group_turn("b", at(5)).await.unwrap().as_deref(),
        Some("a")
    );
    assert_eq!(
        store.take_group_turn("c", at(5)).await.unwrap().as_deref(),
        Some("a")
    );
    store.set_run_state("a", "succeeded", at(6)).await.unwrap();
    // c was queued after b: b goes first.
    assert_eq!(
        store.take_group_turn("c", at(7)).await.unwrap().as_deref(),
        Some("b")
    );
    assert_eq!(store.take_group_turn("b", at(7)).await.unwrap(), None);
    assert_eq!(
        store.run_state("b").await.unwrap().as_deref(),
        Some("pending")
    );
    assert_eq!(
        store.take_group_turn("c", at(8)).await.unwrap().as_deref(),
        Some("b")
    );
    store.set_run_state("b", "cancelled", at(9)).await.unwrap();
    assert_eq!(store.take_group_turn("c", at(10)).await.unwrap(), None);
    // Another group is unaffected.
    let other = store
        .create_run(&new_run("o", &["x"], Some(("other", false))), at(11))
        .await
        .unwrap();
    assert_eq!(other, Placed::Ready);
}

async fn gates_waiting_steps_dead_owners_and_logs(db: TestDb) {
    let store = db.store().await;
    let now = SystemTime::now();
    create(&store, "run-g", &["gate", "deploy"], now).await;

    // A gate short of its quorum parks as waiting and is claimable again.
    store
        .claim_step("run-g", "gate", "a", LEASE, now)
        .await
        .unwrap()
        .unwrap();
    store.wait_step("run-g", "gate", "a", now).await.unwrap();
    let gate = &store.run_steps("run-g").await.unwrap()[1];
    assert_eq!(
        (gate.state.as_str(), gate.lease_owner.as_deref()),
        ("waiting", None)
    );
    assert!(
        store
            .claim_step("run-g", "gate", "b", LEASE, now)
            .await
            .unwrap()
            .is_some()
    );

    // Approvals: once per person, each with its evidence entry, and append-only.
    let approval = |approver: &str| GateApproval {
        run_id: "run-g".into(),
        step_id: "gate".into(),
        approver: approver.into(),
        key_id: "k".into(),
        envelope: "{}".into(),
        approved_at: String::new(),
    };
    let record = EvidenceRecord::new(
        Scope::Run("run-g".into()),
        Some("gate".into()),
        EvidenceEvent::GateApproved {
            approver: "max".into(),
            key_id: "k".into(),
            approval_sha256: "00".into(),
        },
    );
    store
        .add_gate_approval(&approval("max"), &record, now, false)
        .await
        .unwrap();
    let twice = store
        .add_gate_approval(&approval("max"), &record, now, false)
        .await
        .unwrap_err();
    assert!(matches!(twice, StoreError::Duplicate(_)), "{twice}");
    assert_eq!(
        store.gate_approvals("run-g", "gate").await.unwrap().len(),
        1
    );
    let kinds: Vec<String> = store
        .scope_entries("run-g", 0, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.kind)
        .collect();
    assert_eq!(kinds, ["gate.approved"]);
    let edited = db
        .raw()
        .await
        .execute("UPDATE gate_approvals SET approver = 'sam'")
        .await
        .unwrap_err();
    assert!(edited.to_string().contains("append-only"), "{edited}");

    // A dead owner's steps are released at once; others' are not touched.
    store
        .claim_step("run-g", "deploy", "dead", LEASE, now)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        store.release_leases("run-g", "alive").await.unwrap(),
        Vec::<String>::new()
    );
    assert_eq!(
        store.release_leases("run-g", "dead").await.unwrap(),
        ["deploy"]
    );
    assert!(
        store
            .claim_step("run-g", "deploy", "c", LEASE, now)
            .await
            .unwrap()
            .is_some()
    );

    store
        .add_step_logs(
            "run-g",
            "deploy",
            1,
            &[("step", "info", "one"), ("host", "warn", "two")],
        )
        .await
        .unwrap();
    let logs = store.step_logs("run-g", Some("deploy")).await.unwrap();
    let lines: Vec<(&str, &str)> = logs
        .iter()
        .map(|l| (l.source.as_str(), l.message.as_str()))
        .collect();
    assert_eq!(lines, [("step", "one"), ("host", "two")]);
    assert!(
        store
            .step_logs("run-g", Some("gate"))
            .await
            .unwrap()
            .is_empty()
    );
}

async fn a_run_id_is_taken_once(db: TestDb) {
    let store = db.store().await;
    create(&store, "run-1", &["a"], SystemTime::now()).await;
    let again = store
        .create_run(&new_run("run-1", &["b"], None), SystemTime::now())
        .await;
    assert!(matches!(again, Err(StoreError::Duplicate(_))), "{again:?}");
    let steps = store.run_steps("run-1").await.unwrap();
    assert_eq!(steps.len(), 1, "the first run is untouched");
    assert_eq!(steps[0].step_id, "a");
}

backend_tests!(
    a_step_has_one_holder_until_its_lease_expires,
    control_is_not_a_run_id,
    a_run_id_is_taken_once,
    concurrent_claimers_never_share_a_step,
    a_concurrency_group_queues_runs_in_order_or_refuses,
    gates_waiting_steps_dead_owners_and_logs,
);
