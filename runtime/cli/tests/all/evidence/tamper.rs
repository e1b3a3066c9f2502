//! Tampering with the database behind relo-store's back, on both backends: the guard
//! is bypassed first (SQLite: the triggers dropped; PostgreSQL:
//! `session_replication_role = replica`), then `relo evidence verify` must exit 1 and
//! name the kind.

use relo_evidence::{Checkpoint, SignedNote};
use relo_store::{EntryDraft, EntryToHash, GENESIS_PREV_HASH, entry_hash};
use relo_trust::{KeyAlgorithm, PrivateKey, Signer};

use super::support::{
    Backend, TestHome, assert_tampering, backend_tests, describe, round_records, stdout,
};

async fn an_untouched_log_verifies(home: TestHome) {
    let trusted = home.fill().await;
    let out = home.verify(&["--trusted-checkpoint", &trusted.display().to_string()]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let text = stdout(&out);
    // 30 records and the four checkpoints' `checkpoint.cut` entries; the last is after
    // the checkpoint it records.
    assert!(text.contains("entries: 34 in 4 scopes"), "{text}");
    assert!(text.contains("checkpoints verified: 4"), "{text}");
    assert!(text.contains("uncovered tail: 1"), "{text}");
    assert!(
        text.contains("consistent with the trusted checkpoint of 33 entries"),
        "{text}"
    );
}

async fn a_changed_body_is_named(home: TestHome) {
    home.fill().await;
    let mut raw = home.tamperer().await;
    // Entry 13: the second record of round 1, after round 0 and its `checkpoint.cut`.
    raw.execute(r#"UPDATE evidence_entries SET body = '{"name":"nothing-to-see"}' WHERE seq = 13"#)
        .await;
    raw.close().await;
    let finding = assert_tampering(&home.verify(&["--json"]), "changed");
    assert_eq!(finding["seq"], 13);
    assert_eq!(finding["scope"], "run-b");
    // The text form names it too.
    let text = stdout(&home.verify(&[]));
    assert!(text.starts_with("TAMPERED: changed"), "{text}");
    assert!(
        text.contains("first bad entry: seq 13, scope run-b, scope_seq 4"),
        "{text}"
    );
}

async fn a_deleted_middle_entry_is_named(home: TestHome) {
    home.fill().await;
    let mut raw = home.tamperer().await;
    raw.execute("DELETE FROM evidence_entries WHERE seq = 15")
        .await;
    raw.close().await;
    let finding = assert_tampering(&home.verify(&["--json"]), "deleted");
    assert_eq!(finding["seq"], 15, "{finding}");
}

async fn swapped_entries_are_named(home: TestHome) {
    home.fill().await;
    let mut raw = home.tamperer().await;
    // Entries 12 (run-b) and 13 (run-c) change places in the global order.
    raw.execute(
        "UPDATE evidence_entries SET seq = 1000 WHERE seq = 12;
         UPDATE evidence_entries SET seq = 12 WHERE seq = 13;
         UPDATE evidence_entries SET seq = 13 WHERE seq = 1000",
    )
    .await;
    raw.close().await;
    let finding = assert_tampering(&home.verify(&["--json"]), "reordered");
    assert_eq!(finding["seq"], 12, "{finding}");
}

async fn a_truncated_tail_is_named(home: TestHome) {
    home.fill().await;
    let mut raw = home.tamperer().await;
    raw.execute("DELETE FROM evidence_entries WHERE seq > 27")
        .await;
    raw.close().await;
    assert_tampering(&home.verify(&["--json"]), "truncated");
}

async fn a_forged_entry_is_named(home: TestHome) {
    home.fill().await;
    let mut raw = home.tamperer().await;
    // Make room after entry 20 and put a well-formed entry there, hashed the way relo
    // hashes: only the Merkle tree and the checkpoints can tell.
    raw.execute(
        "UPDATE evidence_entries SET seq = seq + 1000 WHERE seq > 20;
         UPDATE evidence_entries SET seq = seq - 999 WHERE seq > 1000",
    )
    .await;
    let draft = EntryDraft::from_record(&round_records(1)[0]);
    let forged = EntryToHash {
        seq: 21,
        scope: "run-forged",
        scope_seq: 1,
        step_id: None,
        kind: &draft.kind,
        time: &draft.time,
        body: &draft.body,
        prev_hash: GENESIS_PREV_HASH,
    };
    let hash = hex::encode(entry_hash(&forged).expect("hash"));
    raw.insert_entry(
        21,
        "run-forged",
        1,
        &draft.kind,
        &draft.time,
        &draft.body,
        GENESIS_PREV_HASH,
        &hash,
    )
    .await;
    raw.close().await;
    let finding = assert_tampering(&home.verify(&["--json"]), "inserted");
    assert_eq!(finding["seq"], 21, "{finding}");
}

async fn a_checkpoint_signed_by_another_key_is_named(home: TestHome) {
    home.fill().await;
    let mut raw = home.tamperer().await;
    let note = raw
        .text("SELECT note FROM checkpoints ORDER BY id DESC LIMIT 1")
        .await;
    let id: i64 = raw
        .text("SELECT CAST(MAX(id) AS TEXT) FROM checkpoints")
        .await
        .parse()
        .expect("id");
    // The same origin, size and root, signed by a key that is not the evidence key.
    let parsed = SignedNote::parse(note.as_bytes()).expect("note");
    let checkpoint = Checkpoint::parse_body(&parsed.body).expect("checkpoint");
    let other = PrivateKey::generate(KeyAlgorithm::Ed25519);
    let forged = checkpoint
        .sign(&[(checkpoint.origin.as_str(), &other as &dyn Signer)])
        .expect("sign");
    raw.set_checkpoint_note(id, &forged, other.key_id()).await;
    raw.close().await;
    let finding = assert_tampering(&home.verify(&["--json"]), "bad-signature");
    assert_eq!(finding["checkpoint_size"], 33, "{finding}");
}

async fn a_rolled_back_database_is_named(home: TestHome) {
    // An older copy of the database: taken after the first round.
    home.write(round_records(0)).await;
    home.relo_ok(&["evidence", "checkpoint"]);
    let copy = home.outside("relo-old.db");
    if home.backend == Backend::Sqlite {
        let mut raw = home.tamperer().await;
        raw.execute(&format!("VACUUM INTO '{}'", copy.display()))
            .await;
        raw.close().await;
    }
    for round in 1..3 {
        home.write(round_records(round)).await;
        home.relo_ok(&["evidence", "checkpoint"]);
    }
    let trusted = home.outside("trusted-checkpoint.txt");
    let trusted = trusted.display().to_string();
    home.relo_ok(&["evidence", "checkpoint", "--save", &trusted]);

    match home.backend {
        Backend::Sqlite => {
            for suffix in ["", "-wal", "-shm"] {
                let _ = std::fs::remove_file(home.path().join(format!("relo.db{suffix}")));
            }
            let restored = home.path().join("relo.db");
            std::fs::copy(&copy, &restored).expect("restore the old copy");
            // The store refuses a database file others can read; the copy must be 0600.
            std::fs::set_permissions(
                &restored,
                std::os::unix::fs::PermissionsExt::from_mode(0o600),
            )
            .expect("chmod 600 the restored copy");
        }
        Backend::Postgres => {
            // No file to copy: remove what came after the first round instead.
            let mut raw = home.tamperer().await;
            raw.execute(
                "DELETE FROM evidence_entries WHERE seq > 10;
                 DELETE FROM evidence_seals WHERE size > 10;
                 DELETE FROM checkpoints WHERE size > 10",
            )
            .await;
            raw.close().await;
        }
    }
    // On its own the old copy is a consistent log...
    let elsewhere = tempfile::tempdir().expect("a state folder without the witness");
    let out = home
        .command(&["evidence", "verify"])
        .env("XDG_STATE_HOME", elsewhere.path())
        .output()
        .expect("relo runs");
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    // ...which the witness shows to be rolled back (its checkpoint of 21 entries is the
    // first the old copy lacks)...
    let finding = assert_tampering(&home.verify(&["--json"]), "rolled-back");
    assert_eq!(finding["checkpoint_size"], 21, "{finding}");
    // ...and so does the checkpoint saved outside the home.
    let finding = assert_tampering(
        &home.verify(&["--json", "--trusted-checkpoint", &trusted]),
        "rolled-back",
    );
    assert_eq!(finding["checkpoint_size"], 33, "{finding}");
}

async fn no_checkpoint_is_signed_over_a_tampered_log(home: TestHome) {
    home.fill().await;
    let checkpoints = || async {
        home.store()
            .await
            .checkpoints()
            .await
            .expect("checkpoints")
            .len()
    };
    let before = checkpoints().await;
    let mut raw = home.tamperer().await;
    raw.execute(r#"UPDATE evidence_entries SET body = '{"name":"nothing-to-see"}' WHERE seq = 12"#)
        .await;
    raw.close().await;
    let trusted = home.outside("after-tampering.note");
    let out = home.relo(&[
        "evidence",
        "checkpoint",
        "--save",
        &trusted.display().to_string(),
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    assert!(
        stdout(&out).starts_with("TAMPERED: changed"),
        "{}",
        describe(&out)
    );
    assert!(
        !trusted.exists(),
        "a trusted checkpoint was written over a tampered log"
    );
    assert_eq!(
        checkpoints().await,
        before,
        "a checkpoint was signed over a tampered log"
    );
}

backend_tests!(
    no_checkpoint_is_signed_over_a_tampered_log,
    an_untouched_log_verifies,
    a_changed_body_is_named,
    a_deleted_middle_entry_is_named,
    swapped_entries_are_named,
    a_truncated_tail_is_named,
    a_forged_entry_is_named,
    a_checkpoint_signed_by_another_key_is_named,
    a_rolled_back_database_is_named,
);
