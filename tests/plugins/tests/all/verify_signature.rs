//! `relo/verify-signature`: the signatures checked inside the sandbox, and the chart
//! checked against what was signed.

use serde_json::{Value, json};

use crate::sign_artifact::sign;
use crate::support::{Demo, IMAGE_DIGEST, SigningKey, Step, Workspace};

fn verify(workspace: &Workspace, key: &SigningKey, signatures: &Value) -> Step {
    Step::new("verify-signature")
        .input(json!({
            "public_key": key.public().to_pem(),
            "signatures": signatures,
            "image_digest": IMAGE_DIGEST,
            "chart": "deploy/chart",
        }))
        .workspace(workspace)
}

#[tokio::test]
async fn what_sign_artifact_signed_verifies() {
    let demo = Demo::start().await;
    let workspace = Workspace::demo();
    let key = SigningKey::generate();
    let signed = sign(&demo, &workspace, &key).await;
    let ran = verify(&workspace, &key, &signed["signatures"])
        .run(&demo)
        .await;
    assert_eq!(
        ran.output(),
        json!({
            "verified": ["image", "chart"],
            "key_id": key.public().key_id(),
            "image_digest": IMAGE_DIGEST,
            "chart_digest": signed["signatures"]["chart"]["digest"],
        })
    );
    let granted = ran.granted();
    assert!(granted["egress"].as_array().is_some_and(Vec::is_empty));
    assert_eq!(granted["signer_keys"], json!([]));
    assert_eq!(granted["workspace"], "read-only");
}

#[tokio::test]
async fn another_key_does_not_verify() {
    let demo = Demo::start().await;
    let workspace = Workspace::demo();
    let key = SigningKey::generate();
    let other = SigningKey::generate();
    let signed = sign(&demo, &workspace, &key).await;
    let ran = verify(&workspace, &other, &signed["signatures"])
        .run(&demo)
        .await;
    ran.assert_error(
        "failed",
        &[
            &format!("the image signature over {IMAGE_DIGEST} does not verify"),
            other.public().key_id(),
        ],
    );
}

#[tokio::test]
async fn a_chart_changed_after_signing_fails_naming_the_files() {
    let demo = Demo::start().await;
    let workspace = Workspace::demo();
    let key = SigningKey::generate();
    let signed = sign(&demo, &workspace, &key).await;
    let template = "deploy/chart/templates/deployment.yaml";
    let changed = workspace
        .read(template)
        .replace("replicas:", "replicas: 20 #");
    workspace.write(template, &changed);
    workspace.write("deploy/chart/templates/sidecar.yaml", "kind: Pod\n");
    let ran = verify(&workspace, &key, &signed["signatures"])
        .run(&demo)
        .await;
    ran.assert_error(
        "failed",
        &[
            "the chart `deploy/chart` changed after it was signed",
            "(modified `templates/deployment.yaml`, added `templates/sidecar.yaml`)",
            &format!(
                "signed {}",
                signed["signatures"]["chart"]["digest"]
                    .as_str()
                    .expect("text")
            ),
        ],
    );
}

#[tokio::test]
async fn another_image_digest_fails() {
    let demo = Demo::start().await;
    let workspace = Workspace::demo();
    let key = SigningKey::generate();
    let signed = sign(&demo, &workspace, &key).await;
    let other = format!("sha256:{}", "1".repeat(64));
    let ran = Step::new("verify-signature")
        .input(json!({
            "public_key": key.public().to_pem(),
            "signatures": signed["signatures"],
            "image_digest": other,
        }))
        .workspace(&workspace)
        .run(&demo)
        .await;
    ran.assert_error(
        "failed",
        &[&format!(
            "the signed image is {IMAGE_DIGEST}, not `image_digest` {other}"
        )],
    );
}

#[tokio::test]
async fn a_listing_that_does_not_hash_to_the_signed_digest_fails() {
    let demo = Demo::start().await;
    let workspace = Workspace::demo();
    let key = SigningKey::generate();
    let mut signatures = sign(&demo, &workspace, &key).await["signatures"].clone();
    let listing = signatures["chart"]["listing"]
        .as_str()
        .expect("text")
        .to_owned();
    let (hash, _) = listing.split_once("  ").expect("a listing line");
    signatures["chart"]["listing"] = json!(listing.replacen(hash, &"0".repeat(64), 1));
    let ran = verify(&workspace, &key, &signatures).run(&demo).await;
    ran.assert_error(
        "failed",
        &[
            "`signatures.chart.listing` hashes to",
            "not to the signed chart digest",
        ],
    );
}

#[tokio::test]
async fn misuse_is_invalid_input_naming_the_field() {
    let demo = Demo::start().await;
    let workspace = Workspace::demo();
    let key = SigningKey::generate();
    let signatures = sign(&demo, &workspace, &key).await["signatures"].clone();
    let mut bad_base64 = signatures.clone();
    bad_base64["image"]["signature"] = json!("not base64!");
    let mut not_der = signatures.clone();
    not_der["chart"]["signature"] = json!("AAAA");
    let mut no_listing = signatures.clone();
    no_listing["chart"]
        .as_object_mut()
        .expect("object")
        .remove("listing");
    let ed25519 = relo_trust::PrivateKey::generate(relo_trust::KeyAlgorithm::Ed25519)
        .public_key()
        .to_pem();
    for (public_key, signatures, expected) in [
        (
            "not a key".to_owned(),
            &signatures,
            "`public_key` is not an ECDSA P-256 public key PEM",
        ),
        (
            ed25519,
            &signatures,
            "`public_key` is not an ECDSA P-256 public key PEM",
        ),
        (
            key.public().to_pem(),
            &bad_base64,
            "`signatures.image.signature` is not base64",
        ),
        (
            key.public().to_pem(),
            &not_der,
            "`signatures.chart.signature` is not a DER ECDSA P-256 signature",
        ),
        (
            key.public().to_pem(),
            &no_listing,
            "missing field `listing`",
        ),
    ] {
        let ran = Step::new("verify-signature")
            .input(json!({
                "public_key": public_key,
                "signatures": signatures,
                "image_digest": IMAGE_DIGEST,
            }))
            .workspace(&workspace)
            .run(&demo)
            .await;
        ran.assert_error("invalid-input", &[expected]);
    }
}
