//! `relo key generate --encrypt` and an evidence key encrypted with a passphrase:
//! `RELO_KEY_PASSWORD` unlocks it, and without it (and no terminal) commands fail with a
//! clear error naming the variable instead of waiting for input.

use std::process::{Command, Output};

use relo_trust::PrivateKey;

use super::support::{TestHome, describe, round_records};

const PASSWORD: &str = super::support::EVIDENCE_PASSPHRASE;

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Runs `relo` against `home` with standard input not a terminal, and
/// `RELO_KEY_PASSWORD` set to `password` or unset.
fn relo(home: &TestHome, password: Option<&str>, args: &[&str]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_relo"));
    command
        .args(args)
        .current_dir(home.outside.path())
        .env("RELO_HOME", home.path())
        .env("RELO_DATABASE_URL", &home.url)
        .env("XDG_STATE_HOME", home.state.path())
        .env_remove("RELO_KEY_PASSWORD");
    if let Some(password) = password {
        command.env("RELO_KEY_PASSWORD", password);
    }
    command.output().expect("relo runs")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_encrypted_evidence_key_signs_checkpoints_with_relo_key_password() {
    let home = TestHome::sqlite();
    let keys = home.path().join("keys");
    for file in ["evidence.key", "evidence.pub"] {
        std::fs::remove_file(keys.join(file)).expect("remove the plain key");
    }
    let stem = keys.join("evidence").display().to_string();
    let generate = ["key", "generate", "--type", "ed25519", "--out", &stem];

    // Without RELO_KEY_PASSWORD and without a terminal, --encrypt fails and writes nothing.
    let mut encrypt = generate.to_vec();
    encrypt.push("--encrypt");
    let out = relo(&home, None, &encrypt);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    assert!(
        stderr(&out).contains("RELO_KEY_PASSWORD"),
        "{}",
        describe(&out)
    );
    assert!(!keys.join("evidence.key").exists());

    // With it, the private key is written encrypted in cosign's format.
    encrypt.push("--json");
    let out = relo(&home, Some(PASSWORD), &encrypt);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(json["encrypted"], true);
    let pem = std::fs::read_to_string(keys.join("evidence.key")).expect("private key");
    assert!(
        pem.starts_with(&format!(
            "-----BEGIN {}-----\n",
            relo_trust::ENCRYPTED_KEY_PEM_LABEL
        )),
        "{pem}"
    );
    let key = PrivateKey::from_encrypted_pem(&pem, PASSWORD.as_bytes()).expect("decrypts");
    assert_eq!(json["key_id"], key.key_id());

    // A checkpoint signed with it verifies.
    home.write(round_records(0)).await;
    let out = relo(&home, Some(PASSWORD), &["evidence", "checkpoint"]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let out = relo(&home, None, &["evidence", "verify"]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));

    // Without the variable and no terminal: a clear error naming it, never a prompt.
    home.write(round_records(1)).await;
    let out = relo(&home, None, &["evidence", "checkpoint"]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let text = stderr(&out);
    assert!(
        text.contains("needs a passphrase") && text.contains("RELO_KEY_PASSWORD"),
        "{}",
        describe(&out)
    );
    assert!(text.contains("evidence.key"), "{}", describe(&out));

    // A wrong passphrase says so, naming the file.
    let out = relo(&home, Some("not it"), &["evidence", "checkpoint"]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    assert!(
        stderr(&out).contains("wrong passphrase"),
        "{}",
        describe(&out)
    );
    assert!(!stderr(&out).contains("panicked"), "{}", describe(&out));

    // The right one again: the second checkpoint covers the second round.
    let out = relo(&home, Some(PASSWORD), &["evidence", "checkpoint"]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let out = relo(&home, None, &["evidence", "verify"]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
}
