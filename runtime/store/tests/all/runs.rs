//! Runs and leased step claims on both backends: one holder per step, expired leases
//! claimable again, a holder that lost its lease cannot store a result, `control` is not
//! a run id, and concurrent claimers never share a step.

#![allow(
    clippy::unwrap_used,
    reason = "the backend tests are plain async fns run by a macro; a failure must fail loudly"
)]

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use relo_store::{NewRun, StepEnd, Store, StoreError};

use crate::support::{TestDb, backend_tests};

const LEASE: Duration = Duration::from_secs(30);

async fn create(store: &Store, id: &str, steps: &[&str], now: SystemTime) {
    store
        .create_run(
            &NewRun {
                id,
                workflow: "release",
                requested_by: "rita",
                request: "{}",
                steps,
            },
            now,
        )
        .await
        .expect("create the run");
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
        .create_run(
            &NewRun {
                id: "control",
                workflow: "release",
                requested_by: "rita",
                request: "{}",
                steps: &["a"],
            },
            SystemTime::now(),
        )
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

backend_tests!(
    a_step_has_one_holder_until_its_lease_expires,
    control_is_not_a_run_id,
    concurrent_claimers_never_share_a_step,
);
