//! relo's own capabilities (secrets, reveal, signer) and the environment: denied by
//! default with a WIT error value naming what was refused, and recorded.

use relo_evidence::EvidenceEvent;
use relo_policy::{Grant, SecretGrant};
use serde_json::{Value, json};

use crate::support::{Ran, Step, assert_engine_still_serves};

fn assert_secret_denied(ran: &Ran, code: &str) {
    match ran.only("secret.denied") {
        EvidenceEvent::SecretDenied {
            code: recorded,
            name,
            ..
        } => {
            assert_eq!(recorded, code);
            assert_eq!(name, "forge_token");
        }
        other => panic!("{other:?}"),
    }
}

fn grant_secret(reveal: bool) -> Grant {
    let mut grant = Grant::deny_all();
    grant.declared_secrets.insert("forge_token".into());
    grant.secrets.insert(
        "forge_token".into(),
        SecretGrant {
            inject: Vec::new(),
            reveal,
        },
    );
    grant
}

#[tokio::test]
pub async fn echo() {
    let ran = Step::new("echo")
        .input(json!({"hello": ["relo", 1]}))
        .run()
        .await;
    let output = ran.output();
    assert_eq!(output["echo"], json!({"hello": ["relo", 1]}));
    assert_eq!(output["run_id"], "run-test");
    assert_eq!(output["step_id"], "echo");
    assert_eq!(output["attempt"], 1);
    ran.assert_bracketed("succeeded");
}

#[tokio::test]
pub async fn secrets_undeclared() {
    let ran = Step::new("secrets-undeclared").run().await;
    let output = ran.output();
    assert_eq!(output["outcome"], "denied");
    assert_eq!(output["kind"], "not-declared");
    assert_secret_denied(&ran, "secret-not-declared");
    assert_engine_still_serves().await;
}

#[tokio::test]
pub async fn every_denied_request_is_recorded() {
    let ran = Step::new("secrets-undeclared")
        .input(json!({"repeat": 25}))
        .run()
        .await;
    assert_eq!(ran.output()["outcome"], "denied");
    assert_eq!(ran.events("secret.denied").len(), 25);
}

#[tokio::test]
pub async fn a_declared_but_unapproved_secret_is_not_approved() {
    let mut grant = Grant::deny_all();
    grant.declared_secrets.insert("forge_token".into());
    let ran = Step::new("secrets-undeclared").grant(grant).run().await;
    assert_eq!(ran.output()["kind"], "not-approved");
    assert_secret_denied(&ran, "secret-not-approved");
}

#[tokio::test]
pub async fn reveal_without_grant() {
    let ran = Step::new("reveal-without-grant")
        .input(json!({"name": "forge_token"}))
        .grant(grant_secret(false))
        .secrets(&[("forge_token", "a value")])
        .run()
        .await;
    let output = ran.output();
    assert_eq!(output["outcome"], "reveal-denied", "{output}");
    assert_eq!(output["kind"], "not-approved");
    match ran.only("secret.read") {
        EvidenceEvent::SecretRead { name, .. } => assert_eq!(name, "forge_token"),
        other => panic!("{other:?}"),
    }
    assert_secret_denied(&ran, "reveal-not-approved");
    assert_engine_still_serves().await;
}

#[tokio::test]
pub async fn a_granted_secret_without_a_provider_is_unavailable() {
    let ran = Step::new("reveal-without-grant")
        .input(json!({"name": "forge_token"}))
        .grant(grant_secret(true))
        .run()
        .await;
    let output = ran.output();
    assert_eq!(output["outcome"], "get-denied", "{output}");
    assert_eq!(output["kind"], "unavailable");
    assert_secret_denied(&ran, "provider-unavailable");
}

#[tokio::test]
pub async fn signer_not_granted() {
    let ran = Step::new("signer-not-granted").run().await;
    let output = ran.output();
    assert_eq!(output["outcome"], "denied");
    assert_eq!(output["kind"], "not-granted");
    match ran.only("signer.denied") {
        EvidenceEvent::SignerDenied {
            key, digest, code, ..
        } => {
            assert_eq!(key, "release");
            assert_eq!(code, "signer-key-not-granted");
            assert_eq!(digest.len(), 64);
        }
        other => panic!("{other:?}"),
    }
    assert_engine_still_serves().await;
}

fn granted(ran: &Ran) -> Value {
    match ran.only("step.started") {
        EvidenceEvent::StepStarted { grant, .. } => grant.clone(),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
pub async fn env_undeclared() {
    let ran = Step::new("env-undeclared").run().await;
    assert_eq!(
        ran.output()["vars"],
        json!({}),
        "the step sees no host environment"
    );
    assert_eq!(granted(&ran)["env"], json!([]));
    assert_engine_still_serves().await;
}

#[tokio::test]
pub async fn granted_env_is_exactly_what_the_step_sees() {
    let mut grant = Grant::deny_all();
    grant.env.insert("LOG_FORMAT".into(), "json".into());
    let ran = Step::new("env-undeclared").grant(grant).run().await;
    assert_eq!(ran.output()["vars"], json!({"LOG_FORMAT": "json"}));
    assert_eq!(granted(&ran)["env"], json!(["LOG_FORMAT"]));
    assert!(
        !ran.evidence_text().contains("\"json\""),
        "env values stay out of the evidence"
    );
}

fn grant_signer() -> Grant {
    let mut grant = Grant::deny_all();
    grant.signer_keys.insert("release".into());
    grant
}

/// A signer whose backend is down (a Vault Transit key with Vault unreachable).
struct Unreachable(relo_trust::PublicKey);

impl relo_trust::Signer for Unreachable {
    fn public_key(&self) -> &relo_trust::PublicKey {
        &self.0
    }

    fn sign(&self, _: &[u8]) -> Result<Vec<u8>, relo_trust::TrustError> {
        Err(self.down())
    }

    fn sign_prehashed_sha256(&self, _: &[u8; 32]) -> Result<Vec<u8>, relo_trust::TrustError> {
        Err(self.down())
    }
}

impl Unreachable {
    fn down(&self) -> relo_trust::TrustError {
        relo_trust::TrustError::Signing {
            key_id: self.0.key_id().to_owned(),
            reason: "Vault at 127.0.0.1:1 refused the connection".into(),
        }
    }
}

#[tokio::test]
pub async fn a_granted_key_signs_the_digest_and_openssl_verifies_it_against_the_artifact() {
    use base64ct::{Base64, Encoding as _};
    let key = relo_trust::PrivateKey::generate(relo_trust::KeyAlgorithm::EcdsaP256);
    let public = key.public_key().clone();
    let ran = Step::new("signer-not-granted")
        .grant(grant_signer())
        .signer("release", std::sync::Arc::new(key))
        .run()
        .await;
    let output = ran.output();
    assert_eq!(output["outcome"], "signed", "{output}");
    let signature = Base64::decode_vec(output["signature"].as_str().unwrap()).unwrap();
    // The step signed the SHA-256 of the artifact `relo`: the signature verifies
    // against the artifact itself.
    public.verify(b"relo", &signature).unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("artifact"), b"relo").unwrap();
    std::fs::write(dir.path().join("sig"), &signature).unwrap();
    std::fs::write(dir.path().join("pub.pem"), public.to_pem()).unwrap();
    let openssl = std::process::Command::new("openssl")
        .args([
            "dgst",
            "-sha256",
            "-verify",
            "pub.pem",
            "-signature",
            "sig",
            "artifact",
        ])
        .current_dir(dir.path())
        .output()
        .expect("openssl runs (Debian `openssl`)");
    assert!(openssl.status.success(), "{openssl:?}");
    assert_eq!(
        String::from_utf8_lossy(&openssl.stdout).trim(),
        "Verified OK"
    );
    match ran.only("signer.signed") {
        EvidenceEvent::SignerSigned { key, digest } => {
            assert_eq!(key, "release");
            assert_eq!(
                digest,
                "3fd4fad2a628fb1374f8bbfe48e60e60747a1ff6d7ef5354677cd5a469b1d6b3"
            );
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
pub async fn a_granted_key_whose_backend_is_down_is_unavailable() {
    let public = relo_trust::PrivateKey::generate(relo_trust::KeyAlgorithm::EcdsaP256)
        .public_key()
        .clone();
    let down = Step::new("signer-not-granted")
        .grant(grant_signer())
        .signer("release", std::sync::Arc::new(Unreachable(public)))
        .run()
        .await;
    assert_eq!(down.output()["kind"], "unavailable", "{}", down.output());
    let unbound = Step::new("signer-not-granted")
        .grant(grant_signer())
        .run()
        .await;
    assert_eq!(unbound.output()["kind"], "unavailable");
    for ran in [&down, &unbound] {
        match ran.only("signer.denied") {
            EvidenceEvent::SignerDenied { code, .. } => assert_eq!(code, "signer-unavailable"),
            other => panic!("{other:?}"),
        }
        assert!(ran.events("signer.signed").is_empty());
    }
    assert_engine_still_serves().await;
}
