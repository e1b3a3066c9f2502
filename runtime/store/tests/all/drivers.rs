//! Run drivers on both backends: a run is created held by its creator; a live lease
//! keeps others out, an expired or released one lets them in; the orphan scan takes
//! exactly the runs nobody drives, and concurrent scanners never take the same run; the
//! per-requester limit on runs that have not ended; a server's gate approval hands a
//! parked run to the sweep.

#![allow(
    clippy::unwrap_used,
    reason = "the backend tests are plain async fns run by a macro; a failure must fail loudly"
)]

use std::collections::BTreeSet;
use std::time::{Duration, SystemTime};

use relo_evidence::{EvidenceEvent, EvidenceRecord, Scope};
use relo_store::{DriverClaim, GateApproval, NewRun, Store, StoreError};

use crate::support::{TestDb, backend_tests};

const LEASE: Duration = Duration::from_secs(30);

fn at(seconds: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000 + seconds)
}

fn new_run<'a>(id: &'a str, by: &'a str, driver: Option<&'a str>) -> NewRun<'a> {
    NewRun {
        id,
        workflow: "release",
        requested_by: by,
        request: "{}",
        steps: &["a"],
        workflow_text: "name: release",
        concurrency: None,
        driver: driver.map(|owner| (owner, LEASE)),
        active_limit: None,
    }
}

async fn a_driver_lease_keeps_others_out_until_it_expires(db: TestDb) {
    let store = db.store().await;
    store
        .create_run(&new_run("r", "olga", Some("one")), at(0))
        .await
        .unwrap();
    let held = store
        .claim_run_driver("r", "two", LEASE, at(10))
        .await
        .unwrap();
    assert!(
        matches!(&held, DriverClaim::Held { by, .. } if by == "one"),
        "{held:?}"
    );
    // The holder renews; the other still cannot claim after the first lease's end.
    assert!(
        store
            .renew_run_driver("r", "one", LEASE, at(20))
            .await
            .unwrap()
    );
    assert!(
        !store
            .renew_run_driver("r", "two", LEASE, at(20))
            .await
            .unwrap()
    );
    assert!(matches!(
        store
            .claim_run_driver("r", "two", LEASE, at(40))
            .await
            .unwrap(),
        DriverClaim::Held { .. }
    ));
    // Past the renewed lease the other takes over, and the first cannot renew.
    assert_eq!(
        store
            .claim_run_driver("r", "two", LEASE, at(51))
            .await
            .unwrap(),
        DriverClaim::Claimed
    );
    assert!(
        !store
            .renew_run_driver("r", "one", LEASE, at(52))
            .await
            .unwrap()
    );
    // A release by someone else does nothing; by the holder, frees the run at once.
    store.release_run_driver("r", "one").await.unwrap();
    assert!(matches!(
        store
            .claim_run_driver("r", "one", LEASE, at(53))
            .await
            .unwrap(),
        DriverClaim::Held { .. }
    ));
    store.release_run_driver("r", "two").await.unwrap();
    assert_eq!(
        store
            .claim_run_driver("r", "one", LEASE, at(54))
            .await
            .unwrap(),
        DriverClaim::Claimed
    );
    store.set_run_state("r", "succeeded", at(60)).await.unwrap();
    assert_eq!(
        store
            .claim_run_driver("r", "two", LEASE, at(200))
            .await
            .unwrap(),
        DriverClaim::Ended
    );
    assert_eq!(
        store
            .claim_run_driver("nope", "two", LEASE, at(200))
            .await
            .unwrap(),
        DriverClaim::NoRun
    );
}

async fn the_orphan_scan_takes_only_runs_nobody_drives(db: TestDb) {
    let store = db.store().await;
    for (second, (id, driver)) in [
        ("never-driven", None),
        ("driven", Some("live")),
        ("waiting", None),
        ("done", None),
        ("dead-driver", Some("dead")),
    ]
    .into_iter()
    .enumerate()
    {
        store
            .create_run(&new_run(id, "olga", driver), at(second as u64))
            .await
            .unwrap();
    }
    store
        .set_run_state("waiting", "waiting-approval", at(5))
        .await
        .unwrap();
    store.set_run_state("done", "failed", at(5)).await.unwrap();
    store
        .set_run_state("dead-driver", "running", at(5))
        .await
        .unwrap();
    // "live" renews; "dead" does not.
    assert!(
        store
            .renew_run_driver("driven", "live", LEASE, at(25))
            .await
            .unwrap()
    );
    let taken = store
        .claim_orphaned_runs("sweeper", LEASE, at(40), 10)
        .await
        .unwrap();
    assert_eq!(taken, ["never-driven", "dead-driver"]);
    assert!(
        store
            .claim_orphaned_runs("other", LEASE, at(41), 10)
            .await
            .unwrap()
            .is_empty(),
        "the sweeper now drives them"
    );
    let run = store
        .claim_run_driver("dead-driver", "dead", LEASE, at(42))
        .await
        .unwrap();
    assert!(
        matches!(&run, DriverClaim::Held { by, .. } if by == "sweeper"),
        "{run:?}"
    );
}

async fn concurrent_scanners_never_take_the_same_run(db: TestDb) {
    let store = db.store().await;
    let ids: Vec<String> = (0..24).map(|i| format!("run-{i:02}")).collect();
    for (i, id) in ids.iter().enumerate() {
        store
            .create_run(&new_run(id, "olga", None), at(i as u64))
            .await
            .unwrap();
    }
    let mut scanners = Vec::new();
    for n in 0..4 {
        // Separate handles: separate pools, as separate instances would have.
        let store = db.store().await;
        scanners.push(tokio::spawn(async move {
            let owner = format!("instance-{n}");
            let mut mine = Vec::new();
            loop {
                let taken = store
                    .claim_orphaned_runs(&owner, LEASE, at(100), 3)
                    .await
                    .unwrap();
                if taken.is_empty() {
                    return mine;
                }
                mine.extend(taken);
            }
        }));
    }
    let mut all = Vec::new();
    for scanner in scanners {
        all.extend(scanner.await.unwrap());
    }
    let distinct: BTreeSet<&String> = all.iter().collect();
    assert_eq!(distinct.len(), all.len(), "a run was taken twice: {all:?}");
    assert_eq!(distinct.into_iter().cloned().collect::<Vec<_>>(), ids);
}

async fn a_requester_has_at_most_the_limit_of_unended_runs(db: TestDb) {
    let store = db.store().await;
    let limited = |id: &'static str, by: &'static str| NewRun {
        active_limit: Some(2),
        ..new_run(id, by, None)
    };
    store
        .create_run(&limited("a", "olga"), at(0))
        .await
        .unwrap();
    store
        .create_run(&limited("b", "olga"), at(1))
        .await
        .unwrap();
    let refused = store.create_run(&limited("c", "olga"), at(2)).await;
    assert!(
        matches!(
            &refused,
            Err(StoreError::RunQuota { requester, active: 2, limit: 2 }) if requester == "olga"
        ),
        "{refused:?}"
    );
    assert!(store.run("c").await.unwrap().is_none(), "nothing stored");
    // Someone else is not limited by olga's runs; an ended run frees a place.
    store
        .create_run(&limited("d", "rita"), at(3))
        .await
        .unwrap();
    store.set_run_state("a", "succeeded", at(4)).await.unwrap();
    store
        .create_run(&limited("c", "olga"), at(5))
        .await
        .unwrap();
    assert_run_count(&store, 4).await;
}

async fn assert_run_count(store: &Store, expected: usize) {
    assert_eq!(store.runs(100).await.unwrap().len(), expected);
}

async fn an_approval_that_resumes_hands_a_parked_run_to_the_sweep(db: TestDb) {
    let store = db.store().await;
    for id in ["parked", "cli-parked"] {
        store
            .create_run(&new_run(id, "olga", None), at(0))
            .await
            .unwrap();
        store
            .set_run_state(id, "waiting-approval", at(1))
            .await
            .unwrap();
    }
    // Nobody takes up a parked run.
    assert!(
        store
            .claim_orphaned_runs("sweeper", LEASE, at(2), 10)
            .await
            .unwrap()
            .is_empty()
    );
    let approve = |run: &str, resume: bool| {
        let store = &store;
        let approval = GateApproval {
            run_id: run.to_owned(),
            step_id: "a".to_owned(),
            approver: "rita".to_owned(),
            key_id: "k".to_owned(),
            envelope: "{}".to_owned(),
            approved_at: String::new(),
        };
        let record = EvidenceRecord::new(
            Scope::Run(run.to_owned()),
            Some("a".to_owned()),
            EvidenceEvent::GateApproved {
                approver: "rita".into(),
                key_id: "k".into(),
                approval_sha256: "00".into(),
            },
        );
        async move {
            store
                .add_gate_approval(&approval, &record, at(3), resume)
                .await
                .unwrap();
        }
    };
    // The server's approval (resume) makes the run runnable in the same transaction; the
    // CLI's (`relo approve`, then `relo resume`) leaves it parked.
    approve("parked", true).await;
    approve("cli-parked", false).await;
    assert_eq!(
        store.run_state("parked").await.unwrap().as_deref(),
        Some("running")
    );
    assert_eq!(
        store.run_state("cli-parked").await.unwrap().as_deref(),
        Some("waiting-approval")
    );
    assert_eq!(
        store
            .claim_orphaned_runs("sweeper", LEASE, at(4), 10)
            .await
            .unwrap(),
        ["parked"]
    );
}

backend_tests!(
    an_approval_that_resumes_hands_a_parked_run_to_the_sweep,
    a_driver_lease_keeps_others_out_until_it_expires,
    the_orphan_scan_takes_only_runs_nobody_drives,
    concurrent_scanners_never_take_the_same_run,
    a_requester_has_at_most_the_limit_of_unended_runs,
);
