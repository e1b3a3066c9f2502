//! `relo/pin-image-digest`: pins the chart's image by digest, never by a mutable tag.
//!
//! Input: `{"values": "deploy/chart/values.yaml", "digest": "sha256:<64 lowercase hex>"}`
//! (`values` has that default). A tag (`latest`, `1.4.0`, `repo:tag`), a whole
//! reference or a malformed digest is refused, saying why.
//!
//! The top-level `image:` of the values file, `repository:tag` or
//! `repository@sha256:…`, becomes `repository@sha256:<digest>`, written in the same
//! quoting style; every other byte of the file is kept.
//!
//! Output: `{"image": "registry.example.com/acme/checkout@sha256:…",
//! "previous": "registry.example.com/acme/checkout:1.4.0",
//! "values": "deploy/chart/values.yaml"}`.

use release_common::digest::Sha256Digest;
use release_common::image::ImageRef;
use release_common::workspace::{WorkspacePath, read_text, write_text};
use release_common::yaml;
use relo_sdk::{StepContext, StepError, info};
use serde::{Deserialize, Serialize};

/// What the workflow passes.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Input {
    #[serde(default = "default_values")]
    values: String,
    digest: String,
}

fn default_values() -> String {
    "deploy/chart/values.yaml".to_owned()
}

/// What later steps read.
#[derive(Serialize)]
struct Output {
    image: String,
    previous: String,
    values: String,
}

#[relo_sdk::step]
fn pin(_: &StepContext, input: Input) -> Result<Output, StepError> {
    let path = WorkspacePath::parse("values", &input.values)?;
    let digest = Sha256Digest::parse("digest", &input.digest)?;
    let text = read_text(&path)?;
    let failed = |why: String| StepError::failed(format!("`{path}`: {why}"));
    let image = yaml::top_level_scalar(&text, "image")
        .map_err(failed)?
        .ok_or_else(|| failed("has no top-level `image:` to pin".to_owned()))?;
    let previous = ImageRef::parse(&image.value)
        .map_err(|why| failed(format!("`image` on line {}: {why}", image.line)))?;
    let pinned = format!("{}@{digest}", previous.repository);
    let rewritten = yaml::replace_scalar(&text, &image, &pinned).map_err(failed)?;
    write_text(&path, &rewritten)?;
    info!("{path}: image {} pinned to {pinned}", image.value);
    Ok(Output {
        image: pinned,
        previous: image.value,
        values: path.to_string(),
    })
}
