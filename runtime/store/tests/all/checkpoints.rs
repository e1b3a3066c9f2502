//! Checkpoints cut under the write lock.

use relo_evidence::merkle;
use relo_store::{CheckpointDraft, StoreError};

use crate::support::{TestDb, all_entries, backend_tests, draft, hash};

fn leaf_root(leaves: &[[u8; 32]]) -> [u8; 32] {
    let hashed: Vec<_> = leaves.iter().map(|leaf| merkle::leaf_hash(leaf)).collect();
    merkle::root(&hashed)
}

async fn a_checkpoint_covers_the_log_as_the_lock_saw_it(db: TestDb) {
    let store = db.store().await;
    assert_eq!(store.latest_checkpoint().await.expect("none yet"), None);
    let drafts: Vec<_> = (0..5).map(|i| draft("run", &i.to_string())).collect();
    store.append(&drafts, &hash).await.expect("append");
    let entries = all_entries(&store).await;

    let first = store
        .append_checkpoint(|basis| {
            assert_eq!(basis.size, 5);
            assert_eq!(basis.previous, None);
            let expected: Vec<String> = entries.iter().map(|e| e.hash.clone()).collect();
            assert_eq!(
                basis.leaves.iter().map(hex::encode).collect::<Vec<_>>(),
                expected
            );
            Ok(CheckpointDraft {
                root: leaf_root(&basis.leaves),
                note: format!("relo.test\n{}\n", basis.size),
                key_id: "key-1".into(),
            })
        })
        .await
        .expect("first checkpoint");
    assert_eq!(first.size, 5);
    assert_eq!(first.key_id, "key-1");
    assert_eq!(first.root.len(), 64);
    assert_eq!(
        store.latest_checkpoint().await.expect("latest"),
        Some(first.clone())
    );

    store
        .append(&[draft("run", "5")], &hash)
        .await
        .expect("append");
    let second = store
        .append_checkpoint(|basis| {
            assert_eq!(basis.size, 6);
            assert_eq!(basis.previous.as_ref(), Some(&first));
            Ok(CheckpointDraft {
                root: leaf_root(&basis.leaves),
                note: "second".into(),
                key_id: "key-2".into(),
            })
        })
        .await
        .expect("second checkpoint");
    assert!(second.id > first.id);
    assert_eq!(
        store.checkpoints().await.expect("all"),
        [first, second.clone()]
    );
    assert_eq!(
        store.latest_checkpoint().await.expect("latest"),
        Some(second)
    );
}

async fn a_refused_checkpoint_stores_nothing(db: TestDb) {
    let store = db.store().await;
    let err = store
        .append_checkpoint(|_| Err("the evidence key is missing".into()))
        .await
        .expect_err("refused");
    assert!(matches!(err, StoreError::Checkpoint(_)), "{err}");
    assert_eq!(
        err.to_string(),
        "checkpoint refused: the evidence key is missing"
    );
    assert!(store.checkpoints().await.expect("none").is_empty());
    // The lock was released: appends go on.
    store
        .append(&[draft("run", "after")], &hash)
        .await
        .expect("append after");
}

backend_tests!(
    a_checkpoint_covers_the_log_as_the_lock_saw_it,
    a_refused_checkpoint_stores_nothing,
);
