//! Batch seals: every write transaction of a sealed store signs the whole log's size and
//! root, so a database writer who rewrites entries consistently is caught.

use std::sync::Arc;

use relo_evidence::{KeyRing, KeyStatus};
use relo_store::{
    EvidenceSeal, EvidenceTampered, SealCheck, Store, StoreError, StoredEntry, entry_hash,
};
use relo_trust::{KeyAlgorithm, PrivateKey};

use crate::support::{Raw, TestDb, all_entries, backend_tests, draft, unguard};

backend_tests!(
    every_batch_is_sealed_and_the_seals_chain,
    a_consistent_rewrite_of_the_tail_is_refused_naming_its_seal,
    entries_stored_outside_the_writer_stop_the_next_sealed_append,
    a_seal_row_with_a_forged_signature_is_refused,
    a_log_from_before_seals_is_sealed_from_its_latest_checkpoint,
);

/// A store sealed with a new Ed25519 key, that key, and the log's origin.
async fn sealed(db: &TestDb) -> (Store, Arc<PrivateKey>, String) {
    let store = db.store().await;
    let key = Arc::new(PrivateKey::generate(KeyAlgorithm::Ed25519));
    let origin = store.evidence_origin().await.expect("origin");
    (reseal(store, &key, &origin), key, origin)
}

fn reseal(store: Store, key: &Arc<PrivateKey>, origin: &str) -> Store {
    let signer = Arc::clone(key) as Arc<dyn relo_trust::Signer>;
    store.sealed(EvidenceSeal::with_key(signer, origin).expect("seal"))
}

async fn append(store: &Store, scope: &str, n: usize) -> Result<Vec<StoredEntry>, StoreError> {
    let drafts: Vec<_> = (0..n).map(|i| draft(scope, &i.to_string())).collect();
    store.append(&drafts, &entry_hash).await
}

/// Checks every stored seal against the stored log; returns the size they cover.
async fn seals_cover(store: &Store, key: &PrivateKey, origin: &str) -> u64 {
    let mut keys = KeyRing::new();
    keys.add(origin, key.public_key().clone(), KeyStatus::Active)
        .expect("ring");
    let seals = store.seals().await.expect("seals");
    let mut check = SealCheck::new(&keys, origin, None, seals).expect("start");
    let mut frontier = relo_evidence::Frontier::new();
    for entry in all_entries(store).await {
        let mut leaf = [0; 32];
        hex::decode_to_slice(&entry.hash, &mut leaf).expect("hex");
        frontier.push(&leaf);
        check
            .reached(frontier.size(), || frontier.root())
            .expect("every seal verifies");
    }
    check.finish(frontier.size()).expect("no seal past the log")
}

/// Rewrites `entry` in place with a new body, rehashed the way relo hashes, and returns
/// its new hash.
async fn rewrite(raw: &mut Raw, entry: &StoredEntry, body: &str, prev_hash: &str) -> String {
    let mut forged = entry.clone();
    body.clone_into(&mut forged.body);
    prev_hash.clone_into(&mut forged.prev_hash);
    let hash = hex::encode(entry_hash(&forged.to_hash()).expect("hash"));
    raw.execute(&format!(
        "UPDATE evidence_entries SET body = '{body}', prev_hash = '{prev_hash}', hash = '{hash}' \
         WHERE seq = {}",
        entry.seq
    ))
    .await
    .expect("rewrite");
    hash
}

fn tampered(err: &StoreError) -> &EvidenceTampered {
    match err {
        StoreError::Tampered(found) => found,
        StoreError::Checkpoint(inner) => inner
            .downcast_ref::<EvidenceTampered>()
            .unwrap_or_else(|| panic!("not evidence-tampered: {err}")),
        other => panic!("not evidence-tampered: {other}"),
    }
}

async fn every_batch_is_sealed_and_the_seals_chain(db: TestDb) {
    let (store, key, origin) = sealed(&db).await;
    append(&store, "run-a", 3).await.expect("append");
    append(&store, "run-b", 2).await.expect("append");
    store
        .checkpoint(key.as_ref(), &origin, &origin)
        .await
        .expect("checkpoint");
    append(&store, "run-a", 1).await.expect("append");
    let seals = store.seals().await.expect("seals");
    let spans: Vec<_> = seals.iter().map(|s| (s.id, s.first, s.size)).collect();
    // Two batches, the `checkpoint.cut` entry, one more batch.
    assert_eq!(spans, [(1, 1, 3), (2, 4, 5), (3, 6, 6), (4, 7, 7)]);
    assert_eq!(seals[0].previous, "-");
    assert!(seals.iter().all(|s| s.key_id == key.public_key().key_id()));
    assert_eq!(seals_cover(&store, &key, &origin).await, 7);
}

async fn a_consistent_rewrite_of_the_tail_is_refused_naming_its_seal(db: TestDb) {
    let (store, key, origin) = sealed(&db).await;
    append(&store, "run-a", 3).await.expect("append");
    store
        .checkpoint(key.as_ref(), &origin, &origin)
        .await
        .expect("checkpoint");
    // After the checkpoint (1-3) and its `checkpoint.cut` (4): run-b (5-6), then run-c
    // (7-8), so run-b is not the last to write.
    let run_b = append(&store, "run-b", 2).await.expect("append");
    append(&store, "run-c", 2).await.expect("append");
    // The attacker rewrites run-b consistently: bodies, hashes and the link between them.
    let mut raw = db.raw().await;
    unguard(&db, &mut raw, "evidence_entries").await;
    let first = rewrite(
        &mut raw,
        &run_b[0],
        r#"{"label":"forged"}"#,
        &run_b[0].prev_hash,
    )
    .await;
    rewrite(&mut raw, &run_b[1], r#"{"label":"forged too"}"#, &first).await;
    let err = store
        .checkpoint(key.as_ref(), &origin, &origin)
        .await
        .expect_err("the rewrite is not signed");
    let found = tampered(&err);
    assert_eq!(found.code(), "evidence-tampered");
    assert_eq!(found.seq, 5, "{err}");
    assert_eq!(found.subject, "seal 3 (entries 5-6)", "{err}");
    assert!(found.reason.contains("signed the root"), "{err}");
    assert_eq!(store.checkpoints().await.expect("rows").len(), 1);
}

async fn entries_stored_outside_the_writer_stop_the_next_sealed_append(db: TestDb) {
    let (store, key, origin) = sealed(&db).await;
    append(&store, "run-a", 2).await.expect("append");
    // The same database written by a store without the key: entry 3 has no seal.
    db.store()
        .await
        .append(&[draft("run-a", "inserted")], &entry_hash)
        .await
        .expect("an unsealed append");
    let err = append(&store, "run-a", 1).await.expect_err("refused");
    let found = tampered(&err);
    assert_eq!(found.seq, 3, "{err}");
    assert_eq!(found.subject, "entries 3-3", "{err}");
    assert!(found.reason.contains("covered by no seal"), "{err}");
    assert_eq!(
        all_entries(&store).await.len(),
        3,
        "nothing of the refused batch stays"
    );
    let err = store
        .checkpoint(key.as_ref(), &origin, &origin)
        .await
        .expect_err("the checkpoint refuses too");
    assert!(
        tampered(&err).reason.contains("covered by no seal"),
        "{err}"
    );
}

async fn a_seal_row_with_a_forged_signature_is_refused(db: TestDb) {
    let (store, key, origin) = sealed(&db).await;
    append(&store, "run-a", 2).await.expect("append");
    // An attacker with the database but not the key appends an entry without a seal,
    // then inserts the seal that would cover it: right size, root, frontier and link,
    // naming relo's key, signed by a key of their own.
    db.store()
        .await
        .append(&[draft("run-a", "inserted")], &entry_hash)
        .await
        .expect("an unsealed append");
    let last = store.seals().await.expect("seals").remove(0);
    let mut frontier = relo_evidence::Frontier::new();
    for entry in all_entries(&store).await {
        let mut leaf = [0; 32];
        hex::decode_to_slice(&entry.hash, &mut leaf).expect("hex");
        frontier.push(&leaf);
    }
    let statement = relo_evidence::SealStatement {
        origin: origin.clone(),
        first: 3,
        size: 3,
        root: frontier.root(),
        previous: Some(relo_evidence::seal_link(
            &hex::decode(&last.signature).expect("hex"),
        )),
    };
    let mallory = PrivateKey::generate(KeyAlgorithm::Ed25519);
    let signature = hex::encode(mallory.sign(&statement.message()));
    let mut raw = db.raw().await;
    raw.execute(&format!(
        "INSERT INTO evidence_seals (id, first_seq, size, root, previous, frontier, key_id, signature) \
         VALUES (2, 3, 3, '{}', '{}', '{}', '{}', '{signature}')",
        hex::encode(statement.root),
        hex::encode(statement.previous.expect("link")),
        frontier.to_text(),
        key.public_key().key_id(),
    ))
    .await
    .expect("insert the forged seal");
    let err = append(&store, "run-a", 1).await.expect_err("refused");
    let found = tampered(&err);
    assert_eq!(found.subject, "seal 2 (entries 3-3)", "{err}");
    assert!(found.reason.contains("does not verify"), "{err}");
    assert_eq!(all_entries(&store).await.len(), 3);
}

async fn a_log_from_before_seals_is_sealed_from_its_latest_checkpoint(db: TestDb) {
    let plain = db.store().await;
    let key = Arc::new(PrivateKey::generate(KeyAlgorithm::Ed25519));
    let origin = plain.evidence_origin().await.expect("origin");
    append(&plain, "run-a", 3).await.expect("append");
    plain
        .checkpoint(key.as_ref(), &origin, &origin)
        .await
        .expect("checkpoint");
    append(&plain, "run-a", 2).await.expect("append");
    let store = reseal(plain, &key, &origin);
    append(&store, "run-a", 1)
        .await
        .expect("the first sealed append");
    let seals = store.seals().await.expect("seals");
    assert_eq!(seals.len(), 1);
    assert_eq!((seals[0].first, seals[0].size), (7, 7));
    assert_eq!(seals[0].previous, "-");
    assert_eq!(seals_cover(&store, &key, &origin).await, 7);
}
