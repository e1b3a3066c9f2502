//! `relo key generate`, `relo evidence checkpoint / verify --run / rotate-key /
//! export`, their help, and bad input.

use relo_evidence::export::verify_evidence_statement;
use relo_evidence::{KeyRing, KeyStatus, Scope};
use relo_trust::{Envelope, PublicKey};

use super::support::{Backend, TestHome, assert_tampering, backend_tests, describe, stdout};

fn stderr(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn key_generate_writes_a_private_and_a_public_key_and_never_overwrites() {
    let dir = tempfile::tempdir().expect("dir");
    let stem = dir.path().join("keys/acme");
    let stem = stem.display().to_string();
    let run = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_relo"))
            .args(args)
            .output()
            .expect("relo runs")
    };
    let out = run(&[
        "key", "generate", "--type", "p256", "--out", &stem, "--json",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(json["algorithm"], "p256");
    let public = PublicKey::from_pem_file(format!("{stem}.pub")).expect("public key");
    assert_eq!(json["key_id"], public.key_id());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(format!("{stem}.key"))
            .expect("private key")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let again = run(&["key", "generate", "--type", "ed25519", "--out", &stem]);
    assert_eq!(again.status.code(), Some(1), "{}", describe(&again));
    assert!(stderr(&again).contains("exists"), "{}", describe(&again));
    let bad = run(&["key", "generate", "--type", "rsa", "--out", &stem]);
    assert_eq!(bad.status.code(), Some(2), "{}", describe(&bad));
}

#[test]
fn every_command_has_help_with_an_example_and_exit_codes() {
    for command in [
        &["key", "generate"][..],
        &["evidence", "verify"],
        &["evidence", "checkpoint"],
        &["evidence", "rotate-key"],
        &["evidence", "export"],
    ] {
        let mut args = command.to_vec();
        args.push("--help");
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_relo"))
            .args(&args)
            .output()
            .expect("relo runs");
        assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
        let text = stdout(&out);
        assert!(text.contains("Examples:"), "{args:?}: {text}");
        assert!(text.contains("Exit codes:"), "{args:?}: {text}");
    }
}

async fn one_run_verifies_and_an_unknown_run_is_an_error(home: TestHome) {
    home.fill().await;
    let out = home.verify(&["--run", "run-b"]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    assert!(
        stdout(&out).contains("ok: run run-b verifies"),
        "{}",
        describe(&out)
    );
    let out = home.verify(&["--run", "run-nope"]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    assert!(
        stderr(&out).contains("there is no evidence for run `run-nope`"),
        "{}",
        describe(&out)
    );
    // A changed entry of the run is found through its chain and inclusion proof.
    let mut raw = home.tamperer().await;
    // Entry 13: run-b's first of round 1, after round 0 and its `checkpoint.cut`.
    raw.execute(r#"UPDATE evidence_entries SET body = '{"name":"x"}' WHERE seq = 13"#)
        .await;
    raw.close().await;
    let finding = assert_tampering(&home.verify(&["--json", "--run", "run-b"]), "changed");
    assert_eq!(finding["seq"], 13);
    // Another run's chain is intact.
    let out = home.verify(&["--run", "run-a"]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
}

async fn checkpoints_signed_before_a_rotation_keep_verifying(home: TestHome) {
    let trusted = home.fill().await.display().to_string();
    let old_public =
        PublicKey::from_pem_file(home.path().join("keys/evidence.pub")).expect("old public key");
    let out = home.relo_ok(&["evidence", "rotate-key", "--json"]);
    let rotated: serde_json::Value = serde_json::from_str(&out).expect("json");
    assert_eq!(rotated["retired_key_id"], old_public.key_id());
    // 30 records and the four `checkpoint.cut` entries of `fill`.
    assert_eq!(rotated["retired_last_size"], 34);
    let new_public =
        PublicKey::from_pem_file(home.path().join("keys/evidence.pub")).expect("new public key");
    assert_ne!(new_public, old_public);
    assert_eq!(rotated["new_key_id"], new_public.key_id());

    // The rotation is recorded in the control scope and covered by the new key.
    let store = home.store().await;
    let control = store
        .scope_entries(&Scope::Control.to_string(), 0, 1000)
        .await
        .expect("control");
    // The rotation, then the `checkpoint.cut` of the new key's first checkpoint.
    let kinds: Vec<&str> = control.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(kinds[kinds.len() - 2..], ["key.rotated", "checkpoint.cut"]);
    let last = &control[control.len() - 2];
    assert!(last.body.contains(old_public.key_id()), "{}", last.body);
    store.close().await;

    // Old checkpoints (and the trusted one, signed by the old key) keep verifying.
    let out = home.verify(&["--trusted-checkpoint", &trusted]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let text = stdout(&out);
    assert!(text.contains("entries: 37 in 4 scopes"), "{text}");
    assert!(text.contains("checkpoints verified: 6"), "{text}");
    home.relo_ok(&["evidence", "checkpoint"]);
    let out = home.verify(&["--trusted-checkpoint", &trusted]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));

    // It is the retired key that verifies them: without it they are bad signatures.
    std::fs::remove_file(home.path().join("keys/evidence-retired/index.json")).expect("rm");
    assert_tampering(&home.verify(&["--json"]), "bad-signature");
}

async fn an_exported_run_verifies_on_its_own(home: TestHome) {
    home.fill().await;
    // Entries of run-a after the last checkpoint: the export cuts one to cover them.
    home.write(super::support::round_records(3)).await;
    let packet = home.outside("run-a.json");
    let out = home.relo(&[
        "evidence",
        "export",
        "--run",
        "run-a",
        "--out",
        &packet.display().to_string(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    assert!(
        stderr(&out).contains("cut checkpoint"),
        "{}",
        describe(&out)
    );

    let key = PublicKey::from_pem_file(home.path().join("keys/evidence.pub")).expect("key");
    let store = home.store().await;
    let origin = store.evidence_origin().await.expect("origin");
    store.close().await;
    let mut ring = KeyRing::new();
    ring.add(&origin, key.clone(), KeyStatus::Active)
        .expect("ring");

    let envelope = Envelope::from_json(&std::fs::read(&packet).expect("packet")).expect("dsse");
    let verified = envelope
        .verify_statement(std::slice::from_ref(&key), 1)
        .expect("signed by the evidence key");
    let report =
        verify_evidence_statement(&verified.statement, &ring, &origin).expect("evidence verifies");
    assert_eq!(report.run_id, "run-a");
    assert_eq!(report.entries, 12, "3 per round, 4 rounds");
    // 40 records and the four `checkpoint.cut` entries of `fill`.
    assert_eq!(report.checkpoint.size, 44);

    let provenance = home.outside("run-a.provenance.json");
    let envelope =
        Envelope::from_json(&std::fs::read(&provenance).expect("provenance")).expect("dsse");
    let verified = envelope.verify_statement(&[key], 1).expect("signed");
    assert_eq!(
        verified.statement.predicate_type,
        "https://slsa.dev/provenance/v1"
    );

    let out = home.relo(&["evidence", "export", "--run", "run-nope"]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    assert!(stderr(&out).contains("no evidence for run `run-nope`"));
}

backend_tests!(
    one_run_verifies_and_an_unknown_run_is_an_error,
    checkpoints_signed_before_a_rotation_keep_verifying,
    an_exported_run_verifies_on_its_own,
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_a_clear_error_never_a_panic() {
    let home = TestHome::sqlite();
    home.fill().await;

    // A trusted checkpoint that is not a signed note.
    let junk = home.outside("junk.txt");
    std::fs::write(&junk, "not a checkpoint\n").expect("write");
    let out = home.verify(&["--trusted-checkpoint", &junk.display().to_string()]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    assert!(
        stderr(&out).contains("is not a trusted checkpoint"),
        "{}",
        describe(&out)
    );

    // A missing trusted checkpoint file.
    let out = home.verify(&["--trusted-checkpoint", "/nonexistent/checkpoint"]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    assert!(stderr(&out).contains("cannot read the trusted checkpoint"));

    // A trusted checkpoint inside the home is refused.
    let inside = home.path().join("cp.txt").display().to_string();
    let out = home.relo(&["evidence", "checkpoint", "--save", &inside]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    assert!(
        stderr(&out).contains("inside the relo home"),
        "{}",
        describe(&out)
    );

    // Bad usage.
    let out = home.relo(&["evidence", "verify", "--no-such-flag"]);
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));

    // No evidence key.
    std::fs::remove_file(home.path().join("keys/evidence.key")).expect("rm");
    let out = home.relo(&["evidence", "checkpoint"]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    assert!(
        stderr(&out).contains("relo key generate"),
        "{}",
        describe(&out)
    );

    // A corrupt database file.
    for suffix in ["-wal", "-shm"] {
        let _ = std::fs::remove_file(home.path().join(format!("relo.db{suffix}")));
    }
    std::fs::write(home.path().join("relo.db"), vec![0x5a; 8192]).expect("corrupt");
    let out = home.verify(&[]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    assert!(
        stderr(&out).contains("cannot open the store"),
        "{}",
        describe(&out)
    );
    assert!(!stderr(&out).contains("panicked"), "{}", describe(&out));
    assert_eq!(home.backend, Backend::Sqlite);
}
