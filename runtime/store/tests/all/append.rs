//! Numbering and chaining of appended evidence.

use relo_store::{GENESIS_PREV_HASH, Store, StoreError};

use crate::support::{
    Backend, TestDb, all_entries, assert_log_is_valid, backend_tests, draft, hash, label,
};

async fn numbers_are_gapless_and_chains_link_across_batches(db: TestDb) {
    let store = db.store().await;
    let first = store
        .append(
            &[
                draft("run-a", "a1"),
                draft("run-a", "a2"),
                draft("control", "c1"),
            ],
            &hash,
        )
        .await
        .expect("first batch");
    assert_eq!(
        first
            .iter()
            .map(|e| (e.seq, e.scope_seq))
            .collect::<Vec<_>>(),
        [(1, 1), (2, 2), (3, 1)]
    );
    assert_eq!(first[0].prev_hash, GENESIS_PREV_HASH);
    assert_eq!(first[1].prev_hash, first[0].hash);
    assert_eq!(first[2].prev_hash, GENESIS_PREV_HASH);

    let second = store
        .append(
            &[
                draft("control", "c2"),
                draft("run-b", "b1"),
                draft("run-a", "a3"),
            ],
            &hash,
        )
        .await
        .expect("second batch");
    assert_eq!(
        second
            .iter()
            .map(|e| (e.seq, e.scope_seq))
            .collect::<Vec<_>>(),
        [(4, 2), (5, 1), (6, 3)]
    );
    assert_eq!(
        second[0].prev_hash, first[2].hash,
        "control links across batches"
    );
    assert_eq!(
        second[2].prev_hash, first[1].hash,
        "run-a links across batches"
    );

    // More rows than one INSERT statement carries.
    let big: Vec<_> = (0..1234)
        .map(|i| draft(["run-a", "run-b", "run-c"][i % 3], &format!("big-{i}")))
        .collect();
    let third = store.append(&big, &hash).await.expect("big batch");
    assert_eq!(third.first().map(|e| e.seq), Some(7));
    assert_eq!(third.last().map(|e| e.seq), Some(1240));

    let stored = all_entries(&store).await;
    assert_eq!(stored.len(), 1240);
    assert_log_is_valid(&stored);
    let returned: Vec<_> = first.into_iter().chain(second).chain(third).collect();
    assert_eq!(stored, returned, "what append returns is what is stored");
    assert_eq!(store.evidence_size().await.expect("size"), 1240);
}

async fn an_empty_batch_stores_nothing(db: TestDb) {
    let store = db.store().await;
    assert!(store.append(&[], &hash).await.expect("empty").is_empty());
    assert_eq!(store.evidence_size().await.expect("size"), 0);
}

async fn a_batch_with_an_invalid_draft_stores_nothing(db: TestDb) {
    let store = db.store().await;
    let err = store
        .append(&[draft("run-a", "ok"), draft("", "no scope")], &hash)
        .await
        .expect_err("an empty scope is refused");
    assert!(matches!(err, StoreError::InvalidEntry(_)), "{err}");
    assert!(
        err.to_string().contains("scope and kind must not be empty"),
        "{err}"
    );
    assert_eq!(store.evidence_size().await.expect("size"), 0);
}

async fn concurrent_appends_in_one_process_keep_one_linear_chain(db: TestDb) {
    let store = db.store().await;
    let mut tasks = Vec::new();
    for task in 0..6 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..25 {
                let batch = [
                    draft("shared", &format!("{task}-{i}-0")),
                    draft(&format!("own-{task}"), &format!("{task}-{i}")),
                    draft("shared", &format!("{task}-{i}-1")),
                ];
                store.append(&batch, &hash).await.expect("append");
            }
        }));
    }
    for task in tasks {
        task.await.expect("task");
    }
    let stored = all_entries(&store).await;
    assert_eq!(stored.len(), 6 * 25 * 3);
    assert_log_is_valid(&stored);
    // A batch is contiguous: nothing else lands between its entries.
    for batch in stored.chunks(3) {
        let labels: Vec<_> = batch.iter().map(label).collect();
        assert_eq!(
            labels[0].strip_suffix("-0"),
            Some(labels[1].as_str()),
            "{labels:?}"
        );
        assert_eq!(
            labels[2].strip_suffix("-1"),
            Some(labels[1].as_str()),
            "{labels:?}"
        );
    }
}

/// Two `Store`s on one database, as two relo instances: only the database lock orders
/// them. On PostgreSQL the server defaults to SERIALIZABLE here, which must not change
/// what an append sees after taking the lock.
async fn two_stores_on_one_database_keep_one_linear_chain(db: TestDb) {
    let url = match db.backend {
        Backend::Sqlite => db.url.clone(),
        Backend::Postgres => {
            format!(
                "{}&options=-c%20default_transaction_isolation%3Dserializable",
                db.url
            )
        }
    };
    let first = db.store().await;
    let second = Store::connect(db.home.path(), &url)
        .await
        .expect("second instance");
    let mut tasks = Vec::new();
    for (name, store) in [("a", first.clone()), ("b", second)] {
        tasks.push(tokio::spawn(async move {
            for i in 0..60 {
                let batch = [draft("run", &format!("{name}-{i}")), draft(name, "own")];
                store.append(&batch, &hash).await.expect("append");
            }
        }));
    }
    for task in tasks {
        task.await.expect("task");
    }
    let stored = all_entries(&first).await;
    assert_eq!(stored.len(), 240);
    assert_log_is_valid(&stored);
}

async fn reads_page_in_seq_and_chain_order(db: TestDb) {
    let store = db.store().await;
    let drafts: Vec<_> = (0..30)
        .map(|i| draft(if i % 2 == 0 { "even" } else { "odd" }, &i.to_string()))
        .collect();
    store.append(&drafts, &hash).await.expect("append");

    let page = store.entries(10, 5).await.expect("page");
    assert_eq!(
        page.iter().map(|e| e.seq).collect::<Vec<_>>(),
        [11, 12, 13, 14, 15]
    );

    let odd = store.scope_entries("odd", 3, 4).await.expect("scope page");
    assert_eq!(
        odd.iter().map(|e| e.scope_seq).collect::<Vec<_>>(),
        [4, 5, 6, 7]
    );
    assert_eq!(
        odd.iter().map(label).collect::<Vec<_>>(),
        ["7", "9", "11", "13"]
    );
    assert!(odd.iter().all(|e| e.scope == "odd"));

    assert!(
        store
            .scope_entries("missing", 0, 10)
            .await
            .expect("none")
            .is_empty()
    );
    assert!(
        store
            .entries(30, 10)
            .await
            .expect("past the end")
            .is_empty()
    );
}

backend_tests!(
    numbers_are_gapless_and_chains_link_across_batches,
    an_empty_batch_stores_nothing,
    a_batch_with_an_invalid_draft_stores_nothing,
    concurrent_appends_in_one_process_keep_one_linear_chain,
    two_stores_on_one_database_keep_one_linear_chain,
    reads_page_in_seq_and_chain_order,
);
