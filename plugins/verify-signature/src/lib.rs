//! `relo/verify-signature`: verifies what `sign-artifact` signed, before deploying.
//!
//! Input:
//!
//! ```json
//! {"public_key": "-----BEGIN PUBLIC KEY-----\n…",
//!  "signatures": {"image": {"digest": "sha256:…", "signature": "<base64>"},
//!                 "chart": {"digest": "sha256:…", "signature": "<base64>",
//!                           "listing": "<hex>  Chart.yaml\n…"}},
//!  "image_digest": "sha256:…", "chart": "deploy/chart"}
//! ```
//!
//! `public_key` is an ECDSA P-256 SubjectPublicKeyInfo PEM; `signatures` is the object
//! `sign-artifact` outputs; `chart` defaults to `deploy/chart`. Checks: the signed image
//! digest is `image_digest`; the signed listing hashes to the signed chart digest; both
//! signatures (base64 DER, over the digests prehashed) verify with the key; and the
//! chart in the workspace still has that digest; if not, the error names each file
//! modified, added or removed since signing.
//!
//! Output: `{"verified": ["image", "chart"], "key_id": "<hex SHA-256 of the key's DER>",
//! "image_digest": "sha256:…", "chart_digest": "sha256:…"}`. The key id is the one
//! `relo` shows for the key (`openssl pkey -pubin -outform DER | sha256sum`).

use base64ct::{Base64, Encoding as _};
use p256::ecdsa::signature::hazmat::PrehashVerifier as _;
use p256::ecdsa::{Signature, VerifyingKey};
use p256::pkcs8::{DecodePublicKey as _, EncodePublicKey as _};
use release_common::chart::ChartListing;
use release_common::digest::Sha256Digest;
use release_common::workspace::WorkspacePath;
use relo_sdk::{StepContext, StepError, info};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

/// What the workflow passes.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Input {
    public_key: String,
    signatures: Signatures,
    image_digest: String,
    #[serde(default = "default_chart")]
    chart: String,
}

fn default_chart() -> String {
    "deploy/chart".to_owned()
}

/// `sign-artifact`'s `signatures`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Signatures {
    image: Signed,
    chart: SignedChart,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Signed {
    digest: String,
    signature: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SignedChart {
    digest: String,
    signature: String,
    listing: String,
}

/// What later steps read.
#[derive(Serialize)]
struct Output {
    verified: Vec<&'static str>,
    key_id: String,
    image_digest: String,
    chart_digest: String,
}

#[relo_sdk::step]
fn verify(_: &StepContext, input: Input) -> Result<Output, StepError> {
    let key = VerifyingKey::from_public_key_pem(input.public_key.trim()).map_err(|error| {
        StepError::invalid_input(format!(
            "`public_key` is not an ECDSA P-256 public key PEM (SubjectPublicKeyInfo): {error}"
        ))
    })?;
    let key_id = key_id(&key)?;
    let image_digest = Sha256Digest::parse("image_digest", &input.image_digest)?;
    let folder = WorkspacePath::parse("chart", &input.chart)?;
    let signed_image =
        Sha256Digest::parse("signatures.image.digest", &input.signatures.image.digest)?;
    let signed_chart =
        Sha256Digest::parse("signatures.chart.digest", &input.signatures.chart.digest)?;
    let image_signature = signature(
        "signatures.image.signature",
        &input.signatures.image.signature,
    )?;
    let chart_signature = signature(
        "signatures.chart.signature",
        &input.signatures.chart.signature,
    )?;
    let listing = ChartListing::parse(&input.signatures.chart.listing).map_err(|why| {
        StepError::invalid_input(format!(
            "`signatures.chart.listing` is not a chart listing: {why}"
        ))
    })?;

    if signed_image != image_digest {
        return Err(StepError::failed(format!(
            "the signed image is {signed_image}, not `image_digest` {image_digest}"
        )));
    }
    if listing.digest() != &signed_chart {
        return Err(StepError::failed(format!(
            "`signatures.chart.listing` hashes to {}, not to the signed chart digest {signed_chart}",
            listing.digest()
        )));
    }
    check("image", &key, &key_id, &signed_image, &image_signature)?;
    check("chart", &key, &key_id, &signed_chart, &chart_signature)?;

    let now = ChartListing::read(&folder)?;
    if now.digest() != &signed_chart {
        return Err(StepError::failed(format!(
            "the chart `{folder}` changed after it was signed ({}): signed {signed_chart}, now {}",
            now.changes_since(&listing).join(", "),
            now.digest()
        )));
    }
    info!("image {image_digest} and chart {folder} ({signed_chart}) verified with key {key_id}");
    Ok(Output {
        verified: vec!["image", "chart"],
        key_id,
        image_digest: image_digest.to_string(),
        chart_digest: signed_chart.to_string(),
    })
}

/// The key id: lowercase hex SHA-256 of the key's SubjectPublicKeyInfo DER.
fn key_id(key: &VerifyingKey) -> Result<String, StepError> {
    let der = key.to_public_key_der().map_err(|error| {
        StepError::invalid_input(format!("`public_key` cannot be encoded again: {error}"))
    })?;
    Ok(hex::encode(Sha256::digest(der.as_bytes())))
}

/// A base64 DER ECDSA signature from the field `field`.
fn signature(field: &str, text: &str) -> Result<Signature, StepError> {
    let der = Base64::decode_vec(text.trim())
        .map_err(|error| StepError::invalid_input(format!("`{field}` is not base64: {error}")))?;
    Signature::from_der(&der).map_err(|error| {
        StepError::invalid_input(format!(
            "`{field}` is not a DER ECDSA P-256 signature: {error}"
        ))
    })
}

/// Verifies `signature` over `digest`, prehashed.
fn check(
    what: &str,
    key: &VerifyingKey,
    key_id: &str,
    digest: &Sha256Digest,
    signature: &Signature,
) -> Result<(), StepError> {
    key.verify_prehash(&digest.bytes(), signature).map_err(|_| {
        StepError::failed(format!(
            "the {what} signature over {digest} does not verify with the public key {key_id}"
        ))
    })
}
