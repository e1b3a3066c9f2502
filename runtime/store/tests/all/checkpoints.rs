//! Checkpoints cut under the write lock.

use relo_evidence::{Frontier, LogTree, merkle};
use relo_store::{Checkpoint, CheckpointDraft, EvidenceTampered, Store, StoreError, entry_hash};

use crate::support::{Raw, TestDb, all_entries, backend_tests, draft, hash, unguard};

fn leaf_root(leaves: &[[u8; 32]]) -> [u8; 32] {
    let hashed: Vec<_> = leaves.iter().map(|leaf| merkle::leaf_hash(leaf)).collect();
    merkle::root(&hashed)
}

/// The entries' hashes, decoded.
fn decode(entries: &[relo_store::StoredEntry]) -> Vec<[u8; 32]> {
    entries
        .iter()
        .map(|entry| {
            let mut hash = [0; 32];
            hex::decode_to_slice(&entry.hash, &mut hash).expect("hex hash");
            hash
        })
        .collect()
}

/// Appends `n` entries to `scope`.
async fn append(store: &Store, scope: &str, n: usize) {
    let drafts: Vec<_> = (0..n).map(|i| draft(scope, &i.to_string())).collect();
    store.append(&drafts, &hash).await.expect("append");
}

/// Cuts a checkpoint whose root is the basis's, with a test note.
async fn cut(store: &Store) -> Result<Checkpoint, StoreError> {
    store
        .append_checkpoint(
            &hash,
            |_| true,
            |basis| {
                Ok(CheckpointDraft {
                    root: basis.frontier.root(),
                    note: format!("relo.test\n{}\n", basis.size),
                    key_id: "key".into(),
                })
            },
        )
        .await
}

/// The hashes of the first `size` entries: those a checkpoint of `size` covers (the
/// log goes on with the `checkpoint.cut` entry that records it).
async fn covered(store: &Store, size: u64) -> Vec<[u8; 32]> {
    let mut leaves = decode(&all_entries(store).await);
    leaves.truncate(usize::try_from(size).expect("size"));
    leaves
}

/// The frontier of the tree over the first `size` entries, as stored.
async fn frontier_of_the_log(store: &Store, size: u64) -> String {
    let mut frontier = Frontier::new();
    for leaf in covered(store, size).await {
        frontier.push(&leaf);
    }
    frontier.to_text()
}

/// The frontier stored with checkpoint `id`.
async fn stored_frontier(raw: &mut Raw, id: u64) -> Option<String> {
    let sql = "SELECT frontier FROM checkpoints WHERE id = $1";
    let id = i64::try_from(id).expect("id");
    match raw {
        Raw::Sqlite(conn) => sqlx::query_scalar(sql).bind(id).fetch_one(conn).await,
        Raw::Postgres(conn) => sqlx::query_scalar(sql).bind(id).fetch_one(conn).await,
    }
    .expect("the checkpoint's frontier")
}

/// Asserts that `err` is [`StoreError::Inconsistent`] and says all of `words`.
fn assert_inconsistent(err: &StoreError, words: &[&str]) {
    match err {
        StoreError::Inconsistent(message) => {
            for word in words {
                assert!(message.contains(word), "`{word}` not in: {message}");
            }
        }
        other => panic!("not Inconsistent: {other}"),
    }
}

async fn a_checkpoint_covers_the_log_as_the_lock_saw_it(db: TestDb) {
    let store = db.store().await;
    assert_eq!(store.latest_checkpoint().await.expect("none yet"), None);
    let drafts: Vec<_> = (0..5).map(|i| draft("run", &i.to_string())).collect();
    store.append(&drafts, &hash).await.expect("append");
    let entries = all_entries(&store).await;

    let first = store
        .append_checkpoint(
            &hash,
            |_| true,
            |basis| {
                assert_eq!(basis.size, 5);
                assert_eq!(basis.previous, None);
                assert_eq!(basis.frontier.size(), 5);
                assert_eq!(basis.frontier.root(), leaf_root(&decode(&entries)));
                Ok(CheckpointDraft {
                    root: basis.frontier.root(),
                    note: format!("relo.test\n{}\n", basis.size),
                    key_id: "key-1".into(),
                })
            },
        )
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
        .append_checkpoint(
            &hash,
            |_| true,
            |basis| {
                // 5 entries, the first checkpoint's `checkpoint.cut`, and one more.
                assert_eq!(basis.size, 7);
                assert_eq!(basis.previous.as_ref(), Some(&first));
                Ok(CheckpointDraft {
                    root: basis.frontier.root(),
                    note: "second".into(),
                    key_id: "key-2".into(),
                })
            },
        )
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
        .append_checkpoint(
            &hash,
            |_| true,
            |_| Err("the evidence key is missing".into()),
        )
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

async fn a_root_other_than_the_log_s_is_refused(db: TestDb) {
    let store = db.store().await;
    append(&store, "run", 3).await;
    let err = store
        .append_checkpoint(
            &hash,
            |_| true,
            |_| {
                Ok(CheckpointDraft {
                    root: [7; 32],
                    note: "note".into(),
                    key_id: "key".into(),
                })
            },
        )
        .await
        .expect_err("refused");
    assert!(matches!(err, StoreError::Checkpoint(_)), "{err}");
    assert!(err.to_string().contains("is not the Merkle root"), "{err}");
    assert!(store.checkpoints().await.expect("none").is_empty());
}

async fn checkpoints_between_appends_have_the_root_of_the_whole_log(db: TestDb) {
    let store = db.store().await;
    let mut raw = db.raw().await;
    let mut previous = None;
    for round in 0..40usize {
        // Batches of 0 to 6 entries: some checkpoints add nothing, some cross a power of two.
        append(&store, &format!("run-{}", round % 3), round % 7).await;
        let checkpoint = cut(&store).await.expect("checkpoint");
        let entries = all_entries(&store).await;
        let recorded = entries.last().expect("the cut is recorded");
        assert_eq!(recorded.kind, "checkpoint.cut", "round {round}");
        assert_eq!(recorded.scope, "control", "round {round}");
        assert_eq!(checkpoint.size + 1, entries.len() as u64, "round {round}");
        let leaves = covered(&store, checkpoint.size).await;
        assert_eq!(
            checkpoint.root,
            hex::encode(LogTree::from_entry_hashes(&leaves).root()),
            "round {round}"
        );
        assert_eq!(
            stored_frontier(&mut raw, checkpoint.id).await,
            Some(frontier_of_the_log(&store, checkpoint.size).await),
            "round {round}"
        );
        assert_eq!(
            store.latest_checkpoint().await.expect("latest"),
            Some(checkpoint.clone())
        );
        if let Some(previous) = previous.replace(checkpoint.id) {
            assert!(checkpoint.id > previous);
        }
    }
    assert_eq!(store.checkpoints().await.expect("all").len(), 40);
}

async fn a_tampered_frontier_is_refused(db: TestDb) {
    let store = db.store().await;
    append(&store, "run", 5).await;
    let first = cut(&store).await.expect("first checkpoint");
    append(&store, "run", 3).await;
    let mut raw = db.raw().await;
    unguard(&db, &mut raw, "checkpoints").await;
    let good = stored_frontier(&mut raw, first.id).await.expect("stored");

    let mut other = Frontier::new();
    (0..5u8).for_each(|i| other.push(&[i; 32]));
    let mut longer = Frontier::from_text(&good).expect("decodes");
    longer.push(&[9; 32]);
    let id = first.id.to_string();
    let tampered = [
        ("v1 5 zz".to_owned(), "does not decode"),
        ("garbage".to_owned(), "does not decode"),
        (String::new(), "does not decode"),
        (good.replace("v1 5", "v1 7"), "does not decode"),
        (other.to_text(), "its frontier gives"),
        (
            longer.to_text(),
            "covers 5 entries but its frontier covers 6",
        ),
    ];
    for (frontier, reason) in tampered {
        raw.execute(&format!(
            "UPDATE checkpoints SET frontier = '{frontier}' WHERE id = {id}"
        ))
        .await
        .expect("tamper");
        let err = cut(&store).await.expect_err("refused");
        assert_inconsistent(&err, &[&format!("checkpoint {id} "), reason]);
        assert_eq!(
            store.checkpoints().await.expect("one").len(),
            1,
            "{frontier}"
        );
    }

    // The root changed instead, the frontier left alone: refused all the same.
    raw.execute(&format!(
        "UPDATE checkpoints SET frontier = '{good}', root = '{}' WHERE id = {id}",
        hex::encode(other.root())
    ))
    .await
    .expect("tamper");
    let err = cut(&store).await.expect_err("refused");
    assert_inconsistent(
        &err,
        &[&format!("checkpoint {id} has root"), "its frontier gives"],
    );

    // Put back, the checkpoint is trusted again.
    raw.execute(&format!(
        "UPDATE checkpoints SET root = '{}' WHERE id = {id}",
        first.root
    ))
    .await
    .expect("restore");
    let second = cut(&store).await.expect("second checkpoint");
    let leaves = covered(&store, second.size).await;
    assert_eq!(second.size, 9);
    assert_eq!(
        second.root,
        hex::encode(LogTree::from_entry_hashes(&leaves).root())
    );
}

async fn a_checkpoint_without_a_frontier_is_followed_by_a_full_read(db: TestDb) {
    let store = db.store().await;
    append(&store, "run-a", 9).await;
    cut(&store).await.expect("first");
    append(&store, "run-b", 4).await;
    let second = cut(&store).await.expect("second");
    // As if both were stored before schema version 9.
    let mut raw = db.raw().await;
    unguard(&db, &mut raw, "checkpoints").await;
    raw.execute("UPDATE checkpoints SET frontier = NULL")
        .await
        .expect("forget the frontiers");
    assert_eq!(stored_frontier(&mut raw, second.id).await, None);

    append(&store, "run-a", 6).await;
    let third = cut(&store).await.expect("third");
    let leaves = covered(&store, third.size).await;
    // 9 + 4 + 6 entries and the first two checkpoints' `checkpoint.cut`.
    assert_eq!(third.size, 21);
    assert_eq!(
        third.root,
        hex::encode(LogTree::from_entry_hashes(&leaves).root())
    );
    assert_eq!(
        stored_frontier(&mut raw, third.id).await,
        Some(frontier_of_the_log(&store, third.size).await)
    );

    append(&store, "run-b", 2).await;
    let fourth = cut(&store).await.expect("fourth");
    let leaves = covered(&store, fourth.size).await;
    assert_eq!(
        fourth.root,
        hex::encode(LogTree::from_entry_hashes(&leaves).root())
    );
}

async fn only_the_entries_after_the_last_checkpoint_are_read(db: TestDb) {
    let store = db.store().await;
    append(&store, "run", 6).await;
    cut(&store).await.expect("first");
    append(&store, "run", 5).await;
    let expected = LogTree::from_entry_hashes(&decode(&all_entries(&store).await)).root();
    // Entry 2's hash no longer decodes, but the frontier already covers it.
    let mut raw = db.raw().await;
    unguard(&db, &mut raw, "evidence_entries").await;
    raw.execute(&format!(
        "UPDATE evidence_entries SET hash = '{}' WHERE seq = 2",
        "z".repeat(64)
    ))
    .await
    .expect("tamper");
    let second = cut(&store).await.expect("second");
    assert_eq!(second.root, hex::encode(expected));

    // Without the frontier, every entry is read, and entry 2 is refused.
    unguard(&db, &mut raw, "checkpoints").await;
    raw.execute(&format!(
        "UPDATE checkpoints SET frontier = NULL WHERE id = {}",
        second.id
    ))
    .await
    .expect("forget the frontier");
    let err = cut(&store).await.expect_err("refused");
    assert_inconsistent(&err, &["entry 2 has hash"]);
}

async fn a_log_missing_entries_is_refused(db: TestDb) {
    let store = db.store().await;
    append(&store, "run", 4).await;
    cut(&store).await.expect("first");
    append(&store, "run", 3).await;
    let mut raw = db.raw().await;
    unguard(&db, &mut raw, "evidence_entries").await;
    raw.execute("DELETE FROM evidence_entries WHERE seq = 6")
        .await
        .expect("delete");
    let err = cut(&store).await.expect_err("a gap");
    assert_inconsistent(&err, &["entry 6 is missing"]);
    raw.execute("DELETE FROM evidence_entries WHERE seq >= 4")
        .await
        .expect("delete");
    let err = cut(&store).await.expect_err("shorter than the checkpoint");
    assert_inconsistent(&err, &["covers 4 entries", "entry 4 is not in the log"]);
    assert_eq!(store.checkpoints().await.expect("one").len(), 1);
}

/// Appends `n` entries to `scope`, hashed the way relo hashes (what [`Store::checkpoint`]
/// recomputes).
async fn append_relo(store: &Store, scope: &str, n: usize) {
    let drafts: Vec<_> = (0..n).map(|i| draft(scope, &i.to_string())).collect();
    store.append(&drafts, &entry_hash).await.expect("append");
}

/// Asserts that `err` refused the checkpoint as `evidence-tampered` at entry `seq`.
fn assert_tampered(err: &StoreError, seq: u64, words: &str) {
    let StoreError::Checkpoint(inner) = err else {
        panic!("not a refused checkpoint: {err}");
    };
    let tampered = inner
        .downcast_ref::<EvidenceTampered>()
        .unwrap_or_else(|| panic!("not evidence-tampered: {err}"));
    assert_eq!(tampered.code(), "evidence-tampered", "{err}");
    assert_eq!(tampered.seq, seq, "{err}");
    assert!(tampered.reason.contains(words), "`{words}` not in: {err}");
    assert!(err.to_string().contains("evidence-tampered"), "{err}");
}

async fn a_changed_body_is_not_signed_over(db: TestDb) {
    let store = db.store().await;
    let origin = store.evidence_origin().await.expect("origin");
    let key = relo_trust::PrivateKey::generate(relo_trust::KeyAlgorithm::Ed25519);
    append_relo(&store, "run-a", 3).await;
    store
        .checkpoint(&key, &origin, &origin)
        .await
        .expect("first");
    append_relo(&store, "run-a", 2).await;
    append_relo(&store, "run-b", 2).await;
    // Entry 7 (run-b's first, after run-a's 3, the `checkpoint.cut` and run-a's 2) is
    // edited after it was appended; its hash is left alone.
    let mut raw = db.raw().await;
    unguard(&db, &mut raw, "evidence_entries").await;
    raw.execute(r#"UPDATE evidence_entries SET body = '{"label":"forged"}' WHERE seq = 7"#)
        .await
        .expect("tamper");
    let err = store
        .checkpoint(&key, &origin, &origin)
        .await
        .expect_err("refused");
    assert_tampered(&err, 7, "no longer matches its hash");
    assert_eq!(store.checkpoints().await.expect("one").len(), 1);
    // The lock was released: appends go on.
    append_relo(&store, "run-a", 1).await;
}

async fn a_rehashed_entry_is_named_by_the_broken_link(db: TestDb) {
    let store = db.store().await;
    append(&store, "run", 4).await;
    cut(&store).await.expect("first");
    append(&store, "run", 3).await;
    // Entry 6 (after 4, and the `checkpoint.cut` at 5) is changed and rehashed
    // consistently: it recomputes, but entry 7 still links to the hash it had.
    let mut entry = all_entries(&store).await.remove(5);
    entry.body = r#"{"label":"forged"}"#.to_owned();
    let rehashed = hex::encode(hash(&entry.to_hash()).expect("hash"));
    let mut raw = db.raw().await;
    unguard(&db, &mut raw, "evidence_entries").await;
    raw.execute(&format!(
        r#"UPDATE evidence_entries SET body = '{}', hash = '{rehashed}' WHERE seq = 6"#,
        entry.body
    ))
    .await
    .expect("tamper");
    let err = cut(&store).await.expect_err("refused");
    assert_tampered(&err, 7, "links to");
    // A prev_hash rewritten to follow the new hash breaks entry 7's own hash instead.
    raw.execute(&format!(
        "UPDATE evidence_entries SET prev_hash = '{rehashed}' WHERE seq = 7"
    ))
    .await
    .expect("tamper");
    let err = cut(&store).await.expect_err("refused");
    assert_tampered(&err, 7, "no longer matches its hash");
    assert_eq!(store.checkpoints().await.expect("one").len(), 1);
}

async fn a_forged_checkpoint_row_is_not_built_on(db: TestDb) {
    let store = db.store().await;
    let origin = store.evidence_origin().await.expect("origin");
    let key = relo_trust::PrivateKey::generate(relo_trust::KeyAlgorithm::Ed25519);
    let signed = |store: Store| {
        let (key, origin) = (&key, origin.clone());
        async move { store.checkpoint(key, &origin, &origin).await }
    };
    append_relo(&store, "run-a", 8).await;
    signed(store.clone()).await.expect("first");
    append_relo(&store, "run-a", 5).await;
    // A row inserted behind the store's back (the guard stops only updates): its
    // frontier, size and root agree, but over leaves that are not the log's, and its
    // note is signed by nobody.
    let mut fake = Frontier::new();
    for i in 0..13u8 {
        fake.push(&[i; 32]);
    }
    let mut raw = db.raw().await;
    raw.execute(&format!(
        "INSERT INTO checkpoints (size, root, note, key_id, created_at, frontier) \
         VALUES (13, '{}', 'forged', 'nobody', '2026-11-23T00:00:00.000000000Z', '{}')",
        hex::encode(fake.root()),
        fake.to_text()
    ))
    .await
    .expect("insert a forged checkpoint");
    append_relo(&store, "run-b", 3).await;
    let third = signed(store.clone()).await.expect("third");
    let leaves = covered(&store, third.size).await;
    // 8 + 5 + 3 entries and the first checkpoint's `checkpoint.cut`.
    assert_eq!(third.size, 17);
    assert_eq!(
        third.root,
        hex::encode(LogTree::from_entry_hashes(&leaves).root()),
        "the whole log was read, not the forged frontier"
    );
    // The next one builds on the third, which its key signed.
    append_relo(&store, "run-b", 2).await;
    let fourth = signed(store.clone()).await.expect("fourth");
    let leaves = covered(&store, fourth.size).await;
    assert_eq!(
        fourth.root,
        hex::encode(LogTree::from_entry_hashes(&leaves).root())
    );
}

backend_tests!(
    a_checkpoint_covers_the_log_as_the_lock_saw_it,
    a_refused_checkpoint_stores_nothing,
    a_root_other_than_the_log_s_is_refused,
    checkpoints_between_appends_have_the_root_of_the_whole_log,
    a_tampered_frontier_is_refused,
    a_checkpoint_without_a_frontier_is_followed_by_a_full_read,
    only_the_entries_after_the_last_checkpoint_are_read,
    a_log_missing_entries_is_refused,
    a_forged_checkpoint_row_is_not_built_on,
    a_changed_body_is_not_signed_over,
    a_rehashed_entry_is_named_by_the_broken_link,
);
