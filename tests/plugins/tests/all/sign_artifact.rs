//! `relo/sign-artifact`: the image digest and the chart signed by an operator-held key
//! the step never sees.

use base64ct::{Base64, Encoding as _};
use relo_evidence::EvidenceEvent;
use serde_json::{Value, json};

use crate::support::{Demo, IMAGE_DIGEST, SigningKey, Step, Workspace};

/// Runs sign-artifact on `workspace` with `key`; the output.
pub async fn sign(demo: &Demo, workspace: &Workspace, key: &SigningKey) -> Value {
    Step::new("sign-artifact")
        .input(json!({"image_digest": IMAGE_DIGEST, "chart": "deploy/chart"}))
        .workspace(workspace)
        .signer(key)
        .run(demo)
        .await
        .output()
}

/// The chart listing as coreutils computes it: `sha256sum` of each file, sorted by path.
fn sha256sum_listing(chart: &std::path::Path) -> String {
    let output = std::process::Command::new("sh")
        .arg("-c")
        .arg("find . -type f | sed 's|^\\./||' | LC_ALL=C sort | xargs sha256sum")
        .current_dir(chart)
        .output()
        .expect("sh, find, sort and sha256sum run");
    assert!(output.status.success(), "{output:?}");
    String::from_utf8(output.stdout).expect("UTF-8")
}

#[tokio::test]
async fn the_image_and_the_chart_are_signed_and_the_signatures_verify_outside() {
    let demo = Demo::start().await;
    let workspace = Workspace::demo();
    let key = SigningKey::generate();
    let ran = Step::new("sign-artifact")
        .input(json!({"image_digest": IMAGE_DIGEST, "chart": "deploy/chart"}))
        .workspace(&workspace)
        .signer(&key)
        .run(&demo)
        .await;
    let output = ran.output();
    assert_eq!(output["key"], "release");
    let signatures = &output["signatures"];
    assert_eq!(signatures["image"]["digest"], IMAGE_DIGEST);

    // The listing is exactly what coreutils computes, and the chart digest is its SHA-256.
    let chart_dir = workspace.path().join("deploy/chart");
    let listing = sha256sum_listing(&chart_dir);
    assert_eq!(signatures["chart"]["listing"], json!(listing));
    let chart_hex = relo_trust::sha256_hex(listing.as_bytes());
    assert_eq!(
        signatures["chart"]["digest"],
        json!(format!("sha256:{chart_hex}"))
    );

    // The image signature verifies over the digest, prehashed.
    let decode = |value: &Value| Base64::decode_vec(value.as_str().expect("text")).expect("base64");
    let image_hex = IMAGE_DIGEST.strip_prefix("sha256:").expect("prefix");
    let mut image_digest = [0u8; 32];
    for (byte, pair) in image_digest.iter_mut().zip(image_hex.as_bytes().chunks(2)) {
        *byte = u8::from_str_radix(std::str::from_utf8(pair).expect("ascii"), 16).expect("hex");
    }
    key.public()
        .verify_prehashed_sha256(&image_digest, &decode(&signatures["image"]["signature"]))
        .expect("the image signature verifies");

    // The chart signature verifies against the listing itself with openssl, as
    // `cosign verify-blob` would.
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("listing"), &listing).expect("write");
    std::fs::write(
        dir.path().join("sig"),
        decode(&signatures["chart"]["signature"]),
    )
    .expect("write");
    std::fs::write(dir.path().join("pub.pem"), key.public().to_pem()).expect("write");
    let openssl = std::process::Command::new("openssl")
        .args([
            "dgst",
            "-sha256",
            "-verify",
            "pub.pem",
            "-signature",
            "sig",
            "listing",
        ])
        .current_dir(dir.path())
        .output()
        .expect("openssl runs");
    assert_eq!(
        String::from_utf8_lossy(&openssl.stdout).trim(),
        "Verified OK",
        "{openssl:?}"
    );

    let signed: Vec<(String, String)> = ran
        .events("signer.signed")
        .into_iter()
        .map(|event| match event {
            EvidenceEvent::SignerSigned { key, digest } => (key.clone(), digest.clone()),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        signed,
        [
            ("release".to_owned(), image_hex.to_owned()),
            ("release".to_owned(), chart_hex),
        ]
    );
    assert_eq!(ran.granted()["signer_keys"], json!(["release"]));
    assert!(
        ran.granted()["egress"]
            .as_array()
            .is_some_and(Vec::is_empty)
    );
    let pem = key.public().to_pem();
    assert!(
        !ran.everything().contains(pem.trim()),
        "no key material reaches the step"
    );
}

/// Approved without the key: the host refuses to sign, and the evidence names the key.
#[tokio::test]
async fn a_key_that_was_not_approved_is_denied() {
    let demo = Demo::start().await;
    let workspace = Workspace::demo();
    let key = SigningKey::generate();
    let ran = Step::new("sign-artifact")
        .input(json!({"image_digest": IMAGE_DIGEST}))
        .workspace(&workspace)
        .signer(&key)
        .approve(|approved| approved.signer_keys.clear())
        .run(&demo)
        .await;
    ran.assert_error("denied", &["signing key not granted"]);
    match ran.events("signer.denied").as_slice() {
        [EvidenceEvent::SignerDenied { key, code, .. }] => {
            assert_eq!(
                (key.as_str(), code.as_str()),
                ("release", "signer-key-not-granted")
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(ran.events("signer.signed").is_empty());
}

#[tokio::test]
async fn a_key_name_the_manifest_does_not_declare_is_denied() {
    let demo = Demo::start().await;
    let workspace = Workspace::demo();
    let key = SigningKey::generate();
    let ran = Step::new("sign-artifact")
        .input(json!({"image_digest": IMAGE_DIGEST, "key": "evidence"}))
        .workspace(&workspace)
        .signer(&key)
        .run(&demo)
        .await;
    ran.assert_error("denied", &["signing key not granted"]);
}

#[tokio::test]
async fn no_key_bound_on_the_host_is_unavailable() {
    let demo = Demo::start().await;
    let workspace = Workspace::demo();
    let ran = Step::new("sign-artifact")
        .input(json!({"image_digest": IMAGE_DIGEST}))
        .workspace(&workspace)
        .run(&demo)
        .await;
    ran.assert_error(
        "failed",
        &["signer unavailable", "no signing key is bound to `release`"],
    );
}

#[tokio::test]
async fn misuse_is_refused_naming_the_field_or_file() {
    let demo = Demo::start().await;
    let workspace = Workspace::demo();
    let key = SigningKey::generate();
    for (input, kind, expected) in [
        (
            json!({"image_digest": "latest"}),
            "invalid-input",
            "`image_digest` `latest` is a tag",
        ),
        (json!({}), "invalid-input", "missing field `image_digest`"),
        (
            json!({"image_digest": IMAGE_DIGEST, "key": ""}),
            "invalid-input",
            "`key` is empty",
        ),
        (
            json!({"image_digest": IMAGE_DIGEST, "chart": "/deploy/chart"}),
            "invalid-input",
            "`chart` must be a path relative to the workspace",
        ),
        (
            json!({"image_digest": IMAGE_DIGEST, "chart": "deploy/missing"}),
            "failed",
            "`deploy/missing` does not exist in the workspace",
        ),
        (
            json!({"image_digest": IMAGE_DIGEST, "chart": "VERSION"}),
            "failed",
            "the chart `VERSION` is not a folder",
        ),
    ] {
        let ran = Step::new("sign-artifact")
            .input(input)
            .workspace(&workspace)
            .signer(&key)
            .run(&demo)
            .await;
        ran.assert_error(kind, &[expected]);
        assert!(ran.events("signer.signed").is_empty());
    }
}

#[tokio::test]
async fn a_symbolic_link_in_the_chart_is_refused_naming_it() {
    let demo = Demo::start().await;
    let workspace = Workspace::demo();
    let key = SigningKey::generate();
    std::os::unix::fs::symlink(
        workspace.path().join("VERSION"),
        workspace
            .path()
            .join("deploy/chart/templates/version-link.yaml"),
    )
    .expect("symlink");
    let ran = Step::new("sign-artifact")
        .input(json!({"image_digest": IMAGE_DIGEST}))
        .workspace(&workspace)
        .signer(&key)
        .run(&demo)
        .await;
    ran.assert_error(
        "failed",
        &["`deploy/chart/templates/version-link.yaml` is a symbolic link"],
    );
    assert!(ran.events("signer.signed").is_empty());
}
