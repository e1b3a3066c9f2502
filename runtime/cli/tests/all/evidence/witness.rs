//! The evidence witness: every checkpoint is appended to a file outside the database
//! and the home, and `relo evidence verify` checks the log against it, so a database
//! writer who deletes the checkpoints and seals and rewrites or cuts the log is caught
//! without a trusted checkpoint file.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use relo_evidence::{EvidenceEntry, GENESIS_PREV_HASH, Witness, witness_file_name};
use relo_store::{EntryToHash, entry_hash};

use super::support::{TestHome, assert_tampering, backend_tests, describe, round_records, stdout};

/// The home's default witness file, under its state folder.
async fn default_witness(home: &TestHome) -> Witness {
    let origin = home.store().await.evidence_origin().await.expect("origin");
    Witness::new(
        home.state
            .path()
            .join("relo/witnesses")
            .join(witness_file_name(&origin)),
    )
}

/// The notes of a witness file, in order.
fn witnessed_notes(witness: &Witness) -> Vec<String> {
    witness
        .read()
        .expect("the witness parses")
        .expect("the witness exists")
        .into_iter()
        .map(|record| record.note)
        .collect()
}

/// Every entry as stored.
async fn entries(home: &TestHome) -> Vec<EvidenceEntry> {
    let store = home.store().await;
    let entries = store
        .all_entries()
        .await
        .expect("entries")
        .iter()
        .map(|e| e.to_evidence_entry())
        .collect();
    store.close().await;
    entries
}

async fn checkpoint_notes(home: &TestHome) -> Vec<String> {
    let store = home.store().await;
    let notes = store
        .checkpoints()
        .await
        .expect("checkpoints")
        .into_iter()
        .map(|c| c.note)
        .collect();
    store.close().await;
    notes
}

async fn checkpoints_are_appended_to_the_witness(home: TestHome) {
    home.fill().await;
    let witness = default_witness(&home).await;
    assert_eq!(witnessed_notes(&witness), checkpoint_notes(&home).await);
    assert_eq!(witnessed_notes(&witness).len(), 4);
    use std::os::unix::fs::PermissionsExt as _;
    let mode = |p: &Path| std::fs::metadata(p).expect("exists").permissions().mode() & 0o777;
    assert_eq!(mode(witness.path()), 0o600);
    assert_eq!(mode(witness.path().parent().expect("folder")), 0o700);

    let out = home.verify(&[]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let expected = format!(
        "witness: {} holds 4 checkpoints; the log extends every one",
        witness.path().display()
    );
    assert!(stdout(&out).contains(&expected), "{}", describe(&out));
}

async fn a_log_rewritten_without_checkpoints_and_seals_is_forked_by_the_witness(home: TestHome) {
    home.fill().await;
    let stored = entries(&home).await;
    let mut raw = home.tamperer().await;
    raw.execute(
        "DELETE FROM checkpoints; DELETE FROM evidence_seals; DELETE FROM evidence_entries",
    )
    .await;
    // The whole log again, consistently: one body changed, the `checkpoint.cut` entries
    // left out, every entry renumbered, relinked and rehashed.
    let mut forged_one = false;
    let mut heads: HashMap<String, (u64, String)> = HashMap::new();
    let kept = stored.iter().filter(|e| e.kind != "checkpoint.cut");
    for (index, entry) in kept.enumerate() {
        let mut body = entry.body.clone();
        if entry.scope == "run-b" && !forged_one {
            body["name"] = "forged".into();
            forged_one = true;
        }
        let body = body.to_string();
        let (scope_seq, prev_hash) = heads
            .get(&entry.scope)
            .map_or((1, GENESIS_PREV_HASH.to_owned()), |(n, hash)| {
                (n + 1, hash.clone())
            });
        let seq = index as u64 + 1;
        let hash = hex::encode(
            entry_hash(&EntryToHash {
                seq,
                scope: &entry.scope,
                scope_seq,
                step_id: None,
                kind: &entry.kind,
                time: &entry.time,
                body: &body,
                prev_hash: &prev_hash,
            })
            .expect("hash"),
        );
        raw.insert_entry(
            seq as i64,
            &entry.scope,
            scope_seq as i64,
            &entry.kind,
            &entry.time,
            &body,
            &prev_hash,
            &hash,
        )
        .await;
        heads.insert(entry.scope.clone(), (scope_seq, hash));
    }
    raw.close().await;
    // relo's next write seals the forged log: without the witness it now verifies.
    home.write(round_records(3)).await;
    let elsewhere = tempfile::tempdir().expect("another state folder");
    let blind = home
        .command(&["evidence", "verify"])
        .env("XDG_STATE_HOME", elsewhere.path())
        .output()
        .expect("relo runs");
    assert_eq!(blind.status.code(), Some(0), "{}", describe(&blind));

    let finding = assert_tampering(&home.verify(&["--json"]), "forked");
    assert_eq!(finding["checkpoint_size"], 10, "{finding}");
    let message = finding["message"].as_str().expect("message");
    assert!(message.contains("witness"), "{message}");
    // Nothing is signed over it either.
    let out = home.relo(&["evidence", "checkpoint", "--json"]);
    assert_tampering(&out, "forked");
}

async fn a_rolled_back_log_without_checkpoints_and_seals_is_rolled_back(home: TestHome) {
    home.fill().await;
    let mut raw = home.tamperer().await;
    raw.execute(
        "DELETE FROM checkpoints; DELETE FROM evidence_seals; \
         DELETE FROM evidence_entries WHERE seq > 11",
    )
    .await;
    raw.close().await;
    // The witness holds checkpoints of 10, 21, 32 and 33 entries; the log has 11.
    let finding = assert_tampering(&home.verify(&["--json"]), "rolled-back");
    assert_eq!(
        (&finding["checkpoint_size"], &finding["seq"]),
        (&21.into(), &12.into()),
        "{finding}"
    );
}

async fn the_configured_witness_is_used_and_one_inside_the_home_refused(home: TestHome) {
    let file = home.outside("witnesses/evidence");
    write_config(home.path(), &file);
    home.write(round_records(0)).await;
    let out = home.relo_ok(&["evidence", "checkpoint"]);
    assert!(out.contains(&file.display().to_string()), "{out}");
    assert_eq!(
        witnessed_notes(&Witness::new(&file)),
        checkpoint_notes(&home).await
    );
    assert!(
        !home.state.path().join("relo").exists(),
        "nothing is written to the default place"
    );
    let out = home.verify(&[]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    assert!(
        stdout(&out).contains(&format!("witness: {} holds 1 checkpoints", file.display())),
        "{}",
        describe(&out)
    );

    write_config(home.path(), &home.path().join("witness"));
    let out = home.relo(&["evidence", "checkpoint"]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("inside the relo home"),
        "{}",
        describe(&out)
    );
}

fn write_config(home: &Path, witness: &Path) {
    std::fs::write(
        home.join("relo.toml"),
        format!(
            "[evidence]\nsigner = \"keys/evidence.key\"\nwitness = \"file:{}\"\n",
            witness.display()
        ),
    )
    .expect("relo.toml");
}

backend_tests!(
    checkpoints_are_appended_to_the_witness,
    a_log_rewritten_without_checkpoints_and_seals_is_forked_by_the_witness,
    a_rolled_back_log_without_checkpoints_and_seals_is_rolled_back,
    the_configured_witness_is_used_and_one_inside_the_home_refused,
);

/// `relo init` of a home under `dir` with `state` as `XDG_STATE_HOME`; returns the home
/// and the witness its relo.toml names.
fn init(dir: &Path, name: &str, state: &Path) -> (PathBuf, PathBuf) {
    let home = dir.join(name);
    let relo = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_relo"))
            .args(args)
            .env("RELO_HOME", &home)
            .env_remove("RELO_DATABASE_URL")
            .env("XDG_STATE_HOME", state)
            .output()
            .expect("relo runs")
    };
    let out = relo(&["init", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let witness = PathBuf::from(json["witness"].as_str().expect("witness"));
    let config = std::fs::read_to_string(home.join("relo.toml")).expect("relo.toml");
    assert!(
        config.contains(&format!("witness = \"file:{}\"", witness.display())),
        "{config}"
    );
    let out = relo(&["evidence", "checkpoint"]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    (home, witness)
}

#[test]
fn two_homes_on_one_machine_get_their_own_witness_files() {
    let dir = tempfile::tempdir().expect("dir");
    let state = dir.path().join("state");
    let (_, first) = init(dir.path(), "first", &state);
    let (_, second) = init(dir.path(), "second", &state);
    assert_ne!(first, second);
    for witness in [&first, &second] {
        assert!(
            witness.starts_with(state.join("relo/witnesses")),
            "{}",
            witness.display()
        );
        assert_eq!(witnessed_notes(&Witness::new(witness)).len(), 1);
    }
}
