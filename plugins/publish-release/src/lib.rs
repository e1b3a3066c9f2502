//! `relo/publish-release`: creates the release tag, then the release, on the forge.
//!
//! Input: `{"forge": "http://127.0.0.1:18081", "tag": "v1.4.0", "notes": "…"}`
//! (`notes` defaults to empty). `tag` must be `v<MAJOR.MINOR.PATCH[-PRE]>`.
//!
//! Sends `POST <forge>/api/tags {"name": tag}` and then
//! `POST <forge>/api/releases {"tag": tag, "notes": notes}`, each with
//! `Authorization: Bearer {{secret:forge_token}}`: the host replaces the placeholder
//! with the token toward these destinations only, and the step never sees the value.
//! A 409 on the tag fails with "tag … already exists"; a 401 or 403 fails naming the
//! token as the problem.
//!
//! Output: `{"tag": "v1.4.0", "release": {"id": 1, "url": "…"}}`, the release as the
//! forge describes it.

use release_common::endpoint::{base_url, excerpt};
use release_common::version;
use relo_sdk::http::{Method, Request, Response};
use relo_sdk::{StepContext, StepError, info};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// The header value the host completes with the forge token.
const AUTHORIZATION: &str = "Bearer {{secret:forge_token}}";

/// What the workflow passes.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Input {
    forge: String,
    tag: String,
    #[serde(default)]
    notes: String,
}

/// What later steps read.
#[derive(Serialize)]
struct Output {
    tag: String,
    release: Release,
}

/// The release, as the forge answers it.
#[derive(Serialize, Deserialize)]
struct Release {
    id: Value,
    url: String,
}

#[relo_sdk::step]
fn publish(_: &StepContext, input: Input) -> Result<Output, StepError> {
    let forge = base_url("forge", &input.forge)?;
    version::tag_version(&input.tag)
        .map_err(|why| StepError::invalid_input(format!("`tag` {why}")))?;
    let tag = input.tag;

    let created = post(&forge, "/api/tags", &json!({"name": tag}))?;
    if created.status == 409 {
        return Err(StepError::failed(format!(
            "tag {tag} already exists on the forge; a released version is never released again"
        )));
    }
    expect_created(&forge, "/api/tags", &created)?;
    info!("tag {tag} created");

    let published = post(
        &forge,
        "/api/releases",
        &json!({"tag": tag, "notes": input.notes}),
    )?;
    expect_created(&forge, "/api/releases", &published)?;
    let release: Release = published.json().map_err(|error| {
        StepError::failed(format!(
            "POST {forge}/api/releases did not answer {{\"id\": ..., \"url\": \"...\"}}: {error}"
        ))
    })?;
    info!("release {tag} published at {}", release.url);
    Ok(Output { tag, release })
}

fn post(forge: &str, path: &str, body: &Value) -> Result<Response, StepError> {
    Ok(Request::new(Method::Post, format!("{forge}{path}"))
        .header("content-type", "application/json")
        .header("authorization", AUTHORIZATION)
        .body(body.to_string())
        .send()?)
}

/// A 2xx answer, or an error naming the request and what the forge said.
fn expect_created(forge: &str, path: &str, response: &Response) -> Result<(), StepError> {
    let request = format!("POST {forge}{path}");
    match response.status {
        200..=299 => Ok(()),
        401 | 403 => Err(StepError::failed(format!(
            "{request} was refused with {}: the forge did not accept the token; check the \
             operator's binding of the secret `forge_token` for relo/publish-release",
            response.status
        ))),
        status => Err(StepError::failed(format!(
            "{request} answered {status}: {}",
            excerpt(&response.body)
        ))),
    }
}
