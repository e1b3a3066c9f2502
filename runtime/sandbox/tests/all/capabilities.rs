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
        .run()
        .await;
    let output = ran.output();
    assert_eq!(output["outcome"], "reveal-denied", "{output}");
    assert_eq!(output["kind"], "not-approved");
    match ran.only("secret.read") {
        EvidenceEvent::SecretRead { name } => assert_eq!(name, "forge_token"),
        other => panic!("{other:?}"),
    }
    assert_secret_denied(&ran, "reveal-not-approved");
    assert_engine_still_serves().await;
}

#[tokio::test]
pub async fn reveal_with_grant_but_no_provider_is_unavailable() {
    let ran = Step::new("reveal-without-grant")
        .input(json!({"name": "forge_token"}))
        .grant(grant_secret(true))
        .run()
        .await;
    let output = ran.output();
    assert_eq!(output["outcome"], "reveal-denied", "{output}");
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
