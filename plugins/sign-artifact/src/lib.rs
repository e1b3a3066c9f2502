//! `relo/sign-artifact`: signs the image digest and the chart with an operator-held key.
//!
//! Input: `{"key": "release", "image_digest": "sha256:…", "chart": "deploy/chart"}`
//! (`key` and `chart` have those defaults).
//!
//! The chart digest is the SHA-256 of the chart folder's listing (see
//! `release_common::chart`: one `sha256sum` line per regular file, sorted by path). Both
//! digests are signed prehashed by the host (`relo_sdk::signer::sign_digest`): ECDSA
//! P-256, base64 of the DER signature, cosign's format. The key never enters the sandbox.
//!
//! Output:
//!
//! ```json
//! {"signatures": {"image": {"digest": "sha256:…", "signature": "<base64>"},
//!                 "chart": {"digest": "sha256:…", "signature": "<base64>",
//!                           "listing": "<hex>  Chart.yaml\n…"}},
//!  "key": "release"}
//! ```

use release_common::chart::ChartListing;
use release_common::digest::Sha256Digest;
use release_common::workspace::WorkspacePath;
use relo_sdk::{StepContext, StepError, info, signer};
use serde::{Deserialize, Serialize};

/// What the workflow passes.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Input {
    #[serde(default = "default_key")]
    key: String,
    image_digest: String,
    #[serde(default = "default_chart")]
    chart: String,
}

fn default_key() -> String {
    "release".to_owned()
}

fn default_chart() -> String {
    "deploy/chart".to_owned()
}

/// What later steps read; `verify-signature` takes `signatures` as it is.
#[derive(Serialize)]
struct Output {
    signatures: Signatures,
    key: String,
}

#[derive(Serialize)]
struct Signatures {
    image: Signed,
    chart: SignedChart,
}

#[derive(Serialize)]
struct Signed {
    digest: String,
    signature: String,
}

#[derive(Serialize)]
struct SignedChart {
    digest: String,
    signature: String,
    listing: String,
}

#[relo_sdk::step]
fn sign(_: &StepContext, input: Input) -> Result<Output, StepError> {
    if input.key.is_empty() {
        return Err(StepError::invalid_input(
            "`key` is empty; name the signing key the operator binds, e.g. \"release\"",
        ));
    }
    let image = Sha256Digest::parse("image_digest", &input.image_digest)?;
    let folder = WorkspacePath::parse("chart", &input.chart)?;
    let chart = ChartListing::read(&folder)?;
    let image_signature = signer::sign_digest(&input.key, image.hex())?;
    let chart_signature = signer::sign_digest(&input.key, chart.digest().hex())?;
    info!(
        "signed image {image} and chart {folder} ({} files, {}) with `{}`",
        chart.files().len(),
        chart.digest(),
        input.key
    );
    Ok(Output {
        signatures: Signatures {
            image: Signed {
                digest: image.to_string(),
                signature: image_signature,
            },
            chart: SignedChart {
                digest: chart.digest().to_string(),
                signature: chart_signature,
                listing: chart.text().to_owned(),
            },
        },
        key: input.key,
    })
}
