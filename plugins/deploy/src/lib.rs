//! `relo/deploy`: deploys exactly one image digest and checks the target runs it.
//!
//! Input: `{"target": "http://127.0.0.1:18082", "digest": "sha256:…", "version": "1.4.0",
//! "image": "registry.example.com/acme/checkout", "notify": "https://hooks.example.com/…"}`
//! (`image` and `notify` are optional; `image` is a repository without tag or digest).
//!
//! Sends `POST <target>/api/deployments {"digest", "version"[, "image"]}`, then
//! `GET <target>/api/deployments/current`, and fails if the digest the target reports is
//! not the one requested, naming both. If `notify` is given, it then posts
//! `{"event": "deployed", "digest", "version"}` there, best-effort: a refusal by the
//! host's egress policy (the demo grants no webhook), a transport error or a non-2xx
//! answer is logged as a warning and reported in the output; the deployment stands.
//!
//! Output: `{"deployed": "sha256:…", "version": "1.4.0", "image":
//! "registry.example.com/acme/checkout@sha256:…" (with `image` only), "notified": false,
//! "notify_error": "…" (when a notification was asked for and not delivered)}`.

use release_common::digest::Sha256Digest;
use release_common::endpoint::{base_url, excerpt};
use release_common::image::ImageRef;
use release_common::version;
use relo_sdk::http::{self, HttpError, Method, Request, Response};
use relo_sdk::{StepContext, StepError, info, warn};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// What the workflow passes.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Input {
    target: String,
    digest: String,
    version: String,
    image: Option<String>,
    notify: Option<String>,
}

/// What the target reports it runs.
#[derive(Deserialize)]
struct Current {
    digest: String,
}

/// What later steps read.
#[derive(Serialize)]
struct Output {
    deployed: String,
    version: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    image: Option<String>,
    notified: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    notify_error: Option<String>,
}

#[relo_sdk::step]
fn deploy(_: &StepContext, input: Input) -> Result<Output, StepError> {
    let target = base_url("target", &input.target)?;
    let digest = Sha256Digest::parse("digest", &input.digest)?;
    version::check(&input.version)
        .map_err(|why| StepError::invalid_input(format!("`version` {why}")))?;
    let image = input.image.as_deref().map(repository).transpose()?;
    let notify = input
        .notify
        .as_deref()
        .map(|url| base_url("notify", url))
        .transpose()?;

    let mut request = json!({"digest": digest.to_string(), "version": input.version});
    if let (Some(image), Some(fields)) = (image, request.as_object_mut()) {
        fields.insert("image".to_owned(), Value::from(image));
    }
    let deployments = format!("{target}/api/deployments");
    let answer = Request::new(Method::Post, &deployments)
        .header("content-type", "application/json")
        .body(request.to_string())
        .send()?;
    expect_success(&format!("POST {deployments}"), &answer)?;

    let current_url = format!("{target}/api/deployments/current");
    let current = http::get(&current_url)?;
    expect_success(&format!("GET {current_url}"), &current)?;
    let current: Current = current.json().map_err(|error| {
        StepError::failed(format!(
            "GET {current_url} did not answer {{\"digest\": \"sha256:…\"}}: {error}"
        ))
    })?;
    if current.digest != digest.to_string() {
        return Err(StepError::failed(format!(
            "the target reports {} deployed, not the requested {digest}",
            current.digest
        )));
    }
    info!(
        "{digest} ({}) deployed and confirmed by the target",
        input.version
    );

    let notify_error = notify.and_then(|url| {
        let event =
            json!({"event": "deployed", "digest": digest.to_string(), "version": input.version});
        let error = notify_once(&url, &event).err()?;
        warn!("the deployment stands, but the notification was not delivered: {error}");
        Some(error)
    });
    Ok(Output {
        deployed: digest.to_string(),
        version: input.version,
        image: image.map(|repository| format!("{repository}@{digest}")),
        notified: input.notify.is_some() && notify_error.is_none(),
        notify_error,
    })
}

/// `image` as a repository: a reference with a tag or a digest is refused.
fn repository(image: &str) -> Result<&str, StepError> {
    let parsed =
        ImageRef::parse(image).map_err(|why| StepError::invalid_input(format!("`image` {why}")))?;
    if parsed.tag.is_some() || parsed.digest.is_some() {
        return Err(StepError::invalid_input(format!(
            "`image` `{image}` has a tag or digest; give the repository only, the step adds `@{{digest}}`"
        )));
    }
    Ok(parsed.repository)
}

/// Posts the notification once; the error says why it was not delivered.
fn notify_once(url: &str, event: &Value) -> Result<(), String> {
    let sent = Request::new(Method::Post, url)
        .header("content-type", "application/json")
        .body(event.to_string())
        .send();
    match sent {
        Ok(response) if response.is_success() => Ok(()),
        Ok(response) => Err(format!(
            "POST {url} answered {}: {}",
            response.status,
            excerpt(&response.body)
        )),
        Err(error @ HttpError::Denied(_)) => Err(format!("denied by the host: {error}")),
        Err(error) => Err(error.to_string()),
    }
}

/// A 2xx answer, or an error naming the request and what the target said.
fn expect_success(request: &str, response: &Response) -> Result<(), StepError> {
    if response.is_success() {
        return Ok(());
    }
    Err(StepError::failed(format!(
        "{request} answered {}: {}",
        response.status,
        excerpt(&response.body)
    )))
}
